// Application certificates registered for APP boxes: what is stored and compared. The
// fingerprint (SHA-256 of the DER) is the identity; the chain, validity, usage and
// revocation are checked at registration (certs/client-cert.ts) and again by the TLS front
// (certs/tls.ts) at every login, before the policy ever sees the fingerprint.
import { X509Certificate } from 'node:crypto';
import { MssError } from '../../core/errors.js';

export interface CertificateInfo {
  fingerprint: string;
  subject: string;
  serial: string;
  issuer: string;
  notBefore: Date;
  notAfter: Date;
  /** The first certificate of the input, re-encoded as one PEM block. */
  pem: string;
  /** The subject's CN, when there is one. */
  commonName: string | null;
}

/** Lower-case hex SHA-256 of the DER, no colons: the form stored and compared. */
export const fingerprintOf = (cert: X509Certificate) => cert.fingerprint256.replace(/:/g, '').toLowerCase();

/** Node prints DNs one attribute per line; the journal and the API show them RFC 4514-like. */
export const oneLineDn = (dn: string) => dn.split('\n').filter(Boolean).join(', ');

export function readCertificate(pemOrCert: string | X509Certificate): CertificateInfo {
  let cert: X509Certificate;
  if (typeof pemOrCert === 'string') {
    const block = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pemOrCert);
    if (!block) throw new MssError('CERT_UNUSABLE', { reason: 'no PEM certificate block (-----BEGIN CERTIFICATE-----) in the upload' });
    try {
      cert = new X509Certificate(block[0]);
    } catch (e) {
      throw new MssError('CERT_UNUSABLE', { reason: `the PEM block is not a certificate (${(e as Error).message})` });
    }
  } else cert = pemOrCert;
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject);
  return {
    fingerprint: fingerprintOf(cert),
    subject: oneLineDn(cert.subject),
    serial: cert.serialNumber.toLowerCase(),
    issuer: oneLineDn(cert.issuer),
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    pem: cert.toString(),
    commonName: cn ? cn[1] : null,
  };
}
