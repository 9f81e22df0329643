// Pro Santé Connect access tokens on the real fronts: imapflow's AUTHENTICATE OAUTHBEARER and
// a raw XOAUTH2 on the IMAP proxy, nodemailer's AUTH XOAUTH2 and a raw OAUTHBEARER on
// submission, against a whole operator whose stand-in PSC issued (signed) the tokens.
// Refusals — expired, another audience, another issuer, tampered, an unknown professional,
// another person's box — each get their sentence on the wire and an event in the journal.
import { connect, type TLSSocket } from 'node:tls';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePorts, startOperator, type TestOperator } from '../helpers/operator.js';
import { testPki } from '../helpers/pki.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';

const D = 'mssante.localhost';
const JEANNE = '810000000101';
const PAUL = '810000000102';
const NOBODY = '810000000199';

let op: TestOperator;
let ca: string;
let jeanne: { login: string; address: string };
let paul: { login: string; address: string };

const mint = (claims: Record<string, unknown>, o?: { expiresIn?: number }) => op.platform.psc!.standin!.mint(claims, o);
const tokenFor = (idnps: string, extra: Record<string, unknown> = {}) => mint({ sub: `psc-${idnps}`, preferred_username: idnps, amr: ['e-cps'], ...extra });
/** The same token with another professional's id in its payload, the signature kept. */
async function tampered(): Promise<string> {
  const [h, p, s] = (await tokenFor(PAUL)).split('.');
  const body = JSON.parse(Buffer.from(p, 'base64url').toString());
  return `${h}.${Buffer.from(JSON.stringify({ ...body, preferred_username: JEANNE })).toString('base64url')}.${s}`;
}

async function events(type: string, since: number): Promise<Array<{ actor: string; subject: string; details: Record<string, unknown> }>> {
  const { rows } = await op.platform.db.query<{ actor: string; subject: string; details: Record<string, unknown> }>('SELECT actor, subject, details FROM journal_events WHERE type = $1 AND seq > $2 ORDER BY seq', [type, since]);
  return rows;
}
const head = async () => Number((await op.platform.db.query<{ seq: string }>('SELECT seq FROM journal_head')).rows[0].seq);

beforeAll(async () => {
  const pki = await testPki();
  ca = pki.read('chain.pem');
  op = await startOperator({ pki, domain: D, cert: 'server', ports: await freePorts(), peers: [], overrides: { auth: { failureDelay: 0 } } });
  jeanne = await op.person('jeanne.martin', JEANNE);
  paul = await op.person('paul.durand', PAUL);
  await op.synced();
});
afterAll(async () => {
  await op?.stop();
});

const flow = (user: string, accessToken: string) =>
  new ImapFlow({ host: '127.0.0.1', port: op.platform.imap!.ports.imaps, secure: true, tls: { ca, servername: D }, auth: { user, accessToken }, logger: false });

/** One IMAP exchange by hand over TLS: lines until the tagged answer; `answer` replies to a continuation. */
async function rawImap(lines: string[], answer = ''): Promise<string[]> {
  const s: TLSSocket = await new Promise((resolve, reject) => {
    const c = connect({ host: '127.0.0.1', port: op.platform.imap!.ports.imaps, ca, servername: D }, () => resolve(c));
    c.once('error', reject);
  });
  const got: string[] = [];
  let buf = '';
  const done = new Promise<void>((resolve) => {
    s.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      let i;
      while ((i = buf.indexOf('\r\n')) >= 0) {
        const l = buf.slice(0, i);
        buf = buf.slice(i + 2);
        got.push(l);
        if (l.startsWith('+ ')) s.write(answer + '\r\n');
        if (/^a\d /.test(l) && l.startsWith(`a${lines.length} `)) resolve();
      }
    });
    s.on('close', () => resolve());
  });
  lines.forEach((l, i) => s.write(`a${i + 1} ${l}\r\n`));
  await done;
  s.destroy();
  return got;
}

