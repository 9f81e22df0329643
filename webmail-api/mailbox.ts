// What the API does inside one BAL over IMAP: folders, the message list, one message, an
// attachment, flags, move, delete. Each function takes a logged-in ImapFlow (imap-pool.ts)
// and keeps its commands on one folder with a mailbox lock.
import type { FetchMessageObject, FetchQueryObject, ImapFlow, MessageAddressObject, MessageStructureObject, SearchObject } from 'imapflow';
import type { Readable } from 'node:stream';
import { MssError } from '../core/errors.js';
import { BoxMemo } from './box-memo.js';
import { imapError } from './imap-errors.js';
import type { Flags, Folder, MessageSummary } from './json-types.js';
import { attachmentsOf, type AttachmentRef } from './render.js';

export type { Flags, Folder, MessageSummary };

export async function listFolders(c: ImapFlow, bal: string): Promise<Folder[]> {
  try {
    const list = await c.list({ statusQuery: { messages: true, unseen: true } });
    return list
      .filter((f) => !f.flags.has('\\Noselect') && !f.flags.has('\\NonExistent'))
      .map((f) => ({ path: f.path, name: f.name, delimiter: f.delimiter, specialUse: f.specialUse ?? null, messages: f.status?.messages ?? 0, unseen: f.status?.unseen ?? 0 }));
  } catch (e) {
    throw imapError(e, `list the folders of ${bal}`);
  }
}

/**
 * Runs fn with `folder` selected, no other command of this connection in between. With
 * `sync: false` (a command on one known UID) the NOOP below is skipped: fn is told the view
 * may be stale and fetches through `fetchOneSynced`, which syncs only when the UID is not found.
 */
export async function inFolder<T>(c: ImapFlow, bal: string, folder: string, fn: (stale: boolean) => Promise<T>, opts: { sync?: boolean } = {}): Promise<T> {
  const lock = await lockFolder(c, bal, folder, opts.sync ?? true);
  try {
    return await fn(lock.stale);
  } finally {
    lock.release();
  }
}

/**
 * Selects `folder` for this caller alone. A pooled connection may have had it selected for
 * a while: a NOOP then brings the session's view up to date (Dovecot announces new mail
 * only at such a sync point; a UID FETCH of a message that arrived meanwhile finds nothing).
 * Without `sync`, the lock says the view may be stale instead (`stale`).
 */
async function lockFolder(c: ImapFlow, bal: string, folder: string, sync = true) {
  const wasOpen = c.mailbox && c.mailbox.path === folder;
  let lock;
  try {
    lock = await c.getMailboxLock(folder);
  } catch (e) {
    // Dovecot's SELECT of a missing folder carries no response code: ask whether it exists.
    const exists = await c
      .list()
      .then((l) => l.some((f) => f.path === folder))
      .catch(() => true);
    if (!exists) throw new MssError('NOT_FOUND', { what: `folder ${folder} of ${bal}` });
    throw imapError(e, `open ${folder}`, `folder ${folder} of ${bal}`);
  }
  if (wasOpen && sync) {
    try {
      await c.noop();
    } catch (e) {
      lock.release();
      throw imapError(e, `open ${folder}`);
    }
  }
  return { release: () => lock.release(), stale: !!wasOpen && !sync };
}

/**
 * One message by UID. On a view that may be stale, a UID not found may be a message that
 * arrived since the last sync point: one NOOP, and ask again — so the NOOP is paid only
 * then, not by every read.
 */
async function fetchOneSynced(c: ImapFlow, uid: number, query: FetchQueryObject, stale: boolean): Promise<FetchMessageObject | false> {
  const m = await c.fetchOne(String(uid), query, { uid: true });
  if (m || !stale) return m;
  await c.noop();
  return c.fetchOne(String(uid), query, { uid: true });
}

export interface ListQuery {
  page: number;
  pageSize: number;
  sort: 'date' | 'from' | 'subject';
  order: 'asc' | 'desc';
  /** IMAP SEARCH TEXT: headers and body. */
  q?: string;
  unseen?: boolean;
}

const SYSTEM_FLAGS = new Set(['\\seen', '\\flagged', '\\answered', '\\draft', '\\deleted', '\\recent']);

