// Who is logging in, and may they open the mailbox they named? Socket-free: the session
// hands over what the client sent (LOGIN, AUTHENTICATE PLAIN, AUTHENTICATE EXTERNAL with
// its TLS certificate) and gets back a principal and a BAL, or the wire answer of the
// refusal. Authentication is the annuaire's (injected: the protocol folders never import
// each other), authorisation is core/policy's; this file only turns them into IMAP.
//
// User names. The mailbox to open is the BAL address; the credential is the person's own:
//   - LOGIN jeanne.martin@domain <password[+TOTP]>   a personal box, by its holder;
//   - LOGIN secretariat@domain*marie <password>     an organisational box, as member marie
//     (Dovecot's master-user syntax: "open <box> as <who>"; logins never contain "*");
//   - AUTHENTICATE PLAIN with authzid = the box and authcid = the person (RFC 4616);
//   - AUTHENTICATE EXTERNAL with authzid = the box (or none: the certificate's e-mail
//     address), for personal certificates and the registered certificate of an APP box.
import type { Journal } from '../core/journal/index.js';
import type { Logger } from '../core/logger.js';
import { principalActor, type ApplicationPrincipal, type PersonPrincipal, type Policy } from '../core/policy/index.js';
import type { ErrorCode } from '../core/errors.js';
import type { FailureThrottle } from './throttle.js';
import { refusal, verdictRefusal } from './wire.js';

export type CredentialResult = { ok: true; principal: PersonPrincipal } | { ok: false; failure: string; login?: string };

export interface AuthDeps {
  policy: Pick<Policy, 'mayOpenBal'>;
  journal: Pick<Journal, 'append'>;
  /** User name (login or address of a personal box) + password[+TOTP] → the person, or why not (journal only). */
  checkPassword(user: string, secret: string): Promise<CredentialResult>;
  /** A client certificate the TLS layer verified → the person (personal certificate) or application it stands for. */
  certificatePrincipal(pem: string): Promise<PersonPrincipal | ApplicationPrincipal | null>;
  throttle: FailureThrottle;
  failureDelayMs: number;
  log: Logger;
  sleep?: (ms: number) => Promise<void>;
}

export interface ClientCertificate {
  pem: string;
  /** The chain verified against tls.caFile, with the CRLs. */
  authorized: boolean;
  error?: string;
  subject: string;
  /** rfc822Name entries: the mailbox a certificate names when the client names none. */
  emails: string[];
}

export type LoginRequest =
  | { method: 'LOGIN' | 'PLAIN'; user: string; authzid: string | null; secret: string }
  | { method: 'EXTERNAL'; authzid: string | null; certificate: ClientCertificate | null };

export interface LoginContext {
  session: string;
  remote: string;
  tag: string;
}

export type LoginOutcome = { ok: true; principal: PersonPrincipal | ApplicationPrincipal; bal: string; method: string } | { ok: false; answer: string };

/** "box*who" → the box and the person; a plain user name is both (a personal box by its holder). */
export function splitUser(user: string, authzid: string | null): { bal: string; who: string } {
  const star = user.lastIndexOf('*');
  if (star > 0 && star < user.length - 1) return { bal: user.slice(0, star).trim(), who: user.slice(star + 1).trim() };
  return { bal: (authzid || user).trim(), who: user.trim() };
}

export async function authorise(deps: AuthDeps, req: LoginRequest, ctx: LoginContext): Promise<LoginOutcome> {
  try {
    return await decide(deps, req, ctx);
  } catch (e) {
    // The annuaire could not answer (database down…): a temporary refusal, never an accept.
    deps.log.error({ err: e, session: ctx.session }, 'imap login: the directory could not answer');
    await deps.journal
      .append({ type: 'imap.auth.failed', actor: 'anonymous', subject: req.method === 'EXTERNAL' ? (req.authzid ?? '') : splitUser(req.user, req.authzid).bal, details: { session: ctx.session, method: req.method, remote: ctx.remote, failure: 'directory-unavailable' } })
      .catch(() => {});
    return { ok: false, answer: refusal(ctx.tag, 'DIRECTORY_UNAVAILABLE') };
  }
}

async function decide(deps: AuthDeps, req: LoginRequest, ctx: LoginContext): Promise<LoginOutcome> {
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const fail = async (code: ErrorCode, journal: { actor: string; subject: string; failure: string; extra?: Record<string, unknown> }, details: Record<string, unknown> = {}): Promise<LoginOutcome> => {
    // Like Dovecot's auth_failure_delay: every failure costs the client the same wait.
    await sleep(deps.failureDelayMs);
    await deps.journal
      .append({ type: 'imap.auth.failed', actor: journal.actor, subject: journal.subject, details: { session: ctx.session, method: req.method, remote: ctx.remote, failure: journal.failure, ...journal.extra } })
      .catch((e) => deps.log.error({ err: e }, 'could not journal a failed IMAP login'));
    return { ok: false, answer: refusal(ctx.tag, code, details) };
  };

  let principal: PersonPrincipal | ApplicationPrincipal;
  let bal: string;
  if (req.method === 'EXTERNAL') {
    const c = req.certificate;
    const subject = req.authzid ?? c?.subject ?? '';
    if (!c) {
      deps.throttle.failed(ctx.remote, null);
      return fail('AUTH_FAILED', { actor: 'anonymous', subject, failure: 'no-certificate' });
    }
    if (!c.authorized) {
      deps.throttle.failed(ctx.remote, null);
      return fail('AUTH_FAILED', { actor: 'anonymous', subject, failure: 'certificate-rejected', extra: { certificate: c.subject, tlsError: c.error } });
    }
    const p = await deps.certificatePrincipal(c.pem);
    if (!p) {
      deps.throttle.failed(ctx.remote, null);
      return fail('AUTH_FAILED', { actor: 'anonymous', subject, failure: 'no-account-for-certificate', extra: { certificate: c.subject } });
    }
    const named = req.authzid?.trim() || (c.emails.length === 1 ? c.emails[0] : '');
    if (!named) return fail('IMAP_EXTERNAL_NO_MAILBOX', { actor: principalActor(p), subject: c.subject, failure: 'no-mailbox-named' });
    principal = p;
    bal = named;
  } else {
    const { bal: box, who } = splitUser(req.user, req.authzid);
    const gate = deps.throttle.check(ctx.remote, who);
    if (!gate.ok) {
      const minutes = Math.max(1, Math.ceil(gate.retryAfterMs / 60_000));
      return fail('IMAP_AUTH_THROTTLED', { actor: 'anonymous', subject: box, failure: 'throttled', extra: { user: who, throttled: gate.who } }, { who: gate.who === 'source' ? 'from your address' : 'for this account', minutes });
    }
    const r = await deps.checkPassword(who, req.secret);
    if (!r.ok) {
      deps.throttle.failed(ctx.remote, who);
      return fail('AUTH_FAILED', { actor: r.login ? `person:${r.login}` : 'anonymous', subject: box, failure: r.failure, extra: { user: who } });
    }
    deps.throttle.succeeded(who);
    principal = r.principal;
    bal = box;
  }

  // Authenticated: may this principal open that box? The policy journals its own refusals.
  const v = await deps.policy.mayOpenBal(principal, bal, { front: 'imap', remote: ctx.remote });
  if (!v.ok) {
    await sleep(deps.failureDelayMs);
    return { ok: false, answer: verdictRefusal(ctx.tag, v) };
  }
  return { ok: true, principal, bal: bal.toLowerCase(), method: req.method };
}
