import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { openPglite, type Db } from '../../core/db/index.js';
import { HealthProber } from '../../core/health.js';
import { startHealthListener, type HealthListener } from '../../core/health-thread.js';
import { createHttpServer, dbHealth } from '../../core/http.js';
import { silentLogger } from '../../core/logger.js';

// /health answers from the background prober's latest results (core/health.ts), served by
// the health thread (core/health-thread.ts): a stalled database or a blocked event loop in
// the platform's process gets an answer saying so, never a hang. No time limits here: the
// tests wait for what /health reports.

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Served {
  prober: HealthProber;
  thread: HealthListener;
  url: string;
}

/** A prober over `checks`, the fastify listener behind it and the health thread in front, as bin/platform.ts wires them. */
async function serve(checks: ConstructorParameters<typeof HealthProber>[0], o: { intervalMs: number; timeoutMs: number; staleMs: number; priority?: number }): Promise<Served> {
  let thread: HealthListener | undefined;
  const prober = new HealthProber(checks, o, (s) => thread?.update(s));
  const app = createHttpServer(silentLogger, prober);
  await app.listen({ host: '127.0.0.1', port: 0 });
  cleanups.push(() => app.close());
  await prober.start();
  cleanups.push(() => prober.stop());
  thread = await startHealthListener({ host: '127.0.0.1', port: 0, upstream: { host: '127.0.0.1', port: (app.server.address() as { port: number }).port }, staleMs: o.staleMs, states: prober.snapshot(), priority: o.priority, log: silentLogger });
  cleanups.push(() => thread!.stop());
  return { prober, thread, url: `http://127.0.0.1:${thread.port}` };
}

type Health = { status: string; checks: Record<string, { status: string; ageMs: number | null; ms: number; error?: string; [k: string]: unknown }> };

async function health(url: string): Promise<{ code: number; body: Health }> {
  const r = await fetch(`${url}/health`);
  return { code: r.status, body: (await r.json()) as Health };
}

