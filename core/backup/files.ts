// The files of a backup set besides the database and the mail: the data directory's own
// files (PKI and keys, generated secrets — Dovecot's master secret, slapd's root password,
// the admin bootstrap file —, the journal's anchor, reports) and every file a setting names
// outside it (certificates and keys given by path, the configuration file). What the
// platform regenerates or rebuilds is left out: the database (dumped), the mail (dsync),
// slapd's databases (rebuilt from the annuaire), sockets, pid and lock files.
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync, chmodSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, sep } from 'node:path';
import { settings, type Config } from '../config/index.js';

export const DATA_FILES = 'files/data';
export const EXTERNAL_FILES = 'files/external';

/** True when p is root or below it. */
export const inside = (root: string, p: string) => {
  const r = relative(root, p);
  return r === '' || (!r.startsWith('..') && !isAbsolute(r));
};

/** Left out of the data directory's copy (relative paths, / separated). */
function skipped(rel: string, mailRel: string | undefined): boolean {
  return (
    rel === 'mss.lock' ||
    /^(db|run)(\/|$)/.test(rel) ||
    (mailRel !== undefined && (rel === mailRel || rel.startsWith(mailRel + '/'))) ||
    // Dovecot's configuration and master-user file are rewritten at every start (its secret is kept).
    /^dovecot\/(run|state)(\/|$)/.test(rel) ||
    rel === 'dovecot/dovecot.conf' ||
    rel === 'dovecot/master-users' ||
    /^ldap\/(run(\/|$)|db\b)/.test(rel)
  );
}

/** Regular files under dir, relative, sorted; `skip` prunes whole subtrees. */
export function walk(dir: string, skip: (rel: string) => boolean = () => false, base = dir): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const abs = join(dir, name);
    const rel = relative(base, abs).split(sep).join('/');
    if (skip(rel)) continue;
    const st = statSync(abs, { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isDirectory()) out.push(...walk(abs, skip, base));
    else if (st.isFile()) out.push(rel);
  }
  return out;
}

/** Absolute paths of the files the configuration names outside the data directory, and its file. */
export function externalFiles(config: Config, configFile?: string): string[] {
  const found = new Set<string>();
  const add = (p: string) => {
    if (!p || !isAbsolute(p) || inside(config.dataDir, p) || !existsSync(p)) return;
    const st = statSync(p);
    if (st.isFile()) found.add(p);
    else if (st.isDirectory()) for (const f of walk(p)) found.add(join(p, f));
  };
  for (const s of settings()) {
    if (s.setting.kind !== 'path' || s.key === 'dataDir' || s.key === 'mailstore.mailDir') continue;
    add(s.path.reduce<unknown>((o, k) => (o as Record<string, unknown>)?.[k], config) as string);
  }
  if (configFile) add(configFile);
  return [...found].sort();
}

const copy = (from: string, to: string) => {
  mkdirSync(dirname(to), { recursive: true, mode: 0o700 });
  copyFileSync(from, to);
  chmodSync(to, statSync(from).mode & 0o777);
};

/** Copies the data directory's files and the external ones into the set; returns how many. */
export function backupFiles(config: Config, setDir: string, configFile?: string): { data: number; external: string[] } {
  const mailRel = inside(config.dataDir, config.mailstore.mailDir) ? relative(config.dataDir, config.mailstore.mailDir).split(sep).join('/') : undefined;
  const data = walk(config.dataDir, (rel) => skipped(rel, mailRel));
  for (const rel of data) copy(join(config.dataDir, rel), join(setDir, DATA_FILES, rel));
  const external = externalFiles(config, configFile);
  for (const abs of external) copy(abs, join(setDir, EXTERNAL_FILES, abs));
  return { data: data.length, external };
}

/** Puts the set's data files under the new data directory and the external ones back where they were. */
export function restoreFiles(setDir: string, dataDir: string, external: string[]): number {
  const data = walk(join(setDir, DATA_FILES));
  for (const rel of data) copy(join(setDir, DATA_FILES, rel), join(dataDir, rel));
  for (const abs of external) if (!existsSync(abs)) copy(join(setDir, EXTERNAL_FILES, abs), abs);
  return data.length;
}
