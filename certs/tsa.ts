// The RFC 3161 timestamping authority: the journal seals its hash chain with tokens from
// it, and anybody can check a token with `openssl ts -verify`. pkijs builds and reads the
// ASN.1 (TimeStampReq/Resp, TSTInfo, CMS SignedData); Node's WebCrypto signs.
//
// What a token carries (RFC 3161 §2.4.2, RFC 5816): TSTInfo { policy, imprint, random
// 128-bit serial, genTime, accuracy, the request's nonce, the TSA's name }, signed with
// signed attributes contentType, messageDigest, signingTime and signingCertificateV2
// (ESSCertIDv2 binding the TSA certificate to the signature — `openssl ts -verify` refuses a
// token without it).

import { createHash, randomBytes, webcrypto, X509Certificate, createPrivateKey } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import type { Config } from '../core/config/index.js';
import { MssError } from '../core/errors.js';
import type { Timestamper, TokenVerifier } from '../core/journal/types.js';
import { readPemFile } from './files.js';
import { importSigningKey, parseCertificate, pemDers, toArrayBuffer, usePkijsEngine } from './pem.js';

const OID = {
  signedData: '1.2.840.113549.1.7.2',
  tstInfo: '1.2.840.113549.1.9.16.1.4',
  contentType: '1.2.840.113549.1.9.3',
  messageDigest: '1.2.840.113549.1.9.4',
  signingTime: '1.2.840.113549.1.9.5',
  signingCertificate: '1.2.840.113549.1.9.16.2.12',
  signingCertificateV2: '1.2.840.113549.1.9.16.2.47',
  extKeyUsage: '2.5.29.37',
  timeStamping: '1.3.6.1.5.5.7.3.8',
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
} as const;

/** Imprint algorithms we stamp. SHA-1 is refused (badAlg): collisions are practical, and a timestamp's worth is that the data cannot be swapped. */
const HASHES: Record<string, { name: 'sha256' | 'sha384' | 'sha512'; length: number }> = {
  '2.16.840.1.101.3.4.2.1': { name: 'sha256', length: 32 },
  '2.16.840.1.101.3.4.2.2': { name: 'sha384', length: 48 },
  '2.16.840.1.101.3.4.2.3': { name: 'sha512', length: 64 },
};

/** PKIFailureInfo bits (RFC 3161 §2.4.2). */
const FAIL = { badAlg: 0, badRequest: 2, badDataFormat: 5, unacceptedPolicy: 15, unacceptedExtension: 16, systemFailure: 25 } as const;
type Failure = keyof typeof FAIL;

const PKI_STATUS = { granted: 0, grantedWithMods: 1, rejection: 2 } as const;

export interface TsaOptions {
  certPem: string;
  keyPem: string;
  /** Certificates between the TSA certificate and the root, sent when the client asks (certReq). */
  chainPems?: string[];
  /** The TSA policy OID written in every token. */
  policyOid: string;
  /** Stated accuracy of genTime, in seconds (default 1). */
  accuracySeconds?: number;
  /** For error messages: where certPem and keyPem come from. */
  source?: { certFile: string; keyFile: string };
}

export interface Tsa extends Timestamper {
  /** DER TimeStampReq in, DER TimeStampResp out; bad input gets a rejection status, never a throw. */
  respond(reqDer: Uint8Array): Promise<Buffer>;
  /** A TimeStampResp (granted) over SHA-256(data), with the TSA certificate and chain. */
  stamp(data: Buffer): Promise<Buffer>;
  readonly policyOid: string;
  /** The TSA's own certificate, PEM (its expiry at /metrics: certs/expiry). */
  readonly certPem: string;
}

const positiveRandom = (n: number) => {
  const b = randomBytes(n);
  b[0] = (b[0] & 0x7f) | 0x40; // positive, and no leading zero byte to strip
  return b;
};

function firstCert(pem: string): pkijs.Certificate {
  const der = pemDers(pem, 'CERTIFICATE')[0];
  if (!der) throw new Error('no PEM certificate');
  return parseCertificate(der);
}

