// Property-based fuzzing of the IMAP command parser (imap-proxy/parser.ts), both modes: the
// pre-authentication one reads anything anyone on the Internet sends to 143/993; the trace
// one follows logged-in clients. For random bytes, mutated valid commands and generated
// valid ones, in any TCP cutting:
//   - nothing throws: garbage becomes BAD or BYE events;
//   - what reaches the wire is safe: no CR, LF or NUL in a BAD/BYE sentence, tags as the
//     grammar allows them, nothing after a BYE;
//   - memory stays bounded: after each read, at most one line's worth is buffered and no
//     literal kept is larger than the limit; nothing is retained across inputs;
//   - the events do not depend on where TCP cut the stream;
//   - a valid command (grammar-generated) comes out as it was written.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CommandParser, type Arg, type ParseEvent, type ParserOptions } from '../../imap-proxy/parser.js';
import { check, cuts, MAX_RETAINED_GROWTH, mutated, pieces, retainedGrowth, soup } from './harness.js';

const PREAUTH: ParserOptions = { mode: 'preauth', maxLine: 200, maxLiteral: 64 };
const TRACE: ParserOptions = { mode: 'trace', maxLine: 200, maxLiteral: 16 };

const TOKENS = [
  'a ', 'A001 ', '* ', '+ ', 'LOGIN ', 'AUTHENTICATE PLAIN ', 'AUTHENTICATE EXTERNAL =', 'ID ', 'NOOP', 'STARTTLS', 'CAPABILITY', 'LOGOUT',
  'SELECT INBOX', 'UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (TO FROM)])', 'APPEND INBOX (\\Seen) ', 'NIL', '"', '\\"', '\\\\', '\\', '(', ')', '((((((((((',
  '[', ']', '{', '}', '{5}', '{5+}', '{0}', '{64}', '{65}', '{4294967296}', '{99999999999999999999}', '~{3}', '{3}\r\n', '{2+}\r\n',
  '\r\n', '\n', '\r', '\0', ' ', '  ', '\t', '\x7f', '\xff', '\xc3\xa9', 'x'.repeat(100), 'é',
];

/** A client's input: random soup of IMAP tokens, or a valid session with mutations. */
const VALID = fc.constantFrom(
  'a1 CAPABILITY\r\nA001 LOGIN jeanne "secret pw"\r\n',
  'a LOGIN {6}\r\njeanne {9}\r\nse"cr et\\\r\n',
  'a LOGIN {6+}\r\njeanne {3+}\r\n\r\n \r\nb NOOP\r\n',
  'i ID ("name" "Thunderbird" "version" "115.0" "os" NIL)\r\nz LOGOUT\r\n',
  'a AUTHENTICATE PLAIN\r\nAGplYW5uZQBzZWNyZXQ=\r\nb SELECT INBOX\r\n',
  'c UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (TO FROM SUBJECT)])\r\nd APPEND Drafts (\\Draft) {12}\r\nHello world!\r\n',
).map((s) => Buffer.from(s, 'latin1'));
const INPUT = fc.oneof(soup(TOKENS), mutated(VALID, TOKENS));

