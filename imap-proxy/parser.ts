// A pure, incremental IMAP command parser (RFC 3501 §9 / RFC 9051 grammar, the part a
// client sends). No sockets, no clock: bytes go in with push(), events come out of next().
// Two users:
//   - the pre-authentication session (mode 'preauth'): small limits; a literal bigger than
//     the limit is refused, an overlong line ends the connection;
//   - the post-login tracer (mode 'trace'): follows the command stream the client sends to
//     Dovecot without holding message bodies — a literal bigger than keepLiteral is
//     skipped by count and reported by its size only.
// Garbage never throws: it becomes a `bad` event (answer BAD, carry on) or a `fatal` one
// (answer BYE, close), each with a reason a person can read.

export type Arg =
  | { type: 'atom'; value: string }
  /** value is null when the literal was skipped (trace mode, larger than keepLiteral). */
  | { type: 'string'; value: Buffer | null; size: number; literal: boolean }
  | { type: 'nil' }
  | { type: 'list'; items: Arg[] };

export interface Command {
  tag: string;
  /** Upper-cased command name (UID FETCH arrives as name UID, first argument FETCH). */
  name: string;
  args: Arg[];
}

export type ParseEvent =
  | ({ type: 'command' } & Command)
  /** A synchronising literal was announced and accepted: the server must send "+ …" now. */
  | { type: 'continue'; tag: string; name: string; size: number; /** Top-level arguments before the literal. */ argsSoFar: Arg[] }
  /** A raw line, when one was asked for with expectLine() (SASL continuation). */
  | { type: 'line'; text: string }
  /** The command is refused (tagged BAD, or untagged when no tag could be read); parsing goes on. */
  | { type: 'bad'; tag: string | null; name: string | null; reason: string; tooBig?: number }
  /** The stream cannot be followed any more: answer BYE and close. */
  | { type: 'fatal'; reason: string; code: 'line' | 'literal' };

export interface ParserOptions {
  mode: 'preauth' | 'trace';
  /** Longest line (one fragment between literals), CRLF excluded. */
  maxLine: number;
  /** preauth: largest literal accepted. trace: literals above this are skipped, not kept. */
  maxLiteral: number;
  /** preauth: literals in one command (LOGIN needs two, ID a few). trace: unlimited. */
  maxLiterals?: number;
}

type Frame = Arg[];

interface Partial {
  tag: string | null;
  name: string | null;
  /** The argument lists being built: [top-level, nested list, …]. */
  stack: Frame[];
  literals: number;
}

const CR = 13;
const LF = 10;

/** Characters that end an atom (RFC 3501 atom-specials, minus "]" which tags and atoms allow). */
const ATOM_SPECIALS = new Set(['(', ')', '{', ' ', '"', '\\']);

/** The announcement that ends a line fragment: {n}, {n+} (LITERAL+), ~{n} (literal8, RFC 3516). */
const LITERAL_AT_END = /(~?)\{(\d{1,20})(\+?)\}$/;

export class CommandParser {
  private buf: Buffer = Buffer.alloc(0);
  private partial: Partial | null = null;
  /** Bytes still to read as the current literal. */
  private literal: { size: number; left: number; keep: Buffer[] | null } | null = null;
  /** Bytes to drop (a refused non-synchronising literal), then resume at a line start. */
  private skip = 0;
  /** An over-long line in trace mode: drop up to the next LF, keep the tail to spot a literal. */
  private overlong: { tag: string | null; name: string | null; tail: string } | null = null;
  /** A synchronising literal announced, not yet answered by the server (trace mode). */
  private awaiting: { tag: string; size: number } | null = null;
  private wantLine = false;
  private dead = false;
  private readonly maxLiterals: number;

  constructor(private readonly opts: ParserOptions) {
    this.maxLiterals = opts.maxLiterals ?? (opts.mode === 'preauth' ? 4 : Infinity);
  }

  push(chunk: Buffer): void {
    if (this.dead || !chunk.length) return;
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
  }

  /** Bytes received and not parsed yet (handed on to Dovecot after login, or dropped at STARTTLS). */
  takeRemainder(): Buffer {
    const rest = this.buf;
    this.buf = Buffer.alloc(0);
    return rest;
  }

