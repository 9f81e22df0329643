import { randomBytes } from 'node:crypto';
import { domainToASCII } from 'node:url';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import { SMTPServer, type SMTPServerAddress, type SMTPServerAuthentication, type SMTPServerDataStream, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import type { Journal } from '../core/journal/index.js';
import type { Logger } from '../core/logger.js';
import { normaliseAddress, normaliseDomain, principalLabel, type ApplicationPrincipal, type LoginThrottle, type PersonPrincipal, type Policy } from '../core/policy/index.js';
import { peerIdentity, serverTlsOptions, type PeerIdentity, type TlsMaterial } from '../certs/tls.js';
import { EXTERNAL_FAILURE, isMssError, MssError, TOKEN_FAILURE, type TokenFailure } from '../core/errors.js';
import { pscLevel, type PscLogin } from '../identity/psc/login.js';
import { checkContent } from './content-rules.js';
import { isPatientAddress, patientRecipientProblem, patientSizeProblem, type PatientRules } from './patients.js';
import { WindowCounter, windowLabel } from './limits.js';
import type { WindowCount } from '../core/policy/window-counts.js';
import { LineEndingCheck, receivedHeader } from './message.js';
import type { RecipientResolver } from './recipients.js';
import { smtpError, smtpRefusal, type SmtpReplyError } from './reply.js';
import { ExternalAuthServer } from './sasl-external.js';
import type { Accepted } from './spool-writer.js';
import { guardReplies } from './wire.js';

/**
 * What a front needs from the rest of the platform, handed over by the composition root:
 * narrow services, each a function of plain data.
 */
export interface FrontDeps {
  journal: Pick<Journal, 'append'>;
  policy: Pick<Policy, 'mayPeerConnect' | 'inTrustSpace' | 'maySendAs' | 'mayPeerSendFrom'>;
  resolver: Pick<RecipientResolver, 'resolve'>;
  tls: TlsMaterial;
  log: Logger;
  /** operator.hostname: banner, EHLO, Received headers (sent in its ASCII form). */
  hostname: string;
  localDomains: string[];
  maxSize: number;
  /** Mon Espace Santé: patients' boxes (INS checked at RCPT) and their size limit. */
  patients?: PatientRules;
  /** Recipients per transaction (452 4.5.3 beyond). */
  maxRecipients: number;
  /** Refusals per connection before 421 4.7.0 and close. */
  maxErrors: number;
  /** Unknown recipients per peer and per client address, shared by every front (and, on PostgreSQL, every node). */
  unknownRecipients: WindowCount;
  /**
   * Stores an accepted message — spool row, outbound rows, `smtp.received` event — and
   * resolves with its spool id once that is committed (the 250 waits for it).
   */
  accept: (m: Accepted) => Promise<number>;
  /** Submission only: user name + password (+TOTP) → the person, or null. */
  authenticate?: (user: string, secret: string) => Promise<PersonPrincipal | null>;
  /** Submission only: a verified client certificate → the person or application it stands for. */
  certificatePrincipal?: (pem: string) => Promise<PersonPrincipal | ApplicationPrincipal | null>;
  /** Submission only: Pro Santé Connect access tokens (AUTH XOAUTH2 / OAUTHBEARER) → the person (throws PSC_UNAVAILABLE when the provider cannot be asked); the RFC 7628 error challenge. */
  psc?: { checkToken(token: string): Promise<PscLogin>; challenge: string };
  /** Submission only: core/policy's login throttle, around every password check (AUTH PLAIN / LOGIN). */
  throttle?: Pick<LoginThrottle, 'guard'>;
  /** Messages per hour and per authenticated principal (submission). */
  ratePerHour?: number;
  /** Whether `who` may submit one more message within the hour (default: this front's own count). */
  allowRate?: (who: string, perHour: number) => boolean | Promise<boolean>;
}

/** Per-connection facts the hooks share. */
interface ConnState {
  peer?: PeerIdentity;
  certPem?: string;
  tlsError?: string;
  tls?: { version: string; cipher: string };
  principal?: PersonPrincipal | ApplicationPrincipal;
  /** Submission: what a verified certificate stands for (null: nothing), looked up once the TLS session is up. */
  certPrincipal?: PersonPrincipal | ApplicationPrincipal | null;
  local: string[];
  remote: string[];
  /** MX: when the policy last let this peer in, the liste blanche domain it was let in by, and the sender domains it accepted since. */
  peerAcceptedAt?: number;
  peerDomain?: string;
  senderDomains?: Set<string>;
  /** Refusals since the last accepted message (the error limit); recipients refused for the transaction's recipient limit. */
  errors: number;
  overRecipients: number;
  /** Refusals a tripped limit answered without an event each, by code: journalled as one event when the connection closes. */
  limited?: Map<string, { count: number; reply: string }>;
}

/**
 * A session sends several messages: the liste blanche verdicts for its certificate and its
 * sender domains hold for this long within it (a refusal is never remembered).
 */
const SESSION_VERDICT_MS = 60_000;

type Front = 'mx' | 'submission';

const isLocal = (deps: FrontDeps, address: string) => deps.localDomains.some((d) => normaliseDomain(d) === domainOf(address));
/** The domain of an envelope address as the policy looks it up (exported for the fuzz tests). */
export const domainOf = (a: string) => normaliseDomain(a.slice(a.lastIndexOf('@') + 1));

/**
 * One factory for both fronts: the MX (port 25, peers over mutual TLS) and submission
 * (465/587, authenticated people and applications). smtp-server owns the protocol; every
 * decision here is a call to the policy or the annuaire, and every refusal leaves with its
 * catalogue code and is journalled.
 */
export function createSmtpFront(front: Front, deps: FrontDeps, opts: { implicitTls?: boolean } = {}): SMTPServer {
  const state = new WeakMap<SMTPServerSession, ConnState>();
  const st = (s: SMTPServerSession) => {
    let v = state.get(s);
    if (!v) state.set(s, (v = { local: [], remote: [], errors: 0, overRecipients: 0 }));
    return v;
  };
  const log = deps.log.child({ front });
  // What peers see as our name: the operator's host name, in ASCII (an IDN in its xn-- form).
  const name = domainToASCII(deps.hostname);
  if (!name) throw new MssError('CONFIG_INVALID', { problems: `operator.hostname ${JSON.stringify(deps.hostname)} is not a host name` });
  const identities = new Map<string, { peer: PeerIdentity; until: number }>();
  const allow = deps.allowRate ?? rateLimiter();

  const refuse = async (session: SMTPServerSession, err: ReturnType<typeof smtpError>, subject: string, extra: Record<string, unknown> = {}) => {
    log.info({ session: session.id, remote: session.remoteAddress, code: err.code, reply: `${err.responseCode} ${err.message}` }, 'smtp refused');
    await deps.journal
      .append({ type: 'smtp.refused', actor: actorOf(session), subject, details: { front, code: err.code, reply: `${err.responseCode} ${err.message}`, remote: session.remoteAddress, ...extra } })
      .catch((e) => log.error({ err: e }, 'could not journal an SMTP refusal'));
    return err;
  };
  const actorOf = (session: SMTPServerSession) => {
    const c = state.get(session);
    if (c?.principal) return principalLabel(c.principal);
    if (c?.peer) return `peer ${c.peer.subject.CN ?? '?'}`;
    return `client ${session.remoteAddress}`;
  };
  /**
   * A limit tripped: one `smtp.limit` event. The refusals it causes after that are tallied
   * (noted) and journalled together when the connection closes, so a flood of them is
   * still in the record without one event per refused command.
   */
  const tripped = (session: SMTPServerSession, limit: 'recipients' | 'errors' | 'unknown-recipients', err: SmtpReplyError, subject: string, extra: Record<string, unknown> = {}) => {
    log.warn({ session: session.id, remote: session.remoteAddress, limit, subject, reply: `${err.responseCode} ${err.message}` }, 'smtp limit reached');
    void deps.journal
      .append({ type: 'smtp.limit', actor: actorOf(session), subject, details: { front, limit, code: err.code, reply: `${err.responseCode} ${err.message}`, remote: session.remoteAddress, ...extra } })
      .catch((e) => log.error({ err: e }, 'could not journal an SMTP limit'));
  };
  const noted = (session: SMTPServerSession, err: SmtpReplyError): SmtpReplyError => {
    const c = st(session);
    const m = (c.limited ??= new Map());
    const t = m.get(err.code) ?? { count: 0, reply: `${err.responseCode} ${err.message}` };
    t.count++;
    m.set(err.code, t);
    return err;
  };
  /**
   * Who unknown recipients are counted against. MX: the operator and its client address.
   * Submission: the person or application that logged in — not the address, which a whole
   * hospital may share behind one NAT.
   */
  const harvestKeys = (session: SMTPServerSession, c: ConnState) =>
    c.principal ? [principalLabel(c.principal)] : [`operator ${c.peerDomain ?? c.peer?.subject.CN ?? '?'}`, `address ${session.remoteAddress}`];
  const harvestRefusal = (who: string) =>
    smtpError('SMTP_UNKNOWN_RECIPIENT_RATE', { who, limit: deps.unknownRecipients.limit, window: windowLabel(deps.unknownRecipients.windowMs) });

  /** AUTH PLAIN / LOGIN: the password checked behind core/policy's login throttle. */
  const byPassword = async (session: SMTPServerSession, method: string, user: string, secret: string): Promise<PersonPrincipal | Error> => {
    if (!deps.authenticate || !deps.throttle) return smtpError('SUBMISSION_AUTH_REQUIRED');
    const authenticate = deps.authenticate;
    const g = await deps.throttle.guard({ realm: 'person', user, source: session.remoteAddress, front: 'smtp-submission' }, () => authenticate(user, secret), (p) => !p);
    if (!g.ok) return refuse(session, smtpRefusal(g.refusal), user, { method, failure: 'throttled', throttled: g.who });
    return g.value ?? (await refuse(session, smtpError('AUTH_FAILED'), user, { method }));
  };
  /**
   * AUTH EXTERNAL (RFC 4422): whom this connection's verified certificate stands for. No
   * password, so no throttle: a certificate is never locked out. An authorisation identity
   * names the box to act as, and must be one the principal may send as.
   */
  const byCertificate = async (session: SMTPServerSession, authzid: string): Promise<PersonPrincipal | ApplicationPrincipal | Error> => {
    const c = st(session);
    const failure = !c.certPem ? 'no-certificate' : certificateRefusal(c) ? 'certificate-rejected' : null;
    if (failure === null && c.certPrincipal === undefined && deps.certificatePrincipal) c.certPrincipal = await deps.certificatePrincipal(c.certPem!);
    const p = failure === null ? c.certPrincipal : null;
    const certificate = c.peer ? { certificate: subjectLine(c.peer) } : {};
    if (!p) {
      const why = failure ?? 'no-account-for-certificate';
      return refuse(session, smtpError('AUTH_EXTERNAL_FAILED', { why: EXTERNAL_FAILURE[why] }), authzid, { method: 'EXTERNAL', failure: why, ...certificate, ...(c.tlsError ? { tlsError: c.tlsError } : {}) });
    }
    if (authzid) {
      const v = await deps.policy.maySendAs(p, authzid, { front: 'smtp-submission', remote: session.remoteAddress });
      if (!v.ok) return refuse(session, smtpError('SUBMISSION_AUTHZID_REFUSED', { reason: v.reason }), authzid, { method: 'EXTERNAL', failure: 'authzid-refused', ...certificate });
    }
    return p;
  };

  /**
   * AUTH XOAUTH2 / OAUTHBEARER: a Pro Santé Connect access token. Not throttled (its signature
   * cannot be guessed). The user name, when it is an address, names the box to act as (as
   * EXTERNAL's authorisation identity), which the token's person must be allowed to send as;
   * a login must be the token's person's own.
   */
  const byToken = async (session: SMTPServerSession, method: string, user: string, token: string): Promise<PersonPrincipal | Error> => {
    if (!deps.psc) return smtpError('SUBMISSION_AUTH_REQUIRED');
    const tokenRefused = (failure: TokenFailure, extra: Record<string, unknown> = {}) => refuse(session, smtpError('AUTH_TOKEN_FAILED', { why: TOKEN_FAILURE[failure] }), user, { method, failure, ...extra });
    let r: PscLogin;
    try {
      r = await deps.psc.checkToken(token);
    } catch (e) {
      if (!isMssError(e) || e.code !== 'PSC_UNAVAILABLE') throw e;
      return refuse(session, smtpError('PSC_UNAVAILABLE', { reason: 'its keys or introspection did not answer' }), user, { method, failure: 'psc-unavailable' });
    }
    if (!r.ok) return tokenRefused(r.failure, r.idnps ? { idnps: r.idnps } : {});
    const p = r.principal;
    if (user.includes('@')) {
      const v = await deps.policy.maySendAs(p, user, { front: 'smtp-submission', remote: session.remoteAddress });
      if (!v.ok) return refuse(session, smtpError('SUBMISSION_AUTHZID_REFUSED', { reason: v.reason }), user, { method, failure: 'authzid-refused' });
    } else if (user && user.toLowerCase() !== p.login.toLowerCase()) return tokenRefused('other-person');
    return p;
  };

  const options: SMTPServerOptions = {
    ...serverTlsOptions(deps.tls, { requestCert: true, rejectUnauthorized: false }),
    name,
    // smtp-server's greeting is "220 <name> ESMTP <banner>".
    banner: `MSSante ${front === 'mx' ? 'MX' : 'submission'} ready`,
    secure: !!opts.implicitTls,
    needsUpgrade: false,
    size: deps.maxSize,
    // Advertised, so every 2xx/4xx/5xx carries one (RFC 2034): ours from the catalogue,
    // smtp-server's own (syntax, sequence, SIZE=) from its table; see smtp/wire.ts.
    hideENHANCEDSTATUSCODES: false,
    // The peer is who its certificate says; a PTR name is the IP owner's word, and waiting
    // for it delays every greeting when DNS is slow.
    disableReverseLookup: true,
    hideDSN: false,
    useXClient: false,
    useXForward: false,
    disabledCommands: front === 'mx' ? ['AUTH'] : [],
    authMethods: ['PLAIN', 'LOGIN', ...(deps.psc ? ['XOAUTH2'] : [])],
    authOptional: true,
    allowInsecureAuth: false,
    logger: false,
    maxClients: 1000,
    socketTimeout: 120_000,

    onSecure(socket, session, cb) {
      const s = socket as TLSSocket;
      const c = st(session);
      c.tls = { version: s.getProtocol() ?? '?', cipher: s.getCipher()?.name ?? '?' };
      const cert = s.getPeerCertificate(true);
      if (cert && cert.raw) {
        c.tlsError = s.authorized ? undefined : String(s.authorizationError ?? 'unverified');
        try {
          c.peer = cachedIdentity(identities, cert, deps.tls);
          c.certPem = `-----BEGIN CERTIFICATE-----\n${cert.raw.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE-----\n`;
        } catch (e) {
          c.tlsError = (e as Error).message;
        }
      }
      // Submission: whom a usable certificate stands for, known before EHLO (which offers
      // AUTH EXTERNAL only then). A directory that cannot answer is asked again at AUTH / MAIL.
      if (front !== 'submission' || !c.certPem || certificateRefusal(c) || !deps.certificatePrincipal) return cb();
      deps.certificatePrincipal(c.certPem).then(
        (p) => {
          c.certPrincipal = p;
          cb();
        },
        (e) => {
          log.warn({ err: e, session: session.id }, 'could not look up the client certificate');
          cb();
        },
      );
    },

    onAuth(auth: SMTPServerAuthentication, session, cb) {
      void (async () => {
        if (front !== 'submission') return cb(smtpError('SUBMISSION_AUTH_REQUIRED'));
        const method = auth.method as string;
        const user = auth.username ?? '';
        const p =
          method === 'EXTERNAL'
            ? await byCertificate(session, user)
            : method === 'XOAUTH2' || method === 'OAUTHBEARER'
              ? await byToken(session, method, user, auth.accessToken ?? '')
              : await byPassword(session, method, user, auth.password ?? '');
        if (p instanceof Error) return cb(p);
        st(session).principal = p;
        await deps.journal.append({ type: 'smtp.auth', actor: principalLabel(p), subject: user || principalLabel(p), details: { front, method, ...(p.kind === 'person' ? { auth: p.auth, ...pscLevel(p) } : {}), remote: session.remoteAddress } });
        cb(null, { user: p.kind === 'person' ? p.login : principalLabel(p) });
      })().catch((e) => cb(internal(log, e)));
    },

    onMailFrom(address: SMTPServerAddress, session, cb) {
      void (async () => {
        const c = st(session);
        c.local = [];
        c.remote = [];
        c.overRecipients = 0;
        if (!session.secure) return cb(await refuse(session, smtpError('SMTP_TLS_REQUIRED'), address.address));
        const utf8Problem = nonAsciiAddress(address.address, session);
        if (utf8Problem) return cb(await refuse(session, utf8Problem, address.address));
        const certProblem = certificateRefusal(c);
        if (front === 'mx') {
          if (certProblem) return cb(await refuse(session, certProblem, address.address, { tlsError: c.tlsError }));
          const peer = c.peer!;
          const fresh = c.peerAcceptedAt !== undefined && Date.now() - c.peerAcceptedAt < SESSION_VERDICT_MS;
          if (!fresh) {
            c.senderDomains = new Set();
            // The certificate must name a domain on the liste blanche (any of its SANs).
            const names = peer.domains.filter((d) => d !== 'localhost' && !/^[\d.:]+$/.test(d));
            let admittedBy = names[0] ?? peer.subject.CN ?? '';
            let verdict = await deps.policy.mayPeerConnect({ kind: 'peer', domain: admittedBy, subject: subjectLine(peer) }, { front: 'smtp-mx', remote: session.remoteAddress });
            for (const d of names.slice(1)) {
              if (verdict.ok) break;
              verdict = await deps.policy.mayPeerConnect({ kind: 'peer', domain: (admittedBy = d), subject: subjectLine(peer) }, { front: 'smtp-mx', remote: session.remoteAddress });
            }
            if (!verdict.ok) return cb(await refuse(session, smtpRefusal(verdict), address.address, { certificate: subjectLine(peer) }));
            c.peerAcceptedAt = Date.now();
            c.peerDomain = normaliseDomain(admittedBy);
          }
          if (address.address && !c.senderDomains!.has(domainOf(address.address))) {
            const v = await deps.policy.inTrustSpace(domainOf(address.address), 'sender ', { front: 'smtp-mx', remote: session.remoteAddress });
            if (!v.ok) return cb(await refuse(session, smtpRefusal(v), address.address));
            c.senderDomains!.add(domainOf(address.address));
          }
          return cb();
        }
        // Submission: a person (AUTH) or a registered certificate (application, personal).
        if (!c.principal && c.certPem && !certProblem && deps.certificatePrincipal) {
          const p = c.certPrincipal ?? (await deps.certificatePrincipal(c.certPem));
          if (p) {
            c.principal = p;
            await deps.journal.append({ type: 'smtp.auth', actor: principalLabel(p), subject: subjectLine(c.peer!), details: { front, method: 'certificate', ...(p.kind === 'person' ? { auth: p.auth } : {}), remote: session.remoteAddress } });
          }
        }
        if (!c.principal) return cb(await refuse(session, smtpError('SUBMISSION_AUTH_REQUIRED'), address.address));
        const v = await deps.policy.maySendAs(c.principal, address.address, { front: 'smtp-submission', remote: session.remoteAddress });
        if (!v.ok) return cb(smtpRefusal(v));
        const limit = deps.ratePerHour ?? 0;
        if (limit && !(await allow(principalLabel(c.principal), limit))) return cb(await refuse(session, smtpError('RATE_LIMITED', { who: principalLabel(c.principal), limit, window: 'hour' }), address.address));
        cb();
      })().catch((e) => cb(internal(log, e)));
    },

    onClose(session) {
      const c = state.get(session);
      if (!c?.limited) return;
      for (const [code, t] of c.limited) {
        void deps.journal
          .append({ type: 'smtp.refused', actor: actorOf(session), subject: session.remoteAddress, details: { front, code, reply: t.reply, count: t.count, remote: session.remoteAddress, limited: true } })
          .catch((e) => log.error({ err: e }, 'could not journal the refusals of a tripped limit'));
      }
    },

    onRcptTo(address: SMTPServerAddress, session, cb) {
      void (async () => {
        const c = st(session);
        const rcpt = normaliseAddress(address.address);
        const utf8Problem = nonAsciiAddress(rcpt, session);
        if (utf8Problem) return cb(await refuse(session, utf8Problem, rcpt));
        // RFC 5321 §4.5.3.1.8: at least 100 recipients; beyond the limit the client sends
        // the rest in another transaction. A repeated recipient is not a new one.
        const known = c.local.includes(rcpt) || c.remote.includes(rcpt);
        if (!known && c.local.length + c.remote.length >= deps.maxRecipients) {
          const err = smtpError('SMTP_TOO_MANY_RECIPIENTS', { limit: deps.maxRecipients });
          if (!c.overRecipients) tripped(session, 'recipients', err, rcpt, { max: deps.maxRecipients });
          c.overRecipients++;
          return cb(noted(session, err));
        }
        // A patient's Mon Espace Santé box: its INS, and the size the client declared, before anything else.
        if (isPatientAddress(deps.patients, rcpt)) {
          const p = patientRecipientProblem(deps.patients!, rcpt, declaredSize(session));
          if (p) return cb(await refuse(session, smtpError(p.code, p.details), rcpt));
        }
        if (isLocal(deps, rcpt)) {
          // Address harvesting: past the unknown-recipient limit, every recipient from this
          // peer or address gets the same temporary answer, so known and unknown look alike.
          const keys = harvestKeys(session, c);
          let over: string | undefined;
          for (const k of keys) if (!over && (await deps.unknownRecipients.full(k))) over = k;
          if (over) return cb(noted(session, harvestRefusal(over)));
          const r = await deps.resolver.resolve(rcpt);
          if (r.kind === 'unknown' || r.kind === 'closed') {
            for (const k of keys) {
              if (await deps.unknownRecipients.add(k)) tripped(session, 'unknown-recipients', harvestRefusal(k), k, { max: deps.unknownRecipients.limit, windowMs: deps.unknownRecipients.windowMs });
            }
          }
          if (r.kind === 'unknown') return cb(await refuse(session, smtpError('BAL_UNKNOWN', { address: rcpt }), rcpt));
          if (r.kind === 'closed') return cb(await refuse(session, smtpError('BAL_CLOSED', { address: rcpt }), rcpt));
          if (r.kind === 'unavailable') return cb(await refuse(session, smtpError('DIRECTORY_UNAVAILABLE'), rcpt, { reason: r.reason }));
          if (!known) c.local.push(rcpt);
          return cb();
        }
        if (front === 'mx') return cb(await refuse(session, smtpError('RELAY_DENIED', { address: rcpt }), rcpt));
        const v = await deps.policy.inTrustSpace(domainOf(rcpt), 'recipient ', { front: 'smtp-submission', remote: session.remoteAddress, principal: c.principal });
        if (!v.ok) return cb(smtpRefusal(v));
        if (!known) c.remote.push(rcpt);
        cb();
      })().catch((e) => cb(internal(log, e)));
    },

    onData(stream: SMTPServerDataStream, session, cb) {
      const check = new LineEndingCheck();
      const chunks: Buffer[] = [];
      let size = 0;
      stream.pipe(check);
      check.on('data', (d: Buffer) => {
        size += d.length;
        if (size <= deps.maxSize) chunks.push(d);
      });
      check.on('end', () => {
        void (async () => {
          const c = st(session);
          const envFrom = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
          if (stream.sizeExceeded || size > deps.maxSize) return cb(await refuse(session, smtpError('MESSAGE_TOO_BIG', { limit: deps.maxSize }), envFrom));
          if (check.offence) return cb(await refuse(session, smtpError('MESSAGE_BARE_LINE_ENDING', check.offence), envFrom));
          const forPatients = patientSizeProblem(deps.patients, [...c.local, ...c.remote], size);
          if (forPatients) return cb(await refuse(session, smtpError(forPatients.code, forPatients.details), envFrom));
          const message = Buffer.concat(chunks);
          const content = checkContent(message, { smtpUtf8: !!session.envelope.smtpUtf8, fromCode: front === 'submission' ? 'FROM_HEADER_INVALID' : undefined });
          if (!content.ok) return cb(await refuse(session, smtpError(content.problem.code, content.problem.details), envFrom));
          if (front === 'submission') {
            const v = await deps.policy.maySendAs(c.principal!, content.from.address, { front: 'smtp-submission', remote: session.remoteAddress });
            if (!v.ok) return cb(smtpRefusal(v));
          } else {
            // The header From is what the reader sees: it must be one of the delivering operator's domains.
            const peer = { kind: 'peer' as const, domain: c.peerDomain ?? '', subject: subjectLine(c.peer!) };
            const v = await deps.policy.mayPeerSendFrom(peer, c.peer!.domains, content.from.domain, { front: 'smtp-mx', remote: session.remoteAddress });
            if (!v.ok) return cb(await refuse(session, smtpRefusal(v), envFrom, { from: content.from.address }));
          }
          const queueId = randomBytes(8).toString('hex').toUpperCase();
          const received = receivedHeader({
            helo: session.hostNameAppearsAs,
            remoteAddress: session.remoteAddress,
            hostname: deps.hostname,
            protocol: c.principal ? 'ESMTPSA' : 'ESMTPS',
            queueId,
            tls: c.tls,
            peerCertificate: c.peer ? { subject: subjectLine(c.peer), issuer: c.peer.issuer, serial: c.peer.serialNumber } : undefined,
            authenticatedAs: c.principal ? principalLabel(c.principal) : undefined,
            recipient: c.local.length + c.remote.length === 1 ? (c.local[0] ?? c.remote[0]) : undefined,
          });
          const body = Buffer.concat([Buffer.from(received, 'latin1'), message]);
          const messageId = content.messageId;
          const peerInfo = { address: session.remoteAddress, helo: session.hostNameAppearsAs, queueId, tls: c.tls, certificate: c.peer ? subjectLine(c.peer) : undefined, principal: c.principal ? principalLabel(c.principal) : undefined };
          // Durable before 250: the spool row, its outbound rows and its journal event are
          // committed first (in one transaction shared with the messages ending meanwhile).
          const record = { front, messageId, envFrom, localRcpts: c.local, body, peer: peerInfo };
          const local = c.local;
          const remote = c.remote;
          const actor = actorOf(session);
          const spoolId = await deps.accept({
            record,
            remote,
            event: { type: 'smtp.received', actor, subject: messageId, details: { front, from: envFrom, local, remote, size: body.length, ...peerInfo } },
          });
          log.info({ session: session.id, spool: spoolId, queueId, messageId, from: envFrom, local: c.local.length, remote: c.remote.length, size: body.length }, 'smtp accepted');
          // A client that delivers is not one probing us: its refusals count afresh.
          c.errors = 0;
          cb(null, `2.0.0 message accepted, queued as ${queueId}`);
        })().catch((e) => cb(internal(log, e)));
      });
    },
  };
  // Submission also speaks SASL EXTERNAL, offered to a connection whose certificate stands for someone.
  const server = front === 'submission' ? new ExternalAuthServer(options, (session) => !!st(session).certPrincipal, deps.psc ? { challenge: deps.psc.challenge } : undefined) : new SMTPServer(options);
  guardReplies(server, {
    // smtp-server's own refusal of MAIL FROM:<…> SIZE=n over the limit: the catalogue's sentence, journalled.
    replace(session, _code, _text, context) {
      if (context !== 'MESSAGE_TOO_BIG') return undefined;
      const err = smtpError('MESSAGE_TOO_BIG', { limit: deps.maxSize });
      void refuse(session, err, session.remoteAddress);
      return err;
    },
    // The error limit counts every refusal on the connection, whoever made it. Failed logins
    // are the login throttle's (core/policy); recipients past the recipient limit count only
    // once the client overshoots by another limit's worth (it may just not read our 452s).
    afterError(session, code, text) {
      const c = st(session);
      if (code === 535 || code === 454) return undefined;
      if (text.startsWith('4.5.3 ') && c.overRecipients <= deps.maxRecipients) return undefined;
      if (++c.errors < deps.maxErrors) return undefined;
      const err = smtpError('SMTP_TOO_MANY_ERRORS', { count: c.errors });
      tripped(session, 'errors', err, session.remoteAddress, { max: deps.maxErrors });
      return err;
    },
  });
  server.on('error', (e) => log.warn({ err: e.message }, 'smtp connection error'));
  return server;
}

/**
 * peerIdentity parses the presented chain (pkijs: milliseconds per certificate), and an MX
 * sees the same few peers reconnect all day: remember it by the chain's fingerprints for a
 * few minutes. Whether this handshake verified (chain, expiry, CRL) is still OpenSSL's
 * answer for each connection, and expiry is checked against the clock at each MAIL.
 */
function cachedIdentity(cache: Map<string, { peer: PeerIdentity; until: number }>, cert: DetailedPeerCertificate, tls: TlsMaterial): PeerIdentity {
  const prints: string[] = [];
  for (let x: DetailedPeerCertificate | undefined = cert; x?.raw && prints.length < 8 && !prints.includes(x.fingerprint256); x = x.issuerCertificate) prints.push(x.fingerprint256);
  const key = prints.join('/');
  const hit = cache.get(key);
  if (hit && hit.until > Date.now()) return hit.peer;
  const peer = peerIdentity(cert, tls);
  if (cache.size >= 1000) cache.delete(cache.keys().next().value!);
  cache.set(key, { peer, until: Date.now() + 5 * 60_000 });
  return peer;
}

/** MAIL FROM's SIZE= (RFC 1870), which smtp-server has checked is 1 to 20 digits. */
function declaredSize(session: SMTPServerSession): number | undefined {
  const args = session.envelope.mailFrom ? (session.envelope.mailFrom.args as Record<string, string> | false) : false;
  return args && args.SIZE ? Number(args.SIZE) : undefined;
}

/** RFC 6531: a non-ASCII local part belongs only to a transaction that announced SMTPUTF8. */
function nonAsciiAddress(address: string, session: SMTPServerSession) {
  const local = address.slice(0, Math.max(0, address.lastIndexOf('@')));
  return /[^\x00-\x7f]/.test(local) && !session.envelope.smtpUtf8 ? smtpError('SMTP_8BIT_ADDRESS', { address }) : undefined;
}

/** Why a presented certificate is refused, or undefined when it verified. */
function certificateRefusal(c: ConnState) {
  if (!c.peer && !c.tlsError) return smtpError('PEER_NO_CERTIFICATE');
  const subject = c.peer ? subjectLine(c.peer) : 'unreadable';
  if (c.peer?.revocation === 'revoked' || c.tlsError === 'CERT_REVOKED') return smtpError('PEER_CERT_REVOKED', { subject });
  if (c.tlsError === 'CERT_HAS_EXPIRED' || (c.peer && c.peer.notAfter < new Date())) return smtpError('PEER_CERT_EXPIRED', { subject });
  if (c.tlsError) return smtpError('PEER_CERT_UNTRUSTED', { subject, why: c.tlsError });
  return undefined;
}

const subjectLine = (p: PeerIdentity) =>
  Object.entries(p.subject)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');

/** Messages per hour per principal, counted in this process. */
export function rateLimiter(): (who: string, perHour: number) => boolean {
  let hour: WindowCounter | undefined;
  return (who, perHour) => {
    if (hour?.limit !== perHour) hour = new WindowCounter(perHour, 3_600_000);
    if (hour.full(who)) return false;
    hour.add(who);
    return true;
  };
}

function internal(log: Logger, e: unknown) {
  log.error({ err: e }, 'smtp hook failed');
  const err = smtpError('INTERNAL');
  return err;
}
