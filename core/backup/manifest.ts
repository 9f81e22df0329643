// A backup set's manifest: every file of the set with its size and SHA-256, what the set
// holds (database kind, journal position, boxes, files from outside the data directory),
// sealed by an RFC 3161 timestamp token over the manifest's bytes (manifest.tsr) from the
// journal's own timestamping authority. A restore checks the seal, then every file, before
// it touches anything: a file changed, missing or added, or a manifest edited, and the set
// is refused with the file and what is wrong.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MssError } from '../errors.js';
import type { Timestamper, TokenVerifier } from '../journal/index.js';
import type { JournalHead } from './control.js';
import type { DbKind } from './database.js';
import { walk } from './files.js';

export const MANIFEST = 'manifest.json';
export const SEAL = 'manifest.tsr';
export const FORMAT = 'mss-backup/1';

export interface ManifestFile {
  path: string;
  size: number;
  sha256: string;
}

export interface Manifest {
  format: typeof FORMAT;
  startedAt: string;
  finishedAt: string;
  version: string;
  operator: string;
  /** The data directory it was taken from. */
  dataDir: string;
  database: { kind: DbKind; file: string; how: string };
  /** The journal in the database of the set: its head (seq, hash) and the last sealed event. */
  journal: JournalHead;
  mail: { boxes: string[]; how: string; runs: number };
  /** Files named by settings outside the data directory (absolute paths), kept under files/external. */
  external: string[];
  /** The configuration file, if any; the MSS_* environment of the backup (secrets masked) for reference. */
  config: { file?: string; environment: Record<string, string> };
  files: ManifestFile[];
}

export function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file)
      .on('data', (d) => h.update(d))
      .on('end', () => resolve(h.digest('hex')))
      .on('error', reject);
  });
}

const setFiles = (setDir: string) => walk(setDir, (rel) => rel === MANIFEST || rel === SEAL);

/** The previous run's manifest, for an incremental run (unchecked: it is replaced). */
export function previousManifest(setDir: string): Manifest | undefined {
  try {
    return JSON.parse(readFileSync(join(setDir, MANIFEST), 'utf8')) as Manifest;
  } catch {
    return undefined;
  }
}

/** A run starts by removing the seal: a run that stops half-way leaves a set no restore takes. */
export function unseal(setDir: string) {
  rmSync(join(setDir, SEAL), { force: true });
  rmSync(join(setDir, MANIFEST), { force: true });
}

export async function writeManifest(setDir: string, m: Omit<Manifest, 'files' | 'format'>, stamp: Timestamper, progress: (done: number, total: number) => void): Promise<Manifest> {
  const paths = setFiles(setDir);
  const files: ManifestFile[] = [];
  for (const [i, p] of paths.entries()) {
    if (i % 200 === 0) progress(i, paths.length);
    files.push({ path: p, size: statSync(join(setDir, p)).size, sha256: await sha256File(join(setDir, p)) });
  }
  progress(paths.length, paths.length);
  const manifest: Manifest = { format: FORMAT, ...m, files };
  const bytes = Buffer.from(JSON.stringify(manifest, null, 1) + '\n');
  const token = await stamp.stamp(bytes);
  writeFileSync(join(setDir, MANIFEST), bytes, { mode: 0o600 });
  writeFileSync(join(setDir, SEAL), token, { mode: 0o600 });
  return manifest;
}

/**
 * Checks a set before a restore. `verifier` null: the seal cannot be checked here (no trust
 * anchors), which the caller refuses unless told otherwise.
 */
export async function verifySet(setDir: string, verifier: (m: Manifest) => TokenVerifier, progress: (done: number, total: number) => void): Promise<Manifest> {
  const refuse = (file: string, problem: string): never => {
    throw new MssError('BACKUP_SET_INVALID', { dir: setDir, file, problem });
  };
  if (!existsSync(setDir)) refuse(setDir, 'no such directory');
  const manifestFile = join(setDir, MANIFEST);
  if (!existsSync(manifestFile)) refuse(MANIFEST, 'missing: this is not a complete backup set (a backup that did not finish leaves none)');
  const bytes = readFileSync(manifestFile);
  let m: Manifest;
  try {
    m = JSON.parse(bytes.toString('utf8')) as Manifest;
  } catch (e) {
    return refuse(MANIFEST, `not JSON (${(e as Error).message})`);
  }
  if (m?.format !== FORMAT || !Array.isArray(m.files) || !m.database || !m.journal || !m.mail) refuse(MANIFEST, `not a manifest of format ${FORMAT}`);
  if (!existsSync(join(setDir, SEAL))) refuse(SEAL, 'missing: the manifest is not sealed');
  try {
    await verifier(m).verify(readFileSync(join(setDir, SEAL)), bytes);
  } catch (e) {
    refuse(MANIFEST, `does not match its seal ${SEAL} (${(e as Error).message}): the manifest was changed after the backup, or the seal is not from this operator's timestamping authority`);
  }
  const listed = new Map(m.files.map((f) => [f.path, f]));
  for (const [i, f] of m.files.entries()) {
    if (i % 200 === 0) progress(i, m.files.length);
    const abs = join(setDir, f.path);
    const st = statSync(abs, { throwIfNoEntry: false });
    if (!st?.isFile()) refuse(f.path, 'missing (listed in the manifest)');
    if (st!.size !== f.size) refuse(f.path, `is ${st!.size} bytes, the manifest says ${f.size}: the file was cut short or changed`);
    const sum = await sha256File(abs);
    if (sum !== f.sha256) refuse(f.path, `SHA-256 ${sum} differs from the manifest's ${f.sha256}: the file was changed or damaged`);
  }
  progress(m.files.length, m.files.length);
  for (const p of setFiles(setDir)) if (!listed.has(p)) refuse(p, 'not in the manifest: added to the set after the backup');
  if (!listed.has(m.database.file)) refuse(m.database.file, 'the database dump the manifest names is not among its files');
  return m;
}
