import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FailureThrottle } from '../../imap-proxy/throttle.js';
import { PER, PER_PAUL, PW, RawImap, startStack, type Stack } from './stack.js';

describe('failure throttle (pure, clock injected)', () => {
  let t = 0;
  const th = () => new FailureThrottle({ windowMs: 1000, maxPerSource: 5, maxPerAccount: 3, now: () => t });

  it('refuses an account after maxPerAccount failures from any address, until the window slides', () => {
    t = 0;
    const x = th();
    for (const ip of ['10.0.0.1', '10.0.0.2', '10.0.0.3']) {
      expect(x.check(ip, 'Jeanne')).toEqual({ ok: true });
      x.failed(ip, 'jeanne');
      t += 100;
    }
    expect(x.check('10.9.9.9', 'JEANNE ')).toEqual({ ok: false, who: 'account', retryAfterMs: 700 });
    expect(x.check('10.9.9.9', 'paul')).toEqual({ ok: true });
    t = 1000; // the first failure left the window
    expect(x.check('10.9.9.9', 'jeanne')).toEqual({ ok: true });
  });

  it('refuses an address after maxPerSource failures whatever the account; a success does not clear it', () => {
    t = 0;
    const x = th();
    for (let i = 0; i < 5; i++) x.failed('10.0.0.1', `user${i}`);
    x.succeeded('user0');
    expect(x.check('10.0.0.1', 'someone')).toMatchObject({ ok: false, who: 'source' });
    expect(x.check('10.0.0.2', 'someone')).toEqual({ ok: true });
  });

  it('a success clears the account', () => {
    t = 0;
    const x = th();
    x.failed('a', 'jeanne');
    x.failed('b', 'jeanne');
    x.succeeded('jeanne');
    expect(x.count('account', 'jeanne')).toBe(0);
  });

  it('stays bounded in memory', () => {
    t = 0;
    const x = new FailureThrottle({ windowMs: 1000, maxPerSource: 3, maxPerAccount: 3, maxKeys: 100, now: () => t });
    for (let i = 0; i < 10_000; i++) x.failed(`ip${i}`, `acct${i}`);
    for (let i = 0; i < 1000; i++) x.failed('same', 'same');
    expect(x.count('source', 'ip0')).toBe(0); // forgotten
    expect(x.count('source', 'same')).toBe(3); // only the newest maxPerSource are kept
  });
});

describe('throttling through the real proxy', () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startStack({ maxFailuresPerAccount: 3, maxFailuresPerSource: 8 });
  });
  afterAll(async () => s?.stop());

  const login = async (user: string, pass: string) => {
    const c = await RawImap.tls(s.proxy.ports.imaps, s.tls());
    await c.until(/\r\n/);
    c.send(`a LOGIN "${user}" "${pass}"\r\n`);
    const answer = (await c.until(/^a .*\r\n/m)).trim();
    c.close();
    return answer;
  };

  it('locks an account after its failures, even for the right password; a certificate still opens the box', async () => {
    for (let i = 0; i < 3; i++) expect(await login(PER, 'wrong password')).toMatch(/^a NO \[AUTHENTICATIONFAILED\]/);
    expect(await login(PER, PW.jeanne)).toBe('a NO [LIMIT] too many failed logins for this account; try again in 15 min');
    const ev = (await s.events('imap.auth.failed', PER)).at(-1)!;
    expect(ev.details).toMatchObject({ failure: 'throttled', throttled: 'account' });
    // The professional's card is not subject to the password throttle.
    const pki = s.pki;
    const c = await RawImap.tls(s.proxy.ports.imaps, s.tls({ cert: readFileSync(pki.paths.leaves.personal.cert, 'utf8') + pki.read('intermediate.pem'), key: readFileSync(pki.paths.leaves.personal.key, 'utf8') }));
    await c.until(/\r\n/);
    c.send('a AUTHENTICATE EXTERNAL =\r\n');
    expect(await c.until(/^a .*\r\n/m)).toMatch(/^a OK \[CAPABILITY /m);
    c.close();
    // Another account from the same address is not locked by jeanne's failures.
    expect(await login(PER_PAUL, PW.paul)).toMatch(/^a OK /);
  });

  it('locks an address after its failures across accounts', async () => {
    for (let i = 0; i < 5; i++) await login(`nobody${i}@mssante.localhost`, 'x'); // 3 (jeanne) + 1 (throttled) do not count twice: 3 + 5 = 8
    expect(await login(PER_PAUL, PW.paul)).toBe('a NO [LIMIT] too many failed logins from your address; try again in 15 min');
    expect(s.proxy.throttle.count('source', '127.0.0.1')).toBe(8);
  });
});
