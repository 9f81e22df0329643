// How `mss backup` gets a consistent copy of the embedded database while the platform runs.
// PGlite belongs to one process (the platform holds its lock), so the command asks that
// process, over a unix socket in the data directory: only the data directory's owner (and
// root) can reach it — who can read every file of the data directory anyway, keys included,
// which a backup needs. Nothing else is served on it: one request, `dump-database`, answered
// by one JSON line and the image's bytes (see Db.dumpDataDir: a tar taken between
// transactions, with the journal head read from that same state).
import { createHash } from 'node:crypto';
import { chmodSync, createWriteStream, mkdirSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Db } from '../db/index.js';
import type { Journal } from '../journal/index.js';
import type { Logger } from '../logger.js';

export interface JournalHead {
  seq: number;
  hash: string;
  /** Last event covered by a seal in that state (events after it are sealed at the next start, or by `mss restore`). */
  sealedSeq: number;
}

/** What the image holds of the journal: read in the same state as the image. */
export const JOURNAL_HEAD_SQL = 'SELECT (SELECT seq FROM journal_head) AS seq, (SELECT hash FROM journal_head) AS hash, coalesce((SELECT max(last_seq) FROM journal_seals), 0) AS "sealedSeq"';

export const headOf = (row: Record<string, unknown>): JournalHead => ({ seq: Number(row.seq), hash: String(row.hash), sealedSeq: Number(row.sealedSeq) });

/** Where the socket is: a unix socket path may not exceed 107 bytes, so a deep data directory gets one under tmp. */
export function controlSocketPath(dataDir: string): string {
  const p = join(dataDir, 'run', 'backup.sock');
  return p.length <= 100 ? p : join(tmpdir(), `mss-backup-${createHash('sha256').update(dataDir).digest('hex').slice(0, 12)}.sock`);
}

/** Served by the platform on the embedded database (bin/platform.ts). */
export async function startBackupControl(o: { dataDir: string; db: Db; journal: Journal; log: Logger }): Promise<{ stop(): Promise<void> }> {
  const file = controlSocketPath(o.dataDir);
  mkdirSync(join(file, '..'), { recursive: true, mode: 0o700 });
  rmSync(file, { force: true }); // left by a process that died: the data directory's lock already says we own it
  const server = createServer((sock) => void serve(sock, o));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(file, () => resolve());
  });
  chmodSync(file, 0o600);
  return {
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        rmSync(file, { force: true });
      }),
  };
}

async function serve(sock: Socket, o: { db: Db; journal: Journal; log: Logger }) {
  sock.on('error', () => {});
  // One line; leaving a for-await loop would destroy the socket, so the request is read by hand.
  const line = await new Promise<string>((resolve) => {
    let got = '';
    const onData = (c: Buffer) => {
      got += c.toString('utf8');
      if (!got.includes('\n') && got.length <= 1024) return;
      sock.off('data', onData);
      resolve(got);
    };
    sock.on('data', onData);
    sock.once('end', () => resolve(got));
  });
  let request: { op?: string };
  try {
    request = JSON.parse(line.split('\n')[0]);
  } catch {
    request = {};
  }
  if (request.op !== 'dump-database') {
    sock.end(JSON.stringify({ ok: false, error: 'unknown request (expected {"op":"dump-database"})' }) + '\n');
    return;
  }
  try {
    const started = Date.now();
    const { tar, rows } = await o.db.background().dumpDataDir!(JOURNAL_HEAD_SQL);
    const journal = headOf(rows[0]);
    o.log.info({ bytes: tar.length, journalSeq: journal.seq, ms: Date.now() - started }, 'embedded database image taken for a backup');
    await o.journal.append({ type: 'backup.database.dumped', actor: 'system', details: { bytes: tar.length, journalSeq: journal.seq, journalHash: journal.hash } }).catch((e) => o.log.warn({ err: e }, 'could not journal the backup'));
    sock.write(JSON.stringify({ ok: true, bytes: tar.length, journal }) + '\n');
    sock.end(Buffer.from(tar.buffer, tar.byteOffset, tar.byteLength));
  } catch (e) {
    o.log.error({ err: e }, 'could not take an image of the embedded database for a backup');
    sock.end(JSON.stringify({ ok: false, error: (e as Error).message }) + '\n');
  }
}

/**
 * Asks the running platform for an image and writes it, gzipped, to `out`. Resolves null
 * when no platform answers on the socket (none running: the caller opens the database itself).
 */
export async function dumpThroughPlatform(dataDir: string, out: string): Promise<{ journal: JournalHead; bytes: number } | null> {
  const file = controlSocketPath(dataDir);
  const sock = await new Promise<Socket | null>((resolve, reject) => {
    const s = createConnection(file);
    s.once('connect', () => resolve(s));
    s.once('error', (e: NodeJS.ErrnoException) => (e.code === 'ENOENT' || e.code === 'ECONNREFUSED' ? resolve(null) : reject(e)));
  });
  if (!sock) return null;
  sock.write(JSON.stringify({ op: 'dump-database' }) + '\n');
  // The header line, then the image: the rest of the stream goes to the gzip as it comes.
  const header = await new Promise<{ ok: boolean; error?: string; bytes?: number; journal?: JournalHead; rest: Buffer }>((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const nl = buf.indexOf(10);
      if (nl < 0) return;
      sock.off('data', onData);
      sock.pause();
      try {
        resolve({ ...JSON.parse(buf.subarray(0, nl).toString('utf8')), rest: buf.subarray(nl + 1) });
      } catch (e) {
        reject(e);
      }
    };
    sock.on('data', onData);
    sock.once('error', reject);
    sock.once('end', () => reject(new Error('the platform closed the connection without answering')));
  });
  if (!header.ok) throw new Error(`the running platform could not take an image of its database: ${header.error}`);
  const gzip = createGzip({ level: 6 });
  gzip.write(header.rest);
  let got = header.rest.length;
  sock.on('data', (c: Buffer) => (got += c.length));
  await pipeline(sock, gzip, createWriteStream(out, { mode: 0o600 }));
  if (got !== header.bytes) throw new Error(`the image was cut short: ${got} of ${header.bytes} bytes`);
  return { journal: header.journal!, bytes: got };
}