export function flagsOf(f: Set<string> | undefined): Flags {
  const has = (x: string) => !!f && [...f].some((y) => y.toLowerCase() === x);
  return { seen: has('\\seen'), flagged: has('\\flagged'), answered: has('\\answered'), draft: has('\\draft'), keywords: [...(f ?? [])].filter((x) => !SYSTEM_FLAGS.has(x.toLowerCase())) };
}

const iso = (d: Date | string | undefined) => (d ? new Date(d).toISOString() : null);
const addrs = (a: MessageAddressObject[] | undefined) => (a ?? []).map((x) => ({ name: x.name ?? '', address: x.address ?? '' }));

/** "1:4,7,9:10" for a set of UIDs. */
export function uidSet(uids: number[]): string {
  const s = [...uids].sort((a, b) => a - b);
  const runs: string[] = [];
  for (let i = 0; i < s.length; ) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j] + 1) j++;
    runs.push(j > i ? `${s[i]}:${s[j]}` : String(s[i]));
    i = j + 1;
  }
  return runs.join(',');
}

/** What this process already fetched from each box (box-memo.ts); at most this many UIDs' values, all boxes together. */
const MEMO_UIDS = 200_000;
const memo = new BoxMemo(MEMO_UIDS);
const perUid = <V>(c: ImapFlow, bal: string, folder: string, what: string) => memo.memo<V>(bal, folder, c.mailbox ? String(c.mailbox.uidValidity) : '', what);
const sortKeys = (c: ImapFlow, bal: string, folder: string, sort: ListQuery['sort']) => perUid<string | number>(c, bal, folder, `sort ${sort}`);
/** Summaries kept per box and folder, at most this many (a long scroll starts the memo again). */
const MAX_SUMMARIES = 2000;

/** What a read needs besides the content and the flags; immutable per UID, so kept from the list's (or an earlier read's) FETCH. */
interface Meta {
  date: string | null;
  size: number;
  structure: MessageStructureObject | undefined;
}
const metas = (c: ImapFlow, bal: string, folder: string) => perUid<Meta>(c, bal, folder, 'meta');
function keepMeta(c: ImapFlow, bal: string, folder: string, uid: number, meta: Meta): void {
  const m = metas(c, bal, folder);
  if (m.size >= MAX_SUMMARIES) m.clear();
  m.set(uid, meta);
}

/**
 * The folder's UIDs from this connection's last SEARCH ALL. Between syncs the set changes only
 * by arrivals (EXISTS grows) and expunges (imapflow's 'expunge' events), so a list without
 * criteria reuses it while neither happened: one IMAP command fewer per page. The snapshot is
 * taken before the SEARCH, so an arrival announced with its answer means a new SEARCH next time.
 */
const allUids = new WeakMap<ImapFlow, { id: string; exists: number; expunges: number; uids: number[] }>();
const expungeCounts = new WeakMap<ImapFlow, { n: number }>();
function expungesSeen(c: ImapFlow): number {
  let e = expungeCounts.get(c);
  if (!e) {
    const counter = { n: 0 };
    expungeCounts.set(c, (e = counter));
    c.on('expunge', () => counter.n++);
  }
  return e.n;
}
async function everyUid(c: ImapFlow, folder: string): Promise<number[]> {
  const id = `${folder}\u0000${c.mailbox ? String(c.mailbox.uidValidity) : ''}`;
  const now = { id, exists: c.mailbox ? c.mailbox.exists : -1, expunges: expungesSeen(c) };
  const known = allUids.get(c);
  if (known && known.id === now.id && known.exists === now.exists && known.expunges === now.expunges) return known.uids;
  const uids = (await c.search({ all: true }, { uid: true })) || [];
  allUids.set(c, { ...now, uids });
  return uids;
}

/** Subjects sort without their reply / forward prefixes, as mail clients do. */
const subjectKey = (s: string | undefined) => (s ?? '').replace(/^(\s*(re|fwd?|tr|aw)\s*(\[\d+\])?\s*:\s*)+/i, '').toLowerCase();

/**
 * The page asked for. Searching gives the matching UIDs; they are sorted on a small fetch
 * (INTERNALDATE, or the envelope for from / subject) — the proxy offers no SORT to rely on —
 * and only the page's messages are fetched in full.
 */
