// bench/journal: events/s journalled (hash chain, group commit) and sealed (Merkle batch +
// RFC 3161 token from the built-in TSA), against plain INSERTs of the same rows into the
// same database, same concurrency, same run. Prints the ratio.
//
//   node dist/bench/journal.js [--events 20000] [--concurrency 64] [--db pglite|pg]
// --db pg uses MSS_DATABASE_URL (a scratch database is created and dropped).
import { readFileSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { initDevPki } from '../certs/pki.js';
import { createTsa } from '../certs/tsa.js';
import { migrate, openPg, openPglite, type Db } from '../core/db/index.js';
import { Journal } from '../core/journal/index.js';

const { values: args } = parseArgs({
  options: {
    events: { type: 'string', default: '20000' },
    concurrency: { type: 'string', default: '64' },
    db: { type: 'string', default: process.env.MSS_DATABASE_URL ? 'pg' : 'pglite' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  process.stdout.write('usage: node dist/bench/journal.js [--events N] [--concurrency C] [--db pglite|pg]\n  --db pg needs MSS_DATABASE_URL\n');
  process.exit(0);
}
const N = Number(args.events);
const C = Number(args.concurrency);

async function openTarget(): Promise<{ db: Db; done: () => Promise<void> }> {
  if (args.db === 'pglite') {
    const db = await openPglite(join(mkdtempSync(join(tmpdir(), 'mss-bench-')), 'db'));
    return { db, done: () => db.close() };
  }
  const base = process.env.MSS_DATABASE_URL;
  if (!base) throw new Error('--db pg needs MSS_DATABASE_URL');
  const name = `mss_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const u = new URL(base);
  u.pathname = `/${name}`;
  const db = await openPg({ url: u.toString(), poolSize: Math.min(C, 20) });
  return {
    db,
    async done() {
      await db.close();
      await admin.query(`DROP DATABASE ${name} WITH (FORCE)`);
      await admin.end();
    },
  };
}

const event = (i: number) => ({ type: 'smtp.received', actor: `CN=mx.peer${i % 50}.mssante.fr`, subject: `<${i}.${randomBytes(6).toString('hex')}@peer.mssante.fr>`, details: { size: 10240 + i, rcpt: [`dr.martin${i % 997}@mssante.localhost`], tls: 'TLSv1.3' } });

/** Runs `total` tasks with at most `c` in flight; returns the elapsed seconds. */
async function drive(total: number, c: number, task: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (next < total) await task(next++);
    }),
  );
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const pkiDir = mkdtempSync(join(tmpdir(), 'mss-bench-pki-'));
await initDevPki({ dir: pkiDir, domain: 'bench.localhost', keyBits: 2048 });
const read = (f: string) => readFileSync(join(pkiDir, f), 'utf8');
const tsa = await createTsa({ certPem: read('tsa.pem'), keyPem: read('tsa.key'), chainPems: [read('intermediate.pem')], policyOid: '1.2.250.1.999.1.1' });

const { db, done } = await openTarget();
try {
  await migrate(db);
  await db.exec(`CREATE TABLE bench_plain (LIKE journal_events INCLUDING DEFAULTS); ALTER TABLE bench_plain ADD PRIMARY KEY (seq)`);

  // Peer: one INSERT per event, same columns, no chain, no seal.
  let seq = 0;
  const plainSecs = await drive(N, C, async (i) => {
    const e = event(i);
    await db.query('INSERT INTO bench_plain (seq, at, type, actor, subject, details, prev_hash, hash) VALUES ($1, now(), $2, $3, $4, $5::jsonb, $6, $7)', [
      ++seq,
      e.type,
      e.actor,
      e.subject,
      JSON.stringify(e.details),
      '0'.repeat(64),
      '0'.repeat(64),
    ]);
  });

  // Ceiling: the same rows in multi-row INSERTs of 1000, no chain, no seal.
  await db.exec('TRUNCATE bench_plain');
  const rows = Array.from({ length: N }, (_, i) => event(i));
  const t1 = process.hrtime.bigint();
  for (let i = 0; i < N; i += 1000) {
    const chunk = rows.slice(i, i + 1000);
    const params: unknown[] = [];
    const values = chunk.map((e, j) => {
      params.push(i + j + 1, e.type, e.actor, e.subject, JSON.stringify(e.details));
      const n = params.length;
      return `($${n - 4}, now(), $${n - 3}, $${n - 2}, $${n - 1}, $${n}::jsonb, '', '')`;
    });
    await db.query(`INSERT INTO bench_plain (seq, at, type, actor, subject, details, prev_hash, hash) VALUES ${values.join(',')}`, params);
  }
  const batchedSecs = Number(process.hrtime.bigint() - t1) / 1e9;

  const journal = new Journal(db, { timestamper: tsa, sealBatch: 1000 });
  const appendSecs = await drive(N, C, (i) => journal.append(event(i)));
  const t0 = process.hrtime.bigint();
  const sealed = await journal.sealNow();
  const sealSecs = Number(process.hrtime.bigint() - t0) / 1e9;
  const report = await journal.verify();
  if (!report.ok || sealed !== N) throw new Error(`bench journal is not intact: ${JSON.stringify(report.problems.slice(0, 3))}`);

  const rate = (s: number) => Math.round(N / s).toLocaleString('en');
  const total = appendSecs + sealSecs;
  process.stdout.write(
    [
      `bench/journal on ${db.kind} — ${N} events, concurrency ${C}`,
      `  plain INSERT (peer)        ${rate(plainSecs).padStart(9)} events/s  (${plainSecs.toFixed(2)} s)`,
      `  plain INSERT, 1000 per stmt ${rate(batchedSecs).padStart(9)} events/s  (${batchedSecs.toFixed(2)} s, ceiling)`,
      `  journal append (chained)   ${rate(appendSecs).padStart(9)} events/s  (${appendSecs.toFixed(2)} s)`,
      `  journal append + seal      ${rate(total).padStart(9)} events/s  (${total.toFixed(2)} s, ${Math.ceil(N / 1000)} RFC 3161 tokens)`,
      `  ratio journal/plain        ${(plainSecs / total).toFixed(2)}x  (append only: ${(plainSecs / appendSecs).toFixed(2)}x; vs the batched ceiling: ${(batchedSecs / total).toFixed(2)}x)`,
      '',
    ].join('\n'),
  );
} finally {
  await done();
}
