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
import type { Config } from '../../core/config/index.js';
import { MssError } from '../../core/errors.js';
import { rootDn, type LdapPaths } from './files.js';

export type LdapRole = Config['ldap']['role'];

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
