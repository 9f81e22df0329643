// The password cache: what Dovecot's auth cache does, for our scrypt. A person whose
// password was verified less than auth.cacheTtl ago is recognised without paying the hash
// again — a Thunderbird reconnecting every few minutes, a hospital's clients behind one
// address all logging in after a network cut.
//
// An entry is an HMAC, under a key that never leaves this process, of the stored hash and
// the password: nothing reusable sits in memory, and a password change (a new stored hash)
// misses at once, on every node. A disabled account is refused before the cache is read; a
// locked one never reaches the check (core/policy/throttle.ts). A wrong password always
// pays the full scrypt, so timing still tells nothing about which accounts exist.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { authCacheLookups } from '../../core/metrics.js';

export class CredentialCache {
  private readonly key = randomBytes(32);
  /** Person id → the proof of the last password verified, oldest first (a Map keeps insertion order). */
  private readonly entries = new Map<string, { mac: Buffer; expires: number }>();

  constructor(private readonly o: { ttlMs: number; maxEntries: number }) {}

  private mac(storedHash: string, password: string): Buffer {
    return createHmac('sha256', this.key).update(storedHash).update('\0').update(password.normalize('NFC')).digest();
  }

  /** Whether this password was verified against this stored hash less than ttl ago. */
  knows(personId: string, storedHash: string, password: string, now = Date.now()): boolean {
    if (this.o.ttlMs <= 0) return false;
    const e = this.entries.get(personId);
    const hit = !!e && e.expires > now && timingSafeEqual(e.mac, this.mac(storedHash, password));
    if (e && e.expires <= now) this.entries.delete(personId);
    authCacheLookups.inc({ result: hit ? 'hit' : 'miss' });
    return hit;
  }

  /** Records a password just verified by scrypt (a hit does not extend its entry: ttl counts from the hash). */
  remember(personId: string, storedHash: string, password: string, now = Date.now()): void {
    if (this.o.ttlMs <= 0) return;
    this.entries.delete(personId);
    this.entries.set(personId, { mac: this.mac(storedHash, password), expires: now + this.o.ttlMs });
    if (this.entries.size > this.o.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }

  get size(): number {
    return this.entries.size;
  }
}
