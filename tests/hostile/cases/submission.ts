// Submission (587 STARTTLS, 465 implicit TLS): people and applications send here. The
// cases try to log in without TLS, with garbage, as someone else, and to send as a box
// that is not theirs. Wrong passwords go to the accounts and source address set aside for
// them, so the person who checks that the server still serves is never locked out.
import { call } from '../../webmail/stack.js';
import type { Case } from '../harness.js';
import { DOMAIN, PEER } from '../platform.js';
import { failedHandshake, plainAuth, smtpOutcome, type SmtpCtx, type SubOptions } from '../smtp.js';

const A = DOMAIN;
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const re = (s: string) => new RegExp(`^${s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
/** Logins that fail come from this address (per-source throttling never touches the checks). */
const stranger: SubOptions = { from: '127.0.0.3' };
const msg = (from: string, extra = '') => `From: ${from}\r\nTo: <paul.durand@${A}>\r\nSubject: test\r\nDate: Mon, 2 Mar 2026 10:00:00 +0100\r\nMessage-ID: <${Math.random().toString(36).slice(2)}@${A}>\r\n${extra}\r\nBonjour.\r\n.\r\n`;
const AUTH_FAILED = { code: 535, enhanced: '5.7.8', text: /^authentication failed: unknown user name or wrong credential$/ } as const;

export const submissionCases: Array<Case<SmtpCtx>> = [
  // --- before TLS ------------------------------------------------------------------------------
  {
    name: 'AUTH PLAIN in clear on 587',
    send: (x) => x.sub('ehlo', (t) => t.cmd(`AUTH PLAIN ${plainAuth(x.h.who.jeanne.login, x.h.who.jeanne.password)}`)),
    expect: { code: 538, text: /^Error: Must issue a STARTTLS command first$/ },
  },
  {
    name: 'AUTH LOGIN in clear on 587',
    send: (x) => x.sub('ehlo', (t) => t.cmd('AUTH LOGIN')),
    expect: { code: 538, text: /^Error: Must issue a STARTTLS command first$/ },
  },
  {
    name: 'MAIL in clear on 587',
    send: (x) => x.sub('ehlo', (t) => t.cmd(`MAIL FROM:<${x.h.who.jeanne.address}>`)),
    expect: { code: 530, enhanced: '5.7.0', text: /^Must issue a STARTTLS command first: the MSSante trust space accepts mail over TLS only$/ },
  },
  {
    name: 'plaintext SMTP to the implicit-TLS port 465',
    send: async (x) => smtpOutcome(`(connection closed) ${await x.raw(x.h.ports.submissions, 'EHLO client.test\r\n', /\r\n/)}`),
    expect: { code: 'closed', text: /^$/ },
  },
  {
    name: 'TLS 1.1 on 587',
    send: (x) => x.sub('ehlo', (t) => failedHandshake(t, x.h.tls(undefined, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1' }))),
    expect: { code: 'tls', text: /protocol version|unsupported protocol|no protocols available/i },
  },
  {
    name: 'a suite without forward secrecy on 587',
    send: (x) => x.sub('ehlo', (t) => failedHandshake(t, x.h.tls(undefined, { maxVersion: 'TLSv1.2', ciphers: 'AES128-GCM-SHA256' }))),
    expect: { code: 'tls', text: /handshake failure|no shared cipher/i },
  },
  // --- AUTH ------------------------------------------------------------------------------------
  {
    name: 'MAIL without logging in',
    send: (x) => x.sub('tls', (t) => t.cmd(`MAIL FROM:<${x.h.who.jeanne.address}>`)),
    expect: { code: 530, enhanced: '5.7.0', text: /^authentication required: log in with your MSSante account or your certificate$/ },
  },
  {
    name: 'a wrong password',
    send: (x) => x.sub('tls', (t) => t.cmd(`AUTH PLAIN ${plainAuth(x.h.who.intrus.login, 'not the password')}`), stranger),
    expect: AUTH_FAILED,
  },
  {
    name: 'an unknown user',
    send: (x) => x.sub('tls', (t) => t.cmd(`AUTH PLAIN ${plainAuth('personne.inconnue', 'whatever password')}`), stranger),
    expect: AUTH_FAILED,
  },
  {
    name: 'a 10 KB password',
    send: (x) => x.sub('tls', (t) => t.cmd(`AUTH PLAIN ${plainAuth(x.h.who.intrus.login, 'p'.repeat(10_000))}`), stranger),
    expect: AUTH_FAILED,
  },
  {
    name: 'AUTH LOGIN with a NUL inside the password',
    send: (x) =>
      x.sub(
        'tls',
        async (t) => {
          await t.cmd('AUTH LOGIN');
          await t.cmd(b64(x.h.who.intrus.login));
          return t.cmd(b64(`${x.h.who.intrus.password}\0suffix`));
        },
        stranger,
      ),
    expect: AUTH_FAILED,
  },
  {
    name: "the person's address as user name with another person's password",
    send: (x) => x.sub('tls', (t) => t.cmd(`AUTH PLAIN ${plainAuth(x.h.who.intrus.address, x.h.who.secretaire.password)}`), stranger),
    expect: AUTH_FAILED,
  },
  {
    name: "one person's webmail session token as another person's password",
    send: async (x) => {
      const r = await call(x.h.webmailUrl, x.h.ca, 'POST', '/api/v1/login', { json: { login: x.h.who.secretaire.login, password: x.h.who.secretaire.password } });
      const token = r.json().token as string;
      return x.sub('tls', (t) => t.cmd(`AUTH PLAIN ${plainAuth(x.h.who.intrus.login, token)}`), stranger);
    },
    expect: AUTH_FAILED,
  },
  {
    name: 'AUTH PLAIN that is not base64',
    send: (x) => x.sub('tls', (t) => t.cmd('AUTH PLAIN !!!not-base64!!!'), stranger),
    expect: { code: 501, text: /^Error: invalid userdata$/ },
  },
  {
    name: 'AUTH PLAIN with one NUL instead of two',
    send: (x) => x.sub('tls', (t) => t.cmd(`AUTH PLAIN ${b64(`${x.h.who.intrus.login}\0${x.h.who.intrus.password}`)}`), stranger),
    expect: { code: 501, text: /^Error: invalid userdata$/ },
  },
  {
    name: 'AUTH PLAIN with a control character in the user name (log injection)',
    send: (x) => x.sub('tls', (t) => t.cmd(`AUTH PLAIN ${plainAuth('intrus\r\n250 OK', 'x')}`), stranger),
    expect: { code: 501, text: /^Error: invalid userdata$/ },
  },
  {
    name: 'AUTH PLAIN with two tokens',
    send: (x) => x.sub('tls', (t) => t.cmd('AUTH PLAIN abc def'), stranger),
    expect: { code: 501, text: /^Error: syntax: AUTH PLAIN token$/ },
  },
  {
    name: 'AUTH PLAIN cancelled with "*"',
    send: (x) =>
      x.sub('tls', async (t) => {
        await t.cmd('AUTH PLAIN');
        return t.cmd('*');
      }),
    expect: { code: 501, text: /^Authentication aborted$/ },
  },
  {
    name: 'AUTH LOGIN with an empty user name',
    send: (x) =>
      x.sub('tls', async (t) => {
        await t.cmd('AUTH LOGIN');
        return t.cmd('');
      }),
    expect: { code: 501, text: /^Error: missing username$/ },
  },
  {
    name: 'AUTH CRAM-MD5 (not offered: the password is never stored in clear)',
    send: (x) => x.sub('tls', (t) => t.cmd('AUTH CRAM-MD5')),
    expect: { code: 504, text: /^Error: Unrecognized authentication type$/ },
  },
  {
    name: 'AUTH XOAUTH2 with a forged token (Pro Santé Connect: refused with the reason)',
    send: (x) => x.sub('tls', (t) => t.cmd(`AUTH XOAUTH2 ${b64(`user=${x.h.who.jeanne.address}\x01auth=Bearer forged\x01\x01`)}`)),
    expect: { code: 535, enhanced: '5.7.8', text: /^Pro Sante Connect token refused: it is not a signed JWT$/ },
  },
  {
    name: 'a second AUTH in a session (identity change)',
    send: (x) => x.sub('auth', (t) => t.cmd(`AUTH PLAIN ${plainAuth(x.h.who.paul.login, x.h.who.paul.password)}`)),
    expect: { code: 503, text: /^Error: No identity changes permitted$/ },
  },
  {
    name: "AUTH PLAIN naming another person's box as authzid logs in as oneself only: MAIL FROM that box is refused",
    send: (x) =>
      x.sub('tls', async (t) => {
        const r = await t.cmd(`AUTH PLAIN ${plainAuth(x.h.who.intrus.login, x.h.who.intrus.password, x.h.who.paul.address)}`);
        if (!r.startsWith('235')) return r;
        return t.cmd(`MAIL FROM:<${x.h.who.paul.address}>`);
      }),
    expect: { code: 553, enhanced: '5.7.1', text: /^person intrus may not send as paul\.durand@mssante\.localhost: / },
  },
  {
    name: 'AUTH EXTERNAL with a personal certificate (SASL EXTERNAL, RFC 4422)',
    send: (x) => x.sub('tls', (t) => t.cmd('AUTH EXTERNAL ='), { as: x.h.leaf('personal') }),
    expect: { code: 235, enhanced: '2.7.0', text: /^Authentication successful$/ },
  },
  {
    name: 'AUTH EXTERNAL without a certificate',
    send: (x) => x.sub('tls', (t) => t.cmd('AUTH EXTERNAL ='), stranger),
    expect: { code: 535, enhanced: '5.7.8', text: /^certificate authentication \(SASL EXTERNAL\) failed: no client certificate was presented during the TLS handshake$/ },
  },
  {
    name: 'thirty wrong passwords on fresh connections lock the account: the right one is refused next',
    timeout: 300_000,
    send: async (x) => {
      const victim = x.h.victim(0);
      for (let i = 0; i < 30; i++) {
        const o = await x.sub('tls', (t) => t.cmd(`AUTH PLAIN ${plainAuth(victim.login, `wrong ${i}`)}`), stranger);
        if (o.code !== '535') return o;
      }
      return x.sub('tls', (t) => t.cmd(`AUTH PLAIN ${plainAuth(victim.login, victim.password)}`), stranger);
    },
    expect: { code: 454, enhanced: '4.7.0', text: /^too many failed logins for this account; try again in 15 min$/ },
  },
  {
    name: 'thirty wrong passwords in one session are not all checked',
    timeout: 300_000,
    send: (x) =>
      x.sub(
        'tls',
        async (t) => {
          const victim = x.h.victim(1);
          let r = '';
          for (let i = 0; i < 30; i++) if (!(r = await t.cmd(`AUTH PLAIN ${plainAuth(victim.login, `wrong ${i}`)}`)).startsWith('535')) return r;
          return r;
        },
        stranger,
      ),
    expect: { code: 454, enhanced: '4.7.0', text: /^too many failed logins for this account; try again in 15 min$/ },
  },
  // --- send as ---------------------------------------------------------------------------------
  {
    name: "MAIL FROM another person's personal box",
    send: (x) => x.sub('auth', (t) => t.cmd(`MAIL FROM:<${x.h.who.paul.address}>`)),
    expect: { code: 553, enhanced: '5.7.1', text: /^person jeanne\.martin may not send as paul\.durand@mssante\.localhost: / },
  },
  {
    name: 'MAIL FROM an organisational box one is not a member of',
    send: (x) => x.sub('auth', (t) => t.cmd(`MAIL FROM:<${x.h.org}>`)),
    expect: { code: 553, enhanced: '5.7.1', text: /^person jeanne\.martin may not send as secretariat\.cardio@mssante\.localhost: / },
  },
  {
    name: "MAIL FROM an application's box as a person",
    send: (x) => x.sub('auth', (t) => t.cmd(`MAIL FROM:<${x.h.app}>`)),
    expect: { code: 553, enhanced: '5.7.1', text: /^person jeanne\.martin may not send as labo-resultats@mssante\.localhost: / },
  },
  {
    name: "MAIL FROM one's own box after it was closed",
    send: (x) => x.sub('auth', (t) => t.cmd(`MAIL FROM:<${x.h.closedPer}>`), { who: x.h.who.paul }),
    expect: { code: 553, enhanced: '5.7.1', text: /^person paul\.durand may not send as paul\.ancien@mssante\.localhost: .*closed/ },
  },
  {
    name: 'MAIL FROM a local address that is no box',
    send: (x) => x.sub('auth', (t) => t.cmd(`MAIL FROM:<personne.inconnue@${A}>`)),
    expect: { code: 553, enhanced: '5.7.1', text: /^person jeanne\.martin may not send as personne\.inconnue@mssante\.localhost: / },
  },
  {
    name: 'MAIL FROM an address of another operator',
    send: (x) => x.sub('auth', (t) => t.cmd(`MAIL FROM:<dr.durand@${PEER}>`)),
    expect: { code: 553, enhanced: '5.7.1', text: /^person jeanne\.martin may not send as dr\.durand@peer\.mssante\.localhost: / },
  },
  {
    name: 'MAIL FROM the null sender (a bounce forged by a person)',
    send: (x) => x.sub('auth', (t) => t.cmd('MAIL FROM:<>')),
    expect: { code: 553, enhanced: '5.7.1', text: /^person jeanne\.martin may not send as /},
  },
  {
    name: "MAIL FROM someone else's liste rouge box",
    send: (x) => x.sub('auth', (t) => t.cmd(`MAIL FROM:<${x.h.listeRouge}>`)),
    expect: { code: 553, enhanced: '5.7.1', text: /^person jeanne\.martin may not send as discret@mssante\.localhost: / },
  },
  {
    name: 'MAIL FROM own box through a source route to another',
    send: (x) => x.sub('auth', (t) => t.cmd(`MAIL FROM:<@${A}:${x.h.who.paul.address}>`)),
    expect: { code: 553, enhanced: '5.7.1', text: /^person jeanne\.martin may not send as paul\.durand@mssante\.localhost: / },
  },
  // --- certificates on submission ---------------------------------------------------------------
  {
    name: 'an expired certificate does not log in',
    send: (x) => x.sub('tls', (t) => t.cmd(`MAIL FROM:<${x.h.app}>`), { as: x.h.leaf('expired') }),
    expect: { code: 530, enhanced: '5.7.0', text: /^authentication required/ },
  },
  {
    name: 'a revoked certificate does not log in',
    send: (x) => x.sub('tls', (t) => t.cmd(`MAIL FROM:<${x.h.app}>`), { as: x.h.leaf('revoked') }),
    expect: { code: 530, enhanced: '5.7.0', text: /^authentication required/ },
  },
  {
    name: 'a certificate from a foreign root does not log in',
    send: (x) => x.sub('tls', (t) => t.cmd(`MAIL FROM:<${x.h.app}>`), { as: x.h.leaf('foreign') }),
    expect: { code: 530, enhanced: '5.7.0', text: /^authentication required/ },
  },
  {
    name: 'an application certificate registered for no box does not log in',
    // Today it stands for an application and is refused at MAIL (553); with branch auth only a usable certificate logs in.
    send: (x) => x.sub('tls', (t) => t.cmd(`MAIL FROM:<${x.h.app}>`), { as: x.h.strayApp }),
    expect: { code: 530, enhanced: '5.7.0', text: /^authentication required: log in with your MSSante account or your certificate$/ },
  },
  {
    name: "another operator's server certificate does not log in on submission",
    send: (x) => x.sub('tls', (t) => t.cmd(`MAIL FROM:<${x.h.app}>`), { as: x.h.leaf('peer-operator') }),
    expect: { code: 530, enhanced: '5.7.0', text: /^authentication required: log in with your MSSante account or your certificate$/ },
  },
  {
    name: "the lab's software presenting its leaf certificate only (no intermediate) sends as the lab",
    send: (x) => x.sub('tls', (t) => t.cmd(`MAIL FROM:<${x.h.app}>`), { as: x.h.leaf('application', false) }),
    expect: { code: 250, text: /^Accepted$/ },
  },
  {
    name: "an application's certificate sending as a person's box",
    // The refusal names the certificate by its fingerprint: in ASCII (not "f777ae2e4ebf8a9d?", issue 12 class 5).
    send: (x) => x.sub('tls', (t) => t.cmd(`MAIL FROM:<${x.h.who.jeanne.address}>`), { as: x.h.leaf('application') }),
    expect: { code: 553, enhanced: '5.7.1', text: /^application certificate [0-9a-f]{16}(\.\.\.)? may not send as jeanne\.martin@mssante\.localhost: [\x20-\x7e]+$/ },
  },
  {
    name: "a professional's certificate sending as a colleague's box",
    send: (x) => x.sub('tls', (t) => t.cmd(`MAIL FROM:<${x.h.who.paul.address}>`), { as: x.h.leaf('personal') }),
    expect: { code: 553, enhanced: '5.7.1', text: /may not send as paul\.durand@mssante\.localhost: / },
  },
  // --- RCPT --------------------------------------------------------------------------------------
  {
    name: 'a recipient outside the trust space',
    send: (x) => x.sub('mail', (t) => t.cmd('RCPT TO:<patient@gmail.com>')),
    expect: { code: 550, enhanced: '5.7.1', text: re('recipient domain gmail.com is not in the MSSante trust space (it is not on the liste blanche)') },
  },
  {
    name: 'a recipient in a look-alike of a whitelisted domain (Cyrillic letter)',
    send: (x) => x.sub('mail', (t) => t.cmd('RCPT TO:<dr.durand@peer.xn--mssnte-5nf.localhost>')),
    expect: { code: 550, enhanced: '5.7.1', text: /^recipient domain peer\.(xn--mssnte-5nf|mss\?nte)\.localhost is not in the MSSante trust space/ },
  },
  {
    name: 'an unknown local recipient',
    send: (x) => x.sub('mail', (t) => t.cmd(`RCPT TO:<personne.inconnue@${A}>`)),
    expect: { code: 550, enhanced: '5.1.1', text: re(`there is no mailbox personne.inconnue@${A} at this operator`) },
  },
  {
    name: 'a closed local recipient',
    send: (x) => x.sub('mail', (t) => t.cmd(`RCPT TO:<${x.h.closedOrg}>`)),
    expect: { code: 550, enhanced: '5.1.1', text: /^the mailbox ancien\.cabinet@mssante\.localhost is closed$/ },
  },
  {
    name: 'RCPT before MAIL',
    send: (x) => x.sub('auth', (t) => t.cmd(`RCPT TO:<${x.h.who.paul.address}>`)),
    expect: { code: 503, text: /^Error: need MAIL command$/ },
  },
  // --- DATA ------------------------------------------------------------------------------------
  {
    name: "a From header naming someone else's box",
    send: (x) => x.sub('rcpt', (t) => t.data(msg(`<${x.h.who.paul.address}>`))),
    expect: { code: 553, enhanced: '5.7.1', text: /^person jeanne\.martin may not send as paul\.durand@mssante\.localhost: / },
  },
  {
    name: "a From header with one's own name but another's address",
    send: (x) => x.sub('rcpt', (t) => t.data(msg(`"Jeanne Martin <${x.h.who.jeanne.address}>" <${x.h.who.paul.address}>`))),
    expect: { code: 553, enhanced: '5.7.1', text: /may not send as paul\.durand@mssante\.localhost: / },
  },
  {
    name: 'no From header',
    send: (x) => x.sub('rcpt', (t) => t.data(`To: <paul.durand@${A}>\r\nSubject: x\r\n\r\nx\r\n.\r\n`)),
    expect: { code: 550, enhanced: '5.6.0', text: /^the From header "" must be one mailbox you may send as$/ },
  },
  {
    name: 'a From header with two mailboxes',
    send: (x) => x.sub('rcpt', (t) => t.data(msg(`<${x.h.who.jeanne.address}>, <${x.h.who.paul.address}>`))),
    expect: { code: 550, enhanced: '5.6.0', text: /^the From header ".*" must be one mailbox you may send as$/ },
  },
  {
    name: 'a From header that is an empty group',
    send: (x) => x.sub('rcpt', (t) => t.data(msg('undisclosed-senders:;'))),
    expect: { code: 550, enhanced: '5.6.0', text: /^the From header "undisclosed-senders:;" must be one mailbox you may send as$/ },
  },
  {
    name: 'two From headers, the second naming someone else',
    send: (x) => x.sub('rcpt', (t) => t.data(msg(`<${x.h.who.jeanne.address}>`, `From: <${x.h.who.paul.address}>\r\n`))),
    expect: { code: 550, enhanced: '5.6.0', text: /^message refused: it has 2 From headers \(RFC 5322 allows one\)$/ },
  },
  {
    name: 'a bare LF in the message',
    send: (x) => x.sub('rcpt', (t) => t.data(`From: <${x.h.who.jeanne.address}>\nSubject: x\r\n\r\nx\r\n.\r\n`)),
    expect: { code: 550, enhanced: '5.6.0', text: /^message refused: it contains a bare LF at byte \d+; every line must end with CRLF \(SMTP smuggling protection\)$/ },
  },
  {
    name: 'a message over the size limit',
    send: (x) => x.sub('rcpt', (t) => t.data(`From: <${x.h.who.jeanne.address}>\r\n\r\n${('z'.repeat(998) + '\r\n').repeat(210)}.\r\n`)),
    expect: { code: 552, enhanced: '5.3.4', text: /^message too big: the limit is 200000 bytes$/ },
  },
  {
    name: 'DATA before any recipient',
    send: (x) => x.sub('mail', (t) => t.cmd('DATA')),
    expect: { code: 503, text: /^Error: need RCPT command$/ },
  },
  {
    name: 'on 465 too: sending as another box',
    send: (x) => x.sub('auth', (t) => t.cmd(`MAIL FROM:<${x.h.who.paul.address}>`), { implicit: true }),
    expect: { code: 553, enhanced: '5.7.1', text: /^person jeanne\.martin may not send as paul\.durand@mssante\.localhost: / },
  },
];
