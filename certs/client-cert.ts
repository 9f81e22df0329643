// Checks a client certificate before an operator binds it to a mailbox (an application's
// certificate on an APP box): what every TLS handshake will check — a chain to a root of
// the trust bundle, validity, revocation by CRL — and what a TLS client certificate must be
// fit for. A certificate that could never log in is refused here, with its reason, instead
// of being stored. Path validation is pkijs's (RFC 5280: CA flags, name chaining, validity
// of every authority, name constraints, policies), plus the path length constraint.

import { X509Certificate } from 'node:crypto';
import * as pkijs from 'pkijs';
import type { Config } from '../core/config/index.js';
import { MssError } from '../core/errors.js';
import { pemDers, toArrayBuffer, usePkijsEngine } from './pem.js';
import { buildChain, chainRevocation, loadCrls, oneLine, trustBundle, type TrustBundle } from './trust.js';

export interface TrustStore extends Pick<TrustBundle, 'anchors' | 'intermediates'> {
  crls: pkijs.CertificateRevocationList[];
}

/** The trust bundle and CRLs as the files hold them now (a refreshed CRL counts at once). */
export function loadTrustStore(tls: Pick<Config['tls'], 'caFile' | 'crlFile'>): TrustStore {
  const bundle = trustBundle(tls.caFile);
  return { anchors: bundle.anchors, intermediates: bundle.intermediates, crls: loadCrls(tls.crlFile, [...bundle.anchors, ...bundle.intermediates]).crls };
}

export interface CheckedCertificate {
  leaf: X509Certificate;
  /** leaf → … → root. */
  chain: X509Certificate[];
  /** Every OU and organizationIdentifier of the subject: where IGC-Santé writes the structure id. */
  organisationIds: string[];
}

const EKU: Record<string, string> = {
  '1.3.6.1.5.5.7.3.1': 'serverAuth',
  '1.3.6.1.5.5.7.3.2': 'clientAuth',
  '1.3.6.1.5.5.7.3.3': 'codeSigning',
  '1.3.6.1.5.5.7.3.4': 'emailProtection',
  '1.3.6.1.5.5.7.3.8': 'timeStamping',
  '1.3.6.1.5.5.7.3.9': 'OCSPSigning',
};
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const ANY_EKU = '2.5.29.37.0';

/** The extendedKeyUsage purposes of a certificate, or undefined when it has none (any use). */
const extKeyUsage = (c: pkijs.Certificate) => (c.extensions?.find((e) => e.extnID === '2.5.29.37')?.parsedValue as pkijs.ExtKeyUsage | undefined)?.keyPurposes;

const pk = (x: X509Certificate) => pkijs.Certificate.fromBER(toArrayBuffer(x.raw));

/** The subject's values of one attribute type. */
const attributes = (c: pkijs.Certificate, oid: string) => c.subject.typesAndValues.filter((tv) => tv.type === oid).map((tv) => String(tv.value.valueBlock.value).trim());

/** Why this leaf cannot authenticate a TLS client, or undefined when it can (OpenSSL's "sslclient" purpose). */
function usageProblem(leaf: X509Certificate, c: pkijs.Certificate): string | undefined {
  if (leaf.ca) return 'it is a certification authority (basicConstraints CA:TRUE), not the certificate of an application';
  const ku = c.extensions?.find((e) => e.extnID === '2.5.29.15')?.parsedValue as { valueBlock: { valueHexView: Uint8Array } } | undefined;
  if (ku && !((ku.valueBlock.valueHexView[0] ?? 0) & 0x80)) return 'its keyUsage lacks digitalSignature, which a TLS client signs its handshake with';
  const eku = extKeyUsage(c);
  if (eku && !eku.some((p) => p === CLIENT_AUTH || p === ANY_EKU)) {
    return `its extendedKeyUsage (${eku.map((p) => EKU[p] ?? p).join(', ')}) does not include TLS client authentication (clientAuth)`;
  }
  return undefined;
}

/**
 * A server's certificate (an operator's MX, a web site) is presented by that server on every
 * TLS connection it makes: bound to a box, it would log that server in as the box. Checked
 * after the chain, so a certificate from outside the trust space is refused as such.
 */
