// IMAP proxy (993 implicit TLS, 143 STARTTLS). tests/imap-proxy/hostile.test.ts already
// covers over-long lines, huge literals, slow clients, binary garbage, a TLS handshake on
// the plain port, COMPRESS and the per-address cap of waiting connections: none of those is
// repeated here. These are the other pre-login refusals, the login and authorisation
// refusals, certificates, throttling, and a few after login (Dovecot's own answers, passed
// through and traced by the proxy).
import { call } from '../../webmail/stack.js';
import { tlsOutcome, type Case } from '../harness.js';
import { imapOutcome, type ImapCtx } from '../imap.js';
import { DOMAIN } from '../platform.js';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const re = (s: string) => new RegExp(`^${s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
/** Failed logins come from this address, and throttling cases from their own, so the check that the proxy still serves is never throttled. */
const STRANGER = '127.0.0.4';
const AUTH_FAILED = { code: 'NO', enhanced: 'AUTHENTICATIONFAILED', text: /^authentication failed: unknown user name or wrong credential$/ } as const;
const CERT_REJECTED = { code: 'NO', enhanced: 'AUTHENTICATIONFAILED', text: /^certificate authentication \(SASL EXTERNAL\) failed: the client certificate presented is not accepted in the MSSante trust space \(untrusted, expired or revoked\)$/ } as const; // IMAP texts are ASCII
const login = (x: ImapCtx, user: string, pass: string) => x.once(`a LOGIN "${user}" "${pass}"`, { from: STRANGER });
const bad = (reason: string) => ({ code: 'BAD', text: re(`invalid command: ${reason}`) });

export const imapCases: Array<Case<ImapCtx>> = [
  // --- in clear on 143 ---------------------------------------------------------------------------
  {
    name: 'LOGIN in clear on 143',
    send: async (x) => {
      const c = await x.plain();
      try {
        return await x.cmd(c, `a LOGIN ${x.h.who.jeanne.address} "${x.h.who.jeanne.password}"`);
      } finally {
        c.close();
      }
    },
    expect: { code: 'NO', enhanced: 'PRIVACYREQUIRED', text: /^logins travel over TLS only: issue STARTTLS first, or use the implicit-TLS port$/ },
  },
  {
    name: 'AUTHENTICATE PLAIN in clear on 143',
    send: async (x) => {
      const c = await x.plain();
      try {
        return await x.cmd(c, `a AUTHENTICATE PLAIN ${b64(`\0${x.h.who.jeanne.address}\0${x.h.who.jeanne.password}`)}`);
      } finally {
        c.close();
      }
    },
    expect: { code: 'NO', enhanced: 'PRIVACYREQUIRED', text: /^logins travel over TLS only/ },
  },
  {
    name: 'the plain port announces LOGINDISABLED and no mechanism before STARTTLS',
    send: async (x) => {
      const c = await x.plain();
      try {
        c.send('a CAPABILITY\r\n');
        const text = await c.until(/^a .*\r\n/m);
        const caps = /^\* CAPABILITY (.*)\r$/m.exec(text)?.[1] ?? '';
        return { ...imapOutcome(text.trimEnd().split('\r\n').pop()!), text: caps };
      } finally {
        c.close();
      }
    },
    expect: { code: 'OK', text: /^(?!.*AUTH=).*\bSTARTTLS\b.*\bLOGINDISABLED\b/ },
  },
  {
    name: 'STARTTLS with an argument',
    send: async (x) => {
      const c = await x.plain();
      try {
        return await x.cmd(c, 'a STARTTLS now');
      } finally {
        c.close();
      }
    },
    expect: bad('STARTTLS takes 0 arguments'),
  },
  {
    name: 'STARTTLS on the implicit-TLS port',
    send: (x) => x.once('a STARTTLS'),
    expect: { code: 'BAD', text: /^TLS is already active on this connection$/ },
  },
  {
    name: 'a LOGIN injected after STARTTLS in the same packet is dropped (CVE-2011-0411 and kin)',
    send: async (x) => {
      const c = await x.plain();
      try {
        c.send(`a STARTTLS\r\nb LOGIN ${x.h.who.jeanne.address} "${x.h.who.jeanne.password}"\r\n`);
        await c.until(/^a OK .*\r\n/m);
        await c.upgrade(x.h.tls());
        // Were "b LOGIN" kept, its answer would come before c's.
        c.send('c NOOP\r\n');
        const text = await c.until(/^[bc] (OK|NO|BAD) .*\r\n/m);
        return imapOutcome(text.trimEnd().split('\r\n').pop()!);
      } finally {
        c.close();
      }
    },
    expect: { code: 'OK', text: /^NOOP completed$/ },
  },
  {
    name: 'TLS 1.1 on 993',
    send: (x) => x.tls({ extra: { minVersion: 'TLSv1', maxVersion: 'TLSv1.1' } }).then(() => ({ code: 'tls-accepted', text: 'the handshake succeeded' }), tlsOutcome),
    expect: { code: 'tls', text: /protocol version|unsupported protocol|no protocols available/i },
  },
  {
    name: 'a suite without forward secrecy on 993',
    send: (x) => x.tls({ extra: { maxVersion: 'TLSv1.2', ciphers: 'AES256-GCM-SHA384' } }).then(() => ({ code: 'tls-accepted', text: 'the handshake succeeded' }), tlsOutcome),
    expect: { code: 'tls', text: /handshake failure|no shared cipher/i },
  },
  // --- passwords ---------------------------------------------------------------------------------
  {
    name: 'a wrong password',
    send: (x) => login(x, x.h.who.intrus.address, 'not the password'),
    expect: AUTH_FAILED,
  },
  {
    name: 'an unknown user',
    send: (x) => login(x, `personne.inconnue@${DOMAIN}`, 'whatever password'),
    expect: AUTH_FAILED,
  },
  {
    name: 'empty user name and password',
    send: (x) => login(x, '', ''),
    expect: AUTH_FAILED,
  },
  {
    name: "the Dovecot master user's name",
    send: (x) => login(x, x.h.config.mailstore.masterUser, 'guess'),
    expect: AUTH_FAILED,
  },
  {
    name: "the master-user syntax, box*master, trying to open jeanne's box as Dovecot's master",
    send: (x) => login(x, `${x.h.who.jeanne.address}*${x.h.config.mailstore.masterUser}`, 'guess'),
    expect: AUTH_FAILED,
  },
  {
    name: 'a doubled "*" separator (box*person*other)',
    send: (x) => login(x, `${x.h.org}*${x.h.who.secretaire.login}*${x.h.who.intrus.login}`, x.h.who.intrus.password),
    expect: { code: 'NO', enhanced: 'AUTHORIZATIONFAILED', text: /^there is no mailbox secretariat\.cardio@mssante\.localhost\*secretaire at this operator$/ },
  },
  {
    name: 'user name and password as literals',
    send: (x) =>
      x.tls({ from: STRANGER }).then(async (c) => {
        try {
          const user = x.h.who.intrus.address;
          c.send(`a LOGIN {${user.length}+}\r\n${user} {5+}\r\nwrong\r\n`);
          return imapOutcome((await c.until(/^a .*\r\n/m)).trimEnd().split('\r\n').pop()!);
        } finally {
          c.close();
        }
      }),
    expect: AUTH_FAILED,
  },
  {
    name: 'an 8-bit password in a quoted string',
    send: (x) => login(x, x.h.who.intrus.address, 'mot de passe accentué é à ü'),
    expect: AUTH_FAILED,
  },
  {
    name: "one person's webmail session token as another person's password",
    send: async (x) => {
      const r = await call(x.h.webmailUrl, x.h.ca, 'POST', '/api/v1/login', { json: { login: x.h.who.secretaire.login, password: x.h.who.secretaire.password } });
      return login(x, x.h.who.intrus.address, r.json().token as string);
    },
    expect: AUTH_FAILED,
  },
  // --- authorisation -------------------------------------------------------------------------------
  {
    name: "one's own password for a colleague's personal box",
    send: (x) => login(x, `${x.h.who.paul.address}*${x.h.who.intrus.login}`, x.h.who.intrus.password),
    expect: { code: 'NO', enhanced: 'AUTHORIZATIONFAILED', text: /^person intrus may not open the mailbox paul\.durand@mssante\.localhost: / },
  },
  {
    name: 'an organisational box one is not a member of',
    send: (x) => login(x, `${x.h.org}*${x.h.who.intrus.login}`, x.h.who.intrus.password),
    expect: { code: 'NO', enhanced: 'AUTHORIZATIONFAILED', text: /^person intrus may not open the mailbox secretariat\.cardio@mssante\.localhost: / },
  },
  {
    name: "an application's box with a person's password",
    send: (x) => login(x, `${x.h.app}*${x.h.who.intrus.login}`, x.h.who.intrus.password),
    expect: { code: 'NO', enhanced: 'AUTHORIZATIONFAILED', text: /^person intrus may not open the mailbox labo-resultats@mssante\.localhost: / },
  },
  {
    name: 'a closed personal box, by its holder',
    send: (x) => login(x, `${x.h.closedPer}*${x.h.who.paul.login}`, x.h.who.paul.password),
    expect: { code: 'NO', enhanced: 'AUTHORIZATIONFAILED', text: /paul\.ancien@mssante\.localhost is closed/ },
  },
  {
    name: 'a box that does not exist',
    send: (x) => login(x, `nulle.part@${DOMAIN}*${x.h.who.intrus.login}`, x.h.who.intrus.password),
    expect: { code: 'NO', enhanced: 'AUTHORIZATIONFAILED', text: /nulle\.part@mssante\.localhost/ },
  },
  {
    name: "a box of another operator's domain",
    send: (x) => login(x, `dr.durand@peer.mssante.localhost*${x.h.who.intrus.login}`, x.h.who.intrus.password),
    expect: { code: 'NO', enhanced: 'AUTHORIZATIONFAILED', text: /dr\.durand@peer\.mssante\.localhost/ },
  },
  {
    name: 'a Dovecot-style path as the box name (../paul.durand)',
    send: (x) => login(x, `../${x.h.who.paul.address}*${x.h.who.intrus.login}`, x.h.who.intrus.password),
    expect: { code: 'NO', enhanced: 'AUTHORIZATIONFAILED', text: /\.\.\/paul\.durand@mssante\.localhost/ },
  },
  {
    name: "AUTHENTICATE PLAIN with a colleague's box as authzid",
    send: (x) => x.once(`a AUTHENTICATE PLAIN ${b64(`${x.h.who.paul.address}\0${x.h.who.intrus.login}\0${x.h.who.intrus.password}`)}`, { from: STRANGER }),
    expect: { code: 'NO', enhanced: 'AUTHORIZATIONFAILED', text: /^person intrus may not open the mailbox paul\.durand@mssante\.localhost: / },
  },
  // --- SASL ----------------------------------------------------------------------------------------
  {
    name: 'AUTHENTICATE PLAIN that is not base64',
    send: (x) => x.once('a AUTHENTICATE PLAIN !!notbase64!!', { from: STRANGER }),
    expect: bad('the SASL response is not valid base64'),
  },
  {
    name: 'AUTHENTICATE PLAIN with one NUL',
    send: (x) => x.once(`a AUTHENTICATE PLAIN ${b64(`${x.h.who.intrus.login}\0${x.h.who.intrus.password}`)}`, { from: STRANGER }),
    expect: bad('PLAIN expects authzid NUL authcid NUL password'),
  },
  {
    name: 'AUTHENTICATE PLAIN with three NULs',
    send: (x) => x.once(`a AUTHENTICATE PLAIN ${b64(`a\0b\0c\0d`)}`, { from: STRANGER }),
    expect: bad('PLAIN expects authzid NUL authcid NUL password'),
  },
  {
    name: 'AUTHENTICATE PLAIN cancelled with "*"',
    send: (x) =>
      x.tls({ from: STRANGER }).then(async (c) => {
        try {
          c.send('a AUTHENTICATE PLAIN\r\n');
          await c.until(/^\+ .*\r\n/m);
          c.send('*\r\n');
          return imapOutcome((await c.until(/^a .*\r\n/m)).trimEnd().split('\r\n').pop()!);
        } finally {
          c.close();
        }
      }),
    expect: { code: 'BAD', text: /^authentication cancelled by the client$/ },
  },
  {
    name: 'AUTHENTICATE CRAM-MD5',
    send: (x) => x.once('a AUTHENTICATE CRAM-MD5'),
    expect: { code: 'NO', enhanced: 'CANNOT', text: /^authentication mechanism CRAM-MD5 is not offered: use PLAIN or OAUTHBEARER or XOAUTH2$/ },
  },
  {
    // Pro Santé Connect: RFC 7628's error challenge first, then the refusal once the client answers it.
    name: 'AUTHENTICATE XOAUTH2 with a forged token',
    send: (x) =>
      x.tls({ from: STRANGER }).then(async (c) => {
        try {
          c.send(`a AUTHENTICATE XOAUTH2 ${b64(`user=${x.h.who.jeanne.address}\x01auth=Bearer forged\x01\x01`)}\r\n`);
          const challenge = (await c.until(/^\+ .*\r\n/m)).trimEnd().split('\r\n').pop()!;
          if (JSON.parse(Buffer.from(challenge.slice(2), 'base64').toString()).status !== 'invalid_token') return { code: 'unparsable', text: challenge };
          c.send('\r\n');
          return imapOutcome((await c.until(/^a .*\r\n/m)).trimEnd().split('\r\n').pop()!);
        } finally {
          c.close();
        }
      }),
    expect: { code: 'NO', enhanced: 'AUTHENTICATIONFAILED', text: /^Pro Sante Connect token refused: it is not a signed JWT$/ },
  },
  {
    name: 'AUTHENTICATE EXTERNAL without a certificate',
    send: (x) => x.once('a AUTHENTICATE EXTERNAL ='),
    expect: { code: 'NO', enhanced: 'CANNOT', text: /^authentication mechanism EXTERNAL is not offered: use PLAIN or OAUTHBEARER or XOAUTH2$/ },
  },
  {
    name: 'AUTHENTICATE with three arguments',
    send: (x) => x.once('a AUTHENTICATE PLAIN abc def'),
    expect: bad('AUTHENTICATE takes 1 to 2 arguments'),
  },
  // --- certificates ------------------------------------------------------------------------------
  {
    name: 'EXTERNAL with an expired certificate',
    send: (x) => x.once('a AUTHENTICATE EXTERNAL =', { as: x.h.leaf('expired'), from: STRANGER }),
    expect: CERT_REJECTED,
  },
  {
    name: 'EXTERNAL with a revoked certificate',
    send: (x) => x.once('a AUTHENTICATE EXTERNAL =', { as: x.h.leaf('revoked'), from: STRANGER }),
    expect: CERT_REJECTED,
  },
  {
    name: 'EXTERNAL with a certificate from a foreign root',
    send: (x) => x.once('a AUTHENTICATE EXTERNAL =', { as: x.h.leaf('foreign'), from: STRANGER }),
    expect: CERT_REJECTED,
  },
  {
    name: 'EXTERNAL with an application certificate registered for no box, naming the lab',
    send: (x) => x.once(`a AUTHENTICATE EXTERNAL ${b64(x.h.app)}`, { as: x.h.strayApp, from: STRANGER }),
    expect: { code: 'NO', enhanced: 'AUTHORIZATIONFAILED', text: /may not open the mailbox labo-resultats@mssante\.localhost/ },
  },
  {
    name: 'EXTERNAL with an application certificate naming no box (it carries no address)',
    send: (x) => x.once('a AUTHENTICATE EXTERNAL =', { as: x.h.strayApp, from: STRANGER }),
    expect: { code: 'NO', enhanced: 'AUTHORIZATIONFAILED', text: /^name the mailbox to open: AUTHENTICATE EXTERNAL with its address \(base64\) as the authorisation identity$/ },
  },
  {
    name: "EXTERNAL with the lab's certificate naming a person's box",
    send: (x) => x.once(`a AUTHENTICATE EXTERNAL ${b64(x.h.who.jeanne.address)}`, { as: x.h.leaf('application'), from: STRANGER }),
    expect: { code: 'NO', enhanced: 'AUTHORIZATIONFAILED', text: /may not open the mailbox jeanne\.martin@mssante\.localhost/ },
  },
  {
    name: "EXTERNAL with a professional's certificate naming a colleague's box",
    send: (x) => x.once(`a AUTHENTICATE EXTERNAL ${b64(x.h.who.paul.address)}`, { as: x.h.leaf('personal'), from: STRANGER }),
    expect: { code: 'NO', enhanced: 'AUTHORIZATIONFAILED', text: /may not open the mailbox paul\.durand@mssante\.localhost/ },
  },
  {
    name: "EXTERNAL with an operator's server certificate",
    send: (x) => x.once(`a AUTHENTICATE EXTERNAL ${b64(x.h.app)}`, { as: x.h.leaf('peer-operator'), from: STRANGER }),
    expect: { code: 'NO', enhanced: 'AUTHORIZATIONFAILED', text: /may not open the mailbox labo-resultats@mssante\.localhost/ },
  },
  {
    name: "EXTERNAL with the lab's certificate sent without its intermediate (leaf only) opens the lab's box",
    send: (x) => x.once(`a AUTHENTICATE EXTERNAL ${b64(x.h.app)}`, { as: x.h.leaf('application', false) }),
    expect: { code: 'OK', enhanced: 'CAPABILITY', text: /^Logged in, mailbox labo-resultats@mssante\.localhost$/ },
  },
  {
    name: 'EXTERNAL whose authorisation identity is not base64',
    send: (x) => x.once('a AUTHENTICATE EXTERNAL ***', { as: x.h.leaf('personal'), from: STRANGER }),
    expect: bad('the SASL response is not valid base64'),
  },
  {
    name: 'EXTERNAL after STARTTLS on 143 works with the certificate that works on 993',
    send: async (x) => {
      const c = await x.plain();
      try {
        await x.cmd(c, 'a STARTTLS');
        await c.upgrade(x.h.tls(x.h.leaf('personal')));
        return await x.cmd(c, `b AUTHENTICATE EXTERNAL ${b64(x.h.who.jeanne.address)}`);
      } finally {
        c.close();
      }
    },
    expect: { code: 'OK', enhanced: 'CAPABILITY', text: /^Logged in, mailbox jeanne\.martin@mssante\.localhost$/ },
  },
  // --- throttling --------------------------------------------------------------------------------
  {
    name: 'thirty guesses on one account sent in parallel are not all checked',
    timeout: 300_000,
    send: async (x) => {
      const victim = x.h.victim(0);
      const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => x.once(`a LOGIN "${victim.address}" "wrong ${i}"`, { from: '127.0.0.5' })));
      const limited = answers.filter((a) => a.enhanced === 'LIMIT');
      if (limited.length < 20) return { code: 'NO', enhanced: 'AUTHENTICATIONFAILED', text: `${30 - limited.length} of 30 parallel guesses were checked` };
      return limited[0];
    },
    expect: { code: 'NO', enhanced: 'LIMIT', text: /^too many failed logins for this account; try again in 15 min$/ },
  },
  {
    name: 'the account locked by guessing still refuses its right password, and says why',
    // Runs after the parallel guesses above (same victim): by then they are counted.
    send: (x) => x.once(`a LOGIN "${x.h.victim(0).address}" "${x.h.victim(0).password}"`, { from: '127.0.0.5' }),
    expect: { code: 'NO', enhanced: 'LIMIT', text: /too many failed logins for this account; try again in \d+ min/ },
  },
  {
    name: 'guesses spread over many accounts from one address, in parallel past the address limit',
    timeout: 300_000,
    send: async (x) => {
      // 90 failures in parallel batches of 30 (below the cap of connections waiting to log
      // in), then 35 at once: with each attempt reserved before its check, at most 10 of
      // those are checked.
      const from = '127.0.0.6';
      const batch = (b: number, n: number) => Promise.all(Array.from({ length: n }, (_, i) => x.once(`a LOGIN "spray${b}.${i}@${DOMAIN}" "guess"`, { from })));
      for (let b = 0; b < 3; b++) await batch(b, 30);
      const limited = (await batch(3, 35)).filter((a) => a.enhanced === 'LIMIT');
      if (limited.length < 25) return { code: 'NO', enhanced: 'AUTHENTICATIONFAILED', text: `${35 - limited.length} of 35 parallel guesses were checked after 90 failures from one address (limit 100)` };
      return limited[0];
    },
    expect: { code: 'NO', enhanced: 'LIMIT', text: /^too many failed logins from your address; try again in 15 min$/ },
  },
  {
    name: '200 correct logins at once from one address (a hospital behind NAT) all succeed',
    timeout: 600_000,
    send: async (x) => {
      // Raw sessions, so that a refusal shows the proxy's own words (a BYE, a NO) rather than a closed socket.
      const users = [x.h.who.paul, x.h.who.secretaire];
      const answers = await Promise.all(
        Array.from({ length: 200 }, async (_, i) => {
          const u = users[i % 2];
          let c;
          try {
            c = await x.tls({ from: '127.0.0.7' });
            c.send(`a LOGIN "${u.address}" "${u.password}"\r\n`);
            return imapOutcome((await c.until(/^(?:a (?:OK|NO|BAD)|\* BYE)\b.*\r\n/m)).trimEnd().split('\r\n').pop()!);
          } catch (e) {
            return { code: 'closed', text: (e as Error).message };
          } finally {
            c?.close();
          }
        }),
      );
      const refused = answers.filter((o) => o.code !== 'OK');
      if (refused.length) return { ...refused[0], text: `${refused.length} of 200 refused, e.g. ${refused[0].code} ${refused[0].enhanced ?? ''} ${refused[0].text}` };
      return { code: 'OK', text: '200 of 200 logged in' };
    },
    expect: { code: 'OK', text: /^200 of 200 logged in$/ },
  },
  // --- the pre-login parser --------------------------------------------------------------------------
  { name: 'an empty line', send: (x) => x.once(''), expect: bad('empty command line') },
  { name: 'a tag with "+"', send: (x) => x.once('a+b NOOP'), expect: bad('a tag may not contain "+"') },
  { name: 'a tag and no command', send: (x) => x.once('lonely'), expect: bad('a command name is missing after the tag') },
  { name: 'a 65-character tag', send: (x) => x.once(`${'t'.repeat(65)} NOOP`), expect: bad('tag longer than 64 characters') },
  { name: 'a parenthesis glued to the command name', send: (x) => x.once('a LOGIN(x y)'), expect: bad('unexpected "(" after the command name') },
  { name: 'a ")" without "("', send: (x) => x.once('a ID )'), expect: bad('")" without a matching "("') },
  { name: 'a "(" without ")"', send: (x) => x.once('a ID ("name" "x"'), expect: bad('"(" without a matching ")"') },
  { name: 'lists nested ten deep', send: (x) => x.once(`a ID ${'('.repeat(10)}${')'.repeat(10)}`), expect: bad('lists nested too deeply') },
  { name: 'a quoted string with a bad escape', send: (x) => x.once('a LOGIN "a\\x" "b"'), expect: bad('in a quoted string, "\\" may only escape " or \\') },
  { name: 'a NUL byte in a quoted string', send: (x) => x.once('a LOGIN "a\0b" "c"'), expect: bad('NUL byte in a quoted string') },
  { name: 'an unterminated quoted string', send: (x) => x.once('a LOGIN "abc'), expect: bad('quoted string not terminated on its line') },
  { name: 'text glued after a quoted string', send: (x) => x.once('a LOGIN "a"b "c"'), expect: bad('unexpected "b" after a quoted string') },
  { name: 'a literal announcement in the middle of a line', send: (x) => x.once('a LOGIN {5}abc def'), expect: bad('a literal announcement {n} must end the line') },
  { name: 'a literal size beyond 2^53', send: (x) => x.once('a LOGIN {99999999999999999999}'), expect: bad('literal size out of range') },
  { name: 'literal8 before login', send: (x) => x.once('a LOGIN ~{5}'), expect: bad('literal8 (~{n}) is not accepted before login') },
  {
    name: 'five literals in one command',
    send: (x) =>
      x.tls().then(async (c) => {
        try {
          c.send('a ID ("a" {1+}\r\nb {1+}\r\nc {1+}\r\nd {1+}\r\ne {1}\r\n');
          return imapOutcome((await c.until(/^a .*\r\n/m)).trimEnd().split('\r\n').pop()!);
        } finally {
          c.close();
        }
      }),
    expect: { code: 'BAD', text: /^invalid command: more than 4 literals in one command$/ },
  },
  { name: 'an unbalanced "["', send: (x) => x.once('a FETCH 1 BODY[HEADER'), expect: bad('"[" without a matching "]"') },
  { name: 'LOGIN with a list as user name', send: (x) => x.once('a LOGIN (jeanne) "pw"'), expect: bad('argument 1 of LOGIN must be a string') },
  { name: 'LOGIN with NIL as password', send: (x) => x.once('a LOGIN jeanne NIL'), expect: bad('argument 2 of LOGIN must be a string') },
  { name: 'LOGIN with three arguments', send: (x) => x.once('a LOGIN a b c'), expect: bad('LOGIN takes 2 arguments') },
  { name: 'CAPABILITY with an argument', send: (x) => x.once('a CAPABILITY ALL'), expect: bad('CAPABILITY takes 0 arguments') },
  { name: 'LOGOUT with an argument', send: (x) => x.once('a LOGOUT now'), expect: bad('LOGOUT takes 0 arguments') },
  { name: 'ID with an odd number of items', send: (x) => x.once('a ID ("name" "x" "version")'), expect: bad('ID takes NIL or a list of field/value pairs') },
  { name: 'ID with an atom', send: (x) => x.once('a ID everything'), expect: bad('ID takes NIL or a list of field/value pairs') },
  {
    name: 'ID with 31 pairs',
    send: (x) => x.once(`a ID (${Array.from({ length: 31 }, (_, i) => `"k${i}" "v"`).join(' ')})`),
    expect: bad('ID takes NIL or a list of field/value pairs'),
  },
  { name: 'APPEND before login', send: (x) => x.once('a APPEND INBOX {5+}\r\nhello\r\n'), expect: { code: 'BAD', text: /^APPEND is not valid before login: log in first \(LOGIN or AUTHENTICATE\)$/ } },
  { name: 'IDLE before login', send: (x) => x.once('a IDLE'), expect: { code: 'BAD', text: /^IDLE is not valid before login/ } },
  { name: 'UID FETCH before login', send: (x) => x.once('a UID FETCH 1:* (BODY[])'), expect: { code: 'BAD', text: /^UID is not valid before login/ } },
  { name: 'ENABLE before login', send: (x) => x.once('a ENABLE QRESYNC'), expect: { code: 'BAD', text: /^ENABLE is not valid before login/ } },
  { name: 'a made-up X- command', send: (x) => x.once('a XDEBUG on'), expect: { code: 'BAD', text: /^unknown command XDEBUG$/ } },
  // --- after login: Dovecot answers, through the proxy ---------------------------------------------------
  {
    name: "after login, SELECT of a path out of one's own mailbox",
    send: async (x) => {
      const c = await x.loggedIn(x.h.who.intrus.address, x.h.who.intrus.password);
      try {
        return await x.cmd(c, 'b SELECT "../paul.durand@mssante.localhost/INBOX"');
      } finally {
        c.close();
      }
    },
    expect: { code: 'NO', enhanced: 'CANNOT', text: /^Character not allowed in mailbox name: '\.'/ },
  },
  {
    name: 'after login, LOGIN again',
    send: async (x) => {
      const c = await x.loggedIn(x.h.who.intrus.address, x.h.who.intrus.password);
      try {
        return await x.cmd(c, `b LOGIN ${x.h.who.paul.address} "${x.h.who.paul.password}"`);
      } finally {
        c.close();
      }
    },
    expect: { code: 'BAD', text: /^Error in IMAP command LOGIN: Unknown command/ },
  },
  {
    name: 'after login, an APPEND of 2 GB announced is refused before a byte of it is sent',
    send: async (x) => {
      const c = await x.loggedIn(x.h.who.intrus.address, x.h.who.intrus.password);
      try {
        c.send('b APPEND INBOX {2000000000}\r\n');
        const text = await c.until(/^(?:b (?:OK|NO|BAD) .*|\+ .*)\r\n/m);
        const last = text.trimEnd().split('\r\n').pop()!;
        return last.startsWith('+') ? { code: '+', text: `the server asked for the 2 GB: ${last}` } : imapOutcome(last);
      } finally {
        c.close();
      }
    },
    expect: { code: 'NO', enhanced: 'LIMIT', text: /^Mail size is larger than the maximum size allowed by server configuration/ },
  },
  {
    name: 'after login, a non-synchronising APPEND over the size limit: its bytes are skipped, the session goes on',
    send: async (x) => {
      const c = await x.loggedIn(x.h.who.intrus.address, x.h.who.intrus.password);
      try {
        c.send(`b APPEND INBOX {400000+}\r\n${'x'.repeat(400_000)}\r\n`);
        const refused = imapOutcome((await c.until(/^b .*\r\n/m)).trimEnd().split('\r\n').pop()!);
        const after = await x.cmd(c, 'c NOOP');
        return after.code === 'OK' ? refused : { code: after.code, text: `the session did not go on: ${after.text}` };
      } finally {
        c.close();
      }
    },
    expect: { code: 'NO', enhanced: 'LIMIT', text: /^Mail size is larger than the maximum size allowed by server configuration/ },
  },
];
