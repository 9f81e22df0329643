// What the platform's worker processes (imap-proxy/workers.ts, webmail-api/workers.ts) have
// in common on the platform's side: where the compiled worker is, how it is forked, how its
// log lines are logged again here, and how long a stop or a respawn may take.
import { fork, type ChildProcess, type Serializable } from 'node:child_process';
import { existsSync } from 'node:fs';
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