  /** Forget any partial command (after STARTTLS, nothing sent before the handshake counts). */
  reset(): void {
    this.buf = Buffer.alloc(0);
    this.partial = null;
    this.literal = null;
    this.skip = 0;
    this.overlong = null;
    this.awaiting = null;
    this.wantLine = false;
  }

  /** The next line is a raw line (AUTHENTICATE continuation), not a command. */
  expectLine(): void {
    this.wantLine = true;
  }

  /** Trace mode: which synchronising literal waits for the server's "+" or its refusal. */
  get awaitingContinuation(): { tag: string; size: number } | null {
    return this.awaiting;
  }

  /**
   * Trace mode: the server answered the synchronising literal. accepted: the client now
   * sends the bytes; refused (a tagged NO/BAD came instead): the client drops the command.
   */
  continuation(accepted: boolean): void {
    const a = this.awaiting;
    if (!a) return;
    this.awaiting = null;
    // A line refused here (badLine) has no partial command to hold the literal, yet the
    // server may have taken it (Dovecot is laxer than this tracer, e.g. on nesting): its
    // bytes follow and are skipped, not read as commands. (Found by fuzzing: reading them
    // as a literal of no command threw.)
    if (accepted && !this.partial) this.skip = a.size;
    else if (accepted) this.startLiteral(a.size);
    else {
      this.partial = null;
      this.literal = null;
    }
  }

  /** Bytes buffered: a caller stops reading from its socket when this grows. */
  get buffered(): number {
    return this.buf.length;
  }

  next(): ParseEvent | null {
    while (!this.dead && !this.awaiting) {
      if (this.skip) {
        const n = Math.min(this.skip, this.buf.length);
        this.buf = this.buf.subarray(n);
        this.skip -= n;
        if (this.skip) return null;
        continue;
      }
      if (this.literal) {
        const ev = this.readLiteral();
        if (ev === 'more') return null;
        if (ev) return ev;
        continue;
      }
      const nl = this.buf.indexOf(LF);
      if (nl < 0) {
        if (this.overlong) {
          this.overlong.tail = (this.overlong.tail + this.buf.toString('latin1')).slice(-32);
          this.buf = Buffer.alloc(0);
          return null;
        }
        if (this.buf.length > this.opts.maxLine + 1) return this.tooLong();
        return null;
      }
      const end = nl > 0 && this.buf[nl - 1] === CR ? nl - 1 : nl;
      const raw = this.buf.subarray(0, end);
      this.buf = this.buf.subarray(nl + 1);
      if (this.overlong) {
        const o = this.overlong;
        this.overlong = null;
        // The CR may have come in an earlier packet than the LF.
        const tail = (o.tail + raw.toString('latin1')).replace(/\r$/, '').slice(-32);
        const ev = this.badLine(o.tag, o.name, `line longer than ${this.opts.maxLine} bytes`, tail);
        if (ev) return ev;
        continue;
      }
      if (raw.length > this.opts.maxLine) {
        if (this.opts.mode === 'preauth') return this.fatal(`line longer than ${this.opts.maxLine} bytes`, 'line');
        const head = this.partial ?? headOf(raw.toString('latin1'));
        const ev = this.badLine(head.tag, head.name, `line longer than ${this.opts.maxLine} bytes`, raw.subarray(-32).toString('latin1'));
        this.partial = null;
        if (ev) return ev;
        continue;
      }
      if (this.wantLine && !this.partial) {
        this.wantLine = false;
        return { type: 'line', text: raw.toString('utf8') };
      }
      const ev = this.fragment(raw.toString('latin1'));
      if (ev) return ev;
    }
    return null;
  }

  private tooLong(): ParseEvent | null {
    if (this.opts.mode === 'preauth') return this.fatal(`line longer than ${this.opts.maxLine} bytes`, 'line');
    const head = this.partial ?? headOf(this.buf.toString('latin1', 0, 200));
    this.overlong = { tag: head.tag, name: head.name, tail: this.buf.subarray(-32).toString('latin1') };
    this.partial = null;
    this.buf = Buffer.alloc(0);
    return null;
  }

  private fatal(reason: string, code: 'line' | 'literal'): ParseEvent {
    this.dead = true;
    this.buf = Buffer.alloc(0);
    return { type: 'fatal', reason, code };
  }

