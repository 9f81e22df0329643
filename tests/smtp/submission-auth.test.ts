// Submission logins against a whole operator (startPlatform): the login throttle on AUTH
// PLAIN / LOGIN (swaks, nodemailer, a raw session), and SASL EXTERNAL with the dev PKI's
// personal and application certificates.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { promisify } from 'node:util';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_RPPS } from '../../certs/pki.js';
import { authCacheLookups } from '../../core/metrics.js';
import { freePorts, startOperator, until, type TestOperator } from '../helpers/operator.js';
import { testPki, type TestPki } from '../helpers/pki.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';

const A = 'mssante.localhost';
// Short enough to wait for its end in a test (a condition polled for, not a sleep), long
// enough that the handful of exchanges right after a lock all happen inside it.
const LOCKOUT_MS = 20_000;
let pki: TestPki;
let a: TestOperator;
const who: Record<string, { login: string; address: string; password: string }> = {};
let appBox = '';

const tlsAs = (leaf?: { cert: string; key: string }): ConnectionOptions => ({ ca: pki.read('ca.pem'), servername: 'localhost', minVersion: 'TLSv1.2', ...(leaf ?? {}) });
const leaf = (name: 'application' | 'personal' | 'revoked' | 'peer-operator') => ({ cert: readFileSync(pki.file(`${name}.pem`), 'utf8') + pki.read('intermediate.pem'), key: readFileSync(pki.file(`${name}.key`), 'utf8') });
const plain = (user: string, pass: string) => 'AUTH PLAIN ' + Buffer.from(`\0${user}\0${pass}`).toString('base64');
const b64 = (s: string) => Buffer.from(s).toString('base64');
/** Implicit TLS (465), EHLO: the session and the EHLO reply. */
const session = async (cert?: { cert: string; key: string }) => {
  const t = await SmtpTalk.open(a.ports.submissions, '127.0.0.1', tlsAs(cert));
  return { t, ehlo: await t.cmd('EHLO client.test') };
};
const swaks = (user: string, pass: string) =>
  promisify(execFile)('swaks', ['--server', '127.0.0.1', '--port', String(a.ports.submissions), '--tls-on-connect', '--auth', 'PLAIN', '--auth-user', user, '--auth-password', pass, '--quit-after', 'AUTH'], { timeout: 120_000 }).then(
    (r) => r.stdout,
    (e: { stdout?: string }) => e.stdout ?? '',
  );
/** The server's answer to swaks' AUTH command (the line after "~> AUTH PLAIN …"). */
const authLine = (out: string) => {
  const lines = out.split('\n');
  const sent = lines.findIndex((l) => /~> AUTH PLAIN/.test(l));
  return /<~\*? *(\d{3} .*)$/.exec(lines[sent + 1] ?? '')?.[1]?.trim() ?? out;
};

beforeAll(async () => {
  pki = await testPki();
  a = await startOperator({
    pki,
    domain: A,
    cert: 'server',
    ports: await freePorts(),
    peers: [],
    overrides: { auth: { maxFailuresPerAccount: 5, maxFailuresPerSource: 40, lockout: LOCKOUT_MS, failureDelay: 20, maxFailureDelay: 160, attemptTimeout: 600_000 } },
  });
  who.martin = await a.person('dr.martin', `8${DEV_RPPS}`);
  who.paul = await a.person('dr.paul', '899999999905');
  for (const l of ['nouvelle', 'session', 'nat1', 'nat2', 'nat3', 'nat4', 'reconnect']) who[l] = await a.person(l, `8999999999${10 + Object.keys(who).length}`);
  appBox = await a.bal({ local: 'labo-resultats', type: 'APP', owner: '399999999900001' });
  await a.appCert(appBox, leaf('application').cert);
  await a.synced();
}, 300_000);

afterAll(async () => {
  await a?.stop();
});

const locks = (subject: string) => a.platform.journal.list({ type: 'auth.locked', subject });

