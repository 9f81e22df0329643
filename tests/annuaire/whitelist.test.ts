import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../core/db/index.js';
import { Journal } from '../../core/journal/index.js';
import { Policy } from '../../core/policy/index.js';
import {
  currentWhitelist,
  importWhitelist,
  isWhitelisted,
  listWhitelist,
  operatorDnFor,
  parseGenerationDate,
  parseWhitelist,
  readWhitelistSource,
  whitelistEntry,
  whitelistFactSource,
} from '../../annuaire/whitelist/index.js';
import { dbTargets } from '../helpers/db.js';
import { generatedName, makeWhitelistXml, operatorDn } from '../helpers/whitelist.js';

describe('liste blanche parsing', () => {
  it('reads the national shape: date, every domain, both forms of IDN names, the operator DN', () => {
    const p = parseWhitelist(makeWhitelistXml({ count: 200 }));
    expect(p.generatedAt.toISOString()).toBe('2026-02-01T03:00:00.000Z');
    expect(p.entries).toHaveLength(200);
    const idn = p.entries.find((e) => e.domainUnicode === generatedName(7))!;
    expect(idn.domainUnicode).toBe('pharmacie-à-domicile-7.op7.mssante.fr');
    expect(idn.domain).toBe('xn--pharmacie--domicile-7-wzb.op7.mssante.fr'); // as Python's idna codec writes it
    expect(idn.operatorDn).toBe(operatorDn(7));
    expect(idn.description).toBe('Établissement 7 — opérateur 7');
    expect(p.entries[0]).toMatchObject({ domain: 'etab-0.op0.mssante.fr', domainUnicode: 'etab-0.op0.mssante.fr', responsableContact: 'responsable@op0.fr', dateMaj: '2025-01-15' });
  });

  it('accepts prefixed namespaces, reports unusable entries and duplicates', () => {
    const xml = `<?xml version="1.0"?><lb:ListeBlanche xmlns:lb="https://listeblanche.mssante.fr/schema"><lb:DateDeGeneration>01/02/2026 04:05</lb:DateDeGeneration>
      <lb:Domaine><lb:Nom>a.fr</lb:Nom></lb:Domaine><lb:Domaine><lb:Nom>A.FR.</lb:Nom></lb:Domaine><lb:Domaine><lb:Nom>not a domain</lb:Nom></lb:Domaine><lb:Domaine/></lb:ListeBlanche>`;
    const p = parseWhitelist(xml);
    expect(p.generatedAt.toISOString()).toBe('2026-02-01T04:05:00.000Z');
    expect(p.entries.map((e) => e.domain)).toEqual(['a.fr']);
    expect(p.duplicates).toEqual(['a.fr']);
    expect(p.rejected).toEqual([
      { name: 'not a domain', reason: 'not a domain name' },
      { name: '(no name)', reason: '<Domaine> without <Nom>' },
    ]);
  });

  it('refuses DTDs (XXE, entity expansion), malformed XML, a foreign namespace, a missing date', () => {
    const xxe = makeWhitelistXml({ count: 3, prolog: '<!DOCTYPE ListeBlanche [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>' }).replace('<Nom>etab-0.op0.mssante.fr</Nom>', '<Nom>&xxe;</Nom>');
    expect(() => parseWhitelist(xxe)).toThrow(/DTD/);
    const bomb = '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><ListeBlanche><DateDeGeneration>2026-01-01</DateDeGeneration><Domaine><Nom>&b;</Nom></Domaine></ListeBlanche>';
    expect(() => parseWhitelist(bomb)).toThrow(/DTD/);
    expect(() => parseWhitelist('<ListeBlanche><Domaine>')).toThrow(/not well-formed/);
    expect(() => parseWhitelist('<ListeBlanche xmlns="urn:other"><DateDeGeneration>2026-01-01</DateDeGeneration><Domaine><Nom>a.fr</Nom></Domaine></ListeBlanche>')).toThrow(/namespace/);
    expect(() => parseWhitelist('<ListeBlanche><Domaine><Nom>a.fr</Nom></Domaine></ListeBlanche>')).toThrow(/DateDeGeneration/);
    expect(() => parseWhitelist('<ListeBlanche><DateDeGeneration>hier</DateDeGeneration><Domaine><Nom>a.fr</Nom></Domaine></ListeBlanche>')).toThrow(/not a date/);
  });

  it('reads generation dates in ISO and French forms, and refuses impossible ones', () => {
    expect(parseGenerationDate('2026-02-01T03:00:00+01:00')!.toISOString()).toBe('2026-02-01T02:00:00.000Z');
    expect(parseGenerationDate('2026-02-01')!.toISOString()).toBe('2026-02-01T00:00:00.000Z');
    expect(parseGenerationDate('31/02/2026')).toBeNull();
  });
});

