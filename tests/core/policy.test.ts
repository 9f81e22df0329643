import { describe, expect, it } from 'vitest';
import { catalogue } from '../../core/errors.js';
import {
  adminAccountInScope,
  adminScope,
  decideAdmin,
  decideDirectoryRead,
  decideDmpRule,
  decideOpenBal,
  decidePeer,
  decideSendAs,
  decideTrustSpace,
  dnEquals,
  Policy,
  wireForms,
  verdictError,
  type AdminPrincipal,
  type MailboxFacts,
  type Principal,
  type Verdict,
} from '../../core/policy/index.js';
import type { JournalEventInput } from '../../core/journal/index.js';

const now = new Date('2026-03-01T12:00:00Z');
const later = new Date('2027-01-01T00:00:00Z');
const earlier = new Date('2026-01-01T00:00:00Z');

const holder: Principal = { kind: 'person', id: '1', login: 'jeanne', idnps: '899999999901', auth: 'password' };
const secretary: Principal = { kind: 'person', id: '2', login: 'marie', idnps: null, auth: 'password+totp' };
const stranger: Principal = { kind: 'person', id: '3', login: 'paul', idnps: '899999999903', auth: 'certificate' };
const app: Principal = { kind: 'application', fingerprint: 'AA:BB:CC' };
const otherApp: Principal = { kind: 'application', fingerprint: 'ddeeff' };
const revokedApp: Principal = { kind: 'application', fingerprint: '112233' };
const expiredApp: Principal = { kind: 'application', fingerprint: '445566' };
const admin: Principal = { kind: 'admin', login: 'root', role: 'national', domains: [], structures: [] };

const per: MailboxFacts = { address: 'jeanne.martin@a.fr', type: 'PER', status: 'active', domain: 'a.fr', ownerId: '899999999901', memberIds: [], applications: [] };
const org: MailboxFacts = { address: 'secretariat@a.fr', type: 'ORG', status: 'active', domain: 'a.fr', ownerId: '1750000001', memberIds: ['2', '1'], applications: [] };
const apb: MailboxFacts = {
  address: 'labo@a.fr',
  type: 'APP',
  status: 'active',
  domain: 'a.fr',
  ownerId: '1750000001',
  memberIds: [],
  applications: [
    { fingerprint: 'aabbcc', notAfter: later, revokedAt: null },
    { fingerprint: '112233', notAfter: later, revokedAt: earlier },
    { fingerprint: '445566', notAfter: earlier, revokedAt: null },
  ],
};
const closed = (b: MailboxFacts): MailboxFacts => ({ ...b, status: 'closed' });

const code = (v: Verdict) => (v.ok ? 'OK' : v.code);

