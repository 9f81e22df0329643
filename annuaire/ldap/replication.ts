// The directory over several nodes (issue 17), with slapd's own replication: the one node
// that feeds the directory from the database runs a *provider* (the syncprov overlay serves
// its changes); every other node runs a *consumer*, a local read-only copy kept up to date
// by syncrepl in refreshAndPersist mode (the provider pushes each change as it is made; a
// consumer that was away asks for what it missed with its cookie, or for everything). Only
// the provider's node drains the queue of annuaire changes: the queue is consumed once.
//
// The consumer binds to the provider over LDAPS with the provider's directory secret, and
// checks the provider's certificate against the platform's CA and the URL's host name
// (tls_reqcert=demand). That secret writes the directory; every node already holds the
// database credentials, which are stronger (the database is the store of record).

import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'ldapts';
import { nodeTlsPolicy } from '../../certs/tls-policy.js';
import type { Config } from '../../core/config/index.js';
import { MssError } from '../../core/errors.js';
import { rootDn, type LdapPaths } from './files.js';

/** True when this node feeds its own slapd from the database (standalone or provider). */
export const feedsDirectory = (c: Pick<Config, 'ldap'>) => c.ldap.role !== 'consumer';

/** The consumer's settings, checked: a consumer without a provider cannot serve anything. */
export function consumerSettings(c: Pick<Config, 'ldap'>): { url: string; secret: string } {
  const url = c.ldap.providerUrl;
  const file = c.ldap.providerSecretFile;
  if (!url || !/^ldaps:\/\//i.test(url)) throw new MssError('LDAP_START_FAILED', { reason: `ldap.role is consumer: ldap.providerUrl must be the provider's ldaps:// URL (got ${url ? JSON.stringify(url) : 'nothing'})` });
  if (!file) throw new MssError('LDAP_START_FAILED', { reason: 'ldap.role is consumer: ldap.providerSecretFile must name the file holding the provider\'s directory secret' });
  let secret: string;
  try {
    secret = readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw new MssError('LDAP_START_FAILED', { reason: `cannot read ldap.providerSecretFile ${file}: ${(e as Error).message}` });
  }
  if (!secret || /["\\\s]/.test(secret)) throw new MssError('LDAP_START_FAILED', { reason: `ldap.providerSecretFile ${file} must hold one secret without quotes, backslashes or spaces` });
  return { url, secret };
}

/** slapd.conf lines before the database section (modules). */
export function replicationModules(c: Pick<Config, 'ldap'>): string {
  return c.ldap.role === 'provider' ? 'moduleload syncprov\n' : '';
}

/** slapd.conf lines at the end of the database section. */
export function replicationDatabase(c: Pick<Config, 'ldap'>, p: LdapPaths): string {
  const q = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  switch (c.ldap.role) {
    case 'standalone':
      return '';
    case 'provider':
      // The checkpoint writes contextCSN every 100 writes or minute; the session log lets a
      // consumer that was away for fewer than 100,000 changes get only those (else it gets
      // the whole present list, still correct).
      return `# Replication: this slapd is the provider its consumers follow (ldap.role = provider).
index entryCSN,entryUUID eq
overlay syncprov
syncprov-checkpoint 100 1
syncprov-sessionlog 100000
`;
    case 'consumer': {
      const { url, secret } = consumerSettings(c);
      const base = c.ldap.baseDn;
      // retry "1 +": every second, for ever (a provider restarting, a rebuild on it).
      return `# Replication: a read-only copy of the provider's directory (ldap.role = consumer).
index entryCSN,entryUUID eq
syncrepl rid=001
  provider=${url}
  type=refreshAndPersist
  retry="1 +"
  searchbase=${q(base)}
  scope=sub
  bindmethod=simple
  binddn=${q(rootDn(base))}
  credentials=${secret}
  tls_cacert=${q(p.ca)}
  tls_reqcert=demand
  tls_protocol_min=3.3
  schemachecking=on
`;
    }
  }
}

/** contextCSN values per server id (the third field of a CSN): which changes a directory holds. */
function csnBySid(values: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const v of values) {
    const sid = v.split('#')[2] ?? '';
    if ((out.get(sid) ?? '') < v) out.set(sid, v);
  }
  return out;
}

async function contextCsn(client: Client, base: string): Promise<Map<string, string>> {
  const { searchEntries } = await client.search(base, { scope: 'base', filter: '(objectClass=*)', attributes: ['contextCSN'] });
  const v = searchEntries[0]?.contextCSN;
  return csnBySid(v === undefined ? [] : (Array.isArray(v) ? v : [v]).map(String));
}

/** When a CSN's change was made (its first field, YYYYmmddHHMMSS.ffffffZ), in ms since the epoch. */
export function csnTime(csn: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d{1,6}))?Z#/.exec(csn);
  if (!m) return NaN;
  return Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6], Math.floor(Number(`0.${m[7] ?? '0'}`) * 1000));
}

