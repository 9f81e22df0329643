// TLS material from the files the configuration names (tls.*), checked once at start so a
// wrong file stops the platform with one sentence naming it, and the options every TLS
// front (SMTP, IMAP, HTTPS) and the outbound SMTP client share: the one TLS policy
// (tls-policy.ts), the trust bundle (trust.ts: roots, plus intermediates that complete the
// chains of peers sending their leaf alone), CRLs applied.

import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import type { ConnectionOptions, DetailedPeerCertificate, TlsOptions } from 'node:tls';
import * as pkijs from 'pkijs';
import type { Config } from '../core/config/index.js';
import { MssError } from '../core/errors.js';
import { readPemFile } from './files.js';
import { parseCertificate, pemDers, splitPem, toArrayBuffer } from './pem.js';
import { nodeTlsPolicy } from './tls-policy.js';
import { buildChain, chainRevocation, loadCrls, oneLine, parseTrustBundle } from './trust.js';

export { CIPHERS, MSSANTE_TLS12_CIPHERS, TLS13_CIPHERS, TLS_POLICY, nodeTlsPolicy } from './tls-policy.js';

/** A server certificate this close to its end produces a warning at every start. */
export const EXPIRY_WARNING_DAYS = 30;

export interface TlsMaterial {
  /** Leaf then intermediates: what we present. */
  certChainPem: string;
  keyPem: string;
  /** The trust bundle for OpenSSL: roots then intermediates (tls.caFile, CA certificates only). */
  caPem: string;
  /** Roots of the trust bundle: the only ends a chain may have. */
  anchors: X509Certificate[];
  /** Intermediates of the trust bundle: complete a peer's chain, never end one. */
  intermediates: X509Certificate[];
  /** One PEM string per CRL (Node's `crl` option reads only the first CRL of a string). */
  crlPems: string[];
  crls: pkijs.CertificateRevocationList[];
  leaf: X509Certificate;
  /** Things an operator should hear about at start but that do not stop it. */
  warnings: string[];
}

/** What crosses a process boundary (IMAP workers): the rest is derived from it. */
export type TlsMaterialPems = Pick<TlsMaterial, 'certChainPem' | 'keyPem' | 'caPem' | 'crlPems'>;

export function tlsMaterialFromPems(t: TlsMaterialPems): TlsMaterial {
  const bundle = parseTrustBundle(t.caPem, 'trust bundle');
  return {
    ...t,
    anchors: bundle.anchors,
    intermediates: bundle.intermediates,
    crls: t.crlPems.map((p) => pkijs.CertificateRevocationList.fromBER(toArrayBuffer(pemDers(p, 'X509 CRL')[0]))),
    leaf: new X509Certificate(splitPem(t.certChainPem, 'CERTIFICATE')[0]),
    warnings: [],
  };
}

type TlsFiles = Pick<Config['tls'], 'certFile' | 'keyFile' | 'chainFile' | 'caFile' | 'crlFile'>;

const DAY = 86_400_000;

/**
 * Read and check tls.* files: each must be readable and hold what it should; the key
 * must be the certificate's; the server certificate must be valid now. An expired (or not
 * yet valid) server certificate is an error, not a warning: peers and clients must check
 * expiry (Référentiel #2 ECO.1.1.5), so a server started with it would be refused by every
 * conforming peer with handshake errors far away from the cause; refusing here names the file.
 * An expired CRL is only a warning (the operator's next download fixes it) but it is loud:
 * OpenSSL then refuses every client certificate.
 */