export async function listMessages(c: ImapFlow, bal: string, folder: string, q: ListQuery): Promise<{ total: number; messages: MessageSummary[] }> {
  return inFolder(c, bal, folder, async () => {
    try {
      const criteria: SearchObject = {};
      if (q.q) criteria.text = q.q;
      if (q.unseen) criteria.seen = false;
      const found = q.q || q.unseen ? (await c.search(criteria, { uid: true })) || [] : await everyUid(c, folder);
      if (!found.length) return { total: 0, messages: [] };
      const keys = sortKeys(c, bal, folder, q.sort);
      const missing = found.filter((u) => !keys.has(u));
      if (missing.length) {
        const query = q.sort === 'date' ? { internalDate: true } : { envelope: true };
        for await (const m of c.fetch(uidSet(missing), query, { uid: true })) {
          const from = m.envelope?.from?.[0];
          keys.set(m.uid, q.sort === 'date' ? new Date(m.internalDate ?? 0).getTime() : q.sort === 'from' ? (from?.name || from?.address || '').toLowerCase() : subjectKey(m.envelope?.subject));
        }
      }
      const dir = q.order === 'asc' ? 1 : -1;
      const sorted = found.filter((u) => keys.has(u)).sort((a, b) => {
        const ka = keys.get(a)!;
        const kb = keys.get(b)!;
        const cmp = typeof ka === 'number' && typeof kb === 'number' ? ka - kb : String(ka).localeCompare(String(kb), 'fr');
        return (cmp || a - b) * dir;
      });
      const page = sorted.slice((q.page - 1) * q.pageSize, q.page * q.pageSize);
      if (!page.length) return { total: sorted.length, messages: [] };
      const known = perUid<Omit<MessageSummary, 'flags'>>(c, bal, folder, 'summary');
      const flags = new Map<number, Flags>();
      let fresh = page.filter((u) => !known.has(u));
      if (fresh.length && known.size + fresh.length > MAX_SUMMARIES) {
        known.clear();
        fresh = page;
      }
      if (fresh.length) {
        for await (const m of c.fetch(uidSet(fresh), { uid: true, flags: true, envelope: true, internalDate: true, size: true, bodyStructure: true }, { uid: true })) {
          const { flags: f, ...rest } = summary(m);
          known.set(m.uid, rest);
          flags.set(m.uid, f);
          if (typeof m.size === 'number') keepMeta(c, bal, folder, m.uid, { date: rest.date, size: m.size, structure: m.bodyStructure });
        }
      }
      const seen = page.filter((u) => known.has(u) && !flags.has(u));
      if (seen.length) for await (const m of c.fetch(uidSet(seen), { uid: true, flags: true }, { uid: true })) flags.set(m.uid, flagsOf(m.flags));
      // A message expunged meanwhile answers no FETCH: it is not shown.
      const messages = page.filter((u) => known.has(u) && flags.has(u)).map((u) => ({ ...known.get(u)!, flags: flags.get(u)! }));
      return { total: sorted.length, messages };
    } catch (e) {
      throw imapError(e, `search ${folder}`);
    }
  });
}

function summary(m: FetchMessageObject): MessageSummary {
  const env = m.envelope;
  return {
    uid: m.uid,
    date: iso(m.internalDate),
    sentAt: iso(env?.date),
    subject: env?.subject ?? '',
    from: addrs(env?.from),
    to: addrs(env?.to),
    cc: addrs(env?.cc),
    messageId: env?.messageId ?? null,
    size: m.size ?? 0,
    flags: flagsOf(m.flags),
    hasAttachments: attachmentsOf(m.bodyStructure).length > 0,
  };
}

const notFound = (bal: string, folder: string, uid: number) => new MssError('NOT_FOUND', { what: `message ${uid} in ${folder} of ${bal}` });

/** The raw message with its flags and structure; marks it seen when asked (reading it opens it). */
export async function fetchMessage(c: ImapFlow, bal: string, folder: string, uid: number, markSeen: boolean) {
  return inFolder(c, bal, folder, async (stale) => {
    try {
      const m = await fetchOneSynced(c, uid, { uid: true, source: true, flags: true, internalDate: true, size: true, bodyStructure: true }, stale);
      if (!m || !m.source) throw notFound(bal, folder, uid);
      const flags = await markedSeen(c, uid, flagsOf(m.flags), markSeen);
      return { raw: m.source, flags, date: iso(m.internalDate), size: m.size ?? m.source.length, structure: m.bodyStructure };
    } catch (e) {
      throw imapError(e, `read message ${uid}`);
    }
  }, { sync: false });
}

