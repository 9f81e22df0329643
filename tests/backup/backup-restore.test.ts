// `mss backup` of a running platform under load (mail arriving through the MX while an
// annuaire import runs), `mss restore` into a new data directory, the restored platform
// started and compared with the original: every box's messages byte for byte (imapflow,
// both sides), the annuaire's counts and the LDAP directory's entries (ldapts), the journal
// (`mss journal verify`), an admin login. And sets that must be refused: a byte flipped, a
// file missing, a file added, the manifest edited.
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importFiles } from '../../annuaire/import/importer.js';
import { RejectReport } from '../../annuaire/import/report.js';
import { connect, feederConnection } from '../../annuaire/ldap/client.js';
import { ldapPaths } from '../../annuaire/ldap/files.js';
import { runningSlapd } from '../../annuaire/ldap/slapd.js';
import { startPlatform, type Platform } from '../../bin/platform.js';
import type { Config } from '../../core/config/index.js';
import { silentLogger } from '../../core/logger.js';
import { createScratchDatabase, realPgUrl } from '../helpers/db.js';
import { runMssAsync } from '../helpers/mss.js';
import { freePorts, operatorConfig, operatorOf, startOperator, until, type TestOperator } from '../helpers/operator.js';
import { testPki, tsaEnv, type TestPki } from '../helpers/pki.js';
import { activityLines, encodeFile, mssanteLines } from '../helpers/rpps-generator.js';

const A = 'mssante.localhost';
const B = 'peer.mssante.localhost';
const BOXES = ['dr.alpha', 'dr.beta', 'dr.gamma'];

let pki: TestPki;
let a: TestOperator;
let restored: TestOperator | undefined;
let work: string;
let env: Record<string, string>;
const opts = (dbUrl?: string) => ({ pki, domain: A, cert: 'server' as const, peers: [B], overrides: { admin: { enabled: true, port: 0 }, ...(dbUrl ? { database: { url: dbUrl } } : {}) } });

/** The command's environment: the same settings the platform runs with (its TSA and certificates, outside the data directory). */
const cliEnv = (p: TestPki): Record<string, string> => ({
  ...tsaEnv(p),
  MSS_TLS_CERT_FILE: p.paths.leaves.server.cert,
  MSS_TLS_KEY_FILE: p.paths.leaves.server.key,
  MSS_TLS_CHAIN_FILE: p.paths.intermediate,
  MSS_TLS_CA_FILE: p.paths.chain,
  MSS_TLS_CRL_FILE: p.file('crl.pem'),
  MSS_OPERATOR_DOMAIN: A,
  MSS_OPERATOR_HOSTNAME: A,
  MSS_PKI_AUTO_INIT: 'false',
});

/** Another operator's MX client: its certificate from the liste blanche, its own domain. */
const peerMx = () =>
  nodemailer.createTransport({
    host: '127.0.0.1',
    port: a.ports.mx,
    secure: false,
    requireTLS: true,
    tls: { ca: pki.read('ca.pem'), servername: 'localhost', cert: pki.read('peer-operator.pem') + pki.read('intermediate.pem'), key: pki.read('peer-operator.key') },
  });

let sent = 0;
const acked: string[] = [];
/** n messages through the MX, or fewer if `more` turns false first. */
async function send(n: number, more: () => boolean = () => true, concurrency = 2) {
  const t = peerMx();
  const goal = sent + n;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (sent < goal && more()) {
        const i = sent++;
        const messageId = `<backup-${i}@${B}>`;
        const info = await t.sendMail({ from: `labo@${B}`, to: `${BOXES[i % BOXES.length]}@${A}`, subject: `Résultat ${i}`, text: `Résultat d'analyse n° ${i}\r\n${'ligne de compte rendu\r\n'.repeat(i % 7)}`, messageId });
        if (/^250 /.test(info.response)) acked.push(messageId);
      }
    }),
  );
  t.close();
}

