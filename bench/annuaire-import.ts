// bench/annuaire-import: a generated N-line PS_LibreAcces_Personne_activite extraction
// (default 1,000,000) imported into real PostgreSQL by `annuaire/import`, next to a plain
// `COPY` of the same file into a staging table in the same cluster and run. Prints both
// times, the import's peak RSS, and the ratio (targets: ≤ 1.5× COPY, ≤ 512 MB). Then the
// next month's file (2 % changed, 1 % new, 1 % vanished) as an incremental sync (target:
// ≤ 1.2× the COPY of the same file: the file is read whole, only its difference applied).
//
//   node dist/bench/annuaire-import.js [--lines N] [--runs N] [--keep] [--db pg|pglite] [--steps]
// --steps: with each import, when its steps ended (the file read and staged, each table
// applied, the journal written), in seconds from its start — where the time after the
// file goes. Uses MSS_DATABASE_URL when set (scratch databases are created and dropped there), else
// starts a throw-away PostgreSQL cluster from /usr/lib/postgresql/*/bin in a temp dir.
// --db pglite: the embedded database instead, in a fresh directory per run, on both sides
// (the peer: the same COPY through PGlite; the sync takes PGlite's path, applied in steps).
// The import runs in a child process so that its peak RSS is its own.
//
// The machine may be shared: COPY and the import alternate — COPY, first import, COPY,
// sync, COPY, first import… — and each import is compared with the mean of the two COPYs
// around it, so a change of load during the run weighs on both sides. Each run prints its
// figures and the load average; the summary gives the median ratios. When PostgreSQL runs
// on this machine, the CPU time each side used is printed too (client process + the
// server processes serving it, parallel workers included, from /proc): a figure the
// load does not move, and the ratio the elapsed one tends to when both cores are busy.
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { chownSync, createReadStream, existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { importFiles } from '../annuaire/import/importer.js';
import { RejectReport } from '../annuaire/import/report.js';
import { migrate, openPg, openPglite } from '../core/db/index.js';
import { createPgliteInChild, needsCreating } from '../core/db/pglite-create.js';
import { Journal } from '../core/journal/index.js';
import { activityLines, writeExtraction } from '../tests/helpers/rpps-generator.js';
import { procStat, uptimeTicks } from './proc.js';

/** A url naming a PGlite directory (--db pglite). */
const PGLITE = 'pglite:';

const { values: args } = parseArgs({
  options: {
    lines: { type: 'string', default: '1000000' },
    runs: { type: 'string', default: '3' },
    keep: { type: 'boolean', default: false },
    db: { type: 'string', default: 'pg' },
    steps: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
    // internal: the child that runs one import
    child: { type: 'string' },
    url: { type: 'string' },
  },
});

if (args.help) {
  process.stdout.write('usage: node dist/bench/annuaire-import.js [--lines N] [--runs N] [--keep] [--db pg|pglite] [--steps]\n  --steps: print when each step of an import ended\n  MSS_DATABASE_URL: PostgreSQL to use (else a throw-away cluster is started)\n');
  process.exit(0);
}

if (args.child) {
  // Child: import one file, print {ms, cpuMs, maxRssMb, tables} as JSON. Says "ready" once
  // migrated and waits for "go" on stdin, so that the parent counts the server's CPU from there.
  // A new PGlite directory is created by a child process, as the platform does (initdb's
  // memory would otherwise count in the import's peak RSS).
  const dir = args.url!.startsWith(PGLITE) ? args.url!.slice(PGLITE.length) : undefined;
  if (dir && needsCreating(dir)) await createPgliteInChild(dir);
  const db = dir ? await openPglite(dir) : await openPg({ url: args.url!, poolSize: 2 });
  await migrate(db);
  const report = new RejectReport(args.child + '.rejects.tsv');
  process.stdout.write('ready\n');
  await once(process.stdin, 'data');
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const steps: Array<[string, number]> = [];
  const onStep = (step: string) => void steps.push([step, performance.now() - t0]);
  const out = await importFiles([args.child], { db, journal: new Journal(db), actor: 'bench', report, onStep });
  const ms = performance.now() - t0;
  const c1 = process.cpuUsage(c0);
  report.close();
  await db.close();
  if (out.failures.length) throw out.failures[0].error;
  const cpuMs = (c1.user + c1.system) / 1000;
  process.stdout.write(JSON.stringify({ ms, cpuMs, maxRssMb: process.resourceUsage().maxRSS / 1024, tables: out.results[0].tables, rejected: out.results[0].rejected, steps }) + '\n');
  process.exit(0);
}

const N = Number(args.lines);
if (args.db !== 'pg' && args.db !== 'pglite') throw new Error(`--db ${args.db}: expected pg or pglite`);
const onPglite = args.db === 'pglite';
const RUNS = Math.max(1, Number(args.runs));
const fmt = (x: number) => x.toLocaleString('en-US');
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const say = (s: string) => process.stdout.write(s + '\n');

/** A PostgreSQL to bench against: MSS_DATABASE_URL, or a private cluster we start and stop. */
async function server(): Promise<{ url: string; stop(): void }> {
  if (onPglite) return { url: PGLITE, stop() {} };
  if (process.env.MSS_DATABASE_URL) return { url: process.env.MSS_DATABASE_URL, stop() {} };
  const root = '/usr/lib/postgresql';
  const version = existsSync(root) ? readdirSync(root).sort().pop() : undefined;
  if (!version) throw new Error('no MSS_DATABASE_URL and no PostgreSQL under /usr/lib/postgresql: cannot bench');
  const bin = join(root, version, 'bin');
  const dir = mkdtempSync(join(tmpdir(), 'mss-bench-pg-'));
  const port = await new Promise<number>((res) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
  // initdb refuses to run as root: run the cluster as the postgres user then.
  const asRoot = process.getuid?.() === 0;
  const run = (cmd: string, argv: string[]) => {
    if (!asRoot) return execFileSync(join(bin, cmd), argv, { stdio: 'pipe' });
    return execFileSync('su', ['postgres', '-c', [join(bin, cmd), ...argv].map((a) => `'${a}'`).join(' ')], { stdio: 'pipe' });
  };
  if (asRoot) chownSync(dir, Number(execFileSync('id', ['-u', 'postgres']).toString()), Number(execFileSync('id', ['-g', 'postgres']).toString()));
  const data = join(dir, 'data');
  run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  run('pg_ctl', ['-D', data, '-w', '-l', join(dir, 'log'), '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c shared_buffers=256MB -c max_wal_size=4GB`, 'start']);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    stop() {
      try {
        run('pg_ctl', ['-D', data, '-m', 'fast', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

async function scratch(base: string): Promise<{ url: string; drop(): Promise<void> }> {
  if (onPglite) {
    const dir = mkdtempSync(join(tmpdir(), 'mss-bench-pglite-'));
    return { url: PGLITE + dir, drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const name = `mss_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(base);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/**
 * CPU used by the server processes of one database from now on, parallel workers included:
 * pg_stat_activity is read every 100 ms, each process's /proc counted from its value when
 * first seen, or from zero when it started after us.
 */
async function serverCpu(base: string, url: string): Promise<{ stop(): Promise<number | undefined> }> {
  const db = new URL(url).pathname.slice(1);
  const c = new pg.Client({ connectionString: base });
  await c.connect();
  const since = uptimeTicks();
  const seen = new Map<number, { from: number; last: number }>();
  let unknown = false;
  const sample = async () => {
    const { rows } = await c.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1', [db]);
    for (const { pid } of rows) {
      const p = procStat(pid);
      if (!p) {
        unknown = true;
        continue;
      }
      const s = seen.get(pid);
      if (s) s.last = p.cpuMs;
      else seen.set(pid, { from: p.start >= since ? 0 : p.cpuMs, last: p.cpuMs });
    }
  };
  await sample();
  let running = true;
  const loop = (async () => {
    while (running) {
      await new Promise((r) => setTimeout(r, 100));
      await sample();
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      await sample();
      await c.end();
      return unknown ? undefined : [...seen.values()].reduce((a, s) => a + s.last - s.from, 0);
    },
  };
}

interface Measure {
  ms: number;
  /** Client process + server processes, when the server is on this machine. */
  cpuMs?: number;
}

/** The peer: the raw file COPY'd as is into a staging table of one text column per field. */
async function plainCopy(url: string, file: string, fields: number): Promise<Measure> {
  if (url.startsWith(PGLITE)) return pgliteCopy(url.slice(PGLITE.length), file, fields);
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query(`CREATE TABLE staging (${Array.from({ length: fields }, (_, i) => `c${i + 1} text`).join(', ')})`);
  const backend = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
  const s0 = procStat(backend);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  // CSV with an unused quote character: the fields are taken verbatim, as the text format would.
  await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), c.query(copyFrom(`COPY staging FROM STDIN WITH (FORMAT csv, DELIMITER '|', HEADER true, QUOTE E'\\x01')`)));
  const ms = performance.now() - t0;
  const c1 = process.cpuUsage(c0);
  const s1 = procStat(backend);
  const n = (await c.query('SELECT count(*)::int AS n FROM staging')).rows[0].n;
  await c.end();
  if (n !== N) throw new Error(`COPY loaded ${n} rows, expected ${N}`);
  return { ms, cpuMs: s0 && s1 ? s1.cpuMs - s0.cpuMs + (c1.user + c1.system) / 1000 : undefined };
}

/** The peer on PGlite: the same COPY through the embedded database, in this process (its CPU is ours). */
async function pgliteCopy(dir: string, file: string, fields: number): Promise<Measure> {
  const db = await openPglite(dir);
  try {
    await db.exec(`CREATE TABLE staging (${Array.from({ length: fields }, (_, i) => `c${i + 1} text`).join(', ')})`);
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await db.copyFrom!(`COPY staging FROM STDIN WITH (FORMAT csv, DELIMITER '|', HEADER true, QUOTE E'\\x01')`, createReadStream(file, { highWaterMark: 1 << 20 }));
    const ms = performance.now() - t0;
    const c1 = process.cpuUsage(c0);
    const n = (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM staging')).rows[0].n;
    if (n !== N) throw new Error(`COPY loaded ${n} rows, expected ${N}`);
    return { ms, cpuMs: (c1.user + c1.system) / 1000 };
  } finally {
    await db.close();
  }
}

async function childImport(base: string, url: string, file: string): Promise<Measure & { maxRssMb: number; tables: Record<string, Record<string, number>>; rejected: number; steps: Array<[string, number]> }> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--child', file, '--url', url], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  let cpu: Promise<Awaited<ReturnType<typeof serverCpu>>> | undefined;
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  child.stdout.on('data', (d) => {
    out += d;
    if (!cpu && out.startsWith('ready\n')) {
      // PGlite runs in the child: its CPU is the child's own.
      cpu = onPglite ? Promise.resolve({ stop: async () => 0 }) : serverCpu(base, url);
      void cpu.then(() => child.stdin.write('go\n'));
    }
  });
  const code = await exited;
  const server = cpu ? await (await cpu).stop() : undefined;
  if (code !== 0) throw new Error(`import child exited with ${code}`);
  const r = JSON.parse(out.trim().split('\n').pop()!);
  return { ...r, cpuMs: server === undefined ? undefined : server + r.cpuMs };
}

/** The machine is shared (2 cores, other test runs): say how busy it was. */
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');

const srv = await server();
const work = mkdtempSync(join(tmpdir(), 'mss-bench-annuaire-'));
try {
  const month0 = join(work, 'PS_LibreAcces_Personne_activite_202401010000.txt');
  const month1 = join(work, 'PS_LibreAcces_Personne_activite_202402010000.txt');
  let t0 = performance.now();
  const bytes = await writeExtraction(month0, activityLines({ lines: N }));
  await writeExtraction(month1, activityLines({ lines: N, month: 1, changed: 0.02, added: 0.01, vanished: 0.01 }));
  say(`generated ${fmt(N)} lines (${(bytes / 1e6).toFixed(0)} MB) and next month's in ${secs(performance.now() - t0)}`);
  let version = 'PGlite';
  if (!onPglite) {
    const vc = new pg.Client({ connectionString: srv.url });
    await vc.connect();
    version = `PostgreSQL ${(await vc.query('SHOW server_version')).rows[0].server_version as string}`;
    await vc.end();
  }

  say(`annuaire import bench — ${fmt(N)} activity lines, ${(statSync(month0).size / 1e6).toFixed(0)} MB, ${version}, ${RUNS} run(s)`);
  say(`  peer: COPY of the file into a staging table (57 text columns); each import against the mean of the COPYs before and after it`);
  const copy = async (): Promise<Measure> => {
    const db = await scratch(srv.url);
    try {
      return await plainCopy(db.url, month0, 57);
    } finally {
      await db.drop();
    }
  };
  const firsts: number[] = [];
  const syncs: number[] = [];
  const cpuFirsts: number[] = [];
  const cpuSyncs: number[] = [];
  let maxRss = 0;
  /** ours against the mean of the two COPYs around it. */
  const vs = (m: Measure, a: Measure, b: Measure) => ({
    ratio: m.ms / ((a.ms + b.ms) / 2),
    cpu: m.cpuMs !== undefined && a.cpuMs !== undefined && b.cpuMs !== undefined ? m.cpuMs / ((a.cpuMs + b.cpuMs) / 2) : undefined,
  });
  const cpuText = (m: Measure, r: number | undefined) => (m.cpuMs === undefined || r === undefined ? '' : `  CPU ${secs(m.cpuMs)} (${r.toFixed(2)}×)`);
  let before = await copy();
  for (let run = 1; run <= RUNS; run++) {
    const dbImport = await scratch(srv.url);
    try {
      const l1 = load();
      const first = await childImport(srv.url, dbImport.url, month0);
      const mid = await copy();
      const l2 = load();
      const next = await childImport(srv.url, dbImport.url, month1);
      const after = await copy();
      const r1 = vs(first, before, mid);
      const r2 = vs(next, mid, after);
      firsts.push(r1.ratio);
      syncs.push(r2.ratio);
      if (r1.cpu !== undefined) cpuFirsts.push(r1.cpu);
      if (r2.cpu !== undefined) cpuSyncs.push(r2.cpu);
      maxRss = Math.max(maxRss, first.maxRssMb, next.maxRssMb);
      const copyCpu = [before, mid, after].every((m) => m.cpuMs !== undefined) ? ` (CPU ${[before, mid, after].map((m) => secs(m.cpuMs!)).join(', ')})` : '';
      say(`  run ${run}: COPY ${secs(before.ms)}, ${secs(mid.ms)}, ${secs(after.ms)}${copyCpu}`);
      say(`    first import ${secs(first.ms).padStart(7)}  ${r1.ratio.toFixed(2)}× COPY${cpuText(first, r1.cpu)}  peak RSS ${first.maxRssMb.toFixed(0)} MB  load ${l1}`);
      say(`    next month   ${secs(next.ms).padStart(7)}  ${r2.ratio.toFixed(2)}× COPY${cpuText(next, r2.cpu)}  peak RSS ${next.maxRssMb.toFixed(0)} MB  load ${l2}`);
      if (args.steps) for (const [what, m] of [['first', first], ['next ', next]] as const) say(`      ${what} steps: ${m.steps.map(([s, t]) => `${s} ${(t / 1000).toFixed(2)}`).join(', ')}, end ${(m.ms / 1000).toFixed(2)} s`);
      if (run === 1) {
        say(`      first: ${Object.entries(first.tables).map(([t, c]) => `${t} +${fmt(c.inserted)}`).join(', ')}`);
        say(`      next:  ${Object.entries(next.tables).map(([t, c]) => `${t} +${fmt(c.inserted)} ~${fmt(c.updated)} -${fmt(c.deactivated)} =${fmt(c.unchanged)}`).join(', ')}`);
      }
      before = after;
    } finally {
      await dbImport.drop();
    }
  }
  const median = (xs: number[]) => {
    const o = [...xs].sort((a, b) => a - b);
    return (o[Math.floor((o.length - 1) / 2)] + o[Math.ceil((o.length - 1) / 2)]) / 2;
  };
  const m1 = median(firsts);
  say(`  median: first import ${m1.toFixed(2)}× COPY, next month ${median(syncs).toFixed(2)}× COPY; peak RSS ${maxRss.toFixed(0)} MB; load now ${load()}`);
  if (cpuFirsts.length) say(`  median CPU time: first import ${median(cpuFirsts).toFixed(2)}× COPY's, next month ${median(cpuSyncs).toFixed(2)}× COPY's`);
  const m2 = median(syncs);
  say(`  targets: first import ≤ 1.5× COPY → ${m1 <= 1.5 ? 'met' : 'NOT met'}; next month ≤ 1.2× COPY → ${m2 <= 1.2 ? 'met' : 'NOT met'}; ≤ 512 MB → ${maxRss <= 512 ? 'met' : 'NOT met'}`);
} finally {
  if (!args.keep) rmSync(work, { recursive: true, force: true });
  else say(`files kept in ${work}`);
  srv.stop();
}