/** Asks /health until `pred` holds on its answer (the prober runs in the background). */
async function until(url: string, pred: (h: { code: number; body: Health }) => boolean): Promise<{ code: number; body: Health }> {
  for (;;) {
    const h = await health(url);
    if (pred(h)) return h;
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('/health from the background prober', () => {
  let db: Db | undefined;
  afterEach(async () => {
    await db?.close();
    db = undefined;
  });

  it('answers while the embedded database is stalled, reports the database check failed, and ok again once it answers', async () => {
    db = await openPglite();
    const s = await serve([dbHealth(db), { name: 'other', check: async () => ({ ok: true }) }], { intervalMs: 10, timeoutMs: 100, staleMs: 3_600_000 });
    const first = await health(s.url);
    expect(first.code).toBe(200);
    expect(first.body.checks.database).toMatchObject({ status: 'ok', ok: true, kind: 'pglite' });
    expect(first.body.checks.database.ageMs).toBeGreaterThanOrEqual(0);

    // A transaction holds PGlite's one backend: every other statement of the process waits,
    // as it did behind an import's transaction.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let inside!: () => void;
    const entered = new Promise<void>((r) => (inside = r));
    const stall = db.transaction(async () => {
      inside();
      await held;
    });
    await entered;
    const stalled = await until(s.url, (h) => h.body.checks.database.status === 'failed');
    expect(stalled.code).toBe(503);
    expect(stalled.body.status).toBe('degraded');
    expect(stalled.body.checks.database.error).toBe('no answer within 100 ms');
    // The other checks keep their own results meanwhile.
    expect(stalled.body.checks.other.status).toBe('ok');

    release();
    await stall;
    const back = await until(s.url, (h) => h.code === 200);
    expect(back.body.checks.database).toMatchObject({ status: 'ok', kind: 'pglite' });
  });

  it('is answered by the health thread while the platform\'s event loop is blocked, and other paths are relayed to the platform\'s listener', async () => {
    const s = await serve([{ name: 'database', check: async () => ({ ok: true }) }], { intervalMs: 3_600_000, timeoutMs: 1000, staleMs: 3_600_000 });
    // execFileSync blocks this thread's event loop until curl has its answer: only the
    // health thread can give it.
    const out = execFileSync('curl', ['-s', '-w', '\n%{http_code}', `${s.url}/health`], { encoding: 'utf8' });
    const [body, code] = out.split('\n');
    expect(code).toBe('200');
    expect(JSON.parse(body)).toMatchObject({ status: 'ok', checks: { database: { status: 'ok', ok: true } } });

    // Everything else goes to fastify behind it, problem+json refusals included.
    const m = await fetch(`${s.url}/metrics`);
    expect(m.status).toBe(200);
    expect(await m.text()).toMatch(/^# HELP /m);
    const nf = await fetch(`${s.url}/nowhere`);
    expect(nf.status).toBe(404);
    expect(nf.headers.get('content-type')).toContain('application/problem+json');
    const post = await fetch(`${s.url}/health`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    expect(post.status).toBe(404);
  });

  it('runs at http.healthPriority below the platform where the process may raise priorities (CAP_SYS_NICE), at the platform\'s otherwise, and answers either way', async () => {
    const { thread, url } = await serve([{ name: 'ok', check: async () => ({ ok: true }) }], { intervalMs: 50, timeoutMs: 1000, staleMs: 60_000, priority: -5 });
    expect(thread.tid).toBeGreaterThan(0);
    // Field 19 of /proc/<pid>/task/<tid>/stat is the thread's niceness (after the command in parentheses).
    const nice = (tid: number) => Number(readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1].split(' ')[16]);
    const platform = getPriority(process.pid);
    // Root has CAP_SYS_NICE; a user without it keeps the platform's niceness (a user given the capability alone is not this test's case).
    const mayRaise = process.getuid?.() === 0;
    expect(nice(thread.tid!)).toBe(mayRaise ? Math.max(-20, platform - 5) : platform);
    expect((await health(url)).code).toBe(200);
  });

  it('reports a result older than http.healthStale as stale, with a 503', async () => {
    // One run at start and none after: the result only ages.
    const s = await serve([{ name: 'mailstore', check: async () => ({ ok: true }) }], { intervalMs: 3_600_000, timeoutMs: 1000, staleMs: 1 });
    const h = await until(s.url, (x) => x.body.checks.mailstore.status === 'stale');
    expect(h.code).toBe(503);
    expect(h.body.status).toBe('degraded');
    expect(h.body.checks.mailstore.ageMs).toBeGreaterThan(1);
  });

  it('a check that never answers holds neither the start nor the stop, and is reported failed', async () => {
    const prober = new HealthProber([{ name: 'database', check: () => new Promise(() => {}) }, { name: 'smtp', check: async () => ({ ok: true }) }], { intervalMs: 10, timeoutMs: 50, staleMs: 3_600_000 });
    await prober.start();
    const r = prober.report();
    expect(r.code).toBe(503);
    expect(r.body.checks.database).toMatchObject({ status: 'failed', error: 'no answer within 50 ms' });
    expect(r.body.checks.smtp).toMatchObject({ status: 'ok' });
    await prober.stop();
  });

  it('a check that throws is failed with its message, and does not stop the others', async () => {
    let n = 0;
    const s = await serve(
      [
        { name: 'ldap', check: async () => { n++; throw new Error('slapd does not answer'); } },
        { name: 'smtp', check: async () => ({ ok: true, queuedLocal: 0 }) },
      ],
      { intervalMs: 10, timeoutMs: 1000, staleMs: 3_600_000 },
    );
    const h = await until(s.url, () => n >= 3);
    expect(h.code).toBe(503);
    expect(h.body.checks.ldap).toMatchObject({ status: 'failed', error: 'slapd does not answer' });
    expect(h.body.checks.smtp).toMatchObject({ status: 'ok', queuedLocal: 0 });
  });
});