  /**
   * A refused line: if it ended by announcing a non-synchronising literal, the client sends
   * those bytes regardless, and they must not be read as commands.
   */
  private badLine(tag: string | null, name: string | null, reason: string, tail: string): ParseEvent | null {
    this.partial = null;
    const m = LITERAL_AT_END.exec(tail);
    if (m && m[3] === '+') {
      const size = Number(m[2]);
      if (this.opts.mode === 'preauth' && size > this.opts.maxLiteral) return this.fatal(`literal of ${size} bytes announced; at most ${this.opts.maxLiteral} before login`, 'literal');
      this.skip = size;
    } else if (m && tag && this.opts.mode === 'trace') {
      // A synchronising literal after a line the server will refuse: the server answers
      // BAD instead of "+", so no bytes follow. Wait for that answer like any other.
      this.awaiting = { tag: tag ?? '*', size: Number(m[2]) };
    }
    return { type: 'bad', tag, name, reason };
  }

  private readLiteral(): ParseEvent | null | 'more' {
    const lit = this.literal!;
    const n = Math.min(lit.left, this.buf.length);
    if (n) {
      if (lit.keep) lit.keep.push(this.buf.subarray(0, n));
      this.buf = this.buf.subarray(n);
      lit.left -= n;
    }
    if (lit.left) return 'more';
    this.literal = null;
    const value = lit.keep ? Buffer.concat(lit.keep) : null;
    const p = this.partial!;
    p.stack[p.stack.length - 1].push({ type: 'string', value, size: lit.size, literal: true });
    return null;
  }

  private startLiteral(size: number) {
    this.literal = { size, left: size, keep: size <= this.opts.maxLiteral ? [] : null };
  }

