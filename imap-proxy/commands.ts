// The commands the proxy answers itself, before login: one row per command with the
// arguments it takes and what it does (WildDuck's imap-core keeps one file per command;
// seven small commands fit one table). Everything else is refused until login, after
// which the proxy no longer answers anything: Dovecot does.
import { argText, type Arg, type Command } from './parser.js';
import type { PreAuthSession } from './session.js';
import { refusal } from './wire.js';
import { parseOAuthMessage } from '../identity/sasl-oauth.js';

export interface CommandSpec {
  /** How many arguments, and which must be strings (atom, quoted or literal). */
  args: { min: number; max: number; strings?: number };
  run(s: PreAuthSession, tag: string, args: Arg[]): void | Promise<void>;
}

/** What we say about ourselves to ID: no product version (nothing for a scanner to match). */
const SERVER_ID = `("name" "MSSante IMAP proxy" "vendor" "MSSante operator platform")`;
/** ID parameters kept from a client (name, version, os…), for the journal. */
const MAX_ID_PAIRS = 30;
const MAX_ID_VALUE = 256;

export const PREAUTH_COMMANDS: Record<string, CommandSpec> = {
  CAPABILITY: {
    args: { min: 0, max: 0 },
    run(s, tag) {
      s.write(`* CAPABILITY ${s.capabilities().join(' ')}\r\n${tag} OK CAPABILITY completed\r\n`);
    },
  },
  NOOP: {
    args: { min: 0, max: 0 },
    run(s, tag) {
      s.write(`${tag} OK NOOP completed\r\n`);
    },
  },
  LOGOUT: {
    args: { min: 0, max: 0 },
    run(s, tag) {
      s.write(`* BYE Logging out\r\n${tag} OK LOGOUT completed\r\n`);
      s.close('logout');
    },
  },
  ID: {
    // RFC 2971: ID NIL, or a list of field/value pairs.
    args: { min: 1, max: 1 },
    run(s, tag, [arg]) {
      if (arg.type === 'list') {
        const items = arg.items;
        if (items.length % 2 || items.length > MAX_ID_PAIRS * 2) return s.write(refusal(tag, 'IMAP_BAD_COMMAND', { reason: 'ID takes NIL or a list of field/value pairs' }));
        const fields: Record<string, string> = {};
        for (let i = 0; i < items.length; i += 2) {
          const k = argText(items[i]);
          const v = argText(items[i + 1]);
          if (k && v !== null) fields[k.toLowerCase().slice(0, 64)] = v.slice(0, MAX_ID_VALUE);
        }
        s.clientId = fields;
      } else if (arg.type !== 'nil') return s.write(refusal(tag, 'IMAP_BAD_COMMAND', { reason: 'ID takes NIL or a list of field/value pairs' }));
      s.write(`* ID ${SERVER_ID}\r\n${tag} OK ID completed\r\n`);
    },
  },
  STARTTLS: {
    args: { min: 0, max: 0 },
    run(s, tag) {
      if (s.secure) return s.write(refusal(tag, 'IMAP_ALREADY_TLS'));
      s.startTls(tag);
    },
  },
  LOGIN: {
    args: { min: 2, max: 2, strings: 2 },
    async run(s, tag, [user, pass]) {
      if (!s.secure) return s.write(refusal(tag, 'IMAP_PRIVACY_REQUIRED'));
      await s.login(tag, { method: 'LOGIN', user: argText(user)!, authzid: null, secret: argText(pass)! });
    },
  },
  AUTHENTICATE: {
    // RFC 3501 §6.2.2 + SASL-IR (RFC 4959): AUTHENTICATE <mechanism> [<initial response>].
    args: { min: 1, max: 2, strings: 2 },
    async run(s, tag, [mechArg, ir]) {
      if (!s.secure) return s.write(refusal(tag, 'IMAP_PRIVACY_REQUIRED'));
      const mech = argText(mechArg)!.toUpperCase();
      const offered = s.mechanisms();
      if (!offered.includes(mech)) return s.write(refusal(tag, 'IMAP_AUTH_MECHANISM', { mechanism: mech, offered: offered.join(' or ') }));
      let response = ir ? argText(ir)! : await s.saslContinuation();
      if (response === null) return; // connection gone
      if (response === '*') return s.write(refusal(tag, 'IMAP_AUTH_CANCELLED'));
      if (response === '=') response = '';
      const bytes = decodeBase64(response);
      if (!bytes) return s.write(refusal(tag, 'IMAP_BAD_COMMAND', { reason: 'the SASL response is not valid base64' }));
      if (mech === 'OAUTHBEARER' || mech === 'XOAUTH2') {
        const m = parseOAuthMessage(mech, bytes);
        return s.login(tag, m ? { method: mech, user: m.user, token: m.token } : { method: mech, user: null, token: null });
      }
      if (mech === 'EXTERNAL') {
        // RFC 4422 Appendix A: the message is the authorisation identity (may be empty).
        const authzid = bytes.toString('utf8');
        return s.login(tag, { method: 'EXTERNAL', authzid: authzid || null, certificate: s.certificate });
      }
      // RFC 4616: [authzid] NUL authcid NUL passwd.
      const parts = splitNul(bytes);
      if (!parts) return s.write(refusal(tag, 'IMAP_BAD_COMMAND', { reason: 'PLAIN expects authzid NUL authcid NUL password' }));
      const [authzid, authcid, password] = parts;
      await s.login(tag, { method: 'PLAIN', user: authcid, authzid: authzid || null, secret: password });
    },
  },
};

/** Commands valid only once logged in: a clearer answer than "unknown command". */
export const AFTER_LOGIN = new Set([
  'SELECT', 'EXAMINE', 'CREATE', 'DELETE', 'RENAME', 'SUBSCRIBE', 'UNSUBSCRIBE', 'LIST', 'LSUB', 'STATUS', 'APPEND', 'CHECK', 'CLOSE', 'UNSELECT',
  'EXPUNGE', 'SEARCH', 'FETCH', 'STORE', 'COPY', 'MOVE', 'UID', 'IDLE', 'ENABLE', 'NAMESPACE', 'GETQUOTA', 'GETQUOTAROOT', 'SORT', 'THREAD', 'COMPRESS',
]);

/** Checks the argument count and kinds of a command; a reason when they are wrong. */
export function checkArgs(spec: CommandSpec, cmd: Command): string | null {
  const n = cmd.args.length;
  if (n < spec.args.min || n > spec.args.max) {
    return spec.args.min === spec.args.max ? `${cmd.name} takes ${spec.args.min} argument${spec.args.min === 1 ? '' : 's'}` : `${cmd.name} takes ${spec.args.min} to ${spec.args.max} arguments`;
  }
  const strings = spec.args.strings ?? 0;
  for (let i = 0; i < Math.min(strings, n); i++) {
    if (argText(cmd.args[i]) === null) return `argument ${i + 1} of ${cmd.name} must be a string`;
  }
  return null;
}

function decodeBase64(s: string): Buffer | null {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4) return null;
  return Buffer.from(s, 'base64');
}

function splitNul(b: Buffer): [string, string, string] | null {
  const a = b.indexOf(0);
  const c = a < 0 ? -1 : b.indexOf(0, a + 1);
  if (a < 0 || c < 0 || b.indexOf(0, c + 1) >= 0) return null;
  return [b.toString('utf8', 0, a), b.toString('utf8', a + 1, c), b.toString('utf8', c + 1)];
}
