// bench/annuaire-import: a generated N-line PS_LibreAcces_Personne_activite extraction
// (default 1,000,000) imported into real PostgreSQL by `annuaire/import`, next to a plain
// `COPY` of the same file into a staging table in the same cluster and run. Prints both
// times, the import's peak RSS, and the ratio (targets: ≤ 1.5× COPY, ≤ 512 MB). Then the
// next month's file (2 % changed, 1 % new, 1 % vanished) as an incremental sync.
//
//   node dist/bench/annuaire-import.js [--lines N] [--runs N] [--keep]
// Uses MSS_DATABASE_URL when set (scratch databases are created and dropped there), else
// starts a throw-away PostgreSQL cluster from /usr/lib/postgresql/*/bin in a temp dir.
// The import runs in a child process so that its peak RSS is its own.
//
// The machine may be shared: COPY and the import alternate — COPY, first import, COPY,
// sync, COPY, first import… — and each import is compared with the mean of the two COPYs
// around it, so a change of load during the run weighs on both sides. Each run prints its
// figures and the load average; the summary gives the median ratios.
import { execFileSync, spawn } from 'node:child_process';
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
import { migrate, openPg } from '../core/db/index.js';
import { Journal } from '../core/journal/index.js';
import { activityLines, writeExtraction } from '../tests/helpers/rpps-generator.js';

const { values: args } = parseArgs({
  options: {
    lines: { type: 'string', default: '1000000' },
    runs: { type: 'string', default: '3' },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
    // internal: the child that runs one import
    child: { type: 'string' },
    url: { type: 'string' },
  },
});

if (args.help) {
  process.stdout.write('usage: node dist/bench/annuaire-import.js [--lines N] [--runs N] [--keep]\n  MSS_DATABASE_URL: PostgreSQL to use (else a throw-away cluster is started)\n');
  process.exit(0);
}

if (args.child) {
  // Child: import one file, print {ms, maxRssMb, tables} as JSON.
  const db = await openPg({ url: args.url!, poolSize: 2 });
  await migrate(db);
  const report = new RejectReport(args.child + '.rejects.tsv');
  const t0 = performance.now();
  const out = await importFiles([args.child], { db, journal: new Journal(db), actor: 'bench', report });
  const ms = performance.now() - t0;
  report.close();
  await db.close();
  if (out.failures.length) throw out.failures[0].error;
  process.stdout.write(JSON.stringify({ ms, maxRssMb: process.resourceUsage().maxRSS / 1024, tables: out.results[0].tables, rejected: out.results[0].rejected }) + '\n');
  process.exit(0);
}

const N = Number(args.lines);
const RUNS = Math.max(1, Number(args.runs));
const fmt = (x: number) => x.toLocaleString('en-US');
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const say = (s: string) => process.stdout.write(s + '\n');

/** A PostgreSQL to bench against: MSS_DATABASE_URL, or a private cluster we start and stop. */
async function server(): Promise<{ url: string; stop(): void }> {
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

/** The peer: the raw file COPY'd as is into a staging table of one text column per field. */
async function plainCopy(url: string, file: string, fields: number): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query(`CREATE TABLE staging (${Array.from({ length: fields }, (_, i) => `c${i + 1} text`).join(', ')})`);
  const t0 = performance.now();
  // CSV with an unused quote character: the fields are taken verbatim, as the text format would.
  await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), c.query(copyFrom(`COPY staging FROM STDIN WITH (FORMAT csv, DELIMITER '|', HEADER true, QUOTE E'\\x01')`)));
  const ms = performance.now() - t0;
  const n = (await c.query('SELECT count(*)::int AS n FROM staging')).rows[0].n;
  await c.end();
  if (n !== N) throw new Error(`COPY loaded ${n} rows, expected ${N}`);
  return ms;
}

function childImport(url: string, file: string): Promise<{ ms: number; maxRssMb: number; tables: Record<string, Record<string, number>>; rejected: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--child', file, '--url', url], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`import child exited with ${code}`))));
  });
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
  const vc = new pg.Client({ connectionString: srv.url });
  await vc.connect();
  const version = (await vc.query('SHOW server_version')).rows[0].server_version as string;
  await vc.end();

  say(`annuaire import bench — ${fmt(N)} activity lines, ${(statSync(month0).size / 1e6).toFixed(0)} MB, PostgreSQL ${version}, ${RUNS} run(s)`);
  say(`  peer: COPY of the file into a staging table (57 text columns); each import against the mean of the COPYs before and after it`);
  const copy = async () => {
    const db = await scratch(srv.url);
    try {
      return await plainCopy(db.url, month0, 57);
    } finally {
      await db.drop();
    }
  };
  const firsts: number[] = [];
  const syncs: number[] = [];
  let maxRss = 0;
  let before = await copy();
  for (let run = 1; run <= RUNS; run++) {
    const dbImport = await scratch(srv.url);
    try {
      const l1 = load();
      const first = await childImport(dbImport.url, month0);
      const mid = await copy();
      const l2 = load();
      const next = await childImport(dbImport.url, month1);
      const after = await copy();
      const r1 = first.ms / ((before + mid) / 2);
      const r2 = next.ms / ((mid + after) / 2);
      firsts.push(r1);
      syncs.push(r2);
      maxRss = Math.max(maxRss, first.maxRssMb, next.maxRssMb);
      say(`  run ${run}: COPY ${secs(before)}, ${secs(mid)}, ${secs(after)}`);
      say(`    first import ${secs(first.ms).padStart(7)}  ${r1.toFixed(2)}× COPY  peak RSS ${first.maxRssMb.toFixed(0)} MB  load ${l1}`);
      say(`    next month   ${secs(next.ms).padStart(7)}  ${r2.toFixed(2)}× COPY  peak RSS ${next.maxRssMb.toFixed(0)} MB  load ${l2}`);
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
  say(`  targets: ≤ 1.5× COPY → ${m1 <= 1.5 ? 'met' : 'NOT met'}; ≤ 512 MB → ${maxRss <= 512 ? 'met' : 'NOT met'}`);
} finally {
  if (!args.keep) rmSync(work, { recursive: true, force: true });
  else say(`files kept in ${work}`);
  srv.stop();
}
