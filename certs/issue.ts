// Minting certificates in the shapes IGC-Santé uses, from an authority we hold the key of.
// node-forge builds and signs the X.509 structures; keys come from Node's native RSA
// generator and signatures from Node's native RSA (forge's pure-JS arithmetic takes
// seconds per 3072-bit key).
//
// Subject shapes, as seen on real IGC-Santé certificates (see README "certificates"):
//   server / operator:  CN=<FQDN>, OU=<structure id>, O=<organisation>, C=FR
//                       (the liste blanche's DNCertificatOperateur has this shape)
//   personal (CPS):     C=FR, title=<profession>, SN=<nom>, GN=<prénom>, CN=<IDNPS>
//                       where IDNPS = "8" + the 11-digit RPPS number; no O/OU
//   organisation/app:   CN=<application name>, OU=<structure id>, O=<organisation>, C=FR
//                       where structure id = "1" + FINESS or "3" + SIRET
// IGC-Santé puts SN+GN+CN of a personal certificate in one multi-valued RDN; forge only
// writes single-valued RDNs, so ours carry the same attributes as separate RDNs in the same
// order. Readers must look attributes up by type (they have to anyway: older CPS
// certificates put the id in serialNumber), as `peerIdentity()` in tls.ts does.

import { createPublicKey, generateKeyPair, randomBytes, sign as cryptoSign } from 'node:crypto';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { MssError } from '../core/errors.js';

const { pki, asn1 } = forge;
const generateKeyPairAsync = promisify(generateKeyPair);

/** An authority we can issue from: its certificate and private key, PEM. */
export interface CertAuthority {
  certPem: string;
  keyPem: string;
}

export interface IssuedCertificate {
  certPem: string;
  /** PKCS#8 PEM. */
  keyPem: string;
  /** Hex, as in `openssl x509 -serial`. */
  serialNumber: string;
}

export type LeafSpec =
  | {
      /** An operator's server certificate: also its client certificate for MX-to-MX mutual TLS. */
      type: 'server';
      domain: string;
      organisation: string;
      organisationId?: string;
      /** Extra DNS names besides the domain (hostnames, other served domains). */
      dnsNames?: string[];
      ipAddresses?: string[];
    }
  | {
      /** A health professional (CPS-like certificate). */
      type: 'personal';
      /** 11-digit RPPS number, or the 12-digit national id "8" + RPPS. */
      rpps: string;
      surname: string;
      givenName: string;
      profession?: string;
      /** The professional's MSSanté address, as an rfc822Name SAN (for S/MIME). */
      email?: string;
    }
  | {
      /** The software behind a technical (applicative) BAL: IGC-Santé "organisation" certificate. */
      type: 'application';
      name: string;
      organisation: string;
      /** FINESS (9 characters), SIRET (14 digits), or an already prefixed structure id. */
      organisationId: string;
      email?: string;
    }
  | {
      /** A timestamping unit (RFC 3161): only extendedKeyUsage timeStamping, critical. */
      type: 'tsa';
      name: string;
      organisation: string;
      organisationId?: string;
    };

export interface IssueOptions {
  keyBits?: number;
  /** Certify this existing key (PEM) instead of generating one (renewals). */
  keyPem?: string;
  validityDays?: number;
  notBefore?: Date;
  notAfter?: Date;
}

/** Placeholder structure id ("3" + a SIRET-shaped number) for the development PKI. */
export const DEV_STRUCTURE_ID = '399999999900001';

const OID = {
  CN: '2.5.4.3',
  SN: '2.5.4.4',
  C: '2.5.4.6',
  O: '2.5.4.10',
  OU: '2.5.4.11',
  title: '2.5.4.12',
  GN: '2.5.4.42',
} as const;

type Rdn = [keyof typeof OID, string];

const DAY = 86_400_000;
/** Leaves start a little in the past so that a peer whose clock is behind still accepts them. */
const SKEW = 5 * 60_000;

/**
 * A new RSA key, PKCS#8 PEM. Asynchronous: generation runs on libuv's thread pool, so the
 * dozen keys of a dev PKI are made in parallel (prime search dominates the cost).
 */