const TAG = /^[^\x00-\x20(){%*"\\\x7f-\xff+]{1,64}$/;

interface Run {
  events: ParseEvent[];
}

/**
 * Feeds the pieces as a session would: drain after each, answer trace-mode continuations
 * from `accept` (the server's "+" or its refusal), and after AUTHENTICATE read the next
 * line raw. Checks the per-read invariants as it goes.
 */
function drive(opts: ParserOptions, chunks: Buffer[], accept: boolean[]): Run {
  const p = new CommandParser(opts);
  const events: ParseEvent[] = [];
  let answered = 0;
  let over = false;
  const drain = () => {
    for (;;) {
      const e = p.next();
      if (!e) {
        if (!p.awaitingContinuation) return;
        p.continuation(accept[answered++ % Math.max(accept.length, 1)] ?? true);
        continue;
      }
      assert.equal(over, false, 'an event after a BYE');
      events.push(e);
      checkEvent(opts, e);
      if (e.type === 'fatal') over = true;
      if (e.type === 'command' && e.name === 'AUTHENTICATE') p.expectLine();
    }
  };
  for (const c of chunks) {
    p.push(c);
    drain();
    // Bounded: one line (the caller stops reading while a trace literal waits for "+").
    if (!p.awaitingContinuation) assert.ok(p.buffered <= opts.maxLine + 1);
  }
  return { events };
}

function checkEvent(opts: ParserOptions, e: ParseEvent) {
  const wireSafe = (s: string) => assert.doesNotMatch(s, /[\r\n\0]/);
  switch (e.type) {
    case 'bad':
      wireSafe(e.reason);
      assert.ok(e.reason.length > 0);
      if (e.tag !== null) assert.match(e.tag, TAG);
      break;
    case 'fatal':
      wireSafe(e.reason);
      break;
    case 'continue':
      assert.match(e.tag, TAG);
      if (opts.mode === 'preauth') assert.ok(e.size <= opts.maxLiteral);
      break;
    case 'line':
      wireSafe(e.text);
      break;
    case 'command':
      assert.match(e.tag, TAG);
      assert.match(e.name, /^[A-Z][A-Z0-9_.-]*$/);
      checkArgs(opts, e.args);
      break;
  }
}

function checkArgs(opts: ParserOptions, args: Arg[]) {
  for (const a of args) {
    if (a.type === 'list') checkArgs(opts, a.items);
    if (a.type === 'string' && a.literal) {
      if (a.value) assert.equal(a.value.length, a.size);
      if (opts.mode === 'preauth') assert.ok(a.size <= opts.maxLiteral);
      else assert.equal(a.value === null, a.size > opts.maxLiteral);
    }
  }
}

/** Events in a comparable form. */
function shown(events: ParseEvent[]): unknown[] {
  const arg = (a: Arg): unknown => (a.type === 'list' ? a.items.map(arg) : a.type === 'string' ? [a.literal, a.size, a.value?.toString('latin1') ?? null] : a.type === 'nil' ? null : a.value);
  return events.map((e) => (e.type === 'command' ? ['cmd', e.tag, e.name, e.args.map(arg)] : e.type === 'continue' ? ['+', e.tag, e.name, e.size] : e));
}

describe('IMAP parser on hostile input', () => {
  it('never throws, keeps the wire safe and its memory bounded, whatever the input and however TCP cut it (both modes)', async () => {
    const grown = await retainedGrowth(() =>
      check(fc.tuple(INPUT, cuts, fc.array(fc.boolean(), { maxLength: 4 })), ([input, at, accept]) => {
        for (const opts of [PREAUTH, TRACE]) {
          const whole = drive(opts, [input], accept);
          const cut = drive(opts, pieces(input, at), accept);
          assert.deepEqual(shown(cut.events), shown(whole.events));
        }
      }),
    );
    expect(grown).toBeLessThan(MAX_RETAINED_GROWTH);
  });
});

// ---------------------------------------------------------------------------------------
// Grammar-generated valid commands (RFC 3501 §9, the client side): what is written is read.

type Gen = { type: 'atom'; value: string } | { type: 'quoted'; value: string } | { type: 'literal'; value: string; plus: boolean } | { type: 'nil' } | { type: 'list'; items: Gen[] };

const chars = (set: string, min: number, max: number) => fc.string({ unit: fc.constantFrom(...set), minLength: min, maxLength: max });
const atom = chars("ABCXYZabcxyz0129.:@#$&'+,;=?!|/_-", 1, 12).filter((s) => s.toUpperCase() !== 'NIL');
const quoted = fc.string({ unit: fc.integer({ min: 1, max: 255 }).filter((c) => c !== 10 && c !== 13).map((c) => String.fromCharCode(c)), maxLength: 20 });
const literal = fc.record({ value: fc.string({ unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)), maxLength: 40 }), plus: fc.boolean() });

const { gen } = fc.letrec<{ gen: Gen }>((tie) => ({
  gen: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    atom.map((value) => ({ type: 'atom' as const, value })),
    quoted.map((value) => ({ type: 'quoted' as const, value })),
    literal.map((l) => ({ type: 'literal' as const, ...l })),
    fc.constant({ type: 'nil' as const }),
    fc.array(tie('gen'), { maxLength: 4 }).map((items) => ({ type: 'list' as const, items })),
  ),
}));

