import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

// The journal's mark outside its database. Inside the database every event and seal is
// chained to the one before, which catches any change — except removing the newest events
// together with their seals and moving the head back: what is left is a shorter journal
// that is perfectly consistent. So each seal also writes, in a file of the data directory,
// the last seq it covers and the hash of what was timestamped; verify wants that seal to
// be in the database. Someone who can rewrite the database (a DBA, a stolen backup) but
// not the platform's files is caught; copy the file elsewhere to raise the bar further.

export interface Anchor {
  /** Last event covered by the newest seal this node made. */
  lastSeq: number;
  /** SHA-256 (hex) of that seal's stamped text. */
  seal: string;
}

export function readAnchor(file: string): Anchor | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const a = JSON.parse(text) as Partial<Anchor>;
  if (!Number.isSafeInteger(a.lastSeq) || typeof a.seal !== 'string' || !/^[0-9a-f]{64}$/.test(a.seal)) throw new Error(`${file} is not a journal anchor`);
  return a as Anchor;
}

/**
 * Records a seal, unless the file already names a later one (several processes — the
 * platform, an `mss` command — may seal the same journal). Written to a temporary file
 * and renamed: a reader never sees half of it.
 */
export function writeAnchor(file: string, a: Anchor): void {
  let current: Anchor | undefined;
  try {
    current = readAnchor(file);
  } catch {
    current = undefined; // unreadable: replaced by a good one
  }
  if (current && current.lastSeq > a.lastSeq) return;
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(a) + '\n', { mode: 0o640 });
  renameSync(tmp, file);
}