/**
 * Why this certificate cannot sign timestamps, or undefined when it can: RFC 3161 §2.3
 * asks for exactly one extendedKeyUsage, id-kp-timeStamping, marked critical.
 */
export function tsaCertificateProblem(cert: pkijs.Certificate): string | undefined {
  const eku = cert.extensions?.find((e) => e.extnID === OID.extKeyUsage);
  if (!eku) return 'it has no extendedKeyUsage extension (timeStamping required)';
  const purposes = (eku.parsedValue as pkijs.ExtKeyUsage | undefined)?.keyPurposes ?? [];
  if (!purposes.includes(OID.timeStamping)) return 'its extendedKeyUsage does not include timeStamping';
  if (purposes.length !== 1) return 'its extendedKeyUsage must be timeStamping only';
  if (!eku.critical) return 'its extendedKeyUsage extension is not marked critical';
  return undefined;
}

/** The built-in TSA. Checks at creation that the certificate may timestamp and that the key is its key. */
export async function createTsa(o: TsaOptions): Promise<Tsa> {
  usePkijsEngine();
  const certFile = o.source?.certFile ?? '(given in memory)';
  const bad = (reason: string, file = certFile) => new MssError('CERT_INVALID', { what: 'TSA certificate', file, reason });
  let cert: pkijs.Certificate;
  let x509: X509Certificate;
  try {
    cert = firstCert(o.certPem);
    x509 = new X509Certificate(o.certPem);
  } catch (e) {
    throw bad(`cannot parse it (${(e as Error).message})`);
  }
  const problem = tsaCertificateProblem(cert);
  if (problem) throw bad(problem);
  try {
    if (!x509.checkPrivateKey(createPrivateKey(o.keyPem))) throw bad('the private key does not belong to this certificate', o.source?.keyFile ?? certFile);
  } catch (e) {
    if (e instanceof MssError) throw e;
    throw new MssError('CERT_INVALID', { what: 'TSA private key', file: o.source?.keyFile ?? '(given in memory)', reason: (e as Error).message });
  }
  return createUncheckedTsa(o);
}

/**
 * The TSA without createTsa's checks: it signs with whatever certificate it is given.
 * Exists so tests can forge the tokens a verifier must refuse (a non-TSA signer); the
 * platform always goes through createTsa.
 */
