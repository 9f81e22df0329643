// What the platform's worker processes (imap-proxy/workers.ts, webmail-api/workers.ts) have
// in common on the platform's side: where the compiled worker is, how it is forked, how its
// log lines are logged again here, and how long a stop or a respawn may take.
import { fork, type ChildProcess, type Serializable } from 'node:child_process';
import { existsSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from './logger.js';
import { fromRoot } from './paths.js';

/** A worker that has not ended its connections and exited within this time is killed. */
export const STOP_TIMEOUT_MS = 30_000;
/** A worker that died is replaced after this delay (its clients reconnect meanwhile). */
export const RESPAWN_DELAY_MS = 1000;

/**
 * The compiled worker `file` of module `dir` (e.g. 'imap-proxy', 'worker.js'): next to the
 * caller in dist/, or in dist/ when running from sources (tests).
 */
export function workerFile(callerUrl: string, dir: string, file: string, what: string): string {
  const here = fileURLToPath(callerUrl);
  const path = here.endsWith('.ts') ? fromRoot('dist', dir, file) : join(dirname(here), file);
  if (!existsSync(path)) throw new Error(`the ${what} ${path} is missing: build first (npx tsc)`);
  return path;
}

/** Forks a worker; profiling and memory flags follow the platform's process, loaders (tsx, vitest) do not: the worker is compiled JavaScript. */
export function forkWorker(file: string, serialization: 'json' | 'advanced'): ChildProcess {
  const execArgv = process.execArgv.filter((a) => /^--(cpu-prof|heap-prof|max-old-space-size|max-semi-space-size|expose-gc)/.test(a));
  return fork(file, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv, serialization });
}

/** A worker's pino line, logged again here (with the platform's logger, level and format). */
export function relayWorkerLog(log: Logger): (line: string, worker: number) => void {
  const levels = (log.levels?.labels ?? {}) as Record<number, string>;
  return (line, worker) => {
    try {
      const { level, time: _time, msg, ...rest } = JSON.parse(line) as { level: number; time?: unknown; msg?: string };
      const label = (levels[level] ?? 'info') as 'info';
      log[label]({ ...rest, worker }, msg ?? '');
    } catch {
      log.info({ worker }, line.trim());
    }
  };
}

/** Asks a worker to stop (`stop` message), kills it after STOP_TIMEOUT_MS; resolves when it has exited. */
export async function stopWorker(child: ChildProcess, exited: Promise<void>, stop: Serializable): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  if (child.connected) child.send(stop);
  else child.kill();
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

/** One worker process as its pool sees it. */
export interface WorkerSlot {
  child: ChildProcess;
  /** True between its `ready` and its exit. */
  ready: boolean;
  exited: Promise<void>;
}

/**
 * Forks worker `index` of a pool and runs the dialogue every pool has: `init` sent, `ready`
 * awaited (the promise resolves then, and rejects if it exits first), log lines relayed,
 * calls answered with `reply`, and a worker that dies after its start replaced after
 * RESPAWN_DELAY_MS while `replace()` says so. `onMessage` gets the pool's other messages.
 */
