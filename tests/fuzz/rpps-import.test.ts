// Property-based fuzzing of the RPPS / MSSanté extraction reader (annuaire/import): the
// decoder (bytes → lines, encoding detected from the file), the header recogniser, and the
// line splitter (lines → table rows, on a fast byte path and a string path). The files come
// from outside (the national open data, or an admin's upload). For random bytes, mutated
// real lines and generated fields:
//   - nothing throws but the documented refusal (HeaderError; a line's reason string);
//   - no line is lost or invented: as many lines out as in, whatever the chunking, so the
//     report's line numbers are right;
//   - valid UTF-8 and Windows-1252 files read back exactly;
//   - the byte path and the string path agree on every line: same rows or same reason;
//   - memory stays bounded.
import assert from 'node:assert/strict';
import fc from 'fast-check';
import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { BadLine, BlockDecoder, forEachLine, LineDecoder, MAX_LINE_BYTES, type Line } from '../../annuaire/import/decode.js';
import { ACTIVITY_HEADER, extractionDateFromName, HeaderError, MSSANTE_HEADER, parseCompactDate, parseHeader, type HeaderInfo } from '../../annuaire/import/formats.js';
import { cleanBlock, LineSplitter, OutBuf, TABLES, type TableName } from '../../annuaire/import/rows.js';
import { activityLines, mssanteLines } from '../helpers/rpps-generator.js';
import { check, cuts, MAX_RETAINED_GROWTH, mutated, pieces, retainedGrowth, soup } from './harness.js';

const utf8 = (s: string) => Buffer.from(s, 'utf8').toString('latin1');
const BYTE_TOKENS = [
  '\r\n', '\n', '\r', '|', '||', '\xef\xbb\xbf', utf8('é'), '\xe9', utf8('Œ'), '\x9c', '\x81', '\x8d', '\xff', '\xc3', '\xe2\x82', '\0', '\x01', '\t', ' ',
  utf8('\uFFFD'), '8', '81000000001', '0', '2A1234567', 'PER', 'ORG', 'APP', 'a@b.fr', 'Médecin', "Code civilité d'exercice",
];

// ---------------------------------------------------------------------------------------
// Decoder.

const shownLine = (l: Line) => (l instanceof BadLine ? { bad: l.reason, lenient: l.lenient } : l);

function decode(chunks: Buffer[]): Line[] {
  const d = new LineDecoder();
  const out: Line[] = [];
  for (const c of chunks) out.push(...d.push(c));
  out.push(...d.end());
  return out;
}

/** Lines a file holds: one per LF, plus a last one without (a leading UTF-8 BOM is not content). */
function lineCount(b: Buffer): number {
  const body = b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf ? b.subarray(3) : b;
  let n = 0;
  for (let i = body.indexOf(0x0a); i >= 0; i = body.indexOf(0x0a, i + 1)) n++;
  return n + (body.length && body[body.length - 1] !== 0x0a ? 1 : 0);
}

/** Files as lines of different kinds (ASCII, UTF-8 or Windows-1252 accents, invalid bytes), any line ending. */
const LINES = fc
  .tuple(
    fc.array(
      fc.constantFrom(Buffer.from('Nom|Prenom'), Buffer.from('Hélène|Noël', 'utf8'), iconv.encode('Hélène|Noël', 'win1252'), Buffer.from([0x81, 0x7c, 0xff]), Buffer.from([0xc3]), Buffer.alloc(0)),
      { maxLength: 8 },
    ),
    fc.constantFrom('\r\n', '\n', '\r'),
    fc.boolean(),
  )
  .map(([lines, eol, last]) => Buffer.concat([...lines.flatMap((l) => [l, Buffer.from(eol)]), last ? Buffer.from('fin') : Buffer.alloc(0)]));

const FILE = fc.oneof(soup(BYTE_TOKENS, 60), mutated(fc.constantFrom(...sampleFiles()), BYTE_TOKENS), LINES);

function sampleFiles(): Buffer[] {
  const act = [...activityLines({ lines: 6, seed: 3 })].join('\r\n') + '\r\n';
  const mss = [...mssanteLines({ lines: 6, seed: 3 })].join('\n');
  return [Buffer.from(act, 'utf8'), iconv.encode(act, 'win1252'), Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(mss, 'utf8')])];
}

