// MX (port 25): other operators deliver here over mutual TLS. Exact bytes on the real
// listener; each case names the refusal the peer must get. Cases that wait for branch `mx`
// carry the behaviour issue 12 asks for (limits, content rules, ASCII banner).
import type { Case } from '../harness.js';
import { DOMAIN, PEER, PEER2 } from '../platform.js';
import { withSlapdStopped } from '../../helpers/slapd-control.js';
import { failedHandshake, smtpOutcome, type MxOptions, type SmtpCtx } from '../smtp.js';

const A = DOMAIN;
const head = (from: string, extra = '') => `From: <${from}>\r\nTo: <jeanne.martin@${A}>\r\nSubject: test\r\nDate: Mon, 2 Mar 2026 10:00:00 +0100\r\nMessage-ID: <${Math.random().toString(36).slice(2)}@${PEER}>\r\n${extra}`;
const peerFrom = `labo@${PEER}`;
/** A well-formed message but for what `extra` / `body` change. */
const data = (extra = '', body = 'Bonjour.\r\n', from = peerFrom) => `${head(from, extra)}\r\n${body}.\r\n`;
/** Cases that make a peer hit a limit come as the second peer, from another address: the first keeps being served. */
const limited = (x: SmtpCtx): MxOptions => ({ as: x.h.peer2, sender: `labo@${PEER2}`, from: '127.0.0.2' });
const re = (s: string) => new RegExp(`^${s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);

export const mxCases: Array<Case<SmtpCtx>> = [
  // --- before TLS: nothing but EHLO, STARTTLS, NOOP, RSET, QUIT is of use -------------------
  {
    name: 'MAIL before STARTTLS',
    send: (x) => x.mx('ehlo', (t) => t.cmd(`MAIL FROM:<${peerFrom}>`)),
    expect: { code: 530, enhanced: '5.7.0', text: /^Must issue a STARTTLS command first: the MSSante trust space accepts mail over TLS only$/ },
  },
  {
    name: 'MAIL FROM pipelined with EHLO before STARTTLS',
    send: (x) =>
      x.mx('connected', async (t) => {
        const replies = await t.cmd(`EHLO peer.test\r\nMAIL FROM:<${peerFrom}>`);
        expect250(replies);
        return t.reply();
      }),
    expect: { code: 530, enhanced: '5.7.0', text: /^Must issue a STARTTLS command first/ },
  },
  {
    name: 'RCPT before STARTTLS and before MAIL',
    send: (x) => x.mx('ehlo', (t) => t.cmd(`RCPT TO:<jeanne.martin@${A}>`)),
    expect: { code: 503, text: /^Error: need MAIL command$/ },
  },
  {
    name: 'DATA before STARTTLS',
    send: (x) => x.mx('ehlo', (t) => t.cmd('DATA')),
    expect: { code: 503, text: /^Error: need RCPT command$/ },
  },
  {
    name: 'MAIL before EHLO',
    send: (x) => x.mx('connected', (t) => t.cmd(`MAIL FROM:<${peerFrom}>`)),
    expect: { code: 503, text: /^Error: send HELO\/EHLO first$/ },
  },
  {
    name: 'AUTH on the MX (no logins there: peers authenticate by certificate)',
    send: (x) => x.mx('tls', (t) => t.cmd('AUTH PLAIN AGpvaG4Ac2VjcmV0')),
    expect: { code: 500, text: /^Error: command not recognized$/ },
  },
  {
    name: 'an unknown verb',
    send: (x) => x.mx('ehlo', (t) => t.cmd('XYZZY')),
    expect: { code: 500, text: /^Error: command not recognized$/ },
  },
  {
    name: 'ten unknown verbs in a row close the session',
    send: (x) =>
      x.mx('ehlo', async (t) => {
        for (let i = 0; i < 9; i++) await t.cmd(`BOGUS${i}`);
        return t.cmd('BOGUS9');
      }),
    expect: { code: 421, text: /^Error: too many unrecognized commands$/ },
  },
  {
    name: 'BDAT (CHUNKING is not offered)',
    send: (x) => x.mx('rcpt', (t) => t.cmd('BDAT 10 LAST')),
    expect: { code: 500, text: /^Error: command not recognized$/ },
  },
  {
    name: 'XCLIENT trying to spoof the client address',
    send: (x) => x.mx('ehlo', (t) => t.cmd('XCLIENT ADDR=10.0.0.1 NAME=mx.hopital.fr')),
    expect: { code: 550, text: /^Error: Not allowed$/ },
  },
  {
    name: 'XFORWARD trying to spoof the origin',
    send: (x) => x.mx('ehlo', (t) => t.cmd('XFORWARD ADDR=10.0.0.1')),
    expect: { code: 550, text: /^Error: Not allowed$/ },
  },
  {
    name: 'an HTTP request sent to the MX (cross-protocol from a web page)',
    send: (x) => x.mx('connected', (t) => t.cmd('POST / HTTP/1.1')),
    expect: { code: 421, text: /^HTTP requests not allowed$/ },
  },
  {
    name: 'talking before the greeting (spammer pipelining)',
    send: (x) => x.raw(x.h.ports.mx, 'EHLO early.test\r\n', /^421 .*\r\n/m).then((r) => smtpOutcome(/^421 .*$/m.exec(r.replace(/\r/g, ''))?.[0] ?? r)),
    expect: { code: 421, text: /You talk too soon$/ },
  },
  {
    name: 'EHLO without a name',
    send: (x) => x.mx('connected', (t) => t.cmd('EHLO')),
    expect: { code: 501, text: /^Error: syntax: EHLO hostname$/ },
  },
  {
    name: 'EHLO with a name of control characters',
    send: (x) => x.mx('connected', (t) => t.cmd('EHLO bad\x01\x02name')),
    expect: { code: 501, text: /^Error: Bad hostname syntax$/ },
  },
  {
    name: 'a 20 KB command line',
    send: (x) => x.mx('ehlo', (t) => t.cmd(`NOOP ${'x'.repeat(20_000)}`)),
    expect: { code: 421, text: /^Error: Command line too long$/ },
  },
  {
    name: 'STARTTLS with an argument',
    send: (x) => x.mx('ehlo', (t) => t.cmd('STARTTLS now')),
    expect: { code: 501, text: /^Error: syntax: STARTTLS$/ },
  },
  {
    name: 'STARTTLS twice',
    send: (x) => x.mx('tls', (t) => t.cmd('STARTTLS')),
    expect: { code: 503, text: /^Error: TLS already active$/ },
  },
  {
    name: 'a command injected after STARTTLS in the same packet is dropped, not run under TLS (CVE-2011-0411)',
    send: (x) =>
      x.mx('ehlo', async (t) => {
        // The injected RSET would answer 250 first under TLS if it were kept.
        // Were the injected RSET run under TLS, its 250 would answer the EHLO sent after the
        // handshake, and every reply after it would be one behind.
        await t.starttls(x.h.tls(x.h.leaf('peer-operator')), 'peer.test', 'STARTTLS\r\nRSET');
        return t.cmd('MAIL FROM:<nobody@example.org>');
      }),
    expect: { code: 550, enhanced: '5.7.1', text: /^sender domain example\.org is not in the MSSante trust space/ },
  },
  // --- TLS itself ------------------------------------------------------------------------------
  {
    name: 'STARTTLS offering only TLS 1.1',
    send: (x) => x.mx('ehlo', (t) => failedHandshake(t, x.h.tls(x.h.leaf('peer-operator'), { minVersion: 'TLSv1', maxVersion: 'TLSv1.1' }))),
    expect: { code: 'tls', text: /protocol version|unsupported protocol|no protocols available/i },
  },
  {
    name: 'STARTTLS offering only a suite without forward secrecy (AES256-SHA)',
    send: (x) => x.mx('ehlo', (t) => failedHandshake(t, x.h.tls(x.h.leaf('peer-operator'), { maxVersion: 'TLSv1.2', ciphers: 'AES256-SHA' }))),
    expect: { code: 'tls', text: /handshake failure|no shared cipher/i },
  },
  // --- the peer's certificate -----------------------------------------------------------------
  {
    name: 'no client certificate',
    send: (x) => x.mx('tls', (t) => t.cmd(`MAIL FROM:<${peerFrom}>`), { as: null }),
    expect: { code: 550, enhanced: '5.7.1', text: /^a client certificate is required to deliver into the MSSante trust space: present your operator certificate$/ },
  },
  {
    name: 'an expired certificate',
    send: (x) => x.mx('tls', (t) => t.cmd(`MAIL FROM:<${peerFrom}>`), { as: x.h.leaf('expired') }),
    expect: { code: 550, enhanced: '5.7.5', text: /^your client certificate \(.*CN=expired\.mssante\.localhost.*\) has expired$/ },
  },
  {
    name: 'a revoked certificate',
    send: (x) => x.mx('tls', (t) => t.cmd(`MAIL FROM:<${peerFrom}>`), { as: x.h.leaf('revoked') }),
    expect: { code: 550, enhanced: '5.7.5', text: /^your client certificate \(.*CN=revoked\.mssante\.localhost.*\) is revoked$/ },
  },
  {
    name: 'a certificate from a root outside the trust space',
    send: (x) => x.mx('tls', (t) => t.cmd(`MAIL FROM:<${peerFrom}>`), { as: x.h.leaf('foreign') }),
    expect: { code: 550, enhanced: '5.7.5', text: /^your client certificate \(.*CN=foreign\.mssante\.localhost.*\) is not issued by a certification authority of the MSSante trust space \(.+\)$/ },
  },
  {
    name: 'a trusted certificate for a domain not on the liste blanche',
    send: (x) => x.mx('tls', (t) => t.cmd(`MAIL FROM:<${peerFrom}>`), { as: x.h.rogue }),
    expect: { code: 550, enhanced: '5.7.1', text: re('peer domain rogue.example is not in the MSSante trust space (it is not on the liste blanche)') },
  },
  {
    name: "a professional's personal certificate presented as an operator's",
    send: (x) => x.mx('tls', (t) => t.cmd(`MAIL FROM:<${peerFrom}>`), { as: x.h.leaf('personal') }),
    expect: { code: 550, enhanced: '5.7.1', text: /^peer domain .+ is not in the MSSante trust space \(it is not on the liste blanche\)$/ },
  },
  {
    name: "an application's certificate presented as an operator's",
    send: (x) => x.mx('tls', (t) => t.cmd(`MAIL FROM:<${peerFrom}>`), { as: x.h.leaf('application') }),
    expect: { code: 550, enhanced: '5.7.1', text: /^peer domain .+ is not in the MSSante trust space \(it is not on the liste blanche\)$/ },
  },
  {
    name: 'a peer that sends its leaf certificate only (no intermediate) is accepted',
    send: (x) => x.mx('tls', (t) => t.cmd(`MAIL FROM:<${peerFrom}>`), { as: x.h.leaf('peer-operator', false) }),
    expect: { code: 250, text: /^Accepted$/ },
  },
  // --- MAIL FROM -------------------------------------------------------------------------------
  {
    name: 'a sender domain not on the liste blanche',
    send: (x) => x.mx('tls', (t) => t.cmd('MAIL FROM:<someone@example.org>')),
    expect: { code: 550, enhanced: '5.7.1', text: re('sender domain example.org is not in the MSSante trust space (it is not on the liste blanche)') },
  },
  {
    name: 'a sender domain that only ends like a whitelisted one',
    send: (x) => x.mx('tls', (t) => t.cmd(`MAIL FROM:<labo@evil${PEER}>`)),
    expect: { code: 550, enhanced: '5.7.1', text: re(`sender domain evil${PEER} is not in the MSSante trust space (it is not on the liste blanche)`) },
  },
  {
    name: 'a sender in a subdomain of a whitelisted domain',
    send: (x) => x.mx('tls', (t) => t.cmd(`MAIL FROM:<labo@sub.${PEER}>`)),
    expect: { code: 550, enhanced: '5.7.1', text: re(`sender domain sub.${PEER} is not in the MSSante trust space (it is not on the liste blanche)`) },
  },
  {
    name: 'a sender domain in punycode that is not on the liste blanche',
    send: (x) => x.mx('tls', (t) => t.cmd('MAIL FROM:<labo@xn--hpital-ixa.example>')),
    expect: { code: 550, enhanced: '5.7.1', text: /^sender domain (xn--hpital-ixa|hopital)\.example is not in the MSSante trust space \(it is not on the liste blanche\)$/ },
  },
  {
    name: 'a sender domain that looks like the peer but has a Cyrillic letter (homograph, in punycode)',
    send: (x) => x.mx('tls', (t) => t.cmd('MAIL FROM:<labo@peer.xn--mssnte-5nf.localhost>')),
    expect: { code: 550, enhanced: '5.7.1', text: /^sender domain peer\.(xn--mssnte-5nf|mss\?nte)\.localhost is not in the MSSante trust space/ },
  },
  {
    name: 'a sender domain that is not valid punycode',
    send: (x) => x.mx('tls', (t) => t.cmd('MAIL FROM:<labo@xn--zz-.example>')),
    expect: { code: 501, text: /^Error: Bad sender address syntax$/ },
  },
  {
    name: 'a second MAIL in the same transaction',
    send: (x) => x.mx('mail', (t) => t.cmd(`MAIL FROM:<${peerFrom}>`)),
    expect: { code: 503, text: /^Error: nested MAIL command$/ },
  },
  {
    name: 'MAIL FROM without angle brackets',
    send: (x) => x.mx('tls', (t) => t.cmd(`MAIL FROM:${peerFrom}`)),
    expect: { code: 501, text: /^Error: Bad sender address syntax$/ },
  },
  {
    name: 'MAIL FROM with two @',
    send: (x) => x.mx('tls', (t) => t.cmd(`MAIL FROM:<a@b@${PEER}>`)),
    expect: { code: 501, text: /^Error: Bad sender address syntax$/ },
  },
  {
    name: 'MAIL FROM with a CRLF smuggled through xtext (ENVID=+0D+0A)',
    send: (x) => x.mx('tls', (t) => t.cmd(`MAIL FROM:<${peerFrom}> ENVID=ab+0D+0ARCPT`)),
    expect: { code: 501, text: /^Error: Bad sender address syntax$/ },
  },
  {
    name: 'MAIL FROM with a non-numeric SIZE',
    send: (x) => x.mx('tls', (t) => t.cmd(`MAIL FROM:<${peerFrom}> SIZE=lots`)),
    expect: { code: 501, text: /^Error: Bad message size syntax$/ },
  },
  {
    name: 'MAIL FROM announcing a SIZE over the limit',
    send: (x) => x.mx('tls', (t) => t.cmd(`MAIL FROM:<${peerFrom}> SIZE=999999999`)),
    expect: { code: 552, enhanced: '5.3.4', text: /^message too big: the limit is 200000 bytes$/ },
  },
  {
    name: 'MAIL FROM with an unknown BODY type',
    send: (x) => x.mx('tls', (t) => t.cmd(`MAIL FROM:<${peerFrom}> BODY=BINARYMIME`)),
    expect: { code: 501, text: /^Invalid BODY parameter value\. Must be 7BIT or 8BITMIME$/ },
  },
  {
    name: 'MAIL FROM with a duplicated parameter',
    send: (x) => x.mx('tls', (t) => t.cmd(`MAIL FROM:<${peerFrom}> RET=FULL RET=HDRS`)),
    expect: { code: 501, text: /^Error: duplicate RET parameter$/ },
  },
  // --- RCPT TO ---------------------------------------------------------------------------------
  {
    name: 'an unknown local recipient',
    send: (x) => x.mx('mail', (t) => t.cmd(`RCPT TO:<personne.inconnue@${A}>`)),
    expect: { code: 550, enhanced: '5.1.1', text: re(`there is no mailbox personne.inconnue@${A} at this operator`) },
  },
  {
    name: 'a closed organisational mailbox',
    send: (x) => x.mx('mail', (t) => t.cmd(`RCPT TO:<${x.h.closedOrg}>`)),
    expect: { code: 550, enhanced: '5.1.1', text: /^the mailbox ancien\.cabinet@mssante\.localhost is closed$/ },
  },
  {
    name: 'a closed personal mailbox, in capitals',
    send: (x) => x.mx('mail', (t) => t.cmd(`RCPT TO:<${x.h.closedPer.toUpperCase()}>`)),
    expect: { code: 550, enhanced: '5.1.1', text: /^the mailbox paul\.ancien@mssante\.localhost is closed$/ },
  },
  {
    name: 'relaying to another domain',
    send: (x) => x.mx('mail', (t) => t.cmd('RCPT TO:<patient@gmail.com>')),
    expect: { code: 550, enhanced: '5.7.1', text: re('this server does not relay: patient@gmail.com is not a mailbox of this operator') },
  },
  {
    name: 'relaying back to the sending operator',
    send: (x) => x.mx('mail', (t) => t.cmd(`RCPT TO:<dr.durand@${PEER}>`)),
    expect: { code: 550, enhanced: '5.7.1', text: re(`this server does not relay: dr.durand@${PEER} is not a mailbox of this operator`) },
  },
  {
    name: 'relaying through a source route',
    send: (x) => x.mx('mail', (t) => t.cmd(`RCPT TO:<@${A}:patient@gmail.com>`)),
    expect: { code: 550, enhanced: '5.7.1', text: /^this server does not relay: patient@gmail\.com/ },
  },
  {
    name: 'relaying with the percent hack',
    send: (x) => x.mx('mail', (t) => t.cmd(`RCPT TO:<patient%gmail.com@${A}>`)),
    expect: { code: 550, enhanced: '5.1.1', text: re(`there is no mailbox patient%gmail.com@${A} at this operator`) },
  },
  {
    name: 'a quoted local part with a space',
    send: (x) => x.mx('mail', (t) => t.cmd(`RCPT TO:<"jeanne martin"@${A}>`)),
    expect: { code: 501, text: /^Error: Bad recipient address syntax$/ },
  },
  {
    name: 'a recipient with a trailing dot in the local part',
    send: (x) => x.mx('mail', (t) => t.cmd(`RCPT TO:<jeanne.@${A}>`)),
    expect: { code: 501, text: /^Error: Bad recipient address syntax$/ },
  },
  {
    name: 'an LDAP filter in the recipient',
    send: (x) => x.mx('mail', (t) => t.cmd(`RCPT TO:<*)(mail=*@${A}>`)),
    expect: { code: 550, enhanced: '5.1.1', text: re(`there is no mailbox *)(mail=*@${A} at this operator`) },
  },
  {
    name: 'a wildcard recipient',
    send: (x) => x.mx('mail', (t) => t.cmd(`RCPT TO:<*@${A}>`)),
    expect: { code: 550, enhanced: '5.1.1', text: re(`there is no mailbox *@${A} at this operator`) },
  },
  {
    name: 'a recipient over the 256-octet path limit',
    send: (x) => x.mx('mail', (t) => t.cmd(`RCPT TO:<${'a'.repeat(250)}@${A}>`)),
    expect: { code: 501, text: /^Error: Bad recipient address syntax$/ },
  },
  {
    name: 'the routing branch of the directory is not reachable through RCPT (a mailbox under ou=routage only)',
    send: (x) => x.mx('mail', (t) => t.cmd(`RCPT TO:<ou=routage@${A}>`)),
    expect: { code: 550, enhanced: '5.1.1', text: re(`there is no mailbox ou=routage@${A} at this operator`) },
  },
  {
    name: 'an invalid NOTIFY parameter',
    send: (x) => x.mx('mail', (t) => t.cmd(`RCPT TO:<jeanne.martin@${A}> NOTIFY=ALWAYS`)),
    expect: { code: 501, text: /^Error: NOTIFY parameter must be NEVER, SUCCESS, FAILURE, or DELAY$/ },
  },
  {
    name: 'NOTIFY=NEVER combined with another value',
    send: (x) => x.mx('mail', (t) => t.cmd(`RCPT TO:<jeanne.martin@${A}> NOTIFY=NEVER,FAILURE`)),
    expect: { code: 501, text: /^Error: NOTIFY=NEVER cannot be combined with other values$/ },
  },
  {
    name: 'the 101st recipient of one transaction',
    send: (x) =>
      x.mx(
        'mail',
        async (t) => {
          // 101 distinct mailboxes that exist: every RCPT is one the server would accept.
          for (const box of x.h.lists.slice(0, 100)) {
            const r = await t.cmd(`RCPT TO:<${box}>`);
            if (!r.startsWith('250')) return r;
          }
          return t.cmd(`RCPT TO:<${x.h.lists[100]}>`);
        },
        limited(x),
      ),
    expect: { code: 452, enhanced: '4.5.3', text: /^too many recipients: at most 100 per message; send the others in another transaction$/ },
  },
  {
    name: 'a session that keeps sending unknown recipients is cut (address harvesting)',
    send: (x) =>
      x.mx(
        'mail',
        async (t) => {
          for (let i = 0; i < 200; i++) {
            const r = await t.cmd(`RCPT TO:<harvest${i}@${A}>`);
            if (!r.startsWith('550')) return r;
          }
          return '550 5.1.1 every one of 200 unknown recipients was answered and the session stayed open';
        },
        limited(x),
      ),
    expect: { code: 421, enhanced: '4.7.0', text: /^too many errors on this connection \(20\); closing it$/ },
  },
  {
    name: 'a peer probing unknown recipients over many fresh sessions is stopped (harvesting rate)',
    send: async (x) => {
      // Five per session, below any sensible per-session error limit: only a per-peer rate stops this.
      for (let s = 0; s < 60; s++) {
        const o = await x.mx(
          'mail',
          async (t) => {
            let r = '';
            for (let i = 0; i < 5; i++) if (!(r = await t.cmd(`RCPT TO:<probe${s}.${i}@${A}>`)).startsWith('550')) break;
            return r;
          },
          limited(x),
        );
        if (o.code !== '550') return o;
      }
      return { code: '550', text: 'all 300 unknown recipients over 60 sessions were answered 550 5.1.1 one by one' };
    },
    expect: { code: 450, enhanced: '4.7.1', text: /^too many unknown recipients from operator peer2\.mssante\.localhost \(at most 100 within 1 h\); recipients are refused for now, try again later$/ },
  },
  // --- DATA ------------------------------------------------------------------------------------
  {
    name: 'DATA without a recipient',
    send: (x) => x.mx('mail', (t) => t.cmd('DATA')),
    expect: { code: 503, text: /^Error: need RCPT command$/ },
  },
  {
    name: 'DATA after RSET',
    send: (x) =>
      x.mx('rcpt', async (t) => {
        await t.cmd('RSET');
        return t.cmd('DATA');
      }),
    expect: { code: 503, text: /^Error: need RCPT command$/ },
  },
  {
    name: 'a bare LF ending a header line',
    send: (x) => x.mx('rcpt', (t) => t.data(`Subject: smuggle\nFrom: <${peerFrom}>\r\n\r\nx\r\n.\r\n`)),
    expect: { code: 550, enhanced: '5.6.0', text: /^message refused: it contains a bare LF at byte 16; every line must end with CRLF \(SMTP smuggling protection\)$/ },
  },
  {
    name: 'SMTP smuggling: <LF>.<LF> then a second MAIL FROM inside the data',
    send: (x) => x.mx('rcpt', (t) => t.data(`${head(peerFrom)}\r\nline one\n.\nMAIL FROM:<x@${PEER}>\r\nRCPT TO:<paul.durand@${A}>\r\nDATA\r\nforged\r\n.\r\n`)),
    expect: { code: 550, enhanced: '5.6.0', text: /^message refused: it contains a bare LF at byte \d+; every line must end with CRLF/ },
  },
  {
    name: 'SMTP smuggling: <CR><LF>.<LF>',
    send: (x) => x.mx('rcpt', (t) => t.data(`${head(peerFrom)}\r\nline one\r\n.\nMAIL FROM:<x@${PEER}>\r\n.\r\n`)),
    expect: { code: 550, enhanced: '5.6.0', text: /^message refused: it contains a bare LF at byte \d+/ },
  },
  {
    name: 'a bare CR in the body',
    send: (x) => x.mx('rcpt', (t) => t.data(`${head(peerFrom)}\r\nline\rone\r\n.\r\n`)),
    expect: { code: 550, enhanced: '5.6.0', text: /^message refused: it contains a bare CR at byte \d+; every line must end with CRLF/ },
  },
  {
    name: 'SMTP smuggling: <CR>.<CR>',
    send: (x) => x.mx('rcpt', (t) => t.data(`${head(peerFrom)}\r\nline one\r.\rMAIL FROM:<x@${PEER}>\r\n.\r\n`)),
    expect: { code: 550, enhanced: '5.6.0', text: /^message refused: it contains a bare CR at byte \d+/ },
  },
  {
    name: 'a message over the size limit',
    send: (x) => x.mx('rcpt', (t) => t.data(`${head(peerFrom)}\r\n${('x'.repeat(998) + '\r\n').repeat(250)}.\r\n`)),
    expect: { code: 552, enhanced: '5.3.4', text: /^message too big: the limit is 200000 bytes$/ },
  },
  {
    name: 'a message just under the size limit is taken and delivered whole (its trace headers do not push it over in the store)',
    send: async (x) => {
      const id = `${Math.random().toString(36).slice(2)}.edge@${PEER}`;
      const headers = `From: <${peerFrom}>\r\nTo: <jeanne.martin@${A}>\r\nSubject: edge\r\nDate: Mon, 2 Mar 2026 10:00:00 +0100\r\nMessage-ID: <${id}>\r\n\r\n`;
      // 200,000 bytes of DATA exactly (the limit), dot-terminator excluded.
      const body = `${headers}${('y'.repeat(998) + '\r\n').repeat(199)}`;
      const o = await x.mx('rcpt', (t) => t.data(`${body}${'z'.repeat(200_000 - body.length - 2)}\r\n.\r\n`));
      if (o.code === '250') x.h.acked(x.h.who.jeanne.address, id);
      return o;
    },
    expect: { code: 250, enhanced: '2.0.0', text: /^message accepted, queued as [0-9A-F]{16}$/ },
  },
  {
    name: 'a message with one 300 KB line (over the size limit, no CRLF at all)',
    send: (x) => x.mx('rcpt', (t) => t.data(`${head(peerFrom)}\r\n${'y'.repeat(300_000)}\r\n.\r\n`)),
    expect: { code: 552, enhanced: '5.3.4', text: /^message too big: the limit is 200000 bytes$/ },
  },
  {
    name: 'a NUL byte in the body',
    send: (x) => x.mx('rcpt', (t) => t.data(data('', 'before\0after\r\n'))),
    expect: { code: 550, enhanced: '5.6.0', text: /^message refused: it contains a NUL byte at byte \d+$/ },
  },
  {
    name: 'a NUL byte in a header',
    send: (x) => x.mx('rcpt', (t) => t.data(data('X-Note: a\0b\r\n'))),
    expect: { code: 550, enhanced: '5.6.0', text: /^message refused: it contains a NUL byte at byte \d+$/ },
  },
  {
    name: 'a message without a From header',
    send: (x) => x.mx('rcpt', (t) => t.data(`To: <jeanne.martin@${A}>\r\nSubject: anonymous\r\nDate: Mon, 2 Mar 2026 10:00:00 +0100\r\nMessage-ID: <nofrom@${PEER}>\r\n\r\nx\r\n.\r\n`)),
    expect: { code: 550, enhanced: '5.6.0', text: /^message refused: it has no From header \(RFC 5322 requires one\)$/ },
  },
  {
    name: 'a message without a Date header (RFC 5322 requires it)',
    send: (x) => x.mx('rcpt', (t) => t.data(`From: <${peerFrom}>\r\nTo: <jeanne.martin@${A}>\r\nSubject: undated\r\nMessage-ID: <nodate@${PEER}>\r\n\r\nx\r\n.\r\n`)),
    expect: { code: 550, enhanced: '5.6.0', text: /^message refused: it has no Date header \(RFC 5322 requires one\)$/ },
  },
  {
    name: 'a header From in a domain outside the trust space',
    send: (x) => x.mx('rcpt', (t) => t.data(data('', 'x\r\n', 'ceo@banque-en-ligne.example'))),
    expect: { code: 550, enhanced: '5.7.1', text: /^From header domain banque-en-ligne\.example is not in the MSSante trust space \(it is not on the liste blanche\)$/ },
  },
  {
    name: 'a header From with two addresses, one outside the trust space',
    send: (x) => x.mx('rcpt', (t) => t.data(`From: <${peerFrom}>, <ceo@banque-en-ligne.example>\r\nTo: <jeanne.martin@${A}>\r\nSubject: x\r\nDate: Mon, 2 Mar 2026 10:00:00 +0100\r\nMessage-ID: <twofrom@${PEER}>\r\n\r\nx\r\n.\r\n`)),
    expect: { code: 550, enhanced: '5.6.0', text: /^message refused: the From header "<labo@peer\.mssante\.localhost>, <ceo@banque-en-ligne\.example>" must name exactly one mailbox$/ },
  },
  {
    name: "a header From in our own domain, sent by another operator (spoofing a local professional)",
    send: (x) => x.mx('rcpt', (t) => t.data(data('', 'x\r\n', `paul.durand@${A}`))),
    expect: { code: 550, enhanced: '5.7.1', text: /^message refused: the From header domain mssante\.localhost is not one of the domains of the operator delivering it \(peer\.mssante\.localhost\); an operator delivers the mail of its own domains only$/ },
  },
  {
    name: 'raw 8-bit UTF-8 in a header without SMTPUTF8',
    send: (x) => x.mx('rcpt', (t) => t.data(Buffer.from(data('X-Objet: résultat d’analyse\r\n'), 'utf8'))),
    expect: { code: 550, enhanced: '5.6.7', text: /^message refused: the X-Objet header contains non-ASCII bytes; UTF-8 headers need SMTPUTF8 in MAIL FROM \(RFC 6532\), otherwise encode them \(RFC 2047\)$/ },
  },
  {
    name: 'invalid UTF-8 in a header',
    send: (x) => x.mx('rcpt', (t) => t.data(Buffer.concat([Buffer.from(head(peerFrom, 'Subject2: ')), Buffer.from([0xc3, 0x28, 0xff, 0xfe]), Buffer.from('\r\n\r\nx\r\n.\r\n')]))),
    expect: { code: 550, enhanced: '5.6.7', text: /^message refused: the Subject2 header contains non-ASCII bytes; UTF-8 headers need SMTPUTF8 in MAIL FROM \(RFC 6532\), otherwise encode them \(RFC 2047\)$/ },
  },
  // --- what the server says of itself ----------------------------------------------------------
  {
    name: 'the banner names the operator host in ASCII',
    send: (x) => x.raw(x.h.ports.mx, '', /\r\n/).then((r) => smtpOutcome(r.trimEnd())),
    expect: { code: 220, text: /^mssante\.localhost [\x20-\x7e]*$/ },
  },
  {
    name: 'the EHLO reply names the operator host in ASCII',
    send: (x) => x.mx('connected', async (t) => (await t.cmd('EHLO probe.test')).split('\r\n')[0]),
    expect: { code: 250, text: /^mssante\.localhost[\x20-\x7e]*$/ },
  },
  // --- the directory ---------------------------------------------------------------------------
  {
    name: 'the directory is down: 451, never a bounce',
    send: (x) =>
      withSlapdStopped(x.h.op, () => x.mx('mail', (t) => t.cmd(`RCPT TO:<nouveau.venu@${A}>`))),
    expect: { code: 451, enhanced: '4.4.3', text: /^the directory cannot answer right now; please try again later$/ },
  },
];

function expect250(r: string) {
  if (!r.startsWith('250')) throw new Error(`EHLO answered ${r}`);
}