export function superviseWorker<S extends WorkerSlot, M extends { t: string }>(o: {
  /** What it is, in log lines ("webmail worker"). */
  what: string;
  /** What is lost when it dies ("its connections are lost"). */
  lost: string;
  file: string;
  serialization: 'json' | 'advanced';
  index: number;
  init: Serializable;
  log: Logger;
  /** Niceness of the worker above the platform's (0: the same). A bulk front above 0 yields the cores to the fronts with latency promises when the machine is saturated. */
  nice?: number;
  /** The pool's slot for this child (put in its table before the start, so a respawn takes the same place). */
  slot(child: ChildProcess, exited: Promise<void>): S;
  answer(m: Extract<M, { t: 'call' }>): Promise<unknown>;
  /** The `error` a failed call's reply carries. */
  replyError(e: unknown): unknown;
  onMessage?(m: M, slot: S): void;
  onExit?(slot: S): void;
  /** Whether a worker that died now is replaced (false while stopping, or before the pool is up). */
  replace(): boolean;
  /** Starts the replacement (the pool calls superviseWorker again for the same index). */
  respawn(): Promise<unknown>;
}): Promise<S> {
  const child = forkWorker(o.file, o.serialization);
  if (o.nice && child.pid) {
    try {
      setPriority(child.pid, Math.min(19, getPriority() + o.nice));
    } catch (e) {
      o.log.warn({ err: (e as Error).message, nice: o.nice }, `the ${o.what}'s priority could not be lowered; it runs at the platform's`);
    }
  }
  let resolveExited!: () => void;
  const slot = o.slot(child, new Promise<void>((r) => (resolveExited = r)));
  const relay = relayWorkerLog(o.log);
  const send = (m: Serializable) => {
    if (child.connected) child.send(m);
  };
  return new Promise<S>((resolve, reject) => {
    child.on('message', (m: M) => {
      switch (m.t) {
        case 'ready':
          slot.ready = true;
          resolve(slot);
          return;
        case 'log':
          relay((m as unknown as { line: string }).line, o.index);
          return;
        case 'stopped':
          return; // it exits next
        case 'call': {
          const call = m as Extract<M, { t: 'call' }> & { id: number };
          o.answer(call).then(
            (value) => send({ t: 'reply', id: call.id, ok: true, value } as Serializable),
            (e: unknown) => send({ t: 'reply', id: call.id, ok: false, error: o.replyError(e) } as Serializable),
          );
          return;
        }
        default:
          o.onMessage?.(m, slot);
      }
    });
    child.once('error', (e) => {
      o.log.error({ err: e, worker: o.index }, `${o.what} error`);
      reject(e);
    });
    child.once('exit', (code, signal) => {
      slot.ready = false;
      o.onExit?.(slot);
      resolveExited();
      reject(new Error(`the ${o.what} exited during its start (${signal ?? code})`));
      if (!o.replace()) return;
      o.log.error({ worker: o.index, code, signal }, `${o.what} died: ${o.lost}; starting another`);
      setTimeout(() => {
        if (o.replace()) o.respawn().catch((e) => o.log.error({ err: e, worker: o.index }, `${o.what} could not be restarted`));
      }, RESPAWN_DELAY_MS).unref();
    });
    send(o.init);
  });
}

// ---------------------------------------------------------------- in the worker

/** Sends a message to the platform's process, if it is still there. */
export function sendToPlatform(m: Serializable, cb?: () => void): void {
  if (process.connected) process.send!(m, undefined, undefined, cb);
}

/**
 * A worker's calls to the platform's process: `call` sends `{ ...m, id }` and resolves with
 * the `reply` of that id, which the worker's message handler passes to `settle`; a failed
 * reply's `error` becomes an Error through `toError`. When the platform's process is gone
 * (crash, kill -9), the calls in flight fail and the worker exits: nobody is left to decide.
 */
export function platformCalls<E>(toError: (e: E) => Error) {
  const calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextCall = 0;
  process.on('disconnect', () => {
    for (const c of calls.values()) c.reject(new Error('the platform process is gone'));
    calls.clear();
    process.exit(1);
  });
  return {
    call<T>(m: object): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        if (!process.connected) return reject(new Error('the platform process is gone'));
        const id = ++nextCall;
        calls.set(id, { resolve: resolve as (v: unknown) => void, reject });
        sendToPlatform({ ...m, id } as Serializable);
      });
    },
    settle(r: { id: number; ok: true; value: unknown } | { id: number; ok: false; error: E }): void {
      const c = calls.get(r.id);
      if (!c) return;
      calls.delete(r.id);
      if (r.ok) c.resolve(r.value);
      else c.reject(toError(r.error));
    },
  };
}
