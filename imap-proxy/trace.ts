// Functional traces (MSSanté CONF.17/18: every processing step on a BAL is traced — who,
// when, what). The proxy follows the client's commands (CommandParser in trace mode) and
// Dovecot's completions (ResponseScanner) and turns the pairs into actions: a mailbox
// opened, a message read, a message marked \Deleted, expunged, moved, copied, appended, a
// folder deleted or renamed. Pure: events in, actions out; the session journals them.
import { decodeMutf7 } from './mutf7.js';
import { argText, type Arg, type ParseEvent } from './parser.js';
import type { ServerEvent } from './responses.js';

export type TraceOp = 'select' | 'examine' | 'fetch' | 'store' | 'expunge' | 'move' | 'copy' | 'append' | 'delete' | 'rename';

export interface TraceAction {
  op: TraceOp;
  /** The mailbox acted on (decoded from modified UTF-7); null when none was selected. */
  mailbox: string | null;
  status: 'OK' | 'NO' | 'BAD';
  /** When Dovecot completed it (ms since the epoch). */
  at: number;
  uid?: boolean;
  /** Sequence or UID set as the client gave it (capped). */
  set?: string;
  /** fetch: the items that read content (BODY[], BINARY[1], RFC822…). */
  items?: string[];
  /** store: the operation and flags, e.g. "+FLAGS (\Deleted)". */
  flags?: string;
  /** move / copy / rename: the destination. */
  to?: string;
  /** append: bytes of each message. */
  sizes?: number[];
  /** expunge / move: messages Dovecot reported removed. */
  expunged?: number;
  /** expunge: how it happened (EXPUNGE, UID EXPUNGE, CLOSE). */
  via?: string;
  /** The command could not be parsed whole, but Dovecot ran it: recorded anyway. */
  unparsed?: boolean;
}

interface Pending {
  op: TraceOp | 'close' | 'unselect' | 'compress' | null;
  cmd: string;
  mailbox?: string;
  readOnly?: boolean;
  partial: Omit<TraceAction, 'op' | 'mailbox' | 'status' | 'at'>;
  expunged: number;
}

/** Longest set recorded in a trace; a set of 60,000 UIDs is summarised, not stored. */
const MAX_SET = 300;
/** Commands in flight kept track of; a client that pipelines more is not traced beyond this. */
const MAX_PENDING = 10_000;

const TRACED = new Set(['SELECT', 'EXAMINE', 'FETCH', 'STORE', 'EXPUNGE', 'MOVE', 'COPY', 'APPEND', 'DELETE', 'RENAME', 'CLOSE', 'UNSELECT', 'COMPRESS']);

export class SessionTracer {
  private pending = new Map<string, Pending>();
  private selected: { mailbox: string; readOnly: boolean } | null = null;
  /** Set when the client turned on COMPRESS: the stream can no longer be followed. */
  compressed = false;

  constructor(
    private readonly emit: (a: TraceAction) => void,
    private readonly now: () => number = Date.now,
  ) {}

  get selectedMailbox(): string | null {
    return this.selected?.mailbox ?? null;
  }

  onClient(ev: ParseEvent): void {
    if (ev.type === 'command') {
      const p = describe(ev.name, ev.args);
      if (p) this.track(ev.tag, p);
    } else if (ev.type === 'continue' && ev.name === 'APPEND' && !this.pending.has(ev.tag)) {
      // A message announced with a synchronising literal: if Dovecot refuses it, the
      // command never completes on our side, yet the attempt belongs in the trace.
      this.track(ev.tag, { op: 'append', cmd: 'APPEND', mailbox: mailboxArg(ev.argsSoFar[0]), partial: { sizes: [ev.size] }, expunged: 0 });
    } else if (ev.type === 'bad' && ev.tag && ev.name) {
      // Our parser gave up on this command; if Dovecot accepts it, the trace still says so.
      const name = ev.name === 'UID' ? 'UID' : ev.name;
      if (TRACED.has(name) || name === 'UID') this.track(ev.tag, { op: opOf(name), cmd: name, partial: { unparsed: true }, expunged: 0 });
    }
  }

  onServer(ev: ServerEvent): void {
    if (ev.type === 'expunge' || ev.type === 'vanished') {
      for (const p of this.pending.values()) {
        if (p.op === 'expunge' || p.op === 'move' || p.op === 'close') {
          p.expunged++;
          break;
        }
      }
      return;
    }
    if (ev.type !== 'tagged') return;
    const p = this.pending.get(ev.tag);
    if (!p) return;
    this.pending.delete(ev.tag);
    const ok = ev.status === 'OK';
    switch (p.op) {
      case 'compress':
        if (ok) this.compressed = true;
        return;
      case 'unselect':
        if (ok) this.selected = null;
        return;
      case 'close': {
        const was = this.selected;
        if (ok) this.selected = null;
        // CLOSE silently expunges \Deleted messages of a mailbox opened read-write.
        if (ok && was && !was.readOnly) this.emit({ op: 'expunge', mailbox: was.mailbox, status: ev.status, at: this.now(), via: 'CLOSE', ...(p.expunged ? { expunged: p.expunged } : {}) });
        return;
      }
      case 'select':
      case 'examine':
        // A failed SELECT leaves no mailbox selected (RFC 3501 §6.3.1).
        this.selected = ok && p.mailbox !== undefined ? { mailbox: p.mailbox, readOnly: p.op === 'examine' } : null;
        this.emit({ op: p.op, mailbox: p.mailbox ?? null, status: ev.status, at: this.now(), ...p.partial });
        return;
      case null:
        return;
      default: {
        const mailbox = p.op === 'append' || p.op === 'delete' || p.op === 'rename' ? (p.mailbox ?? null) : this.selectedMailbox;
        this.emit({ op: p.op, mailbox, status: ev.status, at: this.now(), ...p.partial, ...(p.expunged ? { expunged: p.expunged } : {}) });
      }
    }
  }

