import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP, APP_CLOSED, b64, ORG, ORG_CLOSED, PER, PER_CLOSED, PW, RawImap, startStack, type Stack } from './stack.js';

// The authorisation matrix through the real proxy: for PER, ORG and APP boxes, who may
// open them — allowed exactly where core/policy says, and every refusal journalled (the
// policy's own `policy.refused`, or `imap.auth.failed` when authentication itself failed).

type Credential =
  | { kind: 'password'; user: string; pass: string }
  | { kind: 'plain'; authzid: string; authcid: string; pass: string }
  | { kind: 'certificate'; which: 'personal' | 'application' | 'other-application' | 'foreign' | 'revoked'; authzid?: string };

interface Row {
  box: string;
  who: string;
  cred: Credential;
  /** OK, or the response code and the journal event type the refusal must leave. */
  expect: 'OK' | { code: 'AUTHENTICATIONFAILED' | 'AUTHORIZATIONFAILED'; event: 'imap.auth.failed' | 'policy.refused'; policyCode?: string };
}

const denied = (policyCode: string) => ({ code: 'AUTHORIZATIONFAILED' as const, event: 'policy.refused' as const, policyCode });
const unauthenticated = { code: 'AUTHENTICATIONFAILED' as const, event: 'imap.auth.failed' as const };

const MATRIX: Row[] = [
  // Personal box: its holder only, by password or personal certificate.
  { box: PER, who: 'owner, password', cred: { kind: 'password', user: PER, pass: PW.jeanne }, expect: 'OK' },
  { box: PER, who: 'owner, login name + SASL PLAIN', cred: { kind: 'plain', authzid: PER, authcid: 'jeanne', pass: PW.jeanne }, expect: 'OK' },
  { box: PER, who: 'owner, personal certificate (mailbox from its e-mail)', cred: { kind: 'certificate', which: 'personal' }, expect: 'OK' },
  { box: PER, who: 'owner, wrong password', cred: { kind: 'password', user: PER, pass: 'not the password' }, expect: unauthenticated },
  { box: PER, who: 'member of an ORG box', cred: { kind: 'password', user: `${PER}*marie.secretaire`, pass: PW.marie }, expect: denied('BAL_NOT_MEMBER') },
  { box: PER, who: 'another professional', cred: { kind: 'password', user: `${PER}*paul`, pass: PW.paul }, expect: denied('BAL_NOT_MEMBER') },
  { box: PER, who: 'application certificate', cred: { kind: 'certificate', which: 'application', authzid: PER }, expect: denied('BAL_NOT_MEMBER') },
  { box: PER, who: 'certificate of a foreign CA', cred: { kind: 'certificate', which: 'foreign', authzid: PER }, expect: unauthenticated },
  { box: PER_CLOSED, who: 'owner of a closed box', cred: { kind: 'password', user: `${PER_CLOSED}*paul`, pass: PW.paul }, expect: denied('BAL_CLOSED') },
  // Organisational box: its members, each with their own credential.
  { box: ORG, who: 'member, "box*login"', cred: { kind: 'password', user: `${ORG}*marie.secretaire`, pass: PW.marie }, expect: 'OK' },
  { box: ORG, who: 'member, SASL PLAIN authzid', cred: { kind: 'plain', authzid: ORG, authcid: 'marie.secretaire', pass: PW.marie }, expect: 'OK' },
  { box: ORG, who: "member's password with the box address alone", cred: { kind: 'password', user: ORG, pass: PW.marie }, expect: unauthenticated },
  { box: ORG, who: 'non-member professional', cred: { kind: 'password', user: `${ORG}*paul`, pass: PW.paul }, expect: denied('BAL_NOT_MEMBER') },
  { box: ORG, who: 'non-member, personal certificate', cred: { kind: 'certificate', which: 'personal', authzid: ORG }, expect: denied('BAL_NOT_MEMBER') },
  { box: ORG, who: 'application certificate', cred: { kind: 'certificate', which: 'application', authzid: ORG }, expect: denied('BAL_NOT_MEMBER') },
  { box: ORG, who: 'revoked certificate', cred: { kind: 'certificate', which: 'revoked', authzid: ORG }, expect: unauthenticated },
  { box: ORG_CLOSED, who: 'member of a closed box', cred: { kind: 'password', user: `${ORG_CLOSED}*marie.secretaire`, pass: PW.marie }, expect: denied('BAL_CLOSED') },
  // Technical box: its registered application certificate only.
  { box: APP, who: 'registered application certificate', cred: { kind: 'certificate', which: 'application', authzid: APP }, expect: 'OK' },
  { box: APP, who: 'registered application certificate, mailbox from its e-mail', cred: { kind: 'certificate', which: 'application' }, expect: 'OK' },
  { box: APP, who: 'another application of the CA', cred: { kind: 'certificate', which: 'other-application', authzid: APP }, expect: denied('BAL_NOT_MEMBER') },
  { box: APP, who: 'a person with a password', cred: { kind: 'password', user: `${APP}*jeanne`, pass: PW.jeanne }, expect: denied('BAL_NOT_MEMBER') },
  { box: APP, who: 'a personal certificate', cred: { kind: 'certificate', which: 'personal', authzid: APP }, expect: denied('BAL_NOT_MEMBER') },
  { box: APP, who: 'certificate of a foreign CA', cred: { kind: 'certificate', which: 'foreign', authzid: APP }, expect: unauthenticated },
  { box: APP_CLOSED, who: 'registered certificate of a closed box', cred: { kind: 'certificate', which: 'application', authzid: APP_CLOSED }, expect: denied('BAL_CLOSED') },
];

