// Local accounts and their credentials: the one authenticate() every front calls (SMTP
// AUTH, IMAP LOGIN, webmail), and the certificate-to-principal mapping for EXTERNAL logins.
import type { X509Certificate } from 'node:crypto';
import type { Queryable } from '../../core/db/index.js';
import { MssError } from '../../core/errors.js';
import type { ApplicationPrincipal, PersonPrincipal } from '../../core/policy/index.js';
import type { CredentialCache } from './credential-cache.js';
import { readCertificate } from './certificates.js';
import { checkTotp, dummyHash, generatePassword, hashPassword, newTotpSecret, totpUri, TOTP_DIGITS, verifyPassword, type OtpFailure } from './credentials.js';
import { normaliseIdnps } from './identifiers.js';
import { personRow, toPerson, type PersonRef, type PersonRow } from './lookups.js';
import { closeSessionsOf, isSessionToken, sessionPerson } from './sessions.js';
import type { BalContext, Person } from './model.js';

export interface NewPerson {
  login: string;
  /** RPPS / ADELI / IDNPS; absent for staff without a national id. */
  idnps?: string;
  nom?: string;
  prenom?: string;
  password?: string;
}

export const MIN_PASSWORD_LENGTH = 12;

function checkPasswordStrength(pw: string) {
  if ([...pw].length < MIN_PASSWORD_LENGTH) throw new MssError('BAD_REQUEST', { reason: `a password needs at least ${MIN_PASSWORD_LENGTH} characters` });
}

async function lockPerson(tx: Queryable, ref: PersonRef): Promise<PersonRow> {
  const p = await personRow(tx, ref);
  if (!p) throw new MssError('PERSON_UNKNOWN', { person: 'id' in ref ? `#${ref.id}` : 'login' in ref ? ref.login : ref.idnps });
  await tx.query('SELECT 1 FROM bal_persons WHERE id = $1 FOR UPDATE', [p.id]);
  return p;
}

export async function createPerson(ctx: BalContext, input: NewPerson, actor: string): Promise<Person> {
  const login = input.login.trim();
  if (!/^[A-Za-z0-9][A-Za-z0-9._@+-]{1,127}$/.test(login)) throw new MssError('BAD_REQUEST', { reason: `"${input.login}" is not a usable login (letters, digits, . _ @ + -)` });
  const idnps = input.idnps ? normaliseIdnps(input.idnps) : null;
  if (input.password !== undefined) checkPasswordStrength(input.password);
  const hash = input.password !== undefined ? await hashPassword(input.password) : null;
  try {
    return await ctx.db.transaction(async (tx) => {
      const { rows } = await tx.query<PersonRow>(
        `INSERT INTO bal_persons (login, idnps, nom, prenom, password_hash, password_set_at) VALUES ($1, $2, $3, $4, $5, CASE WHEN $5::text IS NULL THEN NULL ELSE now() END) RETURNING *`,
        [login, idnps, input.nom?.trim() || null, input.prenom?.trim() || null, hash],
      );
      await ctx.journal.appendIn(tx, { type: 'person.created', actor, subject: login, details: { personId: String(rows[0].id), ...(idnps ? { idnps } : {}), password: !!hash } });
      return toPerson(rows[0]);
    });
  } catch (e) {
    if ((e as { code?: string }).code === '23505') throw new MssError('PERSON_EXISTS', { person: idnps ? `${login} / ${idnps}` : login });
    throw e;
  }
}

/** Sets a chosen password. */
export async function setPassword(ctx: BalContext, ref: PersonRef, password: string, actor: string): Promise<Person> {
  checkPasswordStrength(password);
  const hash = await hashPassword(password);
  return ctx.db.transaction(async (tx) => {
    const p = await lockPerson(tx, ref);
    const { rows } = await tx.query<PersonRow>('UPDATE bal_persons SET password_hash = $2, password_set_at = now(), updated_at = now() WHERE id = $1 RETURNING *', [p.id, hash]);
    const sessions = await closeSessionsOf(tx, String(p.id));
    await ctx.journal.appendIn(tx, { type: 'person.password.set', actor, subject: p.login, details: { personId: String(p.id), ...(sessions ? { sessionsClosed: sessions } : {}) } });
    return toPerson(rows[0]);
  });
}

/**
 * Replaces the password with a generated one, returned once for the admin to hand over; with
 * resetTotp, also clears the second factor (a lost phone).
 */
