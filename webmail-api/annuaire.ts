// Recipient search in the public annuaire, over LDAP like Thunderbird's address book: an
// anonymous read with StartTLS (or LDAPS) on the platform's directory. The filter is built
// from ldapts filter objects, so what a person types is a value, never filter syntax.
import { isIP } from 'node:net';
import { checkServerIdentity, type ConnectionOptions } from 'node:tls';
import { AndFilter, Client, EqualityFilter, OrFilter, SubstringFilter, type Filter } from 'ldapts';
import { MssError } from '../core/errors.js';
import { nodeTlsPolicy } from '../certs/tls-policy.js';

export interface LdapTarget {
  /** ldap:// (StartTLS) or ldaps://. */
  url: string;
  baseDn: string;
  ca: string[];
  /** The name the directory's certificate carries when the URL's host is not in it. */
  servername?: string;
}

export interface Recipient {
  name: string;
  mail: string;
  profession: string | null;
  organisation: string | null;
  service: string | null;
  /** PER, ORG, APP, CAB. */
  type: string | null;
}

/** What a typed word may match: the names, the address, the structure and the profession. */
const SEARCHED = ['cn', 'sn', 'givenName', 'displayName', 'mail', 'o', 'ou', 'mssProfession'];
const RETURNED = ['cn', 'displayName', 'mail', 'mssProfession', 'title', 'o', 'ou', 'mssBalType'];
export const MAX_RESULTS = 50;

/** Every word must match one of the searched attributes (as a substring). */
export function recipientFilter(q: string): Filter {
  const words = q.trim().split(/\s+/).filter(Boolean).slice(0, 5);
  return new AndFilter({
    filters: [
      new EqualityFilter({ attribute: 'objectClass', value: 'mssBoite' }),
      ...words.map((w) => new OrFilter({ filters: SEARCHED.map((attribute) => new SubstringFilter({ attribute, any: [w] })) })),
    ],
  });
}

const first = (v: unknown): string | null => {
  const x = Array.isArray(v) ? v[0] : v;
  return x === undefined || x === null || x === '' ? null : String(x);
};

export async function searchRecipients(t: LdapTarget, q: string, limit = MAX_RESULTS): Promise<{ results: Recipient[]; truncated: boolean }> {
  const u = new URL(t.url);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  // The certificate is checked against servername, else the URL's host (an IP address included).
  const name = t.servername ?? host;
  const tlsOptions: ConnectionOptions = { ca: t.ca, ...nodeTlsPolicy(), ...(isIP(name) ? {} : { servername: name }), checkServerIdentity: (_n, cert) => checkServerIdentity(name, cert) };
  const client = new Client({ url: `${u.protocol}//${u.host}`, timeout: 10_000, connectTimeout: 5_000, ...(u.protocol === 'ldaps:' ? { tlsOptions } : {}) });
  try {
    if (u.protocol === 'ldap:') await client.startTLS(tlsOptions);
    const { searchEntries } = await client.search(t.baseDn, {
      scope: 'sub',
      filter: recipientFilter(q),
      attributes: RETURNED,
      // One more than shown, to tell the person the list is cut.
      sizeLimit: limit + 1,
      timeLimit: 10,
    });
    const results = searchEntries.slice(0, limit).map((e) => ({
      name: first(e.displayName) ?? first(e.cn) ?? first(e.mail) ?? '',
      mail: first(e.mail) ?? '',
      profession: first(e.mssProfession) ?? first(e.title),
      organisation: first(e.o),
      service: first(e.ou),
      type: first(e.mssBalType),
    }));
    return { results, truncated: searchEntries.length > limit };
  } catch (e) {
    throw new MssError('LDAP_UNREACHABLE', { url: t.url, reason: (e as Error).message }, { cause: e });
  } finally {
    await client.unbind().catch(() => {});
  }
}
