import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Db } from '../../core/db/index.js';
import { Journal } from '../../core/journal/index.js';
import { EVERYWHERE, Policy, type Principal, type Verdict } from '../../core/policy/index.js';
import { loadTrustStore } from '../../certs/client-cert.js';
import { devIssuer, DEV_RPPS, DEV_STRUCTURE_ID, issueCertificate } from '../../certs/pki.js';
import * as credentials from '../../annuaire/bal/credentials.js';
import {
  addMember,
  authenticate,
  balFactSource,
  balsFor,
  balsForApplication,
  checkCredentials,
  closeBal,
  closeSession,
  openSession,
  sessionPerson,
  createBal,
  createPerson,
  CredentialCache,
  enableTotp,
  findBal,
  listBals,
  listPersons,
  subjectsInScope,
  principalForCertificate,
  registerAppCertificate,
  removeMember,
  reopenBal,
  resetCredentials,
  revokeAppCertificate,
  setPassword,
  setPersonActive,
  totpCode,
  updateBal,
  type BalChange,
  type BalContext,
} from '../../annuaire/bal/index.js';
import { dbTargets } from '../helpers/db.js';
import { testPki, type TestPki } from '../helpers/pki.js';

// Count scrypt verifications: the unknown-user path must cost exactly what a known user costs.
vi.mock('../../annuaire/bal/credentials.js', async (orig) => {
  const real = await orig<typeof import('../../annuaire/bal/credentials.js')>();
  return { ...real, verifyPassword: vi.fn(real.verifyPassword) };
});

const DOMAIN = 'mssante.localhost';
const code = (v: Verdict) => (v.ok ? 'OK' : v.code);

