// The journal corpus's context: the real `mss` CLI on a data directory of its own (the dev
// PKI, the embedded database), with the platform stopped — what an operator's commands
// and an intruder with access to the files can do. A case works on a copy of the base
// directory, forges it through PGlite when it is a forgery, and reads `mss journal verify`.
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { openPglite, type Db } from '../../core/db/index.js';
import { childEnv, mssBin, runMss } from '../helpers/mss.js';
import { procRss, type Outcome } from './harness.js';
import { domaine } from './whitelist.js';

export interface JournalCtx {
  /** A copy of the base data directory (its journal as the CLI left it). */
  copy(): string;
  /** `mss …` on that directory; the Outcome is "exit N" and the first line it printed (stdout, else stderr). */
  mss(dir: string, args: string[]): Outcome;
  verify(dir: string): Promise<Outcome>;
  /** A liste blanche newer than every one imported so far, with `n` domains, written to a file. */
  newerList(n?: number): string;
  /** Changes the database of `dir` directly (no process may hold it meanwhile). */
  forge(dir: string, fn: (db: Db) => Promise<void>): Promise<void>;
}

export const ENV = { MSS_LOG_LEVEL: 'warn' };

const firstLine = (r: { code: number | null; stdout: string; stderr: string }) => ({ code: `exit ${r.code}`, text: (r.stdout.trim() || r.stderr.trim()).split('\n')[0].replace(/^mss: /, '') });

/** Peak RSS of the last `mss journal verify`, sampled from /proc while it ran (VmHWM only grows). */
let verifyPeak = 0;

/** `mss journal verify` in a child process whose peak RSS is read from /proc while it runs. */
function verifyWithPeak(dir: string): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [mssBin, 'journal', 'verify', '--data-dir', dir], { env: childEnv(ENV), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let peak = 0;
    const sample = setInterval(() => (peak = Math.max(peak, procRss(child.pid, 'VmHWM'))), 20);
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('exit', (code) => {
      clearInterval(sample);
      verifyPeak = peak;
      resolve(firstLine({ code, stdout, stderr }));
    });
  });
}


export interface JournalServer extends JournalCtx {
  serves(): Promise<void>;
  nothingLost(): Promise<void>;
  /** Peak RSS of the last `mss journal verify` run. */
  rss(): number;
}

export async function journalCtx(): Promise<JournalServer> {
  const work = mkdtempSync(join(tmpdir(), 'mss-hostile-journal-'));
  const base = join(work, 'base');
  let minute = 0;
  let lists = 0;
  const ctx: JournalCtx = {
    copy() {
      const dir = join(work, `case-${++lists}`);
      cpSync(base, dir, { recursive: true });
      return dir;
    },
    mss: (dir, args) => firstLine(runMss([...args, '--data-dir', dir], ENV)),
    verify: (dir) => verifyWithPeak(dir),
    newerList(n = 2) {
      const file = join(work, `liste-${++minute}.xml`);
      const date = new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString().slice(0, 19);
      writeFileSync(file, `<?xml version="1.0" encoding="UTF-8"?>\n<ListeBlanche xmlns="https://listeblanche.mssante.fr/schema"><DateDeGeneration>${date}</DateDeGeneration><Domaines>${Array.from({ length: n }, (_, i) => domaine(`op${minute}-${i}.mssante.fr`)).join('')}</Domaines></ListeBlanche>\n`);
      return file;
    },
    async forge(dir, fn) {
      const db = await openPglite(join(dir, 'db'));
      try {
        await fn(db);
      } finally {
        await db.close();
      }
    },
  };
  // The base: a dev PKI, then one CLI command that journals (a liste blanche import).
  const init = runMss(['certs', 'init', '--dir', join(base, 'pki'), '--domain', 'mssante.localhost'], ENV);
  if (init.code !== 0) throw new Error(`mss certs init: ${init.stderr}`);
  const first = ctx.mss(base, ['whitelist', 'import', ctx.newerList(3)]);
  if (first.code !== 'exit 0') throw new Error(`mss whitelist import: ${first.text}`);
  let events = 0;
  const server: JournalServer = {
    ...ctx,
    /** The base directory's journal still verifies, with at least the events it had. */
    async serves() {
      const o = await ctx.verify(base);
      expect(`${o.code} ${o.text}`).toMatch(/^exit 0 journal OK: \d+ events/);
      const n = Number(/journal OK: (\d+) events/.exec(o.text)![1]);
      expect(n).toBeGreaterThanOrEqual(events);
      events = n;
    },
    async nothingLost() {
      expect(events).toBeGreaterThanOrEqual(4);
      await server.serves();
    },
    rss: () => verifyPeak,
  };
  return server;
}
