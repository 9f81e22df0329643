// TLS material from the files the configuration names (tls.*), checked once at start so a
// wrong file stops the platform with one sentence naming it, and the options every TLS
// front (SMTP, IMAP, LDAPS, HTTPS) and the outbound SMTP client share: the MSSanté suites,
// TLS 1.2 minimum, forward secrecy only, CRLs applied.

import { createPrivateKey, verify as cryptoVerify, X509Certificate, type KeyObject } from 'node:crypto';
import type { ConnectionOptions, DetailedPeerCertificate, TlsOptions } from 'node:tls';
import * as pkijs from 'pkijs';
import type { Config } from '../core/config/index.js';
import { MssError } from '../core/errors.js';
import { readPemFile } from './files.js';
import { parseCertificate, pemDers, splitPem, toArrayBuffer } from './pem.js';

/**
 * Référentiel #2 ECO.1.1.3: the four suites MSSanté clients use with TLS 1.2 — all ECDHE
 * (forward secrecy) with RSA certificates — then the TLS 1.3 suites, forward-secret by
 * construction. Static-RSA key exchange (AES256-GCM-SHA384 …) and DHE are left out.
 */
export const MSSANTE_TLS12_CIPHERS = ['ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES256-SHA384', 'ECDHE-RSA-AES128-SHA256'] as const;
export const TLS13_CIPHERS = ['TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256', 'TLS_AES_128_GCM_SHA256'] as const;
export const CIPHERS = [...TLS13_CIPHERS, ...MSSANTE_TLS12_CIPHERS].join(':');

/** A server certificate this close to its end produces a warning at every start. */
const EXPIRY_WARNING_DAYS = 30;

export interface TlsMaterial {
  /** Leaf then intermediates: what we present. */
  certChainPem: string;
  keyPem: string;
  /** Trust anchors for peers and clients. */
  caPem: string;
  /** One PEM string per CRL (Node's `crl` option reads only the first CRL of a string). */
  crlPems: string[];
  crls: pkijs.CertificateRevocationList[];
  leaf: X509Certificate;
  /** Things an operator should hear about at start but that do not stop it. */
  warnings: string[];
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

  const caPem = readPemFile(caFile, 'trust anchors (tls.caFile)', ['CERTIFICATE']);
  const parse = (pems: string[], what: string, file: string) =>
    pems.map((p, i) => {
      try {
        return new X509Certificate(p);
      } catch (e) {
        throw new MssError('CERT_INVALID', { what, file, reason: `certificate #${i + 1} cannot be parsed (${(e as Error).message})` });
      }
    });
  const anchors = parse(splitPem(caPem, 'CERTIFICATE'), 'trust anchors (tls.caFile)', caFile);
  const intermediates = parse(sent.slice(1), 'TLS chain (tls.chainFile)', chainFile || certFile);
  if (!chainsTo(leaf, intermediates, anchors)) {
    warnings.push(`the TLS certificate ${certFile} does not chain to the CAs in ${caFile}: peers trusting only those will refuse it`);
  }

  const crlText = readPemFile(crlFile, 'certificate revocation list (tls.crlFile)', ['X509 CRL']);
  const crlPems = splitPem(crlText, 'X509 CRL');
  const crls = crlPems.map((p, i) => {
    try {
      return pkijs.CertificateRevocationList.fromBER(toArrayBuffer(pemDers(p, 'X509 CRL')[0]));
    } catch (e) {
      throw new MssError('CERT_INVALID', { what: 'certificate revocation list (tls.crlFile)', file: crlFile, reason: `CRL #${i + 1} cannot be parsed (${(e as Error).message})` });
    }
  });
  // A CRL must come from a CA we know: one that fails its signature is corrupt or forged
  // (error); one from a CA we do not know is useless but harmless (warning).
  const issuers = [...anchors, ...intermediates].map((x) => ({ x, name: parseCertificate(x.raw).subject }));
  crls.forEach((crl, i) => {
    const issuer = issuers.find((c) => c.name.isEqual(crl.issuer));
    const which = `CRL #${i + 1} in ${crlFile}`;
    if (!issuer) warnings.push(`${which} is issued by a CA that is neither in ${caFile} nor in the chain; it is ignored`);
    else {
      const signed = crlSignedBy(crl, issuer.x);
      if (signed === false) throw new MssError('CERT_INVALID', { what: 'certificate revocation list (tls.crlFile)', file: crlFile, reason: `CRL #${i + 1} does not carry a valid signature of its issuer` });
      if (signed === undefined) warnings.push(`${which} uses signature algorithm ${crl.signatureAlgorithm.algorithmId}, which is not checked here (OpenSSL still checks it in each handshake)`);
    }
  });
  for (const crl of crls) {
    const next = crl.nextUpdate?.value;
    if (next && next < now) warnings.push(`a CRL in ${crlFile} expired on ${next.toISOString()}: until it is refreshed, every client certificate from its CA is refused`);
  }
  return { certChainPem: sent.join(''), keyPem, caPem, crlPems, crls, leaf, warnings };
}