const depth = (g: Gen): number => (g.type === 'list' ? 1 + Math.max(0, ...g.items.map(depth)) : 0);
const literals = (g: Gen): number => (g.type === 'literal' ? 1 : g.type === 'list' ? g.items.reduce((n, i) => n + literals(i), 0) : 0);

const command = fc.record({
  tag: chars('AZaz09.', 1, 10),
  name: fc.tuple(chars('ABCXYZabcxyz', 1, 1), chars('ABZabz019', 0, 11)).map(([a, b]) => a + b),
  args: fc.array(gen, { maxLength: 5 }),
}).filter((c) => c.args.every((a) => depth(a) <= 8) && c.args.reduce((n, a) => n + literals(a), 0) <= 4);

function write(g: Gen): string {
  switch (g.type) {
    case 'atom':
      return g.value;
    case 'quoted':
      return `"${g.value.replace(/[\\"]/g, '\\$&')}"`;
    case 'literal':
      return `{${g.value.length}${g.plus ? '+' : ''}}\r\n${g.value}`;
    case 'nil':
      return 'NIL';
    case 'list':
      return `(${g.items.map(write).join(' ')})`;
  }
}

function expected(g: Gen): unknown {
  switch (g.type) {
    case 'atom':
      return g.value;
    case 'quoted':
      return [false, Buffer.from(g.value, 'latin1').length, g.value];
    case 'literal':
      return [true, g.value.length, g.value];
    case 'nil':
      return null;
    case 'list':
      return g.items.map(expected);
  }
}

const syncLiterals = (g: Gen): number => (g.type === 'literal' && !g.plus ? 1 : g.type === 'list' ? g.items.reduce((n, i) => n + syncLiterals(i), 0) : 0);

describe('IMAP parser on generated valid commands', () => {
  const modes: ParserOptions[] = [
    { mode: 'preauth', maxLine: 8192, maxLiteral: 8192 },
    { mode: 'trace', maxLine: 8192, maxLiteral: 8192 },
  ];
  it('reads back each command as written, with one "+" per synchronising literal, however TCP cut it (both modes)', () => {
    check(fc.tuple(command, cuts), ([c, at]) => {
      const wire = Buffer.from(`${c.tag} ${c.name}${c.args.map((a) => ' ' + write(a)).join('')}\r\n`, 'latin1');
      const sync = c.args.reduce((n, a) => n + syncLiterals(a), 0);
      for (const opts of modes) {
        const out = shown(drive(opts, pieces(wire, at), [true]).events);
        assert.equal(out.filter((e) => Array.isArray(e) && e[0] === '+').length, sync);
        assert.deepEqual(out.slice(sync), [['cmd', c.tag, c.name.toUpperCase(), c.args.map(expected)]]);
      }
    });
  });
});

describe('IMAP parser: counterexamples found by fuzzing (regressions)', () => {
  it('trace mode: the server accepts a literal after a line the tracer refused — its bytes are skipped, nothing throws', () => {
    // "a {3}": no command name, refused here; a laxer server may still answer "+".
    const p = new CommandParser(TRACE);
    p.push(Buffer.from('a {3}\r\n'));
    expect(p.next()).toMatchObject({ type: 'bad', tag: 'a', reason: 'a command name is missing after the tag' });
    expect(p.next()).toBeNull();
    expect(p.awaitingContinuation).toEqual({ tag: 'a', size: 3 });
    p.continuation(true);
    p.push(Buffer.from('xyz\r\nb NOOP\r\n'));
    expect(shown([p.next()!, p.next()!])).toEqual([{ type: 'bad', tag: null, name: null, reason: 'empty command line' }, ['cmd', 'b', 'NOOP', []]]);
  });

  it('a tag longer than 64 characters is never echoed, even when the command name is missing', () => {
    for (const opts of [PREAUTH, TRACE]) {
      const p = new CommandParser(opts);
      p.push(Buffer.from(`${'x'.repeat(100)}{2+}\r\n`));
      expect(p.next()).toMatchObject({ type: 'bad', tag: null, reason: 'tag longer than 64 characters' });
    }
  });
});
