import { describe, expect, it } from 'vitest';
import { decodeMutf7 } from '../../imap-proxy/mutf7.js';
import { CommandParser } from '../../imap-proxy/parser.js';
import { ResponseScanner, type ServerEvent } from '../../imap-proxy/responses.js';
import { readItems, SessionTracer, type TraceAction } from '../../imap-proxy/trace.js';
import { TraceJournal } from '../../imap-proxy/trace-journal.js';
import { silentLogger } from '../../core/logger.js';
import type { JournalEventInput } from '../../core/journal/index.js';

// The tracer on a recorded session, without sockets: what the client sent, what Dovecot
// answered (bodies included), in the order the proxy sees them → the actions journalled.

const C = (s: string) => ({ from: 'client' as const, data: Buffer.from(s, 'latin1') });
const S = (s: string) => ({ from: 'server' as const, data: Buffer.from(s, 'latin1') });

function replay(steps: Array<{ from: 'client' | 'server'; data: Buffer }>, chunk = Infinity): TraceAction[] {
  const actions: TraceAction[] = [];
  const tracer = new SessionTracer((a) => actions.push({ ...a, at: 0 }), () => 0);
  const parser = new CommandParser({ mode: 'trace', maxLine: 64 * 1024, maxLiteral: 1024 });
  const scanner = new ResponseScanner();
  const drain = () => {
    for (let e = parser.next(); e; e = parser.next()) tracer.onClient(e);
  };
  for (const step of steps) {
    for (let i = 0; i < step.data.length; i += chunk) {
      const part = step.data.subarray(i, Math.min(step.data.length, i + chunk));
      if (step.from === 'client') {
        parser.push(part);
        drain();
      } else {
        for (const ev of scanner.push(part)) {
          tracer.onServer(ev);
          const w = parser.awaitingContinuation;
          if (w && (ev.type === 'continuation' || (ev.type === 'tagged' && ev.tag === w.tag))) {
            parser.continuation(ev.type === 'continuation');
            drain();
          }
        }
      }
    }
  }
  return actions;
}

const body = 'Subject: x\r\n\r\n' + 'A'.repeat(5000) + '\r\n';

const SESSION = [
  C('1 SELECT "Envoy&AOk-s"\r\n'),
  S('* 2 EXISTS\r\n* OK [UIDVALIDITY 1] x\r\n1 OK [READ-WRITE] Select completed.\r\n'),
  C('2 UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)])\r\n'),
  S('* 1 FETCH (UID 7 FLAGS () BODY[HEADER.FIELDS (FROM SUBJECT)] {12}\r\nSubject: x\r\n)\r\n2 OK Fetch completed.\r\n'),
  C('3 UID FETCH 7 (BODY.PEEK[] BINARY.PEEK[1])\r\n'),
  // A body containing what looks like a tagged OK: inside a literal, it is only bytes.
  S(`* 1 FETCH (UID 7 BODY[] {${body.length + 14}}\r\n${body}3 OK fake\r\n\r\n)\r\n3 OK Fetch completed.\r\n`),
  C('4 UID STORE 7 +FLAGS.SILENT (\\Seen \\Deleted)\r\n5 UID STORE 8 +FLAGS (\\Flagged)\r\n'),
  S('4 OK Store completed.\r\n* 2 FETCH (UID 8 FLAGS (\\Flagged))\r\n5 OK Store completed.\r\n'),
  C('6 UID EXPUNGE 7\r\n'),
  S('* 1 EXPUNGE\r\n6 OK Expunge completed.\r\n'),
  C('7 UID MOVE 8 Trash\r\n'),
  S('* OK [COPYUID 1 8 1] Moved\r\n* 1 EXPUNGE\r\n7 OK Move completed.\r\n'),
  C('8 APPEND INBOX (\\Seen) {300}\r\n'),
  S('+ OK\r\n'),
  C('B'.repeat(298) + '\r\n\r\n'),
  S('8 OK [APPENDUID 1 9] Append completed.\r\n'),
  // A synchronising literal Dovecot refuses: the client sends no bytes, the next command counts.
  C('9 APPEND INBOX {999999999999}\r\n'),
  S('9 NO [TOOBIG] too big\r\n'),
  C('10 IDLE\r\n'),
  S('+ idling\r\n* 3 EXISTS\r\n'),
  C('DONE\r\n'),
  S('10 OK Idle completed.\r\n'),
  C('11 STORE 1 +FLAGS (\\Deleted)\r\n12 CLOSE\r\n'),
  S('11 OK Store completed.\r\n* 1 EXPUNGE\r\n12 OK Close completed.\r\n'),
  C('13 EXAMINE INBOX\r\n14 FETCH 1 RFC822\r\n15 CLOSE\r\n'),
  S('13 OK [READ-ONLY] Examine completed.\r\n14 OK Fetch completed.\r\n15 OK Close completed.\r\n'),
  C('16 SELECT NoSuchBox\r\n17 FETCH 1 BODY[]\r\n'),
  S('16 NO Mailbox does not exist\r\n17 BAD No mailbox selected\r\n'),
  C('18 RENAME Old New\r\n19 DELETE New\r\n'),
  S('18 OK Rename completed.\r\n19 OK Delete completed.\r\n'),
];

