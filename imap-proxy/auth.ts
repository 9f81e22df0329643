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
//     address), for personal certificates and the registered certificate of an APP box;
//   - AUTHENTICATE OAUTHBEARER (a= the box) or XOAUTH2 (user= the box) with a Pro Santé
//     Connect access token: the token's professional, mapped to their account, opens the box
//     if the policy lets them, as with a password. A token cannot be guessed (its signature
//     is checked), so it is not throttled; every failure still costs the base delay.
import { EXTERNAL_FAILURE, isMssError, TOKEN_FAILURE, type TokenFailure } from '../core/errors.js';
import type { PscLogin } from '../identity/psc/login.js';
import type { Journal } from '../core/journal/index.js';
import type { Logger } from '../core/logger.js';
import { principalActor, type ApplicationPrincipal, type LoginThrottle, type PersonPrincipal, type Policy } from '../core/policy/index.js';
import type { BackendEndpoint } from './backend.js';
import { refusal, verdictRefusal } from './wire.js';

export type CredentialResult = { ok: true; principal: PersonPrincipal } | { ok: false; failure: string; login?: string };

export interface AuthDeps {
  policy: Pick<Policy, 'mayOpenBal'>;
  journal: Pick<Journal, 'append'>;
  /** User name (login or address of a personal box) + password[+TOTP] → the person, or why not (journal only). */
  checkPassword(user: string, secret: string): Promise<CredentialResult>;
  /** A client certificate the TLS layer verified → the person (personal certificate) or application it stands for. */
  certificatePrincipal(pem: string): Promise<PersonPrincipal | ApplicationPrincipal | null>;
  /** core/policy's one login throttle (password logins only: a certificate is never locked out). */
  throttle: Pick<LoginThrottle, 'guard' | 'failureDelayMs'>;
  log: Logger;
  sleep?: (ms: number) => Promise<void>;
  /** Pro Santé Connect: an access token → the person (throws PSC_UNAVAILABLE when the provider cannot be asked); the RFC 7628 error challenge (base64) sent before a refusal. */
  psc?: { checkToken(token: string): Promise<PscLogin>; challenge: string };
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
  | { method: 'EXTERNAL'; authzid: string | null; certificate: ClientCertificate | null }
  /** token null: the SASL message could not be read. user: the box (OAUTHBEARER's a=, XOAUTH2's user=). */
  | { method: 'OAUTHBEARER' | 'XOAUTH2'; user: string | null; token: string | null };

export interface LoginContext {
  session: string;
  remote: string;
  tag: string;
}

/** challenge: an OAuth refusal's RFC 7628 error, sent as a continuation before the answer. */
export type LoginOutcome = {
  ok: true;
  principal: PersonPrincipal | ApplicationPrincipal;
  bal: string;
  method: string;
  /** A shared store (mailstore.cluster): the box's back ends, in the order to try them; absent: the one back end. */
  backends?: BackendEndpoint[];
} | { ok: false; answer: string; challenge?: string };

const isOAuth = (req: LoginRequest): req is Extract<LoginRequest, { token: string | null }> => req.method === 'OAUTHBEARER' || req.method === 'XOAUTH2';
/** The box a request names, for the journal's subject. */
const namedBox = (req: LoginRequest) => (req.method === 'EXTERNAL' ? (req.authzid ?? '') : isOAuth(req) ? (req.user ?? '') : splitUser(req.user, req.authzid).bal);

/** "box*who" → the box and the person; a plain user name is both (a personal box by its holder). */
export function splitUser(user: string, authzid: string | null): { bal: string; who: string } {
  const star = user.lastIndexOf('*');
  if (star > 0 && star < user.length - 1) return { bal: user.slice(0, star).trim(), who: user.slice(star + 1).trim() };
  return { bal: (authzid || user).trim(), who: user.trim() };
}

export async function authorise(deps: AuthDeps, req: LoginRequest, ctx: LoginContext): Promise<LoginOutcome> {
  try {
    const out = await decide(deps, req, ctx);
    return !out.ok && isOAuth(req) && deps.psc ? { ...out, challenge: deps.psc.challenge } : out;
  } catch (e) {
    if (isMssError(e) && e.code === 'PSC_UNAVAILABLE') {
      // The provider's keys or introspection could not be reached: try again later, never an accept.
      deps.log.warn({ err: e.message, session: ctx.session }, 'imap login: Pro Santé Connect unavailable');
      await deps.journal
        .append({ type: 'imap.auth.failed', actor: 'anonymous', subject: namedBox(req), details: { session: ctx.session, method: req.method, remote: ctx.remote, failure: 'psc-unavailable' } })
        .catch(() => {});
      return { ok: false, answer: refusal(ctx.tag, 'PSC_UNAVAILABLE', { reason: 'its keys or introspection did not answer' }) };
    }
    // The annuaire could not answer (database down…): a temporary refusal, never an accept.
    deps.log.error({ err: e, session: ctx.session }, 'imap login: the directory could not answer');
    await deps.journal
      .append({ type: 'imap.auth.failed', actor: 'anonymous', subject: namedBox(req), details: { session: ctx.session, method: req.method, remote: ctx.remote, failure: 'directory-unavailable' } })
      .catch(() => {});
    return { ok: false, answer: refusal(ctx.tag, 'DIRECTORY_UNAVAILABLE') };
  }
}

async function decide(deps: AuthDeps, req: LoginRequest, ctx: LoginContext): Promise<LoginOutcome> {
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  // Like Dovecot's auth_failure_delay, every failure costs the client a wait: the throttle's
  // own (growing) one for a wrong password, the base one for anything else.
  const fail = async (answer: string, journal: { actor: string; subject: string; failure: string; extra?: Record<string, unknown> }, delayed = false): Promise<LoginOutcome> => {
    if (!delayed) await sleep(deps.throttle.failureDelayMs);
    await deps.journal
      .append({ type: 'imap.auth.failed', actor: journal.actor, subject: journal.subject, details: { session: ctx.session, method: req.method, remote: ctx.remote, failure: journal.failure, ...journal.extra } })
      .catch((e) => deps.log.error({ err: e }, 'could not journal a failed IMAP login'));
    return { ok: false, answer };
  };

  let principal: PersonPrincipal | ApplicationPrincipal;
  let bal: string;
  if (req.method === 'EXTERNAL') {
    const c = req.certificate;
    const subject = req.authzid ?? c?.subject ?? '';
    // No password is guessed here (the TLS handshake proved the key): not throttled.
    const refused = (why: keyof typeof EXTERNAL_FAILURE) => refusal(ctx.tag, 'AUTH_EXTERNAL_FAILED', { why: EXTERNAL_FAILURE[why] });
    if (!c) return fail(refused('no-certificate'), { actor: 'anonymous', subject, failure: 'no-certificate' });
    if (!c.authorized) return fail(refused('certificate-rejected'), { actor: 'anonymous', subject, failure: 'certificate-rejected', extra: { certificate: c.subject, tlsError: c.error } });
    const p = await deps.certificatePrincipal(c.pem);
    if (!p) return fail(refused('no-account-for-certificate'), { actor: 'anonymous', subject, failure: 'no-account-for-certificate', extra: { certificate: c.subject } });
    const named = req.authzid?.trim() || (c.emails.length === 1 ? c.emails[0] : '');
    if (!named) return fail(refusal(ctx.tag, 'IMAP_EXTERNAL_NO_MAILBOX'), { actor: principalActor(p), subject: c.subject, failure: 'no-mailbox-named' });
    principal = p;
    bal = named;
  } else if (isOAuth(req)) {
    const subject = req.user ?? '';
    const refused = (why: TokenFailure) => refusal(ctx.tag, 'AUTH_TOKEN_FAILED', { why: TOKEN_FAILURE[why] });
    if (!deps.psc) return fail(refusal(ctx.tag, 'IMAP_AUTH_MECHANISM', { mechanism: req.method, offered: 'PLAIN' }), { actor: 'anonymous', subject, failure: 'mechanism-not-offered' });
    if (!req.token) return fail(refused('bad-payload'), { actor: 'anonymous', subject, failure: 'bad-payload' });
    const r = await deps.psc.checkToken(req.token);
    if (!r.ok) return fail(refused(r.failure), { actor: 'anonymous', subject, failure: r.failure, extra: r.idnps ? { idnps: r.idnps } : {} });
    // The box named: "box" or, as with a password, "box*who" (who is the token's person anyway).
    const box = req.user ? splitUser(req.user, null).bal : '';
    if (!box) return fail(refused('no-mailbox-named'), { actor: principalActor(r.principal), subject, failure: 'no-mailbox-named' });
    principal = r.principal;
    bal = box;
  } else {
    const { bal: box, who } = splitUser(req.user, req.authzid);
    const g = await deps.throttle.guard({ realm: 'person', user: who, source: ctx.remote, front: 'imap' }, () => deps.checkPassword(who, req.secret), (r) => !r.ok);
    if (!g.ok) return fail(verdictRefusal(ctx.tag, g.refusal), { actor: 'anonymous', subject: box, failure: 'throttled', extra: { user: who, throttled: g.who, code: g.refusal.code } });
    const r = g.value;
    if (!r.ok) return fail(refusal(ctx.tag, 'AUTH_FAILED'), { actor: r.login ? `person:${r.login}` : 'anonymous', subject: box, failure: r.failure, extra: { user: who } }, true);
    principal = r.principal;
    bal = box;
  }

  // Authenticated: may this principal open that box? The policy journals its own refusals.
  const v = await deps.policy.mayOpenBal(principal, bal, { front: 'imap', remote: ctx.remote });
  if (!v.ok) {
    await sleep(deps.throttle.failureDelayMs);
    return { ok: false, answer: verdictRefusal(ctx.tag, v) };
  }
  return { ok: true, principal, bal: bal.toLowerCase(), method: req.method };
}