export async function createUncheckedTsa(o: TsaOptions): Promise<Tsa> {
  usePkijsEngine();
  const cert = firstCert(o.certPem);
  const key = await importSigningKey(o.keyPem);
  const certDer = Buffer.from(pemDers(o.certPem, 'CERTIFICATE')[0]);
  const chain = (o.chainPems ?? []).flatMap((p) => pemDers(p, 'CERTIFICATE').map(parseCertificate));

  // ESSCertIDv2 { certHash = SHA-256(cert) (hashAlgorithm left at its DEFAULT, as DER requires), issuerSerial }.
  const signingCertificateV2 = new pkijs.Attribute({
    type: OID.signingCertificateV2,
    values: [
      new asn1js.Sequence({
        value: [
          new asn1js.Sequence({
            value: [
              new asn1js.Sequence({
                value: [
                  new asn1js.OctetString({ valueHex: createHash('sha256').update(certDer).digest() }),
                  new pkijs.IssuerSerial({
                    issuer: new pkijs.GeneralNames({ names: [new pkijs.GeneralName({ type: 4, value: cert.issuer })] }),
                    serialNumber: cert.serialNumber,
                  }).toSchema(),
                ],
              }),
            ],
          }),
        ],
      }),
    ],
  });

  const reject = (failure: Failure, text: string): Buffer => {
    const bit = FAIL[failure];
    const bytes = new Uint8Array(Math.floor(bit / 8) + 1);
    bytes[bytes.length - 1] = 0x80 >> bit % 8;
    const status = new pkijs.PKIStatusInfo({
      status: PKI_STATUS.rejection,
      statusStrings: [new asn1js.Utf8String({ value: text })],
      // A named BIT STRING in DER has no trailing zero bits: the unused ones follow our bit.
      failInfo: new asn1js.BitString({ valueHex: bytes, unusedBits: 7 - (bit % 8) }),
    });
    return Buffer.from(new pkijs.TimeStampResp({ status }).toSchema().toBER(false));
  };

  const grant = async (req: pkijs.TimeStampReq): Promise<Buffer> => {
    const genTime = new Date();
    const tstInfo = new pkijs.TSTInfo({
      version: 1,
      policy: o.policyOid,
      messageImprint: req.messageImprint,
      serialNumber: new asn1js.Integer({ valueHex: positiveRandom(16) }),
      genTime,
      accuracy: new pkijs.Accuracy({ seconds: o.accuracySeconds ?? 1 }),
      ...(req.nonce ? { nonce: req.nonce } : {}),
      tsa: new pkijs.GeneralName({ type: 4, value: cert.subject }),
    });
    const eContent = tstInfo.toSchema().toBER(false);
    const attributes = [
      new pkijs.Attribute({ type: OID.contentType, values: [new asn1js.ObjectIdentifier({ value: OID.tstInfo })] }),
      new pkijs.Attribute({ type: OID.signingTime, values: [new asn1js.UTCTime({ valueDate: genTime })] }),
      new pkijs.Attribute({ type: OID.messageDigest, values: [new asn1js.OctetString({ valueHex: await webcrypto.subtle.digest('SHA-256', eContent) })] }),
      signingCertificateV2,
    ];
    // SET OF in DER order: OpenSSL re-encodes the signed attributes before checking the
    // signature, so any other order would make a valid signature fail there.
    const der = (a: pkijs.Attribute) => Buffer.from(a.toSchema().toBER(false));
    attributes.sort((a, b) => Buffer.compare(der(a), der(b)));
    const signedData = new pkijs.SignedData({
      version: 3,
      encapContentInfo: new pkijs.EncapsulatedContentInfo({ eContentType: OID.tstInfo, eContent: new asn1js.OctetString({ valueHex: eContent }) }),
      signerInfos: [
        new pkijs.SignerInfo({
          version: 1,
          sid: new pkijs.IssuerAndSerialNumber({ issuer: cert.issuer, serialNumber: cert.serialNumber }),
          signedAttrs: new pkijs.SignedAndUnsignedAttributes({ type: 0, attributes }),
        }),
      ],
      ...(req.certReq ? { certificates: [cert, ...chain] } : {}),
    });
    await signedData.sign(key, 0, 'SHA-256');
    const token = new pkijs.ContentInfo({ contentType: OID.signedData, content: signedData.toSchema(true) });
    const resp = new pkijs.TimeStampResp({ status: new pkijs.PKIStatusInfo({ status: PKI_STATUS.granted }), timeStampToken: token });
    return Buffer.from(resp.toSchema().toBER(false));
  };

  const respond = async (reqDer: Uint8Array): Promise<Buffer> => {
    let req: pkijs.TimeStampReq;
    try {
      const parsed = asn1js.fromBER(toArrayBuffer(reqDer));
      if (parsed.offset === -1 || parsed.offset !== reqDer.byteLength) throw new Error('not a single DER value');
      req = new pkijs.TimeStampReq({ schema: parsed.result });
    } catch {
      return reject('badDataFormat', 'the request is not a DER-encoded TimeStampReq');
    }
    if (req.version !== 1) return reject('badRequest', `unsupported TimeStampReq version ${req.version}`);
    const alg = HASHES[req.messageImprint.hashAlgorithm.algorithmId];
    if (!alg) return reject('badAlg', `hash algorithm ${req.messageImprint.hashAlgorithm.algorithmId} is not accepted; use SHA-256, SHA-384 or SHA-512`);
    if (req.messageImprint.hashedMessage.valueBlock.valueHexView.byteLength !== alg.length) return reject('badDataFormat', `the ${alg.name} imprint must be ${alg.length} bytes`);
    if (req.reqPolicy && req.reqPolicy !== o.policyOid) return reject('unacceptedPolicy', `this TSA only issues tokens under policy ${o.policyOid}`);
    if (req.extensions?.length) return reject('unacceptedExtension', 'this TSA supports no request extension');
    try {
      return await grant(req);
    } catch {
      return reject('systemFailure', 'the TSA could not sign the token');
    }
  };

  return {
    policyOid: o.policyOid,
    certPem: o.certPem,
    respond,
    async stamp(data: Buffer) {
      const { der, nonce } = timestampRequest(data);
      const resp = await respond(der);
      checkGranted(resp, data, nonce, 'built-in TSA');
      return resp;
    },
  };
}

