import { describe, expect, it } from 'vitest';
import { CommandParser, type Arg, type ParseEvent, type ParserOptions } from '../../imap-proxy/parser.js';

// Golden cases: recorded client input → the events the parser must produce. Each input is
// fed whole, then again one byte at a time: an incremental parser gives the same answer
// however TCP cut the stream.

const PREAUTH: ParserOptions = { mode: 'preauth', maxLine: 200, maxLiteral: 64 };
const TRACE: ParserOptions = { mode: 'trace', maxLine: 200, maxLiteral: 16 };

/** Compact, readable form of an event. */
function show(e: ParseEvent): unknown {
  switch (e.type) {
    case 'command':
      return ['cmd', e.tag, e.name, ...e.args.map(showArg)];
    case 'continue':
      return ['+', e.tag, e.size];  // name checked in the trace tests
    case 'line':
      return ['line', e.text];
    case 'bad':
      return ['BAD', e.tag, e.reason];
    case 'fatal':
      return ['BYE', e.reason];
  }
}
function showArg(a: Arg): unknown {
  switch (a.type) {
    case 'atom':
      return a.value;
    case 'nil':
      return null;
    case 'string':
      return a.value === null ? { skipped: a.size } : a.literal ? { literal: a.value.toString('latin1') } : a.value.toString('latin1');
    case 'list':
      return a.items.map(showArg);
  }
}

function run(opts: ParserOptions, input: string | Buffer, byteByByte: boolean): unknown[] {
  const p = new CommandParser(opts);
  const bytes = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
  const out: unknown[] = [];
  const drain = () => {
    for (let e = p.next(); e; e = p.next()) out.push(show(e));
  };
  if (byteByByte) {
    for (let i = 0; i < bytes.length; i++) {
      p.push(bytes.subarray(i, i + 1));
      drain();
    }
  } else {
    p.push(bytes);
    drain();
  }
  return out;
}

function golden(opts: ParserOptions, input: string | Buffer, expected: unknown[]) {
  expect(run(opts, input, false)).toEqual(expected);
  expect(run(opts, input, true)).toEqual(expected);
}