describe('extraction decoder on hostile bytes', () => {
  it('never throws, loses or invents no line, and gives the same lines however the file was chunked', async () => {
    const grown = await retainedGrowth(() =>
      check(fc.tuple(FILE, cuts), ([file, at]) => {
        const whole = decode([file]);
        assert.equal(whole.length, lineCount(file));
        // (U+FFFD may remain: a Windows-1252 byte it leaves undefined; the splitter rejects those lines.)
        for (const l of whole) if (!(l instanceof BadLine)) assert.doesNotMatch(l, /\n/);
        assert.deepEqual(decode(pieces(file, at)).map(shownLine), whole.map(shownLine));
      }),
    );
    expect(grown).toBeLessThan(MAX_RETAINED_GROWTH);
  });

  // Text without LF; CR only as part of the CRLF ending.
  const text = (unit: fc.Arbitrary<string>) => fc.array(fc.string({ unit, maxLength: 30 }), { minLength: 1, maxLength: 8 });
  const anyChar = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }).filter((c) => !/[\r\n\uFFFD]/.test(c));
  const W1252 = [...iconv.decode(Buffer.from(Array.from({ length: 224 }, (_, i) => i + 32)), 'win1252')].filter((c) => c !== '\uFFFD');

  it('reads valid UTF-8 and Windows-1252 files back exactly, CRLF or LF, in any chunking', () => {
    check(fc.tuple(text(anyChar), text(fc.constantFrom(...W1252)), fc.boolean(), cuts), ([u, w, crlf, at]) => {
      const eol = crlf ? '\r\n' : '\n';
      const asUtf8 = Buffer.from(u.join(eol) + eol, 'utf8');
      assert.deepEqual(decode(pieces(asUtf8, at)), u);
      // The first line holding a byte ≥ 0x80 decides: here the first line says "é".
      const lines = ['Prénom', ...w];
      const asW1252 = iconv.encode(lines.join(eol) + eol, 'win1252');
      const d = new LineDecoder();
      const out = [...pieces(asW1252, at).flatMap((c) => d.push(c)), ...d.end()];
      assert.deepEqual(out, lines);
      assert.equal(d.encoding, 'Windows-1252');
    });
  });

  it('skips an over-long line as one rejected line, holding at most one line in memory', () => {
    const d = new BlockDecoder();
    const chunk = Buffer.alloc(256 * 1024, 0x61);
    const out = [...d.push(Buffer.from('first\n'))];
    for (let i = 0; i < (2 * MAX_LINE_BYTES) / chunk.length; i++) out.push(...d.push(chunk));
    out.push(...d.push(Buffer.from('\nlast\n')), ...d.end());
    assert.deepEqual(out.map((s) => (s instanceof BadLine ? s.reason : s.toString())), ['first\n', `line longer than ${MAX_LINE_BYTES} bytes`, 'last\n']);
  });
});

// ---------------------------------------------------------------------------------------
// Header.

const HEADERS = [
  ACTIVITY_HEADER.join('|') + '|',
  ACTIVITY_HEADER.slice(0, 52).join('|') + '|',
  MSSANTE_HEADER.join('|'),
];
const HEADER_TOKENS = ['|', '||', ' ', 'Adresse BAL', 'Type de BAL', 'Identification nationale PP', 'Code mode exercice', '\uFFFD', '\0', 'é'];

describe('extraction header on hostile input', () => {
  it('recognises a file or refuses it with HeaderError, nothing else', () => {
    const header = fc.oneof(
      fc.string({ maxLength: 200 }),
      mutated(fc.constantFrom(...HEADERS).map((h) => Buffer.from(h, 'utf8')), HEADER_TOKENS.map(utf8)).map((b) => b.toString('utf8')),
      fc.shuffledSubarray([...ACTIVITY_HEADER, ...MSSANTE_HEADER]).map((c) => c.join('|')),
    );
    check(header, (h) => {
      let info: HeaderInfo;
      try {
        info = parseHeader(h);
      } catch (e) {
        assert.ok(e instanceof HeaderError);
        return;
      }
      assert.ok(['activity', 'mssante'].includes(info.kind));
      for (const i of info.index.values()) assert.ok(i < info.fieldCount);
    });
  });

  it('reads back every extraction date it can name, and only real dates', () => {
    const date = fc.date({ min: new Date('1990-01-01T00:00:00Z'), max: new Date('2099-12-31T23:59:59Z'), noInvalidDate: true });
    check(fc.tuple(date, fc.string({ maxLength: 20 })), ([d, junk]) => {
      const compact = d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
      assert.deepEqual(extractionDateFromName(`PS_LibreAcces_Personne_activite_${compact.slice(0, 12)}.txt`), new Date(Math.floor(d.getTime() / 60_000) * 60_000));
      assert.deepEqual(parseCompactDate(compact), new Date(Math.floor(d.getTime() / 1000) * 1000));
      for (const s of [junk, `x_${junk}.txt`]) {
        const r = parseCompactDate(s) ?? extractionDateFromName(s);
        if (r !== undefined) assert.equal(Number.isNaN(r.getTime()), false);
      }
    });
  });
});