describe('open / send-as decision matrix', () => {
  // [principal, mailbox, expected open, expected send-as]
  const cases: Array<[string, Principal, MailboxFacts, string, string]> = [
    ['PER holder', holder, per, 'OK', 'OK'],
    ['PER other professional', stranger, per, 'BAL_NOT_MEMBER', 'SEND_AS_FORBIDDEN'],
    ['PER staff without national id', secretary, per, 'BAL_NOT_MEMBER', 'SEND_AS_FORBIDDEN'],
    ['PER application', app, per, 'BAL_NOT_MEMBER', 'SEND_AS_FORBIDDEN'],
    ['PER admin', admin, per, 'BAL_NOT_MEMBER', 'SEND_AS_FORBIDDEN'],
    ['PER closed, holder', holder, closed(per), 'BAL_CLOSED', 'SEND_AS_FORBIDDEN'],
    ['ORG member', secretary, org, 'OK', 'OK'],
    ['ORG other member', holder, org, 'OK', 'OK'],
    ['ORG non-member', stranger, org, 'BAL_NOT_MEMBER', 'SEND_AS_FORBIDDEN'],
    ['ORG application', app, org, 'BAL_NOT_MEMBER', 'SEND_AS_FORBIDDEN'],
    ['ORG closed, member', secretary, closed(org), 'BAL_CLOSED', 'SEND_AS_FORBIDDEN'],
    ['APP registered certificate (colon form)', app, apb, 'OK', 'OK'],
    ['APP wrong certificate', otherApp, apb, 'BAL_NOT_MEMBER', 'SEND_AS_FORBIDDEN'],
    ['APP revoked registration', revokedApp, apb, 'BAL_NOT_MEMBER', 'SEND_AS_FORBIDDEN'],
    ['APP expired certificate', expiredApp, apb, 'BAL_NOT_MEMBER', 'SEND_AS_FORBIDDEN'],
    ['APP person', holder, apb, 'BAL_NOT_MEMBER', 'SEND_AS_FORBIDDEN'],
    ['APP closed, registered certificate', app, closed(apb), 'BAL_CLOSED', 'SEND_AS_FORBIDDEN'],
  ];
  it.each(cases)('%s', (_name, p, bal, open, send) => {
    expect(code(decideOpenBal(p, bal.address, bal, now))).toBe(open);
    expect(code(decideSendAs(p, bal.address, bal, now))).toBe(send);
  });

  it('an unknown mailbox is refused for everyone', () => {
    expect(code(decideOpenBal(holder, 'nobody@a.fr', null, now))).toBe('BAL_UNKNOWN');
    expect(code(decideSendAs(holder, 'nobody@a.fr', null, now))).toBe('SEND_AS_FORBIDDEN');
  });

  it('a mailbox type it does not know is refused (no explicit allow)', () => {
    const odd = { ...per, type: 'XYZ' } as unknown as MailboxFacts;
    expect(code(decideOpenBal(holder, odd.address, odd, now))).toBe('BAL_NOT_MEMBER');
  });

  it('refusals say why, in a sentence, and map to every wire form', () => {
    const v = decideOpenBal(stranger, per.address, per, now);
    expect(v.ok).toBe(false);
    if (v.ok) return;
    expect(v.reason).toBe('person paul may not open the mailbox jeanne.martin@a.fr: it is the personal mailbox of another professional');
    expect(wireForms(v)).toEqual({ smtp: { code: 550, enhanced: '5.7.1' }, imap: { kind: 'NO', code: 'AUTHORIZATIONFAILED' }, http: 403 });
    expect(verdictError(v).message).toBe(v.reason);
    expect(verdictError(v).status).toBe(403);
    const s = decideSendAs(stranger, per.address, per, now);
    expect(!s.ok && wireForms(s).smtp).toEqual({ code: 553, enhanced: '5.7.1' });
  });
});

describe('the DMP rule of a box', () => {
  it('only a member with a national id (a health professional) sets it, only on an active organisational box', () => {
    expect(code(decideDmpRule(holder, org.address, org, now))).toBe('OK');
    expect(code(decideDmpRule(secretary, org.address, org, now))).toBe('DMP_RULE_FORBIDDEN');
    expect(code(decideDmpRule(stranger, org.address, org, now))).toBe('DMP_RULE_FORBIDDEN');
    expect(code(decideDmpRule(app, org.address, org, now))).toBe('DMP_RULE_FORBIDDEN');
    expect(code(decideDmpRule(admin, org.address, org, now))).toBe('DMP_RULE_FORBIDDEN');
    expect(code(decideDmpRule(holder, per.address, per, now))).toBe('DMP_RULE_FORBIDDEN');
    expect(code(decideDmpRule(holder, org.address, { ...org, status: 'closed' }, now))).toBe('BAL_CLOSED');
    expect(code(decideDmpRule(holder, 'x@a.fr', null, now))).toBe('BAL_UNKNOWN');
    const why = decideDmpRule(secretary, org.address, org, now);
    expect(!why.ok && why.reason).toMatch(/health professional/);
  });
});