describe.each(dbTargets())('liste blanche import on $name', (target) => {
  let db: Db;
  let dispose: () => Promise<void>;
  let journal: Journal;
  let dir: string;

  beforeAll(async () => {
    ({ db, dispose } = await target.open());
    journal = new Journal(db);
    dir = mkdtempSync(join(tmpdir(), 'mss-wl-'));
  });
  afterAll(async () => dispose?.());

  const file = (name: string, xml: string) => {
    const f = join(dir, name);
    writeFileSync(f, xml);
    return f;
  };

  it('imports a full national-size list, IDN names looked up in either form', async () => {
    const f = file('v1.xml', makeWhitelistXml({ generatedAt: '2026-02-01T03:00:00' }));
    const r = await importWhitelist(db, journal, await readWhitelistSource(f), f, 'cli:test');
    expect(r).toMatchObject({ domains: 8600, removed: [], changed: [], unchanged: false });
    expect(r.added).toHaveLength(8600);
    expect(await isWhitelisted(db, 'etab-42.op42.mssante.fr')).toBe(true);
    expect(await isWhitelisted(db, 'ETAB-42.op42.mssante.fr.')).toBe(true);
    expect(await isWhitelisted(db, 'gmail.com')).toBe(false);
    const idn = generatedName(57);
    expect(await isWhitelisted(db, idn)).toBe(true);
    const entry = (await whitelistEntry(db, idn))!;
    expect(entry.domain).toMatch(/^xn--/);
    expect(entry.domainUnicode).toBe(idn);
    expect(await isWhitelisted(db, entry.domain)).toBe(true);
    expect(await operatorDnFor(db, 'etab-42.op42.mssante.fr')).toBe(operatorDn(42));
    expect(await currentWhitelist(db)).toMatchObject({ domains: 8600, generatedRaw: '2026-02-01T03:00:00' });
    expect((await listWhitelist(db, { text: 'op319.' })).length).toBeGreaterThan(0);
    const summary = (await journal.list({ type: 'whitelist.imported' }))[0];
    expect(summary).toMatchObject({ actor: 'cli:test', details: { domains: 8600, added: 8600, removed: 0 } });
    expect((await journal.list({ type: 'whitelist.domain.added', subject: 'etab-42.op42.mssante.fr' })).length).toBe(1);
  });

  it('applies a newer list as a diff and journals what changed', async () => {
    const f = file('v2.xml', makeWhitelistXml({ generatedAt: '2026-03-01T03:00:00', drop: [1, 2, 3], change: [10], extra: [{ nom: 'nouvel-opérateur.fr' }] }));
    const r = await importWhitelist(db, journal, await readWhitelistSource(f), f, 'admin:root');
    expect(r.added).toEqual(['xn--nouvel-oprateur-jnb.fr']); // as Python's idna codec writes it
    expect(r.removed).toEqual(['etab-1.op1.mssante.fr', 'etab-2.op2.mssante.fr', 'etab-3.op3.mssante.fr']);
    expect(r.changed).toEqual(['etab-10.op10.mssante.fr']);
    expect(await isWhitelisted(db, 'etab-2.op2.mssante.fr')).toBe(false);
    expect(await isWhitelisted(db, 'nouvel-opérateur.fr')).toBe(true);
    expect((await whitelistEntry(db, 'etab-10.op10.mssante.fr'))!.description).toContain('(modifié)');
    const removed = await journal.list({ type: 'whitelist.domain.removed' });
    expect(removed.map((e) => e.subject).sort()).toEqual(r.removed);
    expect(removed[0].actor).toBe('admin:root');
    expect((await journal.list({ type: 'whitelist.imported' }))[0].details).toMatchObject({ added: 1, removed: 3, changed: 1, domains: 8598 });
  });

  it('refuses an older list with a clear message and changes nothing', async () => {
    const before = (await journal.list({ limit: 1 }))[0].seq;
    const f = file('old.xml', makeWhitelistXml({ generatedAt: '2026-02-15T03:00:00', count: 10 }));
    await expect(importWhitelist(db, journal, await readWhitelistSource(f), f, 'cli:test')).rejects.toThrow(
      `the liste blanche from ${f} was generated on 2026-02-15T03:00:00, before the one in place (2026-03-01T03:00:00); nothing changed`,
    );
    expect(await isWhitelisted(db, 'etab-42.op42.mssante.fr')).toBe(true);
    expect((await journal.list({ limit: 1 }))[0].seq).toBe(before);
  });

  it('re-importing the same list writes nothing', async () => {
    const f = join(dir, 'v2.xml');
    const r = await importWhitelist(db, journal, await readWhitelistSource(f), f, 'cli:test');
    expect(r.unchanged).toBe(true);
  });

  it('refuses a list with a DTD as invalid, and an unreadable source', async () => {
    const body = Buffer.from(makeWhitelistXml({ count: 2, generatedAt: '2026-04-01T00:00:00', prolog: '<!DOCTYPE x SYSTEM "http://127.0.0.1:1/evil.dtd">' }));
    await expect(importWhitelist(db, journal, body, 'evil.xml', 'cli:test')).rejects.toMatchObject({ code: 'WHITELIST_INVALID' });
    await expect(readWhitelistSource(join(dir, 'missing.xml'))).rejects.toMatchObject({ code: 'FILE_UNREADABLE' });
  });

  it('downloads from a URL', async () => {
    const xml = makeWhitelistXml({ count: 5, generatedAt: '2026-05-01T00:00:00' });
    const server: Server = createServer((req, res) => {
      if (req.url === '/listeblanchemssante.xml') res.writeHead(200, { 'content-type': 'application/xml' }).end(xml);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const r = await importWhitelist(db, journal, await readWhitelistSource(`${base}/listeblanchemssante.xml`), `${base}/listeblanchemssante.xml`, 'cli:test');
      expect(r.domains).toBe(5);
      // etab-0 and etab-4 stay, etab-1..3 (dropped by v2) come back, everything else goes.
      expect(r.added).toEqual(['etab-1.op1.mssante.fr', 'etab-2.op2.mssante.fr', 'etab-3.op3.mssante.fr']);
      expect(r.removed.length).toBe(8598 - 2);
      await expect(readWhitelistSource(`${base}/nope.xml`)).rejects.toThrow(/HTTP 404/);
    } finally {
      server.close();
    }
  });

  it('feeds core/policy: listed domains are inside the trust space, others refused', async () => {
    const policy = new Policy({ mailbox: async () => null, ...whitelistFactSource(db) }, journal, { localDomains: ['mssante.localhost'] });
    expect((await policy.inTrustSpace('etab-0.op0.mssante.fr')).ok).toBe(true);
    expect(await policy.inTrustSpace('etab-4000.op160.mssante.fr', 'recipient ')).toMatchObject({ ok: false, code: 'DOMAIN_NOT_WHITELISTED' });
    expect((await policy.inTrustSpace('mssante.localhost')).ok).toBe(true);
  });
});
