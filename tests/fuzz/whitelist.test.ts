// Property-based fuzzing of the liste blanche reader (annuaire/whitelist/parse.ts): the XML
// comes from the national site or an admin's upload. For random XML soups, mutated real
// lists and grammar-generated documents:
//   - it returns a list or refuses with WhitelistFormatError, one short line; nothing else;
//   - every domain it returns is a lower-case A-label that looks itself up again, unique;
//   - a generated list reads back exactly (names in A-label form, fields trimmed);
//   - pathological inputs (long runs of comments, PIs, nesting) are read in linear time.
import { domainToASCII } from 'node:url';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { domainForms, parseGenerationDate, parseWhitelist, WhitelistFormatError, WHITELIST_NAMESPACE, type ParsedWhitelist } from '../../annuaire/whitelist/parse.js';
import { makeWhitelistXml } from '../helpers/whitelist.js';
import { check, MAX_RETAINED_GROWTH, mutated, retainedGrowth, soup } from './harness.js';
import { escText, pathologicalXml, writeXml, XML_TOKENS, xmlText, xmlTree } from './xml-gen.js';

const TOKENS = [...XML_TOKENS, '<Domaine>', '</Domaine>', '<Nom>', '</Nom>', '<DateDeGeneration>2026-01-01</DateDeGeneration>', 'xn--', 'xn--zz', '.fr', '..', 'hôpital.fr', `xmlns="${WHITELIST_NAMESPACE}"`];
const NAMES = ['ListeBlanche', 'DateDeGeneration', 'Domaines', 'Domaine', 'Nom', 'Description', 'DNCertificatOperateur', 'ResponsableContact', 'SupportContact', 'DateMAJ'];

const LIST = makeWhitelistXml({ count: 4, extra: [{ nom: 'hôpital-été.mssante.fr' }, { nom: 'XN--HPITAL-FTA.example.fr' }] });
const INPUT = fc.oneof(
  soup(TOKENS.map((t) => Buffer.from(t, 'utf8').toString('latin1')), 40).map((b) => b.toString('latin1')),
  mutated(fc.constant(Buffer.from(LIST, 'utf8')), TOKENS).map((b) => b.toString('utf8')),
  xmlTree(NAMES, ['xmlns', 'id']).map((t) => writeXml(t)),
  // Generated bodies inside a valid list's frame: the reader must get as far as the entries.
  xmlTree(NAMES, ['id']).map((t) => LIST.replace('  <Domaines>', `  <Domaines>${writeXml(t, false)}`)),
);

/** Whatever the list says, its entries are usable lookup keys. */
function checkList(l: ParsedWhitelist) {
  assert.ok(l.entries.length > 0);
  assert.equal(Number.isNaN(l.generatedAt.getTime()), false);
  const seen = new Set<string>();
  for (const e of l.entries) {
    assert.match(e.domain, /^[\x21-\x7e]+$/);
    assert.equal(e.domain, e.domain.toLowerCase());
    assert.ok(e.domain.includes('.'));
    assert.equal(seen.has(e.domain), false);
    seen.add(e.domain);
    // Looked up later by either form, it must land on itself.
    assert.equal(domainForms(e.domain)?.ascii, e.domain);
    assert.equal(domainForms(e.domainUnicode)?.ascii, e.domain);
  }
  for (const r of l.rejected) assert.equal(typeof r.reason, 'string');
}

function refusal(e: unknown) {
  assert.ok(e instanceof WhitelistFormatError);
  const m = (e as Error).message;
  assert.doesNotMatch(m, /[\r\n]/);
  assert.ok(m.length < 400);
}

describe('liste blanche reader on hostile input', () => {
  it('returns usable entries or refuses with WhitelistFormatError, in one short line; memory bounded', async () => {
    const grown = await retainedGrowth(() =>
      check(INPUT, (xml) => {
        let l: ParsedWhitelist;
        try {
          l = parseWhitelist(xml);
        } catch (e) {
          refusal(e);
          return;
        }
        checkList(l);
      }),
    );
    expect(grown).toBeLessThan(MAX_RETAINED_GROWTH);
  });

  it('reads pathological inputs (2 MB runs of comments, PIs, CDATA, nesting, attributes) in linear time', () => {
    for (const xml of pathologicalXml()) {
      try {
        checkList(parseWhitelist(xml));
      } catch (e) {
        refusal(e);
      }
    }
  });
});

// ---------------------------------------------------------------------------------------
// Generated lists read back.

const label = fc.oneof(
  fc.string({ unit: fc.constantFrom(...'abcxyz0189-'), minLength: 1, maxLength: 12 }).filter((l) => !l.startsWith('-') && !l.endsWith('-') && l.slice(2, 4) !== '--'),
  fc.string({ unit: fc.constantFrom(...'aéèôçüœß-字'), minLength: 1, maxLength: 8 }).filter((l) => !l.startsWith('-') && !l.endsWith('-') && l.slice(2, 4) !== '--'),
);
const domain = fc.tuple(fc.array(label, { minLength: 1, maxLength: 3 }), fc.constantFrom('fr', 'mssante.fr', 'eu')).map(([ls, tld]) => [...ls, tld].join('.'));
const field = fc.option(xmlText, { nil: undefined });
const entry = fc.record({ nom: domain, upper: fc.boolean(), description: field, dn: field, responsable: field, support: field, dateMaj: field });