describe('admin scope', () => {
  const regional: AdminPrincipal = { kind: 'admin', login: 'ars-bzh', role: 'regional', domains: ['bzh.mssante.fr'], structures: ['1350000001'] };
  const mb = (address: string, structureId?: string) => ({ kind: 'mailbox' as const, address, domain: address.split('@')[1], structureId });

  it('national acts anywhere, global operations included', () => {
    expect(code(decideAdmin(admin as AdminPrincipal, [{ kind: 'global', what: 'whitelist import' }]))).toBe('OK');
    expect(code(decideAdmin(admin as AdminPrincipal, [mb('x@elsewhere.fr')]))).toBe('OK');
  });
  it('regional acts on its domains and its structures only', () => {
    expect(code(decideAdmin(regional, [mb('a@BZH.mssante.fr')]))).toBe('OK');
    expect(code(decideAdmin(regional, [mb('a@paris.mssante.fr', '1350000001')]))).toBe('OK');
    expect(code(decideAdmin(regional, [mb('a@paris.mssante.fr', '1750000001')]))).toBe('ADMIN_OUT_OF_SCOPE');
    expect(code(decideAdmin(regional, [mb('a@bzh.mssante.fr'), mb('b@paris.mssante.fr')]))).toBe('ADMIN_OUT_OF_SCOPE');
    expect(code(decideAdmin(regional, [{ kind: 'global', what: 'whitelist import' }]))).toBe('ADMIN_OUT_OF_SCOPE');
    expect(code(decideAdmin(regional, []))).toBe('ADMIN_OUT_OF_SCOPE');
  });
  it('regional reads about its own account, not about another admin account', () => {
    expect(code(decideAdmin(regional, [{ kind: 'account', login: 'ars-bzh' }]))).toBe('OK');
    expect(code(decideAdmin(regional, [{ kind: 'account', login: 'ars-idf' }]))).toBe('ADMIN_OUT_OF_SCOPE');
    expect(code(decideAdmin(admin as AdminPrincipal, [{ kind: 'account', login: 'ars-idf' }]))).toBe('OK');
  });
  it('regional manages regional accounts inside its own scope only: no national account, no wider scope', () => {
    const acct = (login: string, role: 'national' | 'regional', domains: string[], structures: string[] = []) => ({ kind: 'admin' as const, login, role, domains, structures });
    expect(code(decideAdmin(regional, [acct('ars-bzh-2', 'regional', ['BZH.mssante.fr'])]))).toBe('OK');
    expect(code(decideAdmin(regional, [acct('ars-bzh-2', 'regional', ['bzh.mssante.fr'], ['1350000001'])]))).toBe('OK');
    expect(code(decideAdmin(regional, [acct('nat', 'national', [])]))).toBe('ADMIN_OUT_OF_SCOPE');
    expect(code(decideAdmin(regional, [acct('ars-bzh-2', 'regional', ['bzh.mssante.fr', 'paris.mssante.fr'])]))).toBe('ADMIN_OUT_OF_SCOPE');
    expect(code(decideAdmin(regional, [acct('ars-bzh-2', 'regional', [], ['1750000001'])]))).toBe('ADMIN_OUT_OF_SCOPE');
    // Its own account, widened: refused like any other.
    expect(code(decideAdmin(regional, [acct('ars-bzh', 'regional', ['bzh.mssante.fr', 'paris.mssante.fr'])]))).toBe('ADMIN_OUT_OF_SCOPE');
    expect(code(decideAdmin(admin as AdminPrincipal, [acct('nat', 'national', [])]))).toBe('OK');
    expect(adminAccountInScope(adminScope(regional), { role: 'regional', domains: ['bzh.mssante.fr'], structures: [] })).toBe(true);
    expect(adminAccountInScope(adminScope(regional), { role: 'national', domains: [], structures: [] })).toBe(false);
  });
  it('an account that must enrol a second factor first may do nothing else, national or not', () => {
    expect(code(decideAdmin({ ...(admin as AdminPrincipal), mustEnrolSecondFactor: true }, [{ kind: 'global', what: 'whitelist import' }]))).toBe('ADMIN_TOTP_ENROLMENT_REQUIRED');
    expect(code(decideAdmin({ ...regional, mustEnrolSecondFactor: true }, [{ kind: 'account', login: 'ars-bzh' }]))).toBe('ADMIN_TOTP_ENROLMENT_REQUIRED');
  });
  it('an unknown role is refused', () => {
    expect(code(decideAdmin({ ...regional, role: 'superuser' as never }, [mb('a@bzh.mssante.fr')]))).toBe('ADMIN_OUT_OF_SCOPE');
  });
});