/** Every message of every folder of a box: folder and Message-ID → its bytes. */
async function boxSources(op: TestOperator, address: string): Promise<Map<string, Buffer>> {
  const c = await op.imap(address);
  const out = new Map<string, Buffer>();
  try {
    for (const folder of await c.list()) {
      const lock = await c.getMailboxLock(folder.path);
      try {
        for await (const m of c.fetch('1:*', { source: true, envelope: true }, { uid: true })) {
          out.set(`${folder.path} ${m.envelope?.messageId}`, m.source!);
        }
      } catch (e) {
        if (!/empty|Invalid messageset|no messages/i.test(String((e as Error).message))) throw e;
      } finally {
        lock.release();
      }
    }
  } finally {
    await c.logout();
  }
  return out;
}
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
async function boxContents(op: TestOperator, address: string): Promise<Map<string, string>> {
  return new Map([...(await boxSources(op, address))].map(([k, v]) => [k, sha(v)]));
}

/** What Dovecot's LMTP prepends at delivery (Return-Path, Delivered-To, its Received with an id and the time): the rest is what the MX spooled. */
const LMTP_TRACE = /^Return-Path: [^\r\n]*\r\nDelivered-To: [^\r\n]*\r\n(Received: [^\r\n]*(?:\r\n[ \t][^\r\n]*)*)\r\n/;
const spooled = (b: Buffer) => {
  const text = b.toString('latin1');
  const m = LMTP_TRACE.exec(text);
  expect(m?.[1], text.slice(0, 400)).toContain('with LMTP');
  return text.slice(m![0].length);
};

const inboxCount = async (op: TestOperator, address: string) => {
  const c = await op.imap(address);
  try {
    const st = await c.status('INBOX', { messages: true });
    return st ? (st.messages ?? 0) : 0;
  } finally {
    await c.logout();
  }
};

const TABLES = ['annuaire_persons', 'annuaire_structures', 'annuaire_activities', 'annuaire_mss_addresses', 'bal_persons', 'bal_mailboxes', 'bal_members', 'whitelist_domains', 'admin_accounts'];
async function counts(p: Platform): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of TABLES) out[t] = Number((await p.db.query<{ n: number }>(`SELECT count(*) AS n FROM ${t}`)).rows[0].n);
  return out;
}

/** Every entry the directory serves, as text: DN and attributes, sorted. */
async function ldapEntries(config: Config): Promise<string[]> {
  const slapd = runningSlapd(ldapPaths(config))!;
  const client = await connect(feederConnection(ldapPaths(config), slapd.ldaps, config.ldap.baseDn));
  try {
    const { searchEntries } = await client.search(config.ldap.baseDn, { scope: 'sub', filter: '(objectClass=*)', paged: { pageSize: 500 } });
    return searchEntries
      .map((e) => {
        const attrs = Object.entries(e)
          .filter(([k]) => k !== 'dn')
          .map(([k, v]) => `${k}=${JSON.stringify(Array.isArray(v) ? v.map(String).sort() : [String(v)])}`)
          .sort();
        return `${e.dn.toLowerCase()} ${attrs.join(' ')}`;
      })
      .sort();
  } finally {
    await client.unbind();
  }
}

