// The thread of smtp/openpgp-thread.ts: encrypts each job as smtp/openpgp.ts does, jobs
// interleaved (openpgp's encryption is asynchronous).
import { parentPort } from 'node:worker_threads';
import { encryptToPgpMime } from './openpgp.js';
import type { EncryptJob, EncryptResult } from './openpgp-thread.js';

const port = parentPort!;
port.on('message', (job: EncryptJob) => {
  encryptToPgpMime(Buffer.from(job.message.buffer, job.message.byteOffset, job.message.byteLength), job.armoredKey).then(
    (out) => port.postMessage({ id: job.id, out } satisfies EncryptResult),
    (e: unknown) => port.postMessage({ id: job.id, error: e instanceof Error ? e.message : String(e) } satisfies EncryptResult),
  );
});
