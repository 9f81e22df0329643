// The admin corpus's context: the platform's admin API over its real HTTPS listener, as a
// national account, a regional one (scoped to structure 1750000001), a webmail user, or
// nobody; certificates to register; and the normal request after each case — the national
// account creates a mailbox (201) — whose mailboxes must all still exist at the end.
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { devIssuer, DEV_STRUCTURE_ID, issueCertificate, revokeDevCertificate } from '../../certs/pki.js';
import type { Outcome } from './harness.js';
import { apiCaller, https, rawHttps, rawOutcome, type HttpOptions } from './http.js';
import { DOMAIN, type HostileOperator } from './platform.js';
import type { TestPki } from '../helpers/pki.js';

export type As = 'national' | 'regional' | 'webmail' | 'none';

export interface AdminCtx {
  h: HostileOperator;
  url: string;
  tokens: Record<Exclude<As, 'none'>, string>;
  /** One request to /api/v1…, as the national account unless `as` says otherwise. */
  api(method: string, path: string, o?: HttpOptions & { as?: As }): Promise<Outcome>;
  /** Exact bytes to the listener. */
  raw(bytes: string): Promise<Outcome>;
  /** PEMs for registration cases. */
  pem: { expired: string; revoked: string; foreign: string; server: string; bound: string; stray: string };
  /** APP boxes: `sameOrg` of the dev application certificate's structure, `otherOrg` of structure 1750000001. */
  apps: { sameOrg: string; otherOrg: string };
}

/** Minted before the platform starts, so its CRL already lists the revoked one. */
export async function revokedApplicationCertificate(pki: TestPki): Promise<string> {
  const issued = await issueCertificate(devIssuer(pki.dir), { type: 'application', name: 'logiciel-revoque', organisation: 'Labo', organisationId: DEV_STRUCTURE_ID }, { keyBits: 2048, validityDays: 30 });
  await revokeDevCertificate(pki.dir, issued.certPem);
  return issued.certPem;
}

export async function adminCtx(h: HostileOperator, revokedPem: string): Promise<AdminCtx> {
  const url = h.admin.url;
  const login = async (l: { login: string; password: string }) => (await https(url, h.ca, 'POST', '/api/v1/login', { json: l })).json().token as string;
  const national = await login(h.admin.national);
  const regional = await login(h.admin.regional);
  const webmail = (await https(h.webmailUrl, h.ca, 'POST', '/api/v1/login', { json: { login: h.who.jeanne.login, password: h.who.jeanne.password } })).json().token as string;
  const create = async (address: string, owner: string) => {
    const r = await https(url, h.ca, 'POST', '/api/v1/bals', { token: national, json: { address, type: 'APP', owner } });
    if (r.status !== 201) throw new Error(`creating ${address}: ${r.status} ${r.body}`);
    return address;
  };
  const apps = { sameOrg: await create(`labo-bis@${DOMAIN}`, DEV_STRUCTURE_ID), otherOrg: await create(`autre-labo@${DOMAIN}`, '1750000001') };
  const tokens = { national, regional, webmail };
  return {
    h,
    url,
    tokens,
    apps,
    api: apiCaller(url, h.ca, tokens, 'national'),
    raw: async (bytes) => rawOutcome(await rawHttps(url, h.ca, bytes)),
    pem: {
      expired: h.pki.read('expired.pem'),
      revoked: revokedPem,
      foreign: h.pki.read('foreign.pem'),
      server: h.pki.read('peer-operator.pem'),
      bound: readFileSync(h.pki.paths.leaves.application.cert, 'utf8'),
      stray: h.strayApp.cert.split(/(?<=-----END CERTIFICATE-----\n)/)[0],
    },
  };
}

let n = 0;
/** Mailboxes the admin API acknowledged (201). */
export const createdByAdmin: string[] = [];

/** The national account creates a mailbox: 201 with the box. */
export async function adminServes(x: AdminCtx): Promise<void> {
  const address = `cree${++n}.${process.pid}@${DOMAIN}`;
  const o = await x.api('POST', '/bals', { json: { address, type: 'ORG', owner: '1750000001', service: 'Créé par le corpus' } });
  expect(o.code, o.text).toBe('201');
  createdByAdmin.push(address);
}

/** Every mailbox the API acknowledged is still there, active. */
export async function adminNothingLost(x: AdminCtx): Promise<void> {
  expect(createdByAdmin.length).toBeGreaterThan(0);
  for (const address of createdByAdmin) {
    const r = await https(x.url, x.h.ca, 'GET', `/api/v1/bals/${encodeURIComponent(address)}`, { token: x.tokens.national });
    expect(r.status, address).toBe(200);
    expect(r.json().status).toBe('active');
  }
}