  private track(tag: string, p: Pending) {
    if (this.pending.size >= MAX_PENDING) return;
    this.pending.set(tag, p);
  }
}

function opOf(name: string): Pending['op'] {
  switch (name) {
    case 'SELECT':
      return 'select';
    case 'EXAMINE':
      return 'examine';
    case 'FETCH':
      return 'fetch';
    case 'STORE':
      return 'store';
    case 'EXPUNGE':
      return 'expunge';
    case 'MOVE':
      return 'move';
    case 'COPY':
      return 'copy';
    case 'APPEND':
      return 'append';
    case 'DELETE':
      return 'delete';
    case 'RENAME':
      return 'rename';
    case 'CLOSE':
      return 'close';
    case 'UNSELECT':
      return 'unselect';
    case 'COMPRESS':
      return 'compress';
    default:
      // An unparsable UID command: most likely a FETCH/STORE/MOVE; recorded as such a read.
      return name === 'UID' ? 'fetch' : null;
  }
}

const cap = (s: string) => (s.length > MAX_SET ? `${s.slice(0, MAX_SET)}…` : s);
const mailboxArg = (a: Arg | undefined) => {
  const t = argText(a);
  return t === null ? undefined : decodeMutf7(t);
};

/** What a command is, for the tracer; null when it is not traced. */
function describe(name: string, args: Arg[]): Pending | null {
  let uid = false;
  if (name === 'UID') {
    const sub = argText(args[0]);
    if (!sub) return null;
    name = sub.toUpperCase();
    args = args.slice(1);
    uid = true;
  }
  if (!TRACED.has(name)) return null;
  const op = opOf(name);
  const base = (partial: Pending['partial'] = {}, mailbox?: string): Pending => ({ op, cmd: name, partial, mailbox, expunged: 0 });
  const set = () => cap(argText(args[0]) ?? '');
  switch (name) {
    case 'SELECT':
    case 'EXAMINE':
      return base({}, mailboxArg(args[0]));
    case 'FETCH': {
      const items = readItems(args[1]);
      if (!items.length) return null; // headers, flags, structure: not a read of a message
      return base({ uid, set: set(), items });
    }
    case 'STORE': {
      const at = args.findIndex((a) => a.type === 'atom' && /^[+-]?FLAGS(\.SILENT)?$/i.test(a.value));
      if (at < 0) return null;
      const flags = flagsOf(args[at + 1]);
      if (!flags.some((f) => f.toLowerCase() === '\\deleted')) return null;
      return base({ uid, set: set(), flags: `${(args[at] as { value: string }).value.toUpperCase()} (${flags.join(' ')})` });
    }
    case 'EXPUNGE':
      return base(uid ? { uid, set: set(), via: 'UID EXPUNGE' } : { via: 'EXPUNGE' });
    case 'MOVE':
    case 'COPY':
      return base({ uid, set: set(), to: mailboxArg(args[1]) });
    case 'APPEND':
      return base({ sizes: literalSizes(args.slice(1)) }, mailboxArg(args[0]));
    case 'DELETE':
      return base({}, mailboxArg(args[0]));
    case 'RENAME':
      return base({ to: mailboxArg(args[1]) }, mailboxArg(args[0]));
    default:
      return base();
  }
}

/**
 * The FETCH items that read a message's content: BODY[…] / BODY.PEEK[…] / BINARY[…] of the
 * whole message, its text or a part, and RFC822 / RFC822.TEXT. Header-only sections
 * (HEADER, HEADER.FIELDS, MIME), ENVELOPE, FLAGS and BODYSTRUCTURE are listing, not reading.
 */
export function readItems(a: Arg | undefined): string[] {
  const items = !a ? [] : a.type === 'list' ? a.items : [a];
  const out: string[] = [];
  for (const it of items) {
    if (it.type !== 'atom') continue;
    const v = it.value.toUpperCase();
    if (v === 'RFC822' || v === 'RFC822.TEXT') {
      out.push(v);
      continue;
    }
    const m = /^(BODY|BODY\.PEEK|BINARY|BINARY\.PEEK)\[([^\]]*)\]/.exec(v);
    if (!m) continue;
    const section = m[2];
    if (section === '' || /(^|\.)TEXT$/.test(section) || /^\d+(\.\d+)*$/.test(section)) out.push(it.value);
  }
  return out;
}

function flagsOf(a: Arg | undefined): string[] {
  if (!a) return [];
  const items = a.type === 'list' ? a.items : [a];
  return items.map((i) => argText(i)).filter((x): x is string => !!x);
}

function literalSizes(args: Arg[]): number[] {
  const out: number[] = [];
  const walk = (a: Arg) => {
    if (a.type === 'string' && a.literal) out.push(a.size);
    else if (a.type === 'list') a.items.forEach(walk);
  };
  args.forEach(walk);
  return out;
}
