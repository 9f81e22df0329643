// SASL EXTERNAL (RFC 4422 appendix A, RFC 4954) for the submission servers: a client that
// presented a certificate during the TLS handshake authenticates as what the certificate
// stands for. smtp-server knows PLAIN, LOGIN, XOAUTH2 and CRAM-MD5 only (anything else is
// answered 504) and builds EHLO's AUTH line from one server-wide list, so this subclass adds,
// on each connection it makes:
//   - EXTERNAL in EHLO's AUTH line when offer(session) says this connection presented a
//     usable certificate (never to the others);
//   - AUTH EXTERNAL [initial-response]: the authorisation identity ("=" or empty: none) goes
//     to the server's onAuth as { method: 'EXTERNAL', username: authzid }, so onAuth decides,
//     journals and answers for every mechanism alike.
// The library itself is not changed: connect() is extended, and the EHLO and AUTH handlers of
// the connection it made are wrapped (they are public members of SMTPConnection).
import type { Socket } from 'node:net';
//
// With Pro Santé Connect, AUTH OAUTHBEARER (RFC 7628) the same way: offered to every TLS
// connection, its message read by identity/sasl-oauth, handed to onAuth as { method:
// 'OAUTHBEARER', username: the a= box, accessToken }; a refusal is told first as a 334
// challenge (the RFC's JSON error), and the reply comes after the client's answer to it.
// (XOAUTH2 is smtp-server's own.)
import { SMTPServer, type SMTPServerAuthentication, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import { parseOAuthMessage } from '../identity/sasl-oauth.js';

type Connection = SMTPServer['connections'] extends Set<infer C> ? C : never;
type Handler = (command: Buffer, callback: () => void) => void;

// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\x00-\x1F\x7F-\x9F]/;

export class ExternalAuthServer extends SMTPServer {
  private readonly offer: (session: SMTPServerSession) => boolean;

  constructor(
    options: SMTPServerOptions,
    offer: (session: SMTPServerSession) => boolean,
    private readonly oauth?: { challenge: string },
  ) {
    super(options);
    this.offer = offer;
  }

  override connect(socket: Socket, socketOptions?: Parameters<SMTPServer['connect']>[1]): void {
    super.connect(socket, socketOptions);
    // The connection just made is the last one added (a Set iterates in insertion order).
    let made: Connection | undefined;
    for (const c of this.connections) made = c;
    if (made) this.extend(made);
  }

  private extend(conn: Connection): void {
    const options = this.options;
    const ehlo: Handler = conn.handler_EHLO.bind(conn);
    const auth: Handler = conn.handler_AUTH.bind(conn);

    conn.handler_EHLO = (command, callback) => {
      const external = this.offer(conn.session);
      if (!external && !this.oauth) return ehlo(command, callback);
      // EHLO reads the list while it builds its reply, synchronously: offered to this one only.
      const methods = options.authMethods;
      options.authMethods = [...methods, ...(this.oauth ? ['OAUTHBEARER'] : []), ...(external ? ['EXTERNAL'] : [])];
      try {
        ehlo(command, callback);
      } finally {
        options.authMethods = methods;
      }
    };

    conn.handler_AUTH = (command, callback) => {
      const args = command.toString().trim().split(/\s+/).slice(1);
      const mechanism = (args.shift() ?? '').toUpperCase();
      if (mechanism !== 'EXTERNAL' && (mechanism !== 'OAUTHBEARER' || !this.oauth)) return auth(command, callback);
      // The same gates as the library's own mechanisms (handler_AUTH).
      if (!conn.secure) {
        conn.send(538, 'Error: Must issue a STARTTLS command first');
        return callback();
      }
      if (conn.session.user) {
        conn.send(503, 'Error: No identity changes permitted');
        return callback();
      }
      if (args.length > 1) {
        conn.send(501, `Error: syntax: AUTH ${mechanism} [initial-response]`);
        return callback();
      }
      const finish = (raw: string, canAbort: boolean, next: () => void) => (mechanism === 'EXTERNAL' ? this.finish(conn, raw, canAbort, next) : this.finishOAuth(conn, raw, canAbort, next));
      if (!args.length) {
        // No initial response: ask for it (RFC 4954 §4, an empty challenge).
        conn._nextHandler = (line, next) => finish(String(line), true, next);
        conn.send(334);
        return callback();
      }
      finish(args[0], false, callback);
    };
  }

  /** OAUTHBEARER's message; a refusal goes out as RFC 7628's error challenge first, its reply after the client's answer. */
  private finishOAuth(conn: Connection, raw: string, canAbort: boolean, callback: () => void): void {
    const text = raw.trim();
    if (canAbort && text === '*') {
      conn.send(501, 'Authentication aborted');
      return callback();
    }
    const m = /^[A-Za-z0-9+/]*={0,2}$/.test(text) && text.length % 4 === 0 ? parseOAuthMessage('OAUTHBEARER', Buffer.from(text, 'base64')) : null;
    if (!m) {
      conn.send(501, 'Error: invalid userdata (OAUTHBEARER: n,a=<box>,^Aauth=Bearer <token>^A^A)');
      return callback();
    }
    const request = { method: 'OAUTHBEARER', username: m.user ?? '', accessToken: m.token } as unknown as SMTPServerAuthentication;
    this.onAuth(request, conn.session, (err, response) => {
      const refusal = err ? { code: (err as Error & { responseCode?: number }).responseCode ?? 535, text: err.message } : !response?.user ? { code: 535, text: 'Error: Authentication credentials invalid' } : null;
      if (refusal) {
        conn._nextHandler = (_line, next) => {
          conn.send(refusal.code, refusal.text);
          next();
        };
        conn.send(334, this.oauth!.challenge);
        return callback();
      }
      conn.session.user = response!.user;
      conn.session.transmissionType = conn._transmissionType();
      conn.send(235, 'Authentication successful');
      callback();
    });
  }

  /** The client's response: the authorisation identity, base64 ("=" alone: empty). */
  private finish(conn: Connection, raw: string, canAbort: boolean, callback: () => void): void {
    const token = raw.trim();
    if (canAbort && token === '*') {
      conn.send(501, 'Authentication aborted');
      return callback();
    }
    const b64 = token === '=' ? '' : token;
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4) {
      conn.send(501, 'Error: invalid userdata');
      return callback();
    }
    const authzid = Buffer.from(b64, 'base64').toString('utf8');
    if (CONTROL_CHARS.test(authzid)) {
      conn.send(501, 'Error: invalid userdata');
      return callback();
    }
    const request = { method: 'EXTERNAL', username: authzid, authzid } as unknown as SMTPServerAuthentication;
    this.onAuth(request, conn.session, (err, response) => {
      if (err) {
        conn.send((err as Error & { responseCode?: number }).responseCode ?? 535, err.message);
        return callback();
      }
      if (!response?.user) {
        conn.send(response?.responseCode ?? 535, response?.message ?? 'Error: Authentication credentials invalid');
        return callback();
      }
      conn.session.user = response.user;
      conn.session.transmissionType = conn._transmissionType();
      conn.send(235, 'Authentication successful');
      callback();
    });
  }
}
