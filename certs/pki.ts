// The development PKI: a small copy of IGC-Santé's shape (root → intermediate → leaves, a
// CRL, a TSA certificate) so that every TLS, mutual-TLS and timestamping path runs for real
// on a laptop or in CI. Production takes its certificates from files (core/config tls.*,
// tsa.*); nothing outside this file knows the dev CA exists.

import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { usesDevPki, type Config } from '../core/config/index.js';
import type { Logger } from '../core/logger.js';
import { certificateSerial, crlIssuedBy, parseCrls, revokedEntries, signCrl, type RevokedEntry } from './crl.js';
import { createAuthority, DEV_STRUCTURE_ID, issueCertificate, type CertAuthority, type IssuedCertificate, type IssueOptions, type LeafSpec } from './issue.js';

export { issueCertificate, nationalPsId, structureId, DEV_STRUCTURE_ID, newRsaKey, type CertAuthority, type IssuedCertificate, type IssueOptions, type LeafSpec } from './issue.js';

/** The leaves of the dev PKI issued by the intermediate. */
export const DEV_LEAVES = ['server', 'peer-operator', 'personal', 'application', 'tsa', 'expired', 'revoked'] as const;
export type DevLeaf = (typeof DEV_LEAVES)[number] | 'foreign';

/** The professional of the dev `personal` certificate; "999…" ids are never given to real people. */
export const DEV_RPPS = '99999999901';

export interface InitDevPkiOptions {
  dir: string;
  /** The operator's mail domain: CN of the server certificate. */
  domain: string;
  /** Domain of the fake peer operator (default peer.<domain>). */
  peerDomain?: string;
  /** Extra DNS names for the server certificate (the public hostname, other served domains). */
  dnsNames?: string[];
  keyBits?: number;
  validityDays?: number;
  organisation?: string;
  /** Recreate everything, even files that exist. */
  force?: boolean;
}

export interface DevPkiPaths {
  dir: string;
  ca: string;
  caKey: string;
  intermediate: string;
  intermediateKey: string;
  /** intermediate + root: what a verifier of our leaves needs. */
  chain: string;
  crl: string;
  foreignCa: string;
  foreignCaKey: string;
  leaves: Record<DevLeaf, { cert: string; key: string }>;
}

export interface DevPki {
  paths: DevPkiPaths;
  /** File names (not paths) written by this call, in order; empty when everything existed. */
  created: string[];
}

export function devPkiPaths(dir: string): DevPkiPaths {
  const f = (name: string) => join(dir, name);
  const leaves = Object.fromEntries([...DEV_LEAVES, 'foreign'].map((n) => [n, { cert: f(`${n}.pem`), key: f(`${n}.key`) }])) as DevPkiPaths['leaves'];
  return {
    dir,
    ca: f('ca.pem'),
    caKey: f('ca.key'),
    intermediate: f('intermediate.pem'),
    intermediateKey: f('intermediate.key'),
    chain: f('chain.pem'),
    crl: f('crl.pem'),
    foreignCa: f('foreign-ca.pem'),
    foreignCaKey: f('foreign-ca.key'),
    leaves,
  };
}

const DAY = 86_400_000;
/** A dev CRL is re-signed (same entries) when it has less than this left. */
const CRL_RENEW_BEFORE = 7 * DAY;
const DEFAULT_ORG = 'Opérateur MSSanté de développement';

/** Write a file with its final mode from the first byte (a key is never world-readable, even briefly). */
function writeSecure(path: string, content: string, mode: number) {
  rmSync(path, { force: true });
  writeFileSync(path, content, { mode });
  chmodSync(path, mode); // the umask may have narrowed it; certificates must stay readable
}

