// The reading thread of read-thread.ts: hashes the file's bytes, decodes them into blocks of
// whole lines (decode.ts) and indexes their lines and fields (line-index.ts). One reply
// per chunk, in order.
import { createHash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';
import { BadLine, BlockDecoder, type Segment } from './decode.js';
import { indexLines, nextRecord } from './line-index.js';
import type { ReadPart, ReadReply, ReadRequest } from './read-thread.js';

const port = parentPort!;
const decoder = new BlockDecoder();
const hash = createHash('sha256');

port.on('message', (m: ReadRequest) => {
  try {
    let segments: Segment[];
    if (m.chunk) {
      const b = Buffer.from(m.chunk.buffer, m.chunk.byteOffset, m.chunk.byteLength);
      hash.update(b);
      segments = decoder.push(b);
    } else segments = decoder.end();
    // The blocks of this chunk in one buffer (sent, not copied), with the bad lines between them.
    const blocks = segments.filter((s): s is Buffer => !(s instanceof BadLine));
    const data = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
    const parts: ReadPart[] = [];
    let at = 0;
    let k = 0;
    let ix = new Int32Array(0);
    let length = 0;
    if (data.length) {
      for (const b of blocks) {
        data.set(b, at);
        at += b.length;
      }
      ({ ix, length } = indexLines(data));
    }
    // Where each block's records end: the blocks are whole lines, so their records follow one another.
    at = 0;
    for (const s of segments) {
      if (s instanceof BadLine) parts.push({ bad: s.reason, lenient: s.lenient });
      else {
        at += s.length;
        const from = k;
        while (k < length && ix[k] < at) k = nextRecord(ix, k);
        parts.push({ from, to: k });
      }
    }
    const reply: ReadReply = { bytes: m.chunk?.byteLength ?? 0, data, ix, parts, encoding: decoder.encoding, sha256: m.chunk ? undefined : hash.digest('hex') };
    port.postMessage(reply, [data.buffer, ix.buffer]);
  } catch (e) {
    port.postMessage({ error: e instanceof Error ? e.message : String(e) } satisfies ReadReply);
  }
});