function serverCertificateProblem(c: pkijs.Certificate): string | undefined {
  if (!extKeyUsage(c)?.includes(SERVER_AUTH)) return undefined;
  return 'its extendedKeyUsage includes TLS server authentication (serverAuth): it is the certificate of a server (an operator\'s MX presents such a certificate on every connection), not of an application; register a client certificate (clientAuth only)';
}

/** RFC 5280 §4.2.1.9: at most pathLenConstraint authorities (below it, not self-issued) before the leaf. */
function pathLengthProblem(chain: X509Certificate[]): string | undefined {
  for (let i = 2; i < chain.length; i++) {
    const bc = pk(chain[i]).extensions?.find((e) => e.extnID === '2.5.29.19')?.parsedValue as pkijs.BasicConstraints | undefined;
    const limit = bc?.pathLenConstraint;
    if (typeof limit === 'number' && i - 1 > limit) return `${oneLine(chain[i].subject)} may have at most ${limit} authorities below it (pathLenConstraint)`;
  }
  return undefined;
}

/**
 * The leaf of `pem` (the certificates after it, if any, help build its chain), checked at
 * `now` against the trust store. Throws one catalogue error per reason: CERT_UNUSABLE (not
 * a certificate), CERT_NOT_YET_VALID, CERT_EXPIRED, CERT_WRONG_USAGE, CERT_UNTRUSTED,
 * CERT_REVOKED, CERT_REVOCATION_UNKNOWN.
 */
export async function checkClientCertificate(pem: string, trust: TrustStore, now = new Date()): Promise<CheckedCertificate> {
  const ders = pemDers(pem, 'CERTIFICATE');
  if (!ders.length) throw new MssError('CERT_UNUSABLE', { reason: 'no PEM certificate block (-----BEGIN CERTIFICATE-----) in the upload' });
  const sent = ders.map((d, i) => {
    try {
      return new X509Certificate(d);
    } catch (e) {
      throw new MssError('CERT_UNUSABLE', { reason: `PEM block #${i + 1} is not a certificate (${(e as Error).message})` });
    }
  });
  const leaf = sent[0];
  const leafPk = pk(leaf);
  const subject = oneLine(leaf.subject);
  const from = new Date(leaf.validFrom);
  const to = new Date(leaf.validTo);
  if (from > now) throw new MssError('CERT_NOT_YET_VALID', { subject, date: from.toISOString() });
  if (to <= now) throw new MssError('CERT_EXPIRED', { subject, date: to.toISOString() });
  const usage = usageProblem(leaf, leafPk);
  if (usage) throw new MssError('CERT_WRONG_USAGE', { subject, why: usage });

  const chain = buildChain(leaf, sent.slice(1), trust);
  if (!chain) throw new MssError('CERT_UNTRUSTED', { subject, why: `no chain leads from its issuer (${oneLine(leaf.issuer)}) to a root of the trust bundle` });
  usePkijsEngine();
  const engine = new pkijs.CertificateChainValidationEngine({
    trustedCerts: chain.slice(-1).map(pk),
    // pkijs takes the last of these as the end-entity certificate.
    certs: [...chain.slice(1, -1).map(pk), leafPk],
    checkDate: now,
  });
  const verdict = await engine.verify();
  if (!verdict.result) throw new MssError('CERT_UNTRUSTED', { subject, why: `its chain does not validate (${verdict.resultMessage})` });
  const pathLen = pathLengthProblem(chain);
  if (pathLen) throw new MssError('CERT_UNTRUSTED', { subject, why: pathLen });

  const revocation = chainRevocation(chain, trust.crls, now);
  if (revocation.status === 'revoked') throw new MssError('CERT_REVOKED', { subject: revocation.subject, date: revocation.revokedAt!.toISOString() });
  if (revocation.status === 'unknown') throw new MssError('CERT_REVOCATION_UNKNOWN', { subject, why: revocation.why });
  const server = serverCertificateProblem(leafPk);
  if (server) throw new MssError('CERT_WRONG_USAGE', { subject, why: server });

  const organisationIds = [...attributes(leafPk, '2.5.4.11'), ...attributes(leafPk, '2.5.4.97')].filter(Boolean);
  return { leaf, chain, organisationIds };
}