describe('IMAP: AUTHENTICATE OAUTHBEARER / XOAUTH2 with a PSC access token', () => {
  it('offers both mechanisms over TLS, and imapflow logs in to the person\'s box (journalled: method, psc, acr)', async () => {
    const caps = (await rawImap(['CAPABILITY'])).find((l) => l.startsWith('* CAPABILITY'));
    expect(caps).toMatch(/ AUTH=PLAIN AUTH=OAUTHBEARER AUTH=XOAUTH2/);
    const since = await head();
    const c = flow(jeanne.address, await tokenFor(JEANNE));
    await c.connect();
    const box = await c.mailboxOpen('INBOX');
    expect(box.path).toBe('INBOX');
    await c.logout();
    const [login] = await events('imap.login', since);
    expect(login).toMatchObject({ actor: 'person:jeanne.martin', subject: jeanne.address, details: { method: 'OAUTHBEARER', auth: 'psc', acr: 'eidas1', amr: ['e-cps'] } });
  });

  it('XOAUTH2 by hand (user=, auth=Bearer) logs in too', async () => {
    const msg = Buffer.from(`user=${paul.address}\x01auth=Bearer ${await tokenFor(PAUL)}\x01\x01`).toString('base64');
    const out = await rawImap([`AUTHENTICATE XOAUTH2 ${msg}`]);
    expect(out.at(-1)).toMatch(/^a1 OK .*Logged in, mailbox paul\.durand@mssante\.localhost/);
  });

  it('refuses bad tokens with the RFC 7628 error challenge, a clear NO and a journal event each', async () => {
    const since = await head();
    const cases: Array<[string, () => Promise<string>, string, RegExp]> = [
      ['expired', () => mint({ preferred_username: JEANNE }, { expiresIn: -3600 }), 'expired', /has expired/],
      ['wrong audience', () => tokenFor(JEANNE, { aud: 'un-autre-service' }), 'wrong-audience', /another service \(audience\)/],
      ['wrong issuer', () => tokenFor(JEANNE, { iss: 'https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet' }), 'wrong-issuer', /another provider/],
      ['tampered', tampered, 'bad-signature', /signature does not verify/],
      ['unknown professional', () => tokenFor(NOBODY), 'no-account', /no account of this operator/],
    ];
    for (const [what, token, failure, sentence] of cases) {
      const c = flow(jeanne.address, await token());
      const err = (await c.connect().then(
        () => null,
        (e: unknown) => e,
      )) as { authenticationFailed?: boolean; response?: string; oauthError?: Record<string, string> } | null;
      expect(err, what).not.toBeNull();
      expect(err!.authenticationFailed, what).toBe(true);
      expect(err!.response, what).toMatch(/AUTHENTICATIONFAILED/);
      expect(err!.response, what).toMatch(sentence);
      expect(err!.oauthError, what).toMatchObject({ status: 'invalid_token', scope: 'openid scope_all' });
      expect(err!.oauthError!['openid-configuration'], what).toMatch(/\/\.well-known\/openid-configuration$/);
    }
    const failed = await events('imap.auth.failed', since);
    expect(failed.map((e) => e.details.failure)).toEqual(cases.map((c) => c[2]));
    expect(failed.every((e) => e.details.method === 'OAUTHBEARER' && e.subject === jeanne.address)).toBe(true);
    expect(failed[4].details.idnps).toBe(NOBODY);
  });

  it("a valid token does not open another person's box: the policy refuses, journalled", async () => {
    const since = await head();
    const err = (await flow(paul.address, await tokenFor(JEANNE)).connect().then(
      () => null,
      (e: unknown) => e,
    )) as { response?: string } | null;
    expect(err?.response).toMatch(/AUTHORIZATIONFAILED.*may not open the mailbox paul\.durand/);
    const [refused] = await events('policy.refused', since);
    expect(refused).toMatchObject({ actor: 'person:jeanne.martin', subject: paul.address, details: { action: 'open-bal', code: 'BAL_NOT_MEMBER', auth: 'psc' } });
  });

  it('a malformed OAUTHBEARER message is refused, never read as a login', async () => {
    const bad = Buffer.from('n,a=x,\x01auth=Basic dXNlcjpwdw==\x01\x01').toString('base64');
    const out = await rawImap([`AUTHENTICATE OAUTHBEARER ${bad}`], 'AQ==');
    expect(out.some((l) => l.startsWith('+ '))).toBe(true);
    expect(out.at(-1)).toMatch(/^a1 NO \[AUTHENTICATIONFAILED\] .*not an OAUTHBEARER \/ XOAUTH2 message/);
  });
});

