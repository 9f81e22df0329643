// A login the policy accepts while Dovecot cannot be reached: the client gets NO
// [UNAVAILABLE], and the journal holds the login (written while Dovecot was being asked:
// session.ts runs both together) followed by imap.backend.failed for the same session.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PER, PW, RawImap, startStack, type Stack } from './stack.js';

describe('imap-proxy when Dovecot is down', () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startStack();
  });
  afterAll(async () => s?.stop());

  it('answers NO [UNAVAILABLE] and journals the login, then why Dovecot did not take it', async () => {
    await s.supervisor.stop('dovecot');
    const c = await RawImap.tls(s.proxy.ports.imaps, s.tls());
    await c.until(/\* OK .*\r\n/);
    c.send(`a LOGIN ${PER} "${PW.jeanne}"\r\n`);
    expect(await c.until(/^a (OK|NO|BAD).*\r\n/m)).toMatch(/^a NO \[UNAVAILABLE\]/m);
    c.close();
    await s.journal.flush();
    const events = (await s.events('imap.', PER)).filter((e) => e.type === 'imap.login' || e.type === 'imap.backend.failed');
    const failed = events.find((e) => e.type === 'imap.backend.failed');
    expect(failed).toBeDefined();
    const login = events.find((e) => e.type === 'imap.login' && e.details.session === failed!.details.session);
    expect(login).toBeDefined();
    expect(login!.seq).toBeLessThan(failed!.seq);
  });
});
