// bench/idle-memory: the platform's resident memory when idle, after `mss start` with demo
// data on the embedded PGlite (what a newcomer's `npm start` runs), next to what its parts
// cost alone, measured in the same run:
//
//   node dist/bench/idle-memory.js [--settle 60] [--samples 10] [--timeout 300] [--shared-buffers SIZE]
//
// (a) `node dist/bin/mss.js start` on a new data directory (database created by its child,
//     demo data seeded through the running servers), every port 0 (free ports, loopback);
// (b) the same command started again on that directory (demo data already there);
// (c) PGlite alone: a Node process opening the same database with the same settings and
//     reading every table once, nothing else;
// (d) Node alone: an empty event loop (the floor of any Node process);
// and the platform's own Dovecot and slapd, as the peers that hold the mail and the
// directory. Each is left --settle seconds once started (V8 gives back the heap it no longer
// needs ~45 s after the last activity), then sampled once a second, --samples times: the
// median RSS (and PSS, the share of pages used with other processes) is printed, with the
// peak (VmHWM). Target: (a) ≤ 300 MiB. --shared-buffers sets database.pgliteSharedBuffers for
// (a)-(c) (compare 128MiB, PostgreSQL's default). Loopback only; bounded in time; the data
// directory and every process are removed even on failure. Linux (/proc).
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../core/config/index.js';
import { openDb } from '../core/db/index.js';
import { fromRoot } from '../core/paths.js';
import { allProcs, descendants, memoryOf, type Memory } from './proc.js';