describe('submission: AUTH XOAUTH2 / OAUTHBEARER with a PSC access token', () => {
  const transport = (user: string, accessToken: string) =>
    nodemailer.createTransport({ host: '127.0.0.1', port: op.platform.smtp!.ports.submissions, secure: true, tls: { ca, servername: D }, auth: { type: 'OAuth2', user, accessToken } });

  it('nodemailer (XOAUTH2) sends as the person; journalled with method, psc and acr', async () => {
    const since = await head();
    const info = await transport(jeanne.address, await tokenFor(JEANNE)).sendMail({ from: jeanne.address, to: paul.address, subject: 'Connexion Pro Santé Connect', text: 'Envoyé avec un jeton PSC.' });
    expect(info.accepted).toEqual([paul.address]);
    const [auth] = await events('smtp.auth', since);
    expect(auth).toMatchObject({ subject: jeanne.address, details: { method: 'XOAUTH2', auth: 'psc', acr: 'eidas1' } });
  });

  it('refuses an expired, tampered or foreign-audience token with 535 5.7.8 and its reason, journalled', async () => {
    const since = await head();
    for (const [token, sentence] of [
      [await mint({ preferred_username: JEANNE }, { expiresIn: -60 }), /535 5\.7\.8 .*has expired/],
      [await tampered(), /535 5\.7\.8 .*signature does not verify/],
      [await tokenFor(JEANNE, { aud: 'un-autre-service' }), /535 5\.7\.8 .*another service/],
    ] as const) {
      const err = (await transport(jeanne.address, token)
        .sendMail({ from: jeanne.address, to: paul.address, subject: 'x', text: 'x' })
        .then(
          () => null,
          (e: unknown) => e,
        )) as { response?: string } | null;
      expect(err?.response).toMatch(sentence);
    }
    const refused = await events('smtp.refused', since);
    expect(refused.map((e) => [e.details.code, e.details.failure])).toEqual([
      ['AUTH_TOKEN_FAILED', 'expired'],
      ['AUTH_TOKEN_FAILED', 'bad-signature'],
      ['AUTH_TOKEN_FAILED', 'wrong-audience'],
    ]);
  });

  it('OAUTHBEARER by hand: offered in EHLO, accepted, and a refusal comes as a 334 challenge then 535', async () => {
    const tls = { ca, servername: D };
    const ok = await SmtpTalk.open(op.platform.smtp!.ports.submissions, '127.0.0.1', tls);
    expect(await ok.cmd('EHLO client.test')).toMatch(/AUTH .*OAUTHBEARER/);
    const msg = (token: string, box: string) => Buffer.from(`n,a=${box},\x01host=${D}\x01port=465\x01auth=Bearer ${token}\x01\x01`).toString('base64');
    expect(await ok.cmd(`AUTH OAUTHBEARER ${msg(await tokenFor(PAUL), paul.address)}`)).toMatch(/^235 /);
    await ok.cmd('QUIT');
    const bad = await SmtpTalk.open(op.platform.smtp!.ports.submissions, '127.0.0.1', tls);
    await bad.cmd('EHLO client.test');
    const challenge = await bad.cmd(`AUTH OAUTHBEARER ${msg(await tokenFor(NOBODY), paul.address)}`);
    expect(challenge).toMatch(/^334 /);
    expect(JSON.parse(Buffer.from(challenge.slice(4), 'base64').toString())).toMatchObject({ status: 'invalid_token' });
    expect(await bad.cmd('AQ==')).toMatch(/^535 5\.7\.8 .*no account of this operator/);
    // Another person's box named as the authorisation identity: refused by the policy.
    expect(await bad.cmd(`AUTH OAUTHBEARER ${msg(await tokenFor(JEANNE), paul.address)}`)).toMatch(/^334 /);
    expect(await bad.cmd('AQ==')).toMatch(/^535 5\.7\.8 authentication refused: .*may not send as paul\.durand/);
    await bad.cmd('QUIT');
  });
});

