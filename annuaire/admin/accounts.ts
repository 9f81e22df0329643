// Admin accounts and their sessions. Login gives a short-lived bearer token rather than
// HTTP Basic on every request: the password crosses the wire once per session, each request
// costs a SHA-256 lookup instead of a 32 MiB scrypt, and a session can be ended (logout,
// expiry) without changing the password.
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Db, Queryable } from '../../core/db/index.js';
import { MssError } from '../../core/errors.js';
import type { Journal } from '../../core/journal/index.js';
import type { AdminPrincipal, AdminRole } from '../../core/policy/index.js';
import type { AdminAccountOf } from './json-types.js';
import { checkTotp, dummyHash, generatePassword, hashPassword, newTotpSecret, totpStep, totpUri, verifyPassword, type OtpFailure } from '../bal/credentials.js';
import { normaliseStructureId } from '../bal/identifiers.js';
import { domainForms } from '../whitelist/parse.js';

export type AdminAccount = AdminAccountOf<Date>;

interface Row {
  id: number;
  login: string;
  role: AdminRole;
  domains: string[];
  structures: string[];
  password_hash: string;
  active: boolean;
  created_at: Date;
  created_by: string;
  last_login_at: Date | null;
  totp_secret: string | null;
  totp_pending: string | null;
  totp_last_step: string | number | null;
}

const toAccount = (r: Row): AdminAccount => ({
  id: String(r.id),
  login: r.login,
  role: r.role,
  domains: r.domains ?? [],
  structures: r.structures ?? [],
  active: r.active,
  createdAt: new Date(r.created_at),
  createdBy: r.created_by,
  lastLoginAt: r.last_login_at ? new Date(r.last_login_at) : null,
  totp: !!r.totp_secret,
});

/** The account as core/policy sees it; requireTotp (admin.requireTotp): a national account without a second factor may only enrol one. */
export const principalOf = (a: Pick<AdminAccount, 'login' | 'role' | 'domains' | 'structures'> & { totp?: boolean; pscSession?: boolean }, requireTotp = false): AdminPrincipal => ({
  kind: 'admin',
  login: a.login,
  role: a.role,
  domains: a.domains,
  structures: a.structures,
  ...(requireTotp && a.role === 'national' && !a.totp && !a.pscSession ? { mustEnrolSecondFactor: true } : {}),
});

export interface NewAdmin {
  login: string;
  role: AdminRole;
  domains?: string[];
  structures?: string[];
  /** Absent: one is generated and returned. */
  password?: string;
}

/** A role and scope checked and normalised (A-label domains, national structure ids). */
function validScope(role: AdminRole, domains: readonly string[] = [], structures: readonly string[] = []): { role: AdminRole; domains: string[]; structures: string[] } {
  if (role !== 'national' && role !== 'regional') throw new MssError('BAD_REQUEST', { reason: 'role must be national or regional' });
  const ds = [
    ...new Set(
      domains.map((d) => {
        const f = domainForms(d);
        if (!f) throw new MssError('BAD_REQUEST', { reason: `"${d}" is not a domain name` });
        return f.ascii;
      }),
    ),
  ];
  const ss = [...new Set(structures.map(normaliseStructureId))];
  if (role === 'regional' && !ds.length && !ss.length) throw new MssError('BAD_REQUEST', { reason: 'a regional account needs at least one domain or structure in its scope' });
  // A national account acts everywhere: a scope written on it would only mislead.
  return role === 'national' ? { role, domains: [], structures: [] } : { role, domains: ds, structures: ss };
}

/** What an account acts on would be, for core/policy (kind 'admin'): its role and normalised scope. */
export function scopeOfNew(input: Pick<NewAdmin, 'login' | 'role' | 'domains' | 'structures'>): { login: string; role: AdminRole; domains: string[]; structures: string[] } {
  return { login: input.login.trim(), ...validScope(input.role, input.domains, input.structures) };
}