/**
 * A message to show: its first `whole` bytes with flags, date, size and structure in one
 * FETCH (date, size and structure only when this process has not fetched them from the box yet). A
 * message that fits is returned whole (`raw`). A bigger one is read by the sections
 * `sections(structure)` names — header, text parts, attachments' decoded sizes — so its
 * attachments are not downloaded; when it names none, the rest is fetched and it is whole.
 */
export async function readMessage<R>(
  c: ImapFlow,
  bal: string,
  folder: string,
  uid: number,
  o: {
    markSeen: boolean;
    whole: number;
    sections: (s: MessageStructureObject | undefined) => { plain: string; html: string | null; sized: string[] } | null;
    /** The message as rendered before (render-cache.ts), by the folder's UIDVALIDITY. */
    rendered?: (validity: string) => R | undefined;
  },
) {
  return inFolder(
    c,
    bal,
    folder,
    async (stale) => {
      try {
        const validity = c.mailbox ? String(c.mailbox.uidValidity) : '';
        const copy = o.rendered?.(validity);
        if (copy !== undefined) {
          // Rendered before: the message's flags, and its first byte — a read of the message,
          // which the proxy journals as such (imap-proxy/trace.ts readItems), on this person's
          // own connection; the first byte, not the text's, so Dovecot need not parse the
          // header. No answer (a message expunged, by another session too): it is gone, as
          // the whole message's FETCH says.
          const m = await fetchOneSynced(c, uid, { uid: true, flags: true, source: { start: 0, maxLength: 1 } }, stale);
          if (!m || !m.source) throw notFound(bal, folder, uid);
          const flags = await markedSeen(c, uid, flagsOf(m.flags), o.markSeen);
          return { validity, flags, rendered: copy };
        }
        // A message listed (or read) before from this box: its date, size and structure
        // are known, and the FETCH asks only for the flags and the content.
        const kept = metas(c, bal, folder).get(uid);
        const source = { start: 0, maxLength: o.whole };
        const m = await fetchOneSynced(c, uid, kept ? { uid: true, flags: true, source } : { uid: true, flags: true, internalDate: true, size: true, bodyStructure: true, source }, stale);
        if (!m || !m.source) throw notFound(bal, folder, uid);
        const flags = flagsOf(m.flags);
        const fixed = kept ?? { date: iso(m.internalDate), size: m.size ?? m.source.length, structure: m.bodyStructure };
        if (!kept) keepMeta(c, bal, folder, uid, fixed);
        const size = fixed.size;
        const meta = { flags, ...fixed };
        let content: { raw: Buffer } | Sections | null = m.source.length >= size ? { raw: m.source } : null;
        const plan = content ? null : o.sections(fixed.structure);
        if (plan) content = await bySections(c, uid, plan);
        if (!content) {
          const rest = await c.fetchOne(String(uid), { uid: true, source: true }, { uid: true });
          if (!rest || !rest.source) throw notFound(bal, folder, uid);
          content = { raw: rest.source };
        }
        await markedSeen(c, uid, flags, o.markSeen);
        return { ...meta, validity, content };
      } catch (e) {
        throw imapError(e, `read message ${uid}`);
      }
    },
    { sync: false },
  );
}

/** Reading opens the message: \Seen is set when asked and not set yet. */
async function markedSeen(c: ImapFlow, uid: number, flags: Flags, markSeen: boolean): Promise<Flags> {
  if (markSeen && !flags.seen) {
    await c.messageFlagsAdd(String(uid), ['\\Seen'], { uid: true });
    flags.seen = true;
  }
  return flags;
}

interface Sections {
  header: Buffer;
  plain: Buffer;
  html: Buffer | null;
  sizes: Map<string, number>;
}

/**
 * The header, the text parts with their MIME headers, the attachments' decoded sizes; null
 * when the server leaves one out (or has no BINARY): the caller reads the message whole then,
 * so the answer never differs.
 */
async function bySections(c: ImapFlow, uid: number, plan: { plain: string; html: string | null; sized: string[] }): Promise<Sections | null> {
  const keys = [`${plan.plain}.mime`, plan.plain, ...(plan.html ? [`${plan.html}.mime`, plan.html] : [])];
  const p = await c.fetchOne(String(uid), { uid: true, headers: true, bodyParts: keys }, { uid: true });
  if (!p || !p.headers || !p.bodyParts || keys.some((k) => !p.bodyParts!.has(k))) return null;
  const part = (k: string) => p.bodyParts!.get(k)!;
  let sizes = new Map<string, number>();
  if (plan.sized.length) {
    if (!c.capabilities.has('BINARY')) return null;
    sizes = await binarySizes(c, uid, plan.sized);
    if (plan.sized.some((x) => !sizes.has(x))) return null;
  }
  return {
    header: p.headers,
    plain: Buffer.concat([part(`${plan.plain}.mime`), part(plan.plain)]),
    html: plan.html ? Buffer.concat([part(`${plan.html}.mime`), part(plan.html)]) : null,
    sizes,
  };
}