export function loadTlsMaterial(config: { tls: TlsFiles }, now = new Date()): TlsMaterial {
  const { certFile, keyFile, chainFile, caFile, crlFile } = config.tls;
  const warnings: string[] = [];

  const certText = readPemFile(certFile, 'TLS certificate (tls.certFile)', ['CERTIFICATE']);
  const certBlocks = splitPem(certText, 'CERTIFICATE');
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(certBlocks[0]);
  } catch (e) {
    throw new MssError('CERT_INVALID', { what: 'TLS certificate (tls.certFile)', file: certFile, reason: `cannot parse it (${(e as Error).message})` });
  }
  const keyPem = readPemFile(keyFile, 'TLS private key (tls.keyFile)', ['PRIVATE KEY', 'RSA PRIVATE KEY', 'EC PRIVATE KEY']);
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (e) {
    const encrypted = /ENCRYPTED/.test(keyPem) || /passphrase/i.test((e as Error).message);
    const reason = encrypted ? 'the key is encrypted; store it decrypted (openssl pkey -in KEY -out KEY) with mode 0600' : `cannot parse it (${(e as Error).message})`;
    throw new MssError('CERT_INVALID', { what: 'TLS private key (tls.keyFile)', file: keyFile, reason });
  }
  if (!leaf.checkPrivateKey(key)) {
    throw new MssError('CERT_INVALID', { what: 'TLS private key (tls.keyFile)', file: keyFile, reason: `it does not belong to the certificate in ${certFile} (${oneLine(leaf.subject)})` });
  }
  const from = new Date(leaf.validFrom);
  const to = new Date(leaf.validTo);
  if (to < now) throw new MssError('CERT_INVALID', { what: 'TLS certificate (tls.certFile)', file: certFile, reason: `it expired on ${to.toISOString()}; peers and clients will refuse it` });
  if (from > now) throw new MssError('CERT_INVALID', { what: 'TLS certificate (tls.certFile)', file: certFile, reason: `it is not valid before ${from.toISOString()}` });
  if (to.getTime() - now.getTime() < EXPIRY_WARNING_DAYS * DAY) warnings.push(`the TLS certificate ${certFile} expires on ${to.toISOString()}: renew it`);

  // The chain may be in certFile after the leaf, in chainFile, or both: send each once.
  const chainText = chainFile ? readPemFile(chainFile, 'TLS chain (tls.chainFile)', ['CERTIFICATE']) : '';
  const sent = [...new Set([...certBlocks, ...splitPem(chainText, 'CERTIFICATE')])];

  const bundle = parseTrustBundle(readPemFile(caFile, 'trust bundle (tls.caFile)', ['CERTIFICATE']), caFile);
  warnings.push(...bundle.warnings);
  const intermediates = sent.slice(1).map((p, i) => {
    try {
      return new X509Certificate(p);
    } catch (e) {
      throw new MssError('CERT_INVALID', { what: 'TLS chain (tls.chainFile)', file: chainFile || certFile, reason: `certificate #${i + 1} cannot be parsed (${(e as Error).message})` });
    }
  });
  // What peers see: the chain we send, completed by their own copy of the roots only.
  if (!buildChain(leaf, intermediates, { anchors: bundle.anchors, intermediates: [] })) {
    warnings.push(`the TLS certificate ${certFile} and the chain sent with it do not lead to a root of ${caFile}: peers trusting only those roots will refuse it`);
  }

  const crl = loadCrls(crlFile, [...bundle.anchors, ...bundle.intermediates, ...intermediates], now);
  warnings.push(...crl.warnings);
  return { certChainPem: sent.join(''), keyPem, caPem: bundle.pem, anchors: bundle.anchors, intermediates: bundle.intermediates, crlPems: crl.pems, crls: crl.crls, leaf, warnings };
}

export interface ServerTlsOptions {
  /** Ask the client for a certificate (MX-to-MX mutual TLS, certificate logins). */
  requestCert?: boolean;
  /**
   * With requestCert: refuse the handshake when the client certificate does not verify
   * (default true: fail closed). Set false only where the protocol answers the refusal
   * itself (an SMTP 5xx after STARTTLS), and then check `socket.authorized` and peerIdentity().
   */
  rejectUnauthorized?: boolean;
}

/** Options for tls.createServer / https.createServer / a STARTTLS upgrade. */
export function serverTlsOptions(m: TlsMaterial, o: ServerTlsOptions = {}): TlsOptions {
  return {
    key: m.keyPem,
    cert: m.certChainPem,
    ca: m.caPem,
    crl: m.crlPems,
    ...nodeTlsPolicy(),
    honorCipherOrder: true,
    requestCert: o.requestCert ?? false,
    rejectUnauthorized: o.requestCert ? (o.rejectUnauthorized ?? true) : false,
  };
}

/**
 * Options for tls.connect to another operator: we present our certificate (the server
 * certificate has clientAuth), trust only the bundle's roots, apply the CRLs, check the name.
 */
export function clientTlsOptions(m: TlsMaterial, o: { servername?: string; presentCertificate?: boolean } = {}): ConnectionOptions {
  return {
    ...(o.presentCertificate === false ? {} : { key: m.keyPem, cert: m.certChainPem }),
    ca: m.caPem,
    crl: m.crlPems,
    ...nodeTlsPolicy(),
    rejectUnauthorized: true,
    ...(o.servername ? { servername: o.servername } : {}),
  };
}