/** Creates an account; returns it with its password (the generated one, if none was given). */
export async function createAdmin(db: Db, journal: Pick<Journal, 'appendIn'>, input: NewAdmin, actor: string): Promise<{ account: AdminAccount; password: string }> {
  const login = input.login.trim();
  if (!/^[A-Za-z0-9][A-Za-z0-9._@-]{1,63}$/.test(login)) throw new MssError('BAD_REQUEST', { reason: `"${input.login}" is not a usable login (letters, digits, . _ @ -)` });
  const { domains, structures } = validScope(input.role, input.domains, input.structures);
  const password = input.password ?? generatePassword();
  if (password.length < 12) throw new MssError('BAD_REQUEST', { reason: 'a password needs at least 12 characters' });
  const hash = await hashPassword(password);
  try {
    return await db.transaction(async (tx) => {
      const { rows } = await tx.query<Row>('INSERT INTO admin_accounts (login, role, domains, structures, password_hash, created_by) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *', [
        login,
        input.role,
        domains,
        structures,
        hash,
        actor,
      ]);
      await journal.appendIn(tx, { type: 'admin.account.created', actor, subject: `admin:${login}`, details: { role: input.role, domains, structures } });
      return { account: toAccount(rows[0]), password };
    });
  } catch (e) {
    if ((e as { code?: string }).code === '23505') throw new MssError('ADMIN_EXISTS', { login });
    throw e;
  }
}

