// Opt-in OpenPGP per box (issue 16 §4): the one public key a box's mail is encrypted to
// before it is stored (smtp/openpgp.ts). A key is checked once, here, as the delivery will
// use it — one armored public key, no secret material, a valid self-signature, not expired
// nor revoked, with a (sub)key usable for encryption that openpgp's own algorithm rules
// accept — and stored re-armored without anything else the upload carried. Every
// registration, removal and refusal is journalled.
//
// openpgp (1.2 MB of JavaScript, ~5 MB of heap once loaded) is imported with the first key
// read, not with this module: the platform imports it at start through the admin API and
// the delivery, and an idle platform with no key registered never needs it (bench/idle-memory).
import type { Key } from 'openpgp';
import type { Queryable } from '../../core/db/index.js';
import { isMssError, MssError } from '../../core/errors.js';
import { normaliseBalAddress } from './identifiers.js';
import type { BalContext } from './model.js';

export interface OpenPgpKeyInfo {
  /** Upper-case hex fingerprint of the primary key, as gpg prints it (without spaces). */
  fingerprint: string;
  /** The primary key's algorithm as openpgp names it, e.g. "rsaEncryptSign 3072", "eddsaLegacy ed25519Legacy". */
  algorithm: string;
  userIds: string[];
  createdAt: Date;
  /** null: the key does not expire. */
  expiresAt: Date | null;
  /** The public key only, re-armored. */
  armored: string;
}

export interface RegisteredOpenPgpKey extends OpenPgpKeyInfo {
  address: string;
  registeredAt: Date;
  registeredBy: string;
}

const PUBLIC_BLOCK = /-----BEGIN PGP PUBLIC KEY BLOCK-----[\s\S]*?-----END PGP PUBLIC KEY BLOCK-----/g;

/** The refusal's reason from an openpgp error, one line and short (its messages are technical but say what is wrong). */
const why = (e: unknown) => String((e as Error)?.message ?? e).replace(/\s+/g, ' ').slice(0, 300);

/**
 * Reads and checks an armored public key as the delivery will use it at `now`; throws the
 * catalogue's OPENPGP_* refusal that says what is wrong.
 */
export async function readOpenPgpPublicKey(text: string, now = new Date()): Promise<OpenPgpKeyInfo> {
  if (/-----BEGIN PGP PRIVATE KEY BLOCK-----/.test(text)) throw new MssError('OPENPGP_KEY_PRIVATE');
  const blocks = text.match(PUBLIC_BLOCK) ?? [];
  if (!blocks.length) throw new MssError('OPENPGP_KEY_INVALID', { reason: 'no armored public key block (-----BEGIN PGP PUBLIC KEY BLOCK-----) in the upload; export it with gpg --armor --export' });
  if (blocks.length > 1) throw new MssError('OPENPGP_KEY_INVALID', { reason: `${blocks.length} key blocks in the upload; register one key per box` });
  const { readKeys } = await import('openpgp');
  let keys: Key[];
  try {
    keys = await readKeys({ armoredKeys: blocks[0]! });
  } catch (e) {
    throw new MssError('OPENPGP_KEY_INVALID', { reason: `the block is not a readable OpenPGP key (${why(e)})` });
  }
  if (keys.length !== 1) throw new MssError('OPENPGP_KEY_INVALID', { reason: `${keys.length} keys in the block; register one key per box` });
  const key = keys[0];
  // A secret key armored as a public block is still a secret key: never stored.
  if (key.isPrivate()) throw new MssError('OPENPGP_KEY_PRIVATE');
  const fingerprint = key.getFingerprint().toUpperCase();
  const expiration = await key.getExpirationTime().catch(() => null);
  const expiresAt = expiration instanceof Date ? expiration : null;
  if (expiresAt && expiresAt <= now) throw new MssError('OPENPGP_KEY_EXPIRED', { fingerprint, date: expiresAt.toISOString() });
  try {
    await key.verifyPrimaryKey(now);
  } catch (e) {
    throw new MssError('OPENPGP_KEY_INVALID', { reason: `the key ${fingerprint} is not valid now (${why(e)})` });
  }
  try {
    await key.getEncryptionKey(undefined, now);
  } catch (e) {
    throw new MssError('OPENPGP_KEY_NO_ENCRYPTION', { fingerprint, reason: why(e) });
  }
  const a = key.getAlgorithmInfo();
  return {
    fingerprint,
    algorithm: [a.algorithm, a.bits ?? a.curve].filter(Boolean).join(' '),
    userIds: key.getUserIDs(),
    createdAt: key.getCreationTime(),
    expiresAt,
    armored: key.armor(),
  };
}

interface KeyRow {
  address: string;
  fingerprint: string;
  algorithm: string;
  user_ids: string[];
  created_at: Date;
  expires_at: Date | null;
  armored: string;
  registered_at: Date;
  registered_by: string;
}

const SELECT = `SELECT m.address, k.fingerprint, k.algorithm, k.user_ids, k.created_at, k.expires_at, k.armored, k.registered_at, k.registered_by
  FROM bal_openpgp_keys k JOIN bal_mailboxes m ON m.id = k.bal_id`;

const fromRow = (r: KeyRow): RegisteredOpenPgpKey => ({
  address: r.address,
  fingerprint: r.fingerprint,
  algorithm: r.algorithm,
  userIds: r.user_ids,
  createdAt: new Date(r.created_at),
  expiresAt: r.expires_at ? new Date(r.expires_at) : null,
  armored: r.armored,
  registeredAt: new Date(r.registered_at),
  registeredBy: r.registered_by,
});