/** What an XML reader gives for a field: line ends normalised (CR LF → LF, XML 1.0 §2.11), trimmed, empty → null. */
const clean = (v: string | undefined) => (v === undefined || v.trim() === '' ? null : v.replace(/\r\n?/g, '\n').trim());

describe('liste blanche reader on generated lists', () => {
  it('reads every entry back: the name as its lower-case A-label, each field trimmed (the last of a repeated name wins)', () => {
    check(fc.tuple(fc.array(entry, { minLength: 1, maxLength: 6 }), fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date(), noInvalidDate: true }) /* a list from the future is refused (parse.ts) */), ([entries, at]) => {
      const el = (n: string, v: string | undefined) => (v === undefined ? '' : `<${n}>${escText(v)}</${n}>`);
      const generated = at.toISOString().slice(0, 19);
      const xml =
        `<?xml version="1.0" encoding="UTF-8"?>\n<ListeBlanche xmlns="${WHITELIST_NAMESPACE}"><DateDeGeneration>${generated}</DateDeGeneration><Domaines>` +
        entries
          .map((e) => `<Domaine>${el('Nom', e.upper ? e.nom.toUpperCase() : e.nom)}${el('Description', e.description)}${el('DNCertificatOperateur', e.dn)}${el('ResponsableContact', e.responsable)}${el('SupportContact', e.support)}${el('DateMAJ', e.dateMaj)}</Domaine>`)
          .join('\n') +
        '</Domaines></ListeBlanche>';
      const expected = new Map<string, unknown>();
      for (const e of entries) {
        const ascii = domainToASCII((e.upper ? e.nom.toUpperCase() : e.nom).toLowerCase());
        expected.set(ascii, { domain: ascii, description: clean(e.description), operatorDn: clean(e.dn), responsableContact: clean(e.responsable), supportContact: clean(e.support), dateMaj: clean(e.dateMaj) });
      }
      const l = parseWhitelist(xml);
      assert.deepEqual(l.generatedAt, new Date(generated + 'Z'));
      assert.deepEqual(l.rejected, []);
      assert.deepEqual(l.entries.map(({ domainUnicode: _u, ...rest }) => rest), [...expected.values()]);
      checkList(l);
    });
  });

  it('reads the generation date in every published form, and nothing that is not a date', () => {
    check(fc.tuple(fc.date({ min: new Date('1990-01-01T00:00:00Z'), max: new Date('2099-12-31T00:00:00Z'), noInvalidDate: true }), fc.string({ maxLength: 30 })), ([d, junk]) => {
      const iso = d.toISOString();
      const p = (n: number) => String(n).padStart(2, '0');
      const french = `${p(d.getUTCDate())}/${p(d.getUTCMonth() + 1)}/${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}`;
      const seconds = new Date(Math.floor(d.getTime() / 1000) * 1000);
      assert.deepEqual(parseGenerationDate(iso), d);
      assert.deepEqual(parseGenerationDate(iso.slice(0, 19)), seconds);
      assert.deepEqual(parseGenerationDate(iso.slice(0, 19) + '+02:00'), new Date(seconds.getTime() - 2 * 3_600_000));
      assert.deepEqual(parseGenerationDate(french), seconds);
      const r = parseGenerationDate(junk);
      if (r !== null) assert.equal(Number.isNaN(r.getTime()), false);
    });
  });
});

describe('liste blanche reader: counterexamples found by fuzzing (regressions)', () => {
  const list = (inner: string) => `<?xml version="1.0"?>\n<ListeBlanche xmlns="${WHITELIST_NAMESPACE}"><DateDeGeneration>2026-01-01</DateDeGeneration>${inner}</ListeBlanche>`;
  const refused = (xml: string) => {
    try {
      parseWhitelist(xml);
    } catch (e) {
      return e;
    }
    throw new Error('expected a refusal');
  };

  it('an element named "constructor" is a refusal of the list, not a crash of the import', () => {
    const e = refused(list('<constructor/><Domaine><Nom>a.fr</Nom></Domaine>'));
    expect(e).toBeInstanceOf(WhitelistFormatError);
    expect((e as Error).message).toMatch(/^it cannot be parsed \(.*constructor.*\)$/);
  });

  it('a refusal quotes what it read on one short line', () => {
    expect((refused('<ListeBlanche constructor="" xmlns="\n"/>') as Error).message).toBe(`its namespace is "\\n", not ${WHITELIST_NAMESPACE}`);
    expect((refused(list('').replace('2026-01-01', `x\n${'y'.repeat(500)}`)) as Error).message).toBe(`its <DateDeGeneration> ${JSON.stringify(`x\n${'y'.repeat(58)}…`)} is not a date`);
    // fast-xml-parser lists every unclosed tag of a deep document in its message.
    const deep = (refused(`<ListeBlanche>${'<a>'.repeat(50_000)}`) as Error).message;
    expect(deep.length).toBeLessThan(300);
    expect(deep).not.toMatch(/\n/);
  });

  it('a root tag with ">" inside an attribute value still has its namespace read', () => {
    expect((refused(`<?xml version="1.0"?><!-- a > b --><ListeBlanche note="a > b" xmlns="urn:other"><DateDeGeneration>2026-01-01</DateDeGeneration></ListeBlanche>`) as Error).message).toBe(`its namespace is "urn:other", not ${WHITELIST_NAMESPACE}`);
  });
});
