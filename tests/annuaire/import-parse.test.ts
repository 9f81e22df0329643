// The pure parts of the importer: header recognition, dates in file names, identifier and
// address checks, the line decoder across chunk boundaries, and line mapping.
import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { BadLine, LineDecoder, type Line } from '../../annuaire/import/decode.js';
import { ACTIVITY_HEADER, ACTIVITY_HEADER_52, MSSANTE_HEADER, extractionDateFromName, parseHeader } from '../../annuaire/import/formats.js';
import { LineSplitter, OutBuf, cleanBlock } from '../../annuaire/import/rows.js';
import { unsafeEntryName } from '../../annuaire/import/source.js';
import { checkAddress, checkPersonIds } from '../../annuaire/import/validate.js';

const decodeAll = (chunks: Buffer[]) => {
  const d = new LineDecoder();
  const out: Line[] = [];
  for (const c of chunks) out.push(...d.push(c));
  out.push(...d.end());
  return { lines: out, encoding: d.encoding };
};
const bytewise = (b: Buffer) => Array.from(b, (x) => Buffer.from([x]));

describe('headers', () => {
  it('recognises the 56-column activity file by name, trailing | included', () => {
    const h = parseHeader(ACTIVITY_HEADER.join('|') + '|');
    expect(h.kind).toBe('activity');
    expect(h.fieldCount).toBe(57);
    expect(h.index.get('Identifiant technique de la structure')).toBe(23);
    expect(h.missing).toEqual([]);
  });

  it('accepts the 52-column layout and reports the missing columns', () => {
    const h = parseHeader(ACTIVITY_HEADER_52.join('|') + '|');
    expect(h.kind).toBe('activity');
    expect(h.missing).toEqual(['Code rôle', 'Libellé rôle', 'Code genre activité', 'Libellé genre activité']);
    expect(h.index.get('Code rôle')).toBe(-1);
  });

  it('matches columns by name whatever their order', () => {
    const shuffled = [...MSSANTE_HEADER].reverse();
    const h = parseHeader(shuffled.join('|'));
    expect(h.kind).toBe('mssante');
    expect(h.index.get('Adresse BAL')).toBe(shuffled.indexOf('Adresse BAL'));
  });

  it('refuses an unknown header and a header lacking a column, saying which', () => {
    expect(() => parseHeader("Type d'identifiant PP|Identifiant PP|Nom d'exercice")).toThrow(/neither/);
    expect(() => parseHeader(MSSANTE_HEADER.filter((c) => c !== 'Dématérialisation').join('|'))).toThrow(/"Dématérialisation"/);
  });
});

describe('extraction date from the file name', () => {
  it('reads AAAAMMJJhhmm, AAAAMMJJ, inside a path and after .txt', () => {
    expect(extractionDateFromName('/x/PS_LibreAcces_Personne_activite_202403010815.txt')?.toISOString()).toBe('2024-03-01T08:15:00.000Z');
    expect(extractionDateFromName('Extraction_Correspondance_MSSante_20240301.txt')?.toISOString()).toBe('2024-03-01T00:00:00.000Z');
    expect(extractionDateFromName('PS_LibreAcces_202403010815.zip')?.toISOString()).toBe('2024-03-01T08:15:00.000Z');
  });
  it('has none for a renamed file or an impossible date', () => {
    expect(extractionDateFromName('annuaire.txt')).toBeUndefined();
    expect(extractionDateFromName('PS_LibreAcces_Personne_activite_20240231.txt')).toBeUndefined();
  });
});

describe('identifier and address checks', () => {
  it('accepts RPPS and ADELI ids with a matching IDNPS', () => {
    expect(checkPersonIds('8', '10001234567', '810001234567')).toBeUndefined();
    expect(checkPersonIds('0', '2A1234567', '02A1234567')).toBeUndefined();
  });
  it('rejects a short RPPS, a mismatched IDNPS, an unknown type', () => {
    expect(checkPersonIds('8', '1000123456', '81000123456')).toMatch(/not 11 digits/);
    expect(checkPersonIds('8', '10001234567', '010001234567')).toMatch(/is not the type "8" followed/);
    expect(checkPersonIds('5', '10001234567', '510001234567')).toMatch(/unknown identifier type/);
  });
  it('checks BAL addresses', () => {
    expect(checkAddress('jean.dupont@medecin.mssante.fr')).toBeUndefined();
    expect(checkAddress("o'neil.x@ch-nimes.mssante.fr")).toBeUndefined();
    expect(checkAddress('a@@b.fr')).toMatch(/local part/);
    expect(checkAddress('a.b@localhost')).toMatch(/domain/);
    expect(checkAddress('hélène@x.fr')).toMatch(/local part/);
    expect(checkAddress('nobody')).toMatch(/local@domain/);
  });
  it('refuses zip entry names that escape the archive', () => {
    expect(unsafeEntryName('../evil.txt')).toMatch(/climbs/);
    expect(unsafeEntryName('a/../../evil.txt')).toMatch(/climbs/);
    expect(unsafeEntryName('/etc/passwd')).toMatch(/absolute/);
    expect(unsafeEntryName('C:/x.txt')).toMatch(/absolute/);
    expect(unsafeEntryName('a\\..\\x.txt')).toMatch(/backslash/);
    expect(unsafeEntryName('PS_LibreAcces/PS_LibreAcces_Personne_activite_202401010000.txt')).toBeUndefined();
  });
});