function adminLogin(p: Platform, login: string, password: string): Promise<{ status: number; body: { token?: string } }> {
  const u = new URL(`${p.admin!.url}/api/v1/login`);
  const data = JSON.stringify({ login, password });
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', ca: pki.read('ca.pem'), servername: 'localhost', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(body || '{}') }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

// The whole scenario runs on PGlite, which is always there. On PostgreSQL (MSS_DATABASE_URL)
// only what its backup does differently: the database taken by pg_dump in a snapshot while
// mail arrives and an import runs, restored into a new database and started (same counts,
// directory and admin login; the set taken under load one consistent state). The mail copy
// and the checks that refuse a damaged set are the same code on both: checked on PGlite.
const kinds: Array<'pglite' | 'pg'> = realPgUrl ? ['pglite', 'pg'] : ['pglite'];
describe.each(kinds)('on %s', (kind) => {
  const full = kind === 'pglite';
  let source: { url: string; drop(): Promise<void> } | undefined;
  const targets: Array<{ drop(): Promise<void> }> = [];

  beforeAll(async () => {
    pki = await testPki();
    sent = 0;
    acked.length = 0;
    work = mkdtempSync(join(tmpdir(), 'mss-backup-'));
    chmodSync(work, 0o711);
    underLoad = join(work, 'set-under-load');
    source = kind === 'pg' ? await createScratchDatabase(realPgUrl!) : undefined;
    env = { ...cliEnv(pki), ...(source ? { MSS_DATABASE_URL: source.url } : {}) };
    a = await startOperator({ ...opts(source?.url), ports: await freePorts() });
    for (const [i, local] of BOXES.entries()) await a.person(local, `89999999991${i}`);
    await a.synced();
  });

  afterAll(async () => {
    await restored?.stop();
    await a?.stop();
    restored = undefined;
    for (const d of [source, ...targets]) await d?.drop();
    targets.length = 0;
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** Where a restore goes: a new data directory, and on PostgreSQL a new empty database; its environment and configuration. */
  async function target(name: string) {
    const dst = join(work, name);
    const db = kind === 'pg' ? await createScratchDatabase(realPgUrl!) : undefined;
    if (db) targets.push(db);
    const ports = await freePorts();
    return { dst, env: { ...env, ...(db ? { MSS_DATABASE_URL: db.url } : {}) }, config: operatorConfig({ ...opts(db?.url), ports }, dst), ports };
  }

  const set = () => join(work, 'set');
  /** A copy of the first set, taken while mail arrived and the import ran. */
  let underLoad = '';

  it(`backs up a running platform under load and restores it into a new data directory: ${full ? 'same mail byte for byte' : 'as many messages in every inbox'}, same annuaire and LDAP, journal verified, admin login`, async () => {
    // Some mail delivered before anything else.
    await send(6);
    await until(async () => (await Promise.all(BOXES.map((b) => inboxCount(a, `${b}@${A}`)))).reduce((x: number, y: number) => x + y, 0) === 6);

    // Under load: mail through the MX and an annuaire import, while `mss backup` runs.
    const extraction = join(work, 'PS_LibreAcces_Personne_activite_202601010000.txt');
    writeFileSync(extraction, encodeFile(activityLines({ lines: 1500, seed: 16 })));
    const addresses = join(work, 'Extraction_Correspondance_MSSante_202601010000.txt');
    writeFileSync(addresses, encodeFile(mssanteLines({ lines: 600, seed: 16 })));
    const report = new RejectReport(join(work, 'report.tsv'));
    const ackedBefore = acked.length;
    // Mail keeps arriving until the backup ends (at most 300 messages).
    let backingUp = true;
    const [backup1] = await Promise.all([
      runMssAsync(['backup', '--data-dir', a.config.dataDir, set()], env).finally(() => (backingUp = false)),
      send(300, () => backingUp),
      importFiles([extraction, addresses], { db: a.platform.db.background(), journal: a.platform.journal, actor: 'test', report, ldap: a.platform.directory }).then((o) => expect(o.failures).toEqual([])),
    ]);
    report.close();
    process.stderr.write(`backup under load: ${acked.length - ackedBefore} messages acknowledged by the MX while it ran\n`);
    expect(backup1.code, backup1.stderr).toBe(0);
    if (kind === 'pg') expect(backup1.stderr).toMatch(/\[2\/4\] database \(PostgreSQL\)\n.*pg_dump --format=custom in snapshot /);
    else expect(backup1.stderr).toMatch(/\[2\/4\] database \(embedded PGlite\)\n.*taken by the running platform between two transactions/);
    expect(backup1.stderr).toMatch(/boxes 3\/3/);
    expect(ackedBefore).toBe(6);
    expect(acked.length).toBe(sent);
    expect(acked.length).toBeGreaterThan(6);
    cpSync(set(), underLoad, { recursive: true });
    const manifest1 = JSON.parse(readFileSync(join(set(), 'manifest.json'), 'utf8'));
    expect(manifest1.mail.boxes).toEqual(BOXES.map((b) => `${b}@${A}`));
    expect(manifest1.journal.seq).toBeGreaterThan(0);
    // The certificates and keys the settings name outside the data directory are in the set.
    expect(manifest1.external).toContain(pki.paths.leaves.server.key);

    // Once the load is over, the same set brought up to date: the mail incrementally (a
    // message file already in the set is not copied again).
    await until(async () => (await Promise.all(BOXES.map((b) => inboxCount(a, `${b}@${A}`)))).reduce((x: number, y: number) => x + y, 0) === acked.length);
    await a.synced();
    const kept = manifest1.files.find((f: { path: string }) => f.path.startsWith('mail/') && /\/cur\/|\/new\//.test(f.path)).path;
    const inode = statSync(join(set(), kept)).ino;
    const backup2 = await runMssAsync(['backup', '--data-dir', a.config.dataDir, set()], env);
    expect(backup2.code, backup2.stderr).toBe(0);
    expect(backup2.stderr).toContain('updating the backup set');
    const manifest2 = JSON.parse(readFileSync(join(set(), 'manifest.json'), 'utf8'));
    expect(manifest2.mail.runs).toBe(2);
    expect(statSync(join(set(), kept)).ino).toBe(inode);
    expect(manifest2.journal.seq).toBeGreaterThan(manifest1.journal.seq);

    // Restore into a new data directory, then start it.
    const { dst, env: restoreEnv, config, ports } = await target('restored');
    const r = await runMssAsync(['restore', '--data-dir', dst, set()], restoreEnv);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('manifest sealed and every file intact');
    expect(r.stderr).toMatch(/journal OK: \d+ events/);
    restored = operatorOf(await startPlatform(config, silentLogger), config, { domain: A, ports });
    await restored.synced();

    for (const b of BOXES) {
      if (!full) {
        expect(await inboxCount(restored, `${b}@${A}`)).toBe(await inboxCount(a, `${b}@${A}`));
        continue;
      }
      const [before, after] = await Promise.all([boxContents(a, `${b}@${A}`), boxContents(restored, `${b}@${A}`)]);
      expect(after.size).toBeGreaterThan(0);
      expect(after).toEqual(before);
    }
    expect(await counts(restored.platform)).toEqual(await counts(a.platform));
    expect((await counts(a.platform)).annuaire_persons).toBeGreaterThan(1000);
    const [ldapBefore, ldapAfter] = await Promise.all([ldapEntries(a.config), ldapEntries(config)]);
    expect(ldapAfter.length).toBeGreaterThan(500);
    expect(ldapAfter).toEqual(ldapBefore);

    const boot = a.platform.admin!.bootstrap!;
    const login = await adminLogin(restored.platform, boot.login, boot.password);
    expect(login.status).toBe(200);
    expect(login.body.token).toBeTruthy();
    expect((await adminLogin(restored.platform, boot.login, 'not-the-password')).status).toBe(401);

    await restored.stop();
    restored = undefined;
    const verify = await runMssAsync(['journal', 'verify', '--data-dir', dst], restoreEnv);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/^journal OK: \d+ events/);
  });

  it('the set taken under load is one consistent state: restored and started, its spool delivers what it held, every message is the original byte for byte, none acknowledged before the backup is missing, the journal verifies', async () => {
    const { dst, env: restoreEnv, config, ports } = await target('restored-under-load');
    const r = await runMssAsync(['restore', '--data-dir', dst, underLoad], restoreEnv);
    expect(r.code, r.stderr).toBe(0);
    restored = operatorOf(await startPlatform(config, silentLogger), config, { domain: A, ports });
    // Messages spooled (250 given) but not yet in Dovecot when the image was taken are delivered now.
    await until(async () => Number((await restored!.platform.db.query<{ n: number }>("SELECT count(*) AS n FROM smtp_spool WHERE state = 'queued'")).rows[0].n) === 0);
    // A message Dovecot held at the backup is the same file; one still in the spool is
    // delivered again by the restored platform, under a new LMTP trace (id, time) of Dovecot's.
    const seen = new Set<string>();
    let redelivered = 0;
    for (const b of BOXES) {
      const [original, after] = await Promise.all([boxSources(a, `${b}@${A}`), boxSources(restored, `${b}@${A}`)]);
      for (const [key, source] of after) {
        const was = original.get(key);
        expect(was, key).toBeDefined();
        if (!was!.equals(source)) {
          expect(spooled(source), key).toBe(spooled(was!));
          redelivered++;
        }
        seen.add(key.split(' ')[1]);
      }
    }
    process.stderr.write(`set under load: ${seen.size} messages restored, ${redelivered} of them delivered again from the restored spool\n`);
    for (const id of acked.slice(0, 6)) expect(seen.has(id), id).toBe(true);
    // What the restored database says the MX accepted (its smtp.received events) is in the boxes:
    // the database image and the mail copy are one state, with nothing accepted and lost between them.
    const accepted = (await restored.platform.db.query<{ subject: string }>("SELECT subject FROM journal_events WHERE type = 'smtp.received'")).rows.map((r) => `<${r.subject.replace(/^<|>$/g, '')}>`);
    expect(accepted.length).toBeGreaterThanOrEqual(6);
    for (const id of accepted) expect(seen.has(id), `${id}: accepted in the restored journal, in no restored box`).toBe(true);
    await restored.stop();
    restored = undefined;
    const verify = await runMssAsync(['journal', 'verify', '--data-dir', dst], restoreEnv);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  });

  /** A copy of the good set with one thing wrong; restoring it must be refused, and write nothing. */
  async function refused(damage: (dir: string) => void): Promise<string> {
    const bad = mkdtempSync(join(work, 'bad-'));
    cpSync(set(), bad, { recursive: true });
    damage(bad);
    const { dst, env: restoreEnv } = await target(`never-${Math.random().toString(36).slice(2)}`);
    const r = await runMssAsync(['restore', '--data-dir', dst, bad], restoreEnv);
    expect(r.code).toBe(1);
    expect(existsSync(dst)).toBe(false);
    return r.stderr.split('\n').filter((l) => l.startsWith('mss: '))[0];
  }

  it.runIf(full)('refuses a set with a byte flipped, a file missing, a file added, or its manifest edited — naming the file and what is wrong', async () => {
    const m = JSON.parse(readFileSync(join(set(), 'manifest.json'), 'utf8')) as { files: Array<{ path: string }>; database: { file: string } };
    const dbFile = m.database.file;
    const dbRe = dbFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const mail = m.files.find((f) => /^mail\/.*\/cur\//.test(f.path) || /^mail\/.*\/new\//.test(f.path))!.path;
    // Each refusal has its own copy of the set and its own target: they run at once.
    const [flipped, noDb, noManifest, added, cut, edited] = await Promise.all([
      refused((d) => {
        const buf = readFileSync(join(d, mail));
        buf[Math.floor(buf.length / 2)] ^= 0x01;
        writeFileSync(join(d, mail), buf);
      }),
      refused((d) => rmSync(join(d, dbFile))),
      refused((d) => rmSync(join(d, 'manifest.json'))),
      refused((d) => writeFileSync(join(d, 'files', 'data', 'extra.txt'), 'x')),
      refused((d) => {
        const f = join(d, dbFile);
        writeFileSync(f, readFileSync(f).subarray(0, 1000));
      }),
      // An edit that keeps the manifest consistent with the files (the journal position moved) breaks its seal.
      refused((d) => {
        const text = readFileSync(join(d, 'manifest.json'), 'utf8');
        writeFileSync(join(d, 'manifest.json'), text.replace(/"seq": (\d+)/, (_, n) => `"seq": ${Number(n) + 1}`));
      }),
    ]);
    expect(flipped).toMatch(new RegExp(`^mss: the backup set .* is refused, nothing was restored: ${mail.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: SHA-256 [0-9a-f]{64} differs from the manifest's [0-9a-f]{64}: the file was changed or damaged$`));
    expect(noDb).toMatch(new RegExp(`: ${dbRe}: missing \\(listed in the manifest\\)$`));
    expect(noManifest).toMatch(/: manifest\.json: missing: this is not a complete backup set/);
    expect(added).toMatch(/: files\/data\/extra\.txt: not in the manifest: added to the set after the backup$/);
    expect(cut).toMatch(new RegExp(`: ${dbRe}: is 1000 bytes, the manifest says \\d+: the file was cut short or changed$`));
    expect(edited).toMatch(/: manifest\.json: does not match its seal manifest\.tsr \(.*\): the manifest was changed after the backup/);
  });
});