export async function listAdmins(q: Queryable): Promise<AdminAccount[]> {
  return (await q.query<Row>('SELECT * FROM admin_accounts ORDER BY lower(login)')).rows.map(toAccount);
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

export type AdminLoginFailure = 'unknown-login' | 'inactive' | 'bad-password' | OtpFailure;
export type AdminLoginResult = { ok: true; token: string; expiresAt: Date; account: AdminAccount } | { ok: false; failure: AdminLoginFailure };

/**
 * Checks a login, password and, for an account with a second factor, its one-time code (the
 * same check as a person's: bal/credentials checkTotp); on success issues a bearer token
 * valid ttlMs. Every attempt is journalled (admin.login / admin.login.failed with the
 * failure), and an unknown login costs the same scrypt as a wrong password.
 */
export async function adminLogin(
  db: Db,
  journal: Pick<Journal, 'append'>,
  login: string,
  password: string,
  ttlMs: number,
  remote?: string,
  opts: { otp?: string; now?: number } = {},
): Promise<AdminLoginResult> {
  const { rows } = await db.query<Row>('SELECT * FROM admin_accounts WHERE lower(login) = lower($1)', [login.trim()]);
  const row = rows[0];
  const ok = await verifyPassword(row?.password_hash ?? (await dummyHash()), password);
  let failure: AdminLoginFailure | null = !row ? 'unknown-login' : !row.active ? 'inactive' : !ok ? 'bad-password' : null;
  // The code is looked at only after a right password: a wrong one is refused whatever the code.
  if (!failure && row.totp_secret) failure = await checkTotp(row.totp_secret, opts.otp, opts.now ?? Date.now(), (step) => consumeStep(db, row.id, step));
  if (failure || !row) {
    await journal.append({ type: 'admin.login.failed', actor: `admin:${login.trim().slice(0, 64)}`, details: { reason: failure ?? 'unknown-login', ...(remote ? { remote } : {}) } });
    return { ok: false, failure: failure ?? 'unknown-login' };
  }
  const token = `mssadm_${randomBytes(32).toString('base64url')}`;
  const expiresAt = new Date(Date.now() + ttlMs);
  await db.transaction(async (tx) => {
    await tx.query('INSERT INTO admin_tokens (token_hash, account_id, expires_at) VALUES ($1, $2, $3)', [sha256(token), row.id, expiresAt]);
    await tx.query('UPDATE admin_accounts SET last_login_at = now() WHERE id = $1', [row.id]);
    // Expired tokens are of no use to anyone: clear them as we go.
    await tx.query('DELETE FROM admin_tokens WHERE expires_at < now() - interval \'1 day\'');
  });
  await journal.append({ type: 'admin.login', actor: `admin:${row.login}`, details: { expiresAt: expiresAt.toISOString(), secondFactor: !!row.totp_secret, ...(remote ? { remote } : {}) } });
  return { ok: true, token, expiresAt, account: toAccount(row) };
}

/** Compare-and-set of the last TOTP step accepted: of two logins racing with one code, exactly one wins. */
async function consumeStep(q: Queryable, id: number, step: number): Promise<boolean> {
  const used = await q.query('UPDATE admin_accounts SET totp_last_step = $2 WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2) RETURNING id', [id, step]);
  return used.rows.length > 0;
}

/** The account of this login, or null. */
export async function findAdmin(q: Queryable, login: string): Promise<AdminAccount | null> {
  const { rows } = await q.query<Row>('SELECT * FROM admin_accounts WHERE lower(login) = lower($1)', [login.trim()]);
  return rows[0] ? toAccount(rows[0]) : null;
}

/** Locks the account's row for a change, or ADMIN_UNKNOWN. */
async function lockAdmin(tx: Queryable, login: string): Promise<Row> {
  const { rows } = await tx.query<Row>('SELECT * FROM admin_accounts WHERE lower(login) = lower($1) FOR UPDATE', [login.trim()]);
  if (!rows[0]) throw new MssError('ADMIN_UNKNOWN', { login });
  return rows[0];
}

/** The account's open sessions end (a disabled account, new credentials). Returns how many. */
async function endSessions(tx: Queryable, id: number): Promise<number> {
  const r = await tx.query('UPDATE admin_tokens SET revoked_at = now() WHERE account_id = $1 AND revoked_at IS NULL AND expires_at > now() RETURNING token_hash', [id]);
  return r.rows.length;
}

/** Changes an account's role and scope (admin.account.scope-changed, with before and after). */
export async function changeAdminScope(db: Db, journal: Pick<Journal, 'appendIn'>, login: string, input: { role: AdminRole; domains?: string[]; structures?: string[] }, actor: string): Promise<AdminAccount> {
  const next = validScope(input.role, input.domains, input.structures);
  return db.transaction(async (tx) => {
    const r = await lockAdmin(tx, login);
    const { rows } = await tx.query<Row>('UPDATE admin_accounts SET role = $2, domains = $3, structures = $4 WHERE id = $1 RETURNING *', [r.id, next.role, next.domains, next.structures]);
    await journal.appendIn(tx, {
      type: 'admin.account.scope-changed',
      actor,
      subject: `admin:${r.login}`,
      details: { before: { role: r.role, domains: r.domains, structures: r.structures }, after: next },
    });
    return toAccount(rows[0]);
  });
}

/** Disables (its sessions end at once) or enables an account. An account cannot disable itself. */
export async function setAdminActive(db: Db, journal: Pick<Journal, 'appendIn'>, login: string, active: boolean, actor: string): Promise<AdminAccount> {
  return db.transaction(async (tx) => {
    const r = await lockAdmin(tx, login);
    if (!active && actor === `admin:${r.login}`) throw new MssError('ADMIN_SELF_LOCKOUT', { login: r.login, what: 'disable' });
    const { rows } = await tx.query<Row>('UPDATE admin_accounts SET active = $2 WHERE id = $1 RETURNING *', [r.id, active]);
    const sessions = active ? 0 : await endSessions(tx, r.id);
    await journal.appendIn(tx, { type: active ? 'admin.account.enabled' : 'admin.account.disabled', actor, subject: `admin:${r.login}`, details: sessions ? { sessionsClosed: sessions } : {} });
    return toAccount(rows[0]);
  });
}

/**
 * New credentials for an account: a generated password (returned once), its sessions ended;
 * with resetTotp its second factor is removed too (a lost phone: it enrols again). Done by
 * another admin: resetting one's own would bypass the old password.
 */
export async function resetAdminCredentials(db: Db, journal: Pick<Journal, 'appendIn'>, login: string, actor: string, opts: { resetTotp?: boolean } = {}): Promise<{ account: AdminAccount; password: string }> {
  const password = generatePassword();
  const hash = await hashPassword(password);
  return db.transaction(async (tx) => {
    const r = await lockAdmin(tx, login);
    if (actor === `admin:${r.login}`) throw new MssError('ADMIN_SELF_LOCKOUT', { login: r.login, what: 'reset the credentials of' });
    const { rows } = await tx.query<Row>(
      `UPDATE admin_accounts SET password_hash = $2,
              totp_secret = CASE WHEN $3 THEN NULL ELSE totp_secret END, totp_pending = CASE WHEN $3 THEN NULL ELSE totp_pending END,
              totp_last_step = CASE WHEN $3 THEN NULL ELSE totp_last_step END
        WHERE id = $1 RETURNING *`,
      [r.id, hash, !!opts.resetTotp],
    );
    const sessions = await endSessions(tx, r.id);
    await journal.appendIn(tx, { type: 'admin.account.credentials-reset', actor, subject: `admin:${r.login}`, details: { totpCleared: !!opts.resetTotp, ...(sessions ? { sessionsClosed: sessions } : {}) } });
    return { account: toAccount(rows[0]), password };
  });
}

/**
 * Starts enrolling a second factor for one's own account: a new secret, kept aside until a
 * first code from it is confirmed (confirmTotp). An enrolled factor stays in force meanwhile.
 */
export async function startTotpEnrolment(db: Db, journal: Pick<Journal, 'appendIn'>, account: AdminAccount, issuer = 'MSSanté admin'): Promise<{ secret: string; uri: string }> {
  const secret = newTotpSecret();
  await db.transaction(async (tx) => {
    await tx.query('UPDATE admin_accounts SET totp_pending = $2 WHERE id = $1', [account.id, secret]);
    await journal.appendIn(tx, { type: 'admin.totp.enrolment-started', actor: `admin:${account.login}`, subject: `admin:${account.login}`, details: {} });
  });
  return { secret, uri: totpUri(secret, account.login, issuer) };
}

/** Confirms an enrolment with a first code: the pending secret becomes the account's second factor. null: the code is wrong. */
export async function confirmTotp(db: Db, journal: Pick<Journal, 'appendIn'>, account: AdminAccount, code: string, now = Date.now()): Promise<AdminAccount | null> {
  return db.transaction(async (tx) => {
    const r = await lockAdmin(tx, account.login);
    if (!r.totp_pending) throw new MssError('ADMIN_TOTP_NO_ENROLMENT', { admin: r.login });
    const step = totpStep(r.totp_pending, code, now);
    if (step === null) return null;
    const { rows } = await tx.query<Row>('UPDATE admin_accounts SET totp_secret = totp_pending, totp_pending = NULL, totp_last_step = $2 WHERE id = $1 RETURNING *', [r.id, step]);
    await journal.appendIn(tx, { type: 'admin.totp.enrolled', actor: `admin:${r.login}`, subject: `admin:${r.login}`, details: { replaced: !!r.totp_secret } });
    return toAccount(rows[0]);
  });
}

/** The account behind a bearer token, when the token is known, unexpired, unrevoked and the account active. */
export async function accountForToken(q: Queryable, token: string): Promise<AdminAccount | null> {
  if (!token.startsWith('mssadm_')) return null;
  const { rows } = await q.query<Row & { session_auth: string }>(
    `SELECT a.*, t.auth AS session_auth FROM admin_tokens t JOIN admin_accounts a ON a.id = t.account_id
      WHERE t.token_hash = $1 AND t.expires_at > now() AND t.revoked_at IS NULL AND a.active`,
    [sha256(token)],
  );
  if (!rows[0]) return null;
  return rows[0].session_auth === 'psc' ? { ...toAccount(rows[0]), pscSession: true } : toAccount(rows[0]);
}

export async function revokeToken(q: Queryable, token: string): Promise<void> {
  await q.query('UPDATE admin_tokens SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL', [sha256(token)]);
}

export const BOOTSTRAP_FILE = 'admin-bootstrap.txt';

/**
 * On the first start (no admin account at all): a national account with a generated
 * password, written to <dataDir>/admin-bootstrap.txt (mode 0600) for `mss start` to print
 * once. Returns null when accounts already exist.
 */
export async function ensureBootstrapAdmin(db: Db, journal: Pick<Journal, 'appendIn'>, dataDir: string, login: string): Promise<{ login: string; password: string; file: string } | null> {
  const n = (await db.query<{ n: number }>('SELECT count(*)::int8 AS n FROM admin_accounts')).rows[0].n;
  if (n > 0) return null;
  const { account, password } = await createAdmin(db, journal, { login, role: 'national' }, 'system:bootstrap');
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, BOOTSTRAP_FILE);
  if (existsSync(file)) chmodSync(file, 0o600);
  writeFileSync(file, `login: ${account.login}\npassword: ${password}\n# created ${new Date().toISOString()} by the first start; change it and delete this file.\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return { login: account.login, password, file };
}
