// The embedded database's own thread (see pglite-thread.ts): opens PGlite here with
// openPglite — turns, prepared statements and VACUUM included — and answers the platform's
// thread, one message per call. A transaction stays open here, on PGlite's lock, from `begin`
// until the platform's thread says `commit` or `rollback`.
import { workerData } from 'node:worker_threads';
import type { Logger } from '../logger.js';
import { isMssError } from '../errors.js';
import { openPglite } from './pglite.js';
import type { Queryable } from './types.js';
import type { Call, Reply, ThreadInit, WireError } from './pglite-thread.js';

const init = workerData as ThreadInit;
const port = init.port;

// Only VACUUM logs from here: its lines go to the platform's logger.
const logAt =
  (level: 'debug' | 'info' | 'warn' | 'error') =>
  (obj: unknown, msg?: string) => {
    const o = obj as { err?: unknown };
    const fields = o && typeof o === 'object' && o.err ? { ...o, err: String((o.err as Error)?.message ?? o.err) } : obj;
    port.postMessage({ t: 'log', level, obj: fields, msg } satisfies Reply);
  };
const log = { debug: logAt('debug'), info: logAt('info'), warn: logAt('warn'), error: logAt('error') } as unknown as Logger;

/** What the platform's thread can rebuild: a catalogue error as itself, a PostgreSQL error with its fields (code, constraint…). */
function wire(e: unknown): WireError {
  if (isMssError(e)) return { message: e.message, mss: { code: e.code, details: JSON.parse(JSON.stringify(e.details ?? {})) } };
  const x = e as Error & Record<string, unknown>;
  const fields: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(x ?? {})) if (['string', 'number', 'boolean'].includes(typeof v)) fields[k] = v as string | number | boolean;
  return { message: x?.message ?? String(e), name: x?.name, fields };
}

const db = await openPglite(init.dir, { ...init.options, log }).catch((e: unknown) => {
  port.postMessage({ t: 'failed', error: wire(e) } satisfies Reply);
  return null;
});

if (db) {
  const background = db.background();
  const open = new Map<number, { q: Queryable; end: (commit: boolean) => void; ended: Promise<unknown> }>();
  const on = (c: { cls: 'interactive' | 'background'; tx?: number }): Queryable => {
    if (c.tx !== undefined) {
      const t = open.get(c.tx);
      if (!t) throw new Error(`transaction ${c.tx} is not open`);
      return t.q;
    }
    return c.cls === 'background' ? background : db;
  };

  const handle = async (c: Call): Promise<unknown> => {
    switch (c.op) {
      case 'query':
        return on(c).query(c.sql, c.params);
      case 'exec':
        return on(c).exec(c.sql);
      case 'copy': {
        const q = on(c);
        const parts = c.parts.map((x) => (typeof x === 'string' ? x : Buffer.from(x.buffer, x.byteOffset, x.byteLength)));
        return q.copyFrom!(c.sql, (async function* () {
          yield* parts;
        })());
      }
      case 'begin': {
        const target = c.cls === 'background' ? background : db;
        // Answers the transaction's number once it has begun (its turn and PGlite's lock held).
        return new Promise<number>((begun, failed) => {
          const t = { q: null as unknown as Queryable, end: (_commit: boolean) => {}, ended: Promise.resolve() as Promise<unknown> };
          t.ended = target
            .transaction(
              (q) =>
                new Promise<void>((commit, rollback) => {
                  t.q = q;
                  t.end = (ok) => (ok ? commit() : rollback(new Error('rolled back by the platform')));
                  open.set(c.id, t);
                  begun(c.id);
                }),
            )
            .finally(() => open.delete(c.id));
          t.ended.catch(failed);
        });
      }
      case 'end': {
        const t = open.get(c.tx);
        if (!t) throw new Error(`transaction ${c.tx} is not open`);
        t.end(c.commit);
        if (c.commit) return t.ended.then(() => null);
        return t.ended.then(
          () => null,
          () => null,
        );
      }
      case 'dump':
        return (c.cls === 'background' ? background : db).dumpDataDir!(c.sql);
      case 'close':
        await db.close();
        return null;
    }
  };

  port.on('message', (c: Call) => {
    handle(c).then(
      (value) => {
        port.postMessage({ t: 'ok', id: c.id, value } satisfies Reply);
        if (c.op === 'close') port.close();
      },
      (e: unknown) => port.postMessage({ t: 'error', id: c.id, error: wire(e) } satisfies Reply),
    );
  });
  port.postMessage({ t: 'ready' } satisfies Reply);
}
