// The trust bundle (tls.caFile): IGC-Santé's roots and, beside them, its intermediate
// authorities, as `openssl pkcs7 -print_certs` gives them from the published bundle. Roots
// (self-signed CA certificates) are the only trust anchors. An intermediate only completes
// the chain of a peer that sends its leaf alone; a chain through it must still reach a root
// of the bundle. OpenSSL, which checks every handshake, behaves so as long as partial
// chains stay off (Node's default: an intermediate of its store is "untrusted" until the
// chain reaches a self-signed certificate); this file does the same for our own checks.

import { verify as cryptoVerify, X509Certificate } from 'node:crypto';
import * as pkijs from 'pkijs';
import { MssError } from '../core/errors.js';
import { readPemFile } from './files.js';
import { pemDers, splitPem, toArrayBuffer } from './pem.js';

export interface TrustBundle {
  /** Self-signed CA certificates: where every chain must end. */
  anchors: X509Certificate[];
  /** Other CA certificates: used to complete chains, never an end of one. */
  intermediates: X509Certificate[];
  /** Anchors then intermediates, PEM: OpenSSL's store (Node's `ca` option). */
  pem: string;
  warnings: string[];
}

/** Node prints names one attribute per line; logs and errors want one line. */
export const oneLine = (dn: string) => dn.split('\n').filter(Boolean).join(', ');

const selfSigned = (x: X509Certificate) => x.checkIssued(x) && x.verify(x.publicKey);
/** x was signed by ca (names, key identifiers, keyUsage and the signature itself). */
export const issuedBy = (x: X509Certificate, ca: X509Certificate) => ca.ca && x.checkIssued(ca) && x.verify(ca.publicKey);

/**
 * Sorts a bundle's certificates into anchors and intermediates. A certificate that is not a
 * CA (basicConstraints CA:FALSE, or none) is left out with a warning: OpenSSL would trust a
 * self-signed leaf of its store as itself, which no MSSanté peer should be.
 */
export function parseTrustBundle(text: string, file: string, what = 'trust bundle (tls.caFile)'): TrustBundle {
  const warnings: string[] = [];
  const certs = splitPem(text, 'CERTIFICATE').map((p, i) => {
    try {
      return new X509Certificate(p);
    } catch (e) {
      throw new MssError('CERT_INVALID', { what, file, reason: `certificate #${i + 1} cannot be parsed (${(e as Error).message})` });
    }
  });
  const seen = new Set<string>();
  const anchors: X509Certificate[] = [];
  const intermediates: X509Certificate[] = [];
  certs.forEach((x, i) => {
    if (seen.has(x.fingerprint256)) return;
    seen.add(x.fingerprint256);
    if (!x.ca) warnings.push(`certificate #${i + 1} of ${file} (${oneLine(x.subject)}) is not a certification authority; it is ignored`);
    else (selfSigned(x) ? anchors : intermediates).push(x);
  });
  if (!anchors.length) throw new MssError('CERT_INVALID', { what, file, reason: 'it holds no root (self-signed) certification authority: a chain must end at one' });
  for (const i of intermediates) {
    if (!buildChain(i, [], { anchors, intermediates })) warnings.push(`the intermediate authority ${oneLine(i.subject)} in ${file} does not chain to a root of that file: certificates it issued are refused`);
  }
  return { anchors, intermediates, pem: [...anchors, ...intermediates].map((x) => x.toString()).join(''), warnings };
}

export function trustBundle(file: string): TrustBundle {
  return parseTrustBundle(readPemFile(file, 'trust bundle (tls.caFile)', ['CERTIFICATE']), file);
}

/**
 * leaf → its issuers → a root of the bundle, built from the certificates the peer sent and
 * the bundle's intermediates; undefined when no path reaches a root. Each link is a real
 * signature by a CA. Depth-first: a renewed authority may appear twice under one name.
 */
export function buildChain(leaf: X509Certificate, sent: X509Certificate[], trust: Pick<TrustBundle, 'anchors' | 'intermediates'>): X509Certificate[] | undefined {
  const walk = (path: X509Certificate[]): X509Certificate[] | undefined => {
    const current = path[path.length - 1];
    const anchor = trust.anchors.find((a) => issuedBy(current, a));
    if (anchor) return anchor === current ? path : [...path, anchor];
    if (path.length >= 8) return undefined;
    for (const next of [...sent, ...trust.intermediates]) {
      if (path.some((p) => p.fingerprint256 === next.fingerprint256) || !issuedBy(current, next)) continue;
      const found = walk([...path, next]);
      if (found) return found;
    }
    return undefined;
  };
  return walk([leaf]);
}