export async function newRsaKey(bits: number): Promise<string> {
  const { privateKey } = await generateKeyPairAsync('rsa', {
    modulusLength: bits,
    publicExponent: 0x10001,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return privateKey;
}

/** Random positive 128-bit serial; the top byte is never 0 so the DER INTEGER stays minimal. */
export function randomSerial(): string {
  const b = randomBytes(16);
  b[0] = (b[0] & 0x7f) | 0x40;
  return b.toString('hex');
}

function subjectAttrs(rdns: Rdn[]): forge.pki.CertificateField[] {
  // Country is a PrintableString by definition; everything else UTF8String, since French
  // names and professions carry accents ("Médecin").
  return rdns.map(([k, value]) => ({
    type: OID[k],
    value,
    valueTagClass: (k === 'C' ? asn1.Type.PRINTABLESTRING : asn1.Type.UTF8) as unknown as forge.asn1.Class,
  }));
}

/**
 * The issuer's subject, ready to be written again as our issuer name. forge keeps parsed
 * UTF8String values as raw UTF-8 bytes but encodes values on output, so they are decoded
 * first; otherwise accents would be encoded twice and the names would no longer match.
 */
function issuerAttrs(issuer: forge.pki.Certificate): forge.pki.CertificateField[] {
  return issuer.subject.attributes.map((a) => ({
    type: a.type,
    value: (a.valueTagClass as unknown) === asn1.Type.UTF8 ? forge.util.decodeUtf8(a.value as string) : a.value,
    valueTagClass: a.valueTagClass,
  }));
}

function subjectKeyId(cert: forge.pki.Certificate): string {
  const ext = cert.getExtension('subjectKeyIdentifier') as { subjectKeyIdentifier?: string } | null;
  return ext?.subjectKeyIdentifier ? forge.util.hexToBytes(ext.subjectKeyIdentifier) : cert.generateSubjectKeyIdentifier().getBytes();
}

/**
 * forge's cert.sign(key, md) feeds the TBSCertificate to md.update and asks key.sign(md)
 * for the signature: these two stand-ins collect the bytes and sign them with Node's
 * native RSA, ~50x faster than forge's JavaScript big-number arithmetic.
 */
function nativeSigner(keyPem: string): { md: forge.md.MessageDigest; key: forge.pki.rsa.PrivateKey } {
  let tbs = '';
  const md = {
    algorithm: 'sha256',
    update(bytes: string) {
      tbs += bytes;
      return md;
    },
  };
  const key = { sign: () => cryptoSign('sha256', Buffer.from(tbs, 'binary'), keyPem).toString('binary') };
  return { md: md as unknown as forge.md.MessageDigest, key: key as unknown as forge.pki.rsa.PrivateKey };
}

interface BuildOptions {
  subject: Rdn[];
  keyPem: string;
  /** Absent: self-signed. */
  issuer?: CertAuthority;
  notBefore: Date;
  notAfter: Date;
  extensions: object[];
}

function build(o: BuildOptions): { certPem: string; serialNumber: string } {
  const cert = pki.createCertificate();
  cert.serialNumber = randomSerial();
  cert.validity.notBefore = o.notBefore;
  cert.validity.notAfter = o.notAfter;
  cert.publicKey = pki.publicKeyFromPem(createPublicKey(o.keyPem).export({ type: 'spki', format: 'pem' }) as string);
  cert.setSubject(subjectAttrs(o.subject));
  const issuerCert = o.issuer ? pki.certificateFromPem(o.issuer.certPem) : undefined;
  cert.setIssuer(issuerCert ? issuerAttrs(issuerCert) : subjectAttrs(o.subject));
  const aki = issuerCert ? subjectKeyId(issuerCert) : cert.generateSubjectKeyIdentifier().getBytes();
  cert.setExtensions([...o.extensions, { name: 'subjectKeyIdentifier' }, { name: 'authorityKeyIdentifier', keyIdentifier: aki }]);
  const { md, key } = nativeSigner(o.issuer?.keyPem ?? o.keyPem);
  cert.sign(key, md);
  return { certPem: pki.certificateToPem(cert), serialNumber: cert.serialNumber };
}

export interface AuthorityOptions {
  commonName: string;
  organisation: string;
  /** Absent: a self-signed root. */
  issuer?: CertAuthority;
  /** pathLenConstraint; 0 for an intermediate that only signs leaves. */
  pathLen?: number;
  keyBits: number;
  notBefore: Date;
  notAfter: Date;
}

/** A certification authority: basicConstraints CA:true and keyUsage keyCertSign+cRLSign, both critical. */
export async function createAuthority(o: AuthorityOptions): Promise<IssuedCertificate> {
  const keyPem = await newRsaKey(o.keyBits);
  const { certPem, serialNumber } = build({
    subject: [
      ['C', 'FR'],
      ['O', o.organisation],
      ['OU', 'IGC-SANTE DEV'],
      ['CN', o.commonName],
    ],
    keyPem,
    issuer: o.issuer,
    notBefore: o.notBefore,
    notAfter: o.notAfter,
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true, ...(o.pathLen !== undefined ? { pathLenConstraint: o.pathLen } : {}) },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    ],
  });
  return { certPem, keyPem, serialNumber };
}