describe('line decoder', () => {
  const text = 'Type de BAL|Nom\r\nPER|Hélène Ægir\r\nORG|Zoé Noël\nPER|Bérénice';

  it('detects UTF-8 and keeps multi-byte characters split across chunks', () => {
    const r = decodeAll(bytewise(Buffer.from(text, 'utf8')));
    expect(r.encoding).toBe('UTF-8');
    expect(r.lines).toEqual(['Type de BAL|Nom', 'PER|Hélène Ægir', 'ORG|Zoé Noël', 'PER|Bérénice']);
  });

  it('detects a BOM even when it arrives byte by byte, and drops it', () => {
    const r = decodeAll(bytewise(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text, 'utf8')])));
    expect(r.encoding).toBe('UTF-8 with BOM');
    expect(r.lines[0]).toBe('Type de BAL|Nom');
  });

  it('detects Windows-1252 from the first non-ASCII line', () => {
    const r = decodeAll([iconv.encode('Libellé|x\nPER|Hélène Ægir Œnone\n', 'win1252')]);
    expect(r.encoding).toBe('Windows-1252');
    expect(r.lines).toEqual(['Libellé|x', 'PER|Hélène Ægir Œnone']);
  });

  it('gives the same lines however the bytes are cut into chunks', () => {
    const b = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text + '\nPER|NO', 'utf8'), Buffer.from([0xeb]), Buffer.from('L\r\nORG|Œnone\n\nPER|x', 'utf8')]);
    const whole = decodeAll([b]);
    expect(whole.lines).toHaveLength(8);
    for (let size = 2; size <= 23; size++) {
      const chunks = [];
      for (let i = 0; i < b.length; i += size) chunks.push(b.subarray(i, i + size));
      expect(decodeAll(chunks), `chunks of ${size} bytes`).toEqual(whole);
    }
  });

  it('turns a line that is not UTF-8 in a UTF-8 file into a BadLine, the others intact', () => {
    const b = Buffer.concat([Buffer.from('Libellé\nPER|ok\nPER|NO', 'utf8'), Buffer.from([0xeb]), Buffer.from('L\nPER|Zoé\n', 'utf8')]);
    const r = decodeAll([b]);
    expect(r.lines[0]).toBe('Libellé');
    expect(r.lines[1]).toBe('PER|ok');
    expect(r.lines[2]).toBeInstanceOf(BadLine);
    expect((r.lines[2] as BadLine).reason).toMatch(/not valid UTF-8/);
    expect(r.lines[3]).toBe('PER|Zoé');
  });
});