export async function resetCredentials(ctx: BalContext, ref: PersonRef, actor: string, opts: { resetTotp?: boolean } = {}): Promise<{ person: Person; password: string }> {
  const password = generatePassword();
  const hash = await hashPassword(password);
  return ctx.db.transaction(async (tx) => {
    const p = await lockPerson(tx, ref);
    const { rows } = await tx.query<PersonRow>(
      `UPDATE bal_persons SET password_hash = $2, password_set_at = now(), updated_at = now(),
              totp_secret = CASE WHEN $3 THEN NULL ELSE totp_secret END, totp_last_step = CASE WHEN $3 THEN NULL ELSE totp_last_step END
        WHERE id = $1 RETURNING *`,
      [p.id, hash, !!opts.resetTotp],
    );
    const sessions = await closeSessionsOf(tx, String(p.id));
    await ctx.journal.appendIn(tx, { type: 'person.credentials.reset', actor, subject: p.login, details: { personId: String(p.id), totpCleared: !!opts.resetTotp, ...(sessions ? { sessionsClosed: sessions } : {}) } });
    return { person: toPerson(rows[0]), password };
  });
}

/** Turns on TOTP for a person; returns the secret and the otpauth:// URI to enrol an authenticator app. */
export async function enableTotp(ctx: BalContext, ref: PersonRef, actor: string, issuer = 'MSSanté'): Promise<{ person: Person; secret: string; uri: string }> {
  const secret = newTotpSecret();
  return ctx.db.transaction(async (tx) => {
    const p = await lockPerson(tx, ref);
    const { rows } = await tx.query<PersonRow>('UPDATE bal_persons SET totp_secret = $2, totp_last_step = NULL, updated_at = now() WHERE id = $1 RETURNING *', [p.id, secret]);
    await ctx.journal.appendIn(tx, { type: 'person.totp.enabled', actor, subject: p.login, details: { personId: String(p.id) } });
    return { person: toPerson(rows[0]), secret, uri: totpUri(secret, p.login, issuer) };
  });
}

export async function setPersonActive(ctx: BalContext, ref: PersonRef, active: boolean, actor: string): Promise<Person> {
  return ctx.db.transaction(async (tx) => {
    const p = await lockPerson(tx, ref);
    const { rows } = await tx.query<PersonRow>('UPDATE bal_persons SET active = $2, updated_at = now() WHERE id = $1 RETURNING *', [p.id, active]);
    await ctx.journal.appendIn(tx, { type: active ? 'person.enabled' : 'person.disabled', actor, subject: p.login, details: { personId: String(p.id) } });
    return toPerson(rows[0]);
  });
}

export type CredentialFailure = 'unknown-user' | 'inactive' | 'no-password' | 'bad-password' | OtpFailure | 'bad-session';
export type CredentialCheck = { ok: true; principal: PersonPrincipal } | { ok: false; failure: CredentialFailure; login?: string };

/**
 * Checks a user name and secret. The user name is the person's login or the address of a
 * personal (PER/CAB) box they hold. A person with TOTP gives the 6-digit code either in
 * `otp` or appended to the password ("motdepasse123456"), the form an IMAP LOGIN allows.
 *
 * The failure reason is for the journal only; clients must hear the same AUTH_FAILED for
 * all of them. Every failing path costs one full scrypt, so timing does not tell a known
 * user name from an unknown one (only a right password, recently verified, skips it: the
 * password cache).
 */
export async function checkCredentials(q: Queryable, user: string, secret: string, opts: { otp?: string; now?: number; cache?: CredentialCache } = {}): Promise<CredentialCheck> {
  const now = opts.now ?? Date.now();
  // A webmail session token (annuaire/bal/sessions) in place of the password: it must be
  // the named person's own. No scrypt: the token is 256 random bits, looked up by hash.
  if (isSessionToken(secret)) {
    const s = await sessionPerson(q, secret);
    const named = s && (await personNamed(q, user));
    if (!s || !named || String(named.id) !== String(s.row.id)) return { ok: false, failure: 'bad-session', login: named?.login ?? s?.row.login };
    return { ok: true, principal: principalOf(s.row, 'token') };
  }
  const p = await personNamed(q, user);
  if (!p || !p.active || !p.password_hash) {
    await verifyPassword(await dummyHash(), secret);
    return { ok: false, failure: !p ? 'unknown-user' : !p.active ? 'inactive' : 'no-password', login: p?.login };
  }
  let password = secret;
  let otp = opts.otp;
  if (p.totp_secret && otp === undefined) {
    otp = secret.slice(-TOTP_DIGITS);
    password = secret.slice(0, -TOTP_DIGITS);
  }
  // A password verified a moment ago needs no second scrypt (credential-cache.ts); the
  // one-time code below is checked every time.
  if (!opts.cache?.knows(String(p.id), p.password_hash, password, now)) {
    if (!(await verifyPassword(p.password_hash, password))) return { ok: false, failure: 'bad-password', login: p.login };
    opts.cache?.remember(String(p.id), p.password_hash, password, now);
  }
  if (!p.totp_secret) return { ok: true, principal: principalOf(p, 'password') };
  const otpFailure = await checkTotp(p.totp_secret, otp, now, async (step) => {
    const used = await q.query('UPDATE bal_persons SET totp_last_step = $2 WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2) RETURNING id', [p.id, step]);
    return used.rows.length > 0;
  });
  if (otpFailure) return { ok: false, failure: otpFailure, login: p.login };
  return { ok: true, principal: principalOf(p, 'password+totp') };
}