// ---------------------------------------------------------------------------------------
// Line splitter: byte path against string path.

/** The fields of one COPY row (CSV, `|`, U+0001 as quote; empty = NULL). */
function csvFields(row: string): string[] {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    let v = '';
    if (row[i] === '\x01') {
      for (i++; ; i++) {
        if (i >= row.length) throw new Error(`unterminated quoted field in ${JSON.stringify(row)}`);
        if (row[i] === '\x01') {
          if (row[i + 1] !== '\x01') break;
          i++;
        }
        v += row[i];
      }
      i++;
    } else while (i < row.length && row[i] !== '|') v += row[i++];
    out.push(v);
    if (i >= row.length) return out;
    if (row[i] !== '|') throw new Error(`bad CSV after a quoted field in ${JSON.stringify(row)}`);
    i++;
  }
}

const HEADER_INFO = HEADERS.map((h) => parseHeader(h));
const SAMPLE_LINES = [
  ...[...activityLines({ lines: 8, seed: 5 })].slice(1).map((l) => [0, l] as const),
  ...[...activityLines({ lines: 8, seed: 6, columns: 52 })].slice(1).map((l) => [1, l] as const),
  ...[...mssanteLines({ lines: 10, seed: 7 })].slice(1).map((l) => [2, l] as const),
];
const FIELD_TOKENS = ['|', ' ', '  ', '\t', '\x01', '\0', '\r', '\uFFFD', 'é', 'Œ', '8', '0', '2A', '81000000001', '10000000001', '@', '.', 'PER', 'ORG', 'APP', 'CAB', 'XYZ', '"', ';', '\\'];

/** A line for one of the three layouts: a real one mutated, or fields generated column by column. */
const LINE = fc.oneof(
  fc.tuple(fc.constantFrom(...SAMPLE_LINES), fc.array(fc.tuple(fc.nat(), fc.constantFrom(...FIELD_TOKENS), fc.boolean()), { maxLength: 4 })).map(([[h, l], edits]) => {
    const f = l.split('|');
    for (const [at, tok, replace] of edits) f[at % f.length] = replace ? tok : f[at % f.length] + tok;
    return [h, f.join('|')] as const;
  }),
  fc.tuple(fc.constantFrom(0, 1, 2), fc.array(fc.string({ unit: fc.constantFrom(...FIELD_TOKENS, 'a', 'B', '1', '9'), maxLength: 6 }), { maxLength: 60 })).map(([h, f]) => [h, f.join('|')] as const),
  fc.tuple(fc.constantFrom(...SAMPLE_LINES), fc.string({ maxLength: 3 })).map(([[h, l], s]) => [h, l.slice(0, l.length - s.length) + s] as const),
);

/**
 * The byte path of one splitter per layout, reused from line to line as the importer uses
 * it (a splitter costs a 1 MB table: one per input would dominate the run). finish() after
 * each line ends the person's run, so each line writes its own person row; a structure
 * already written with the same content is not written again (the splitter's dedupe).
 */
class BytePath {
  private chunks: Partial<Record<TableName, Buffer[]>> = {};
  private outs: Partial<Record<TableName, OutBuf>> = {};
  readonly splitter: LineSplitter;
  readonly structuresWritten = new Set<string>();

  constructor(readonly header: HeaderInfo) {
    for (const t of TABLES[header.kind]) this.outs[t] = new OutBuf((b) => (this.chunks[t] ??= []).push(Buffer.from(b)), 4096);
    this.splitter = new LineSplitter(header, this.outs);
  }