/** The key registered on a box, or null. */
export async function openPgpKeyOf(db: Queryable, address: string): Promise<RegisteredOpenPgpKey | null> {
  const { rows } = await db.query<KeyRow>(`${SELECT} WHERE lower(m.address) = lower($1)`, [address.trim()]);
  return rows[0] ? fromRow(rows[0]) : null;
}

/**
 * The keys of those of these (local) addresses that have one, by lower-case address: what
 * the delivery encrypts to. One indexed query per message; most boxes have no key.
 */
export async function openPgpKeysFor(db: Queryable, addresses: readonly string[]): Promise<Map<string, { fingerprint: string; armored: string }>> {
  const out = new Map<string, { fingerprint: string; armored: string }>();
  if (!addresses.length) return out;
  const { rows } = await db.query<{ address: string; fingerprint: string; armored: string }>(
    'SELECT lower(m.address) AS address, k.fingerprint, k.armored FROM bal_openpgp_keys k JOIN bal_mailboxes m ON m.id = k.bal_id WHERE lower(m.address) = ANY($1::text[])',
    [addresses.map((a) => a.trim().toLowerCase())],
  );
  for (const r of rows) out.set(r.address, { fingerprint: r.fingerprint, armored: r.armored });
  return out;
}

/** Runs a key write with its journal event in one transaction; a refusal is journalled (bal.openpgp.refused) and thrown. */
async function keyWrite<T>(ctx: BalContext, address: string, actor: string, fn: (tx: Queryable, bal: { id: number; address: string }) => Promise<{ result: T; event: string; details: Record<string, unknown> }>): Promise<T> {
  try {
    return await ctx.db.transaction(async (tx) => {
      const { address: normalised } = normaliseBalAddress(address);
      const { rows } = await tx.query<{ id: number; address: string }>('SELECT id, address FROM bal_mailboxes WHERE lower(address) = $1 FOR UPDATE', [normalised]);
      const bal = rows[0];
      if (!bal) throw new MssError('BAL_UNKNOWN', { address: normalised });
      const { result, event, details } = await fn(tx, bal);
      await ctx.journal.appendIn(tx, { type: event, actor, subject: bal.address, details });
      return result;
    });
  } catch (e) {
    if (isMssError(e) && e.code !== 'INTERNAL') {
      await ctx.db
        .transaction((tx) => ctx.journal.appendIn(tx, { type: 'bal.openpgp.refused', actor, subject: address.trim().toLowerCase().slice(0, 254), details: { code: e.code, reason: e.message } }))
        .catch((je) => ctx.log?.error({ err: je }, 'could not journal a refused OpenPGP key change'));
    }
    throw e;
  }
}

/**
 * Registers (or replaces) the OpenPGP public key of a box: from the next delivery on, its
 * mail is stored encrypted to that key. Mail already stored stays as it is.
 */
export async function registerOpenPgpKey(ctx: BalContext, address: string, armored: string, actor: string, now = new Date()): Promise<RegisteredOpenPgpKey> {
  return keyWrite(ctx, address, actor, async (tx, bal) => {
    const k = await readOpenPgpPublicKey(armored, now);
    const { rows: before } = await tx.query<{ fingerprint: string }>('SELECT fingerprint FROM bal_openpgp_keys WHERE bal_id = $1', [bal.id]);
    await tx.query(
      `INSERT INTO bal_openpgp_keys (bal_id, fingerprint, algorithm, user_ids, created_at, expires_at, armored, registered_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (bal_id) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, algorithm = EXCLUDED.algorithm, user_ids = EXCLUDED.user_ids,
         created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at, armored = EXCLUDED.armored, registered_at = now(), registered_by = EXCLUDED.registered_by`,
      [bal.id, k.fingerprint, k.algorithm, k.userIds, k.createdAt, k.expiresAt, k.armored, actor],
    );
    const result = (await openPgpKeyOf(tx, bal.address))!;
    return {
      result,
      event: 'bal.openpgp.registered',
      details: { fingerprint: k.fingerprint, algorithm: k.algorithm, userIds: k.userIds, expiresAt: k.expiresAt?.toISOString() ?? null, ...(before[0] ? { replaced: before[0].fingerprint } : {}) },
    };
  });
}

/** Removes a box's key: mail delivered from then on is stored in clear (what was stored encrypted stays so). */
export async function removeOpenPgpKey(ctx: BalContext, address: string, actor: string): Promise<void> {
  await keyWrite(ctx, address, actor, async (tx, bal) => {
    const { rows } = await tx.query<{ fingerprint: string }>('DELETE FROM bal_openpgp_keys WHERE bal_id = $1 RETURNING fingerprint', [bal.id]);
    if (!rows[0]) throw new MssError('OPENPGP_KEY_NONE', { address: bal.address });
    return { result: undefined, event: 'bal.openpgp.removed', details: { fingerprint: rows[0].fingerprint } };
  });
}

/**
 * How many registered keys are usable, end within `withinDays`, or have ended: a box whose
 * key has ended gets no mail stored (the delivery keeps it waiting rather than store it in
 * clear), so the operator must hear of it before (mss_openpgp_keys).
 */
export async function openPgpKeyCounts(db: Queryable, withinDays: number): Promise<{ valid: number; expiring: number; expired: number }> {
  const { rows } = await db.query<{ valid: string; expiring: string; expired: string }>(
    `SELECT count(*) FILTER (WHERE expires_at IS NULL OR expires_at > now() + make_interval(days => $1)) AS valid,
            count(*) FILTER (WHERE expires_at > now() AND expires_at <= now() + make_interval(days => $1)) AS expiring,
            count(*) FILTER (WHERE expires_at <= now()) AS expired
       FROM bal_openpgp_keys`,
    [withinDays],
  );
  return { valid: Number(rows[0].valid), expiring: Number(rows[0].expiring), expired: Number(rows[0].expired) };
}