describe('espace de confiance', () => {
  const entry = { domain: 'autre-operateur.fr', operatorDn: 'CN=mx.autre-operateur.fr,OU=123,O=Autre Opérateur,ST=Paris (75),C=FR' };
  it('own domains are inside, listed domains are inside, others are refused', () => {
    expect(code(decideTrustSpace('MSSANTE.localhost.', null, ['mssante.localhost']))).toBe('OK');
    expect(code(decideTrustSpace('autre-operateur.fr', entry, []))).toBe('OK');
    const v = decideTrustSpace('gmail.com', null, [], 'recipient ');
    expect(v.ok ? '' : v.reason).toBe('recipient domain gmail.com is not in the MSSanté trust space (it is not on the liste blanche)');
    expect(code(decideTrustSpace('', null, []))).toBe('DOMAIN_NOT_WHITELISTED');
  });
  it('a peer must be listed, and with requireDn present the recorded certificate subject', () => {
    const peer = { kind: 'peer' as const, domain: 'autre-operateur.fr', subject: 'C=FR\nST=Paris (75)\nO=Autre Opérateur\nOU=123\nCN=mx.autre-operateur.fr' };
    expect(code(decidePeer(peer, entry, true))).toBe('OK');
    expect(code(decidePeer({ ...peer, subject: 'C=FR\nO=Autre Opérateur\nOU=123\nCN=evil.example' }, entry, true))).toBe('PEER_CERT_MISMATCH');
    expect(code(decidePeer({ ...peer, subject: 'CN=evil.example' }, entry, false))).toBe('OK');
    expect(code(decidePeer(peer, null, false))).toBe('DOMAIN_NOT_WHITELISTED');
  });
  it('compares distinguished names across their usual spellings', () => {
    expect(dnEquals('CN=a,O=B\\, inc,C=FR', 'C=FR\nO=b, inc\nCN=A')).toBe(true);
    expect(dnEquals('CN=a,O=B,C=FR', 'CN=a,O=B')).toBe(false);
    expect(dnEquals('', '')).toBe(false);
  });
});

