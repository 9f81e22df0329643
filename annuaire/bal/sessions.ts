// Webmail sessions. A token from the webmail API's login stands in for the person's
// password at the platform's IMAP proxy and submission server (checkCredentials accepts
// it), so web and DPI clients go through the same fronts and the same core/policy as
// Thunderbird, and no password is kept anywhere. Only the token's SHA-256 is stored.
import { createHash, randomBytes } from 'node:crypto';
import type { Queryable } from '../../core/db/index.js';
import type { PersonPrincipal } from '../../core/policy/index.js';
import type { PersonRow } from './lookups.js';

/** Secrets with this prefix are session tokens, never passwords. */
export const SESSION_TOKEN_PREFIX = 'mss_wt_';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
export const isSessionToken = (secret: string) => secret.startsWith(SESSION_TOKEN_PREFIX) && secret.length > SESSION_TOKEN_PREFIX.length + 20;

export interface SessionLifetime {
  /** Idle lifetime: each use pushes expiry this far ahead. */
  ttlMs: number;
  /** Absolute lifetime from issue. */
  maxAgeMs: number;
}

export async function openSession(q: Queryable, principal: PersonPrincipal, life: SessionLifetime): Promise<{ token: string; expiresAt: Date }> {
  const token = SESSION_TOKEN_PREFIX + randomBytes(32).toString('base64url');
  const now = Date.now();
  const maxUntil = new Date(now + life.maxAgeMs);
  const expiresAt = new Date(Math.min(now + life.ttlMs, maxUntil.getTime()));
  await q.query('INSERT INTO bal_web_sessions (token_hash, person_id, auth, expires_at, max_until, acr, amr) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
    sha256(token),
    principal.id,
    principal.auth,
    expiresAt,
    maxUntil,
    principal.acr ?? null,
    principal.amr?.length ? principal.amr.join(' ') : null,
  ]);
  // Expired sessions are of no use to anyone: clear them as we go.
  await q.query("DELETE FROM bal_web_sessions WHERE expires_at < now() - interval '1 day'");
  return { token, expiresAt };
}

/**
 * The person behind a live token, or null (unknown, expired, revoked, account disabled).
 * With `extend`, the idle expiry moves forward — written only once half of it is used, so a
 * busy session does not cost a write per request.
 */
export async function sessionPerson(q: Queryable, token: string, extend?: SessionLifetime): Promise<{ row: PersonRow; auth: string; acr?: string; amr?: string[] } | null> {
  if (!isSessionToken(token)) return null;
  const { rows } = await q.query<PersonRow & { s_auth: string; s_expires: Date; s_max: Date; s_acr: string | null; s_amr: string | null }>(
    `SELECT p.*, s.auth AS s_auth, s.expires_at AS s_expires, s.max_until AS s_max, s.acr AS s_acr, s.amr AS s_amr
       FROM bal_web_sessions s JOIN bal_persons p ON p.id = s.person_id
      WHERE s.token_hash = $1 AND s.expires_at > now() AND s.revoked_at IS NULL AND p.active`,
    [sha256(token)],
  );
  const r = rows[0];
  if (!r) return null;
  if (extend) {
    const target = Math.min(Date.now() + extend.ttlMs, new Date(r.s_max).getTime());
    if (target - new Date(r.s_expires).getTime() > extend.ttlMs / 2) {
      await q.query('UPDATE bal_web_sessions SET expires_at = $2 WHERE token_hash = $1', [sha256(token), new Date(target)]);
    }
  }
  return { row: r, auth: r.s_auth, ...(r.s_acr ? { acr: r.s_acr } : {}), ...(r.s_amr ? { amr: r.s_amr.split(' ') } : {}) };
}

export async function closeSession(q: Queryable, token: string): Promise<void> {
  if (!isSessionToken(token)) return;
  await q.query('UPDATE bal_web_sessions SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL', [sha256(token)]);
}

/** Every session of a person ends (password reset, account disabled by an admin). */
export async function closeSessionsOf(q: Queryable, personId: string): Promise<number> {
  const r = await q.query('UPDATE bal_web_sessions SET revoked_at = now() WHERE person_id = $1 AND revoked_at IS NULL AND expires_at > now()', [personId]);
  return r.rowCount ?? 0;
}