/** "8" + RPPS: the national id (IDNPS) IGC-Santé writes in a professional's CN. */
export function nationalPsId(rpps: string): string {
  const id = rpps.trim();
  if (/^\d{11}$/.test(id)) return '8' + id;
  if (/^8\d{11}$/.test(id)) return id;
  throw new MssError('BAD_REQUEST', { reason: `"${rpps}" is not an RPPS number (11 digits, or 12 digits starting with 8)` });
}

/** The national structure id IGC-Santé writes in OU: "1" + FINESS or "3" + SIRET. */
export function structureId(id: string): string {
  const s = id.trim().toUpperCase();
  if (/^\d{14}$/.test(s)) return '3' + s; // SIRET
  if (/^(\d{2}|2A|2B)\d{7}$/.test(s)) return '1' + s; // FINESS (Corsica: 2A/2B)
  if (/^[1-4][0-9A-Z]{9,16}$/.test(s)) return s; // already prefixed (1 FINESS, 2 SIREN, 3 SIRET, 4 RPPS-rang)
  throw new MssError('BAD_REQUEST', { reason: `"${id}" is not a structure id (FINESS: 9 characters, SIRET: 14 digits, or "1"/"3" + either)` });
}

function leafShape(spec: LeafSpec): { subject: Rdn[]; extensions: object[] } {
  const san = (dns: string[], ips: string[] = [], emails: string[] = []) => ({
    name: 'subjectAltName',
    altNames: [...new Set(dns)].map((value) => ({ type: 2, value })).concat(
      ips.map((ip) => ({ type: 7, ip }) as never),
      emails.map((value) => ({ type: 1, value })),
    ),
  });
  switch (spec.type) {
    case 'server':
      return {
        subject: [
          ['C', 'FR'],
          ['O', spec.organisation],
          ['OU', spec.organisationId ?? DEV_STRUCTURE_ID],
          ['CN', spec.domain],
        ],
        extensions: [
          { name: 'basicConstraints', cA: false, critical: true },
          { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
          // serverAuth for the MX/IMAP/HTTPS listeners, clientAuth because an operator
          // presents the same certificate when it delivers to another operator's MX.
          { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
          san([spec.domain, ...(spec.dnsNames ?? [])], spec.ipAddresses),
        ],
      };
    case 'personal': {
      const email = spec.email ? [spec.email] : [];
      return {
        subject: [
          ['C', 'FR'],
          ['title', spec.profession ?? 'Médecin'],
          ['SN', spec.surname],
          ['GN', spec.givenName],
          ['CN', nationalPsId(spec.rpps)],
        ],
        extensions: [
          { name: 'basicConstraints', cA: false, critical: true },
          { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
          { name: 'extKeyUsage', clientAuth: true, emailProtection: true },
          ...(email.length ? [san([], [], email)] : []),
        ],
      };
    }
    case 'application':
      return {
        subject: [
          ['C', 'FR'],
          ['O', spec.organisation],
          ['OU', structureId(spec.organisationId)],
          ['CN', spec.name],
        ],
        extensions: [
          { name: 'basicConstraints', cA: false, critical: true },
          { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
          { name: 'extKeyUsage', clientAuth: true },
          ...(spec.email ? [san([], [], [spec.email])] : []),
        ],
      };
    case 'tsa':
      return {
        subject: [
          ['C', 'FR'],
          ['O', spec.organisation],
          ['OU', spec.organisationId ?? DEV_STRUCTURE_ID],
          ['CN', spec.name],
        ],
        extensions: [
          { name: 'basicConstraints', cA: false, critical: true },
          { name: 'keyUsage', digitalSignature: true, nonRepudiation: true, critical: true },
          // RFC 3161 §2.3: the TSA certificate has exactly this one EKU, marked critical.
          { name: 'extKeyUsage', timeStamping: true, critical: true },
        ],
      };
  }
}

/** A fresh key and a certificate of the given shape, signed by issuer. */
export async function issueCertificate(issuer: CertAuthority, spec: LeafSpec, opts: IssueOptions = {}): Promise<IssuedCertificate> {
  const { subject, extensions } = leafShape(spec); // first: a bad id fails before a key is made
  const keyPem = opts.keyPem ?? (await newRsaKey(opts.keyBits ?? 3072));
  const notBefore = opts.notBefore ?? new Date(Date.now() - SKEW);
  const notAfter = opts.notAfter ?? new Date(notBefore.getTime() + (opts.validityDays ?? 825) * DAY);
  const { certPem, serialNumber } = build({ subject, keyPem, issuer, notBefore, notAfter, extensions });
  return { certPem, keyPem, serialNumber };
}
