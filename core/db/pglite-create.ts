import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MssError, type ErrorCode } from '../errors.js';
import { fromRoot } from '../paths.js';
import type { PgliteOptions } from './pglite.js';

// A new embedded database is created (initdb) and migrated in a child process, and only then
// opened by the platform. initdb took the process to ~900 MiB and PGlite's WebAssembly memory
// never shrinks: done in the platform's own process much of it stayed for as long as the
// platform ran (~490 MiB idle); in a child it ends with the child.

/** What the parent sends: where, and with which PostgreSQL settings (the platform's own). */
export interface CreateRequest {
  dir: string;
  sharedBuffers?: number;
  settings?: string[];
}

export type CreateReply = { t: 'created'; applied: string[] } | { t: 'failed'; code?: ErrorCode; details?: Record<string, unknown>; message: string };

/** True when dir holds no PostgreSQL data directory yet. */
export const needsCreating = (dir: string) => !existsSync(join(dir, 'PG_VERSION'));

/** The compiled child: next to this file in dist/, or in dist/ when running from sources (tests). */
function childFile(): string {
  const here = fileURLToPath(import.meta.url);
  const file = here.endsWith('.ts') ? fromRoot('dist', 'core', 'db', 'pglite-create-child.js') : join(dirname(here), 'pglite-create-child.js');
  if (!existsSync(file)) throw new Error(`${file} is missing: build first (npx tsc)`);
  return file;
}

/**
 * Creates and migrates the embedded database in dir in a child process; returns the child's
 * pid and the migrations it applied. Its refusal (the directory locked by another process, a
 * bad setting) is rethrown here as the same catalogue error.
 */
export async function createPgliteInChild(dir: string, o: Pick<PgliteOptions, 'sharedBuffers' | 'settings'> = {}): Promise<{ pid: number; applied: string[] }> {
  const child = fork(childFile(), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [], serialization: 'json' });
  const request: CreateRequest = { dir, sharedBuffers: o.sharedBuffers, settings: o.settings ? [...o.settings] : undefined };
  let reply: CreateReply | undefined;
  const exited = new Promise<number | string>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(signal ?? code ?? 0));
  });
  child.on('message', (m: CreateReply) => (reply = m));
  child.send(request);
  const end = await exited;
  if (reply?.t === 'created') return { pid: child.pid!, applied: reply.applied };
  if (reply?.t === 'failed' && reply.code) throw new MssError(reply.code, reply.details);
  throw new MssError('DB_UNREACHABLE', { target: `embedded PGlite at ${dir}`, reason: `creating it failed in process ${child.pid} (${reply?.t === 'failed' ? reply.message : `exit ${end}`})` });
}
