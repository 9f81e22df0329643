// /health answers from the latest results of a background prober, never by querying inline.
//
// Every check (database, Dovecot, slapd, SMTP, IMAP, journal…) runs on its own loop, every
// http.healthInterval, bounded by http.healthTimeout; /health reports each one's status, its
// age and how long it took. So a health request costs no database round trip: on PGlite the
// database is one backend that serialises every statement of the process, and an inline
// `SELECT 1` waited behind whatever an import or a burst of mail had queued (issue 13:
// /health stopped answering within 2 s under webmail load). A result older than
// http.healthStale is reported `stale` — the process could not complete the check for that
// long (its event loop is stalled, or the check hangs past its timeout) — and the whole
// answer is then 503, like a failed check: staleness is the symptom monitoring must see.
//
// The answer itself is computed by healthReport() wherever the request lands: the platform's
// HTTP listener, or the health thread (core/health-thread.ts), which keeps answering while
// this process's event loop is busy.
import type { HealthCheck } from './http.js';

export interface HealthOptions {
  /** Between the end of one run of a check and the start of the next. */
  intervalMs: number;
  /** A check not answered within this is recorded as failed (it is not started again before it ends). */
  timeoutMs: number;
  /** A result older than this is reported stale (503). */
  staleMs: number;
}

/** The latest result of one check: plain data (it crosses to the health thread). */
export interface CheckState {
  status: 'ok' | 'failed' | 'pending';
  /** When the result was recorded (ms since the epoch); 0 while pending. */
  at: number;
  /** How long the check took (or, when it timed out, the timeout). */
  ms: number;
  value?: unknown;
  error?: string;
}

export type HealthStates = Record<string, CheckState>;

export class HealthProber {
  private readonly states: HealthStates = {};
  private readonly running = new Map<string, Promise<void>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private started = false;
  private stopped = false;

  constructor(
    private readonly checks: HealthCheck[],
    readonly options: HealthOptions,
    /** Called with every new result (the health thread's feed). */
    private readonly onChange?: (states: HealthStates) => void,
  ) {
    for (const c of checks) this.states[c.name] = { status: 'pending', at: 0, ms: 0 };
  }

  /** Runs every check once and resolves when each has a result (ok, failed, or timed out: a hung check is not waited for). */
  async probeNow(): Promise<void> {
    await this.atMostTimeout(Promise.all(this.checks.map((c) => this.run(c))));
  }

  /** Probes now, then keeps each check running every intervalMs in the background. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.probeNow();
    for (const c of this.checks) this.schedule(c);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await this.atMostTimeout(Promise.all(this.running.values()));
  }

  /** p, or nothing once timeoutMs has passed (by then a hung check has its timeout recorded). */
  private async atMostTimeout(p: Promise<unknown>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([p, new Promise<void>((r) => (timer = setTimeout(r, this.options.timeoutMs + 10)))]);
    clearTimeout(timer);
  }

  /** A copy of the latest results. */
  snapshot(): HealthStates {
    return structuredClone(this.states);
  }

  report(now = Date.now()): HealthReport {
    return healthReport(this.states, this.options.staleMs, now);
  }

  private schedule(c: HealthCheck): void {
    if (this.stopped) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      void this.run(c).then(() => this.schedule(c));
    }, this.options.intervalMs);
    t.unref();
    this.timers.add(t);
  }

  /** One run of a check; a run still going (past its timeout) is waited for, not doubled. */
  private run(c: HealthCheck): Promise<void> {
    const going = this.running.get(c.name);
    if (going) return going;
    const p = this.once(c).finally(() => this.running.delete(c.name));
    this.running.set(c.name, p);
    return p;
  }

  private async once(c: HealthCheck): Promise<void> {
    const t0 = performance.now();
    const timer = setTimeout(() => {
      this.record(c.name, { status: 'failed', at: Date.now(), ms: this.options.timeoutMs, error: `no answer within ${this.options.timeoutMs} ms` });
    }, this.options.timeoutMs);
    try {
      const value = await c.check();
      this.record(c.name, { status: 'ok', at: Date.now(), ms: Math.round(performance.now() - t0), value });
    } catch (e) {
      this.record(c.name, { status: 'failed', at: Date.now(), ms: Math.round(performance.now() - t0), error: (e as Error).message ?? String(e) });
    } finally {
      // A late answer still replaces the timeout's verdict: it is the newer fact.
      clearTimeout(timer);
    }
  }

  private record(name: string, s: CheckState): void {
    this.states[name] = s;
    this.onChange?.(this.snapshot());
  }
}

export interface HealthReport {
  code: 200 | 503;
  body: { status: 'ok' | 'degraded'; checks: Record<string, Record<string, unknown>> };
}

/**
 * The /health answer from the latest results: each check with its status (ok, failed,
 * stale, pending), its age and duration, and what it reported (its value's fields, or its
 * error); 200 only when every check is ok and fresh.
 */
export function healthReport(states: HealthStates, staleMs: number, now = Date.now()): HealthReport {
  let ok = true;
  const checks: HealthReport['body']['checks'] = {};
  for (const [name, s] of Object.entries(states)) {
    const ageMs = s.at ? Math.max(0, now - s.at) : null;
    const status = s.status === 'ok' && ageMs !== null && ageMs > staleMs ? 'stale' : s.status;
    if (status !== 'ok') ok = false;
    const value = s.value !== null && typeof s.value === 'object' && !Array.isArray(s.value) ? (s.value as Record<string, unknown>) : s.value === undefined ? {} : { value: s.value };
    checks[name] = {
      ...(s.status === 'ok' ? value : {}),
      ...(s.error !== undefined ? { error: s.error } : {}),
      status,
      ageMs,
      ms: s.ms,
    };
  }
  return { code: ok ? 200 : 503, body: { status: ok ? 'ok' : 'degraded', checks } };
}
