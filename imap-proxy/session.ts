// One client connection before login: greeting, the seven pre-authentication commands
// (commands.ts), STARTTLS, the pre-auth timeout and the bad-command budget. On a login the
// policy accepts, it opens the Dovecot session and hands both sockets to pipeSession().
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { Journal } from '../core/journal/index.js';
import type { Logger } from '../core/logger.js';
import { principalActor } from '../core/policy/index.js';
import { OAUTH_MECHANISMS } from '../identity/sasl-oauth.js';
import { pscLevel } from '../identity/psc/login.js';
import { peerIdentity, type TlsMaterial } from '../certs/tls.js';
import type { ClientCertificate, LoginContext, LoginOutcome, LoginRequest } from './auth.js';
import { BackendError, openBackend, type BackendSession, type BackendTarget, type ClientOrigin } from './backend.js';
import { AFTER_LOGIN, checkArgs, PREAUTH_COMMANDS } from './commands.js';
import { CommandParser, type Command } from './parser.js';
import { pipeSession, type Pipe } from './pipe.js';
import { line, refusal } from './wire.js';

export interface SessionContext {
  hostname: string;
  preAuthTimeoutMs: number;
  maxLine: number;
  maxLiteral: number;
  /** Invalid commands tolerated before login (Dovecot closes after 10 too). */
  maxBadCommands: number;
  secureContext: SecureContext;
  requestCert: boolean;
  tls: Pick<TlsMaterial, 'crls' | 'anchors' | 'intermediates'>;
  /** auth.ts authorise(), in this process or, with worker processes, in the platform's. */
  authorise(req: LoginRequest, ctx: LoginContext): Promise<LoginOutcome>;
  /** AUTHENTICATE OAUTHBEARER / XOAUTH2 offered (Pro Santé Connect). */
  oauth: boolean;
  backend: BackendTarget;
  journal: Pick<Journal, 'append'>;
  traceFlushMs: number;
  log: Logger;
  onAuthenticated(s: PreAuthSession, pipe: Pipe): void;
  onClosed(s: PreAuthSession): void;
}

/** Capabilities Dovecot may list that the client must not see: COMPRESS would blind the tracer. */
const HIDDEN_CAPABILITIES = /^COMPRESS=/i;

export class PreAuthSession {
  readonly id = randomBytes(9).toString('base64url');
  readonly startedAt = Date.now();
  readonly remote: string;
  readonly remotePort: number;
  readonly local: string;
  readonly localPort: number;
  socket: Socket;
  secure: boolean;
  certificate: ClientCertificate | null = null;
  clientId: Record<string, string> | undefined;
  private readonly parser: CommandParser;
  private busy = false;
  /** Between STARTTLS and the end of the TLS handshake: nothing is read as a command. */
  private upgrading = false;
  private closed = false;
  private handedOver = false;
  private bad = 0;
  private timer: NodeJS.Timeout | null = null;
  private sasl: ((line: string | null) => void) | null = null;

  constructor(
    private readonly ctx: SessionContext,
    socket: Socket,
    secure: boolean,
  ) {
    this.socket = socket;
    this.secure = secure;
    this.remote = plainAddress(socket.remoteAddress);
    this.remotePort = socket.remotePort ?? 0;
    this.local = plainAddress(socket.localAddress);
    this.localPort = socket.localPort ?? 0;
    this.parser = new CommandParser({ mode: 'preauth', maxLine: ctx.maxLine, maxLiteral: ctx.maxLiteral });
  }

  start(): void {
    this.timer = setTimeout(() => this.bye(refusal(null, 'IMAP_PREAUTH_TIMEOUT', { seconds: Math.round(this.ctx.preAuthTimeoutMs / 1000) }), 'pre-auth timeout'), this.ctx.preAuthTimeoutMs);
    if (this.secure) this.readCertificate(this.socket as TLSSocket);
    this.attach(this.socket);
    this.write(`* OK [CAPABILITY ${this.capabilities().join(' ')}] ${this.ctx.hostname} MSSante IMAP ready\r\n`);
  }