/** A TimeStampReq for SHA-256(data), asking for the TSA's certificate, with a fresh nonce. */
export function timestampRequest(data: Uint8Array): { der: Buffer; nonce: string } {
  const nonce = positiveRandom(8);
  const req = new pkijs.TimeStampReq({
    version: 1,
    messageImprint: new pkijs.MessageImprint({
      hashAlgorithm: new pkijs.AlgorithmIdentifier({ algorithmId: OID.sha256 }),
      hashedMessage: new asn1js.OctetString({ valueHex: createHash('sha256').update(data).digest() }),
    }),
    nonce: new asn1js.Integer({ valueHex: nonce }),
    certReq: true,
  });
  return { der: Buffer.from(req.toSchema().toBER(false)), nonce: nonce.toString('hex') };
}

interface ParsedToken {
  resp: pkijs.TimeStampResp;
  signedData: pkijs.SignedData;
  tstInfo: pkijs.TSTInfo;
}

/** Parse a TimeStampResp down to its TSTInfo; throws with a reason a person can act on. */
function parseResponse(tsr: Uint8Array): ParsedToken {
  let resp: pkijs.TimeStampResp;
  try {
    resp = pkijs.TimeStampResp.fromBER(toArrayBuffer(tsr));
  } catch {
    throw new Error('not a DER TimeStampResp');
  }
  const status = resp.status.status as number;
  if (status !== PKI_STATUS.granted && status !== PKI_STATUS.grantedWithMods) {
    const text = resp.status.statusStrings?.map((s) => s.valueBlock.value).join('; ');
    throw new Error(`the TSA refused the request (status ${status}${text ? `: ${text}` : ''})`);
  }
  if (!resp.timeStampToken || resp.timeStampToken.contentType !== OID.signedData) throw new Error('the response holds no CMS SignedData token');
  let signedData: pkijs.SignedData;
  let tstInfo: pkijs.TSTInfo;
  try {
    signedData = new pkijs.SignedData({ schema: resp.timeStampToken.content });
    if (signedData.encapContentInfo.eContentType !== OID.tstInfo || !signedData.encapContentInfo.eContent) throw new Error('content is not a TSTInfo');
    tstInfo = pkijs.TSTInfo.fromBER(signedData.encapContentInfo.eContent.getValue());
  } catch (e) {
    throw new Error(`the token is malformed (${(e as Error).message})`);
  }
  return { resp, signedData, tstInfo };
}

function imprintMatches(tstInfo: pkijs.TSTInfo, data: Uint8Array): boolean {
  const alg = HASHES[tstInfo.messageImprint.hashAlgorithm.algorithmId];
  if (!alg) return false;
  const expected = createHash(alg.name).update(data).digest();
  return Buffer.from(tstInfo.messageImprint.hashedMessage.valueBlock.valueHexView).equals(expected);
}