describe.each(dbTargets())('annuaire/bal on $name', (target) => {
  let db: Db;
  let dispose: () => Promise<void>;
  let journal: Journal;
  let ctx: BalContext;
  let pki: TestPki;
  const changes: BalChange[] = [];
  const committed: string[] = [];

  beforeAll(async () => {
    ({ db, dispose } = await target.open());
    journal = new Journal(db);
    pki = await testPki();
    ctx = {
      db,
      journal,
      domains: [DOMAIN],
      hooks: { inTransaction: [async (_tx, c) => void changes.push(c)], afterCommit: [(c) => void committed.push(`${c.kind} ${c.bal.address}`)] },
      trust: () => loadTrustStore({ caFile: pki.paths.chain, crlFile: pki.paths.crl }),
    };
  });
  afterAll(async () => dispose?.());

  const events = async (subject: string) => (await journal.list({ subject })).reverse().map((e) => [e.type, e.actor]);

  it('creates mailboxes of each type, normalised, journalled with the actor, followers told', async () => {
    const per = await createBal(ctx, { address: 'Jeanne.Martin@MSSANTE.localhost', type: 'PER', owner: DEV_RPPS, displayName: 'Jeanne MARTIN' }, 'cli:test');
    expect(per).toMatchObject({ address: 'jeanne.martin@mssante.localhost', domain: DOMAIN, type: 'PER', ownerId: '8' + DEV_RPPS, status: 'active', version: 1, listeRouge: false });
    const org = await createBal(ctx, { address: 'secretariat.cardio@mssante.localhost', type: 'ORG', owner: '750000001', service: 'Cardiologie', listeRouge: true }, 'cli:test');
    expect(org).toMatchObject({ ownerId: '1750000001', structureId: '1750000001', service: 'Cardiologie', listeRouge: true });
    const app = await createBal(ctx, { address: 'labo-resultats@mssante.localhost', type: 'APP', owner: DEV_STRUCTURE_ID }, 'cli:test');
    expect(app.ownerId).toBe(DEV_STRUCTURE_ID);
    expect(await events('jeanne.martin@mssante.localhost')).toEqual([['bal.created', 'cli:test']]);
    expect(changes.map((c) => `${c.kind} ${c.bal.address}`)).toEqual(committed);
    expect(committed).toContain('created labo-resultats@mssante.localhost');
  });

  it('refuses a taken address in any case, a foreign domain, bad owners', async () => {
    await expect(createBal(ctx, { address: 'JEANNE.martin@mssante.localhost', type: 'PER', owner: DEV_RPPS }, 'cli:test')).rejects.toMatchObject({ code: 'BAL_EXISTS' });
    await expect(createBal(ctx, { address: 'x@gmail.com', type: 'PER', owner: DEV_RPPS }, 'cli:test')).rejects.toThrow(/not a domain of this operator/);
    await expect(createBal(ctx, { address: 'x@mssante.localhost', type: 'PER', owner: '123' }, 'cli:test')).rejects.toThrow(/not a professional's id/);
    await expect(createBal(ctx, { address: 'x@mssante.localhost', type: 'ORG', owner: 'ABC' }, 'cli:test')).rejects.toThrow(/not a structure id/);
    await expect(createBal(ctx, { address: 'a b@mssante.localhost', type: 'ORG', owner: '750000001' }, 'cli:test')).rejects.toThrow(/not a mailbox address/);
  });

  it('closes and reopens, with dates, versions and journal events; a second close is a conflict', async () => {
    const closed = await closeBal(ctx, 'labo-resultats@mssante.localhost', 'admin:root', 'end of contract');
    expect(closed).toMatchObject({ status: 'closed', version: 2 });
    expect(closed.closedAt).toBeInstanceOf(Date);
    await expect(closeBal(ctx, 'labo-resultats@mssante.localhost', 'admin:root')).rejects.toMatchObject({ code: 'BAL_STATE_CONFLICT' });
    const reopened = await reopenBal(ctx, 'LABO-RESULTATS@mssante.localhost', 'admin:root');
    expect(reopened).toMatchObject({ status: 'active', version: 3 });
    expect(reopened.reopenedAt).toBeInstanceOf(Date);
    await expect(reopenBal(ctx, 'labo-resultats@mssante.localhost', 'admin:root')).rejects.toMatchObject({ code: 'BAL_STATE_CONFLICT' });
    await expect(closeBal(ctx, 'nobody@mssante.localhost', 'admin:root')).rejects.toMatchObject({ code: 'BAL_UNKNOWN' });
    expect(await events('labo-resultats@mssante.localhost')).toEqual([
      ['bal.created', 'cli:test'],
      ['bal.closed', 'admin:root'],
      ['bal.reopened', 'admin:root'],
    ]);
    const ev = (await journal.list({ subject: 'labo-resultats@mssante.localhost', type: 'bal.closed' }))[0];
    expect(ev.details).toMatchObject({ type: 'APP', reason: 'end of contract' });
  });

  it('updates descriptive fields and bumps the version', async () => {
    const b = await updateBal(ctx, 'secretariat.cardio@mssante.localhost', { description: 'Secrétariat de cardiologie', listeRouge: false, rank: 2 }, 'admin:root');
    expect(b).toMatchObject({ description: 'Secrétariat de cardiologie', listeRouge: false, rank: 2, version: 2 });
    await expect(updateBal(ctx, 'secretariat.cardio@mssante.localhost', {}, 'admin:root')).rejects.toThrow(/nothing to change/);
  });

  it('a follower failing inside the transaction rolls the change and its journal event back', async () => {
    const failing: BalContext = { ...ctx, hooks: { inTransaction: [async () => Promise.reject(new Error('outbox full'))] } };
    const before = (await journal.list({ limit: 1 }))[0].seq;
    await expect(closeBal(failing, 'secretariat.cardio@mssante.localhost', 'admin:root')).rejects.toThrow('outbox full');
    expect((await findBal(db, 'secretariat.cardio@mssante.localhost'))!.status).toBe('active');
    expect((await journal.list({ limit: 1 }))[0].seq).toBe(before);
  });

  it('manages ORG members; members only on ORG boxes', async () => {
    await createPerson(ctx, { login: 'jeanne', idnps: DEV_RPPS, nom: 'MARTIN', prenom: 'Jeanne', password: 'correct horse battery' }, 'cli:test');
    await createPerson(ctx, { login: 'marie.secretaire', nom: 'DURAND', prenom: 'Marie', password: 'un mot de passe long' }, 'cli:test');
    await createPerson(ctx, { login: 'paul', idnps: '99999999903', password: 'paul paul paul paul' }, 'cli:test');
    await expect(createPerson(ctx, { login: 'JEANNE', password: 'whatever whatever' }, 'cli:test')).rejects.toMatchObject({ code: 'PERSON_EXISTS' });
    await expect(createPerson(ctx, { login: 'short', password: 'short' }, 'cli:test')).rejects.toThrow(/at least 12/);
    let b = await addMember(ctx, 'secretariat.cardio@mssante.localhost', { login: 'marie.secretaire' }, 'admin:root');
    b = await addMember(ctx, 'secretariat.cardio@mssante.localhost', { idnps: '8' + DEV_RPPS }, 'admin:root');
    expect(b.members.map((m) => m.login)).toEqual(['jeanne', 'marie.secretaire']);
    await expect(addMember(ctx, 'secretariat.cardio@mssante.localhost', { login: 'jeanne' }, 'admin:root')).rejects.toThrow(/already a member/);
    await expect(addMember(ctx, 'jeanne.martin@mssante.localhost', { login: 'marie.secretaire' }, 'admin:root')).rejects.toMatchObject({ code: 'BAL_WRONG_TYPE' });
    await expect(addMember(ctx, 'secretariat.cardio@mssante.localhost', { login: 'ghost' }, 'admin:root')).rejects.toMatchObject({ code: 'PERSON_UNKNOWN' });
    b = await removeMember(ctx, 'secretariat.cardio@mssante.localhost', { login: 'jeanne' }, 'admin:root');
    expect(b.members.map((m) => m.login)).toEqual(['marie.secretaire']);
    await expect(removeMember(ctx, 'secretariat.cardio@mssante.localhost', { login: 'jeanne' }, 'admin:root')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    const types = (await journal.list({ subject: 'secretariat.cardio@mssante.localhost', typePrefix: 'bal.member' })).map((e) => [e.type, e.details.person]);
    expect(types).toEqual([
      ['bal.member.removed', 'jeanne'],
      ['bal.member.added', 'jeanne'],
      ['bal.member.added', 'marie.secretaire'],
    ]);
  });

  it('looks up the boxes a person may open', async () => {
    const jeanne = (await authenticate(db, 'jeanne', 'correct horse battery'))!;
    const marie = (await authenticate(db, 'marie.secretaire', 'un mot de passe long'))!;
    expect((await balsFor(db, jeanne)).map((b) => b.address)).toEqual(['jeanne.martin@mssante.localhost']);
    expect((await balsFor(db, marie)).map((b) => b.address)).toEqual(['secretariat.cardio@mssante.localhost']);
    expect((await listBals(db, EVERYWHERE, { type: 'ORG' })).map((b) => b.address)).toEqual(['secretariat.cardio@mssante.localhost']);
    expect((await listBals(db, EVERYWHERE, { text: 'MARTIN' })).map((b) => b.address)).toEqual(['jeanne.martin@mssante.localhost']);
    expect((await listBals(db, EVERYWHERE, { text: '%' })).length).toBe(0);
    // A regional scope: the boxes of its domains or structures, and the persons attached to them.
    const scope = { kind: 'within', domains: ['nowhere.example'], structures: [(await findBal(db, 'secretariat.cardio@mssante.localhost'))!.structureId!] } as const;
    expect((await listBals(db, scope)).map((b) => b.address)).toEqual(['secretariat.cardio@mssante.localhost']);
    expect((await listPersons(db, scope)).map((p) => p.login)).toEqual(['marie.secretaire']);
    expect((await subjectsInScope(db, scope))!.sort()).toEqual(['marie.secretaire', 'secretariat.cardio@mssante.localhost']);
    expect(await listBals(db, { kind: 'within', domains: [], structures: [] })).toEqual([]);
    expect(await subjectsInScope(db, EVERYWHERE)).toBeNull();
  });

  it('registers and revokes application certificates; only on APP boxes; expired refused', async () => {
    const pem = readFileSync(pki.paths.leaves.application.cert, 'utf8');
    const b = await registerAppCertificate(ctx, 'labo-resultats@mssante.localhost', pem, 'admin:root');
    expect(b.certificates).toHaveLength(1);
    expect(b.certificates[0]).toMatchObject({ revokedAt: null, registeredBy: 'admin:root' });
    expect(b.certificates[0].fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(b.certificates[0].subject).toContain('CN=labo-resultats');
    await expect(registerAppCertificate(ctx, 'labo-resultats@mssante.localhost', pem, 'admin:root')).rejects.toMatchObject({ code: 'CERT_ALREADY_REGISTERED' });
    await expect(registerAppCertificate(ctx, 'jeanne.martin@mssante.localhost', pem, 'admin:root')).rejects.toMatchObject({ code: 'BAL_WRONG_TYPE' });
    await expect(registerAppCertificate(ctx, 'labo-resultats@mssante.localhost', readFileSync(pki.paths.leaves.expired.cert, 'utf8'), 'admin:root')).rejects.toMatchObject({ code: 'CERT_EXPIRED' });
    await expect(registerAppCertificate(ctx, 'labo-resultats@mssante.localhost', 'not a pem', 'admin:root')).rejects.toMatchObject({ code: 'CERT_UNUSABLE' });
    expect((await balsForApplication(db, b.certificates[0].fingerprint)).map((x) => x.address)).toEqual(['labo-resultats@mssante.localhost']);
  });

  describe('credentials', () => {
    it('right password, by login or by the address of the PER box held; wrong password refused', async () => {
      expect(await authenticate(db, 'JEANNE', 'correct horse battery')).toMatchObject({ kind: 'person', login: 'jeanne', idnps: '8' + DEV_RPPS, auth: 'password' });
      expect(await authenticate(db, 'jeanne.martin@mssante.localhost', 'correct horse battery')).toMatchObject({ login: 'jeanne' });
      expect(await checkCredentials(db, 'jeanne', 'correct horse batterY')).toEqual({ ok: false, failure: 'bad-password', login: 'jeanne' });
      // An ORG address is no user name: members log in as themselves.
      expect(await checkCredentials(db, 'secretariat.cardio@mssante.localhost', 'un mot de passe long')).toMatchObject({ ok: false, failure: 'unknown-user' });
    });

    it('an unknown user costs one scrypt, like a known one', async () => {
      const spy = vi.mocked(credentials.verifyPassword);
      spy.mockClear();
      expect(await checkCredentials(db, 'nobody', 'whatever')).toEqual({ ok: false, failure: 'unknown-user', login: undefined });
      expect(spy).toHaveBeenCalledTimes(1);
      // ...against a hash made with the same parameters as real ones.
      expect(spy.mock.calls[0][0]).toMatch(new RegExp(`^scrypt\\$${credentials.SCRYPT_PARAMS.N}\\$${credentials.SCRYPT_PARAMS.r}\\$${credentials.SCRYPT_PARAMS.p}\\$`));
      spy.mockClear();
      await checkCredentials(db, 'jeanne', 'wrong wrong wrong');
      expect(spy).toHaveBeenCalledTimes(1);
    });

    it('set and reset passwords; a disabled account cannot log in', async () => {
      await setPassword(ctx, { login: 'paul' }, 'nouveau mot de passe', 'admin:root');
      expect(await authenticate(db, 'paul', 'paul paul paul paul')).toBeNull();
      expect(await authenticate(db, 'paul', 'nouveau mot de passe')).not.toBeNull();
      const { password } = await resetCredentials(ctx, { login: 'paul' }, 'admin:root');
      expect(password).toMatch(/^[A-Za-z0-9]{20}$/);
      expect(await authenticate(db, 'paul', 'nouveau mot de passe')).toBeNull();
      expect(await authenticate(db, 'paul', password)).not.toBeNull();
      await setPersonActive(ctx, { login: 'paul' }, false, 'admin:root');
      expect(await checkCredentials(db, 'paul', password)).toMatchObject({ ok: false, failure: 'inactive' });
      await setPersonActive(ctx, { login: 'paul' }, true, 'admin:root');
      expect((await journal.list({ subject: 'paul' })).map((e) => e.type).reverse()).toEqual([
        'person.created',
        'person.password.set',
        'person.credentials.reset',
        'person.disabled',
        'person.enabled',
      ]);
    });

    it('TOTP: code appended or separate, wrong code refused, a used code cannot be replayed', async () => {
      const { secret, uri } = await enableTotp(ctx, { login: 'marie.secretaire' }, 'admin:root');
      expect(uri).toMatch(/^otpauth:\/\/totp\/MSSant%C3%A9:marie\.secretaire\?/);
      const t0 = Date.parse('2026-03-01T12:00:00Z');
      expect(await checkCredentials(db, 'marie.secretaire', 'un mot de passe long', { now: t0 })).toMatchObject({ ok: false });
      const wrong = totpCode(secret, t0 + 5 * 60_000);
      expect(await checkCredentials(db, 'marie.secretaire', 'un mot de passe long' + wrong, { now: t0 })).toMatchObject({ ok: false, failure: 'bad-otp' });
      const ok = await checkCredentials(db, 'marie.secretaire', 'un mot de passe long' + totpCode(secret, t0), { now: t0 });
      expect(ok).toMatchObject({ ok: true, principal: { auth: 'password+totp' } });
      expect(await checkCredentials(db, 'marie.secretaire', 'un mot de passe long', { otp: totpCode(secret, t0), now: t0 })).toMatchObject({ ok: false, failure: 'otp-replayed' });
      expect(await checkCredentials(db, 'marie.secretaire', 'un mot de passe long', { otp: totpCode(secret, t0 + 30_000), now: t0 + 30_000 })).toMatchObject({ ok: true });
      expect(await checkCredentials(db, 'marie.secretaire', 'un mot de passe lonG', { otp: totpCode(secret, t0 + 60_000), now: t0 + 60_000 })).toMatchObject({ ok: false, failure: 'bad-password' });
      // A reset that clears the second factor: password alone again.
      const { password } = await resetCredentials(ctx, { login: 'marie.secretaire' }, 'admin:root', { resetTotp: true });
      expect(await authenticate(db, 'marie.secretaire', password)).toMatchObject({ auth: 'password' });
      await setPassword(ctx, { login: 'marie.secretaire' }, 'un mot de passe long', 'admin:root');
    });

    it('the password cache: a password verified a moment ago costs no scrypt; a wrong or changed password, a disabled account and a one-time code are checked as ever', async () => {
      const scrypts = vi.mocked(credentials.verifyPassword);
      const cache = new CredentialCache({ ttlMs: 60_000, maxEntries: 10 });
      const t0 = Date.now();
      const check = (user: string, secret: string, at: number, o: { otp?: string } = {}) => checkCredentials(db, user, secret, { cache, now: at, ...o });
      await setPassword(ctx, { login: 'paul' }, 'mot de passe en cache', 'admin:root');
      scrypts.mockClear();
      expect(await check('paul', 'mot de passe en cache', t0)).toMatchObject({ ok: true, principal: { login: 'paul', auth: 'password' } });
      expect(await check('paul', 'mot de passe en cache', t0 + 1)).toMatchObject({ ok: true, principal: { login: 'paul', auth: 'password' } });
      expect(scrypts).toHaveBeenCalledTimes(1);
      // A wrong password pays the full scrypt (and leaves the right one known).
      expect(await check('paul', 'mot de passe en cachE', t0 + 2)).toMatchObject({ ok: false, failure: 'bad-password' });
      expect(await check('paul', 'mot de passe en cache', t0 + 3)).toMatchObject({ ok: true });
      expect(scrypts).toHaveBeenCalledTimes(2);
      // The ttl counts from the scrypt, not from the last hit.
      expect(await check('paul', 'mot de passe en cache', t0 + 60_001)).toMatchObject({ ok: true });
      expect(scrypts).toHaveBeenCalledTimes(3);
      // A changed password: the old one is refused at once, though it was just verified.
      await setPassword(ctx, { login: 'paul' }, 'un autre mot de passe', 'admin:root');
      expect(await check('paul', 'mot de passe en cache', t0 + 60_002)).toMatchObject({ ok: false, failure: 'bad-password' });
      expect(await check('paul', 'un autre mot de passe', t0 + 60_003)).toMatchObject({ ok: true });
      expect(await check('paul', 'un autre mot de passe', t0 + 60_004)).toMatchObject({ ok: true });
      expect(scrypts).toHaveBeenCalledTimes(5);
      // A disabled account is refused before the cache is read.
      await setPersonActive(ctx, { login: 'paul' }, false, 'admin:root');
      expect(await check('paul', 'un autre mot de passe', t0 + 60_005)).toMatchObject({ ok: false, failure: 'inactive' });
      await setPersonActive(ctx, { login: 'paul' }, true, 'admin:root');
      // With a second factor the password may be known, the code is checked every time.
      const { secret } = await enableTotp(ctx, { login: 'marie.secretaire' }, 'admin:root');
      const t1 = Date.parse('2026-03-02T12:00:00Z');
      scrypts.mockClear();
      expect(await check('marie.secretaire', 'un mot de passe long', t1, { otp: totpCode(secret, t1) })).toMatchObject({ ok: true, principal: { auth: 'password+totp' } });
      expect(await check('marie.secretaire', 'un mot de passe long', t1 + 1, { otp: totpCode(secret, t1) })).toMatchObject({ ok: false, failure: 'otp-replayed' });
      expect(await check('marie.secretaire', 'un mot de passe long', t1 + 2, { otp: totpCode(secret, t1 + 10 * 60_000) })).toMatchObject({ ok: false, failure: 'bad-otp' });
      expect(await check('marie.secretaire', 'un mot de passe long', t1 + 30_000, { otp: totpCode(secret, t1 + 30_000) })).toMatchObject({ ok: true });
      expect(scrypts).toHaveBeenCalledTimes(1);
      await resetCredentials(ctx, { login: 'marie.secretaire' }, 'admin:root', { resetTotp: true });
      await setPassword(ctx, { login: 'marie.secretaire' }, 'un mot de passe long', 'admin:root');
      // Bounded: past maxEntries the oldest person is forgotten.
      const small = new CredentialCache({ ttlMs: 60_000, maxEntries: 1 });
      scrypts.mockClear();
      for (const [user, pw] of [['paul', 'un autre mot de passe'], ['jeanne', 'correct horse battery'], ['paul', 'un autre mot de passe']]) {
        expect(await checkCredentials(db, user, pw, { cache: small })).toMatchObject({ ok: true });
      }
      expect(scrypts).toHaveBeenCalledTimes(3);
      expect(small.size).toBe(1);
    });

    it('webmail session tokens stand in for the password of their own person only, until expiry, logout or a password change', async () => {
      const jeanne = (await authenticate(db, 'jeanne', 'correct horse battery'))!;
      const life = { ttlMs: 60_000, maxAgeMs: 3_600_000 };
      const { token, expiresAt } = await openSession(db, jeanne, life);
      expect(token).toMatch(/^mss_wt_[A-Za-z0-9_-]{43}$/);
      expect(expiresAt.getTime()).toBeGreaterThan(Date.now());
      expect(await checkCredentials(db, 'jeanne', token)).toMatchObject({ ok: true, principal: { login: 'jeanne', auth: 'token' } });
      expect(await checkCredentials(db, 'jeanne.martin@mssante.localhost', token)).toMatchObject({ ok: true, principal: { login: 'jeanne' } });
      // Someone else's name with Jeanne's token; a token one character off; only the hash is stored.
      expect(await checkCredentials(db, 'paul', token)).toMatchObject({ ok: false, failure: 'bad-session' });
      expect(await checkCredentials(db, 'jeanne', token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A'))).toMatchObject({ ok: false, failure: 'bad-session' });
      const stored = await db.query<{ token_hash: string }>('SELECT token_hash FROM bal_web_sessions');
      expect(stored.rows.map((r) => r.token_hash)).not.toContain(token);
      // Sliding expiry: pushed forward only once half the idle lifetime is used.
      await db.query("UPDATE bal_web_sessions SET expires_at = now() + interval '10 seconds'");
      expect(await sessionPerson(db, token, life)).toMatchObject({ row: { login: 'jeanne' } });
      const after = await db.query<{ left: number }>('SELECT extract(epoch FROM expires_at - now())::int AS left FROM bal_web_sessions');
      expect(after.rows[0].left).toBeGreaterThan(10); // pushed forward from the 10 s it had (60 s minus however long this took)
      await db.query("UPDATE bal_web_sessions SET expires_at = now() - interval '1 second'");
      expect(await checkCredentials(db, 'jeanne', token)).toMatchObject({ ok: false, failure: 'bad-session' });
      const second = await openSession(db, jeanne, life);
      await closeSession(db, second.token);
      expect(await checkCredentials(db, 'jeanne', second.token)).toMatchObject({ ok: false, failure: 'bad-session' });
      const third = await openSession(db, jeanne, life);
      await setPassword(ctx, { login: 'jeanne' }, 'correct horse battery', 'admin:root');
      expect(await checkCredentials(db, 'jeanne', third.token)).toMatchObject({ ok: false, failure: 'bad-session' });
      expect((await journal.list({ subject: 'jeanne', type: 'person.password.set' }))[0].details).toMatchObject({ sessionsClosed: 1 });
    });

    it('maps client certificates: personal → the person bound by RPPS, other → an application', async () => {
      expect(await principalForCertificate(db, readFileSync(pki.paths.leaves.personal.cert, 'utf8'))).toMatchObject({ kind: 'person', login: 'jeanne', auth: 'certificate' });
      const app = await principalForCertificate(db, readFileSync(pki.paths.leaves.application.cert, 'utf8'));
      expect(app).toMatchObject({ kind: 'application' });
      const stranger = await issueCertificate(devIssuer(pki.dir), { type: 'personal', rpps: '99999999977', surname: 'X', givenName: 'Y' }, { keyBits: 2048 });
      expect(await principalForCertificate(db, stranger.certPem)).toBeNull();
    });
  });

  it('policy on real facts: owner / member / non-member / application / wrong certificate / closed', async () => {
    const policy = new Policy({ ...balFactSource(db), trustSpaceEntry: async () => null }, journal, { localDomains: [DOMAIN] });
    const person = async (login: string, pw: string) => (await authenticate(db, login, pw))!;
    const jeanne = await person('jeanne', 'correct horse battery');
    const marie = await person('marie.secretaire', 'un mot de passe long');
    const paul: Principal = { kind: 'person', id: '999', login: 'paul', idnps: '899999999903', auth: 'password' };
    const app = (await principalForCertificate(db, readFileSync(pki.paths.leaves.application.cert, 'utf8')))!;
    const other = await issueCertificate(devIssuer(pki.dir), { type: 'application', name: 'autre-logiciel', organisation: 'Labo', organisationId: '12345678901234' }, { keyBits: 2048 });
    const wrongApp = (await principalForCertificate(db, other.certPem))!;

    const per = 'jeanne.martin@mssante.localhost';
    const org = 'secretariat.cardio@mssante.localhost';
    const apb = 'labo-resultats@mssante.localhost';
    const matrix: Array<[Principal, string, string]> = [
      [jeanne, per, 'OK'],
      [marie, per, 'BAL_NOT_MEMBER'],
      [app, per, 'BAL_NOT_MEMBER'],
      [marie, org, 'OK'],
      [jeanne, org, 'BAL_NOT_MEMBER'], // removed earlier
      [paul, org, 'BAL_NOT_MEMBER'],
      [app, apb, 'OK'],
      [wrongApp, apb, 'BAL_NOT_MEMBER'],
      [jeanne, apb, 'BAL_NOT_MEMBER'],
      [jeanne, 'nobody@mssante.localhost', 'BAL_UNKNOWN'],
    ];
    for (const [p, address, expected] of matrix) expect([p.kind === 'person' ? p.login : p.kind, address, code(await policy.mayOpenBal(p, address))]).toEqual([p.kind === 'person' ? p.login : p.kind, address, expected]);
    expect(code(await policy.maySendAs(marie, org))).toBe('OK');
    expect(code(await policy.maySendAs(paul, org))).toBe('SEND_AS_FORBIDDEN');

    await closeBal(ctx, per, 'admin:root');
    expect(code(await policy.mayOpenBal(jeanne, per))).toBe('BAL_CLOSED');
    expect(code(await policy.maySendAs(jeanne, per))).toBe('SEND_AS_FORBIDDEN');
    // A closed PER box is no user name either.
    expect(await authenticate(db, per, 'correct horse battery')).toBeNull();
    await reopenBal(ctx, per, 'admin:root');

    const fp = (await findBal(db, apb))!.certificates[0].fingerprint;
    await revokeAppCertificate(ctx, apb, fp.toUpperCase(), 'admin:root', 'key leaked');
    expect(code(await policy.mayOpenBal(app, apb))).toBe('BAL_NOT_MEMBER');
    await expect(revokeAppCertificate(ctx, apb, fp, 'admin:root')).rejects.toMatchObject({ code: 'NOT_FOUND' });

    const refusals = await journal.list({ type: 'policy.refused' });
    expect(refusals.length).toBe(matrix.filter((m) => m[2] !== 'OK').length + 4);
    expect(refusals[0]).toMatchObject({ actor: `app:${fp}`, subject: apb, details: { action: 'open-bal', code: 'BAL_NOT_MEMBER' } });
  });
});