  capabilities(): string[] {
    const caps = ['IMAP4rev1', 'SASL-IR', 'LITERAL+', 'ID'];
    if (!this.secure) caps.push('STARTTLS', 'LOGINDISABLED');
    else caps.push(...this.mechanisms().map((m) => `AUTH=${m}`));
    return caps;
  }

  /** PLAIN always (over TLS); EXTERNAL when the client presented a certificate; the OAuth ones with Pro Santé Connect. */
  mechanisms(): string[] {
    return [...(this.certificate ? ['PLAIN', 'EXTERNAL'] : ['PLAIN']), ...(this.ctx.oauth ? OAUTH_MECHANISMS : [])];
  }

  write(text: string): void {
    if (!this.closed && !this.socket.destroyed) this.socket.write(text);
  }

  /** Ends the connection after `text` (a BYE). */
  bye(text: string, why: string): void {
    this.write(text);
    this.close(why);
  }

  close(why: string): void {
    if (this.closed) return;
    this.closed = true;
    this.ctx.log.debug({ session: this.id, remote: this.remote, why }, 'imap pre-auth connection closed');
    this.socket.end();
    // A client that stops reading would keep the socket half-open: cut it shortly after.
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private readonly onData = (chunk: Buffer) => {
    this.parser.push(chunk);
    this.pump();
  };
  private readonly onClose = () => {
    if (this.handedOver) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.sasl?.(null);
    this.sasl = null;
    this.ctx.onClosed(this);
  };
  private readonly onError = (e: Error) => {
    this.ctx.log.debug({ session: this.id, err: e.message }, 'imap client socket error');
  };

  private attach(s: Socket) {
    s.on('data', this.onData);
    s.on('close', this.onClose);
    s.on('error', this.onError);
  }
  private detach(s: Socket) {
    s.off('data', this.onData);
    s.off('close', this.onClose);
    s.off('error', this.onError);
  }

  private pump(): void {
    while ((!this.busy || this.sasl) && !this.upgrading && !this.closed) {
      const ev = this.parser.next();
      if (!ev) return;
      switch (ev.type) {
        case 'continue':
          this.write('+ Ready for literal data\r\n');
          break;
        case 'line': {
          const resolve = this.sasl;
          this.sasl = null;
          this.socket.pause();
          resolve?.(ev.text);
          break;
        }
        case 'bad':
          this.write(refusal(ev.tag, ev.tooBig !== undefined ? 'IMAP_LITERAL_TOO_BIG' : 'IMAP_BAD_COMMAND', { reason: ev.reason }));
          this.countBad();
          break;
        case 'fatal':
          this.bye(refusal(null, 'IMAP_STREAM_REFUSED', { reason: ev.reason }), ev.reason);
          return;
        case 'command':
          this.dispatch(ev);
          break;
      }
    }
  }

  private countBad() {
    if (++this.bad >= this.ctx.maxBadCommands) this.bye(refusal(null, 'IMAP_TOO_MANY_ERRORS'), 'too many invalid commands');
  }

  private dispatch(cmd: Command): void {
    const spec = PREAUTH_COMMANDS[cmd.name];
    if (!spec) {
      this.write(refusal(cmd.tag, AFTER_LOGIN.has(cmd.name) ? 'IMAP_LOGIN_FIRST' : 'IMAP_UNKNOWN_COMMAND', { command: cmd.name }));
      return this.countBad();
    }
    const wrong = checkArgs(spec, cmd);
    if (wrong) {
      this.write(refusal(cmd.tag, 'IMAP_BAD_COMMAND', { reason: wrong }));
      return this.countBad();
    }
    // One command at a time: nothing more is read until this one is answered (a command
    // that needs the client again, AUTHENTICATE's continuation, asks with saslContinuation).
    this.busy = true;
    this.socket.pause();
    const r = spec.run(this, cmd.tag, cmd.args);
    if (!(r instanceof Promise)) {
      this.busy = false;
      if (!this.closed && !this.upgrading) this.socket.resume();
      return;
    }
    r.catch((e) => {
      this.ctx.log.error({ err: e, session: this.id }, 'imap pre-auth command failed');
      this.write(refusal(cmd.tag, 'INTERNAL'));
    }).finally(() => {
      this.busy = false;
      if (this.closed || this.handedOver) return;
      this.socket.resume();
      this.pump();
    });
  }

  /** Sends "+ [challenge]" and waits for the client's SASL response line (null: connection gone). */
  saslContinuation(challenge = ''): Promise<string | null> {
    return new Promise((resolve) => {
      this.sasl = resolve;
      this.write(`+ ${challenge}\r\n`);
      this.parser.expectLine();
      this.socket.resume();
      setImmediate(() => this.pump());
    });
  }

  startTls(tag: string): void {
    this.write(`${tag} OK Begin TLS negotiation now\r\n`);
    // Anything pipelined after STARTTLS was sent in clear and must not be read as if it had
    // been protected (the STARTTLS command-injection flaw, CVE-2011-0411 and kin).
    this.parser.reset();
    this.upgrading = true;
    const plain = this.socket;
    this.detach(plain);
    const secured = new TLSSocket(plain, { isServer: true, secureContext: this.ctx.secureContext, requestCert: this.ctx.requestCert, rejectUnauthorized: false });
    this.socket = secured;
    this.attach(secured);
    secured.once('secure', () => {
      this.secure = true;
      judgePeer(secured);
      this.readCertificate(secured);
      this.upgrading = false;
      this.pump();
    });
  }

  private readCertificate(s: TLSSocket) {
    const cert = s.getPeerCertificate(true);
    if (!cert || !cert.raw) return;
    const pem = `-----BEGIN CERTIFICATE-----\n${cert.raw.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE-----\n`;
    let emails: string[] = [];
    let revoked = false;
    try {
      const id = peerIdentity(cert, this.ctx.tls);
      emails = id.emails;
      revoked = id.revocation === 'revoked';
    } catch {
      /* unreadable: s.authorized is false anyway */
    }
    const subject = Object.entries(cert.subject ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(', ');
    this.certificate = {
      pem,
      authorized: s.authorized && !revoked,
      error: s.authorizationError ? String(s.authorizationError) : revoked ? 'CERT_REVOKED' : undefined,
      subject,
      emails,
    };
  }

  async login(tag: string, req: LoginRequest): Promise<void> {
    const outcome = await this.ctx.authorise(req, { session: this.id, remote: this.remote, tag });
    if (this.closed) return;
    if (!outcome.ok) {
      // RFC 7628 §3.2.2: an OAuth failure is told first as a challenge; the client's answer (\x01, or empty) ends the exchange.
      if (outcome.challenge !== undefined && (await this.saslContinuation(outcome.challenge)) === null) return;
      return this.write(outcome.answer);
    }
    // The login's journal event and Dovecot's login go together: each is a round trip (to
    // the platform's process and its database; to Dovecot), and OK waits for both — no
    // access without its trace (fail closed). A Dovecot refusal after the event is written
    // gets its own event (imap.backend.failed, same session) after it.
    const [journalled, opened] = await Promise.allSettled([
      this.ctx.journal.append(this.loginEvent(outcome)),
      openFirstBackend(this.ctx.backend, outcome, { session: this.id, remote: this.remote, remotePort: this.remotePort, local: this.local, localPort: this.localPort }),
    ]);
    if (opened.status === 'rejected') {
      const e = opened.reason as unknown;
      const why = e instanceof BackendError ? e.message : String(e);
      this.ctx.log.warn({ session: this.id, bal: outcome.bal, err: why }, 'imap: Dovecot login failed');
      await this.ctx.journal
        .append({ type: 'imap.backend.failed', actor: principalActor(outcome.principal), subject: outcome.bal, details: { session: this.id, remote: this.remote, reason: why } })
        .catch(() => {});
      return this.write(refusal(tag, 'IMAP_BACKEND_UNAVAILABLE', { address: outcome.bal }));
    }
    const backend = opened.value;
    if (journalled.status === 'rejected') {
      this.ctx.log.error({ err: journalled.reason, session: this.id }, 'could not journal an IMAP login: refused');
      backend.socket.destroy();
      return this.write(refusal(tag, 'INTERNAL'));
    }
    if (this.closed) {
      backend.socket.destroy();
      return;
    }
    this.handOver(tag, outcome, backend);
  }

  private loginEvent(outcome: Extract<LoginOutcome, { ok: true }>) {
    return {
      type: 'imap.login',
      actor: principalActor(outcome.principal),
      subject: outcome.bal,
      details: {
        session: this.id,
        method: outcome.method,
        ...(outcome.principal.kind === 'person' ? { auth: outcome.principal.auth, ...pscLevel(outcome.principal) } : { certificate: this.certificate?.subject }),
        remote: this.remote,
        port: this.localPort,
        tls: (this.socket as TLSSocket).getProtocol?.() ?? null,
        ...(this.clientId?.name ? { client: [this.clientId.name, this.clientId.version].filter(Boolean).join(' ') } : {}),
      },
    };
  }

  private handOver(tag: string, outcome: Extract<LoginOutcome, { ok: true }>, backend: BackendSession) {
    const actor = principalActor(outcome.principal);
    if (this.timer) clearTimeout(this.timer);
    this.handedOver = true;
    this.detach(this.socket);
    this.socket.pause();
    const caps = backend.capabilities.filter((c) => !HIDDEN_CAPABILITIES.test(c));
    this.socket.write(line(tag, 'OK', `CAPABILITY ${caps.join(' ')}`, `Logged in, mailbox ${outcome.bal}`));
    const pipe = pipeSession(
      this.socket,
      backend,
      { fromClient: this.parser.takeRemainder(), fromBackend: backend.leftover },
      { session: this.id, actor, bal: outcome.bal, remote: this.remote, method: outcome.method, startedAt: this.startedAt, flushIntervalMs: this.ctx.traceFlushMs },
      this.ctx.journal,
      this.ctx.log,
    );
    this.ctx.onAuthenticated(this, pipe);
  }
}

/**
 * Judges the client certificate of a TLS session upgraded by STARTTLS the way tls.Server does
 * for the sockets it accepts (993): Node sets `authorized` / `authorizationError` only there,
 * from the OpenSSL verification result after the handshake, so a TLSSocket made by hand
 * otherwise says "not authorized" for every certificate, trusted or not.
 */
function judgePeer(s: TLSSocket): void {
  const handle = (s as unknown as { _handle?: { verifyError?: () => (Error & { code?: string }) | null } })._handle;
  if (typeof handle?.verifyError !== 'function') return; // stays unauthorised: fail closed
  const err = handle.verifyError();
  if (err) (s as unknown as { authorizationError: string }).authorizationError = err.code ?? err.message;
  else s.authorized = true;
}

/** "::ffff:192.0.2.1" → "192.0.2.1": one form per address for throttling and the journal. */
function plainAddress(a: string | undefined): string {
  if (!a) return 'unknown';
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

/**
 * The box's back end, or — when it cannot be reached (down, not refusing) — the next one of
 * its pair, which holds the replica (a shared store); the one back end otherwise.
 */
async function openFirstBackend(t: BackendTarget, outcome: Extract<LoginOutcome, { ok: true }>, origin: ClientOrigin): Promise<BackendSession> {
  const list = outcome.backends?.length ? outcome.backends : [undefined];
  for (let i = 0; ; i++) {
    try {
      return await openBackend(t, outcome.bal, origin, list[i]);
    } catch (e) {
      if (i + 1 >= list.length || !(e instanceof BackendError) || (e.kind !== 'unreachable' && e.kind !== 'timeout')) throw e;
    }
  }
}