const NAMES: Record<string, string> = {
  '2.5.4.3': 'CN',
  '2.5.4.4': 'SN',
  '2.5.4.5': 'serialNumber',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.12': 'title',
  '2.5.4.42': 'GN',
  '1.2.840.113549.1.9.1': 'emailAddress',
};

export interface PeerIdentity {
  /** First value of each subject attribute, by short name (CN, O, OU, SN, GN, title…). */
  subject: Record<string, string>;
  /** DNS names of the subjectAltName; the CN when there are none and it looks like a host name. */
  domains: string[];
  /** rfc822Name entries of the subjectAltName. */
  emails: string[];
  /** Professional's national id (IDNPS, "8" + RPPS) for a personal certificate. */
  nationalId?: string;
  rpps?: string;
  /** Structure id in OU ("1" + FINESS, "3" + SIRET…) for organisation/operator certificates. */
  structureId?: string;
  serialNumber: string;
  issuer: string;
  notAfter: Date;
  /** good: a CRL from each issuer of its chain says not revoked; unknown: no (valid) CRL from some issuer. */
  revocation: 'good' | 'revoked' | 'unknown';
  revokedAt?: Date;
}

type PeerInput = DetailedPeerCertificate | string | Uint8Array;

/** DER of the peer certificate and of the issuers it presented (leaf first). */
function presented(peer: PeerInput): Buffer[] {
  if (typeof peer === 'string') return pemDers(peer, 'CERTIFICATE');
  if (peer instanceof Uint8Array) return [Buffer.from(peer)];
  const out: Buffer[] = [];
  for (let c: DetailedPeerCertificate | undefined = peer; c?.raw && out.length < 8; c = c.issuerCertificate) {
    if (out.some((d) => d.equals(c!.raw))) break; // a self-signed root points to itself
    out.push(c.raw);
  }
  return out;
}

/**
 * Who the peer is, from its certificate (`socket.getPeerCertificate(true)`, a PEM, or a DER),
 * and whether a loaded CRL revokes it or one of its issuers. The TLS layer has
 * already checked the chain; this gives the SMTP/IMAP fronts the names to check against
 * the liste blanche and the annuaire, and a revocation answer they can log.
 */
export function peerIdentity(peer: PeerInput, material: Pick<TlsMaterial, 'crls' | 'anchors' | 'intermediates'>): PeerIdentity {
  const ders = presented(peer);
  if (!ders.length) throw new MssError('BAD_REQUEST', { reason: 'the peer presented no certificate' });
  const certs = ders.map(parseCertificate);
  const cert = certs[0];
  const subject: Record<string, string> = {};
  for (const tv of cert.subject.typesAndValues) {
    const name = NAMES[tv.type] ?? tv.type;
    subject[name] ??= String(tv.value.valueBlock.value);
  }
  const san = cert.extensions?.find((e) => e.extnID === '2.5.29.17')?.parsedValue as pkijs.AltName | undefined;
  const names = san?.altNames ?? [];
  const dns = names.filter((n) => n.type === 2).map((n) => String(n.value).toLowerCase());
  const emails = names.filter((n) => n.type === 1).map((n) => String(n.value));
  const cn = subject.CN ?? '';
  const domains = dns.length ? dns : /^[a-z0-9.-]+\.[a-z]{2,}$/i.test(cn) ? [cn.toLowerCase()] : [];
  const idnps = /^8\d{11}$/.test(cn) ? cn : /^8\d{11}$/.test(subject.serialNumber ?? '') ? subject.serialNumber : undefined;
  const ou = subject.OU;

  // CRL_CHECK_ALL semantics over the chain OpenSSL built: the leaf and every intermediate,
  // those the peer sent or those of the trust bundle (a leaf-only peer).
  const x509s = ders.map((d) => new X509Certificate(d));
  const chain = buildChain(x509s[0], x509s.slice(1), material) ?? x509s;
  const { status: revocation, revokedAt } = chainRevocation(chain, material.crls);
  const x509 = x509s[0];
  return {
    subject,
    domains,
    emails,
    ...(idnps ? { nationalId: idnps, rpps: idnps.slice(1) } : {}),
    ...(ou && /^[1-4][0-9A-Z]{9,16}$/.test(ou) ? { structureId: ou } : {}),
    serialNumber: x509.serialNumber,
    issuer: oneLine(x509.issuer),
    notAfter: new Date(x509.validTo),
    revocation,
    ...(revokedAt ? { revokedAt } : {}),
  };
}