describe('submission: failed logins are throttled', () => {
  it('wrong passwords on new connections (swaks): after the limit 454 4.7.0, the right one refused too until the lock ends; journalled', async () => {
    for (let i = 0; i < 5; i++) expect(authLine(await swaks(who.nouvelle.login, `guess ${i}`))).toBe('535 5.7.8 authentication failed: unknown user name or wrong credential');
    expect(authLine(await swaks(who.nouvelle.login, who.nouvelle.password))).toMatch(/^454 4\.7\.0 too many failed logins for this account; try again in (1?\d|20) s$/);
    // The same person under their box's address: the same account, the same lock.
    expect(authLine(await swaks(who.nouvelle.address, who.nouvelle.password))).toMatch(/^454 4\.7\.0 /);
    await a.platform.journal.flush();
    expect(await locks('nouvelle')).toMatchObject([{ details: { key: 'account', realm: 'person', failures: 5, front: 'smtp-submission', remote: '127.0.0.1' } }]);
    const refused = (await a.platform.journal.list({ type: 'smtp.refused', limit: 200 })).filter((e) => e.details.code === 'LOGIN_THROTTLED');
    expect(refused.length).toBeGreaterThanOrEqual(2);
    expect(refused[0].details).toMatchObject({ front: 'submission', failure: 'throttled', throttled: 'account', reply: expect.stringMatching(/^454 4\.7\.0 /) });
    // Wait for the lock's end (polling the condition), then the right password works.
    let out = '';
    await until(async () => /^235 /.test((out = authLine(await swaks(who.nouvelle.login, who.nouvelle.password)))), 1000);
    expect(out).toBe('235 2.7.0 Authentication successful');
    expect(await locks('nouvelle')).toHaveLength(1);
  }, 300_000);

  it('wrong passwords in one session: the same limit, the same answer', async () => {
    const { t } = await session();
    for (let i = 0; i < 5; i++) expect(await t.cmd(plain(who.session.login, `guess ${i}`))).toBe('535 5.7.8 authentication failed: unknown user name or wrong credential');
    expect(await t.cmd(plain(who.session.login, who.session.password))).toMatch(/^454 4\.7\.0 too many failed logins for this account; try again in \d+ s$/);
    // AUTH LOGIN goes through the same throttle.
    expect(await t.cmd('AUTH LOGIN ' + b64(who.session.login))).toMatch(/^334 /);
    expect(await t.cmd(b64(who.session.password))).toMatch(/^454 4\.7\.0 /);
    t.close();
    expect(await locks('session')).toHaveLength(1);
  });

  it('200 simultaneous correct logins from one address (nodemailer) all succeed, beyond the address budget of 40', async () => {
    const people = ['nat1', 'nat2', 'nat3', 'nat4'].map((l) => who[l]);
    const results = await Promise.allSettled(
      Array.from({ length: 200 }, (_, i) => {
        const p = people[i % people.length];
        const t = nodemailer.createTransport({ host: '127.0.0.1', port: a.ports.submissions, secure: true, tls: tlsAs(), auth: { user: p.login, pass: p.password }, connectionTimeout: 600_000, greetingTimeout: 600_000, socketTimeout: 600_000 });
        return t.verify().finally(() => t.close());
      }),
    );
    expect(results.flatMap((r, i) => (r.status === 'rejected' ? [`${i}: ${(r.reason as Error).message}`] : []))).toEqual([]);
    const auth = (await a.platform.journal.list({ type: 'smtp.auth', limit: 1000 })).filter((e) => /^person nat\d$/.test(e.actor));
    expect(auth).toHaveLength(200);
  }, 900_000);
});

describe('submission: the password cache', () => {
  const hits = async () => (await authCacheLookups.get()).values.find((v) => v.labels.result === 'hit')?.value ?? 0;
  it('a client logging in again is recognised without a new scrypt; a wrong password still fails, and the lock still holds', async () => {
    const before = await hits();
    expect(authLine(await swaks(who.reconnect.login, who.reconnect.password))).toBe('235 2.7.0 Authentication successful');
    expect(await hits()).toBe(before);
    expect(authLine(await swaks(who.reconnect.login, who.reconnect.password))).toBe('235 2.7.0 Authentication successful');
    expect(await hits()).toBe(before + 1);
    expect(authLine(await swaks(who.reconnect.login, 'pas le bon'))).toBe('535 5.7.8 authentication failed: unknown user name or wrong credential');
    expect(await hits()).toBe(before + 1);
    // Locked (5 failures here): the known password is refused too, without reaching the cache.
    for (let i = 0; i < 4; i++) await swaks(who.reconnect.login, `guess ${i}`);
    expect(authLine(await swaks(who.reconnect.login, who.reconnect.password))).toMatch(/^454 4\.7\.0 too many failed logins for this account; /);
    expect(await hits()).toBe(before + 1);
  }, 300_000);
});

