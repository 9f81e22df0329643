// The embedded database on a thread of its own. PGlite runs PostgreSQL in WebAssembly,
// synchronously: in the platform's thread every statement — an import's slice, VACUUM, a
// digest pass — held the event loop that the MX, the admin API and the IMAP proxy's
// decisions share (bench/mixed: loop delays p99 ~300 ms while a sync ran, about half of the
// thread's time in PGlite). Here PGlite stays one backend in one process, as it must, but on
// a worker thread (pglite-thread-worker.ts); the platform's thread only posts statements and
// gets rows back. The turns (interactive first), the prepared statements and VACUUM run
// there unchanged.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { MssError, type ErrorCode } from '../errors.js';
import type { Logger } from '../logger.js';
import { fromRoot } from '../paths.js';
import type { PgliteOptions } from './pglite.js';
import { normaliseRows } from './pglite-rows.js';
import type { Db, Queryable, QueryResult } from './types.js';

type Cls = 'interactive' | 'background';
export interface ThreadInit {
  /** Where calls come and answers go (a port of its own: see `port.unref()` below). */
  port: MessagePort;
  dir?: string;
  options: Omit<PgliteOptions, 'log'>;
}
export type Call = { id: number } & (
  | { op: 'query'; cls: Cls; tx?: number; sql: string; params?: unknown[] }
  | { op: 'exec'; cls: Cls; tx?: number; sql: string }
  | { op: 'copy'; cls: Cls; tx?: number; sql: string; parts: Array<string | Uint8Array> }
  | { op: 'begin'; cls: Cls }
  | { op: 'end'; tx: number; commit: boolean }
  | { op: 'dump'; cls: Cls; sql: string }
  | { op: 'close' }
);
type CallBody = Call extends infer C ? (C extends { id: number } ? Omit<C, 'id'> : never) : never;
export interface WireError {
  message: string;
  name?: string;
  fields?: Record<string, string | number | boolean>;
  mss?: { code: string; details: Record<string, unknown> };
}
export type Reply =
  | { t: 'ready' }
  | { t: 'failed'; error: WireError }
  | { t: 'ok'; id: number; value: unknown }
  | { t: 'error'; id: number; error: WireError }
  | { t: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; obj: unknown; msg?: string };

function threadFile(): string {
  const here = fileURLToPath(import.meta.url);
  const file = here.endsWith('.ts') ? fromRoot('dist', 'core', 'db', 'pglite-thread-worker.js') : join(dirname(here), 'pglite-thread-worker.js');
  if (!existsSync(file)) throw new Error(`the database thread ${file} is missing: build first (npx tsc)`);
  return file;
}

/** The error as the caller would have had it in-process: the catalogue's, or PostgreSQL's with its code and fields. */
function rebuild(w: WireError): Error {
  if (w.mss) return new MssError(w.mss.code as ErrorCode, w.mss.details);
  const e = new Error(w.message);
  if (w.name) e.name = w.name;
  return Object.assign(e, w.fields ?? {});
}

/** COPY slices posted at once: the thread holds one slice in memory, as openPglite's copyFrom does. */
const COPY_SLICE = 16 << 20;

/** dir undefined → in memory (tests). */
export async function openPgliteThread(dir: string | undefined, o: PgliteOptions = {}): Promise<Db> {
  const { log, ...options } = o;
  // Calls and answers go over a channel of their own, not the worker's: its port can be
  // unref'd while no call waits, so that — as with PGlite in this thread — the database alone
  // keeps no process alive, yet a CLI command awaiting an answer does not exit half-way.
  const { port1: port, port2 } = new MessageChannel();
  // execArgv: none of the process's own flags (`--input-type`, a loader) applies to this file.
  const worker = new Worker(threadFile(), { workerData: { port: port2, dir, options } satisfies ThreadInit, transferList: [port2], execArgv: [] });
  worker.unref();
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  let next = 1;
  let gone: Error | null = null;
  const started = new Promise<void>((resolve, reject) => {
    port.on('message', (m: Reply) => {
      if (m.t === 'ready') {
        port.unref();
        resolve();
      } else if (m.t === 'failed') reject(rebuild(m.error));
      else if (m.t === 'log') log?.[m.level](m.obj as object, m.msg);
      else {
        const p = pending.get(m.id);
        pending.delete(m.id);
        if (pending.size === 0) port.unref();
        if (m.t === 'ok') p?.resolve(m.value);
        else p?.reject(rebuild(m.error));
      }
    });
    worker.once('error', (e) => {
      gone = e;
      reject(e);
      for (const p of pending.values()) p.reject(e);
      pending.clear();
    });
    worker.once('exit', (code) => {
      gone ??= new Error(`the embedded database's thread exited (${code})`);
      reject(gone);
      for (const p of pending.values()) p.reject(gone);
      pending.clear();
    });
  });
  await started;

  const call = <T>(body: CallBody): Promise<T> => {
    if (gone) return Promise.reject(gone);
    const id = next++;
    return new Promise<T>((resolve, reject) => {
      if (pending.size === 0) port.ref();
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      port.postMessage({ ...body, id } as Call);
    });
  };

  const on = (cls: Cls, tx?: number): Queryable => ({
    query: async <R>(sql: string, params?: unknown[]) => {
      // Bytea comes back from the structured clone as Uint8Array; callers expect Buffers (types.ts).
      const r = await call<QueryResult<R>>({ op: 'query', cls, tx, sql, params });
      return { rows: normaliseRows<R>(r.rows), rowCount: r.rowCount };
    },
    exec: (sql: string) => call<void>({ op: 'exec', cls, tx, sql }),
    async copyFrom(sql: string, data: AsyncIterable<string | Buffer>) {
      let parts: Array<string | Buffer> = [];
      let size = 0;
      let rows = 0;
      const flush = async () => {
        if (!size) return;
        rows += await call<number>({ op: 'copy', cls, tx, sql, parts });
        parts = [];
        size = 0;
      };
      for await (const chunk of data) {
        parts.push(chunk);
        size += chunk.length;
        if (size >= COPY_SLICE) await flush();
      }
      await flush();
      return rows;
    },
  });

  const target = dir ? `embedded PGlite at ${dir}` : 'embedded PGlite in memory';
  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= (async () => {
      if (!gone) await call({ op: 'close' }).catch(() => {});
      await worker.terminate();
    })());
  const dbFor = (cls: Cls): Db => ({
    kind: 'pglite',
    target,
    ...on(cls),
    async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      const tx = await call<number>({ op: 'begin', cls });
      let value: T;
      try {
        value = await fn(on(cls, tx));
      } catch (e) {
        await call({ op: 'end', tx, commit: false }).catch(() => {});
        throw e;
      }
      await call({ op: 'end', tx, commit: true });
      return value;
    },
    background: () => backgroundDb,
    dumpDataDir: async (sql) => {
      const r = await call<{ tar: Uint8Array; rows: Record<string, unknown>[] }>({ op: 'dump', cls, sql });
      return { tar: r.tar, rows: normaliseRows(r.rows) };
    },
    close,
  });
  const backgroundDb = dbFor('background');
  return dbFor('interactive');
}