export interface Revocation {
  status: 'good' | 'revoked' | 'unknown';
  /** revoked: the certificate (subject) and when; unknown: why. */
  subject?: string;
  revokedAt?: Date;
  why?: string;
}

/**
 * Revocation of every certificate of a chain but its root, by the CRL of its issuer (RFC
 * 5280 CRL checking of the whole chain, what OpenSSL's crl_check_all does in the
 * handshakes). revoked wins over unknown; a CRL past its nextUpdate does not count.
 */
export function chainRevocation(chain: X509Certificate[], crls: pkijs.CertificateRevocationList[], now = new Date()): Revocation {
  let unknown: Revocation | undefined;
  for (const x of chain) {
    if (selfSigned(x)) continue; // a root is trusted or not; no CRL speaks for it
    const cert = pkijs.Certificate.fromBER(toArrayBuffer(x.raw));
    const crl = crls.find((l) => l.issuer.isEqual(cert.issuer));
    if (!crl) {
      unknown ??= { status: 'unknown', subject: oneLine(x.subject), why: `no CRL of ${oneLine(x.issuer)} is loaded` };
      continue;
    }
    const entry = crl.revokedCertificates?.find((r) => r.userCertificate.isEqual(cert.serialNumber));
    if (entry) return { status: 'revoked', subject: oneLine(x.subject), revokedAt: entry.revocationDate.value };
    const next = crl.nextUpdate?.value;
    if (next && next < now) unknown ??= { status: 'unknown', subject: oneLine(x.subject), why: `the CRL of ${oneLine(x.issuer)} expired on ${next.toISOString()}` };
  }
  return unknown ?? { status: 'good' };
}

const SIG_HASH: Record<string, string> = {
  '1.2.840.113549.1.1.11': 'sha256', // sha256WithRSAEncryption
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.3.2': 'sha256', // ecdsa-with-SHA256
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
};

/**
 * Is this CRL signed by issuer? Checked with Node's synchronous verify over the CRL's
 * to-be-signed bytes, so loading stays synchronous. undefined: unknown signature algorithm.
 */
export function crlSignedBy(crl: pkijs.CertificateRevocationList, issuer: X509Certificate): boolean | undefined {
  const hash = SIG_HASH[crl.signatureAlgorithm.algorithmId];
  if (!hash) return undefined;
  return cryptoVerify(hash, crl.tbsView, issuer.publicKey, Buffer.from(crl.signatureValue.valueBlock.valueHexView));
}

/**
 * The CRLs of a file (tls.crlFile), each checked against its issuer among `authorities`:
 * a CRL whose signature fails is corrupt or forged (error); one from an authority we do
 * not know is useless but harmless (warning, dropped); an expired one is kept with a loud
 * warning (OpenSSL then refuses every certificate of that authority until it is refreshed).
 */
/** The authority among these whose name the CRL bears as its issuer. */
export function crlIssuer(crl: pkijs.CertificateRevocationList, authorities: X509Certificate[]): X509Certificate | undefined {
  return authorities.find((x) => pkijs.Certificate.fromBER(toArrayBuffer(x.raw)).subject.isEqual(crl.issuer));
}

export function loadCrls(file: string, authorities: X509Certificate[], now = new Date()): { pems: string[]; crls: pkijs.CertificateRevocationList[]; warnings: string[] } {
  const what = 'certificate revocation list (tls.crlFile)';
  const warnings: string[] = [];
  const pems = splitPem(readPemFile(file, what, ['X509 CRL']), 'X509 CRL');
  const crls = pems.map((p, i) => {
    try {
      return pkijs.CertificateRevocationList.fromBER(toArrayBuffer(pemDers(p, 'X509 CRL')[0]));
    } catch (e) {
      throw new MssError('CERT_INVALID', { what, file, reason: `CRL #${i + 1} cannot be parsed (${(e as Error).message})` });
    }
  });
  crls.forEach((crl, i) => {
    const issuer = crlIssuer(crl, authorities);
    const which = `CRL #${i + 1} in ${file}`;
    if (!issuer) warnings.push(`${which} is issued by a CA that is neither in the trust bundle nor in the chain; it is ignored`);
    else {
      const signed = crlSignedBy(crl, issuer);
      if (signed === false) throw new MssError('CERT_INVALID', { what, file, reason: `CRL #${i + 1} does not carry a valid signature of its issuer` });
      if (signed === undefined) warnings.push(`${which} uses signature algorithm ${crl.signatureAlgorithm.algorithmId}, which is not checked here (OpenSSL still checks it in each handshake)`);
    }
    const next = crl.nextUpdate?.value;
    if (next && next < now) warnings.push(`${which} expired on ${next.toISOString()}: until it is refreshed, every client certificate from its CA is refused`);
  });
  return { pems, crls, warnings };
}
