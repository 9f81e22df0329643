// PEM <-> DER, and the pkijs crypto engine. Small on purpose: everything that reads or writes
// certificates goes through here so a PEM file with several blocks (a chain, a bundle of
// CRLs) is split the same way everywhere.

import { createPrivateKey, webcrypto } from 'node:crypto';
import * as pkijs from 'pkijs';

export type PemLabel = 'CERTIFICATE' | 'X509 CRL' | 'PRIVATE KEY' | 'RSA PRIVATE KEY' | 'EC PRIVATE KEY' | 'PUBLIC KEY';

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n\t ]*?)-----END \1-----/g;

/** Every PEM block in text, in order: label and DER bytes. Text outside blocks is ignored (openssl comments). */
export function pemBlocks(text: string): Array<{ label: string; der: Buffer }> {
  const out: Array<{ label: string; der: Buffer }> = [];
  for (const m of text.matchAll(BLOCK)) out.push({ label: m[1], der: Buffer.from(m[2].replace(/\s+/g, ''), 'base64') });
  return out;
}

/** The DER of each block with this label. */
export function pemDers(text: string, label: PemLabel): Buffer[] {
  return pemBlocks(text)
    .filter((b) => b.label === label)
    .map((b) => b.der);
}

/** PEM text of each block with this label, re-encoded canonically (one block per entry). */
export function splitPem(text: string, label: PemLabel): string[] {
  return pemDers(text, label).map((d) => derToPem(d, label));
}

export function derToPem(der: Uint8Array | ArrayBuffer, label: PemLabel): string {
  const b64 = Buffer.from(der instanceof ArrayBuffer ? new Uint8Array(der) : der).toString('base64');
  return `-----BEGIN ${label}-----\n${b64.replace(/.{1,64}/g, '$&\n')}-----END ${label}-----\n`;
}

/** A fresh ArrayBuffer holding exactly these bytes (pkijs and asn1js want ArrayBuffers, Node gives pooled Buffers). */
export function toArrayBuffer(b: Uint8Array): ArrayBuffer {
  const ab = new ArrayBuffer(b.byteLength);
  new Uint8Array(ab).set(b);
  return ab;
}

let engineReady = false;

/**
 * pkijs does its signing and hashing through WebCrypto; Node's implementation is native.
 * Idempotent: every module that uses pkijs calls it before the first operation.
 */
export function usePkijsEngine(): void {
  if (engineReady) return;
  pkijs.setEngine('node', new pkijs.CryptoEngine({ name: 'node', crypto: webcrypto as never }));
  engineReady = true;
}

export function parseCertificate(der: Uint8Array): pkijs.Certificate {
  return pkijs.Certificate.fromBER(toArrayBuffer(der));
}

/**
 * A PEM private key (PKCS#8, PKCS#1 or SEC1, as openssl and the dev PKI write them) as a
 * WebCrypto signing key for pkijs. RSA signs with PKCS#1 v1.5 (what IGC-Santé and
 * `openssl ts` use); EC keys with ECDSA on their own curve.
 */
export async function importSigningKey(keyPem: string, hash: 'SHA-256' | 'SHA-384' | 'SHA-512' = 'SHA-256'): Promise<webcrypto.CryptoKey> {
  const key = createPrivateKey(keyPem);
  const pkcs8 = key.export({ type: 'pkcs8', format: 'der' });
  const type = key.asymmetricKeyType;
  if (type === 'rsa') {
    return webcrypto.subtle.importKey('pkcs8', pkcs8, { name: 'RSASSA-PKCS1-v1_5', hash }, false, ['sign']);
  }
  if (type === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const namedCurve = curve === 'prime256v1' ? 'P-256' : curve === 'secp384r1' ? 'P-384' : curve === 'secp521r1' ? 'P-521' : undefined;
    if (!namedCurve) throw new Error(`unsupported EC curve ${curve}`);
    return webcrypto.subtle.importKey('pkcs8', pkcs8, { name: 'ECDSA', namedCurve }, false, ['sign']);
  }
  throw new Error(`unsupported key type ${type} (RSA or EC expected)`);
}
