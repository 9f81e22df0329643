// `mss backup DIR` and `mss restore DIR`: the steps in order, each from its module —
// files (core/backup/files), database (core/backup/database: pg_dump, or the embedded
// database's image through the running platform), mail (core/backup/mail: doveadm backup),
// the manifest sealed with the journal's timestamping authority (core/backup/manifest);
// restored the other way, then the journal's unsealed tail sealed and the whole journal
// verified, and the LDAP directory rebuilt from the restored annuaire.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { settings, type Config } from '../core/config/index.js';
import { openDb } from '../core/db/index.js';
import { MssError } from '../core/errors.js';
import { Journal, type TokenVerifier } from '../core/journal/index.js';
import { commandLogger } from '../core/logger.js';
import { fromRoot } from '../core/paths.js';
import { childUser, Supervisor } from '../core/supervisor.js';
import { checkDatabaseTarget, dumpDatabase, restoreDatabase } from '../core/backup/database.js';
import { backupFiles, DATA_FILES, EXTERNAL_FILES, inside, restoreFiles } from '../core/backup/files.js';
import { backupMail, restoreMail, type DoveadmTarget } from '../core/backup/mail.js';
import { previousManifest, sha256File, unseal, verifySet, writeManifest, type Manifest } from '../core/backup/manifest.js';
import { grantTraverse, mailCryptEnv, startMailstore } from '../mailstore/dovecot.js';
import { localKeyring } from '../core/crypt/index.js';
import { rebuildDirectory } from '../annuaire/ldap/rebuild.js';
import { ldapPaths, prepareFiles } from '../annuaire/ldap/files.js';
import { verifyTimestampResponse } from '../certs/tsa.js';
import { journalAnchorFile, journalTimestamping, sealingOptions } from './sealing.js';

export type Say = (line: string) => void;
/** Progress of a step with a count: one line per tenth on a pipe, a line redrawn on a terminal. */
export function counter(say: Say, what: string, tty = !!process.stderr.isTTY) {
  let shown = -1;
  return (done: number, total: number, item = '') => {
    if (tty) return void process.stderr.write(`\r\x1b[K  ${what} ${done}/${total} ${item}${done === total ? '\n' : ''}`);
    const tenth = total ? Math.floor((done * 10) / total) : 10;
    if (tenth === shown) return;
    shown = tenth;
    say(`  ${what} ${done}/${total}`);
  };
}

/** Dovecot's base_dir and whether its master runs, from the configuration the platform generated. */
function runningDovecot(config: Config): string | undefined {
  const conf = join(config.dataDir, 'dovecot', 'dovecot.conf');
  if (!existsSync(conf)) return undefined;
  const base = /^base_dir = (.+)$/m.exec(readFileSync(conf, 'utf8'))?.[1];
  if (!base) return undefined;
  try {
    process.kill(Number(readFileSync(join(base, 'master.pid'), 'utf8').trim()), 0);
    return conf;
  } catch {
    return undefined;
  }
}

/** A Dovecot for doveadm: the platform's own when it runs, else one started on the data directory for the step. */
async function withDovecot<T>(config: Config, fn: (t: DoveadmTarget) => Promise<T>, say: Say, o: { fresh?: boolean } = {}): Promise<T> {
  const running = o.fresh ? undefined : runningDovecot(config);
  // The platform's Dovecot loads mail_crypt whenever the keyring holds Dovecot keys; doveadm must too.
  // The local copy it reads (the platform keeps it as the database's keyring; a restore brings it back with the files).
  const keyring = localKeyring(config);
  const crypt: DoveadmTarget['crypt'] = keyring?.dovecotKeys().length ? { env: mailCryptEnv(keyring) } : undefined;
  if (running) return fn({ doveadm: config.mailstore.doveadm, confFile: running, user: childUser(), ...(crypt ? { crypt } : {}) });
  say(`  starting Dovecot on ${config.dataDir} for this step${o.fresh ? '' : ' (the platform is not running)'}`);
  const log = commandLogger();
  const supervisor = new Supervisor(log);
  try {
    await startMailstore(config, log, supervisor, keyring ? { keyring } : {});
    return await fn({ doveadm: config.mailstore.doveadm, confFile: join(config.dataDir, 'dovecot', 'dovecot.conf'), user: supervisor.user, ...(crypt ? { crypt } : {}) });
  } finally {
    await supervisor.stopAll();
  }
}

/** MSS_* of this process, secret settings masked: how the platform was configured besides its file. */
function environment(): Record<string, string> {
  const secret = new Set(settings().filter((s) => s.setting.secret).map((s) => s.env));
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (k.startsWith('MSS_') && v !== undefined) out[k] = secret.has(k) ? '***' : v;
  return out;
}