  /** One line: its rows by table, or its reason. */
  run(text: string): { reason?: string; rows: Partial<Record<TableName, string[][]>> } {
    const block = Buffer.from(text + '\r\n', 'utf8');
    let reason: string | undefined;
    let lines = 0;
    forEachLine(block, (s, e) => {
      lines++;
      reason = this.splitter.line(block, s, e, cleanBlock(block));
    });
    assert.equal(lines, 1);
    this.splitter.finish();
    for (const o of Object.values(this.outs)) o.flush();
    const rows: Partial<Record<TableName, string[][]>> = {};
    for (const [t, bufs] of Object.entries(this.chunks) as Array<[TableName, Buffer[]]>) {
      rows[t] = Buffer.concat(bufs).toString('utf8').split('\n').slice(0, -1).map(csvFields);
    }
    this.chunks = {};
    for (const r of rows.structures ?? []) this.structuresWritten.add(JSON.stringify(r));
    return reason === undefined ? { rows } : { reason, rows };
  }
}

describe('extraction line splitter on hostile lines', () => {
  it('the byte path and the string path agree on every line (same rows or same reason); protected keys never throw', async () => {
    const paths = HEADER_INFO.map((h) => new BytePath(h));
    const grown = await retainedGrowth(() =>
      check(LINE.filter(([, l]) => !l.includes('\n')), ([h, line]) => {
        const path = paths[h]!;
        const seen = new Set(path.structuresWritten);
        const byBytes = path.run(line);
        const byString = path.splitter.map(line);
        if (byString.ok) {
          assert.equal(byBytes.reason, undefined);
          const expected: Partial<Record<TableName, string[][]>> = {};
          for (const [t, row] of Object.entries(byString.rows) as Array<[TableName, string]>) expected[t] = [csvFields(row)];
          // A structure is left out only when the very same row was written before.
          if (expected.structures && !byBytes.rows.structures) assert.equal(seen.has(JSON.stringify(expected.structures[0])), true);
          else if (expected.structures) assert.deepEqual(byBytes.rows.structures, expected.structures);
          assert.deepEqual({ ...byBytes.rows, structures: undefined }, { ...expected, structures: undefined });
        } else {
          assert.deepEqual(byBytes, { reason: byString.reason, rows: {} });
          // One line of the reject report (file:line TAB reason TAB excerpt).
          assert.doesNotMatch(byString.reason, /[\r\n\t]/);
          assert.ok(byString.reason.length < 300);
        }
        for (const k of Object.values(path.splitter.protectedKeys(line))) if (k !== undefined) assert.ok(k.length <= 254);
      }),
    );
    expect(grown).toBeLessThan(MAX_RETAINED_GROWTH);
  });
});

describe('extraction reader: counterexamples found by fuzzing (regressions)', () => {
  it('a file shorter than 3 bytes ending with LF is one line, not two', () => {
    expect(decode([Buffer.from('a\n')])).toEqual(['a']);
    expect(decode([Buffer.from('\n')])).toEqual(['']);
  });

  it('the first line with a non-ASCII byte decides the encoding, however the file was chunked', () => {
    const file = Buffer.concat([Buffer.from('Nom|Prenom\r\n'), Buffer.from('Hélène|Noël\r\n', 'utf8'), iconv.encode('Hélène|Noël\r\n', 'win1252')]);
    const expected = ['Nom|Prenom', 'Hélène|Noël', { bad: 'bad encoding: not valid UTF-8 (the rest of the file is UTF-8)', lenient: 'H\uFFFDl\uFFFDne|No\uFFFDl' }];
    expect(decode([file]).map(shownLine)).toEqual(expected);
    expect(decode([file.subarray(0, 3), file.subarray(3)]).map(shownLine)).toEqual(expected);
  });

  it('a reason quotes a field escaped and cut: one line of the report, whatever the field holds', () => {
    const header = HEADER_INFO[0]!;
    const fields = ACTIVITY_HEADER.map(() => '');
    fields[0] = '8\r\t' + 'x'.repeat(10_000);
    const m = new LineSplitter(header, {}).map(fields.join('|') + '|');
    expect(m).toEqual({ ok: false, reason: `unknown identifier type ${JSON.stringify('8\r\t' + 'x'.repeat(57) + '…')} (expected 8 for RPPS or 0 for ADELI)` });
  });
});
