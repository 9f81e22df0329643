// bench/ldap-sync: the LDAP directory fed from PostgreSQL, against peers measured in the
// same run on the same machine.
//
//   1. build: `rebuildDirectory` (views → LDIF stream → slapadd -q, fresh database, swap)
//      against `slapadd -q` of the same LDIF written to a file beforehand.   target ≤ 1.3×
//   2. a 1 % diff (mailboxes changed in the database and queued in the same transaction):
//      time from the commit until every change is applied and visible over LDAP.
//   3. exact (mail=…) lookups per second through the platform's slapd (its generated
//      config: ACLs, limits, TLS, indexes) against a bare slapd holding the same data with
//      a minimal config (mdb, suffix, `index objectClass,mail eq`), same client, same load.
//                                                                               target ≥ 1.0×
//
// Needs a real PostgreSQL (MSS_DATABASE_URL); works in a scratch database it drops at the end.
//   node dist/bench/ldap-sync.js [--entries N] [--seconds S] [--keep]
// N = mailboxes in the annuaire (default 1,000,000); the directory then also holds their
// holders and structures, so it has about 1.9 × N entries.

import { spawn } from 'node:child_process';
import { chmodSync, createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { Client } from 'ldapts';
import pg from 'pg';
import { ldapPaths, queueLdapChanges, rebuildDirectory, startDirectory } from '../annuaire/ldap/index.js';
import { newDbDir, prepareFiles, rootSecret, slapdConf, sshaHash } from '../annuaire/ldap/files.js';
import { ldifStream } from '../annuaire/ldap/rebuild.js';
import { freePort, slapadd } from '../annuaire/ldap/slapd.js';
import { initDevPki } from '../certs/pki.js';
import { loadConfig, type Config } from '../core/config/index.js';
import { migrate, openPg, type Db } from '../core/db/index.js';
import { Journal } from '../core/journal/index.js';
import { silentLogger } from '../core/logger.js';
import { childUser, chownTree, Supervisor } from '../core/supervisor.js';
import { expectedEntries, seedAnnuaire } from './ldap-fixtures.js';

const args = process.argv.slice(2);
const opt = (name: string, def: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const N = opt('entries', 1_000_000);
const SECONDS = opt('seconds', 30);
const KEEP = args.includes('--keep');

const fmt = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 0 });
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const say = (s: string) => process.stdout.write(s + '\n');

let peakRss = 0;
const rssTimer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);
rssTimer.unref();

async function time<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t = performance.now();
  const r = await fn();
  return [r, performance.now() - t];
}

/** `concurrency` lookups in flight on each of `clients` connections, for `seconds`. */
async function lookups(url: string, base: string, keys: string[], seconds: number, clients = 4, concurrency = 8): Promise<number> {
  const conns = await Promise.all(
    Array.from({ length: clients }, async () => {
      const c = new Client({ url, timeout: 10_000 });
      // Connect before pipelining: ldapts opens one socket per call made while unconnected.
      await c.search('', { scope: 'base', attributes: ['1.1'] });
      return c;
    }),
  );
  let done = 0;
  let misses = 0;
  const end = performance.now() + seconds * 1000;
  let i = Math.floor(Math.random() * keys.length);
  await Promise.all(
    conns.flatMap((c) =>
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < end) {
          const key = keys[i++ % keys.length];
          const { searchEntries } = await c.search(base, { scope: 'sub', filter: `(mail=${key})`, attributes: ['mail', 'cn'] });
          if (searchEntries.length !== 1) misses++;
          done++;
        }
      }),
    ),
  );
  await Promise.all(conns.map((c) => c.unbind()));
  if (misses) throw new Error(`${misses} lookups did not find exactly one entry`);
  return done / seconds;
}

