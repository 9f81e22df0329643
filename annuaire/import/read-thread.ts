// Reading an extraction on a thread of its own. The importer's one thread read, hashed,
// decoded and split every byte; splitting is the only part that needs the splitter's state
// (the person of the current run of lines, the structures seen, the output buffers). So the
// thread hashes the bytes (SHA-256, for the journal), decodes them into blocks of whole
// lines and finds every line's `|` (line-index.ts); the importer's thread takes the blocks
// with their index and only copies fields. On two cores the sync of a 500,000-line file
// (bench/annuaire-import) read ~2.5 s on one thread, most of it these passes.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { fromRoot } from '../../core/paths.js';
import { MssError } from '../../core/errors.js';
import { BadLine, type Encoding } from './decode.js';
import { nextRecord } from './line-index.js';

export interface ReadRequest {
  /** A chunk of the file, or none: the end. */
  chunk?: Uint8Array;
}

/** Records [from, to) of a reply's data, or a line that could not be decoded. */
export type ReadPart = { from: number; to: number } | { bad: string; lenient: string };

export type ReadReply =
  | {
      /** Bytes of the file this reply covers (progress). */
      bytes: number;
      /** The chunk's complete lines, decoded to UTF-8. */
      data: Uint8Array;
      /** Their records (line-index.ts). */
      ix: Int32Array;
      /** In order. */
      parts: ReadPart[];
      encoding: Encoding | undefined;
      /** With the reply to the end. */
      sha256?: string;
    }
  | { error: string };

/** Lines of a file as they come: records [k, to) of one decoded block. */
export interface Block {
  data: Buffer;
  ix: Int32Array;
  k: number;
  to: number;
}

/** Chunks handed to the thread and not answered yet: enough to keep it busy, few MB held. */
const IN_FLIGHT = 4;

/** The compiled thread: in dist/ (also when running from sources: tests). */
function threadFile(): string {
  const here = fileURLToPath(import.meta.url);
  const file = here.endsWith('.ts') ? fromRoot('dist', 'annuaire', 'import', 'read-thread-worker.js') : join(dirname(here), 'read-thread-worker.js');
  if (!existsSync(file)) throw new Error(`the annuaire reading thread ${file} is missing: build first (npx tsc)`);
  return file;
}

/** Blocks of lines (with their index) and undecodable lines of a byte stream, in order; the bytes' SHA-256. */
export class ThreadedReader {
  encoding: Encoding | undefined;
  /** Bytes of the file decoded so far. */
  bytes = 0;
  private hash: string | undefined;
  private readonly queue: Array<Block | BadLine> = [];
  private readonly worker: Worker;
  private inFlight = 0;
  private ended = false;
  private failure: MssError | undefined;
  private wakeReader: (() => void) | undefined;
  private wakePump: (() => void) | undefined;

  constructor(
    private readonly stream: Readable,
    private readonly label: string,
  ) {
    this.worker = new Worker(threadFile(), { execArgv: [] });
    this.worker.on('message', (r: ReadReply) => this.receive(r));
    this.worker.on('error', (e) => this.fail(e.message));
    this.worker.on('exit', (code) => {
      if (!this.ended) this.fail(`the reading thread ended (exit code ${code})`);
    });
    void this.pump();
  }

  /** SHA-256 of the bytes, once they are all read. */
  sha256(): string {
    if (this.hash === undefined) throw new Error('the file is not read to its end');
    return this.hash;
  }

  /** The first line as text (the header); the rest stays queued. */
  async headerLine(): Promise<string | BadLine | undefined> {
    const b = await this.next();
    if (b === undefined || b instanceof BadLine) return b;
    const text = b.data.toString('utf8', b.ix[b.k], b.ix[b.k + 1]);
    b.k = nextRecord(b.ix, b.k);
    if (b.k < b.to) this.queue.unshift(b);
    return text;
  }

  async next(): Promise<Block | BadLine | undefined> {
    for (;;) {
      const b = this.queue.shift();
      if (b) return b;
      if (this.failure) throw this.failure;
      if (this.ended) return undefined;
      await new Promise<void>((r) => (this.wakeReader = r));
    }
  }

  /** Stops the thread (the file read or given up). */
  close(): void {
    this.ended = true;
    void this.worker.terminate();
    this.wakePump?.();
  }

  private async pump() {
    try {
      for await (const chunk of this.stream as AsyncIterable<Buffer>) {
        while (this.inFlight >= IN_FLIGHT && !this.ended) await new Promise<void>((r) => (this.wakePump = r));
        if (this.ended) return;
        // A copy, handed over without a second one: the stream may own the chunk's memory.
        const copy = new Uint8Array(chunk);
        this.inFlight++;
        this.worker.postMessage({ chunk: copy } satisfies ReadRequest, [copy.buffer]);
      }
      if (this.ended) return;
      this.inFlight++;
      this.worker.postMessage({} satisfies ReadRequest);
    } catch (e) {
      this.fail((e as Error).message, e);
    }
  }

  private receive(r: ReadReply) {
    if ('error' in r) return this.fail(r.error);
    this.inFlight--;
    this.bytes += r.bytes;
    this.encoding = r.encoding;
    const data = Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength);
    for (const p of r.parts) {
      if ('bad' in p) this.queue.push(new BadLine(p.bad, p.lenient));
      else if (p.to > p.from) this.queue.push({ data, ix: r.ix, k: p.from, to: p.to });
    }
    if (r.sha256 !== undefined) {
      this.hash = r.sha256;
      this.ended = true;
      void this.worker.terminate();
    }
    this.wakePump?.();
    this.wakePump = undefined;
    this.wakeReader?.();
    this.wakeReader = undefined;
  }

  private fail(reason: string, cause?: unknown) {
    if (this.failure || (this.ended && this.hash !== undefined)) return;
    this.failure = new MssError('ANNUAIRE_READ_FAILED', { file: this.label, reason }, { cause });
    this.ended = true;
    void this.worker.terminate();
    this.wakeReader?.();
    this.wakeReader = undefined;
  }
}
