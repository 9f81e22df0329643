// National extractions (Extraction_Correspondance_MSSante, PS_LibreAcces_Personne_activite,
// their ZIPs) as `mss annuaire import` and the admin API read them. A file is refused whole
// (what it is, its date, its archive) or line by line (each bad line rejected with its
// reason, the rest applied): each case names which. Every box a hostile file names starts
// with "pirate", and none may ever reach the annuaire.
import iconv from 'iconv-lite';
import { randomBytes } from 'node:crypto';
import { ACTIVITY_HEADER } from '../../../annuaire/import/formats.js';
import { rawZip } from '../../fixtures/dmp/rawzip.js';
import type { Case } from '../harness.js';
import { file, HEADER, mssRow, type ImportCtx } from '../import.js';

const unknown = (text: RegExp) => ({ code: 'ANNUAIRE_UNKNOWN_FILE', enhanced: '422', text }) as const;
const zipRefused = (text: RegExp) => ({ code: 'ANNUAIRE_ZIP_REFUSED', enhanced: '422', text }) as const;
/** The file applied but for one line, rejected with this reason. */
const rejected = (text: RegExp) => ({ code: 'rejected', enhanced: '1 line', text }) as const;
/** A zip holding `entries`, named for a fresh extraction. */
const zip = (x: ImportCtx, entries: Parameters<typeof rawZip>[0]) => x.run(x.next('PS_LibreAcces', 'zip'), rawZip(entries));
/** A one-line hostile file, the good boxes around it. */
const withLine = (x: ImportCtx, line: string) => x.run(x.next(), x.full(line));
/** One line of the activity file (56 columns and the trailing "|"), empty but for `f`. */
const activity = (f: Record<string, string>) => `${ACTIVITY_HEADER.map((c) => f[c] ?? '').join('|')}|`;