describe('line splitting', () => {
  const header = parseHeader(MSSANTE_HEADER.join('|'));
  const mapper = new LineSplitter(header);
  const line = (over: Record<number, string>) => {
    const f = MSSANTE_HEADER.map(() => '');
    Object.assign(f, { 0: 'PER', 1: 'Helene.Dupont@medecin.mssante.fr', 2: '8', 3: '10001234567', 4: '810001234567', 9: 'DUPONT', 10: 'Hélène' }, over);
    return f.join('|');
  };
  /** Every row the splitter writes for these lines (byte path and string path alike), per table. */
  const split = (h: ReturnType<typeof parseHeader>, lines: string[]) => {
    const got: Record<string, Buffer[]> = {};
    const outs = Object.fromEntries(['persons', 'structures', 'activities', 'addresses'].map((t) => [t, new OutBuf((b) => (got[t] ??= []).push(Buffer.from(b)), 64)]));
    const s = new LineSplitter(h, outs);
    const reasons = lines.map((l) => {
      const b = Buffer.from(l, 'utf8');
      return s.line(b, 0, b.length);
    });
    s.finish();
    for (const o of Object.values(outs)) o.flush();
    const rows = Object.fromEntries(Object.entries(got).map(([t, bs]) => [t, Buffer.concat(bs).toString('utf8').split('\n').slice(0, -1)]));
    return { rows, reasons, columns: s.columns };
  };

  it('maps a good line to a CSV row in file order: empty fields as NULL, backslash and tab as they are', () => {
    const m = mapper.map(line({ 7: 'Cardio\\logie\tB' }));
    expect(m.ok).toBe(true);
    const cols = (m as { rows: Record<string, string> }).rows.addresses.split('|');
    expect(cols).toHaveLength(31);
    expect(cols[1]).toBe('Helene.Dupont@medecin.mssante.fr');
    expect(cols[7]).toBe('Cardio\\logie\tB');
    expect(cols).toContain('');
    // The byte path writes the same row.
    const r = split(header, [line({ 7: 'Cardio\\logie\tB' })]);
    expect(r.reasons).toEqual([undefined]);
    expect(r.rows.addresses).toEqual([(m as { rows: Record<string, string> }).rows.addresses]);
  });

  it('quotes what CSV would misread, trims padded lines', () => {
    const r = split(header, [line({ 7: 'a\x01b' }), line({ 9: ' DUPONT ' })]);
    expect(r.reasons).toEqual([undefined, undefined]);
    expect(r.rows.addresses[0].split('|')[7]).toBe('\x01a\x01\x01b\x01');
    expect(r.rows.addresses[1].split('|')[9]).toBe('DUPONT');
  });

  it('merges a person listed on consecutive lines by the merge rule, and repeats of a structure', () => {
    const h = parseHeader(ACTIVITY_HEADER.join('|') + '|');
    const act = (i: number, prof: string, structure: string) => {
      const f = ACTIVITY_HEADER.map(() => '');
      Object.assign(f, { 0: '8', 1: '10001234567', 2: '810001234567', 7: 'DUPONT', 8: 'Zoé', 9: prof, 23: structure, 24: `CABINET ${structure}`, 17: String(i) });
      return f.join('|') + '|';
    };
    const r = split(h, [act(1, '60', 'S1'), act(2, '10', 'S2'), act(3, '10', 'S1')]);
    expect(r.reasons).toEqual([undefined, undefined, undefined]);
    expect(r.rows.persons).toHaveLength(1);
    expect(r.rows.persons[0].split('|')[r.columns.persons!.indexOf('profession_code')]).toBe('10');
    expect(r.rows.structures).toHaveLength(2);
    expect(r.rows.activities).toHaveLength(3);
    expect(r.rows.activities[0].startsWith('\x01810001234567|S1|60|||1||\x01|')).toBe(true);
  });

  it('rejects each kind of malformed line with its reason, on both paths', () => {
    expect(mapper.map(line({}).split('|').slice(0, 20).join('|'))).toEqual({ ok: false, reason: 'has 20 fields, expected 31' });
    expect(mapper.map(line({ 0: 'XYZ' }))).toMatchObject({ ok: false, reason: expect.stringMatching(/unknown BAL type/) });
    expect(mapper.map(line({ 3: '1000123456', 4: '81000123456' }))).toMatchObject({ ok: false, reason: expect.stringMatching(/not 11 digits/) });
    expect(mapper.map(line({ 0: 'ORG', 2: '', 3: '', 4: '' }))).toMatchObject({ ok: false, reason: expect.stringMatching(/without Identification Structure/) });
    expect(mapper.map(line({ 9: 'NO\uFFFDL' }))).toMatchObject({ ok: false, reason: expect.stringMatching(/bad encoding/) });
    const r = split(header, [line({}).split('|').slice(0, 20).join('|'), line({ 0: 'XYZ' }), line({ 9: 'NO\uFFFDL' }), line({ 1: 'x@@y' }), line({ 9: 'a\0b' })]);
    expect(r.reasons).toEqual(['has 20 fields, expected 31', expect.stringMatching(/unknown BAL type/), expect.stringMatching(/bad encoding/), expect.stringMatching(/local part/), 'contains a NUL character']);
    expect(r.rows.addresses ?? []).toEqual([]);
  });

  it('tells a block the byte path may copy as is from one it must not', () => {
    expect(cleanBlock(Buffer.from('a|b\r\nc|d\n'))).toBe(true);
    expect(cleanBlock(Buffer.from('a|b\rc|d\r\n'))).toBe(false);
    expect(cleanBlock(Buffer.from('a|b\x01|d\n'))).toBe(false);
    expect(cleanBlock(Buffer.from('a|\0|d\n'))).toBe(false);
    expect(cleanBlock(Buffer.from('a|N\uFFFDL|d\n'))).toBe(false);
  });

  it('checks identifiers on the bytes as the string path does (ADELI, Corsica included)', () => {
    const r = split(header, [line({ 2: '0', 3: '2A1234567', 4: '02A1234567' }), line({ 2: '0', 3: '2C1234567', 4: '02C1234567' }), line({ 4: '810001234568' })]);
    expect(r.reasons).toEqual([undefined, expect.stringMatching(/ADELI identifier "2C1234567"/), expect.stringMatching(/is not the type "8" followed/)]);
    const h = parseHeader(ACTIVITY_HEADER.join('|') + '|');
    const act = (type: string, id: string, nps: string) => {
      const f = ACTIVITY_HEADER.map(() => '');
      Object.assign(f, { 0: type, 1: id, 2: nps, 7: 'DUPONT' });
      return f.join('|') + '|';
    };
    const a = split(h, [act('0', '2B1234567', '02B1234567'), act('8', '1000123456', '81000123456'), act('8', '10001234567', '810001234568'), act('9', '10001234567', '910001234567')]);
    expect(a.reasons).toEqual([undefined, expect.stringMatching(/not 11 digits/), expect.stringMatching(/is not the type/), expect.stringMatching(/unknown identifier type/)]);
    expect(a.rows.persons).toHaveLength(1);
  });

  it('finds the keys a rejected line still names', () => {
    expect(mapper.protectedKeys(line({ 0: 'XYZ' }))).toEqual({ addresses: 'helene.dupont@medecin.mssante.fr' });
  });
});
