// The webmail API (HTTPS/JSON for web pages and hospital software). The API decides
// nothing: it speaks IMAP and submission as the person, so a refusal comes back with the
// proxy's or the submission server's own sentence. These cases abuse the session, the
// parameters that end up in IMAP commands and MIME headers, and the send body.
import { csrfOf } from '../../../core/browser-session.js';
import type { Case } from '../harness.js';
import { https, httpOutcome } from '../http.js';
import { DOMAIN } from '../platform.js';
import type { WebmailCtx } from '../webmail.js';

const enc = encodeURIComponent;
const invalid = (text: RegExp) => ({ code: 400, enhanced: 'BAD_REQUEST', text }) as const;
/** 400 with the schema validator's sentence here, or branch admin's sentence for people. */
const NO_SESSION = { code: 401, enhanced: 'WEBMAIL_SESSION_INVALID', text: /^the session token is unknown, expired or closed: log in again \(POST \/api\/v1\/login\)$/ } as const;
const AUTH_FAILED = { code: 401, enhanced: 'AUTH_FAILED', text: /^authentication failed: unknown user name or wrong credential$/ } as const;
/** Failed logins come from here (the check that the API still serves logs in from 127.0.0.1). */
const STRANGER = '127.0.0.8';
const mine = (x: WebmailCtx) => `/bals/${enc(x.h.who.jeanne.address)}`;
const send = (x: WebmailCtx, body: Record<string, unknown>) => x.api('POST', `${mine(x)}/send`, { json: { to: [x.h.who.paul.address], subject: 'x', text: 'x', ...body } });

