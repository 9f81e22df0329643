// Bytes → UTF-8 blocks of whole lines, with the encoding detected from the file itself. The
// national files are UTF-8 in most extractions and Windows-1252 in at least one: a BOM says
// UTF-8; else the first line holding non-ASCII bytes decides (the headers of both files
// hold "é", so in practice the header line decides). Lines that are not valid in the
// detected encoding come out as BadLine and are rejected by the caller — never silently
// mangled. The importer works on the bytes (BlockDecoder): a valid UTF-8 block is passed on
// as it came, never turned into JS strings; LineDecoder gives strings, for the header and
// for tests.
import { isUtf8 } from 'node:buffer';
import iconv from 'iconv-lite';

export type Encoding = 'UTF-8' | 'UTF-8 with BOM' | 'Windows-1252';

export class BadLine {
  constructor(
    readonly reason: string,
    /** The line decoded leniently (bad bytes as U+FFFD): enough for an excerpt and the ASCII identifiers. */
    readonly lenient: string,
  ) {}
}

export type Line = string | BadLine;

/** UTF-8 bytes of whole lines, each ending with LF (CRLF kept), or one line that is not valid. */
export type Segment = Buffer | BadLine;

/** A line longer than this is not a line of these files (each is well under 2 KiB). */
export const MAX_LINE_BYTES = 1 << 20;

const NL = 0x0a;

const firstHighByte = (b: Buffer) => {
  for (let i = 0; i < b.length; i++) if (b[i] >= 0x80) return i;
  return -1;
};

export class BlockDecoder {
  encoding: Encoding | undefined;
  private tail: Buffer = Buffer.alloc(0);
  private started = false;
  /** Skipping the rest of an over-long line. */
  private skipping = false;

  /** Feeds a chunk; returns the segments it completes. */
  push(chunk: Buffer): Segment[] {
    const out: Segment[] = [];
    if (this.tail.length && this.started && !this.skipping) {
      // Complete the pending line with the head of this chunk — copying that line only, not
      // the whole chunk — and go on with the rest of the chunk as it is.
      const nl = chunk.indexOf(NL);
      if (nl >= 0 && nl + 1 < chunk.length) {
        this.take(Buffer.concat([this.tail, chunk.subarray(0, nl + 1)]), out);
        this.take(chunk.subarray(nl + 1), out);
        return out;
      }
    }
    this.take(this.tail.length ? Buffer.concat([this.tail, chunk]) : chunk, out);
    return out;
  }

  /** Bytes following the pending tail (already joined to it): completes what it can into `out`. */
  private take(data: Buffer, out: Segment[]) {
    if (!this.started) {
      if (data.length < 3) {
        this.tail = Buffer.from(data);
        return;
      }
      this.started = true;
      if (data[0] === 0xef && data[1] === 0xbb && data[2] === 0xbf) {
        this.encoding = 'UTF-8 with BOM';
        data = data.subarray(3);
      }
    }
    if (this.skipping) {
      const nl = data.indexOf(NL);
      if (nl < 0) {
        this.tail = Buffer.alloc(0);
        return;
      }
      this.skipping = false;
      out.push(new BadLine(`line longer than ${MAX_LINE_BYTES} bytes`, ''));
      data = data.subarray(nl + 1);
    }
    const last = data.lastIndexOf(NL);
    if (last < 0) {
      if (data.length > MAX_LINE_BYTES) {
        this.skipping = true;
        this.tail = Buffer.alloc(0);
      } else this.tail = Buffer.from(data);
      return;
    }
    // Copy the remainder: keeping a subarray would pin the whole chunk in memory.
    this.tail = Buffer.from(data.subarray(last + 1));
    this.decodeBlock(data.subarray(0, last + 1), out);
  }

  /** Whatever is left after the last newline (a file need not end with one). */
  end(): Segment[] {
    const out: Segment[] = [];
    const t = this.tail;
    if (this.skipping) out.push(new BadLine(`line longer than ${MAX_LINE_BYTES} bytes`, ''));
    // A file under 3 bytes is all tail, LF included: no line to end then (found by fuzzing:
    // "a\n" came out as two lines).
    else if (t.length) this.decodeBlock(t[t.length - 1] === NL ? t : Buffer.concat([t, Buffer.from([NL])]), out);
    this.tail = Buffer.alloc(0);
    return out;
  }

  /** `block` holds whole lines, each ending with LF. */
  private decodeBlock(block: Buffer, out: Segment[]) {
    if (this.encoding === undefined) {
      // The first line with a byte ≥ 0x80 decides: valid UTF-8, else Windows-1252. That line
      // alone, wherever the chunk ended (found by fuzzing: judging the whole block when its
      // first line was ASCII made the answer depend on how the file was chunked).
      const hi = firstHighByte(block);
      if (hi >= 0) this.encoding = isUtf8(block.subarray(block.lastIndexOf(NL, hi) + 1, block.indexOf(NL, hi) + 1)) ? 'UTF-8' : 'Windows-1252';
      // Still pure ASCII: both encodings read it the same; decide later.
    }
    if (this.encoding === 'Windows-1252') {
      // The five bytes Windows-1252 leaves undefined decode to U+FFFD; the line splitter rejects those lines.
      out.push(Buffer.from(iconv.decode(block, 'win1252'), 'utf8'));
      return;
    }
    // Fast path: the whole block is valid UTF-8 (the usual case), passed on as it is.
    if (isUtf8(block)) {
      out.push(block);
      return;
    }
    let start = 0;
    let good = 0;
    while (start < block.length) {
      const nl = block.indexOf(NL, start);
      const line = block.subarray(start, nl);
      if (!isUtf8(line)) {
        if (start > good) out.push(block.subarray(good, start));
        out.push(new BadLine('bad encoding: not valid UTF-8 (the rest of the file is UTF-8)', line.toString('utf8').replace(/\r$/, '')));
        good = nl + 1;
      }
      start = nl + 1;
    }
    if (block.length > good) out.push(block.subarray(good));
  }
}

/** Calls fn(start, end) for each line of a block (end excludes CR LF). */
export function forEachLine(block: Buffer, fn: (start: number, end: number) => void): void {
  let s = 0;
  while (s < block.length) {
    const nl = block.indexOf(NL, s);
    const e = nl > s && block[nl - 1] === 0x0d ? nl - 1 : nl;
    fn(s, e);
    s = nl + 1;
  }
}

/** Lines as strings: the header, and tests. */
export class LineDecoder {
  private d = new BlockDecoder();

  get encoding(): Encoding | undefined {
    return this.d.encoding;
  }

  push(chunk: Buffer): Line[] {
    return toLines(this.d.push(chunk));
  }

  end(): Line[] {
    return toLines(this.d.end());
  }
}

function toLines(segments: Segment[]): Line[] {
  const out: Line[] = [];
  for (const s of segments) {
    if (s instanceof BadLine) out.push(s);
    else forEachLine(s, (a, b) => out.push(s.toString('utf8', a, b)));
  }
  return out;
}
