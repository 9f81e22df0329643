// Where the lines and fields of a block lie, found ahead of the line splitter (on the
// reading thread: read-thread.ts). Finding every `|` of a 200 MB file is a pass over each
// byte — about a fifth of the importer's time on one core — and needs nothing but the
// bytes, so another core can do it while the splitter copies the previous block's fields.
//
// One record per line, in order, in an Int32Array:
//   [start, end, special, n, the offsets of its first min(n, MAX_PIPES) `|`]
// end excludes the LF (and a CR before it); special is 1 when the line holds a byte the
// splitter must not copy as is (a control character other than TAB, or U+FFFD: see
// LineSplitter.line); n counts every `|` of the line.

/** The most `|` offsets a record keeps: a line with more is not one of these files' (LineSplitter's limit too). */
export const MAX_PIPES = 1024;
/** Ints before a record's `|` offsets. */
export const RECORD_HEAD = 4;

const LF = 0x0a;
const CR = 0x0d;
const PIPE = 0x7c;

/** The records of `block` (whole lines, each ending with LF) in ix[0, length). */
export function indexLines(block: Uint8Array): { ix: Int32Array<ArrayBuffer>; length: number } {
  let ix = new Int32Array((block.length >> 2) + 1024);
  let at = 0;
  let s = 0;
  while (s < block.length) {
    let nl = block.indexOf(LF, s);
    if (nl < 0) nl = block.length;
    const e = nl > s && block[nl - 1] === CR ? nl - 1 : nl;
    // Room for the worst case of this line, so the loop below need not check.
    const need = at + RECORD_HEAD + Math.min(e - s, MAX_PIPES);
    if (need > ix.length) {
      const grown = new Int32Array(Math.max(need, 2 * ix.length));
      grown.set(ix.subarray(0, at));
      ix = grown;
    }
    const head = at;
    at += RECORD_HEAD;
    let n = 0;
    let special = 0;
    for (let i = s; i < e; i++) {
      const c = block[i];
      if (c === PIPE) {
        if (n < MAX_PIPES) ix[at++] = i;
        n++;
      } else if ((c < 0x20 && c !== 0x09) || (c === 0xef && block[i + 1] === 0xbf && block[i + 2] === 0xbd)) special = 1;
    }
    ix[head] = s;
    ix[head + 1] = e;
    ix[head + 2] = special;
    ix[head + 3] = n;
    s = nl + 1;
  }
  return { ix, length: at };
}

/** The record after the one at k. */
export function nextRecord(ix: Int32Array, k: number): number {
  return k + RECORD_HEAD + Math.min(ix[k + 3], MAX_PIPES);
}
