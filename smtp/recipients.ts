import { Client, EqualityFilter } from 'ldapts';
import type { Logger } from '../core/logger.js';

/** What the annuaire says of one recipient address. */
export type Resolution =
  | { kind: 'local'; address: string; balType?: string }
  | { kind: 'closed'; address: string }
  | { kind: 'unknown'; address: string }
  | { kind: 'unavailable'; address: string; reason: string };

export interface RecipientResolver {
  /** Only for addresses in the operator's own domains; other domains are routed, not resolved. */
  resolve(address: string): Promise<Resolution>;
  close(): Promise<void>;
}

export interface LdapResolverOptions {
  url: string;
  bindDn: string;
  bindPassword: string;
  /** Subtree holding one entry per local mailbox, liste rouge and closed ones included. */
  base: string;
  /** TLS options for ldaps:// (the platform's trust anchors). */
  tlsOptions?: import('node:tls').ConnectionOptions;
  statusAttribute?: string;
  typeAttribute?: string;
  poolSize?: number;
  /** Positive answers are cached this long; unknown and closed ones a fifth of it. */
  cacheMs?: number;
  timeoutMs?: number;
  log?: Logger;
}

/**
 * Resolves recipients through the annuaire's LDAP server: a small pool of bound clients
 * (each reconnects on its own when slapd restarts) and a short cache, so a burst of mail
 * to the same practice costs one lookup. The filter value is escaped by ldapts's
 * EqualityFilter. Directory down → `unavailable` (the MX answers 451 4.4.3, never a bounce).
 */
export class LdapRecipientResolver implements RecipientResolver {
  private readonly clients: Client[];
  private readonly bound = new WeakSet<Client>();
  private nextClient = 0;
  private readonly cache = new Map<string, { r: Resolution; until: number }>();

  constructor(private readonly o: LdapResolverOptions) {
    this.clients = Array.from({ length: o.poolSize ?? 4 }, () => new Client({ url: o.url, timeout: o.timeoutMs ?? 3000, connectTimeout: o.timeoutMs ?? 3000, tlsOptions: o.tlsOptions }));
  }

  async resolve(raw: string): Promise<Resolution> {
    const address = raw.trim().toLowerCase();
    const hit = this.cache.get(address);
    if (hit && hit.until > Date.now()) return hit.r;
    const r = await this.lookup(address);
    if (r.kind !== 'unavailable') {
      const ttl = this.o.cacheMs ?? 30_000;
      this.cache.set(address, { r, until: Date.now() + (r.kind === 'local' ? ttl : ttl / 5) });
      if (this.cache.size > 50_000) this.cache.delete(this.cache.keys().next().value!);
    }
    return r;
  }

  private async lookup(address: string): Promise<Resolution> {
    const client = this.clients[this.nextClient++ % this.clients.length];
    const status = this.o.statusAttribute ?? 'mssStatus';
    const type = this.o.typeAttribute ?? 'mssBalType';
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        if (!this.bound.has(client)) {
          await client.bind(this.o.bindDn, this.o.bindPassword);
          this.bound.add(client);
        }
        const { searchEntries } = await client.search(this.o.base, { scope: 'sub', filter: new EqualityFilter({ attribute: 'mail', value: address }), attributes: ['mail', status, type], sizeLimit: 2 });
        if (!searchEntries.length) return { kind: 'unknown', address };
        const e = searchEntries[0];
        const st = String(e[status] ?? 'active').toLowerCase();
        if (st === 'closed') return { kind: 'closed', address };
        return { kind: 'local', address, balType: e[type] ? String(e[type]) : undefined };
      } catch (err) {
        // A dropped connection (slapd restarted) is retried once on a fresh bind.
        this.bound.delete(client);
        await client.unbind().catch(() => {});
        if (attempt === 1) {
          this.o.log?.warn({ err: (err as Error).message, address }, 'recipient lookup failed');
          return { kind: 'unavailable', address, reason: (err as Error).message };
        }
      }
    }
    return { kind: 'unavailable', address, reason: 'unreachable' };
  }

  async close() {
    await Promise.all(this.clients.map((c) => c.unbind().catch(() => {})));
  }
}
