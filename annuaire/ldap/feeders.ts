// One node feeds the directory (ldap.role standalone or provider); the others are syncrepl
// consumers. Two feeders on one database would split the change queue between their
// slapds, so that neither directory is complete: the second one is refused at its start.
// A node is its host name and data directory, so a node restarting after a crash finds
// its own row, not another's. Only on PostgreSQL: the embedded database has one process.

import { hostname } from 'node:os';
import { resolve } from 'node:path';
import type { Db } from '../../core/db/index.js';
import { MssError } from '../../core/errors.js';

/** A feeder not seen for this long has stopped (it refreshes its row every FRESH_MS / 3). */
export const FRESH_MS = 30_000;
const FEEDERS_LOCK = 0x4d53_5331;

export const feederNode = (dataDir: string) => `${hostname()}:${resolve(dataDir)}`;

/** Claims the feeding for this node, or throws naming the node that feeds already. */
export async function claimFeeding(db: Db, node: string): Promise<void> {
  if (db.kind !== 'pg') return;
  await db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [FEEDERS_LOCK]);
    const { rows } = await tx.query<{ node: string; ago: number }>(
      'SELECT node, extract(epoch FROM now() - seen_at)::int AS ago FROM annuaire_ldap_feeders WHERE node <> $1 AND seen_at > now() - make_interval(secs => $2) ORDER BY seen_at DESC LIMIT 1',
      [node, FRESH_MS / 1000],
    );
    if (rows[0]) throw new MssError('LDAP_START_FAILED', { reason: `another node (${rows[0].node}, seen ${rows[0].ago} s ago) feeds the directory from this database; run this one with ldap.role = consumer (ldap.providerUrl = that node's LDAPS URL)` });
    await tx.query('INSERT INTO annuaire_ldap_feeders (node, seen_at) VALUES ($1, now()) ON CONFLICT (node) DO UPDATE SET seen_at = now()', [node]);
  });
}

/** Refreshes this node's row (at most every FRESH_MS / 3). */
export function feedingHeartbeat(db: Db, node: string): () => Promise<void> {
  let last = Date.now();
  return async () => {
    if (db.kind !== 'pg' || Date.now() - last < FRESH_MS / 3) return;
    last = Date.now();
    await db.query('UPDATE annuaire_ldap_feeders SET seen_at = now() WHERE node = $1', [node]);
  };
}

export async function releaseFeeding(db: Db, node: string): Promise<void> {
  if (db.kind === 'pg') await db.query('DELETE FROM annuaire_ldap_feeders WHERE node = $1', [node]);
}