describe('imap-proxy authorisation matrix (PER / ORG / APP)', () => {
  let s: Stack;
  beforeAll(async () => {
    s = await startStack();
  });
  afterAll(async () => s?.stop());

  // Clients send their certificate with its chain (as a PKCS#12 from IGC-Santé carries it).
  const certificate = (which: Exclude<Credential, { kind: 'password' | 'plain' }>['which']) => {
    const chain = which === 'foreign' ? '' : s.pki.read('intermediate.pem');
    if (which === 'other-application') return { cert: s.otherApp.cert + chain, key: s.otherApp.key };
    const leaf = s.pki.paths.leaves[which];
    return { cert: readFileSync(leaf.cert, 'utf8') + chain, key: readFileSync(leaf.key, 'utf8') };
  };

  /** One login attempt, on 993 or on 143 after STARTTLS; the tagged answer and how long it took. */
  async function attempt(cred: Credential, port: 'imaps' | 'starttls' = 'imaps'): Promise<{ answer: string; ms: number }> {
    const tls = cred.kind === 'certificate' ? s.tls(certificate(cred.which)) : s.tls();
    const c = port === 'imaps' ? await RawImap.tls(s.proxy.ports.imaps, tls) : await RawImap.tcp(s.proxy.ports.imap);
    try {
      let greeting = await c.until(/\r\n/);
      if (port === 'starttls') {
        c.send('s STARTTLS\r\n');
        await c.until(/^s OK .*\r\n/m);
        await c.upgrade(tls);
        c.send('k CAPABILITY\r\n');
        greeting = await c.until(/^k OK .*\r\n/m);
      }
      if (cred.kind === 'certificate') expect(greeting).toMatch(/AUTH=EXTERNAL/);
      else expect(greeting).not.toMatch(/AUTH=EXTERNAL/);
      const t0 = performance.now();
      if (cred.kind === 'password') c.send(`a LOGIN "${cred.user}" "${cred.pass}"\r\n`);
      else if (cred.kind === 'plain') c.send(`a AUTHENTICATE PLAIN ${b64(`${cred.authzid}\0${cred.authcid}\0${cred.pass}`)}\r\n`);
      else c.send(`a AUTHENTICATE EXTERNAL ${cred.authzid ? b64(cred.authzid) : '='}\r\n`);
      const answer = (await c.until(/^a .*\r\n/m)).split('\r\n').find((l) => l.startsWith('a '))!;
      const ms = performance.now() - t0;
      if (answer.startsWith('a OK')) {
        c.send('b SELECT INBOX\r\n');
        expect(await c.until(/^b .*\r\n/m)).toMatch(/^b OK \[READ-WRITE\]/m);
        c.send('z LOGOUT\r\n');
        await c.rest();
      }
      return { answer, ms };
    } finally {
      c.close();
    }
  }

  // Every row on 993; the certificate rows also on 143 after STARTTLS, where the client's
  // certificate comes with the upgraded session and must be judged exactly the same.
  const runs = MATRIX.flatMap((row) => [{ row, port: 'imaps' as const }, ...(row.cred.kind === 'certificate' ? [{ row, port: 'starttls' as const }] : [])]);
  for (const { row, port } of runs) {
    const outcome = row.expect === 'OK' ? 'opens' : `is refused (${row.expect.policyCode ?? row.expect.code})`;
    it(`${row.box.split('@')[0]}: ${row.who} ${outcome}${port === 'starttls' ? ' — 143 after STARTTLS' : ''}`, async () => {
      const before = (await s.journal.list({ limit: 1 }))[0]?.seq ?? 0;
      const { answer, ms } = await attempt(row.cred, port);
      await s.journal.flush();
      const after = (await s.journal.list({ limit: 50 })).filter((e) => e.seq > before);
      if (row.expect === 'OK') {
        expect(answer).toMatch(/^a OK \[CAPABILITY IMAP4rev1 .*\] Logged in, mailbox /);
        expect(answer).toContain(row.box);
        const login = after.find((e) => e.type === 'imap.login');
        expect(login).toMatchObject({ subject: row.box, details: { method: row.cred.kind === 'password' ? 'LOGIN' : row.cred.kind === 'plain' ? 'PLAIN' : 'EXTERNAL' } });
        expect(after.some((e) => e.type === 'policy.refused' || e.type === 'imap.auth.failed')).toBe(false);
        return;
      }
      expect(answer).toMatch(new RegExp(`^a NO \\[${row.expect.code}\\] `));
      // Every refusal waits the configured delay first (a lower bound: no upper one here).
      expect(ms).toBeGreaterThanOrEqual(s.config.auth.failureDelay - 1);
      const ev = after.find((e) => e.type === (row.expect as { event: string }).event);
      expect(ev, `a ${row.expect.event} event`).toBeDefined();
      expect(ev!.subject).toBe(row.box);
      if (row.expect.policyCode) expect(ev!.details).toMatchObject({ action: 'open-bal', code: row.expect.policyCode, front: 'imap', remote: '127.0.0.1' });
      expect(after.some((e) => e.type === 'imap.login')).toBe(false);
      // The sentence comes from the catalogue and names no internals.
      expect(answer).not.toMatch(/Error|stack|undefined/);
    });
  }

  it('journals why authentication failed, for the audit only (the client hears the same sentence)', async () => {
    const failed = await s.events('imap.auth.failed');
    const reasons = new Set(failed.map((e) => e.details.failure));
    expect(reasons).toEqual(new Set(['bad-password', 'unknown-user', 'certificate-rejected']));
    const answers = new Set<string>();
    for (const cred of [
      { kind: 'password', user: PER, pass: 'wrong' },
      { kind: 'password', user: 'nobody@mssante.localhost', pass: 'wrong' },
    ] as Credential[])
      answers.add((await attempt(cred)).answer);
    expect(answers).toEqual(new Set(['a NO [AUTHENTICATIONFAILED] authentication failed: unknown user name or wrong credential']));
    const tlsErrors = failed.filter((e) => e.details.failure === 'certificate-rejected').map((e) => String(e.details.tlsError));
    expect(tlsErrors).toContain('CERT_REVOKED');
    expect(tlsErrors).toContain('UNABLE_TO_VERIFY_LEAF_SIGNATURE'); // the foreign CA
  });
});