/** Signature checks, via the public keys, that leaf → intermediates → one of anchors. */
function chainsTo(leaf: X509Certificate, intermediates: X509Certificate[], anchors: X509Certificate[]): boolean {
  let current = leaf;
  for (let depth = 0; depth < 8; depth++) {
    if (anchors.some((a) => current.checkIssued(a) && current.verify(a.publicKey))) return true;
    const next = intermediates.find((i) => i !== current && current.checkIssued(i) && current.verify(i.publicKey));
    if (!next) return false;
    current = next;
  }
  return false;
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
function crlSignedBy(crl: pkijs.CertificateRevocationList, issuer: X509Certificate): boolean | undefined {
  const hash = SIG_HASH[crl.signatureAlgorithm.algorithmId];
  if (!hash) return undefined;
  return cryptoVerify(hash, crl.tbsView, issuer.publicKey, Buffer.from(crl.signatureValue.valueBlock.valueHexView));
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
    minVersion: 'TLSv1.2',
    ciphers: CIPHERS,
    honorCipherOrder: true,
    requestCert: o.requestCert ?? false,
    rejectUnauthorized: o.requestCert ? (o.rejectUnauthorized ?? true) : false,
  };
}

/**
 * Options for tls.connect to another operator: we present our certificate (the server
 * certificate has clientAuth), trust only tls.caFile, apply the CRLs, check the name.
 */
export function clientTlsOptions(m: TlsMaterial, o: { servername?: string; presentCertificate?: boolean } = {}): ConnectionOptions {
  return {
    ...(o.presentCertificate === false ? {} : { key: m.keyPem, cert: m.certChainPem }),
    ca: m.caPem,
    crl: m.crlPems,
    minVersion: 'TLSv1.2',
    ciphers: CIPHERS,
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
  /** good: a CRL from each issuer says not revoked; unknown: no CRL from some issuer. */
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
 * and whether a loaded CRL revokes it or one of the issuers it presented. The TLS layer has
 * already checked the chain; this gives the SMTP/IMAP fronts the names to check against
 * the liste blanche and the annuaire, and a revocation answer they can log.
 */
export function peerIdentity(peer: PeerInput, material: Pick<TlsMaterial, 'crls'>): PeerIdentity {
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

  // CRL_CHECK_ALL semantics: the leaf and every intermediate it presented.
  let revocation: PeerIdentity['revocation'] = 'good';
  let revokedAt: Date | undefined;
  for (const c of certs) {
    if (c.subject.isEqual(c.issuer)) continue; // a root is trusted or not; no CRL speaks for it
    const crl = material.crls.find((l) => l.issuer.isEqual(c.issuer));
    if (!crl) {
      revocation = revocation === 'revoked' ? revocation : 'unknown';
      continue;
    }
    const entry = crl.revokedCertificates?.find((r) => r.userCertificate.isEqual(c.serialNumber));
    if (entry) {
      revocation = 'revoked';
      revokedAt ??= entry.revocationDate.value;
    }
  }
  const x509 = new X509Certificate(ders[0]);
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

/** Node prints names one attribute per line; logs and errors want one line. */
const oneLine = (dn: string) => dn.split('\n').join(', ');
