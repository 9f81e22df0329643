// Certificate revocation lists (RFC 5280 §5), built and read with pkijs: node-forge has no
// CRL support. Serial numbers are kept as the hex of the INTEGER's DER content bytes, so a
// serial read from a certificate or an old CRL is written back byte for byte.

import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import type { CertAuthority } from './issue.js';
import { derToPem, importSigningKey, parseCertificate, pemDers, toArrayBuffer, usePkijsEngine } from './pem.js';

export interface RevokedEntry {
  /** Hex of the serial number's DER content bytes. */
  serial: string;
  date: Date;
}

/** RFC 5280: UTCTime up to 2049, GeneralizedTime from 2050 on. */
const time = (d: Date) => new pkijs.Time({ type: d.getUTCFullYear() < 2050 ? pkijs.TimeType.UTCTime : pkijs.TimeType.GeneralizedTime, value: d });

const serialHex = (i: asn1js.Integer) => Buffer.from(i.valueBlock.valueHexView).toString('hex');

/** Serial number of a certificate (PEM), as RevokedEntry.serial expects it. */
export function certificateSerial(certPem: string): string {
  return serialHex(parseCertificate(pemDers(certPem, 'CERTIFICATE')[0]).serialNumber);
}

export interface CrlOptions {
  thisUpdate?: Date;
  nextUpdate: Date;
}

/**
 * A CRL signed by issuer listing revoked. It carries authorityKeyIdentifier (so verifiers
 * find the right key when an authority is renewed) and a cRLNumber that grows with time,
 * as RFC 5280 asks of conforming issuers.
 */
export async function signCrl(issuer: CertAuthority, revoked: RevokedEntry[], opts: CrlOptions): Promise<string> {
  usePkijsEngine();
  const issuerCert = parseCertificate(pemDers(issuer.certPem, 'CERTIFICATE')[0]);
  const ski = issuerCert.extensions?.find((e) => e.extnID === '2.5.29.14')?.parsedValue as asn1js.OctetString | undefined;
  const thisUpdate = opts.thisUpdate ?? new Date();
  const crl = new pkijs.CertificateRevocationList({
    version: 1,
    issuer: issuerCert.subject,
    thisUpdate: time(thisUpdate),
    nextUpdate: time(opts.nextUpdate),
    // RFC 5280 §5.1.2.6: absent, not empty, when nothing is revoked.
    ...(revoked.length
      ? {
          revokedCertificates: revoked.map(
            (r) => new pkijs.RevokedCertificate({ userCertificate: new asn1js.Integer({ valueHex: Buffer.from(r.serial, 'hex') }), revocationDate: time(r.date) }),
          ),
        }
      : {}),
    crlExtensions: new pkijs.Extensions({
      extensions: [
        ...(ski
          ? [
              new pkijs.Extension({
                extnID: '2.5.29.35',
                critical: false,
                extnValue: new pkijs.AuthorityKeyIdentifier({ keyIdentifier: new asn1js.OctetString({ valueHex: ski.valueBlock.valueHexView }) }).toSchema().toBER(false),
              }),
            ]
          : []),
        new pkijs.Extension({ extnID: '2.5.29.20', critical: false, extnValue: asn1js.Integer.fromBigInt(BigInt(thisUpdate.getTime())).toBER(false) }),
      ],
    }),
  });
  await crl.sign(await importSigningKey(issuer.keyPem), 'SHA-256');
  return derToPem(crl.toSchema(true).toBER(false), 'X509 CRL');
}

/** Every CRL in a PEM text (a file may hold the CRLs of several authorities). */
export function parseCrls(pem: string): pkijs.CertificateRevocationList[] {
  return pemDers(pem, 'X509 CRL').map((der) => pkijs.CertificateRevocationList.fromBER(toArrayBuffer(der)));
}

export function revokedEntries(crl: pkijs.CertificateRevocationList): RevokedEntry[] {
  return (crl.revokedCertificates ?? []).map((r) => ({ serial: serialHex(r.userCertificate), date: r.revocationDate.value }));
}

/** The CRL in the list issued by this certificate's subject (PEM), if any. */
export function crlIssuedBy(crls: pkijs.CertificateRevocationList[], issuerCertPem: string): pkijs.CertificateRevocationList | undefined {
  const subject = parseCertificate(pemDers(issuerCertPem, 'CERTIFICATE')[0]).subject;
  return crls.find((c) => c.issuer.isEqual(subject));
}
