// The platform's own connection to its slapd: LDAPS on loopback, bound as the rootdn (the
// only writer). The chain is verified against the platform's CA; the host name is not,
// because we dial our own child on 127.0.0.1 while the certificate names the public host.

import { readFileSync } from 'node:fs';
import { Client, type Entry } from 'ldapts';
import { MssError } from '../../core/errors.js';
import { rootDn, rootSecret, type LdapPaths } from './files.js';
import { nodeTlsPolicy } from '../../certs/tls-policy.js';

export interface Connection {
  url: string;
  bindDn: string;
  secret: string;
  ca: string;
}

export function feederConnection(p: LdapPaths, ldapsUrl: string, base: string): Connection {
  return { url: ldapsUrl, bindDn: rootDn(base), secret: rootSecret(p), ca: readFileSync(p.ca, 'utf8') };
}

/** A bound client; the caller unbinds it. */
export async function connect(conn: Connection, timeoutMs = 30_000): Promise<Client> {
  const client = new Client({
    url: conn.url,
    timeout: timeoutMs,
    connectTimeout: 5000,
    tlsOptions: { ca: [conn.ca], checkServerIdentity: () => undefined, ...nodeTlsPolicy() },
  });
  try {
    await client.bind(conn.bindDn, conn.secret);
    return client;
  } catch (e) {
    await client.unbind().catch(() => {});
    throw new MssError('LDAP_UNREACHABLE', { url: conn.url, reason: ldapReason(e) }, { cause: e });
  }
}

/** One line for a person out of an ldapts / socket error. */
export function ldapReason(e: unknown): string {
  const err = e as NodeJS.ErrnoException & { code?: unknown };
  if (err?.code === 'ECONNREFUSED') return 'connection refused (is slapd running?)';
  return (err?.message || String(e)).split('\n')[0];
}

/** Attribute name → values, out of an ldapts search entry (which gives one value as a string). */
export function entryAttributes(e: Entry): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(e)) {
    if (k === 'dn') continue;
    const vals = Array.isArray(v) ? v : [v];
    out[k] = vals.map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : String(x)));
  }
  return out;
}

/** RFC 4515 escaping of a value inside a search filter. */
export function escapeFilterValue(v: string): string {
  return v.replace(/[\\*()\u0000]/g, (c) => '\\' + c.charCodeAt(0).toString(16).padStart(2, '0'));
}
