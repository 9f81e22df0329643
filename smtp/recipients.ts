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
  // One slot per pooled connection: its client and the bind every lookup on it waits for.
  // ldapts must not be asked to connect or bind twice at once, nor be unbound under a
  // lookup in flight (a connect left without its socket never settles): so a slot binds
  // once, and a failed one is replaced by a fresh client rather than unbound in place.
  // `bound` turns true once the slot's bind has succeeded: a client that was bound and no
  // longer is lost its connection (slapd restarted), and ldapts would reconnect it
  // transparently but anonymously. Such a slot gets a fresh client before it is used.
  private readonly slots: Array<{ client: Client; ready: Promise<void> | null; bound: boolean }>;
  private nextClient = 0;
  private readonly cache = new Map<string, { r: Resolution; until: number }>();
  /** Lookups under way: RCPTs for the same address at once share one. */
  private readonly pending = new Map<string, Promise<Resolution>>();

  constructor(private readonly o: LdapResolverOptions) {
    this.slots = Array.from({ length: o.poolSize ?? 4 }, () => ({ client: this.newClient(), ready: null, bound: false }));
  }

  private newClient() {
    return new Client({ url: this.o.url, timeout: this.o.timeoutMs ?? 3000, connectTimeout: this.o.timeoutMs ?? 3000, tlsOptions: this.o.tlsOptions });
  }

  async resolve(raw: string): Promise<Resolution> {
    const address = raw.trim().toLowerCase();
    const hit = this.cache.get(address);
    if (hit && hit.until > Date.now()) return hit.r;
    let p = this.pending.get(address);
    if (!p) {
      p = this.lookup(address).finally(() => this.pending.delete(address));
      this.pending.set(address, p);
    }
    const r = await p;
    if (r.kind !== 'unavailable') {
      const ttl = this.o.cacheMs ?? 30_000;
      this.cache.set(address, { r, until: Date.now() + (r.kind === 'local' ? ttl : ttl / 5) });
      if (this.cache.size > 50_000) this.cache.delete(this.cache.keys().next().value!);
    }
    return r;
  }

  private async lookup(address: string): Promise<Resolution> {
    const status = this.o.statusAttribute ?? 'mssStatus';
    const type = this.o.typeAttribute ?? 'mssBalType';
    const limit = 2 * (this.o.timeoutMs ?? 3000);
    for (let attempt = 0; attempt < 2; attempt++) {
      const slot = this.slots[this.nextClient++ % this.slots.length];
      if (slot.bound && !slot.client.isBound) this.renew(slot);
      const client = slot.client;
      try {
        slot.ready ??= client.bind(this.o.bindDn, this.o.bindPassword).then(() => {
          if (slot.client === client) slot.bound = true;
        });
        const { searchEntries } = await withTimeout(
          slot.ready.then(async () => {
            const found = await client.search(this.o.base, { scope: 'sub', filter: new EqualityFilter({ attribute: 'mail', value: address }), attributes: ['mail', status, type], sizeLimit: 2 });
            // The connection dropped and came back during the search: its answer was given
            // to an anonymous client, for whom the routing subtree does not exist.
            if (!client.isBound) throw new Error('the directory connection was re-established without its bind');
            return found;
          }),
          limit,
        );
        if (!searchEntries.length) return { kind: 'unknown', address };
        const e = searchEntries[0];
        const st = String(e[status] ?? 'active').toLowerCase();
        if (st === 'closed') return { kind: 'closed', address };
        return { kind: 'local', address, balType: e[type] ? String(e[type]) : undefined };
      } catch (err) {
        // A dropped connection (slapd restarted): the slot gets a fresh client, and the
        // lookup is retried once on the next slot.
        if (slot.client === client) this.renew(slot);
        if (attempt === 1) {
          this.o.log?.warn({ err: (err as Error).message, address }, 'recipient lookup failed');
          return { kind: 'unavailable', address, reason: (err as Error).message };
        }
      }
    }
    return { kind: 'unavailable', address, reason: 'unreachable' };
  }

  private renew(slot: (typeof this.slots)[number]) {
    const old = slot.client;
    Object.assign(slot, { client: this.newClient(), ready: null, bound: false });
    old.unbind().catch(() => {});
  }

  async close() {
    await Promise.all(this.slots.map((s) => s.client.unbind().catch(() => {})));
  }
}

/** Never let a lookup hang an RCPT: past `ms`, the directory counts as unavailable. */
function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer from the directory within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}
