// The platform's HTTP port, served by a thread of its own: /health is answered there, from
// the prober's latest results (core/health.ts), so a busy event loop in the platform's
// process — PGlite statements run on it, in WebAssembly, as does everything the fronts of
// this process do — cannot delay it. Every other request (metrics, the TSA, autoconfig) is
// relayed as is to the platform's fastify listener on a loopback port of its own.
//
// If the platform's loop stalls, the results the thread holds age, and /health says so
// (`stale`, 503) instead of hanging: the monitoring gets an answer either way.
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { healthReport, type HealthStates } from './health.js';
import type { Logger } from './logger.js';
import { fromRoot } from './paths.js';

interface ThreadInit {
  mssHealthThread: true;
  host: string;
  port: number;
  upstream: { host: string; port: number };
  staleMs: number;
  states: HealthStates;
  priority: number;
}

type ToThread = { t: 'states'; states: HealthStates } | { t: 'stop' };
type FromThread = { t: 'listening'; port: number; tid: number | null; priority: string | null } | { t: 'error'; message: string } | { t: 'stopped' };

export interface HealthListener {
  /** The port the listener is bound to (useful with http.port 0). */
  port: number;
  /** The thread's id in the kernel (Linux), whose niceness http.healthPriority sets. */
  tid: number | null;
  /** Feeds the thread the prober's latest results. */
  update(states: HealthStates): void;
  stop(): Promise<void>;
}

/** The compiled thread: this file in dist/ (also when running from sources: tests). */
function threadFile(): string {
  const here = fileURLToPath(import.meta.url);
  const file = here.endsWith('.ts') ? fromRoot('dist', 'core', 'health-thread.js') : join(dirname(here), 'health-thread.js');
  if (!existsSync(file)) throw new Error(`the health thread ${file} is missing: build first (npx tsc)`);
  return file;
}

/** Starts the thread listening on host:port; resolves once it listens (or rejects with why it could not). */
export function startHealthListener(o: { host: string; port: number; upstream: { host: string; port: number }; staleMs: number; states: HealthStates; priority?: number; log: Logger }): Promise<HealthListener> {
  const init: ThreadInit = { mssHealthThread: true, host: o.host, port: o.port, upstream: o.upstream, staleMs: o.staleMs, states: o.states, priority: o.priority ?? 0 };
  const worker = new Worker(threadFile(), { workerData: init, resourceLimits: { maxOldGenerationSizeMb: 32 } });
  // The thread alone does not keep the process alive: the platform's stop() ends it.
  worker.unref();
  const exited = new Promise<void>((r) => worker.once('exit', () => r()));
  return new Promise<HealthListener>((resolve, reject) => {
    let up = false;
    worker.on('message', (m: FromThread) => {
      if (m.t === 'listening') {
        up = true;
        if (m.priority) o.log.warn({ priority: init.priority }, `the health thread runs at the platform's priority: ${m.priority}`);
        resolve({
          port: m.port,
          tid: m.tid,
          update: (states) => worker.postMessage({ t: 'states', states } satisfies ToThread),
          async stop() {
            worker.postMessage({ t: 'stop' } satisfies ToThread);
            await exited;
          },
        });
      } else if (m.t === 'error' && !up) {
        void worker.terminate();
        reject(new Error(m.message));
      }
    });
    worker.once('error', (e) => {
      if (!up) reject(e);
      else o.log.error({ err: e }, 'the health thread failed');
    });
    worker.once('exit', (code) => {
      if (!up) reject(new Error(`the health thread exited during its start (${code})`));
    });
  });
}

// ------------------------------------------------------------------ inside the thread

/**
 * This thread's kernel id, and its niceness moved by `delta` (Linux sets a niceness per
 * thread): on a saturated machine the scheduler then wakes it before the fronts, so the
 * monitoring's answer does not queue behind them. Going below the platform's niceness needs
 * CAP_SYS_NICE (root, or a unit's AmbientCapabilities); without it, why, for the log.
 */
function raisePriority(delta: number): { tid: number | null; refused: string | null } {
  let tid: number | null = null;
  try {
    tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
  } catch {
    return { tid: null, refused: delta ? 'no per-thread priority on this system' : null };
  }
  if (!delta) return { tid, refused: null };
  try {
    setPriority(tid, Math.max(-20, getPriority(tid) + delta));
    return { tid, refused: null };
  } catch (e) {
    return { tid, refused: `${(e as Error).message} (raising it needs CAP_SYS_NICE; http.healthPriority 0 silences this)` };
  }
}

function runThread(init: ThreadInit): void {
  let states = init.states;
  const send = (m: FromThread) => parentPort!.postMessage(m);
  const { tid, refused } = raisePriority(init.priority);

  const relay = (req: IncomingMessage, res: ServerResponse) => {
    const up = request({ host: init.upstream.host, port: init.upstream.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.rawHeaders as unknown as Record<string, string>);
      r.pipe(res);
    });
    up.on('error', () => {
      if (res.headersSent) return void res.destroy();
      res.writeHead(502, { 'content-type': 'application/problem+json' });
      res.end(JSON.stringify({ type: 'about:blank', title: 'UNAVAILABLE', status: 502, detail: 'the platform did not answer' }));
    });
    // A client gone mid-way: nothing more to fetch for it.
    res.on('close', () => up.destroy());
    req.pipe(up);
  };

  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/health' && (req.method === 'GET' || req.method === 'HEAD')) {
      const r = healthReport(states, init.staleMs);
      const body = JSON.stringify(r.body);
      res.writeHead(r.code, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    relay(req, res);
  });
  server.on('error', (e) => send({ t: 'error', message: `the HTTP listener cannot listen on ${init.host}:${init.port}: ${e.message}` }));
  server.listen({ host: init.host, port: init.port }, () => send({ t: 'listening', port: (server.address() as AddressInfo).port, tid, priority: refused }));

  parentPort!.on('message', (m: ToThread) => {
    if (m.t === 'states') states = m.states;
    else if (m.t === 'stop') {
      server.closeAllConnections();
      server.close(() => process.exit(0));
    }
  });
}

if (!isMainThread && (workerData as ThreadInit | undefined)?.mssHealthThread) runThread(workerData as ThreadInit);