/**
 * How far a consumer is behind its provider, server id by server id: for each server whose
 * newest change the consumer lacks, how much newer it is than the newest the consumer holds
 * from that server (null when it holds nothing from it). 0 when caught up.
 */
export function replicationLag(provider: Map<string, string>, consumer: Map<string, string>): { caughtUp: boolean; lagSeconds: number | null } {
  let lag: number | null = 0;
  for (const [sid, want] of provider) {
    const have = consumer.get(sid);
    if (have !== undefined && have >= want) continue;
    if (have === undefined || lag === null) {
      lag = null;
      continue;
    }
    lag = Math.max(lag, (csnTime(want) - csnTime(have)) / 1000);
  }
  return { caughtUp: lag === 0, lagSeconds: lag };
}

/** The provider's contextCSN, asked with the consumer's settings; throws when it cannot be asked. */
async function providerCsn(c: Pick<Config, 'ldap'>, ca: string): Promise<Map<string, string>> {
  const { url, secret } = consumerSettings(c);
  const provider = new Client({ url, timeout: 10_000, connectTimeout: 10_000, tlsOptions: { ca: [ca], ...nodeTlsPolicy() } });
  try {
    await provider.bind(rootDn(c.ldap.baseDn), secret);
    return await contextCsn(provider, c.ldap.baseDn);
  } finally {
    await provider.unbind().catch(() => {});
  }
}

/**
 * For a consumer's /health: is the provider reachable, and how far behind it is the local copy.
 * Neither fails the check: a consumer serves its copy while the provider is away (and the
 * lag shows how old that copy may be — what monitoring alerts on).
 */
export async function replicationState(c: Pick<Config, 'ldap'>, local: () => Promise<Client>, ca: string): Promise<{ provider: string; reachable: boolean; caughtUp?: boolean; lagSeconds?: number | null; error?: string }> {
  const url = c.ldap.providerUrl ?? '';
  let want: Map<string, string>;
  try {
    want = await providerCsn(c, ca);
  } catch (e) {
    return { provider: url, reachable: false, error: (e as Error).message };
  }
  const client = await local();
  try {
    return { provider: url, reachable: true, ...replicationLag(want, await contextCsn(client, c.ldap.baseDn)) };
  } finally {
    await client.unbind().catch(() => {});
  }
}

/**
 * Waits until the local consumer holds everything the provider held when this was called
 * (its contextCSN has caught up, server id by server id). A consumer that served before its
 * first refresh would answer "unknown recipient" — a permanent 5xx — for boxes that exist.
 * Returns false when the provider cannot be asked (the caller decides what to serve).
 */
export async function waitForRefresh(c: Pick<Config, 'ldap'>, local: () => Promise<Client>, timeoutMs: number, ca: string): Promise<boolean> {
  const { url } = consumerSettings(c);
  let want: Map<string, string>;
  try {
    want = await providerCsn(c, ca);
  } catch {
    return false;
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = await local();
    try {
      const have = await contextCsn(client, c.ldap.baseDn).catch(() => new Map<string, string>());
      if (replicationLag(want, have).caughtUp) return true;
    } finally {
      await client.unbind().catch(() => {});
    }
    if (Date.now() > deadline) throw new MssError('LDAP_START_FAILED', { reason: `the consumer did not catch up with the provider ${url} within ${timeoutMs} ms` });
    await sleep(100);
  }
}
