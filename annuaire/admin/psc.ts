// Pro Santé Connect for admin accounts. Decision: an admin account is not a person of the
// annuaire (it may belong to a regional operator's staff without a mailbox), so PSC does not
// go through bal_persons: an account carries, optionally, the national id ("8" + RPPS) of the
// professional who holds it (`mss admin psc <login> <rpps>`), and a PSC login naming that id
// opens that account's console session, with its role and scope unchanged. A PSC login (CPS
// card or e-CPS) is itself a two-factor authentication, so it asks for no TOTP on top.
import { createHash, randomBytes } from 'node:crypto';
import type { Db } from '../../core/db/index.js';
import { MssError } from '../../core/errors.js';
import type { Journal } from '../../core/journal/index.js';
import { normaliseIdnps } from '../bal/identifiers.js';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** Binds (or, with null, unbinds) a professional's national id to an admin account; journalled. */
export async function setAdminNationalId(db: Db, journal: Pick<Journal, 'appendIn'>, login: string, rpps: string | null, actor: string): Promise<{ login: string; idnps: string | null }> {
  const idnps = rpps === null ? null : normaliseIdnps(rpps);
  if (idnps && !idnps.startsWith('8')) throw new MssError('BAD_REQUEST', { reason: 'Pro Santé Connect names professionals by their RPPS: give the 11-digit RPPS or "8" + RPPS' });
  try {
    return await db.transaction(async (tx) => {
      const { rows } = await tx.query<{ login: string }>('UPDATE admin_accounts SET idnps = $2 WHERE lower(login) = lower($1) RETURNING login', [login.trim(), idnps]);
      if (!rows[0]) throw new MssError('NOT_FOUND', { what: `admin account ${login}` });
      await journal.appendIn(tx, { type: 'admin.account.psc', actor, subject: `admin:${rows[0].login}`, details: { idnps } });
      return { login: rows[0].login, idnps };
    });
  } catch (e) {
    if ((e as { code?: string }).code === '23505') throw new MssError('BAD_REQUEST', { reason: `the national id ${idnps} is already bound to another admin account` });
    throw e;
  }
}

/**
 * The console session of the admin account bound to the national id PSC vouched for, or null
 * (no such active account; journalled admin.login.failed). The login is journalled with auth
 * psc and the level PSC asserted.
 */
export async function adminPscLogin(db: Db, journal: Pick<Journal, 'append'>, idnps: string, level: { acr?: string; amr?: string[] }, ttlMs: number, remote?: string): Promise<{ token: string; expiresAt: Date; login: string } | null> {
  const { rows } = await db.query<{ id: number; login: string }>('SELECT id, login FROM admin_accounts WHERE idnps = $1 AND active', [idnps]);
  const row = rows[0];
  const where = remote ? { remote } : {};
  if (!row) {
    await journal.append({ type: 'admin.login.failed', actor: 'anonymous', subject: idnps, details: { auth: 'psc', reason: 'no-account', idnps, ...where } });
    return null;
  }
  const token = `mssadm_${randomBytes(32).toString('base64url')}`;
  const expiresAt = new Date(Date.now() + ttlMs);
  await db.transaction(async (tx) => {
    await tx.query("INSERT INTO admin_tokens (token_hash, account_id, expires_at, auth) VALUES ($1, $2, $3, 'psc')", [sha256(token), row.id, expiresAt]);
    await tx.query('UPDATE admin_accounts SET last_login_at = now() WHERE id = $1', [row.id]);
  });
  await journal.append({ type: 'admin.login', actor: `admin:${row.login}`, details: { auth: 'psc', ...(level.acr ? { acr: level.acr } : {}), ...(level.amr ? { amr: level.amr } : {}), expiresAt: expiresAt.toISOString(), ...where } });
  return { token, expiresAt, login: row.login };
}