/**
 * The decoded size of body parts (RFC 3516 BINARY.SIZE), which the attachment list shows
 * without downloading them. imapflow has no query item for it: the command goes through its
 * own command runner (exec), as its fetch does.
 */
async function binarySizes(c: ImapFlow, uid: number, parts: string[]): Promise<Map<string, number>> {
  const sizes = new Map<string, number>();
  type Attr = { type?: string; value?: unknown } | Attr[];
  const runner = c as unknown as { exec(cmd: string, attrs: unknown[], o: { untagged: Record<string, (u: { attributes?: Attr[] }) => void> }): Promise<{ next?: () => void }> };
  const items = parts.map((p) => ({ type: 'ATOM', value: 'BINARY.SIZE', section: [{ type: 'ATOM', value: p }] }));
  const r = await runner.exec('UID FETCH', [{ type: 'SEQUENCE', value: String(uid) }, items.length === 1 ? items[0] : items], {
    untagged: {
      FETCH: (u) => {
        const list = (u.attributes?.[1] ?? []) as Attr[];
        // The parser gives the item as one atom, "BINARY.SIZE[2]", then its number.
        for (let i = 0; i + 1 < list.length; i += 2) {
          const k = /^BINARY\.SIZE\[([\d.]+)\]$/i.exec(String((list[i] as { value?: unknown }).value));
          const n = Number((list[i + 1] as { value?: unknown }).value);
          if (k && Number.isSafeInteger(n) && n >= 0) sizes.set(k[1], n);
        }
      },
    },
  });
  r.next?.();
  return sizes;
}

/**
 * One attachment as a stream, decoded by imapflow from the part's transfer encoding. The
 * folder lock is held until the stream ends: `done` must be called then (or on abort).
 */
export async function openAttachment(c: ImapFlow, bal: string, folder: string, uid: number, index: number, check?: (ref: AttachmentRef) => void): Promise<{ ref: AttachmentRef; content: Readable; filename: string | null; done: () => void }> {
  const lock = await lockFolder(c, bal, folder, false);
  try {
    const m = await fetchOneSynced(c, uid, { uid: true, bodyStructure: true }, lock.stale);
    if (!m) throw notFound(bal, folder, uid);
    const ref = attachmentsOf(m.bodyStructure)[index];
    if (!ref) throw new MssError('NOT_FOUND', { what: `attachment ${index} of message ${uid} in ${folder} of ${bal}` });
    check?.(ref);
    const d = await c.download(String(uid), ref.part, { uid: true });
    if (!('content' in d) || !d.content) throw new MssError('NOT_FOUND', { what: `attachment ${index} of message ${uid} in ${folder} of ${bal}` });
    const l = lock;
    let released = false;
    return {
      ref,
      content: d.content,
      filename: d.meta?.filename ?? ref.filename,
      done: () => {
        if (!released) l.release();
        released = true;
      },
    };
  } catch (e) {
    lock.release();
    throw imapError(e, `download from message ${uid}`);
  }
}

export async function setFlags(c: ImapFlow, bal: string, folder: string, uid: number, f: { seen?: boolean; flagged?: boolean; answered?: boolean }): Promise<Flags> {
  return inFolder(c, bal, folder, async (stale) => {
    try {
      const m = await fetchOneSynced(c, uid, { uid: true, flags: true }, stale);
      if (!m) throw notFound(bal, folder, uid);
      const names = { seen: '\\Seen', flagged: '\\Flagged', answered: '\\Answered' } as const;
      const add = (Object.keys(names) as Array<keyof typeof names>).filter((k) => f[k] === true).map((k) => names[k]);
      const remove = (Object.keys(names) as Array<keyof typeof names>).filter((k) => f[k] === false).map((k) => names[k]);
      if (add.length) await c.messageFlagsAdd(String(uid), add, { uid: true });
      if (remove.length) await c.messageFlagsRemove(String(uid), remove, { uid: true });
      const after = await c.fetchOne(String(uid), { uid: true, flags: true }, { uid: true });
      return flagsOf(after ? after.flags : undefined);
    } catch (e) {
      throw imapError(e, `change the flags of message ${uid}`);
    }
  }, { sync: false });
}

