// A pure scanner of what Dovecot sends after login. The bytes themselves go to the client
// untouched; the scanner only reports the few things the tracer needs — tagged
// completions, continuation requests, EXPUNGE/VANISHED, BYE — and skips literals (message
// bodies) by count, so a 50 MB FETCH costs a few comparisons, not a copy.

export type ServerEvent =
  | { type: 'continuation' }
  | { type: 'tagged'; tag: string; status: 'OK' | 'NO' | 'BAD'; text: string }
  | { type: 'expunge' }
  | { type: 'vanished' }
  | { type: 'bye'; text: string };

/** Enough of a response's first line to classify it; the rest is never kept. */
const HEAD = 200;
/** Enough of a line's end to see a literal announcement {n} / ~{n}. */
const TAIL = 32;
const LITERAL_AT_END = /~?\{(\d{1,20})\}$/;

export class ResponseScanner {
  private head = '';
  private tail = '';
  private literalLeft = 0;
  /** True after a literal: the same response goes on, its head is already known. */
  private continuing = false;

  push(chunk: Buffer): ServerEvent[] {
    const out: ServerEvent[] = [];
    let i = 0;
    while (i < chunk.length) {
      if (this.literalLeft) {
        const n = Math.min(this.literalLeft, chunk.length - i);
        this.literalLeft -= n;
        i += n;
        continue;
      }
      const nl = chunk.indexOf(10, i);
      const end = nl < 0 ? chunk.length : nl;
      if (!this.continuing && this.head.length < HEAD) this.head += chunk.toString('latin1', i, Math.min(end, i + HEAD - this.head.length));
      this.tail = (this.tail + chunk.toString('latin1', Math.max(i, end - TAIL), end)).slice(-TAIL);
      if (nl < 0) break;
      i = nl + 1;
      const tail = this.tail.replace(/\r$/, '');
      this.tail = '';
      const lit = LITERAL_AT_END.exec(tail);
      if (lit) {
        this.literalLeft = Number(lit[1]);
        this.continuing = true;
        continue;
      }
      const ev = classify(this.head.replace(/\r$/, ''));
      if (ev) out.push(ev);
      this.head = '';
      this.continuing = false;
    }
    return out;
  }
}

function classify(line: string): ServerEvent | null {
  if (line.startsWith('+')) return { type: 'continuation' };
  if (line.startsWith('* ')) {
    if (/^\* \d+ EXPUNGE\b/i.test(line)) return { type: 'expunge' };
    if (/^\* VANISHED /i.test(line) && !/^\* VANISHED \(EARLIER\)/i.test(line)) return { type: 'vanished' };
    if (/^\* BYE\b/i.test(line)) return { type: 'bye', text: line.slice(6) };
    return null;
  }
  const m = /^(\S+) (OK|NO|BAD)\b ?(.*)$/i.exec(line);
  return m ? { type: 'tagged', tag: m[1], status: m[2].toUpperCase() as 'OK' | 'NO' | 'BAD', text: m[3] } : null;
}