describe('pre-authentication parser: golden cases', () => {
  const cases: Array<[string, string | Buffer, unknown[]]> = [
    ['CAPABILITY', 'a1 CAPABILITY\r\n', [['cmd', 'a1', 'CAPABILITY']]],
    ['lower-case command, bare LF', 'x noop\n', [['cmd', 'x', 'NOOP']]],
    ['LOGIN with atoms', 'A001 LOGIN jeanne secret\r\n', [['cmd', 'A001', 'LOGIN', 'jeanne', 'secret']]],
    ['LOGIN with quoted strings and escapes', 'a LOGIN "jeanne.martin@mssante.localhost" "p\\"w\\\\d x"\r\n', [['cmd', 'a', 'LOGIN', 'jeanne.martin@mssante.localhost', 'p"w\\d x']]],
    ['8-bit password in a quoted string (kept as bytes)', Buffer.concat([Buffer.from('a LOGIN u "'), Buffer.from('mot de passe élevé', 'utf8'), Buffer.from('"\r\n')]), [['cmd', 'a', 'LOGIN', 'u', Buffer.from('mot de passe élevé', 'utf8').toString('latin1')]]],
    [
      'LOGIN with synchronising literals',
      'a LOGIN {6}\r\njeanne {9}\r\nse"cr et\\\r\n',
      [['+', 'a', 6], ['+', 'a', 9], ['cmd', 'a', 'LOGIN', { literal: 'jeanne' }, { literal: 'se"cr et\\' }]],
    ],
    ['LOGIN with LITERAL+', 'a LOGIN {6+}\r\njeanne {3+}\r\n\r\n \r\n', [['cmd', 'a', 'LOGIN', { literal: 'jeanne' }, { literal: '\r\n ' }]]],
    ['empty literal', 'a LOGIN {0}\r\n x\r\n', [['+', 'a', 0], ['cmd', 'a', 'LOGIN', { literal: '' }, 'x']]],
    ['ID with a list and NIL', 'i ID ("name" "Thunderbird" "version" "115.0" "os" NIL)\r\n', [['cmd', 'i', 'ID', ['name', 'Thunderbird', 'version', '115.0', 'os', null]]]],
    ['ID NIL', 'i ID NIL\r\n', [['cmd', 'i', 'ID', null]]],
    ['AUTHENTICATE PLAIN with SASL-IR', 'a AUTHENTICATE PLAIN AGplYW5uZQBzZWNyZXQ=\r\n', [['cmd', 'a', 'AUTHENTICATE', 'PLAIN', 'AGplYW5uZQBzZWNyZXQ=']]],
    ['AUTHENTICATE EXTERNAL with "=" (empty initial response)', 'a AUTHENTICATE EXTERNAL =\r\n', [['cmd', 'a', 'AUTHENTICATE', 'EXTERNAL', '=']]],
    ['pipelined commands in one packet', 'a CAPABILITY\r\nb NOOP\r\nc LOGOUT\r\n', [['cmd', 'a', 'CAPABILITY'], ['cmd', 'b', 'NOOP'], ['cmd', 'c', 'LOGOUT']]],
    ['tag with "]" and dots', 'a.1] NOOP\r\n', [['cmd', 'a.1]', 'NOOP']]],
    ['empty line', '\r\n', [['BAD', null, 'empty command line']]],
    ['no command name', 'a\r\n', [['BAD', 'a', 'a command name is missing after the tag']]],
    ['"+" in a tag', 'a+b NOOP\r\n', [['BAD', null, 'a tag may not contain "+"']]],
    ['starts with a special', '(x) NOOP\r\n', [['BAD', null, 'a command starts with a tag (letters, digits, dots…) and a space']]],
    ['unterminated quoted string', 'a LOGIN "jeanne\r\n', [['BAD', 'a', 'quoted string not terminated on its line']]],
    ['bad escape', 'a LOGIN "j\\x" y\r\n', [['BAD', 'a', 'in a quoted string, "\\" may only escape " or \\']]],
    ['literal not at the end of the line', 'a LOGIN {5} x\r\n', [['BAD', 'a', 'a literal announcement {n} must end the line']]],
    ['unbalanced list', 'a ID ("x" "y"\r\n', [['BAD', 'a', '"(" without a matching ")"']]],
    ['stray ")"', 'a ID )\r\n', [['BAD', 'a', '")" without a matching "("']]],
    ['literal8 before login', 'a LOGIN ~{3}\r\n', [['BAD', 'a', 'literal8 (~{n}) is not accepted before login']]],
    [
      'synchronising literal too big: BAD, no continuation, the next command still parses',
      'a LOGIN {100000}\r\nb NOOP\r\n',
      [['BAD', 'a', 'literal of 100000 bytes refused; at most 64 before login'], ['cmd', 'b', 'NOOP']],
    ],
    ['non-synchronising literal too big: the bytes are coming, so BYE', 'a LOGIN {99999999999+}\r\n', [['BYE', 'literal of 99999999999 bytes announced; at most 64 before login']]],
    ['a refused line announcing a LITERAL+ skips its bytes', 'a LOGIN "x {6+}\r\nb NOOPc NOOP\r\n', [['BAD', 'a', 'quoted string not terminated on its line'], ['cmd', 'c', 'NOOP']]],
    ['too many literals', 'a LOGIN {1}\r\na {1}\r\nb {1}\r\nc {1}\r\nd {1}\r\n', [['+', 'a', 1], ['+', 'a', 1], ['+', 'a', 1], ['+', 'a', 1], ['BAD', 'a', 'more than 4 literals in one command']]],
    ['overlong line', `a LOGIN ${'x'.repeat(300)}\r\n`, [['BYE', 'line longer than 200 bytes']]],
    ['binary garbage', Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x0a]), [['BAD', null, 'a command starts with a tag (letters, digits, dots…) and a space']]],
    ['NUL in a quoted string', 'a LOGIN "a\x00b" c\r\n', [['BAD', 'a', 'NUL byte in a quoted string']]],
    ['control character in an atom', 'a LOGIN us\x01er x\r\n', [['BAD', 'a', 'unexpected "\\x01" after us']]],
  ];
  for (const [name, input, expected] of cases) it(name, () => golden(PREAUTH, input, expected));

  it('an unterminated literal yields nothing until its bytes come', () => {
    const p = new CommandParser(PREAUTH);
    p.push(Buffer.from('a LOGIN {10}\r\nabc'));
    expect(show(p.next()!)).toEqual(['+', 'a', 10]);
    expect(p.next()).toBeNull();
    p.push(Buffer.from('defghij x\r\n'));
    expect(show(p.next()!)).toEqual(['cmd', 'a', 'LOGIN', { literal: 'abcdefghij' }, 'x']);
  });

  it('reads a raw SASL line when asked, and nothing is lost after a fatal event', () => {
    const p = new CommandParser(PREAUTH);
    p.push(Buffer.from('a AUTHENTICATE PLAIN\r\nAGEAYg==\r\nb NOOP\r\n'));
    expect(show(p.next()!)).toEqual(['cmd', 'a', 'AUTHENTICATE', 'PLAIN']);
    p.expectLine();
    expect(show(p.next()!)).toEqual(['line', 'AGEAYg==']);
    expect(show(p.next()!)).toEqual(['cmd', 'b', 'NOOP']);
  });

  it('takeRemainder hands over what follows a command, untouched', () => {
    const p = new CommandParser(PREAUTH);
    p.push(Buffer.from('a LOGIN u p\r\nb SELECT INBOX\r\nc FETCH 1 BODY[]\r\n'));
    expect(show(p.next()!)).toEqual(['cmd', 'a', 'LOGIN', 'u', 'p']);
    expect(p.takeRemainder().toString()).toBe('b SELECT INBOX\r\nc FETCH 1 BODY[]\r\n');
  });
});