  /** One line fragment: a whole command, or the part up to (and announcing) a literal. */
  private fragment(line: string): ParseEvent | null {
    let pos = 0;
    if (!this.partial) {
      const head = /^([^\x00-\x20(){%*"\\\x7f-\xff]+)(?: ([A-Za-z][A-Za-z0-9_.-]*))?/.exec(line);
      if (!head) {
        if (!line.trim()) return { type: 'bad', tag: null, name: null, reason: 'empty command line' };
        return this.badLine(null, null, 'a command starts with a tag (letters, digits, dots…) and a space', line.slice(-32));
      }
      const tag = head[1];
      if (tag.includes('+')) return this.badLine(null, null, 'a tag may not contain "+"', line.slice(-32));
      // Before anything echoes the tag back (found by fuzzing: a missing name echoed a long one).
      if (tag.length > 64) return this.badLine(null, null, 'tag longer than 64 characters', line.slice(-32));
      if (!head[2]) return this.badLine(tag, null, 'a command name is missing after the tag', line.slice(-32));
      this.partial = { tag, name: head[2].toUpperCase(), stack: [[]], literals: 0 };
      pos = head[0].length;
      if (pos < line.length && line[pos] !== ' ') return this.badLine(tag, this.partial.name, `unexpected "${printable(line[pos])}" after the command name`, line.slice(-32));
    }
    const p = this.partial;
    const fail = (reason: string) => this.badLine(p.tag, p.name, reason, line.slice(-32));
    while (pos < line.length) {
      const c = line[pos];
      const top = p.stack[p.stack.length - 1];
      if (c === ' ') {
        pos++;
        continue;
      }
      if (c === '(') {
        if (p.stack.length > 8) return fail('lists nested too deeply');
        const list: Arg = { type: 'list', items: [] };
        top.push(list);
        p.stack.push(list.items);
        pos++;
        continue;
      }
      if (c === ')') {
        if (p.stack.length === 1) return fail('")" without a matching "("');
        p.stack.pop();
        pos++;
        continue;
      }
      if (c === '"') {
        const q = readQuoted(line, pos);
        if (typeof q === 'string') return fail(q);
        top.push({ type: 'string', value: q.value, size: q.value.length, literal: false });
        pos = q.end;
        continue;
      }
      if (c === '{' || (c === '~' && line[pos + 1] === '{')) {
        const m = LITERAL_AT_END.exec(line.slice(pos));
        if (!m || m.index !== 0) return fail('a literal announcement {n} must end the line');
        if (m[1] && this.opts.mode === 'preauth') return fail('literal8 (~{n}) is not accepted before login');
        const size = Number(m[2]);
        const sync = m[3] !== '+';
        if (!Number.isSafeInteger(size)) return fail('literal size out of range');
        p.literals++;
        if (this.opts.mode === 'preauth') {
          if (size > this.opts.maxLiteral) {
            if (!sync) return this.fatal(`literal of ${size} bytes announced; at most ${this.opts.maxLiteral} before login`, 'literal');
            this.partial = null;
            return { type: 'bad', tag: p.tag, name: p.name, reason: `literal of ${size} bytes refused; at most ${this.opts.maxLiteral} before login`, tooBig: size };
          }
          if (p.literals > this.maxLiterals) {
            if (!sync) return this.fatal(`more than ${this.maxLiterals} literals in one command`, 'literal');
            this.partial = null;
            return { type: 'bad', tag: p.tag, name: p.name, reason: `more than ${this.maxLiterals} literals in one command` };
          }
        }
        if (sync) {
          if (this.opts.mode === 'trace') this.awaiting = { tag: p.tag!, size };
          else this.startLiteral(size);
          return { type: 'continue', tag: p.tag!, name: p.name!, size, argsSoFar: p.stack[0] };
        }
        this.startLiteral(size);
        return null;
      }
      // An atom; "[…]" inside it may hold spaces and parentheses (BODY[HEADER.FIELDS (TO)]).
      let end = pos;
      let depth = 0;
      while (end < line.length) {
        const d = line[end];
        // A flag (\Seen, \Deleted) is an atom that starts with a backslash.
        if (d === '\\' && end === pos) {
          end++;
          continue;
        }
        if (d === '[') depth++;
        else if (d === ']' && depth) depth--;
        else if (!depth && (ATOM_SPECIALS.has(d) || d < ' ' || d === '\x7f')) break;
        else if (d < ' ' || d === '\x7f') break;
        end++;
      }
      if (end === pos) return fail(`unexpected character "${printable(c)}"`);
      if (depth) return fail('"[" without a matching "]"');
      const word = line.slice(pos, end);
      top.push(word.toUpperCase() === 'NIL' ? { type: 'nil' } : { type: 'atom', value: word });
      pos = end;
      if (pos < line.length && line[pos] !== ' ' && line[pos] !== ')' && line[pos] !== '(') return fail(`unexpected "${printable(line[pos])}" after ${word}`);
    }
    if (p.stack.length > 1) return fail('"(" without a matching ")"');
    this.partial = null;
    return { type: 'command', tag: p.tag!, name: p.name!, args: p.stack[0] };
  }
}

/** Tag and command name of a line that could not be parsed whole, for the BAD answer. */
function headOf(line: string): { tag: string | null; name: string | null } {
  const m = /^([^\x00-\x20(){%*"\\\x7f+]{1,64}) ([A-Za-z]+)/.exec(line);
  return m ? { tag: m[1], name: m[2].toUpperCase() } : { tag: null, name: null };
}

/**
 * A quoted string from line[start] = '"'. Only \\ and \" are escapes (RFC 3501); 8-bit
 * characters are kept as bytes (passwords with accents arrive that way from real clients).
 */
function readQuoted(line: string, start: number): { value: Buffer; end: number } | string {
  const bytes: number[] = [];
  for (let i = start + 1; i < line.length; i++) {
    const ch = line.charCodeAt(i);
    if (ch === 0x22) {
      const after = line[i + 1];
      if (after !== undefined && after !== ' ' && after !== ')') return `unexpected "${printable(after)}" after a quoted string`;
      return { value: Buffer.from(bytes), end: i + 1 };
    }
    if (ch === 0x5c) {
      const nx = line.charCodeAt(i + 1);
      if (nx !== 0x22 && nx !== 0x5c) return 'in a quoted string, "\\" may only escape " or \\';
      bytes.push(nx);
      i++;
      continue;
    }
    if (ch === 0) return 'NUL byte in a quoted string';
    bytes.push(ch);
  }
  return 'quoted string not terminated on its line';
}

function printable(c: string): string {
  const code = c.charCodeAt(0);
  return code < 0x20 || code >= 0x7f ? `\\x${code.toString(16).padStart(2, '0')}` : c;
}

/** The text of a string or atom argument (UTF-8), or null for NIL / a list / a skipped literal. */
export function argText(a: Arg | undefined): string | null {
  if (!a) return null;
  if (a.type === 'atom') return a.value;
  if (a.type === 'string') return a.value ? a.value.toString('utf8') : null;
  return null;
}
