import { randomBytes } from 'node:crypto';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import { SMTPServer, type SMTPServerAddress, type SMTPServerAuthentication, type SMTPServerDataStream, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import addressparser from 'nodemailer/lib/addressparser/index.js';
import type { Journal } from '../core/journal/index.js';
import type { Logger } from '../core/logger.js';
import { normaliseAddress, normaliseDomain, principalLabel, type ApplicationPrincipal, type PersonPrincipal, type Policy } from '../core/policy/index.js';
import { peerIdentity, serverTlsOptions, type PeerIdentity, type TlsMaterial } from '../certs/tls.js';
import { LineEndingCheck, headerSection, headerValue, receivedHeader } from './message.js';
import type { RecipientResolver } from './recipients.js';
import { smtpError, smtpRefusal } from './reply.js';
import type { Accepted } from './spool-writer.js';

/**
 * What a front needs from the rest of the platform, handed over by the composition root:
 * narrow services, each a function of plain data.
 */
export interface FrontDeps {
  journal: Pick<Journal, 'append'>;
  policy: Pick<Policy, 'mayPeerConnect' | 'inTrustSpace' | 'maySendAs'>;
  resolver: Pick<RecipientResolver, 'resolve'>;
  tls: TlsMaterial;
  log: Logger;
  hostname: string;
  localDomains: string[];
  maxSize: number;
  /**
   * Stores an accepted message — spool row, outbound rows, `smtp.received` event — and
   * resolves with its spool id once that is committed (the 250 waits for it).
   */
  accept: (m: Accepted) => Promise<number>;
  /** Submission only: user name + password (+TOTP) → the person, or null. */
  authenticate?: (user: string, secret: string) => Promise<PersonPrincipal | null>;
  /** Submission only: a verified client certificate → the person or application it stands for. */
  certificatePrincipal?: (pem: string) => Promise<PersonPrincipal | ApplicationPrincipal | null>;
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
  local: string[];
  remote: string[];
  /** MX: when the policy last let this peer in, and the sender domains it accepted since. */
  peerAcceptedAt?: number;
  senderDomains?: Set<string>;
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
    if (!v) state.set(s, (v = { local: [], remote: [] }));
    return v;
  };
  const log = deps.log.child({ front });
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

  const options: SMTPServerOptions = {
    ...serverTlsOptions(deps.tls, { requestCert: true, rejectUnauthorized: false }),
    name: deps.hostname,
    banner: `${deps.hostname} MSSanté ${front === 'mx' ? 'MX' : 'submission'} ready`,
    secure: !!opts.implicitTls,
    needsUpgrade: false,
    size: deps.maxSize,
    hideENHANCEDSTATUSCODES: true,
    hideDSN: false,
    useXClient: false,
    useXForward: false,
    disabledCommands: front === 'mx' ? ['AUTH'] : [],
    authMethods: ['PLAIN', 'LOGIN'],
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
      cb();
    },

    onAuth(auth: SMTPServerAuthentication, session, cb) {
      void (async () => {
        if (front !== 'submission' || !deps.authenticate) return cb(smtpError('SUBMISSION_AUTH_REQUIRED'));
        const person = await deps.authenticate(auth.username ?? '', auth.password ?? '');
        if (!person) {
          const err = await refuse(session, smtpError('AUTH_FAILED'), auth.username ?? '', { method: auth.method });
          return cb(err);
        }
        st(session).principal = person;
        await deps.journal.append({ type: 'smtp.auth', actor: principalLabel(person), subject: auth.username, details: { front, method: auth.method, remote: session.remoteAddress } });
        cb(null, { user: person.login });
      })().catch((e) => cb(internal(log, e)));
    },

    onMailFrom(address: SMTPServerAddress, session, cb) {
      void (async () => {
        const c = st(session);
        c.local = [];
        c.remote = [];
        if (!session.secure) return cb(await refuse(session, smtpError('SMTP_TLS_REQUIRED'), address.address));
        const certProblem = certificateRefusal(c);
        if (front === 'mx') {
          if (certProblem) return cb(await refuse(session, certProblem, address.address, { tlsError: c.tlsError }));
          const peer = c.peer!;
          const fresh = c.peerAcceptedAt !== undefined && Date.now() - c.peerAcceptedAt < SESSION_VERDICT_MS;
          if (!fresh) {
            c.senderDomains = new Set();
            // The certificate must name a domain on the liste blanche (any of its SANs).
            const names = peer.domains.filter((d) => d !== 'localhost' && !/^[\d.:]+$/.test(d));
            let verdict = await deps.policy.mayPeerConnect({ kind: 'peer', domain: names[0] ?? peer.subject.CN ?? '', subject: subjectLine(peer) }, { front: 'smtp-mx', remote: session.remoteAddress });
            for (const d of names.slice(1)) {
              if (verdict.ok) break;
              verdict = await deps.policy.mayPeerConnect({ kind: 'peer', domain: d, subject: subjectLine(peer) }, { front: 'smtp-mx', remote: session.remoteAddress });
            }
            if (!verdict.ok) return cb(await refuse(session, smtpRefusal(verdict), address.address, { certificate: subjectLine(peer) }));
            c.peerAcceptedAt = Date.now();
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
          const p = await deps.certificatePrincipal(c.certPem);
          if (p) {
            c.principal = p;
            await deps.journal.append({ type: 'smtp.auth', actor: principalLabel(p), subject: subjectLine(c.peer!), details: { front, method: 'certificate', remote: session.remoteAddress } });
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

    onRcptTo(address: SMTPServerAddress, session, cb) {
      void (async () => {
        const c = st(session);
        const rcpt = normaliseAddress(address.address);
        if (isLocal(deps, rcpt)) {
          const r = await deps.resolver.resolve(rcpt);
          if (r.kind === 'unknown') return cb(await refuse(session, smtpError('BAL_UNKNOWN', { address: rcpt }), rcpt));
          if (r.kind === 'closed') return cb(await refuse(session, smtpError('BAL_CLOSED', { address: rcpt }), rcpt));
          if (r.kind === 'unavailable') return cb(await refuse(session, smtpError('DIRECTORY_UNAVAILABLE'), rcpt, { reason: r.reason }));
          c.local.push(rcpt);
          return cb();
        }
        if (front === 'mx') return cb(await refuse(session, smtpError('RELAY_DENIED', { address: rcpt }), rcpt));
        const v = await deps.policy.inTrustSpace(domainOf(rcpt), 'recipient ', { front: 'smtp-submission', remote: session.remoteAddress, principal: c.principal });
        if (!v.ok) return cb(smtpRefusal(v));
        c.remote.push(rcpt);
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
          const message = Buffer.concat(chunks);
          const headers = headerSection(message);
          if (front === 'submission') {
            const from = addressparser(headerValue(headers, 'From') ?? '', { flatten: true }) as Array<{ address?: string }>;
            const fromAddress = from.length === 1 ? from[0].address ?? '' : '';
            if (!fromAddress) return cb(await refuse(session, smtpError('FROM_HEADER_INVALID', { from: JSON.stringify(headerValue(headers, 'From') ?? '') }), envFrom));
            const v = await deps.policy.maySendAs(c.principal!, fromAddress, { front: 'smtp-submission', remote: session.remoteAddress });
            if (!v.ok) return cb(smtpRefusal(v));
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
          const messageId = headerValue(headers, 'Message-ID');
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
          cb(null, `2.0.0 message accepted, queued as ${queueId}`);
        })().catch((e) => cb(internal(log, e)));
      });
    },
  };
  const server = new SMTPServer(options);
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
  const rates = new Map<string, number[]>();
  return (who, perHour) => allowRate(rates, who, perHour);
}

function allowRate(rates: Map<string, number[]>, who: string, perHour: number): boolean {
  const now = Date.now();
  const recent = (rates.get(who) ?? []).filter((t) => now - t < 3_600_000);
  if (recent.length >= perHour) {
    rates.set(who, recent);
    return false;
  }
  recent.push(now);
  rates.set(who, recent);
  return true;
}

function internal(log: Logger, e: unknown) {
  log.error({ err: e }, 'smtp hook failed');
  const err = smtpError('INTERNAL');
  return err;
}