export const webmailCases: Array<Case<WebmailCtx>> = [
  // --- logging in ------------------------------------------------------------------------------------
  { name: 'a wrong password', send: (x) => x.login(x.h.who.intrus, 'not the password', STRANGER), expect: AUTH_FAILED },
  { name: 'an unknown login', send: (x) => x.login({ ...x.h.who.intrus, login: 'fantome' }, 'whatever', STRANGER), expect: AUTH_FAILED },
  {
    name: 'a session token used as a password (a token must not mint tokens)',
    send: (x) => x.login(x.h.who.jeanne, x.tokens.jeanne, STRANGER),
    expect: AUTH_FAILED,
  },
  { name: 'login with an extra property', send: (x) => x.api('POST', '/login', { as: 'none', json: { login: 'jeanne.martin', password: 'x', remember: true } }), expect: invalid(/^the body has an unknown field "remember"$/) },
  { name: 'login with a 5-digit one-time code', send: (x) => x.api('POST', '/login', { as: 'none', json: { login: 'jeanne.martin', password: 'x', otp: '12345' } }), expect: invalid(/otp must match pattern/) },
  {
    name: 'login with the password as a number is refused, not turned into a string',
    send: (x) => x.api('POST', '/login', { as: 'none', json: { login: 'intrus', password: 1234567890 }, from: STRANGER }),
    expect: invalid(/^the field password must be a string, not number 1234567890$/),
  },
  {
    name: 'eleven wrong passwords on one account: the API stops checking',
    send: async (x) => {
      const victim = x.h.victim(2);
      for (let i = 0; i < 10; i++) await x.login(victim, `wrong ${i}`, STRANGER);
      return x.login(victim, victim.password, STRANGER);
    },
    // WEBMAIL_LOGIN_THROTTLED here; LOGIN_THROTTLED, the one throttle of every login path, with branch auth.
    expect: { code: 429, enhanced: /^(WEBMAIL_)?LOGIN_THROTTLED$/, text: /^too many failed logins for this account; try again in \d+ min$/ },
  },
  // --- the session -----------------------------------------------------------------------------------
  { name: 'no token', send: (x) => x.api('GET', '/bals', { as: 'none' }), expect: NO_SESSION },
  { name: 'a made-up token', send: (x) => x.api('GET', '/bals', { as: 'none', token: 'mss_wt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }), expect: NO_SESSION },
  { name: 'an admin API token on the webmail', send: (x) => x.api('GET', '/bals', { as: 'admin' }), expect: NO_SESSION },
  { name: "a person's password as the bearer token", send: (x) => x.api('GET', '/bals', { as: 'none', token: x.h.who.jeanne.password.replace(/ /g, '') }), expect: NO_SESSION },
  {
    name: 'a token used after logout',
    send: async (x) => {
      const t = (await https(x.url, x.h.ca, 'POST', '/api/v1/login', { json: { login: x.h.who.paul.login, password: x.h.who.paul.password } })).json().token as string;
      await x.api('POST', '/logout', { token: t });
      return x.api('GET', '/bals', { token: t });
    },
    expect: NO_SESSION,
  },
  // --- the browser session: the token in its cookie, CSRF on what changes anything (webui/) ------------
  ...browserSessionCases(),
  // --- boxes that are not one's own ------------------------------------------------------------------
  { name: "a colleague's personal box", send: (x) => x.api('GET', `/bals/${enc(x.h.who.paul.address)}/folders`), expect: { code: 403, enhanced: 'WEBMAIL_BAL_REFUSED', text: /^person jeanne\.martin may not open the mailbox paul\.durand@mssante\.localhost: / } },
  { name: 'an organisational box one is not a member of', send: (x) => x.api('GET', `/bals/${enc(x.h.org)}/folders`), expect: { code: 403, enhanced: 'WEBMAIL_BAL_REFUSED', text: /^person jeanne\.martin may not open the mailbox secretariat\.cardio@mssante\.localhost: / } },
  { name: "an application's box", send: (x) => x.api('GET', `/bals/${enc(x.h.app)}/folders`), expect: { code: 403, enhanced: 'WEBMAIL_BAL_REFUSED', text: /may not open the mailbox labo-resultats@mssante\.localhost/ } },
  { name: 'a closed box', send: (x) => x.api('GET', `/bals/${enc(x.h.closedOrg)}/folders`), expect: { code: 403, enhanced: 'WEBMAIL_BAL_REFUSED', text: /ancien\.cabinet@mssante\.localhost/ } },
  { name: 'a box that does not exist', send: (x) => x.api('GET', `/bals/${enc(`nulle.part@${DOMAIN}`)}/folders`), expect: { code: 403, enhanced: 'WEBMAIL_BAL_REFUSED', text: /^there is no mailbox nulle\.part@mssante\.localhost at this operator$/ } },
  { name: "a colleague's message by UID", send: (x) => x.api('GET', `/bals/${enc(x.h.who.paul.address)}/messages/INBOX/1`), expect: { code: 403, enhanced: 'WEBMAIL_BAL_REFUSED', text: /may not open the mailbox paul\.durand@mssante\.localhost/ } },
  { name: "sending as a colleague's box", send: (x) => x.api('POST', `/bals/${enc(x.h.who.paul.address)}/send`, { json: { to: [x.h.who.jeanne.address], subject: 'x', text: 'x' } }), expect: { code: 403, enhanced: 'WEBMAIL_SEND_FORBIDDEN', text: /^the submission server refused to send: 553 5\.7\.1 person jeanne\.martin may not send as paul\.durand@mssante\.localhost: / } },
  // --- parameters that reach IMAP ----------------------------------------------------------------------
  { name: 'a box name with "*" (the proxy\'s box*person separator)', send: (x) => x.api('GET', `/bals/${enc(`${x.h.org}*secretaire`)}/folders`), expect: invalid(/bal must match pattern/) },
  { name: 'a box name with "%"', send: (x) => x.api('GET', `/bals/${enc(`a%b@${DOMAIN}`)}/folders`), expect: invalid(/bal must match pattern/) },
  { name: 'a box name without "@"', send: (x) => x.api('GET', '/bals/jeanne/folders'), expect: invalid(/bal must match pattern/) },
  { name: 'a folder name with the LIST wildcard "*"', send: (x) => x.api('GET', `${mine(x)}/folders/${enc('*')}/messages`), expect: invalid(/folder must match pattern/) },
  { name: 'a folder name with CRLF (command injection)', send: (x) => x.api('GET', `${mine(x)}/folders/${enc('INBOX\r\nA1 DELETE INBOX')}/messages`), expect: invalid(/folder must match pattern/) },
  { name: 'a folder that does not exist', send: (x) => x.api('GET', `${mine(x)}/folders/${enc('Nowhere')}/messages`), expect: { code: 404, enhanced: 'NOT_FOUND', text: /^folder Nowhere of jeanne\.martin@mssante\.localhost not found$/ } },
  { name: 'a folder path leaving the box (../)', send: (x) => x.api('GET', `${mine(x)}/folders/${enc('../paul.durand@mssante.localhost/INBOX')}/messages`), expect: { code: 404, enhanced: 'NOT_FOUND', text: /^folder \.\.\/paul\.durand@mssante\.localhost\/INBOX of jeanne\.martin@mssante\.localhost not found$/ } },
  { name: 'UID 0', send: (x) => x.api('GET', `${mine(x)}/messages/INBOX/0`), expect: invalid(/uid must be >= 1/) },
  { name: 'UID 2^32', send: (x) => x.api('GET', `${mine(x)}/messages/INBOX/4294967296`), expect: invalid(/uid must be <= 4294967295/) },
  { name: 'UID that is not a number', send: (x) => x.api('GET', `${mine(x)}/messages/INBOX/abc`), expect: invalid(/^the path parameter uid must be a number written in decimal digits, got "abc"$/) },
  { name: 'UID range syntax (1:*)', send: (x) => x.api('GET', `${mine(x)}/messages/INBOX/${enc('1:*')}`), expect: invalid(/^the path parameter uid must be a number written in decimal digits, got "1:\*"$/) },
  { name: 'a message that does not exist', send: (x) => x.api('GET', `${mine(x)}/messages/INBOX/999999`), expect: { code: 404, enhanced: 'NOT_FOUND', text: /^message 999999 in INBOX of jeanne\.martin@mssante\.localhost not found$/ } },
  { name: 'attachment index 10000', send: (x) => x.api('GET', `${mine(x)}/messages/INBOX/${x.uid}/attachments/10000`), expect: invalid(/index must be <= 9999/) },
  { name: 'page 0', send: (x) => x.api('GET', `${mine(x)}/folders/INBOX/messages?page=0`), expect: invalid(/page must be >= 1/) },
  { name: 'page size 201', send: (x) => x.api('GET', `${mine(x)}/folders/INBOX/messages?pageSize=201`), expect: invalid(/pageSize must be <= 200/) },
  { name: 'a sort key outside the list', send: (x) => x.api('GET', `${mine(x)}/folders/INBOX/messages?sort=${enc('date) UID SEARCH ALL')}`), expect: invalid(/^the query parameter sort must be one of "date", "from", "subject"$/) },
  { name: 'a search of 201 characters', send: (x) => x.api('GET', `${mine(x)}/folders/INBOX/messages?q=${'q'.repeat(201)}`), expect: invalid(/q must NOT have more than 200 characters/) },
  { name: 'an unknown query parameter', send: (x) => x.api('GET', `${mine(x)}/folders/INBOX/messages?debug=1`), expect: invalid(/^the query string has an unknown parameter "debug"$/) },
  { name: 'markSeen=maybe', send: (x) => x.api('GET', `${mine(x)}/messages/INBOX/${x.uid}?markSeen=maybe`), expect: invalid(/^the query parameter markSeen must be true or false, got "maybe"$/) },
  { name: 'flags with nothing to change', send: (x) => x.api('PATCH', `${mine(x)}/messages/INBOX/${x.uid}`, { json: {} }), expect: invalid(/must NOT have fewer than 1 properties/) },
  {
    name: 'a flag sent as the string "true" is refused',
    send: (x) => x.api('PATCH', `${mine(x)}/messages/INBOX/${x.uid}`, { json: { seen: 'true' } }),
    expect: invalid(/^the field seen must be true or false, not the string "true"$/),
  },
  { name: 'a flag that is not offered (\\Deleted)', send: (x) => x.api('PATCH', `${mine(x)}/messages/INBOX/${x.uid}`, { json: { deleted: true } }), expect: invalid(/^the body has an unknown field "deleted"$/) },
  { name: 'a move to a folder with "%"', send: (x) => x.api('POST', `${mine(x)}/messages/INBOX/${x.uid}/move`, { json: { to: 'Archive%' } }), expect: invalid(/to must match pattern/) },
  { name: 'a DMP hand-off with an unknown masking', send: (x) => x.api('POST', `${mine(x)}/messages/INBOX/${x.uid}/dmp`, { json: { masking: 'secret' } }), expect: invalid(/^the field masking must be one of "normal", "masque-ps", "invisible-patient", "invisible-representants-legaux"$/) },
  { name: 'a read receipt for a message that asks for none', send: (x) => x.api('POST', `${mine(x)}/messages/INBOX/${x.uid}/mdn`, { json: {} }), expect: { code: 409, enhanced: 'WEBMAIL_NO_MDN_REQUESTED', text: /^message \d+ asks for no read receipt \(it has no usable Disposition-Notification-To header\)$/ } },
  // --- sending ------------------------------------------------------------------------------------------
  {
    name: 'to as a string instead of a list is refused, not wrapped',
    send: (x) => send(x, { to: x.h.who.paul.address }),
    expect: invalid(/^the field to must be an array, not the string "paul\.durand@mssante\.localhost"$/),
  },
  { name: 'no recipient', send: (x) => send(x, { to: [] }), expect: invalid(/to must NOT have fewer than 1 items/) },
  { name: '101 recipients', send: (x) => send(x, { to: Array.from({ length: 101 }, (_, i) => `r${i}@${DOMAIN}`) }), expect: invalid(/to must NOT have more than 100 items/) },
  { name: 'a recipient with a display name and brackets', send: (x) => send(x, { to: [`Paul <${x.h.who.paul.address}>`] }), expect: invalid(/must match pattern/) },
  { name: 'a recipient list smuggled in one address (a,b)', send: (x) => send(x, { to: [`${x.h.who.paul.address},patient@gmail.com`] }), expect: invalid(/must match pattern/) },
  { name: 'a recipient outside the trust space', send: (x) => send(x, { to: ['patient@gmail.com'] }), expect: { code: 403, enhanced: 'WEBMAIL_SEND_FORBIDDEN', text: /^the submission server refused to send: 550 5\.7\.1 recipient domain gmail\.com is not in the MSSante trust space/ } },
  {
    name: 'a Bcc outside the trust space beside a good recipient: sent to the good one, the other refused by name',
    send: async (x) => {
      const r = await https(x.url, x.h.ca, 'POST', `/api/v1${mine(x)}/send`, { token: x.tokens.jeanne, json: { to: [x.h.who.paul.address], bcc: ['cache@gmail.com'], subject: 'x', text: 'x' } });
      if (r.status !== 200) return httpOutcome(r);
      const b = r.json() as { messageId: string; accepted: string[]; rejected: Array<{ address: string; reply: string }> };
      x.h.acked(x.h.who.paul.address, b.messageId);
      return { code: '200', text: `accepted ${b.accepted.join(',')}; rejected ${b.rejected.map((j) => `${j.address}: ${j.reply}`).join(',')}` };
    },
    expect: { code: 200, text: /^accepted paul\.durand@mssante\.localhost; rejected cache@gmail\.com: 550 5\.7\.1 recipient domain gmail\.com is not in the MSSante trust space \(it is not on the liste blanche\)$/ },
  },
  { name: 'a subject with CRLF (header injection)', send: (x) => send(x, { subject: 'Bonjour\r\nBcc: patient@gmail.com' }), expect: invalid(/subject must match pattern/) },
  { name: 'a subject of 999 characters', send: (x) => send(x, { subject: 's'.repeat(999) }), expect: invalid(/subject must NOT have more than 998 characters/) },
  { name: 'In-Reply-To with spaces', send: (x) => send(x, { inReplyTo: '<a b@c>' }), expect: invalid(/inReplyTo must match pattern/) },
  { name: 'X-MSS-NIL with non-ASCII', send: (x) => send(x, { nil: 'Logiciel médical' }), expect: invalid(/nil must match pattern/) },
  { name: 'an attachment whose content is not base64', send: (x) => send(x, { attachments: [{ filename: 'a.pdf', content: '<script>alert(1)</script>' }] }), expect: invalid(/content must match pattern/) },
  { name: 'an attachment content type with CRLF', send: (x) => send(x, { attachments: [{ filename: 'a.pdf', contentType: 'application/pdf\r\nX-Injected: 1', content: 'AAAA' }] }), expect: invalid(/contentType must match pattern/) },
  { name: 'an attachment file name with CRLF', send: (x) => send(x, { attachments: [{ filename: 'a.pdf\r\nContent-Type: text/html', content: 'AAAA' }] }), expect: invalid(/filename must match pattern/) },
  { name: 'an attachment with an unknown property', send: (x) => send(x, { attachments: [{ filename: 'a.pdf', content: 'AAAA', path: '/etc/passwd' }] }), expect: invalid(/^the field attachments\.0 has an unknown field "path"$/) },
  { name: 'a request body over the upload limit (1.4 × 300 KB + 1 MB)', send: (x) => send(x, { text: 't'.repeat(1_600_000) }), expect: { code: 413, enhanced: 'HTTP_BODY_TOO_LARGE', text: /^the request body is larger than the 1468576 bytes this operation accepts$/ } },
  { name: 'a message over the upload limit (300 KB) in a body the listener takes', send: (x) => send(x, { text: 't'.repeat(400_000) }), expect: { code: 413, enhanced: 'MESSAGE_TOO_BIG', text: /^message too big: the limit is 300000 bytes$/ } },
  { name: 'a message under the upload limit but over what submission takes (200 KB)', send: (x) => send(x, { text: 't'.repeat(250_000) }), expect: { code: 422, enhanced: 'WEBMAIL_SEND_REFUSED', text: /^the submission server refused the message: 552 5\.3\.4 message too big: the limit is 200000 bytes$/ } },
  { name: 'malformed JSON', send: (x) => x.api('POST', `${mine(x)}/send`, { body: '{"to": ["a@b"' }), expect: invalid(/^Body is not valid JSON but content-type is set to 'application\/json'$/) },
  {
    name: 'multipart/form-data without a boundary is a 4xx, never a 500',
    send: (x) => x.api('POST', `${mine(x)}/send`, { body: 'garbage', type: 'multipart/form-data' }),
    expect: invalid(/^the multipart\/form-data body cannot be read: Multipart: Boundary not found$/),
  },
  {
    name: 'multipart/form-data whose parts never end is a 4xx, never a 500',
    send: (x) => x.api('POST', `${mine(x)}/send`, { body: '--XX\r\nContent-Disposition: form-data; name="subject"\r\n\r\nhello', type: 'multipart/form-data; boundary=XX' }),
    expect: invalid(/^the multipart\/form-data body cannot be read: Unexpected end of multipart data$/),
  },
  // --- the annuaire ---------------------------------------------------------------------------------------
  { name: 'an annuaire search of one character', send: (x) => x.api('GET', '/annuaire?q=a'), expect: invalid(/q must NOT have fewer than 2 characters/) },
  {
    name: 'an LDAP filter injected in the annuaire search lists nothing',
    send: async (x) => {
      const r = await https(x.url, x.h.ca, 'GET', `/api/v1/annuaire?q=${enc('*)(objectClass=*')}`, { token: x.tokens.jeanne });
      return r.status === 200 ? { code: '200', text: `${(r.json() as { results: unknown[] }).results.length} results` } : httpOutcome(r);
    },
    expect: { code: 200, text: /^0 results$/ },
  },
];

/** A cookie-borne session (what the web pages use) forging or half-forging a change: each refused, journalled, the box untouched. */
function browserSessionCases(): Array<Case<WebmailCtx>> {
  const forged = (text: RegExp) => ({ code: 403, enhanced: 'WEBMAIL_CSRF_INVALID', text }) as const;
  const cookie = (token: string) => `__Host-mss-webmail-session=${token}`;
  const flag = (x: WebmailCtx, headers: Record<string, string>) => x.api('PATCH', `${mine(x)}/messages/INBOX/${x.uid}`, { as: 'none', json: { flagged: true }, headers });
  // From an address of its own: the corpus's other failed logins (STRANGER) are counted per address too.
  const webLogin = (x: WebmailCtx, headers: Record<string, string>) => x.api('POST', '/web/login', { as: 'none', json: { login: x.h.who.intrus.login, password: 'not the password' }, headers, from: '127.0.0.9' });
  return [
    { name: 'a cookie session changing a message without the CSRF header', send: (x) => flag(x, { cookie: cookie(x.tokens.jeanne) }), expect: forged(/the x-csrf-token header is missing; reload the page/) },
    { name: 'a cookie session with a made-up CSRF header', send: (x) => flag(x, { cookie: cookie(x.tokens.jeanne), 'x-csrf-token': 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }), expect: forged(/the x-csrf-token header does not match the session/) },
    { name: "a cookie session with another session's CSRF value", send: (x) => flag(x, { cookie: cookie(x.tokens.jeanne), 'x-csrf-token': csrfOf(x.tokens.intrus) }), expect: forged(/does not match the session/) },
    { name: 'a cookie session with the right CSRF value from another site', send: (x) => flag(x, { cookie: cookie(x.tokens.jeanne), 'x-csrf-token': csrfOf(x.tokens.jeanne), origin: 'https://evil.example' }), expect: forged(/it comes from another site \(https:\/\/evil\.example\)/) },
    { name: 'a cookie session from a sandboxed frame (Origin: null)', send: (x) => flag(x, { cookie: cookie(x.tokens.jeanne), 'x-csrf-token': csrfOf(x.tokens.jeanne), origin: 'null' }), expect: forged(/it comes from another site \(null\)/) },
    { name: 'a made-up cookie token with its own CSRF value', send: (x) => flag(x, { cookie: cookie('mss_wt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'), 'x-csrf-token': csrfOf('mss_wt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA') }), expect: NO_SESSION },
    { name: 'the web login posted by another site', send: (x) => webLogin(x, { origin: 'https://evil.example' }), expect: forged(/it comes from another site/) },
    { name: 'the web login with a wrong password', send: (x) => webLogin(x, {}), expect: AUTH_FAILED },
  ];
}
