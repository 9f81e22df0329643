// PGP/MIME encryption (smtp/openpgp.ts) off the platform's event loop. openpgp encrypts in
// JavaScript: a 10 MB message held the thread ~2.4 s (25 MB: ~3.7 s; measured at load 10),
// during which the MX's 250s, IMAP logins and every other delivery of the process waited.
// One worker thread, started with the first encrypted delivery, does it instead; it ends
// with the delivery worker, and does not keep the process alive while idle.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { fromRoot } from '../core/paths.js';

export interface EncryptJob {
  id: number;
  message: Uint8Array;
  armoredKey: string;
}
export type EncryptResult = { id: number; out: Uint8Array | null } | { id: number; error: string };

/** The compiled thread: in dist/ (also when running from sources: tests). */
function threadFile(): string {
  const here = fileURLToPath(import.meta.url);
  const file = here.endsWith('.ts') ? fromRoot('dist', 'smtp', 'openpgp-thread-worker.js') : join(dirname(here), 'openpgp-thread-worker.js');
  if (!existsSync(file)) throw new Error(`the OpenPGP thread ${file} is missing: build first (npx tsc)`);
  return file;
}

export class PgpMimeThread {
  private worker?: Worker;
  private next = 0;
  private readonly pending = new Map<number, { resolve: (b: Buffer | null) => void; reject: (e: Error) => void }>();

  /** What encryptToPgpMime(message, armoredKey) returns, computed on the thread. */
  encrypt(message: Buffer, armoredKey: string): Promise<Buffer | null> {
    const w = (this.worker ??= this.start());
    const id = ++this.next;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.ref();
      w.postMessage({ id, message, armoredKey } satisfies EncryptJob);
    });
  }

  async stop(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
  }

  private start(): Worker {
    const w = new Worker(threadFile(), { execArgv: [] });
    const settle = (m: EncryptResult) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (!this.pending.size) w.unref();
      if ('error' in m) p.reject(new Error(m.error));
      else p.resolve(m.out && Buffer.from(m.out.buffer, m.out.byteOffset, m.out.byteLength));
    };
    // A thread that died takes its jobs with it: each fails (the delivery keeps the mail and
    // retries), and the next encryption starts a new thread.
    const died = (e: Error) => {
      if (this.worker === w) this.worker = undefined;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    w.on('message', settle);
    w.on('error', died);
    w.on('exit', (code) => died(new Error(`the OpenPGP encryption thread ended (exit code ${code})`)));
    return w;
  }
}