export async function initDevPki(opts: InitDevPkiOptions): Promise<DevPki> {
  const p = devPkiPaths(opts.dir);
  const created: string[] = [];
  const bits = opts.keyBits ?? 3072;
  const days = opts.validityDays ?? 825;
  const org = opts.organisation ?? DEFAULT_ORG;
  const domain = opts.domain;
  const now = Date.now();
  mkdirSync(p.dir, { recursive: true, mode: 0o700 });

  /**
   * Load a certificate+key pair, or make it when missing, forced, or when its issuer was
   * just made (a leaf signed by a key that no longer exists would never verify again).
   */
  const pair = async (paths: { cert: string; key: string }, renew: boolean, make: () => Promise<IssuedCertificate>): Promise<{ auth: CertAuthority; fresh: boolean }> => {
    if (!renew && !opts.force && existsSync(paths.cert) && existsSync(paths.key)) {
      return { auth: { certPem: readFileSync(paths.cert, 'utf8'), keyPem: readFileSync(paths.key, 'utf8') }, fresh: false };
    }
    const made = await make();
    writeSecure(paths.key, made.keyPem, 0o600);
    writeSecure(paths.cert, made.certPem, 0o644);
    created.push(basename(paths.cert), basename(paths.key));
    return { auth: made, fresh: true };
  };

  // CAs are valid well beyond their leaves, and start a week back so the `expired` fixture
  // lies inside its issuer's lifetime.
  const caStart = new Date(now - 7 * DAY);
  const caEnd = new Date(now + (days + 3650) * DAY);
  const [root, foreignRoot] = await Promise.all([
    pair({ cert: p.ca, key: p.caKey }, false, () =>
      createAuthority({ commonName: `AC RACINE DEV ${domain}`, organisation: org, keyBits: bits, notBefore: caStart, notAfter: caEnd }),
    ),
    // A root nobody trusts: what an operator outside the espace de confiance chains to.
    pair({ cert: p.foreignCa, key: p.foreignCaKey }, false, () =>
      createAuthority({ commonName: 'AC RACINE ETRANGERE (test)', organisation: 'Hors espace de confiance', keyBits: bits, notBefore: caStart, notAfter: caEnd }),
    ),
  ]);
  const inter = await pair({ cert: p.intermediate, key: p.intermediateKey }, root.fresh, () =>
    createAuthority({ commonName: `AC DEV ${domain} ELEMENTAIRE`, organisation: org, issuer: root.auth, pathLen: 0, keyBits: bits, notBefore: caStart, notAfter: new Date(now + (days + 1825) * DAY) }),
  );

  const loopback = { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'] };
  const serverLike = (name: string, organisation: string, extra: string[] = []): LeafSpec => ({
    type: 'server',
    domain: name,
    organisation,
    dnsNames: [...extra, ...loopback.dnsNames],
    ipAddresses: loopback.ipAddresses,
  });
  const peerDomain = opts.peerDomain ?? `peer.${domain}`;
  const leafSpecs: Record<(typeof DEV_LEAVES)[number], { spec: LeafSpec; opts?: IssueOptions }> = {
    server: { spec: serverLike(domain, org, opts.dnsNames) },
    'peer-operator': { spec: serverLike(peerDomain, 'Opérateur pair (test)') },
    personal: { spec: { type: 'personal', rpps: DEV_RPPS, surname: 'MARTIN', givenName: 'JEANNE', profession: 'Médecin', email: `jeanne.martin@${domain}` } },
    application: { spec: { type: 'application', name: 'labo-resultats', organisation: org, organisationId: DEV_STRUCTURE_ID, email: `labo-resultats@${domain}` } },
    tsa: { spec: { type: 'tsa', name: `TSA ${domain}`, organisation: org } },
    expired: { spec: serverLike(`expired.${domain}`, 'Opérateur expiré (test)'), opts: { notBefore: new Date(now - 3 * DAY), notAfter: new Date(now - DAY) } },
    revoked: { spec: serverLike(`revoked.${domain}`, 'Opérateur révoqué (test)') },
  };
  const [leafList] = await Promise.all([
    Promise.all(
      DEV_LEAVES.map((name) =>
        pair(p.leaves[name], inter.fresh, () => issueCertificate(inter.auth, leafSpecs[name].spec, { keyBits: bits, validityDays: days, ...leafSpecs[name].opts })),
      ),
    ),
    pair(p.leaves.foreign, foreignRoot.fresh, () => issueCertificate(foreignRoot.auth, serverLike(`foreign.${domain}`, 'Hors espace de confiance'), { keyBits: bits, validityDays: days })),
  ]);
  const revokedLeaf = leafList[DEV_LEAVES.indexOf('revoked')];

  if (opts.force || root.fresh || inter.fresh || !existsSync(p.chain)) {
    writeSecure(p.chain, inter.auth.certPem + root.auth.certPem, 0o644);
    created.push(basename(p.chain));
  }

  // crl.pem holds two CRLs: the intermediate's (listing `revoked`) and the root's (empty).
  // OpenSSL with CRL checking on the whole chain — what Node's `crl` TLS option turns on —
  // wants a CRL from every issuer, the root's included.
  const oldCrls = existsSync(p.crl) ? parseCrls(readFileSync(p.crl, 'utf8')) : [];
  const oldInter = inter.fresh ? undefined : crlIssuedBy(oldCrls, inter.auth.certPem);
  const oldRoot = root.fresh ? undefined : crlIssuedBy(oldCrls, root.auth.certPem);
  const revokedSerial = certificateSerial(revokedLeaf.auth.certPem);
  const stale = (c: typeof oldInter) => !c || !c.nextUpdate || c.nextUpdate.value.getTime() - now < CRL_RENEW_BEFORE;
  const listsRevoked = oldInter ? revokedEntries(oldInter).some((e) => e.serial === revokedSerial) : false;
  if (opts.force || stale(oldInter) || stale(oldRoot) || !listsRevoked) {
    // Entries added later (revokeDevCertificate) survive a renewal, unless the intermediate is new.
    const kept = (oldInter ? revokedEntries(oldInter) : []).filter((e) => e.serial !== revokedSerial);
    await writeCrls(p, inter.auth, root.auth, [...kept, { serial: revokedSerial, date: new Date(now - DAY) }], days);
    created.push(basename(p.crl));
  }
  // Keys are made in parallel: report in a stable order, CAs first.
  const order = [p.ca, p.caKey, p.intermediate, p.intermediateKey, ...DEV_LEAVES.flatMap((n) => [p.leaves[n].cert, p.leaves[n].key]), p.foreignCa, p.foreignCaKey, p.leaves.foreign.cert, p.leaves.foreign.key, p.chain, p.crl].map((f) => basename(f));
  created.sort((a, b) => order.indexOf(a) - order.indexOf(b));
  return { paths: p, created };
}

async function writeCrls(p: DevPkiPaths, inter: CertAuthority, root: CertAuthority, revoked: RevokedEntry[], days: number) {
  // A dev PKI has nobody publishing fresh CRLs every few days: give it the leaves' lifetime,
  // and let ensureDevPki re-sign it on start when it nears its end.
  const nextUpdate = new Date(Date.now() + days * DAY);
  const interCrl = await signCrl(inter, revoked, { nextUpdate });
  const rootCrl = await signCrl(root, [], { nextUpdate });
  writeSecure(p.crl, interCrl + rootCrl, 0o644);
}

function readAuthority(certFile: string, keyFile: string): CertAuthority {
  return { certPem: readFileSync(certFile, 'utf8'), keyPem: readFileSync(keyFile, 'utf8') };
}

/** The dev intermediate, for minting extra certificates (a BAL's application, a test professional). */
export function devIssuer(dir: string): CertAuthority {
  const p = devPkiPaths(dir);
  return readAuthority(p.intermediate, p.intermediateKey);
}

/** Adds a certificate issued by the dev intermediate to the dev CRL (for tests of revocation paths). */
export async function revokeDevCertificate(dir: string, certPem: string, validityDays = 825): Promise<void> {
  const p = devPkiPaths(dir);
  const inter = devIssuer(dir);
  const old = crlIssuedBy(parseCrls(readFileSync(p.crl, 'utf8')), inter.certPem);
  const serial = certificateSerial(certPem);
  const entries = (old ? revokedEntries(old) : []).filter((e) => e.serial !== serial);
  await writeCrls(p, inter, readAuthority(p.ca, p.caKey), [...entries, { serial, date: new Date() }], validityDays);
}

/**
 * At start: when the TLS files are the dev PKI's defaults (core/config usesDevPki) and
 * pki.autoInit is on, create whatever is missing, and re-sign a CRL close to expiry.
 * Files given explicitly by the operator are never touched.
 */
export async function ensureDevPki(config: Config, log: Logger): Promise<DevPki | undefined> {
  if (!config.pki.autoInit || !usesDevPki(config)) return undefined;
  const pki = await initDevPki({
    dir: config.pki.dir,
    domain: config.operator.domain,
    dnsNames: [config.operator.hostname, ...config.operator.domains],
    keyBits: config.pki.keyBits,
    validityDays: config.pki.validityDays,
    organisation: config.operator.name,
  });
  if (pki.created.length) log.warn({ dir: pki.paths.dir, created: pki.created }, 'development PKI written: its CA is not IGC-Santé, no other operator trusts it');
  return pki;
}
