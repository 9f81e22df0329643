// The mail part of a backup set, through Dovecot's own tools: `doveadm backup` (dsync) of
// each box into a maildir of the set, against the platform's running Dovecot and its
// generated configuration — never a file copy of a live store, whose maildir may be caught
// between a rename and its index. dsync into a set that already holds the box copies only
// what changed since (and drops what the box no longer has): a second run is incremental.
// Restoring is the same tool the other way (`doveadm backup -R`) into a Dovecot started on
// the new data directory.
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildUser } from '../supervisor.js';
import { chownTree } from '../supervisor.js';
import { run } from './database.js';

export const MAIL_DIR = 'mail';

/** Boxes as Dovecot stores them: <mailDir>/<domain>/<local>/Maildir (mail_location %Ld/%Ln). */
export function boxesIn(mailDir: string): string[] {
  if (!existsSync(mailDir)) return [];
  const out: string[] = [];
  for (const domain of readdirSync(mailDir).sort()) {
    if (!statSync(join(mailDir, domain)).isDirectory()) continue;
    for (const local of readdirSync(join(mailDir, domain)).sort()) if (existsSync(join(mailDir, domain, local, 'Maildir'))) out.push(`${local}@${domain}`);
  }
  return out;
}

const boxDir = (root: string, address: string) => {
  const at = address.lastIndexOf('@');
  return join(root, address.slice(at + 1), address.slice(0, at), 'Maildir');
};

export interface DoveadmTarget {
  doveadm: string;
  /** The running Dovecot's configuration (its auth service answers doveadm's user lookups). */
  confFile: string;
  user: ChildUser;
  /** Set when the store has mail_crypt keys: the environment carrying their passwords to doveadm. */
  crypt?: { env: NodeJS.ProcessEnv };
}

/** As the mail user: Dovecot refuses mail access as root. */
const asUser = (t: DoveadmTarget) => ({ ...(t.user.dropped ? { uid: t.user.uid, gid: t.user.gid } : {}), ...(t.crypt ? { env: t.crypt.env } : {}) });

/**
 * The plugins doveadm loads for a copy: none (no full-text index of a copy), but mail_crypt
 * when the store has keys. Copying encrypted files without it fails (dsync checks each
 * message's size against the index, which holds the clear size), so they are decrypted on
 * with it, and saving with encryption whatever crypt.mailStore says now, a message stored
 * encrypted reaches the set and the restored store encrypted (without the save version, an
 * encrypted message was written in clear; one stored in clear is copied as it is).
 */
const plugins = (t: DoveadmTarget) => (t.crypt ? ['-o', 'mail_plugins=mail_crypt', '-o', 'plugin/mail_crypt_save_version=2'] : ['-o', 'mail_plugins=']);

/**
 * Mirrors every box of mailDir into <setDir>/mail (with mail_crypt when the store has keys,
 * see plugins()). Boxes gone from the store are dropped from the set.
 */
export async function backupMail(t: DoveadmTarget, mailDir: string, setDir: string, progress: (done: number, total: number, box: string) => void): Promise<string[]> {
  const root = join(setDir, MAIL_DIR);
  mkdirSync(root, { recursive: true, mode: 0o700 });
  chownTree(root, t.user);
  const boxes = boxesIn(mailDir);
  for (const [i, box] of boxes.entries()) {
    progress(i, boxes.length, box);
    await run(t.doveadm, ['-c', t.confFile, ...plugins(t), 'backup', '-u', box, `maildir:${boxDir(root, box)}`], asUser(t));
  }
  progress(boxes.length, boxes.length, '');
  const kept = new Set(boxes);
  for (const old of boxesIn(root)) if (!kept.has(old)) rmSync(join(boxDir(root, old), '..'), { recursive: true, force: true });
  for (const domain of readdirSync(root)) if (!readdirSync(join(root, domain)).length) rmSync(join(root, domain), { recursive: true });
  return boxes;
}

/**
 * Puts every box of the set back through a Dovecot running on the new data directory. The
 * set is first copied to a staging directory the mail user owns (the set itself may be
 * readable by root only), and removed after.
 */
export async function restoreMail(t: DoveadmTarget, setDir: string, stagingDir: string, boxes: string[], progress: (done: number, total: number, box: string) => void): Promise<void> {
  cpSync(join(setDir, MAIL_DIR), stagingDir, { recursive: true });
  chownTree(stagingDir, t.user);
  try {
    for (const [i, box] of boxes.entries()) {
      progress(i, boxes.length, box);
      // With the restored keys (see plugins()).
      await run(t.doveadm, ['-c', t.confFile, ...plugins(t), 'backup', '-R', '-u', box, `maildir:${boxDir(stagingDir, box)}`], asUser(t));
    }
    progress(boxes.length, boxes.length, '');
  } finally {
    rmSync(stagingDir, { recursive: true, force: true });
  }
}
