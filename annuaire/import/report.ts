// The reject report: one line per rejected input line, `file:line<TAB>reason<TAB>excerpt`,
// written as it goes (a file with a million bad lines must not fill memory), and the
// per-file summaries appended at the end. Plain text, so `grep`, `cut` and a spreadsheet
// all read it.
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

const FLUSH_AT = 64 * 1024;
const EXCERPT = 160;

export interface RejectSink {
  /** Where the report is written, when it is a file (named in the journal of a failed import). */
  readonly path?: string;
  reject(file: string, line: number, reason: string, text: string): void;
  note(text: string): void;
}

export class RejectReport implements RejectSink {
  private fd: number;
  private buf = '';
  rejected = 0;

  constructor(readonly path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.fd = openSync(path, 'w');
    this.buf = `# mss annuaire import — ${new Date().toISOString()}\n# file:line\treason\tline (first ${EXCERPT} characters)\n`;
  }

  reject(file: string, line: number, reason: string, text: string) {
    this.rejected++;
    const excerpt = text.length > EXCERPT ? text.slice(0, EXCERPT) + '…' : text;
    this.buf += `${file}:${line}\t${reason}\t${excerpt.replace(/[\t\r\n]/g, ' ')}\n`;
    if (this.buf.length >= FLUSH_AT) this.flush();
  }

  note(text: string) {
    this.buf += text.replace(/^/gm, '# ') + '\n';
    if (this.buf.length >= FLUSH_AT) this.flush();
  }

  private flush() {
    if (this.buf) writeSync(this.fd, this.buf);
    this.buf = '';
  }

  /** Idempotent: the command and a test may both close it. */
  close() {
    if (this.fd < 0) return;
    this.flush();
    closeSync(this.fd);
    this.fd = -1;
  }
}

/** `<dir>/annuaire-import-20240301-081500.tsv` */
export function defaultReportName(now = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `annuaire-import-${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}-${p(now.getHours())}${p(now.getMinutes())}${p(now.getSeconds())}.tsv`;
}