/** After stamp(): the answer must be granted, over our data, with our nonce (a replay or a mixed-up answer is not a seal). */
function checkGranted(tsr: Buffer, data: Buffer, nonce: string, target: string): void {
  let parsed: ParsedToken;
  try {
    parsed = parseResponse(tsr);
  } catch (e) {
    throw new MssError('TSA_UNAVAILABLE', { target, reason: (e as Error).message });
  }
  if (!imprintMatches(parsed.tstInfo, data)) throw new MssError('TSA_UNAVAILABLE', { target, reason: 'the token is over other data than requested' });
  const echoed = parsed.tstInfo.nonce ? Buffer.from(parsed.tstInfo.nonce.valueBlock.valueHexView).toString('hex') : undefined;
  if (echoed !== nonce) throw new MssError('TSA_UNAVAILABLE', { target, reason: 'the token does not carry our nonce' });
}

export interface VerifyTimestampOptions {
  /** Trust anchors (PEM, one or more certificates each). */
  caPems: string[];
  /** Intermediates that may complete the signer's chain when the token does not carry them. */
  untrustedPems?: string[];
  /** CRLs (PEM) to check the chain against; without them revocation is not checked. */
  crlPems?: string[];
}

/**
 * Check a DER TimeStampResp against data (TokenVerifier): imprint, CMS signature, the
 * signing-certificate attribute, the signer's chain to a trust anchor *at genTime* (a token
 * stays valid after its TSA certificate expires — that is the point of it), and the
 * signer's critical extendedKeyUsage timeStamping.
 */
export async function verifyTimestampResponse(tsr: Uint8Array, data: Uint8Array, opts: VerifyTimestampOptions): Promise<{ genTime: Date; serialNumber: string }> {
  usePkijsEngine();
  const fail = (reason: string) => new MssError('TSA_TOKEN_INVALID', { reason });
  let parsed: ParsedToken;
  try {
    parsed = parseResponse(tsr);
  } catch (e) {
    throw fail((e as Error).message);
  }
  const { signedData, tstInfo } = parsed;
  if (!imprintMatches(tstInfo, data)) throw fail('the token is over other data (message imprint differs)');

  const certsOf = (pems: string[] = []) => pems.flatMap((p) => pemDers(p, 'CERTIFICATE').map(parseCertificate));
  const anchors = certsOf(opts.caPems);
  const untrusted = certsOf(opts.untrustedPems);
  const embedded = (signedData.certificates ?? []).filter((c): c is pkijs.Certificate => c instanceof pkijs.Certificate);
  const signerInfo = signedData.signerInfos[0];
  if (!signerInfo || signedData.signerInfos.length !== 1) throw fail('the token must have exactly one signer');
  const sid = signerInfo.sid;
  if (!(sid instanceof pkijs.IssuerAndSerialNumber)) throw fail('the signer is not identified by issuer and serial number');
  const signer = [...embedded, ...untrusted, ...anchors].find((c) => c.issuer.isEqual(sid.issuer) && c.serialNumber.isEqual(sid.serialNumber));
  if (!signer) throw fail('the TSA certificate is neither in the token nor among the given certificates');

  // The CMS signature (pkijs looks for the signer among the token's certificates).
  if (!embedded.includes(signer)) signedData.certificates = [...(signedData.certificates ?? []), signer];
  try {
    const ok = await signedData.verify({ signer: 0, data: toArrayBuffer(data), checkChain: false });
    if (!ok) throw new Error('the signature does not match');
  } catch (e) {
    throw fail(`the signature is invalid (${(e as { message?: string }).message ?? String(e)})`);
  }

  // The signing-certificate attribute must name the certificate we verified with.
  const signerDer = Buffer.from(signer.toSchema().toBER(false));
  const attrs = signerInfo.signedAttrs?.attributes ?? [];
  const v2 = attrs.find((a) => a.type === OID.signingCertificateV2);
  const v1 = attrs.find((a) => a.type === OID.signingCertificate);
  if (!v2 && !v1) throw fail('the token has no signing-certificate attribute');
  try {
    // SigningCertificate(V2) ::= SEQUENCE { certs SEQUENCE OF ESSCertID(v2), … }; the first names the signer.
    const essCertId = ((v2 ?? v1)!.values[0] as asn1js.Sequence).valueBlock.value[0] as asn1js.Sequence;
    const first = essCertId.valueBlock.value[0] as asn1js.Sequence;
    const parts = first.valueBlock.value;
    let hashName = v2 ? 'sha256' : 'sha1';
    let hashIndex = 0;
    if (v2 && parts[0] instanceof asn1js.Sequence) {
      const algId = new pkijs.AlgorithmIdentifier({ schema: parts[0] }).algorithmId;
      hashName = HASHES[algId]?.name ?? (algId === OID.sha1 ? 'sha1' : '');
      hashIndex = 1;
      if (!hashName) throw new Error(`unknown hash ${algId}`);
    }
    const certHash = Buffer.from((parts[hashIndex] as asn1js.OctetString).valueBlock.valueHexView);
    if (!certHash.equals(createHash(hashName).update(signerDer).digest())) throw new Error('it names another certificate');
  } catch (e) {
    throw fail(`the signing-certificate attribute does not match the TSA certificate (${(e as Error).message})`);
  }

  const problem = tsaCertificateProblem(signer);
  if (problem) throw fail(`the signer's certificate is not a TSA certificate: ${problem}`);

  const engine = new pkijs.CertificateChainValidationEngine({
    trustedCerts: anchors,
    certs: [signer, ...embedded.filter((c) => c !== signer), ...untrusted],
    crls: (opts.crlPems ?? []).flatMap((p) => pemDers(p, 'X509 CRL').map((d) => pkijs.CertificateRevocationList.fromBER(toArrayBuffer(d)))),
    checkDate: tstInfo.genTime,
  });
  const chain = await engine.verify().catch((e: { resultMessage?: string }) => ({ result: false, resultMessage: e?.resultMessage ?? String(e) }));
  if (!chain.result) throw fail(`the TSA certificate does not chain to a trusted root (${chain.resultMessage})`);

  return { genTime: tstInfo.genTime, serialNumber: Buffer.from(tstInfo.serialNumber.valueBlock.valueHexView).toString('hex') };
}

