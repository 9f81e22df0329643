// Progress on stderr: a redrawn bar on a terminal, a plain line every few seconds when
// the output is a log file or a pipe (no carriage returns in logs).

export interface Progress {
  start(label: string, total: number): void;
  update(bytes: number, lines: number): void;
  phase(text: string): void;
  done(): void;
}

export const silentProgress: Progress = { start() {}, update() {}, phase() {}, done() {} };

export function stderrProgress(stream: NodeJS.WriteStream = process.stderr, intervalMs?: number): Progress {
  const tty = stream.isTTY === true;
  const every = intervalMs ?? (tty ? 100 : 5000);
  let label = '';
  let total = 0;
  let last = 0;
  let t0 = 0;
  let drawn = false;
  const fmt = (n: number) => n.toLocaleString('en-US');
  const line = (bytes: number, lines: number) => {
    const pct = total > 0 ? Math.min(100, (bytes / total) * 100) : 0;
    const secs = (Date.now() - t0) / 1000;
    const rate = secs > 0 ? `${(bytes / 1e6 / secs).toFixed(1)} MB/s` : '';
    if (!tty) return `${label}: ${pct.toFixed(0)}% — ${fmt(lines)} lines, ${rate}\n`;
    const width = 30;
    const full = Math.round((pct / 100) * width);
    return `\r${label.slice(-40)} [${'#'.repeat(full)}${'-'.repeat(width - full)}] ${pct.toFixed(0).padStart(3)}% ${fmt(lines)} lines ${rate}\x1b[K`;
  };
  return {
    start(l, t) {
      label = l;
      total = t;
      t0 = last = Date.now();
    },
    update(bytes, lines) {
      const now = Date.now();
      if (now - last < every) return;
      last = now;
      stream.write(line(bytes, lines));
      drawn = tty;
    },
    phase(text) {
      if (drawn) stream.write('\n');
      drawn = false;
      stream.write(`${label}: ${text}\n`);
    },
    done() {
      if (drawn) stream.write('\n');
      drawn = false;
    },
  };
}