const EXPECTED: Array<Partial<TraceAction>> = [
  { op: 'select', mailbox: 'Envoyés', status: 'OK' },
  { op: 'fetch', mailbox: 'Envoyés', status: 'OK', uid: true, set: '7', items: ['BODY.PEEK[]', 'BINARY.PEEK[1]'] },
  { op: 'store', mailbox: 'Envoyés', status: 'OK', uid: true, set: '7', flags: '+FLAGS.SILENT (\\Seen \\Deleted)' },
  { op: 'expunge', mailbox: 'Envoyés', status: 'OK', uid: true, set: '7', via: 'UID EXPUNGE', expunged: 1 },
  { op: 'move', mailbox: 'Envoyés', status: 'OK', uid: true, set: '8', to: 'Trash', expunged: 1 },
  { op: 'append', mailbox: 'INBOX', status: 'OK', sizes: [300] },
  { op: 'append', mailbox: 'INBOX', status: 'NO', sizes: [999999999999] },
  { op: 'store', mailbox: 'Envoyés', status: 'OK', uid: false, set: '1', flags: '+FLAGS (\\Deleted)' },
  { op: 'expunge', mailbox: 'Envoyés', status: 'OK', via: 'CLOSE', expunged: 1 },
  { op: 'examine', mailbox: 'INBOX', status: 'OK' },
  { op: 'fetch', mailbox: 'INBOX', status: 'OK', uid: false, set: '1', items: ['RFC822'] },
  { op: 'select', mailbox: 'NoSuchBox', status: 'NO' },
  { op: 'fetch', mailbox: null, status: 'BAD', set: '1', items: ['BODY[]'] },
  { op: 'rename', mailbox: 'Old', status: 'OK', to: 'New' },
  { op: 'delete', mailbox: 'New', status: 'OK' },
];

describe('session tracer on a recorded session', () => {
  it('turns the exchange into the actions a trace must record (and nothing for headers, flags, IDLE)', () => {
    const got = replay(SESSION);
    expect(got.map((a) => a.op)).toEqual(EXPECTED.map((a) => a.op));
    got.forEach((a, i) => expect(a).toMatchObject(EXPECTED[i]));
  });

  it('gives the same actions whatever the packet boundaries', () => {
    const whole = replay(SESSION);
    for (const size of [1, 7, 64]) expect(replay(SESSION, size)).toEqual(whole);
  });

  it('notices a COMPRESS the server accepted (the proxy then ends the session)', () => {
    const tracer = new SessionTracer(() => {});
    const p = new CommandParser({ mode: 'trace', maxLine: 1000, maxLiteral: 100 });
    p.push(Buffer.from('a COMPRESS DEFLATE\r\n'));
    tracer.onClient(p.next()!);
    expect(tracer.compressed).toBe(false);
    tracer.onServer({ type: 'tagged', tag: 'a', status: 'OK', text: 'DEFLATE active' });
    expect(tracer.compressed).toBe(true);
  });
});

describe('response scanner', () => {
  it('skips literals by count and reports completions, continuations, expunges', () => {
    const sc = new ResponseScanner();
    const out: ServerEvent[] = [];
    const stream = '* 1 FETCH (BODY[] {10}\r\na OK fake\r\n)\r\n+ go\r\n* 3 EXPUNGE\r\n* VANISHED 4:5\r\n* VANISHED (EARLIER) 1\r\na OK done\r\n* BYE bye\r\n';
    for (const ch of stream) out.push(...sc.push(Buffer.from(ch, 'latin1')));
    expect(out).toEqual([{ type: 'continuation' }, { type: 'expunge' }, { type: 'vanished' }, { type: 'tagged', tag: 'a', status: 'OK', text: 'done' }, { type: 'bye', text: 'bye' }]);
  });
});