/** TokenVerifier over fixed trust anchors. */
export function createTokenVerifier(opts: VerifyTimestampOptions): TokenVerifier {
  return { verify: (tsr, data) => verifyTimestampResponse(tsr, data, opts) };
}

/** An external RFC 3161 TSA over HTTP (RFC 3161 §3.4: POST application/timestamp-query). */
export function createHttpTimestamper(url: string, opts: { timeoutMs?: number } = {}): Timestamper {
  return {
    async stamp(data: Buffer) {
      const { der, nonce } = timestampRequest(data);
      let body: Buffer;
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/timestamp-query', accept: 'application/timestamp-reply' },
          body: der,
          signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
        });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        const type = res.headers.get('content-type') ?? '';
        if (!type.startsWith('application/timestamp-reply')) throw new Error(`answered ${type || 'no content type'} instead of application/timestamp-reply`);
        body = Buffer.from(await res.arrayBuffer());
      } catch (e) {
        throw new MssError('TSA_UNAVAILABLE', { target: url, reason: (e as Error).message }, { cause: e });
      }
      checkGranted(body, data, nonce, url);
      return body;
    },
  };
}

/** The built-in TSA from the files named by tsa.* in the configuration. */
export async function loadTsa(config: { tsa: Pick<Config['tsa'], 'certFile' | 'keyFile' | 'chainFile' | 'policyOid'> }): Promise<Tsa> {
  const { certFile, keyFile, chainFile, policyOid } = config.tsa;
  const certPem = readPemFile(certFile, 'TSA certificate (tsa.certFile)', ['CERTIFICATE']);
  const keyPem = readPemFile(keyFile, 'TSA private key (tsa.keyFile)', ['PRIVATE KEY', 'RSA PRIVATE KEY', 'EC PRIVATE KEY']);
  const chainPem = chainFile ? readPemFile(chainFile, 'TSA chain (tsa.chainFile)', ['CERTIFICATE']) : '';
  return createTsa({ certPem, keyPem, chainPems: chainPem ? [chainPem] : [], policyOid, source: { certFile, keyFile } });
}