describe('reading the directory (FHIR API)', () => {
  const cert = (verified: boolean, error?: string) => ({ certificate: { fingerprint: 'ab'.repeat(32), subject: 'CN=dpi.hopital.fr', verified, ...(error ? { error } : {}) } });

  it('admits a verified certificate of the trust space, and nothing else', () => {
    expect(decideDirectoryRead(cert(true))).toEqual({ ok: true });
    for (const [c, why] of [
      [{ certificate: null }, /no client certificate/],
      [cert(false, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'), /CN=dpi\.hopital\.fr\) is not accepted in the trust space \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)/],
      [cert(false, 'CERT_REVOKED'), /CERT_REVOKED/],
    ] as const) {
      const v = decideDirectoryRead(c);
      expect(code(v)).toBe('DIRECTORY_READ_FORBIDDEN');
      expect(!v.ok && v.reason).toMatch(why);
      expect(!v.ok && wireForms(v).http).toBe(403);
    }
  });

  it('journals a refusal with the certificate as actor, or anonymous', async () => {
    const events: JournalEventInput[] = [];
    const policy = new Policy({ mailbox: async () => null, trustSpaceEntry: async () => null }, { append: async (ev) => void events.push(ev) }, { localDomains: ['a.fr'] });
    expect(await policy.mayReadDirectory(cert(true), 'fhir GET /fhir/r4/Practitioner')).toEqual({ ok: true });
    expect(events).toHaveLength(0);
    await policy.mayReadDirectory({ certificate: null }, 'fhir GET /fhir/r4/metadata', { front: 'fhir', remote: '192.0.2.9' });
    await policy.mayReadDirectory(cert(false, 'CERT_HAS_EXPIRED'), 'fhir GET /fhir/r4/Organization');
    expect(events.map((e) => [e.actor, e.subject, e.details?.action, e.details?.code])).toEqual([
      ['anonymous', 'fhir GET /fhir/r4/metadata', 'directory-read', 'DIRECTORY_READ_FORBIDDEN'],
      [`app:${'ab'.repeat(32)}`, 'fhir GET /fhir/r4/Organization', 'directory-read', 'DIRECTORY_READ_FORBIDDEN'],
    ]);
    expect(events[0].details).toMatchObject({ front: 'fhir', remote: '192.0.2.9' });
  });
});

describe('Policy: lookups, fail closed, journalled refusals', () => {
  const setup = (mailbox: (a: string) => Promise<MailboxFacts | null>) => {
    const events: JournalEventInput[] = [];
    const policy = new Policy(
      { mailbox, trustSpaceEntry: async (d) => (d === 'autre-operateur.fr' ? { domain: d, operatorDn: null } : null) },
      { append: async (ev) => void events.push(ev) },
      { localDomains: ['a.fr'], now: () => now },
    );
    return { policy, events };
  };

  it('allows without journalling a refusal, refuses with a policy.refused event', async () => {
    const { policy, events } = setup(async (a) => [per, org, apb].find((b) => b.address === a) ?? null);
    expect(await policy.mayOpenBal(holder, 'Jeanne.Martin@A.fr')).toEqual({ ok: true });
    expect(events).toHaveLength(0);
    const v = await policy.maySendAs(stranger, 'secretariat@a.fr', { front: 'smtp-submission', remote: '192.0.2.1' });
    expect(code(v)).toBe('SEND_AS_FORBIDDEN');
    expect(events).toEqual([
      {
        type: 'policy.refused',
        actor: 'person:paul',
        subject: 'secretariat@a.fr',
        details: expect.objectContaining({ action: 'send-as', code: 'SEND_AS_FORBIDDEN', principal: 'person', auth: 'certificate', front: 'smtp-submission', remote: '192.0.2.1', reason: expect.stringContaining('not a member') }),
      },
    ]);
  });

  it('a lookup error is a temporary refusal, never an accept', async () => {
    const { policy, events } = setup(async () => {
      throw new Error('connection refused');
    });
    const v = await policy.mayOpenBal(holder, per.address);
    expect(v).toEqual({ ok: false, code: 'DIRECTORY_UNAVAILABLE', temporary: true, reason: catalogue.DIRECTORY_UNAVAILABLE.text });
    expect(!v.ok && wireForms(v).smtp).toEqual({ code: 451, enhanced: '4.4.3' });
    expect(events[0].details).toMatchObject({ temporary: true, cause: 'connection refused' });
  });

  it('trust space: own domains without lookup, others through the liste blanche, failures temporary', async () => {
    const { policy, events } = setup(async () => null);
    expect(code(await policy.inTrustSpace('a.fr'))).toBe('OK');
    expect(code(await policy.inTrustSpace('autre-operateur.fr'))).toBe('OK');
    expect(code(await policy.inTrustSpace('gmail.com', 'recipient '))).toBe('DOMAIN_NOT_WHITELISTED');
    expect(events.map((e) => [e.subject, e.details?.action])).toEqual([['gmail.com', 'trust-space']]);
    const broken = new Policy({ mailbox: async () => null, trustSpaceEntry: async () => Promise.reject(new Error('db down')) }, { append: async () => {} }, { localDomains: [] });
    expect(await broken.inTrustSpace('x.fr')).toMatchObject({ ok: false, temporary: true });
    expect(await broken.mayPeerConnect({ kind: 'peer', domain: 'x.fr', subject: 'CN=x.fr' })).toMatchObject({ ok: false, temporary: true });
  });

  it('a journal that cannot write does not turn a refusal into an accept', async () => {
    const policy = new Policy({ mailbox: async () => per, trustSpaceEntry: async () => null }, { append: () => Promise.reject(new Error('disk full')) }, { localDomains: [] });
    expect(code(await policy.mayOpenBal(stranger, per.address))).toBe('BAL_NOT_MEMBER');
  });

  it('admin refusals are journalled with the admin as actor', async () => {
    const { policy, events } = setup(async () => null);
    const regional: AdminPrincipal = { kind: 'admin', login: 'ars', role: 'regional', domains: ['b.fr'], structures: [] };
    expect(code(await policy.mayAdminister(regional, [{ kind: 'mailbox', address: 'x@a.fr', domain: 'a.fr' }], { front: 'admin-api' }))).toBe('ADMIN_OUT_OF_SCOPE');
    expect(events[0]).toMatchObject({ type: 'policy.refused', actor: 'admin:ars', subject: 'x@a.fr', details: { action: 'administer', front: 'admin-api' } });
  });
});