describe('trace parser (after login): golden cases', () => {
  const cases: Array<[string, string, unknown[]]> = [
    ['UID FETCH with a section list', 'a UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (From To Subject)])\r\n', [['cmd', 'a', 'UID', 'FETCH', '1:*', ['UID', 'FLAGS', 'BODY.PEEK[HEADER.FIELDS (From To Subject)]']]]],
    ['FETCH BODY[] with a partial', 'b FETCH 3 BODY[]<0.1024>\r\n', [['cmd', 'b', 'FETCH', '3', 'BODY[]<0.1024>']]],
    ['STORE of \\Deleted', 'c UID STORE 5,7 +FLAGS.SILENT (\\Deleted \\Seen)\r\n', [['cmd', 'c', 'UID', 'STORE', '5,7', '+FLAGS.SILENT', ['\\Deleted', '\\Seen']]]],
    ['SELECT with CONDSTORE/QRESYNC parameters', 'd SELECT "INBOX" (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n', [['cmd', 'd', 'SELECT', 'INBOX', ['QRESYNC', ['67890007', '20050715194045000', '41,43:211,214:541']]]]],
    ['APPEND with LITERAL+: the body is skipped by count', 'e APPEND Sent (\\Seen) {40+}\r\n' + 'x'.repeat(38) + '\r\n\r\nf NOOP\r\n', [['cmd', 'e', 'APPEND', 'Sent', ['\\Seen'], { skipped: 40 }], ['cmd', 'f', 'NOOP']]],
    ['small literal mailbox name is kept', 'g SELECT {5+}\r\nINBOX\r\n', [['cmd', 'g', 'SELECT', { literal: 'INBOX' }]]],
    ['DONE after IDLE is no command', 'h IDLE\r\nDONE\r\n', [['cmd', 'h', 'IDLE'], ['BAD', 'DONE', 'a command name is missing after the tag']]],
    ['an overlong line is skipped, not fatal, and a LITERAL+ at its end is skipped too', `i UID FETCH ${'1,'.repeat(200)}1 BODY[] {3+}\r\nabcj NOOP\r\n`, [['BAD', 'i', 'line longer than 200 bytes'], ['cmd', 'j', 'NOOP']]],
  ];
  for (const [name, input, expected] of cases) it(name, () => golden(TRACE, input, expected));

  it('a synchronising literal waits for the server: accepted → the bytes are a literal', () => {
    const p = new CommandParser(TRACE);
    p.push(Buffer.from('a APPEND INBOX {20}\r\n'));
    expect(show(p.next()!)).toEqual(['+', 'a', 20]);
    expect(p.awaitingContinuation).toEqual({ tag: 'a', size: 20 });
    p.push(Buffer.from('b FETCH 1 BODY[]\r\n..\r\n'));
    expect(p.next()).toBeNull(); // held until the server answers
    p.continuation(true);
    expect(show(p.next()!)).toEqual(['cmd', 'a', 'APPEND', 'INBOX', { skipped: 20 }]);
  });

  it('a synchronising literal refused by the server: what follows is commands again', () => {
    const p = new CommandParser(TRACE);
    p.push(Buffer.from('a APPEND INBOX {2000000000}\r\n'));
    expect(show(p.next()!)).toEqual(['+', 'a', 2000000000]);
    p.push(Buffer.from('b FETCH 1 BODY[]\r\n'));
    expect(p.next()).toBeNull();
    p.continuation(false);
    expect(show(p.next()!)).toEqual(['cmd', 'b', 'FETCH', '1', 'BODY[]']);
  });
});
