import { existsSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { Client } from 'ldapts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queueLdapChanges } from '../../annuaire/ldap/index.js';
import { ldapPaths } from '../../annuaire/ldap/files.js';
import { rootSecret } from '../../annuaire/ldap/files.js';
import { expectedEntries, seedAnnuaire } from '../../bench/ldap-fixtures.js';
import type { Db } from '../../core/db/index.js';
import { dbTargets } from '../helpers/db.js';
import { eventually, ldapsearch, startTestDirectory, type TestDirectory } from '../helpers/slapd.js';

// A real slapd started by the platform's code, fed from PGlite (and real PostgreSQL when the
// environment names one), queried by the real ldapsearch and by ldapts.

const PERSONS = 3000;

describe.each(dbTargets())('LDAP directory on $name', (target) => {
  let db: Db;
  let dispose: () => Promise<void>;
  let t: TestDirectory;

  beforeAll(async () => {
    ({ db, dispose } = await target.open());
    await seedAnnuaire(db, { count: PERSONS });
    t = await startTestDirectory(db);
  });

  afterAll(async () => {
    await t?.stop();
    await dispose?.();
  });

  const one = async (address: string) => db.query<{ address: string }>('SELECT address FROM annuaire_mss_addresses WHERE lower(address) = lower($1)', [address]);
  const aPublicAddress = async () => (await db.query<{ address: string; nom: string; prenom: string }>("SELECT address, nom, prenom FROM annuaire_ldap_bal WHERE bal_type = 'PER' ORDER BY key LIMIT 1 OFFSET 17")).rows[0];

  it('finds a mailbox by mail with ldapsearch over StartTLS (-ZZ), exactly one entry, with the names a mail client shows', async () => {
    const bal = await aPublicAddress();
    const r = await ldapsearch(t, ['-H', t.ldap, '-ZZ', '-b', t.base, `(mail=${bal.address})`]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.entries).toHaveLength(1);
    const e = r.entries[0];
    expect(e.dn).toBe(`mail=${bal.address.toLowerCase()},ou=bal,${t.base}`);
    expect(e.attrs.mail).toEqual([bal.address]);
    expect(e.attrs.cn).toEqual([`${bal.prenom} ${bal.nom}`]);
    expect(e.attrs.sn).toEqual([bal.nom]);
    expect(e.attrs.givenname).toEqual([bal.prenom]);
    expect(e.attrs.mssbaltype).toEqual(['PER']);
    expect(e.attrs.title?.[0]).toMatch(/Médecin|Dentiste|Sage-Femme|Infirmier|Pharmacien/);
  });

  it('refuses StartTLS with a client that does not trust the certificate', async () => {
    const bal = await aPublicAddress();
    const r = await ldapsearch({ pki: { ...t.pki, paths: { ...t.pki.paths, ca: t.pki.paths.foreignCa } } }, ['-H', t.ldap, '-ZZ', '-b', t.base, `(mail=${bal.address})`]);
    expect(r.code).not.toBe(0);
    expect(r.entries).toHaveLength(0);
  });

  it('serves LDAPS (implicit TLS) too', async () => {
    const bal = await aPublicAddress();
    const r = await ldapsearch(t, ['-H', t.ldaps, '-b', t.base, `(mail=${bal.address})`, 'mail']);
    expect(r.code).toBe(0);
    expect(r.entries.map((e) => e.attrs.mail[0])).toEqual([bal.address]);
  });

  it('a paged anonymous search returns every public entry exactly once; an unpaged one stops at the size limit', async () => {
    const expected = await expectedEntries(db);
    expect(expected).toBeGreaterThan(3000);
    const paged = await ldapsearch(t, ['-H', t.ldap, '-ZZ', '-b', t.base, '-E', 'pr=500/noprompt', '(objectClass=*)', '1.1']);
    expect(paged.code).toBe(0);
    const dns = paged.entries.map((e) => e.dn.toLowerCase());
    expect(dns).toHaveLength(expected);
    expect(new Set(dns).size).toBe(expected);
    const plain = await ldapsearch(t, ['-H', t.ldap, '-b', t.base, '(objectClass=*)', '1.1']);
    expect(plain.code).toBe(4); // sizeLimitExceeded
    expect(plain.entries).toHaveLength(500);
  });

  it('never publishes liste rouge mailboxes, nor a holder whose only mailbox is on it', async () => {
    const { rows } = await db.query<{ address: string; idnps: string }>("SELECT address, idnps FROM annuaire_mss_addresses WHERE liste_rouge AND bal_type = 'PER' LIMIT 3");
    expect(rows.length).toBe(3);
    for (const r of rows) {
      const byMail = await ldapsearch(t, ['-H', t.ldap, '-ZZ', '-b', t.base, `(mail=${r.address})`]);
      expect(byMail.code).toBe(0);
      expect(byMail.entries).toHaveLength(0);
      const byId = await ldapsearch(t, ['-H', t.ldap, '-ZZ', '-b', t.base, `(mssIdNps=${r.idnps})`]);
      expect(byId.entries).toHaveLength(0);
    }
    const all = await ldapsearch(t, ['-H', t.ldap, '-b', t.base, '-E', 'pr=1000/noprompt', '(mail=*)', 'mail']);
    const published = new Set(all.entries.map((e) => e.attrs.mail[0].toLowerCase()));
    const { rows: red } = await db.query<{ a: string }>('SELECT lower(address) AS a FROM annuaire_mss_addresses WHERE liste_rouge');
    expect(red.length).toBeGreaterThan(50);
    expect(red.filter((r) => published.has(r.a))).toEqual([]);
  });

  it('refuses anonymous writes', async () => {
    const bal = await aPublicAddress();
    const client = new Client({ url: t.ldap });
    try {
      await client.startTLS({ ca: [t.pki.read('ca.pem')] });
      // 8 = strongerAuthRequired: slapd's answer to an anonymous modification.
      const { Change, Attribute } = await import('ldapts');
      const edit = [new Change({ operation: 'replace', modification: new Attribute({ type: 'cn', values: ['Pirate'] }) })];
      await expect(client.modify(`mail=${bal.address.toLowerCase()},ou=bal,${t.base}`, edit)).rejects.toMatchObject({ code: 8 });
      await expect(client.add(`mail=intrus@example.org,ou=bal,${t.base}`, { objectClass: ['inetOrgPerson'], cn: 'x', sn: 'x', mail: 'intrus@example.org' })).rejects.toMatchObject({ code: 8 });
      await expect(client.del(`mail=${bal.address.toLowerCase()},ou=bal,${t.base}`)).rejects.toMatchObject({ code: 8 });
    } finally {
      await client.unbind();
    }
    const still = await ldapsearch(t, ['-H', t.ldap, '-b', t.base, `(mail=${bal.address})`, 'cn']);
    expect(still.entries).toHaveLength(1);
    expect(still.entries[0].attrs.cn).toEqual([`${bal.prenom} ${bal.nom}`]);
  });

  it('refuses a password bind without TLS, accepts the rootdn over TLS', async () => {
    const secret = rootSecret(ldapPaths(t.config));
    const plain = new Client({ url: t.ldap });
    await expect(plain.bind(`cn=admin,${t.base}`, secret)).rejects.toThrow(/confidentiality/i);
    await plain.unbind();
    const tls = new Client({ url: t.ldaps, tlsOptions: { ca: [t.pki.read('ca.pem')] } });
    await tls.bind(`cn=admin,${t.base}`, secret);
    await tls.unbind();
  });

  it('answers ldapts (StartTLS) searches', async () => {
    const bal = await aPublicAddress();
    const client = new Client({ url: t.ldap });
    try {
      await client.startTLS({ ca: [t.pki.read('ca.pem')] });
      const { searchEntries } = await client.search(t.base, { scope: 'sub', filter: `(mail=${bal.address})`, attributes: ['cn', 'mail', 'mssIdNps'] });
      expect(searchEntries).toHaveLength(1);
      expect(searchEntries[0].mail).toBe(bal.address);
    } finally {
      await client.unbind();
    }
  });

  it("Thunderbird's address-book filter finds a part of a name with accents, one line per mailbox", async () => {
    const x = 'élè'; // Hélène
    const r = await ldapsearch(t, ['-H', t.ldap, '-ZZ', '-b', t.base, '-E', 'pr=200/noprompt', `(|(cn=*${x}*)(mail=*${x}*)(sn=*${x}*)(givenName=*${x}*))`, 'cn', 'mail']);
    expect(r.code).toBe(0);
    const { rows } = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM annuaire_ldap_bal WHERE prenom = 'Hélène' OR raison_sociale LIKE '%élè%'");
    expect(rows[0].n).toBeGreaterThan(10);
    expect(r.entries).toHaveLength(rows[0].n);
    for (const e of r.entries) {
      expect(e.dn).toMatch(/,ou=bal,/);
      expect(e.attrs.mail).toHaveLength(1);
      expect(e.attrs.cn[0]).toContain('Hélène');
    }
    // Case-insensitive, as a person types it.
    const upper = await ldapsearch(t, ['-H', t.ldap, '-b', t.base, '-E', 'pr=200/noprompt', '(cn=*HÉLÈNE*)', '1.1']);
    expect(upper.entries).toHaveLength(rows[0].n);
  });

  it('applies an added, a modified and a closed mailbox online, within the sync interval', async () => {
    const address = 'Zoé.Nouvelle@mssante.localhost'.normalize('NFC').replace('é', 'e');
    await db.transaction(async (tx) => {
      await tx.query(
        `INSERT INTO annuaire_mss_addresses (address, bal_type, idnps, nom, prenom, profession, liste_rouge, hash, active, first_seen, last_seen, source_file)
         VALUES ($1, 'PER', '800000000001', 'NOUVELLE', 'Zoé', 'Médecin', false, 'h', true, now(), now(), 'test')`,
        [address],
      );
      await queueLdapChanges(tx, { addresses: [address] });
    });
    const find = () => ldapsearch(t, ['-H', t.ldap, '-b', t.base, `(mail=${address})`, 'cn', 'title']);
    await eventually(async () => (await find()).entries.length === 1);
    expect((await find()).entries[0].attrs.cn).toEqual(['Zoé NOUVELLE']);

    await db.transaction(async (tx) => {
      await tx.query("UPDATE annuaire_mss_addresses SET profession = 'Sage-Femme' WHERE lower(address) = lower($1)", [address]);
      await queueLdapChanges(tx, { addresses: [address] });
    });
    await eventually(async () => (await find()).entries[0]?.attrs.title?.[0] === 'Sage-Femme');

    await db.transaction(async (tx) => {
      await tx.query('UPDATE annuaire_mss_addresses SET active = false, deactivated_at = now() WHERE lower(address) = lower($1)', [address]);
      await queueLdapChanges(tx, { addresses: [address] });
    });
    await eventually(async () => (await find()).entries.length === 0);
    // The queue rows go once applied (on PostgreSQL, when the drain's transaction commits).
    await eventually(async () => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM annuaire_ldap_pending')).rows[0].n === 0);
    expect((await one(address)).rows).toHaveLength(1); // closed in the database, never deleted
  });

  it('a change committed while the directory was down is applied when it comes back', async () => {
    const { rows } = await db.query<{ address: string }>("SELECT address FROM annuaire_ldap_bal WHERE bal_type = 'ORG' ORDER BY key LIMIT 1");
    const address = rows[0].address;
    await t.dir.stop();
    await db.transaction(async (tx) => {
      await tx.query("UPDATE annuaire_mss_addresses SET service = 'Accueil des urgences' WHERE address = $1", [address]);
      await queueLdapChanges(tx, { addresses: [address] });
    });
    await t.start();
    await eventually(async () => (await ldapsearch(t, ['-H', t.ldap, '-b', t.base, `(mail=${address})`, 'ou'])).entries[0]?.attrs.ou?.[0] === 'Accueil des urgences');
  });

  it('after a machine crash under a running slapd (unsynced writes may be lost), the next start rebuilds from the database', async () => {
    const p = ldapPaths(t.config);
    const before = readlinkSync(p.db);
    // Same boot (the platform process died, the page cache survived): no rebuild.
    await t.dir.stop();
    writeFileSync(p.bootFile, readFileSync('/proc/sys/kernel/random/boot_id', 'utf8'));
    await t.start();
    expect(readlinkSync(p.db)).toBe(before);
    // Another boot: the machine went down while slapd ran.
    await t.dir.stop();
    writeFileSync(p.bootFile, '00000000-0000-0000-0000-000000000000\n');
    await t.start();
    expect(readlinkSync(p.db)).not.toBe(before);
    expect(existsSync(p.bootFile)).toBe(true); // marks the run that just started
    const bal = await aPublicAddress();
    expect((await ldapsearch(t, ['-H', t.ldap, '-b', t.base, `(mail=${bal.address})`, '1.1'])).entries).toHaveLength(1);
  });

  it('check reports no difference after load and sync, then each planted difference', async () => {
    await t.dir.sync();
    const clean = await t.dir.check();
    expect(clean).toMatchObject({ missing: 0, extra: 0, different: 0, samples: [] });
    expect(clean.directory).toBe(await expectedEntries(db, 'all'));

    // Plant: delete one entry, change another, add a stranger — directly in slapd.
    const { rows } = await db.query<{ key: string }>('SELECT key FROM annuaire_ldap_bal ORDER BY key LIMIT 2 OFFSET 100');
    const admin = new Client({ url: t.ldaps, tlsOptions: { ca: [t.pki.read('ca.pem')] } });
    await admin.bind(`cn=admin,${t.base}`, rootSecret(ldapPaths(t.config)));
    await admin.del(`mail=${rows[0].key},ou=bal,${t.base}`);
    const { Change, Attribute } = await import('ldapts');
    await admin.modify(`mail=${rows[1].key},ou=bal,${t.base}`, [new Change({ operation: 'replace', modification: new Attribute({ type: 'cn', values: ['Quelqu\u2019un d\u2019autre'] }) })]);
    await admin.add(`mail=fantome@ailleurs.example,ou=bal,${t.base}`, { objectClass: ['inetOrgPerson', 'mssBoite'], cn: 'Fantôme', sn: 'Fantôme', mail: 'fantome@ailleurs.example', mssBalType: 'PER' });
    await admin.unbind();

    const dirty = await t.dir.check();
    expect({ missing: dirty.missing, extra: dirty.extra, different: dirty.different }).toEqual({ missing: 1, extra: 1, different: 1 });
    expect(dirty.samples).toEqual(
      expect.arrayContaining([
        { kind: 'bal', key: rows[0].key, problem: 'missing' },
        { kind: 'bal', key: rows[1].key, problem: 'different', attributes: ['cn'] },
        { kind: 'bal', key: 'fantome@ailleurs.example', problem: 'extra' },
      ]),
    );
  });

  it('rebuild swaps in a fresh database atomically: every search during it answers in full, then check is clean', async () => {
    const p = ldapPaths(t.config);
    const before = readlinkSync(p.db);
    const bal = await aPublicAddress();
    let stop = false;
    const answers: number[] = [];
    const watcher = (async () => {
      while (!stop) {
        const r = await ldapsearch(t, ['-H', t.ldap, '-b', t.base, `(mail=${bal.address})`, '1.1']);
        // During the restart slapd may refuse connections (-1/255); when it answers, it answers in full.
        if (r.code === 0) answers.push(r.entries.length);
      }
    })();
    const report = await t.dir.rebuild();
    stop = true;
    await watcher;
    expect(report.entries).toBe(await expectedEntries(db, 'all'));
    expect(answers.length).toBeGreaterThan(0);
    expect(answers.every((n) => n === 1)).toBe(true);
    const after = readlinkSync(p.db);
    expect(after).not.toBe(before);
    expect(existsSync(`${p.dir}/${before}`)).toBe(false);
    const check = await t.dir.check();
    expect({ missing: check.missing, extra: check.extra, different: check.different }).toEqual({ missing: 0, extra: 0, different: 0 });
    const r = await ldapsearch(t, ['-H', t.ldap, '-ZZ', '-b', t.base, `(mail=${bal.address})`, '1.1']);
    expect(r.entries).toHaveLength(1);
  });
});
