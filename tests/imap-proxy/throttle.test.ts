// The login throttle (core/policy/throttle.ts) through the real proxy: real TLS clients,
// Dovecot behind, the journal. Each test speaks from its own loopback address (127.0.0.x),
// so their per-address counts stay apart.
import { readFileSync } from 'node:fs';
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ORG, PER, PER_PAUL, PW, RawImap, startStack, type Stack } from './stack.js';

describe('login throttle through the real IMAP proxy', () => {
  let s: Stack;
  beforeAll(async () => {
    // 200 logins wait their turn behind the password checks of a loaded machine: the
    // pre-auth timeout and the longest wait for a turn are only safety nets here.
    s = await startStack({ preAuthTimeout: 600_000 }, {}, { maxFailuresPerAccount: 3, maxFailuresPerSource: 8, attemptTimeout: 600_000 });
  });
  afterAll(async () => s?.stop());

  const connect = async (from: string, extra = {}) => {
    const c = await RawImap.tls(s.proxy.ports.imaps, s.tls({ localAddress: from, ...extra } as Parameters<typeof s.tls>[0]));
    await c.until(/\r\n/);
    return c;
  };
  const login = async (from: string, user: string, pass: string) => {
    const c = await connect(from);
    c.send(`a LOGIN "${user}" "${pass}"\r\n`);
    const answer = (await c.until(/^a .*\r\n/m)).split('\r\n').find((l) => l.startsWith('a '))!;
    c.close();
    return answer;
  };
  const locks = async (subject: string) => (await s.events('auth.locked')).filter((e) => e.subject === subject);

  it('200 simultaneous correct logins from one address all get in (imapflow): checks beyond the budget wait their turn', async () => {
    // Three people, 67 clients each (Dovecot allows 200 sessions per box and address), from
    // one address whose failure budget (8) is far below 200.
    const who = [
      { user: PER, pass: PW.jeanne },
      { user: PER_PAUL, pass: PW.paul },
      { user: `${ORG}*marie.secretaire`, pass: PW.marie },
    ];
    const before = s.passwordChecks();
    const clients = Array.from({ length: 200 }, (_, i) => new ImapFlow({ host: '127.0.0.1', port: s.proxy.ports.imaps, secure: true, tls: s.tls({ localAddress: '127.0.0.4' } as Parameters<typeof s.tls>[0]), auth: who[i % 3], logger: false, connectionTimeout: 600_000, greetingTimeout: 600_000, socketTimeout: 600_000 }));
    const results = await Promise.allSettled(clients.map((c) => c.connect()));
    const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [`${i}: ${(r.reason as Error & { responseText?: string }).responseText ?? (r.reason as Error).message}`] : []));
    expect(failed).toEqual([]);
    expect(s.passwordChecks() - before).toBe(200);
    expect((await s.events('imap.login')).filter((e) => e.details.remote === '127.0.0.4')).toHaveLength(200);
    expect(await s.throttle.state('source', '127.0.0.4')).toMatchObject({ failures: 0, pending: 0, lockedMs: 0 });
    await Promise.all(clients.map((c) => c.logout()));
  }, 900_000);

  it('30 parallel wrong guesses on one account: only its budget is checked, the others are answered NO [LIMIT]', async () => {
    const before = s.passwordChecks();
    const answers = await Promise.all(Array.from({ length: 30 }, () => login('127.0.0.3', `${ORG}*marie.secretaire`, 'a guess')));
    expect(s.passwordChecks() - before).toBe(3);
    expect(answers.filter((a) => a.startsWith('a NO [AUTHENTICATIONFAILED] '))).toHaveLength(3);
    const limited = answers.filter((a) => a.startsWith('a NO [LIMIT] '));
    expect(limited).toHaveLength(27);
    expect(new Set(limited)).toEqual(new Set(['a NO [LIMIT] too many failed logins for this account; try again in 15 min']));
    // One lockout, journalled once; every refused attempt still leaves its own trace.
    expect(await locks('marie.secretaire')).toHaveLength(1);
    expect((await locks('marie.secretaire'))[0].details).toMatchObject({ key: 'account', realm: 'person', failures: 3, front: 'imap', remote: '127.0.0.3' });
    const failed = (await s.events('imap.auth.failed', ORG)).filter((e) => e.details.remote === '127.0.0.3');
    expect(failed.filter((e) => e.details.failure === 'throttled')).toHaveLength(27);
    expect(failed.filter((e) => e.details.failure === 'bad-password')).toHaveLength(3);
  });

  it('locks an account after its failures, even for the right password and under its other name; a certificate still opens the box', async () => {
    for (let i = 0; i < 3; i++) expect(await login('127.0.0.1', PER, 'wrong password')).toMatch(/^a NO \[AUTHENTICATIONFAILED\]/);
    expect(await login('127.0.0.1', PER, PW.jeanne)).toBe('a NO [LIMIT] too many failed logins for this account; try again in 15 min');
    // The same person under their login rather than their box's address: the same count.
    expect(await login('127.0.0.5', 'jeanne', PW.jeanne)).toMatch(/^a NO \[LIMIT\] /);
    expect((await s.events('imap.auth.failed', PER)).at(-1)!.details).toMatchObject({ failure: 'throttled', throttled: 'account' });
    expect(await locks('jeanne')).toHaveLength(1);
    // The professional's card is not subject to the password throttle.
    const c = await connect('127.0.0.1', { cert: readFileSync(s.pki.paths.leaves.personal.cert, 'utf8') + s.pki.read('intermediate.pem'), key: readFileSync(s.pki.paths.leaves.personal.key, 'utf8') });
    c.send('a AUTHENTICATE EXTERNAL =\r\n');
    expect(await c.until(/^a .*\r\n/m)).toMatch(/^a OK \[CAPABILITY /m);
    c.close();
    // Another account from the same address is not locked by jeanne's failures.
    expect(await login('127.0.0.1', PER_PAUL, PW.paul)).toMatch(/^a OK /);
  });

  it('locks an address after its failures across accounts, and journals it once', async () => {
    for (let i = 0; i < 8; i++) expect(await login('127.0.0.2', `nobody${i}@mssante.localhost`, 'x')).toMatch(/^a NO \[AUTHENTICATIONFAILED\]/);
    expect(await login('127.0.0.2', PER_PAUL, PW.paul)).toBe('a NO [LIMIT] too many failed logins from your address; try again in 15 min');
    expect(await s.throttle.state('source', '127.0.0.2')).toMatchObject({ failures: 8 });
    expect(await locks('127.0.0.2')).toHaveLength(1);
    // Other addresses are served.
    expect(await login('127.0.0.6', PER_PAUL, PW.paul)).toMatch(/^a OK /);
  });
});