export async function backup(config: Config, dir: string, o: { configFile?: string }, say: Say): Promise<Manifest> {
  const setDir = resolve(dir);
  const startedAt = new Date().toISOString();
  if (inside(config.dataDir, setDir) || inside(setDir, config.dataDir)) throw new MssError('BACKUP_STEP_FAILED', { step: `write to ${setDir}`, reason: `it is inside the data directory ${config.dataDir} (or holds it); choose a directory outside it` });
  if (!existsSync(config.dataDir)) throw new MssError('BACKUP_STEP_FAILED', { step: `read the data directory ${config.dataDir}`, reason: 'it does not exist' });
  const previous = previousManifest(setDir);
  if (!previous && existsSync(setDir) && readdirSync(setDir).length) throw new MssError('BACKUP_STEP_FAILED', { step: `write to ${setDir}`, reason: 'it holds files and no backup manifest: give a new directory, or the directory of an earlier backup to update it' });
  mkdirSync(setDir, { recursive: true, mode: 0o700 });
  // The stamp is loaded before anything is copied: a set that could not be sealed is worth nothing.
  const { timestamper } = await journalTimestamping(config);
  unseal(setDir);
  say(previous ? `updating the backup set ${setDir} (taken ${previous.finishedAt}; the mail is copied incrementally)` : `new backup set ${setDir}`);

  // 1. Files first: the journal's anchor file then names no seal newer than the database's.
  say('[1/4] files: PKI and keys, generated secrets, configuration');
  rmSync(join(setDir, 'files'), { recursive: true, force: true });
  const files = backupFiles(config, setDir, o.configFile);
  say(`  ${files.data} files of the data directory, ${files.external.length} named by settings outside it`);

  // 2. The database before the mail: a message delivered between the two is in the mail and
  //    still spooled in the database, delivered again after a restore — a duplicate, never a loss.
  say(`[2/4] database (${config.database.url ? 'PostgreSQL' : 'embedded PGlite'})`);
  rmSync(join(setDir, 'database'), { recursive: true, force: true });
  const db = await dumpDatabase(config, setDir);
  say(`  ${db.how}; journal at event ${db.journal.seq} (sealed up to ${db.journal.sealedSeq})`);

  say('[3/4] mail (doveadm backup)');
  grantTraverse(setDir, childUser());
  const boxes = await withDovecot(config, (t) => backupMail(t, config.mailstore.mailDir, setDir, counter(say, 'boxes')), say);

  say('[4/4] manifest: SHA-256 of every file, sealed by the timestamping authority');
  const manifest = await writeManifest(
    setDir,
    {
      startedAt,
      finishedAt: new Date().toISOString(),
      version: (JSON.parse(readFileSync(fromRoot('package.json'), 'utf8')) as { version: string }).version,
      operator: config.operator.domain,
      dataDir: config.dataDir,
      database: { kind: db.kind, file: db.file, how: db.how },
      journal: db.journal,
      mail: { boxes, how: 'doveadm backup (dsync) of each box into a maildir; incremental into an existing set', runs: (previous?.mail.runs ?? 0) + 1 },
      external: files.external,
      config: { ...(o.configFile ? { file: resolve(o.configFile) } : {}), environment: environment() },
    },
    timestamper,
    counter(say, 'files hashed'),
  );
  const bytes = manifest.files.reduce((n, f) => n + f.size, 0);
  say(`done: ${manifest.files.length} files, ${(bytes / 1048576).toFixed(1)} MiB, ${boxes.length} boxes, journal event ${db.journal.seq}`);
  return manifest;
}

/** Where the set keeps a copy of a file the configuration names (in the data directory or outside it). */
function inSet(m: Manifest, abs: string): string | undefined {
  if (m.external.includes(abs)) return join(EXTERNAL_FILES, abs);
  if (inside(m.dataDir, abs)) return join(DATA_FILES, relative(m.dataDir, abs));
  return undefined;
}

/**
 * Checks the seal against trust anchors: given (--tsa-ca), else the target's configured
 * TSA anchors when they exist, else the set's own copy of the source's (which says the
 * manifest is intact, not who made it).
 */
function sealVerifier(setDir: string, config: Config, source: Config, trust: string | undefined, say: Say): (m: Manifest) => TokenVerifier {
  return (m) => {
    const pick = (target: string, sourcePath: string) => {
      if (existsSync(target)) return readFileSync(target, 'utf8');
      const copy = inSet(m, sourcePath);
      if (copy && existsSync(join(setDir, copy))) {
        say(`  no ${target} here: the seal is checked against the set's own copy of it (${copy})`);
        return readFileSync(join(setDir, copy), 'utf8');
      }
      throw new Error(`no trust anchors to check it with (${target}); give them with --tsa-ca`);
    };
    const caPem = trust ? readFileSync(trust, 'utf8') : pick(config.tsa.caFile, source.tsa.caFile);
    const chainPem = pick(config.tsa.chainFile, source.tsa.chainFile);
    return { verify: (tsr, data) => verifyTimestampResponse(tsr, data, { caPems: [caPem], untrustedPems: [chainPem] }) };
  };
}

