// What this process already fetched from a box, per folder and UIDVALIDITY, by UID. A UID's
// arrival date, envelope, size and structure never change (RFC 3501 §2.3.1.1), so a list
// fetches them only for messages no connection of this process to the box has fetched yet —
// sort keys for the whole folder, summaries for the pages shown — and the flags (which do
// change) every time, as an IMAP client with a header cache does.
//
// Shared by every connection to the box (a person's second session, the members of an
// organisational box), not kept per connection: a new session's first list was the dearest
// request of the API (the whole folder's INTERNALDATEs and a page of envelopes and
// structures, fetched and parsed again). Nothing here decides who sees what: a value is
// looked up only for a UID that the caller's own connection — logged in through the proxy's
// decision — has just found by SEARCH in a folder it could select.
//
// Bounded by the number of UIDs kept, all boxes together; the box used least recently goes first.

/** UID → value for one box, folder, UIDVALIDITY and kind of value; counts towards the process's bound. */
export class UidMemo<V> {
  private readonly m = new Map<number, V>();

  constructor(private grew: (n: number) => void) {}

  get(uid: number): V | undefined {
    return this.m.get(uid);
  }

  has(uid: number): boolean {
    return this.m.has(uid);
  }

  set(uid: number, v: V): void {
    if (!this.m.has(uid)) this.grew(1);
    this.m.set(uid, v);
  }

  clear(): void {
    this.grew(-this.m.size);
    this.m.clear();
  }

  get size(): number {
    return this.m.size;
  }

  /** Evicted: emptied, and whatever a caller still holding it adds no longer counts (nor is kept long: the caller drops it). */
  detach(): void {
    this.clear();
    this.grew = () => {};
  }
}

export class BoxMemo {
  /** box → "folder NUL validity NUL kind" → memo; the Map's order is the eviction order. */
  private readonly boxes = new Map<string, Map<string, UidMemo<unknown>>>();
  private count = 0;

  constructor(private readonly maxUids: number) {}

  memo<V>(bal: string, folder: string, validity: string, what: string): UidMemo<V> {
    const box = bal.toLowerCase();
    let memos = this.boxes.get(box);
    if (memos) this.boxes.delete(box);
    else memos = new Map();
    this.boxes.set(box, memos);
    const id = `${folder}\u0000${validity}\u0000${what}`;
    let m = memos.get(id);
    if (!m) {
      // Another UIDVALIDITY of the folder: what was kept under the old one names other messages.
      for (const [k, old] of memos) if (k.startsWith(`${folder}\u0000`) && !k.startsWith(`${folder}\u0000${validity}\u0000`)) {
        old.detach();
        memos.delete(k);
      }
      memos.set(id, (m = new UidMemo((n) => this.grew(box, n))));
    }
    return m as UidMemo<V>;
  }

  /** UIDs kept, all boxes together. */
  get size(): number {
    return this.count;
  }

  private grew(box: string, n: number): void {
    this.count += n;
    if (n <= 0 || this.count <= this.maxUids) return;
    // Over the bound: the least recently used boxes go, never the one being filled.
    for (const [b, memos] of this.boxes) {
      if (this.count <= this.maxUids) return;
      if (b === box) continue;
      for (const m of memos.values()) m.detach();
      this.boxes.delete(b);
    }
  }
}
