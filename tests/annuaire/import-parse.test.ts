// The pure parts of the importer: header recognition, dates in file names, identifier and
// address checks, the line decoder across chunk boundaries, and line mapping.
import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { BadLine, LineDecoder, type Line } from '../../annuaire/import/decode.js';
import { ACTIVITY_HEADER, ACTIVITY_HEADER_52, MSSANTE_HEADER, extractionDateFromName, parseHeader } from '../../annuaire/import/formats.js';
import { LineMapper, contentHash } from '../../annuaire/import/rows.js';
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

describe('line mapping', () => {
  const mapper = new LineMapper(parseHeader(MSSANTE_HEADER.join('|')));
  const line = (over: Record<number, string>) => {
    const f = MSSANTE_HEADER.map(() => '');
    Object.assign(f, { 0: 'PER', 1: 'Helene.Dupont@medecin.mssante.fr', 2: '8', 3: '10001234567', 4: '810001234567', 9: 'DUPONT', 10: 'Hélène' }, over);
    return f.join('|');
  };

  it('maps a good line to a COPY row: lower-cased key, empty fields as NULL, backslash and tab escaped', () => {
    const m = mapper.map(line({ 7: 'Cardio\\logie\tB' }), 2);
    expect(m.ok).toBe(true);
    const cols = (m as { copyLine: string }).copyLine.split('\t');
    expect(cols[0]).toBe('2');
    expect(cols[2]).toBe('helene.dupont@medecin.mssante.fr');
    expect(cols[4]).toBe('Helene.Dupont@medecin.mssante.fr');
    expect(cols).toContain('\\N');
    expect((m as { copyLine: string }).copyLine).toContain('Cardio\\\\logie\\tB');
  });

  it('rejects each kind of malformed line with its reason', () => {
    expect(mapper.map(line({}).split('|').slice(0, 20).join('|'), 5)).toEqual({ ok: false, reason: 'has 20 fields, expected 31' });
    expect(mapper.map(line({ 0: 'XYZ' }), 5)).toMatchObject({ ok: false, reason: expect.stringMatching(/unknown BAL type/) });
    expect(mapper.map(line({ 3: '1000123456', 4: '81000123456' }), 5)).toMatchObject({ ok: false, reason: expect.stringMatching(/not 11 digits/) });
    expect(mapper.map(line({ 0: 'ORG', 2: '', 3: '', 4: '' }), 5)).toMatchObject({ ok: false, reason: expect.stringMatching(/without Identification Structure/) });
    expect(mapper.map(line({ 9: 'NO\uFFFDL' }), 5)).toMatchObject({ ok: false, reason: expect.stringMatching(/bad encoding/) });
  });

  it('finds the keys a rejected line still names', () => {
    expect(mapper.protectedKeys(line({ 0: 'XYZ' }))).toEqual({ addresses: 'helene.dupont@medecin.mssante.fr' });
  });

  it('keeps its content hash stable (a change would mark every entry updated once)', () => {
    expect(contentHash('Hélène|DUPONT')).toBe('980dd31ade8fbae5');
    expect(contentHash('')).toBe('488bdcb81aee8d83');
    expect(contentHash('Hélène|DUPONT')).not.toBe(contentHash('Helene|DUPONT'));
  });
});
