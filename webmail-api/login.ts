// The password login of the API: the throttle, the annuaire's credential check, the journal,
// a new session token. It needs the database, so with webmail.workers it runs in the
// platform's process, which the workers ask (workers.ts).
import { isMssError, MssError, TOKEN_FAILURE } from '../core/errors.js';
import { pscLevel } from '../identity/psc/login.js';
import { principalActor, verdictError, type PersonPrincipal } from '../core/policy/index.js';
import type { WebmailDeps } from './deps.js';

export type LoginDeps = Pick<WebmailDeps, 'checkPassword' | 'throttle' | 'openSession' | 'journal' | 'psc'>;
export interface LoginResult {
  token: string;
  expiresAt: Date;
  principal: PersonPrincipal;
}
export type LoginFn = (login: string, secret: string, remote: string) => Promise<LoginResult>;

/** login + password (+ its TOTP code appended) → a session, or the refusal (AUTH_FAILED, LOGIN_THROTTLED), journalled. */
export async function passwordLogin(deps: LoginDeps, login: string, secret: string, remote: string): Promise<LoginResult> {
  // A session token is not a password: a token must not mint tokens (its maximum age would mean nothing).
  const failureOf = (r: Awaited<ReturnType<LoginDeps['checkPassword']>>) => (!r.ok ? r.failure : r.principal.auth === 'token' ? 'token-as-password' : null);
  const g = await deps.throttle.guard({ realm: 'person', user: login, source: remote, front: 'webmail' }, () => deps.checkPassword(login, secret), (r) => failureOf(r) !== null);
  if (!g.ok) {
    await deps.journal.append({ type: 'webmail.login.failed', actor: 'anonymous', subject: login, details: { failure: 'throttled', throttled: g.who, remote } });
    throw verdictError(g.refusal);
  }
  const r = g.value;
  const failure = failureOf(r);
  if (!r.ok || failure) {
    // The throttle has already made the client wait (longer with each recent failure).
    await deps.journal.append({ type: 'webmail.login.failed', actor: 'anonymous', subject: login, details: { failure, remote } });
    throw new MssError('AUTH_FAILED');
  }
  const { token, expiresAt } = await deps.openSession(r.principal);
  await deps.journal.append({ type: 'webmail.login', actor: principalActor(r.principal), subject: r.principal.login, details: { auth: r.principal.auth, remote, expiresAt: expiresAt.toISOString() } });
  return { token, expiresAt, principal: r.principal };
}

/** The browser's PSC login, in the platform's process like the password one (workers ask it). */
export interface PscWebLogin {
  /** The authorisation URL at PSC and the value the browser keeps (cookie) until PSC answers. */
  start(redirectUri: string): Promise<{ url: string; pending: string }>;
  /** PSC's answer (the callback's query string) and the browser's cookie → a session, or PSC_LOGIN_FAILED / PSC_UNAVAILABLE, journalled. */
  finish(query: string, pending: string | null, remote: string): Promise<LoginResult>;
}

export function pscWebLogin(deps: LoginDeps & { psc: NonNullable<LoginDeps['psc']> }): PscWebLogin {
  return {
    start: (redirectUri) => deps.psc.startLogin(redirectUri),
    async finish(query, pending, remote) {
      let r;
      try {
        r = await deps.psc.finishLogin(new URLSearchParams(query), pending);
      } catch (e) {
        if (isMssError(e) && e.code === 'PSC_UNAVAILABLE') await deps.journal.append({ type: 'webmail.login.failed', actor: 'anonymous', subject: 'psc', details: { auth: 'psc', failure: 'psc-unavailable', remote } });
        throw e;
      }
      if (!r.ok) {
        await deps.journal.append({ type: 'webmail.login.failed', actor: 'anonymous', subject: r.idnps ?? 'psc', details: { auth: 'psc', failure: r.failure, remote, ...(r.idnps ? { idnps: r.idnps } : {}) } });
        throw new MssError('PSC_LOGIN_FAILED', { why: TOKEN_FAILURE[r.failure], failure: r.failure });
      }
      const { token, expiresAt } = await deps.openSession(r.principal);
      await deps.journal.append({ type: 'webmail.login', actor: principalActor(r.principal), subject: r.principal.login, details: { auth: 'psc', ...pscLevel(r.principal), remote, expiresAt: expiresAt.toISOString() } });
      return { token, expiresAt, principal: r.principal };
    },
  };
}