export interface RestoreReport {
  manifest: Manifest;
  journal: { events: number; seals: number; sealedNow: number };
  ldapEntries: number;
}

/**
 * Restores a set into config.dataDir (new or empty). `sourceOf(m)`: the configuration the
 * set was taken with as far as paths go (the set's data directory), to find its TSA files.
 */
export async function restore(config: Config, dir: string, o: { trust?: string; sourceOf: (m: Manifest) => Config }, say: Say): Promise<RestoreReport> {
  const setDir = resolve(dir);
  say(`checking the backup set ${setDir}`);
  const manifest = await verifySet(setDir, (m) => sealVerifier(setDir, config, o.sourceOf(m), o.trust, say)(m), counter(say, 'files checked'));
  say(`  manifest sealed and every file intact: taken ${manifest.finishedAt} from ${manifest.dataDir}, journal at event ${manifest.journal.seq}`);

  if (existsSync(config.dataDir) && readdirSync(config.dataDir).length) throw new MssError('BACKUP_TARGET_NOT_EMPTY', { dir: config.dataDir, what: `${readdirSync(config.dataDir).length} entries` });
  for (const abs of manifest.external) {
    if (existsSync(abs) && (await sha256File(abs)) !== manifest.files.find((f) => f.path === join(EXTERNAL_FILES, abs))?.sha256) {
      throw new MssError('BACKUP_TARGET_MISMATCH', { target: abs, why: 'a different file is there than the one in the set (a setting names it, outside the data directory): move it away first' });
    }
  }
  await checkDatabaseTarget(config, manifest.database.kind);
  mkdirSync(config.dataDir, { recursive: true, mode: 0o711 });

  say('[1/5] files: PKI and keys, generated secrets, configuration');
  const n = restoreFiles(setDir, config.dataDir, manifest.external);
  say(`  ${n} files into ${config.dataDir}; ${manifest.external.length} outside it${manifest.config.file ? ` (configuration file ${manifest.config.file})` : ''}`);

  say(`[2/5] database (${manifest.database.kind === 'pg' ? 'pg_restore' : 'embedded PGlite image'})`);
  await restoreDatabase(config, setDir, manifest.database.kind);

  say('[3/5] mail (doveadm backup -R into a Dovecot on the new data directory)');
  await withDovecot(config, (t) => restoreMail(t, setDir, join(config.dataDir, 'restore-staging'), manifest.mail.boxes, counter(say, 'boxes')), say, { fresh: true });

  const db = await openDb(config);
  try {
    say('[4/5] journal: the head the manifest names, its unsealed tail sealed, the whole chain verified');
    const head = (await db.query<{ seq: number; hash: string }>('SELECT seq, hash FROM journal_head')).rows[0];
    if (Number(head.seq) !== manifest.journal.seq || head.hash !== manifest.journal.hash) {
      throw new MssError('BACKUP_STEP_FAILED', { step: `check the restored database (${manifest.database.file}) against the manifest`, reason: `its journal ends at event ${head.seq} (${head.hash}), the manifest says ${manifest.journal.seq} (${manifest.journal.hash})` });
    }
    const { timestamper, verifier } = await journalTimestamping(config);
    const journal = new Journal(db, { ...sealingOptions(config, commandLogger()), timestamper, verifier });
    const sealedNow = await journal.sealNow();
    const report = await journal.verify(verifier, { unsealedGraceMs: config.journal.unsealedGrace, noSealer: !config.database.url, anchorFile: journalAnchorFile(config) });
    if (!report.ok) throw new MssError('BACKUP_STEP_FAILED', { step: 'verify the restored journal', reason: `event ${report.firstBad}: ${report.problems[0]?.message}` });
    say(`  journal OK: ${report.events} events, ${report.seals} seals (${sealedNow} events sealed now, which the platform had not sealed yet when the image was taken)`);

    say('[5/5] LDAP directory rebuilt from the restored annuaire');
    // The node that fed the backed-up service's directory (annuaire/ldap/feeders.ts) is not this
    // one: left in place, its row would have the restored platform refused as a second feeder.
    await db.query('DELETE FROM annuaire_ldap_feeders');
    const user = childUser();
    prepareFiles(config, ldapPaths(config), user, { tls: false });
    const r = await rebuildDirectory(config, db, { user });
    say(`  ${r.entries} entries`);
    say(`done: restored into ${config.dataDir}; start it with mss start --data-dir ${config.dataDir}`);
    return { manifest, journal: { events: report.events, seals: report.seals, sealedNow }, ldapEntries: r.entries };
  } finally {
    await db.close();
  }
}