export const importCases: Array<Case<ImportCtx>> = [
  // --- what the file is --------------------------------------------------------------------------------
  { name: 'an empty file', send: (x) => x.run(x.next(), ''), expect: unknown(/: it is empty$/) },
  { name: 'binary garbage', send: (x) => x.run(x.next(), randomBytes(4096)), expect: unknown(/is not an extraction this importer reads/) },
  { name: 'a header of another extraction (savoir-faire)', send: (x) => x.run(x.next(), "Type d'identifiant PP|Identifiant PP|Identification nationale PP|Nom d'exercice|Prénom d'exercice|\r\n"), expect: unknown(/its header is neither PS_LibreAcces_Personne_activite nor Extraction_Correspondance_MSSante/) },
  { name: 'the header lacking a column', send: (x) => x.run(x.next(), HEADER.replace('|Dématérialisation', '') + '\r\n'), expect: unknown(/its header lacks the column\(s\) "Dématérialisation"$/) },
  { name: 'the header naming a column twice', send: (x) => x.run(x.next(), `${HEADER}|Adresse BAL\r\n`), expect: unknown(/its header names the column "Adresse BAL" twice$/) },
  { name: 'the file re-saved by a spreadsheet with ";" separators', send: (x) => x.run(x.next(), `${HEADER.replaceAll('|', ';')}\r\n${mssRow('pirate.csv').replaceAll('|', ';')}\r\n`), expect: unknown(/its header is neither/) },
  { name: 'a UTF-16 file (with its byte-order mark)', send: (x) => x.run(x.next(), Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(file(mssRow('pirate.utf16')), 'utf16le')])), expect: unknown(/is not an extraction this importer reads/) },
  { name: 'a header line of 2 MB', send: (x) => x.run(x.next(), `${'x'.repeat(2 * 1024 * 1024)}\r\n`), expect: unknown(/line longer than 1048576 bytes$/) },
  {
    name: 'a file with only its header (a broken download) deactivates nobody',
    send: (x) => x.run(x.next(), `${HEADER}\r\n`),
    expect: { code: 'applied', text: /^0 lines; no valid line: nothing deactivated$/ },
  },
  {
    name: 'a file whose every line is bad deactivates nobody',
    send: (x) => x.run(x.next(), file(mssRow('pirate.allbad', { 'Type de BAL': 'XXX' }))),
    expect: { code: 'rejected', enhanced: '1 line', text: /^unknown BAL type "XXX"/ },
  },
  // --- its date --------------------------------------------------------------------------------------
  { name: 'a renamed file: no date in its name', send: (x) => x.run('annuaire.txt', x.full(mssRow('pirate.nodate'))), expect: { code: 'ANNUAIRE_NO_DATE', enhanced: '422', text: /^cannot tell the extraction date of annuaire\.txt from its name/ } },
  { name: 'an impossible date (31 February)', send: (x) => x.run('Extraction_Correspondance_MSSante_202602310000.txt', x.full(mssRow('pirate.feb31'))), expect: { code: 'ANNUAIRE_NO_DATE', enhanced: '422', text: /^cannot tell the extraction date of Extraction_Correspondance_MSSante_202602310000\.txt/ } },
  { name: 'an older extraction than the one in place', send: (x) => x.run('Extraction_Correspondance_MSSante_201901010000.txt', x.full(mssRow('pirate.old'))), expect: { code: 'ANNUAIRE_OLDER_EXTRACTION', enhanced: '409', text: /is an extraction of 2019-01-01, older than the 2026-01-01T\d\d:\d\dZ one already imported; nothing applied/ } },
  {
    name: 'an extraction dated in the future (it would block every real one after it)',
    send: (x) => x.run('Extraction_Correspondance_MSSante_209901010000.txt', x.full(mssRow('pirate.future'))),
    expect: { code: 'ANNUAIRE_FUTURE_EXTRACTION', enhanced: '422', text: /^Extraction_Correspondance_MSSante_209901010000\.txt is dated 2099-01-01, in the future \(it would make every real extraction after it look older\); nothing applied/ },
  },
  // --- its lines ---------------------------------------------------------------------------------------
  { name: 'a line of 10 MB', send: (x) => withLine(x, `PER|pirate.long@medecin.mssante.fr|8|${'9'.repeat(10 * 1024 * 1024)}`), expect: rejected(/^line longer than 1048576 bytes$/) },
  { name: 'a line with one column too few (a truncated last line)', send: (x) => withLine(x, mssRow('pirate.cut').split('|').slice(0, 20).join('|')), expect: rejected(/^has 20 fields, expected 31$/) },
  { name: 'a line with a "|" inside a name (one column too many)', send: (x) => withLine(x, mssRow('pirate.pipe', { "Nom d'exercice": 'DU|PONT' })), expect: rejected(/^has 32 fields, expected 31$/) },
  { name: 'an unknown BAL type', send: (x) => withLine(x, mssRow('pirate.type', { 'Type de BAL': 'ROOT' })), expect: rejected(/^unknown BAL type "ROOT" \(expected PER, ORG, APP or CAB\)$/) },
  { name: 'an address with two @', send: (x) => withLine(x, mssRow('pirate.at', { 'Adresse BAL': 'pirate@x@medecin.mssante.fr' })), expect: rejected(/^BAL address "pirate@x@medecin\.mssante\.fr" has an invalid local part$/) },
  { name: 'an address with accents (not ASCII)', send: (x) => withLine(x, mssRow('pirate.accent', { 'Adresse BAL': 'pirate.hélène@medecin.mssante.fr' })), expect: rejected(/^BAL address "pirate\.hélène@medecin\.mssante\.fr" has an invalid local part$/) },
  { name: 'an address with an LDAP filter in it', send: (x) => withLine(x, mssRow('pirate.ldap', { 'Adresse BAL': 'pirate*)(mail=*@medecin.mssante.fr' })), expect: rejected(/has an invalid local part$/) },
  { name: 'an address in an Unicode domain', send: (x) => withLine(x, mssRow('pirate.idn', { 'Adresse BAL': 'pirate.idn@hôpital.mssante.fr' })), expect: rejected(/^BAL address "pirate\.idn@hôpital\.mssante\.fr" has an invalid domain$/) },
  { name: 'an address with a one-label domain', send: (x) => withLine(x, mssRow('pirate.tld', { 'Adresse BAL': 'pirate.tld@localhost' })), expect: rejected(/^BAL address "pirate\.tld@localhost" has an invalid domain$/) },
  { name: 'an address of 300 characters', send: (x) => withLine(x, mssRow('pirate.x', { 'Adresse BAL': `pirate.${'a'.repeat(50)}@${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}.${'e'.repeat(60)}.fr` })), expect: rejected(/is longer than 254 characters$/) },
  { name: 'an RPPS of 10 digits', send: (x) => withLine(x, mssRow('pirate.rpps', { 'Identifiant PP': '1234567890', 'Identification nationale PP': '81234567890' })), expect: rejected(/^RPPS identifier "1234567890" is not 11 digits$/) },
  { name: 'a national id that is not type + identifier', send: (x) => withLine(x, mssRow('pirate.idnps', { 'Identification nationale PP': '899999999999' })), expect: rejected(/^Identification nationale PP "899999999999" is not the type "8" followed by the identifier/) },
  { name: 'an unknown identifier type', send: (x) => withLine(x, mssRow('pirate.idtype', { 'Type Identifiant PP': '5' })), expect: rejected(/^unknown identifier type "5" \(expected 8 for RPPS or 0 for ADELI\)$/) },
  { name: 'a personal box without a national id', send: (x) => withLine(x, mssRow('pirate.noid', { 'Type Identifiant PP': '', 'Identifiant PP': '', 'Identification nationale PP': '' })), expect: rejected(/^PER box without Identification nationale PP$/) },
  { name: 'an organisational box without its structure', send: (x) => withLine(x, mssRow('pirate.org', { 'Type de BAL': 'ORG', 'Type Identifiant PP': '', 'Identifiant PP': '', 'Identification nationale PP': '' })), expect: rejected(/^ORG box without Identification Structure$/) },
  { name: 'invalid UTF-8 in a UTF-8 file', send: (x) => x.run(x.next(), Buffer.concat([Buffer.from(x.full()), Buffer.from(mssRow('pirate.enc', { "Nom d'exercice": 'DU\uE000PONT' }).replace('\uE000', '\u00e9') + '\r\n', 'utf8').map((b, i, a) => (b === 0xc3 && a[i + 1] === 0xa9 ? 0xff : b))])), expect: rejected(/^bad encoding: not valid UTF-8/) },
  { name: 'a NUL byte inside a field', send: (x) => withLine(x, mssRow('pirate.nul', { "Nom d'exercice": 'DU\0PONT' })), expect: rejected(/^contains a NUL character$/) },
  // --- the archive -------------------------------------------------------------------------------------
  { name: 'a ZIP entry climbing out with ../ (zip-slip)', send: (x) => zip(x, [{ name: '../../etc/cron.d/Extraction_Correspondance_MSSante_x.txt', data: Buffer.from(x.full()) }]), expect: zipRefused(/entry "\.\.\/\.\.\/etc\/cron\.d\/Extraction_Correspondance_MSSante_x\.txt" climbs out of the archive \(\.\.\)$/) },
  { name: 'a ZIP entry with an absolute path', send: (x) => zip(x, [{ name: '/tmp/Extraction_Correspondance_MSSante_x.txt', data: Buffer.from(x.full()) }]), expect: zipRefused(/is an absolute path$/) },
  { name: 'a ZIP entry with a drive letter', send: (x) => zip(x, [{ name: 'C:/x/Extraction_Correspondance_MSSante_x.txt', data: Buffer.from(x.full()) }]), expect: zipRefused(/is an absolute path$/) },
  { name: 'a ZIP entry with backslashes', send: (x) => zip(x, [{ name: '..\\..\\Extraction_Correspondance_MSSante_x.txt', data: Buffer.from(x.full()) }]), expect: zipRefused(/contains a backslash$/) },
  { name: 'a ZIP entry with a NUL in its name', send: (x) => zip(x, [{ name: 'Extraction_Correspondance_MSSante_x.txt\0.exe', data: Buffer.from(x.full()) }]), expect: zipRefused(/contains a NUL byte$/) },
  { name: 'an encrypted ZIP entry', send: (x) => zip(x, [{ name: 'Extraction_Correspondance_MSSante_x.txt', data: Buffer.from(x.full()), flags: 1 }]), expect: zipRefused(/entry "Extraction_Correspondance_MSSante_x\.txt" is encrypted$|size mismatch/) },
  {
    name: 'a ZIP entry bigger than the limit (its header says so)',
    send: (x) => x.run(x.next('PS_LibreAcces', 'zip'), rawZip([{ name: 'Extraction_Correspondance_MSSante_x.txt', data: Buffer.alloc(300_000, 0x41), deflate: true }]), { zipLimits: { maxEntrySize: 100_000, maxEntries: 10 } }),
    expect: zipRefused(/would be 300000 bytes, above the 100000-byte limit$/),
  },
  {
    name: 'a zip bomb whose header lies about its size',
    send: (x) => x.run(x.next('PS_LibreAcces', 'zip'), rawZip([{ name: 'Extraction_Correspondance_MSSante_x.txt', data: Buffer.concat([Buffer.from(x.full()), Buffer.alloc(5_000_000, 0x20)]), deflate: true, declaredSize: 1000 }]), { zipLimits: { maxEntrySize: 100_000, maxEntries: 10 } }),
    expect: { code: 'ANNUAIRE_READ_FAILED', enhanced: '422', text: /^cannot read PS_LibreAcces_\d{12}\.zip!Extraction_Correspondance_MSSante_x\.txt: too many bytes in the stream\. expected 1000\. got at least \d+; nothing applied$/ },
  },
  { name: 'more entries than the limit', send: (x) => x.run(x.next('PS_LibreAcces', 'zip'), rawZip(Array.from({ length: 12 }, (_, i) => ({ name: `f${i}.txt`, data: Buffer.from('x') }))), { zipLimits: { maxEntrySize: 100_000, maxEntries: 10 } }), expect: zipRefused(/more than 10 entries$/) },
  { name: 'a truncated ZIP', send: (x) => x.run(x.next('PS_LibreAcces', 'zip'), rawZip([{ name: 'Extraction_Correspondance_MSSante_x.txt', data: Buffer.from(x.full()), deflate: true }]).subarray(0, 60)), expect: zipRefused(/End of central directory record signature not found\. Either not a zip file, or file is truncated\.$/) },
  { name: 'a text file named .zip', send: (x) => x.run(x.next('PS_LibreAcces', 'zip'), x.full()), expect: zipRefused(/End of central directory record signature not found\. Either not a zip file, or file is truncated\.$/) },
  { name: 'a ZIP with no extraction in it', send: (x) => zip(x, [{ name: 'README.pdf', data: Buffer.from('%PDF') }]), expect: { code: 'nothing', text: /not a \.txt file/ } },
  // --- the activity file ---------------------------------------------------------------------------
  {
    name: 'an activity line whose national id does not match its RPPS',
    send: (x) => x.run(x.next('PS_LibreAcces_Personne_activite'), `${ACTIVITY_HEADER.join('|')}|\r\n${activity({ "Type d'identifiant PP": '8', 'Identifiant PP': '10000000001', 'Identification nationale PP': '810000000002', 'Code mode exercice': 'L' })}\r\n`),
    expect: rejected(/^Identification nationale PP "810000000002" is not the type "8" followed by the identifier "10000000001"$/),
  },
  {
    name: 'an activity file in Windows-1252 with a line of invalid bytes',
    send: (x) => {
      const good = activity({ "Type d'identifiant PP": '8', 'Identifiant PP': '10000000003', 'Identification nationale PP': '810000000003', "Nom d'exercice": 'LEFÈVRE', 'Code mode exercice': 'L' });
      const bad = activity({ "Type d'identifiant PP": '8', 'Identifiant PP': 'ABC', 'Identification nationale PP': '8ABC' });
      return x.run(x.next('PS_LibreAcces_Personne_activite'), iconv.encode(`${ACTIVITY_HEADER.join('|')}|\r\n${good}\r\n${bad}\r\n`, 'win1252'));
    },
    expect: rejected(/^RPPS identifier "ABC" is not 11 digits$/),
  },
];