export async function addKeyword(c: ImapFlow, bal: string, folder: string, uid: number, keyword: string): Promise<void> {
  await inFolder(c, bal, folder, async () => {
    try {
      await c.messageFlagsAdd(String(uid), [keyword], { uid: true });
    } catch (e) {
      throw imapError(e, `flag message ${uid}`);
    }
  });
}

export async function moveMessage(c: ImapFlow, bal: string, folder: string, uid: number, to: string): Promise<{ uid: number | null }> {
  return inFolder(c, bal, folder, async () => {
    try {
      const m = await c.fetchOne(String(uid), { uid: true }, { uid: true });
      if (!m) throw notFound(bal, folder, uid);
      const r = await c.messageMove(String(uid), to, { uid: true });
      if (!r) throw new MssError('NOT_FOUND', { what: `folder ${to} of ${bal}` });
      return { uid: r.uidMap?.get(uid) ?? null };
    } catch (e) {
      throw imapError(e, `move message ${uid} to ${to}`, `folder ${to} of ${bal}`);
    }
  });
}

/** The box's Trash folder (special use \Trash), if it has one. */
export async function trashFolder(c: ImapFlow): Promise<string | null> {
  const list = await c.list();
  return list.find((f) => f.specialUse === '\\Trash')?.path ?? null;
}

/** To the Trash when there is one and the message is not already in it; otherwise \Deleted + EXPUNGE. */
export async function deleteMessage(c: ImapFlow, bal: string, folder: string, uid: number): Promise<{ movedTo: string | null }> {
  let trash: string | null;
  try {
    trash = await trashFolder(c);
  } catch (e) {
    throw imapError(e, `list the folders of ${bal}`);
  }
  return inFolder(c, bal, folder, async () => {
    try {
      const m = await c.fetchOne(String(uid), { uid: true }, { uid: true });
      if (!m) throw notFound(bal, folder, uid);
      if (trash && trash !== folder) {
        await c.messageMove(String(uid), trash, { uid: true });
        return { movedTo: trash };
      }
      // messageDelete sets \Deleted and expunges only this UID (UID EXPUNGE with UIDPLUS).
      await c.messageDelete(String(uid), { uid: true });
      return { movedTo: null };
    } catch (e) {
      throw imapError(e, `delete message ${uid}`);
    }
  });
}

/** The Sent folder (special use \Sent), where the API keeps a copy of what it sends. */
export async function appendToSent(c: ImapFlow, raw: Buffer, flags: string[] = ['\\Seen']): Promise<string | null> {
  const sent = (await c.list()).find((f) => f.specialUse === '\\Sent')?.path ?? null;
  if (!sent) return null;
  await c.append(sent, raw, flags);
  return sent;
}

/** The Drafts folder (special use \Drafts), or null when the box has none. */
export async function draftsFolder(c: ImapFlow): Promise<string | null> {
  return (await c.list()).find((f) => f.specialUse === '\\Drafts')?.path ?? null;
}

/** Keeps a draft in the Drafts folder (\Draft, \Seen): its folder and new UID. */
export async function appendDraft(c: ImapFlow, bal: string, raw: Buffer): Promise<{ folder: string; uid: number | null }> {
  try {
    const folder = await draftsFolder(c);
    if (!folder) throw new MssError('NOT_FOUND', { what: `the Drafts folder of ${bal}` });
    const r = await c.append(folder, raw, ['\\Draft', '\\Seen']);
    return { folder, uid: r && typeof r === 'object' && typeof r.uid === 'number' ? r.uid : null };
  } catch (e) {
    throw imapError(e, 'keep the draft');
  }
}

/** Deletes a message for good (\Deleted + UID EXPUNGE of that UID alone): a draft once sent or saved anew. */
export async function removeMessage(c: ImapFlow, bal: string, folder: string, uid: number): Promise<void> {
  await inFolder(c, bal, folder, async () => {
    try {
      await c.messageDelete(String(uid), { uid: true });
    } catch (e) {
      throw imapError(e, `delete message ${uid}`);
    }
  });
}