/** A slapd with a minimal configuration on the same data: what the platform's config is compared to. */
async function bareSlapd(c: Config, dir: string, ldif: string): Promise<{ url: string; stop(): Promise<void> }> {
  const user = childUser();
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'db'), { recursive: true });
  const conf = join(dir, 'slapd.conf');
  writeFileSync(
    conf,
    `include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include ${ldapPaths(c).schema}
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile ${dir}/slapd.pid
database mdb
suffix "${c.ldap.baseDn}"
directory ${dir}/db
maxsize ${c.ldap.maxSize}
index objectClass eq
index mail eq
`,
  );
  chownTree(dir, user);
  await slapadd(c, conf, user, ldif);
  const port = await freePort('127.0.0.1');
  const url = `ldap://127.0.0.1:${port}`;
  const child = spawn(c.ldap.slapd, ['-f', conf, '-h', `${url}/`, '-d', '0', ...(user.dropped ? ['-u', String(user.uid), '-g', String(user.gid)] : [])], { stdio: 'inherit' });
  for (let t = 0; ; t++) {
    try {
      const probe = new Client({ url });
      await probe.search('', { scope: 'base' });
      await probe.unbind();
      break;
    } catch {
      if (t > 200) throw new Error('bare slapd did not start');
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    url,
    async stop() {
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

async function main() {
  const baseUrl = process.env.MSS_DATABASE_URL;
  if (!baseUrl) throw new Error('set MSS_DATABASE_URL to a PostgreSQL server this bench may create a scratch database on');
  const scratch = `mss_bench_ldap_${Date.now().toString(36)}`;
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${scratch}`);
  const u = new URL(baseUrl);
  u.pathname = `/${scratch}`;
  const work = mkdtempSync(join(tmpdir(), 'mss-bench-ldap-'));
  chmodSync(work, 0o711);
  let db: Db | undefined;
  const stops: Array<() => Promise<unknown>> = [];
  try {
    db = await openPg({ url: u.toString(), poolSize: 8 });
    await migrate(db);
    const persons = Math.round(N / 1.1);
    say(`bench/ldap-sync — ${fmt(N)} mailboxes wanted: seeding ${fmt(persons)} professionals into ${scratch}…`);
    const [seeded, seedMs] = await time(() => seedAnnuaire(db!, { count: persons }));
    await db.exec('ANALYZE');
    const entries = await expectedEntries(db, 'all');
    say(`  seeded ${fmt(seeded.mailboxes)} mailboxes (${fmt(seeded.persons)} professionals) in ${secs(seedMs)}; the directory holds ${fmt(entries)} entries`);

    const pki = await initDevPki({ dir: join(work, 'pki'), domain: 'mssante.localhost', keyBits: 2048, validityDays: 30 });
    const config = loadConfig({
      env: {},
      overrides: {
        dataDir: join(work, 'data'),
        database: { url: u.toString() },
        ldap: { port: 0, ldapsPort: 0 },
        tls: { certFile: pki.paths.leaves.server.cert, keyFile: pki.paths.leaves.server.key, chainFile: pki.paths.intermediate, caFile: pki.paths.ca },
      },
    });
    mkdirSync(config.dataDir, { recursive: true });
    chmodSync(config.dataDir, 0o711);
    const user = childUser();
    const p = ldapPaths(config);
    prepareFiles(config, p, user, { tls: true });

    // 1. Build from PostgreSQL vs slapadd of a pre-written LDIF.
    const ldifFile = join(work, 'annuaire.ldif');
    const [, writeMs] = await time(() =>
      db!.transaction(async (tx) => {
        const out = createWriteStream(ldifFile);
        for await (const chunk of ldifStream(tx, config.ldap.baseDn, { entries: 0 })) if (!out.write(chunk)) await once(out, 'drain');
        out.end();
        await once(out, 'finish');
      }),
    );
    chmodSync(ldifFile, 0o644);
    say(`  (LDIF for the peer written in ${secs(writeMs)}, not counted)`);
    const rssBefore = process.memoryUsage().rss;
    peakRss = rssBefore;
    const [rebuilt, rebuildMs] = await time(() => rebuildDirectory(config, db!, { user }));
    const rebuildRss = peakRss;
    const peerDir = newDbDir(p);
    chownTree(peerDir, user);
    const peerConf = `${peerDir}.conf`;
    writeFileSync(peerConf, slapdConf(config, p, { directory: peerDir, rootPwHash: sshaHash(rootSecret(p)), tls: false }));
    chownTree(peerConf, user);
    const [, slapaddMs] = await time(() => slapadd(config, peerConf, user, ldifFile));
    rmSync(peerDir, { recursive: true, force: true });
    rmSync(peerConf, { force: true });
    say('');
    say(`build the directory (${fmt(rebuilt.entries)} entries)`);
    say(`  from PostgreSQL (rebuild-ldap)      ${secs(rebuildMs).padStart(9)}   peak RSS ${fmt(rebuildRss / 2 ** 20)} MB (before: ${fmt(rssBefore / 2 ** 20)} MB)`);
    say(`  slapadd -q of a pre-written LDIF    ${secs(slapaddMs).padStart(9)}`);
    say(`  ratio                               ${(rebuildMs / slapaddMs).toFixed(2)}×   (target ≤ 1.3×)`);

    // 2. A 1 % diff, from the database commit to visible over LDAP.
    const supervisor = new Supervisor(silentLogger);
    const dir = await startDirectory(config, silentLogger, db, new Journal(db), { supervisor });
    stops.push(() => dir.stop());
    const ldap = dir.endpoints[0].url.replace(/\/[^/]*$/, '');
    const diffN = Math.max(1, Math.round(seeded.mailboxes / 100));
    const stamp = `Service ${Date.now().toString(36)}`;
    await db.transaction(async (tx) => {
      const { rows } = await tx.query<{ address: string }>(
        `UPDATE annuaire_mss_addresses SET service = $1 WHERE ctid IN (SELECT ctid FROM annuaire_mss_addresses WHERE active AND NOT liste_rouge ORDER BY md5(address) LIMIT $2) RETURNING address`,
        [stamp, diffN],
      );
      await queueLdapChanges(tx, { addresses: rows.map((r) => r.address) });
    });
    // From the commit: the queue is emptied only once the directory has the changes.
    const [, diffMs] = await time(async () => {
      for (;;) {
        const { rows } = await db!.query<{ n: number }>('SELECT count(*)::int AS n FROM annuaire_ldap_pending');
        if (rows[0].n === 0) break;
        await new Promise((r) => setTimeout(r, 20));
      }
    });
    const probe = new Client({ url: ldap });
    const { searchEntries } = await probe.search(config.ldap.baseDn, { scope: 'sub', filter: `(ou=${stamp})`, attributes: ['1.1'], paged: { pageSize: 1000 } });
    await probe.unbind();
    if (searchEntries.length !== diffN) throw new Error(`expected ${diffN} changed entries in LDAP, found ${searchEntries.length}`);
    say('');
    say(`a 1 % diff: ${fmt(diffN)} mailboxes changed in one transaction`);
    say(`  commit → all visible over LDAP      ${secs(diffMs).padStart(9)}   (${fmt(diffN / (diffMs / 1000))} entries/s; sync interval ${config.ldap.syncInterval} ms)`);

    // 3. Exact lookups: the platform's slapd vs a bare slapd with the same data.
    const { rows: sample } = await db.query<{ key: string }>('SELECT key FROM annuaire_ldap_bal ORDER BY md5(key) LIMIT 20000');
    const keys = sample.map((r) => r.key);
    const bare = await bareSlapd(config, join(work, 'bare'), ldifFile);
    stops.push(() => bare.stop());
    await lookups(ldap, config.ldap.baseDn, keys, 2); // warm both caches
    await lookups(bare.url, config.ldap.baseDn, keys, 2);
    const ours: number[] = [];
    const theirs: number[] = [];
    // Alternating rounds in ABBA order, median of each: the machine's other load, and
    // whatever drifts during the run (page cache, CPU clock), hits both sides alike.
    const ROUNDS = 6;
    for (let round = 0; round < ROUNDS; round++) {
      const pair = [() => lookups(ldap, config.ldap.baseDn, keys, SECONDS / ROUNDS).then((r) => ours.push(r)), () => lookups(bare.url, config.ldap.baseDn, keys, SECONDS / ROUNDS).then((r) => theirs.push(r))];
      if (round % 4 === 1 || round % 4 === 2) pair.reverse();
      for (const run of pair) await run();
    }
    const median = (xs: number[]) => {
      const o = [...xs].sort((a, b) => a - b);
      return (o[Math.floor((o.length - 1) / 2)] + o[Math.ceil((o.length - 1) / 2)]) / 2;
    };
    const o = median(ours);
    const b = median(theirs);
    say('');
    say(`exact (mail=…) lookups, 4 connections × 8 in flight, median of ${ROUNDS} alternating rounds of ${(SECONDS / ROUNDS).toFixed(1)} s`);
    say(`  platform slapd                      ${fmt(o).padStart(9)} /s   (${ours.map(fmt).join(', ')})`);
    say(`  bare default slapd, same data       ${fmt(b).padStart(9)} /s   (${theirs.map(fmt).join(', ')})`);
    say(`  ratio                               ${(o / b).toFixed(2)}×   (target ≥ 1.0×)`);
  } finally {
    for (const s of stops.reverse()) await s().catch(() => {});
    await db?.close();
    await admin.query(`DROP DATABASE IF EXISTS ${scratch} WITH (FORCE)`).catch(() => {});
    await admin.end();
    if (!KEEP) rmSync(work, { recursive: true, force: true });
    else say(`kept ${work}`);
  }
}

main().catch((e) => {
  process.stderr.write(`bench/ldap-sync: ${(e as Error).message}\n`);
  process.exit(1);
});