describe('what counts as reading a message', () => {
  const items = (s: string) => {
    const p = new CommandParser({ mode: 'trace', maxLine: 1000, maxLiteral: 100 });
    p.push(Buffer.from(`a FETCH 1 ${s}\r\n`));
    const e = p.next();
    return e?.type === 'command' ? readItems(e.args[1]) : null;
  };
  it.each([
    ['BODY[]', ['BODY[]']],
    ['(BODY.PEEK[TEXT] BODY.PEEK[2.1] BODY[1.MIME])', ['BODY.PEEK[TEXT]', 'BODY.PEEK[2.1]']],
    ['(BODY.PEEK[HEADER] BODY.PEEK[HEADER.FIELDS (TO)] ENVELOPE FLAGS BODYSTRUCTURE)', []],
    ['(RFC822.HEADER RFC822.SIZE)', []],
    ['RFC822.TEXT', ['RFC822.TEXT']],
    ['BINARY.PEEK[1]<0.100>', ['BINARY.PEEK[1]<0.100>']],
    ['FULL', []],
  ])('%s', (s, want) => expect(items(s)).toEqual(want));
});

describe('modified UTF-7 mailbox names', () => {
  it.each([
    ['INBOX', 'INBOX'],
    ['Envoy&AOk-s', 'Envoyés'],
    ['&ZeVnLIqe-', '日本語'],
    ['A&-B', 'A&B'],
    ['bad&***-', 'bad&***-'],
  ])('%s → %s', (a, b) => expect(decodeMutf7(a)).toBe(b));
});

describe('trace batching before the journal', () => {
  const sink = () => {
    const events: JournalEventInput[] = [];
    return { events, journal: { append: async (e: JournalEventInput) => (events.push(e), { seq: events.length, hash: '' }) } };
  };
  const read = (uidSet: string, at: number): TraceAction => ({ op: 'fetch', mailbox: 'INBOX', status: 'OK', at, uid: true, set: uidSet, items: ['BODY.PEEK[]'] });

  it('merges a run of reads into one event, and starts a new one when the kind of action changes', async () => {
    const { events, journal } = sink();
    // A flush interval no test reaches: only the change of kind and close() flush here.
    const t = new TraceJournal(journal, { actor: 'person:jeanne', bal: 'jeanne.martin@mssante.localhost', session: 's1' }, 3_600_000, silentLogger);
    for (let i = 1; i <= 30; i++) t.add(read(String(i), 1_700_000_000_000 + i));
    t.add({ op: 'store', mailbox: 'INBOX', status: 'OK', at: 1_700_000_000_100, uid: true, set: '3', flags: '+FLAGS (\\Deleted)' });
    t.add(read('31', 1_700_000_000_200));
    await t.close();
    expect(events.map((e) => e.type)).toEqual(['imap.fetch', 'imap.store', 'imap.fetch']);
    expect(events[0]).toMatchObject({ actor: 'person:jeanne', subject: 'jeanne.martin@mssante.localhost', details: { session: 's1', mailbox: 'INBOX', commands: 30, uid: true, items: ['BODY.PEEK[]'] } });
    expect(events[0].details!.sets).toEqual(Array.from({ length: 30 }, (_, i) => String(i + 1)));
    expect(events[0].details!.at).toBe(new Date(1_700_000_000_001).toISOString());
    expect(events[0].details!.until).toBe(new Date(1_700_000_000_030).toISOString());
    expect(events[1].details).toMatchObject({ flags: '+FLAGS (\\Deleted)', sets: ['3'] });
    expect(events[1].details!.commands).toBeUndefined();
  });

  it('caps what one event lists, never what it counts', async () => {
    const { events, journal } = sink();
    const t = new TraceJournal(journal, { actor: 'a', bal: 'b', session: 's' }, 3_600_000, silentLogger);
    for (let i = 0; i < 499; i++) t.add(read(String(i), i));
    await t.close();
    expect(events).toHaveLength(1);
    expect(events[0].details).toMatchObject({ commands: 499, setsTruncated: true });
    expect((events[0].details!.sets as string[]).length).toBe(100);
  });
});
