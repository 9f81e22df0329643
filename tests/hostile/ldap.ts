// The LDAP corpus's context: the platform's own slapd (389 StartTLS, 636 LDAPS) reached
// with ldapts and the real ldapsearch; LDAP results and errors turned into Outcomes.
import { Client, type ClientOptions } from 'ldapts';
import { expect } from 'vitest';
import { ldapsearch, type LdapSearchResult } from '../helpers/slapd.js';
import { tlsOutcome, type Outcome } from './harness.js';
import type { HostileOperator } from './platform.js';

export interface LdapCtx {
  h: HostileOperator;
  /** ldap://127.0.0.1:PORT (StartTLS) and ldaps://127.0.0.1:PORT. */
  ldap: string;
  ldaps: string;
  base: string;
  /**
   * Runs fn on a fresh client — over LDAPS by default, `starttls` on the plain port with
   * StartTLS first, `plain` on the plain port without TLS — and unbinds it after. What fn
   * returns (or throws) becomes the Outcome.
   */
  op(fn: (c: Client) => Promise<unknown>, o?: { via?: 'ldaps' | 'starttls' | 'plain'; tls?: ClientOptions['tlsOptions'] }): Promise<Outcome>;
  /** The real ldapsearch over StartTLS (-ZZ): exit code (the LDAP result code) and its message. */
  search(args: string[], via?: 'starttls' | 'ldaps'): Promise<Outcome & { result: LdapSearchResult }>;
}

/** An ldapts result or error as an Outcome: the LDAP result code, its name, slapd's diagnostic message. */
export function ldapOutcome(r: unknown): Outcome {
  if (r instanceof Error) {
    const e = r as Error & { code?: number | string };
    if (typeof e.code === 'number') return { code: String(e.code), enhanced: e.name, text: e.message.replace(/ Code: 0x[0-9a-f]+$/, '') };
    if (typeof e.code === 'string' && /^(ERR_SSL|ECONNRESET|EPROTO)/.test(e.code)) return tlsOutcome(e);
    return { code: 'error', enhanced: e.name, text: e.message };
  }
  if (r && typeof r === 'object' && 'searchEntries' in r) {
    const entries = (r as { searchEntries: unknown[] }).searchEntries;
    return { code: '0', enhanced: 'success', text: `${entries.length} entries` };
  }
  return { code: '0', enhanced: 'success', text: JSON.stringify(r ?? null) };
}

export function ldapCtx(h: HostileOperator): LdapCtx {
  const urls = h.op.platform.directory!.endpoints.map((e) => new URL(e.url));
  const ldap = `ldap://127.0.0.1:${urls.find((u) => u.protocol === 'ldap:')!.port}`;
  const ldaps = `ldaps://127.0.0.1:${urls.find((u) => u.protocol === 'ldaps:')!.port}`;
  const base = h.config.ldap.baseDn;
  const tlsOptions = (extra: ClientOptions['tlsOptions'] = {}) => ({ ca: [h.ca], servername: 'localhost', minVersion: 'TLSv1.2' as const, ...extra });
  return {
    h,
    ldap,
    ldaps,
    base,
    async op(fn, o = {}) {
      const via = o.via ?? 'ldaps';
      const c = new Client({ url: via === 'ldaps' ? ldaps : ldap, timeout: 30_000, connectTimeout: 30_000, ...(via === 'ldaps' ? { tlsOptions: tlsOptions(o.tls) } : {}) });
      try {
        if (via === 'starttls') await c.startTLS(tlsOptions(o.tls));
        return ldapOutcome(await fn(c));
      } catch (e) {
        return ldapOutcome(e);
      } finally {
        await c.unbind().catch(() => {});
      }
    },
    async search(args, via = 'starttls') {
      const r = await ldapsearch(h, via === 'starttls' ? ['-H', ldap, '-ZZ', ...args] : ['-H', ldaps, ...args]);
      // The result line is on stdout ("result: 53 Server is unwilling to perform"), a client-side error on stderr.
      const result = /^result: \d+ (.*)$/m.exec(r.stdout)?.[1] ?? /^(?:ldap_\w+|ldapsearch): (.*)$/m.exec(r.stderr)?.[1] ?? r.stderr.trim();
      const info = /^(?:\t)?additional info: (.*)$/m.exec(r.stdout + r.stderr)?.[1];
      return { code: String(r.code), text: r.code === 0 ? `${r.entries.length} entries` : `${result}${info ? `: ${info}` : ''}`, result: r };
    },
  };
}

/** Anyone finds jeanne's published entry, over StartTLS and over LDAPS. */
export async function ldapServes(x: LdapCtx): Promise<void> {
  // Both TLS listeners (StartTLS on 389, LDAPS on 636), with the client's default TLS.
  for (const via of ['starttls', 'ldaps'] as const) {
    const o = await x.op((c) => c.search(`ou=bal,${x.base}`, { filter: `(mail=${x.h.who.jeanne.address})`, attributes: ['mail', 'cn'] }), { via });
    expect(o, via).toEqual({ code: '0', enhanced: 'success', text: '1 entries' });
  }
}
