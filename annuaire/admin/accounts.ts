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
import { dummyHash, generatePassword, hashPassword, verifyPassword } from '../bal/credentials.js';
import { normaliseStructureId } from '../bal/identifiers.js';
import { domainForms } from '../whitelist/parse.js';

export interface AdminAccount {
  id: string;
  login: string;
  role: AdminRole;
  domains: string[];
  structures: string[];
  active: boolean;
  createdAt: Date;
  createdBy: string;
  lastLoginAt: Date | null;
}

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
});

export const principalOf = (a: Pick<AdminAccount, 'login' | 'role' | 'domains' | 'structures'>): AdminPrincipal => ({ kind: 'admin', login: a.login, role: a.role, domains: a.domains, structures: a.structures });

export interface NewAdmin {
  login: string;
  role: AdminRole;
  domains?: string[];
  structures?: string[];
  /** Absent: one is generated and returned. */
  password?: string;
}

/** Creates an account; returns it with its password (the generated one, if none was given). */
export async function createAdmin(db: Db, journal: Pick<Journal, 'appendIn'>, input: NewAdmin, actor: string): Promise<{ account: AdminAccount; password: string }> {
  const login = input.login.trim();
  if (!/^[A-Za-z0-9][A-Za-z0-9._@-]{1,63}$/.test(login)) throw new MssError('BAD_REQUEST', { reason: `"${input.login}" is not a usable login (letters, digits, . _ @ -)` });
  if (input.role !== 'national' && input.role !== 'regional') throw new MssError('BAD_REQUEST', { reason: 'role must be national or regional' });
  const domains = (input.domains ?? []).map((d) => {
    const f = domainForms(d);
    if (!f) throw new MssError('BAD_REQUEST', { reason: `"${d}" is not a domain name` });
    return f.ascii;
  });
  const structures = (input.structures ?? []).map(normaliseStructureId);
  if (input.role === 'regional' && !domains.length && !structures.length) throw new MssError('BAD_REQUEST', { reason: 'a regional account needs at least one domain or structure in its scope' });
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

/**
 * Checks a login and password; on success issues a bearer token valid ttlMs. Every attempt
 * is journalled (admin.login / admin.login.failed), and an unknown login costs the same
 * scrypt as a wrong password.
 */
export async function adminLogin(
  db: Db,
  journal: Pick<Journal, 'append'>,
  login: string,
  password: string,
  ttlMs: number,
  remote?: string,
): Promise<{ token: string; expiresAt: Date; account: AdminAccount } | null> {
  const { rows } = await db.query<Row>('SELECT * FROM admin_accounts WHERE lower(login) = lower($1)', [login.trim()]);
  const row = rows[0];
  const ok = await verifyPassword(row?.password_hash ?? (await dummyHash()), password);
  if (!row || !row.active || !ok) {
    await journal.append({ type: 'admin.login.failed', actor: `admin:${login.trim().slice(0, 64)}`, details: { reason: !row ? 'unknown-login' : !row.active ? 'inactive' : 'bad-password', ...(remote ? { remote } : {}) } });
    return null;
  }
  const token = `mssadm_${randomBytes(32).toString('base64url')}`;
  const expiresAt = new Date(Date.now() + ttlMs);
  await db.transaction(async (tx) => {
    await tx.query('INSERT INTO admin_tokens (token_hash, account_id, expires_at) VALUES ($1, $2, $3)', [sha256(token), row.id, expiresAt]);
    await tx.query('UPDATE admin_accounts SET last_login_at = now() WHERE id = $1', [row.id]);
    // Expired tokens are of no use to anyone: clear them as we go.
    await tx.query('DELETE FROM admin_tokens WHERE expires_at < now() - interval \'1 day\'');
  });
  await journal.append({ type: 'admin.login', actor: `admin:${row.login}`, details: { expiresAt: expiresAt.toISOString(), ...(remote ? { remote } : {}) } });
  return { token, expiresAt, account: toAccount(row) };
}

/** The account behind a bearer token, when the token is known, unexpired, unrevoked and the account active. */
export async function accountForToken(q: Queryable, token: string): Promise<AdminAccount | null> {
  if (!token.startsWith('mssadm_')) return null;
  const { rows } = await q.query<Row>(
    `SELECT a.* FROM admin_tokens t JOIN admin_accounts a ON a.id = t.account_id
      WHERE t.token_hash = $1 AND t.expires_at > now() AND t.revoked_at IS NULL AND a.active`,
    [sha256(token)],
  );
  return rows[0] ? toAccount(rows[0]) : null;
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