describe('submission: SASL EXTERNAL with a client certificate', () => {
  it('is not offered without a certificate, and refused with 535 5.7.8 there (journalled)', async () => {
    const { t, ehlo } = await session();
    expect(ehlo).toMatch(/^250[ -]AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER$/m);
    expect(await t.cmd('AUTH EXTERNAL =')).toBe('535 5.7.8 certificate authentication (SASL EXTERNAL) failed: no client certificate was presented during the TLS handshake');
    t.close();
    const ev = (await a.platform.journal.list({ type: 'smtp.refused', limit: 50 })).find((e) => e.details.method === 'EXTERNAL');
    expect(ev?.details).toMatchObject({ code: 'AUTH_EXTERNAL_FAILED', failure: 'no-certificate', front: 'submission' });
  });

  it('a personal certificate: offered, AUTH EXTERNAL = logs in as the person, who sends from their box', async () => {
    const { t, ehlo } = await session(leaf('personal'));
    expect(ehlo).toMatch(/^250[ -]AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER EXTERNAL$/m);
    expect(await t.cmd('AUTH EXTERNAL =')).toBe('235 2.7.0 Authentication successful');
    expect(await t.cmd('AUTH EXTERNAL =')).toBe('503 5.5.1 Error: No identity changes permitted');
    expect(await t.cmd(`MAIL FROM:<${who.martin.address}>`)).toMatch(/^250 2\.1\.[05] Accepted$/);
    expect(await t.cmd(`RCPT TO:<${who.paul.address}>`)).toMatch(/^250 2\.1\.[05] Accepted$/);
    expect(await t.data(`From: ${who.martin.address}\r\nTo: ${who.paul.address}\r\nSubject: par carte\r\nDate: Mon, 02 Mar 2026 10:00:00 +0100\r\nMessage-ID: <cps.1@test>\r\n\r\nEnvoye avec ma carte.\r\n.\r\n`)).toMatch(/^250 2\.0\.0 message accepted/);
    t.close();
    const ev = (await a.platform.journal.list({ type: 'smtp.auth', limit: 50 })).find((e) => e.details.method === 'EXTERNAL');
    expect(ev).toMatchObject({ actor: 'person dr.martin', details: { front: 'submission', method: 'EXTERNAL' } });
  });

  it('on 587 after STARTTLS too, with the authorisation identity naming the box; another box is refused', async () => {
    const t = await SmtpTalk.open(a.ports.submission);
    expect(await t.cmd('EHLO client.test')).not.toMatch(/EXTERNAL/);
    expect(await t.starttls(tlsAs(leaf('personal')))).toMatch(/^250[ -]AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER EXTERNAL$/m);
    expect(await t.cmd(`AUTH EXTERNAL ${b64(who.paul.address)}`)).toMatch(/^535 5\.7\.8 authentication refused: person dr\.martin may not send as dr\.paul@mssante\.localhost: /);
    expect(await t.cmd(`AUTH EXTERNAL ${b64(who.martin.address)}`)).toBe('235 2.7.0 Authentication successful');
    t.close();
  });

  it('an application certificate: AUTH EXTERNAL with an empty challenge, then sends as its box', async () => {
    const { t, ehlo } = await session(leaf('application'));
    expect(ehlo).toMatch(/AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER EXTERNAL/);
    expect(await t.cmd('AUTH EXTERNAL')).toBe('334');
    expect(await t.cmd(b64(appBox))).toBe('235 2.7.0 Authentication successful');
    expect(await t.cmd(`MAIL FROM:<${appBox}>`)).toMatch(/^250 2\.1\.[05] Accepted$/);
    t.close();
    const ev = (await a.platform.journal.list({ type: 'smtp.auth', limit: 50 })).find((e) => e.details.method === 'EXTERNAL' && e.actor.startsWith('application certificate'));
    expect(ev).toBeDefined();
  });

  it('a certificate that stands for no one, or is revoked: not offered, refused', async () => {
    for (const [name, why] of [
      ['peer-operator', 'no account or application mailbox is bound to the client certificate presented'],
      ['revoked', 'the client certificate presented is not accepted in the MSSante trust space (untrusted, expired or revoked)'], // SMTP replies are ASCII
    ] as const) {
      const { t, ehlo } = await session(leaf(name));
      expect(ehlo).not.toMatch(/EXTERNAL/);
      expect(await t.cmd('AUTH EXTERNAL =')).toBe(`535 5.7.8 certificate authentication (SASL EXTERNAL) failed: ${why}`);
      t.close();
    }
    const failures = (await a.platform.journal.list({ type: 'smtp.refused', limit: 100 })).filter((e) => e.details.method === 'EXTERNAL').map((e) => e.details.failure);
    expect(failures).toEqual(expect.arrayContaining(['no-account-for-certificate', 'certificate-rejected']));
  });
});