const { values: args } = parseArgs({
  options: {
    settle: { type: 'string', default: '60' },
    samples: { type: 'string', default: '10' },
    timeout: { type: 'string', default: '300' },
    'shared-buffers': { type: 'string' },
    'pglite-alone': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  process.stdout.write(
    [
      'usage: node dist/bench/idle-memory.js [--settle SECONDS] [--samples N] [--timeout SECONDS] [--shared-buffers SIZE]',
      '',
      'Idle RSS of `mss start` on the embedded PGlite with demo data (first start, then a restart), next to PGlite alone',
      'with the same data, Node alone, and the platform\'s own Dovecot and slapd. Each is left SECONDS (default 60) after its',
      'start, then sampled N times (default 10) a second apart: medians printed. Target: the first start ≤ 300 MiB.',
      '--shared-buffers sets database.pgliteSharedBuffers (default 16MiB) for the platform and PGlite alone.',
      '',
    ].join('\n'),
  );
  process.exit(0);
}

const MiB = 1024 * 1024;
const TARGET = 300 * MiB;
const say = (s: string) => process.stdout.write(s + '\n');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// ---------------------------------------------------------------- (c) PGlite alone (child)

if (args['pglite-alone']) {
  // The platform's own settings (environment included), its own way of opening the database.
  const db = await openDb(loadConfig({ overrides: { dataDir: args['pglite-alone'] } }));
  const { rows } = await db.query<{ t: string }>("SELECT quote_ident(tablename) AS t FROM pg_tables WHERE schemaname = 'public'");
  for (const { t } of rows) await db.query(`SELECT count(*) FROM ${t}`);
  process.send!({ ready: true, tables: rows.length });
  process.once('disconnect', () => void db.close().finally(() => process.exit(0)));
} else await parent();

// ---------------------------------------------------------------- the parent

interface Measured {
  platform: Memory;
  workers?: Memory & { processes: number };
  dovecot?: Memory & { processes: number };
  slapd?: Memory & { processes: number };
}

async function parent() {
  const SETTLE = Number(args.settle) * 1000;
  const SAMPLES = Number(args.samples);
  const TIMEOUT = Number(args.timeout) * 1000;
  for (const [k, v] of Object.entries({ settle: SETTLE, samples: SAMPLES, timeout: TIMEOUT })) {
    if (!Number.isInteger(v) || v < 0 || (k !== 'settle' && v === 0)) throw new Error(`--${k} must be a positive whole number`);
  }
  if (SETTLE > 600_000 || SAMPLES > 600) throw new Error('--settle ≤ 600 and --samples ≤ 600 (a bench, not a soak test)');
  const env: NodeJS.ProcessEnv = { ...process.env };
  // Every listener on a free port (the defaults may be taken by another platform), JSON logs.
  for (const k of ['HTTP_PORT', 'LDAP_PORT', 'LDAP_LDAPS_PORT', 'SMTP_MX_PORT', 'SMTP_SUBMISSION_PORT', 'SMTP_SUBMISSIONS_PORT', 'IMAP_PORT', 'IMAP_STARTTLS_PORT', 'ADMIN_PORT', 'WEBMAIL_PORT', 'FHIR_PORT']) env[`MSS_${k}`] = '0';
  env.MSS_LOG_FORMAT = 'json';
  env.MSS_DEMO_ENABLED = 'true';
  delete env.MSS_DATABASE_URL;
  if (args['shared-buffers']) env.MSS_DATABASE_PGLITE_SHARED_BUFFERS = args['shared-buffers'];
  const sharedBuffers = loadConfig({ env }).database.pgliteSharedBuffers;

  const load0 = loadavg();
  say(`bench/idle-memory — embedded PGlite (shared_buffers ${(sharedBuffers / MiB).toFixed(0)} MiB), demo data; settle ${SETTLE / 1000} s, median of ${SAMPLES} samples; ${cpus().length} CPUs, load average ${load0.map((x) => x.toFixed(2)).join(' ')}`);
  const dir = mkdtempSync(join(tmpdir(), 'mss-bench-idle-'));
  const running = new Set<ChildProcess>();
  const cleanup = async () => {
    for (const c of running) await stop(c).catch(() => c.kill('SIGKILL'));
    if (process.env.MSS_BENCH_KEEP) say(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void cleanup().finally(() => process.exit(130)));
  const deadline = Date.now() + TIMEOUT;

  /** RSS samples of pids(), once a second after the settle; medians per process group. */
  const sampleIdle = async <K extends string>(groups: () => Record<K, number[]>): Promise<Record<K, Memory & { processes: number }>> => {
    await sleep(Math.min(SETTLE, Math.max(0, deadline - Date.now())));
    const seen = {} as Record<K, Memory[]>;
    for (let i = 0; i < SAMPLES; i++) {
      if (i) await sleep(1000);
      for (const [k, pids] of Object.entries(groups()) as Array<[K, number[]]>) {
        const ms = pids.map(memoryOf).filter((m): m is Memory => !!m);
        if (ms.length) (seen[k] ??= []).push({ rss: sum(ms, 'rss'), pss: sum(ms, 'pss'), peak: Math.max(...ms.map((m) => m.peak)), processes: ms.length } as Memory);
      }
    }
    const out = {} as Record<K, Memory & { processes: number }>;
    for (const [k, ms] of Object.entries(seen) as Array<[K, Array<Memory & { processes?: number }>]>) {
      out[k] = { rss: median(ms.map((m) => m.rss)), pss: median(ms.map((m) => m.pss)), peak: Math.max(...ms.map((m) => m.peak)), processes: ms[ms.length - 1].processes ?? 1 };
    }
    return out;
  };

  const platformRun = async (): Promise<Measured> => {
    const child = spawn(process.execPath, [fromRoot('dist', 'bin', 'mss.js'), 'start', '--data-dir', dir], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    while (!out.includes('Press Ctrl-C')) {
      if (child.exitCode !== null || child.signalCode) throw new Error(`mss start exited (${child.exitCode ?? child.signalCode}):\n${out.slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`mss start did not come up within --timeout:\n${out.slice(-2000)}`);
      await sleep(200);
    }
    if (/demo data could not be created/.test(out)) throw new Error(`the demo data failed:\n${out.slice(-2000)}`);
    const m = await sampleIdle(() => {
      const tree = descendants(allProcs(), child.pid!).filter((p) => p.pid !== child.pid);
      return {
        platform: [child.pid!],
        // The platform's own worker processes (webmail.workers, imap.workers): its memory too.
        workers: tree.filter((p) => p.comm === 'node' || p.comm === 'MainThread').map((p) => p.pid),
        dovecot: tree.filter((p) => /^(dovecot|imap|lmtp|auth|anvil|log|config|stats|imap-login|imap-hibernate)/.test(p.comm)).map((p) => p.pid),
        slapd: tree.filter((p) => p.comm === 'slapd').map((p) => p.pid),
      };
    });
    await stop(child);
    running.delete(child);
    return m;
  };

  try {
    const first = await platformRun();
    const again = await platformRun();

    // (c) PGlite alone on the same data, same settings.
    const alone = fork(fileURL(), ['--pglite-alone', dir], { env, execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    running.add(alone);
    await new Promise<void>((resolve, reject) => {
      alone.once('message', () => resolve());
      alone.once('exit', (code) => reject(new Error(`PGlite alone exited (${code})`)));
    });
    const pglite = (await sampleIdle(() => ({ p: [alone.pid!] }))).p;
    alone.disconnect();
    await stop(alone);
    running.delete(alone);

    // (d) Node alone.
    const bare = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    running.add(bare);
    await sleep(2000);
    const node = (await sampleIdle(() => ({ n: [bare.pid!] }))).n;
    await stop(bare);
    running.delete(bare);

    const row = (name: string, m?: Memory & { processes?: number }, note = '') =>
      // A group's peak is not the sum of its processes' peaks: shown for one process only.
      m ? say(`  ${name.padEnd(42)} ${mb(m.rss).padStart(7)} ${mb(m.pss).padStart(7)} ${(m.processes === 1 ? mb(m.peak) : '-').padStart(7)}${note ? '   ' + note : ''}`) : say(`  ${name.padEnd(42)} (not running)`);
    say('');
    say(`  ${''.padEnd(42)} ${'RSS'.padStart(7)} ${'PSS'.padStart(7)} ${'peak'.padStart(7)}   (MiB)`);
    const total = (m: Measured) => (m.platform.rss + (m.workers?.rss ?? 0));
    row('(a) platform, first start + demo data', first.platform);
    row(`    its worker processes (${first.workers?.processes ?? 0})`, first.workers);
    say(`  ${'    platform + workers'.padEnd(42)} ${mb(total(first)).padStart(7)}   target ≤ ${TARGET / MiB} MiB: ${total(first) <= TARGET ? 'met' : 'NOT met'}`);
    row('(b) platform, restart', again.platform);
    row(`    its worker processes (${again.workers?.processes ?? 0})`, again.workers);
    row('(c) PGlite alone, same data and settings', pglite);
    row('(d) Node alone, empty event loop', node);
    row(`    Dovecot (${first.dovecot?.processes ?? 0} processes)`, first.dovecot);
    row('    slapd', first.slapd);
    const rest = first.platform.rss - pglite.rss;
    say('');
    say(`  (a) − (c): ${mb(rest)} MiB is what the fronts, the annuaire, the journal and their libraries hold beyond the database;`);
    say(`  (c) − (d): ${mb(pglite.rss - node.rss)} MiB is PGlite's own (WebAssembly memory with shared_buffers, compiled code, its file system).`);
    say(`  load average at the end ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  } finally {
    await cleanup();
  }
}

function sum(ms: Memory[], k: 'rss' | 'pss') {
  return ms.reduce((a, m) => a + m[k], 0);
}

function mb(bytes: number) {
  return (bytes / MiB).toFixed(0);
}

function fileURL(): string {
  return fromRoot('dist', 'bench', 'idle-memory.js');
}

/** SIGTERM, then wait for the exit (SIGKILL after 30 s). */
function stop(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => c.kill('SIGKILL'), 30_000);
    c.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    c.kill('SIGTERM');
  });
}