/**
 * The person a user name designates: their login, or (failing that) the address of a
 * personal box they hold. One statement: every login asks twice (the throttle's account
 * key, then the check), and mail clients name themselves by address.
 */
async function personNamed(q: Queryable, user: string): Promise<PersonRow | null> {
  const { rows } = await q.query<PersonRow & { by_address: boolean }>(
    `SELECT p.*, false AS by_address FROM bal_persons p WHERE lower(p.login) = lower($1)
     UNION ALL
     SELECT p.*, true FROM bal_mailboxes b JOIN bal_persons p ON p.idnps = b.owner_id
      WHERE $2 AND lower(b.address) = lower($1) AND b.type IN ('PER', 'CAB') AND b.status = 'active'
     ORDER BY by_address LIMIT 1`,
    [user.trim(), user.includes('@')],
  );
  if (!rows[0]) return null;
  const { by_address: _, ...p } = rows[0];
  return p;
}

/**
 * The login of the account a user name designates (its login, or the address of a personal
 * box it holds), or null: what the login throttle counts failures on, so one person has one
 * count however they name themselves.
 */
export async function accountLogin(q: Queryable, user: string): Promise<string | null> {
  return (await personNamed(q, user))?.login ?? null;
}

/** checkCredentials for fronts that only need yes or no: the person, or null. */
export async function authenticate(q: Queryable, user: string, secret: string, opts: { otp?: string; now?: number } = {}): Promise<PersonPrincipal | null> {
  const r = await checkCredentials(q, user, secret, opts);
  return r.ok ? r.principal : null;
}

const principalOf = (p: PersonRow, auth: PersonPrincipal['auth']): PersonPrincipal => ({ kind: 'person', id: String(p.id), login: p.login, idnps: p.idnps, auth });

/**
 * The principal a client certificate stands for, once the TLS front has checked its chain,
 * validity and revocation: a personal certificate (CN = "8"+RPPS / "0"+ADELI, IGC-Santé's
 * form) is the person bound to that id; any other certificate is an application, known by
 * its fingerprint (the policy checks it is registered for the box). A personal certificate
 * whose professional has no active local account authenticates nobody: null.
 * `registered`: an application certificate counts only when registered (unrevoked,
 * unexpired) for an active box — for a login that names no box (submission's AUTH EXTERNAL).
 */
export async function principalForCertificate(q: Queryable, cert: string | X509Certificate, opts: { registered?: boolean } = {}): Promise<PersonPrincipal | ApplicationPrincipal | null> {
  const info = readCertificate(cert);
  const cn = info.commonName ?? '';
  if (/^(8\d{11}|0[0-9A-Z]{9})$/.test(cn)) {
    const p = await personRow(q, { idnps: normaliseIdnps(cn) });
    return p && p.active ? principalOf(p, 'certificate') : null;
  }
  if (opts.registered) {
    const { rows } = await q.query(
      `SELECT 1 FROM bal_app_certificates c JOIN bal_mailboxes b ON b.id = c.bal_id
        WHERE c.fingerprint = $1 AND c.revoked_at IS NULL AND c.not_after > now() AND b.status = 'active' LIMIT 1`,
      [info.fingerprint],
    );
    if (!rows.length) return null;
  }
  return { kind: 'application', fingerprint: info.fingerprint, subject: info.subject };
}

/**
 * The person a Pro Santé Connect login names (its national id, "8" + RPPS), as that login's
 * principal with the level PSC asserted; null when no active account holds that id.
 */
export async function principalForNationalId(q: Queryable, idnps: string, level: { acr?: string; amr?: string[] } = {}): Promise<PersonPrincipal | null> {
  const p = await personRow(q, { idnps });
  if (!p || !p.active) return null;
  return { ...principalOf(p, 'psc'), ...(level.acr ? { acr: level.acr } : {}), ...(level.amr?.length ? { amr: level.amr } : {}) };
}

/** The active accounts with a national professional id (RPPS): whom the stand-in PSC offers to log in as. */
export async function professionals(q: Queryable): Promise<Array<{ idnps: string; nom: string | null; prenom: string | null }>> {
  const { rows } = await q.query<{ idnps: string; nom: string | null; prenom: string | null }>("SELECT idnps, nom, prenom FROM bal_persons WHERE active AND idnps LIKE '8%' ORDER BY login LIMIT 200");
  return rows;
}
