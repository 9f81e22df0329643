// Messages already rendered (parsed, HTML sanitised) by this process, by box, folder,
// UIDVALIDITY and UID. A message never changes under its UID within one UIDVALIDITY
// (RFC 3501 §2.3.1.1), so a copy is never stale; only its flags change, and those are
// fetched on every read. Parsing and sanitising were most of a read's cost in the worker
// (mailparser, sanitize-html, and the message's bytes through TLS twice): a message read
// again — by the same person, or by another member of an organisational box — is answered
// from here.
//
// What a copy does not skip: the read still runs on the person's own IMAP connection to
// the box (so the proxy's login decision applies as for a first read) and still asks that
// connection for the message (its flags and first byte, mailbox.ts): the message
// must still exist, and the proxy journals the read as it journals every other. Bounded by
// webmail.renderCache bytes (the rendered JSON's length), least recently used first out.
export class RenderCache<V> {
  private readonly entries = new Map<string, { value: V; bytes: number }>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  static key(bal: string, folder: string, validity: string, uid: number): string {
    return `${bal.toLowerCase()}\u0000${folder}\u0000${validity}\u0000${uid}`;
  }

  get(key: string): V | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    // Most recently used last: the map's order is the eviction order.
    this.entries.delete(key);
    this.entries.set(key, e);
    return e.value;
  }

  /** Keeps `value` (its size given by the caller), unless it is over an eighth of the bound: one huge message would push out many. */
  put(key: string, value: V, bytes: number): void {
    if (bytes > this.maxBytes / 8) return;
    const old = this.entries.get(key);
    if (old) {
      this.bytes -= old.bytes;
      this.entries.delete(key);
    }
    this.entries.set(key, { value, bytes });
    this.bytes += bytes;
    for (const [k, e] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(k);
      this.bytes -= e.bytes;
    }
  }

  get size(): number {
    return this.entries.size;
  }

  get heldBytes(): number {
    return this.bytes;
  }
}
