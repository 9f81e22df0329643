// Session tokens verified a moment ago: every API request carries the bearer token, and
// asking the annuaire each time (a database join, on PGlite inside the platform's event
// loop) was the largest single cost of a request. A token verified less than
// webmail.sessionCacheTtl ago is taken as is; past that the annuaire is asked again (which
// also slides the session's expiry). Concurrent requests of one session share one question.
//
// What a cache entry may miss: a logout through this API drops it at once (closeToken, in
// every process that caches); a session ended elsewhere — a password change or reset, an
// account disabled by an admin, an expiry — is seen within the TTL, and the session's IMAP
// connections are closed then. An IMAP client that is already logged in is not cut off by a
// password change at all, so a few seconds here are no weaker than the protocol beside it.
import { createHash } from 'node:crypto';
import { Memo } from '../core/memo.js';
import type { PersonPrincipal } from '../core/policy/index.js';

/** The pool and the cache key a token by its SHA-256: the token itself is not a map key. */
export const tokenKeyOf = (token: string) => createHash('sha256').update(token).digest('base64url');

export class SessionCache {
  private readonly memo: Memo<PersonPrincipal>;

  constructor(private readonly o: { ttlMs: number; maxEntries: number; verify(token: string): Promise<PersonPrincipal | null> }) {
    this.memo = new Memo(o);
  }

  /** The person behind the token, or null; the annuaire is asked at most once per TTL per token (a refusal is not remembered). */
  verify(token: string, now = Date.now()): Promise<PersonPrincipal | null> {
    return this.memo.get(tokenKeyOf(token), () => this.o.verify(token), now);
  }

  /** Logout, or a token the IMAP proxy refused: the next request asks the annuaire. */
  drop(token: string): void {
    this.memo.drop(tokenKeyOf(token));
  }

  get size(): number {
    return this.memo.size;
  }
}
