import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_RPPS } from '../../certs/pki.js';
import { buildCdaDocument } from '../../dmp/cda.js';
import { documentsOfMessage } from '../../dmp/documents.js';
import { xdmLimits } from '../../dmp/xdm/read.js';
import type { WebmailService } from '../../webmail-api/index.js';
import { freePorts, startOperator, until, type TestOperator } from '../helpers/operator.js';
import { testPki, type TestPki } from '../helpers/pki.js';
import { call, formData, startTestWebmail, type Reply, mime, expectProblem } from './stack.js';

// One operator (PGlite, slapd, Dovecot, SMTP, IMAP proxy) and the webmail API beside it,
// wired to its fronts as bin/platform.ts wires it. Every request below goes over HTTPS, then
// over IMAP / SMTP as the person with their session token.

const D = 'mssante.localhost';
let pki: TestPki;
let op: TestOperator;
let web: WebmailService;
/** The webmail's processes right after its start, before any connection. */
let workersBeforeFirstConnection: number[] = [];
let ca: string;
const who: Record<string, { login: string; address: string; password: string }> = {};
let orgBox = '';
const handoffs: Array<{ bal: string; folder: string; uid: number; masking?: string; raw: Buffer; login: string }> = [];
const MAX_UPLOAD = 300_000;

const api = (method: string, path: string, o: Parameters<typeof call>[4] = {}) => call(web.url, ca, method, path, o);
const login = async (u: { login: string; password: string }) => {
  const r = await api('POST', '/api/v1/login', { json: { login: u.login, password: u.password } });
  expect(r.status).toBe(200);
  return r.json().token as string;
};
const tokens: Record<string, string> = {};
const enc = encodeURIComponent;

/** Messages put straight into a box's INBOX (Dovecot, master user), with their arrival dates. */
async function seed(address: string, messages: Array<{ raw: Buffer; date: Date; flags?: string[] }>) {
  const c = await op.imap(address);
  try {
    for (const m of messages) await c.append('INBOX', m.raw, m.flags ?? [], m.date);
  } finally {
    await c.logout();
  }
}
const inbox = async (address: string, folder = 'INBOX') => {
  const c = await op.imap(address);
  try {
    await c.mailboxOpen(folder);
    const out: Array<{ uid: number; source: Buffer; flags: Set<string> }> = [];
    for await (const m of c.fetch('1:*', { uid: true, source: true, flags: true })) out.push({ uid: m.uid, source: m.source!, flags: m.flags! });
    return out;
  } catch {
    return [];
  } finally {
    await c.logout();
  }
};

const PDF = Buffer.concat([Buffer.from('%PDF-1.4\n'), randomBytes(5000), Buffer.from('\n%%EOF\n')]);

beforeAll(async () => {
  pki = await testPki();
  ca = pki.read('ca.pem');
  op = await startOperator({ pki, domain: D, cert: 'server', ports: await freePorts(), peers: [] });
  who.martin = await op.person('dr.martin', `8${DEV_RPPS}`);
  who.secretaire = await op.person('secretaire', '899999999902');
  who.intrus = await op.person('intrus', '899999999903');
  orgBox = await op.bal({ local: 'secretariat.cardio', type: 'ORG', owner: '1750000001', service: 'Cardiologie', description: 'Secrétariat de cardiologie' });
  await op.member(orgBox, 'secretaire');
  await op.synced();
  web = await startTestWebmail(
    op,
    {
      documentsOf: (raw) => documentsOfMessage(raw, xdmLimits(op.config)),
      dmpHandoff: async (r) => {
        handoffs.push({ bal: r.bal, folder: r.folder, uid: r.uid, masking: r.masking, raw: r.raw, login: r.principal.login });
        return { outcome: 'success', submissions: [{ status: 'success', documentIds: ['1.2.3'], errors: [], bytes: r.raw }] };
      },
    },
    { maxUpload: MAX_UPLOAD },
  );
  workersBeforeFirstConnection = web.pids();

  // Martin's INBOX: seven messages with distinct senders, subjects and arrival dates.
  const base = Date.UTC(2026, 0, 10, 8, 0, 0);
  const letters = ['Bilan sanguin', 'Compte rendu opératoire', 'Ordonnance', 'Radiographie thorax', 'Rendez-vous', 'Analyse urinaire', 'Échographie'];
  const senders = ['zoe.labo', 'alice.radio', 'marc.pharma', 'bruno.med', 'claire.sec', 'yves.labo', 'david.echo'];
  const msgs = await Promise.all(
    letters.map(async (subject, i) => ({
      raw: await mime({ from: `${senders[i]}@${D}`, to: who.martin.address, subject, text: `Texte ${subject} numéro ${i + 10}`, messageId: `<seed${i}@${D}>`, date: new Date(base + i * 3600_000) }),
      date: new Date(base + i * 3600_000),
      flags: i < 3 ? ['\\Seen'] : [],
    })),
  );
  msgs.push({
    raw: await mime({
      from: `${who.secretaire.address}`,
      to: who.martin.address,
      subject: 'Résultat avec pièce jointe',
      text: 'Voir la pièce jointe.',
      html: '<p onclick="steal()">Bonjour <b>docteur</b></p><script>alert(document.cookie)</script><img src="https://tracker.example/p.gif"><a href="javascript:alert(1)">lien</a><a href="https://example.org/x">site</a>',
      messageId: `<pj@${D}>`,
      headers: { 'Disposition-Notification-To': who.secretaire.address, 'X-MSS-NIL': 'DPI-Test/1' },
      attachments: [{ filename: 'résultat.pdf', content: PDF, contentType: 'application/pdf' }],
    }),
    date: new Date(base + 10 * 3600_000),
    flags: [],
  });
  await seed(who.martin.address, msgs);
  await seed(orgBox, [{ raw: await mime({ from: who.martin.address, to: orgBox, subject: 'Pour le secrétariat', text: 'Merci de fixer un rendez-vous.', messageId: `<org1@${D}>` }), date: new Date(base) }]);
  for (const k of ['martin', 'secretaire', 'intrus']) tokens[k] = await login(who[k]);
});

afterAll(async () => {
  await web?.stop();
  await op?.stop();
});

describe('sessions', () => {
  it('login gives a session token and the person; the journal records it', async () => {
    const r = await api('POST', '/api/v1/login', { json: { login: who.martin.login, password: who.martin.password } });
    expect(r.status).toBe(200);
    const b = r.json();
    expect(b.token).toMatch(/^mss_wt_[A-Za-z0-9_-]{40,}$/);
    expect(new Date(b.expiresAt).getTime()).toBeGreaterThan(Date.now());
    expect(b.person).toEqual({ login: 'dr.martin', idnps: `8${DEV_RPPS}`, auth: 'password' });
    const ev = await op.platform.journal.list({ type: 'webmail.login' });
    expect(ev.some((e) => e.actor === 'person:dr.martin')).toBe(true);
  });

  it('a wrong password is 401 problem+json and journalled; no token is given', async () => {
    const r = await api('POST', '/api/v1/login', { json: { login: who.martin.login, password: 'pas-le-bon-mot-de-passe' } });
    const p = expectProblem(r, 401, 'AUTH_FAILED');
    expect(p.detail).toBe('authentication failed: unknown user name or wrong credential');
    expect(r.json().token).toBeUndefined();
    const ev = await op.platform.journal.list({ type: 'webmail.login.failed' });
    expect(ev.some((e) => e.subject === 'dr.martin' && e.details.failure === 'bad-password')).toBe(true);
  });

  it('parallel wrong passwords lock the account after its budget (429 LOGIN_THROTTLED), the right one too; the lockout is journalled once', async () => {
    const p = await op.person('verrou', '899999999909');
    const budget = op.config.auth.maxFailuresPerAccount;
    const guesses = await Promise.all(Array.from({ length: budget + 3 }, (_, i) => api('POST', '/api/v1/login', { json: { login: p.login, password: `devinette-${i}` } })));
    expect(guesses.filter((r) => r.status === 401)).toHaveLength(budget);
    for (const r of guesses.filter((x) => x.status !== 401)) expect(expectProblem(r, 429, 'LOGIN_THROTTLED').detail).toBe('too many failed logins for this account; try again in 15 min');
    expectProblem(await api('POST', '/api/v1/login', { json: { login: p.address, password: p.password } }), 429, 'LOGIN_THROTTLED');
    expect(await op.platform.journal.list({ type: 'auth.locked', subject: 'verrou' })).toMatchObject([{ details: { key: 'account', failures: budget, front: 'webmail' } }]);
    const failed = await op.platform.journal.list({ type: 'webmail.login.failed', subject: p.login });
    expect(failed.filter((e) => e.details.failure === 'throttled')).toHaveLength(3);
  }, 300_000);

  it('a session token is not a password: it cannot log in to mint another', async () => {
    expectProblem(await api('POST', '/api/v1/login', { json: { login: who.martin.login, password: tokens.martin } }), 401, 'AUTH_FAILED');
  });

  it('no token, or an unknown one, is 401 with WWW-Authenticate', async () => {
    const none = await api('GET', '/api/v1/bals');
    expectProblem(none, 401, 'WEBMAIL_SESSION_INVALID');
    expect(none.headers['www-authenticate']).toBe('Bearer realm="mss-webmail"');
    expectProblem(await api('GET', '/api/v1/bals', { token: `mss_wt_${randomBytes(32).toString('base64url')}` }), 401, 'WEBMAIL_SESSION_INVALID');
  });

  it('logout ends the token: the next request is 401', async () => {
    const t = await login(who.martin);
    expect((await api('GET', `/api/v1/bals/${who.martin.address}/folders`, { token: t })).status).toBe(200);
    expect((await api('POST', '/api/v1/logout', { token: t })).status).toBe(204);
    expectProblem(await api('GET', `/api/v1/bals/${who.martin.address}/folders`, { token: t }), 401, 'WEBMAIL_SESSION_INVALID');
    const ev = await op.platform.journal.list({ type: 'webmail.logout' });
    expect(ev.some((e) => e.actor === 'person:dr.martin')).toBe(true);
  });
});

describe('boxes and folders', () => {
  it('lists the boxes a person may open: their own, and the organisational ones they belong to', async () => {
    const r = await api('GET', '/api/v1/bals', { token: tokens.secretaire });
    expect(r.status).toBe(200);
    expect(r.json()).toEqual(
      expect.arrayContaining([
        { address: who.secretaire.address, type: 'PER', description: null },
        { address: orgBox, type: 'ORG', description: 'Secrétariat de cardiologie' },
      ]),
    );
    expect((await api('GET', '/api/v1/bals', { token: tokens.intrus })).json().map((b: { address: string }) => b.address)).toEqual([who.intrus.address]);
  });

  it('lists folders with counts', async () => {
    const r = await api('GET', `/api/v1/bals/${who.martin.address}/folders`, { token: tokens.martin });
    expect(r.status).toBe(200);
    const f = r.json() as Array<{ path: string; specialUse: string | null; messages: number; unseen: number }>;
    const inboxF = f.find((x) => x.path === 'INBOX')!;
    expect(inboxF.messages).toBeGreaterThanOrEqual(8);
    expect(f.find((x) => x.specialUse === '\\Trash')).toBeTruthy();
    expect(f.find((x) => x.specialUse === '\\Sent')).toBeTruthy();
  });

  it('a member opens the organisational box', async () => {
    const r = await api('GET', `/api/v1/bals/${orgBox}/folders/INBOX/messages`, { token: tokens.secretaire });
    expect(r.status).toBe(200);
    expect(r.json().messages.map((m: { subject: string }) => m.subject)).toContain('Pour le secrétariat');
  });

  it('a non-member opening the organisational box gets 403 with the policy sentence, and the refusal is journalled', async () => {
    const r = await api('GET', `/api/v1/bals/${orgBox}/folders`, { token: tokens.intrus });
    const p = expectProblem(r, 403, 'WEBMAIL_BAL_REFUSED');
    expect(p.detail).toContain(`may not open the mailbox ${orgBox}`);
    const ev = await op.platform.journal.list({ type: 'policy.refused' });
    expect(ev.some((e) => e.actor === 'person:intrus' && e.subject === orgBox && e.details.action === 'open-bal' && e.details.front === 'imap')).toBe(true);
    // Reading a message of that box is refused the same way.
    expectProblem(await api('GET', `/api/v1/bals/${orgBox}/messages/INBOX/1`, { token: tokens.intrus }), 403, 'WEBMAIL_BAL_REFUSED');
  });
});

describe('message list', () => {
  const list = (q: string) => api('GET', `/api/v1/bals/${who.martin.address}/folders/INBOX/messages${q}`, { token: tokens.martin });

  it('pages, newest first by default', async () => {
    const p1 = (await list('?pageSize=3')).json();
    const p2 = (await list('?pageSize=3&page=2')).json();
    expect(p1.total).toBeGreaterThanOrEqual(8);
    expect(p1.messages).toHaveLength(3);
    expect(p1.messages[0].subject).toBe('Résultat avec pièce jointe');
    expect(p1.messages.map((m: { subject: string }) => m.subject).slice(1)).toEqual(['Échographie', 'Analyse urinaire']);
    expect(p2.messages.map((m: { subject: string }) => m.subject)).toEqual(['Rendez-vous', 'Radiographie thorax', 'Ordonnance']);
    expect(p1.messages[0]).toMatchObject({ from: [{ address: who.secretaire.address }], hasAttachments: true, flags: { seen: false } });
    const asc = (await list('?pageSize=2&order=asc')).json();
    expect(asc.messages.map((m: { subject: string }) => m.subject)).toEqual(['Bilan sanguin', 'Compte rendu opératoire']);
    const beyond = (await list('?pageSize=50&page=9')).json();
    expect(beyond.messages).toEqual([]);
  });

  it('sorts by sender and by subject', async () => {
    const from = (await list('?sort=from&order=asc&pageSize=3')).json();
    expect(from.messages.map((m: { from: Array<{ address: string }> }) => m.from[0].address)).toEqual([`alice.radio@${D}`, `bruno.med@${D}`, `claire.sec@${D}`]);
    const subj = (await list('?sort=subject&order=asc&pageSize=3')).json();
    expect(subj.messages.map((m: { subject: string }) => m.subject)).toEqual(['Analyse urinaire', 'Bilan sanguin', 'Compte rendu opératoire']);
  });

  it('searches the text and filters unseen', async () => {
    const s = (await list(`?q=${enc('Radiographie')}`)).json();
    expect(s.total).toBe(1);
    expect(s.messages[0].subject).toBe('Radiographie thorax');
    // Every word must be in the message ("numéro" is in all seven).
    const body = (await list(`?q=${enc('urinaire numéro')}`)).json();
    expect(body.messages.map((m: { subject: string }) => m.subject)).toEqual(['Analyse urinaire']);
    // A two-character word counts (a result number, a room, a dose): "numéro 13" is in one.
    const two = (await list(`?q=${enc('numéro 13')}`)).json();
    expect(two.messages.map((m: { subject: string }) => m.subject)).toEqual(['Radiographie thorax']);
    const unseen = (await list('?unseen=true&pageSize=200')).json();
    expect(unseen.messages.map((m: { subject: string }) => m.subject)).not.toContain('Bilan sanguin');
    expect(unseen.messages.every((m: { flags: { seen: boolean } }) => !m.flags.seen)).toBe(true);
  });

  it('finds a message by a word of its body alone, through the API and over IMAP through the proxy, from the full-text index', async () => {
    const c = await op.imap(who.martin.address);
    try {
      await c.mailboxCreate('Archives');
      await c.append('Archives', await mime({ from: `yves.labo@${D}`, to: who.martin.address, subject: 'Culture bactérienne', text: 'Présence de pneumocoque, sensible à l’amoxicilline.' }));
      await c.append('Archives', await mime({ from: `yves.labo@${D}`, to: who.martin.address, subject: 'Culture de contrôle', text: 'Culture stérile.' }));
    } finally {
      await c.logout();
    }
    // Indexed as it was saved (fts_autoindex), before any search: the box has its Xapian index.
    const [local, domain] = [who.martin.address.split('@')[0], who.martin.address.split('@')[1]];
    const index = join(op.platform.mailstore.mailDir, domain, local, 'Maildir', 'xapian-indexes');
    await until(async () => existsSync(index) && readdirSync(index).some((d) => d.startsWith('db_')));
    const l = (await api('GET', `/api/v1/bals/${who.martin.address}/folders/Archives/messages?q=${enc('pneumocoque')}`, { token: tokens.martin })).json();
    expect(l.messages.map((m: { subject: string }) => m.subject)).toEqual(['Culture bactérienne']);
    const none = (await api('GET', `/api/v1/bals/${who.martin.address}/folders/Archives/messages?q=${enc('streptocoque')}`, { token: tokens.martin })).json();
    expect(none).toMatchObject({ total: 0, messages: [] });
    // The same search by a mail client, as the person, through the IMAP proxy.
    const imap = new ImapFlow({ host: '127.0.0.1', port: op.platform.imap!.ports.imaps, secure: true, tls: { ca, servername: op.config.operator.hostname }, auth: { user: who.martin.address, pass: who.martin.password }, logger: false });
    await imap.connect();
    try {
      await imap.mailboxOpen('Archives', { readOnly: true });
      const uids = (await imap.search({ body: 'pneumocoque' }, { uid: true })) || [];
      expect(uids).toHaveLength(1);
      const m = await imap.fetchOne(String(uids[0]), { envelope: true }, { uid: true });
      expect(m && m.envelope?.subject).toBe('Culture bactérienne');
    } finally {
      await imap.logout();
    }
  });

  it('an unknown folder is 404', async () => {
    expectProblem(await api('GET', `/api/v1/bals/${who.martin.address}/folders/Nowhere/messages`, { token: tokens.martin }), 404, 'NOT_FOUND');
  });

  it('refuses bad parameters with 400 problem+json', async () => {
    expect(expectProblem(await list('?pageSize=500'), 400, 'BAD_REQUEST').detail).toMatch(/pageSize must be <= 200/);
    expectProblem(await list('?sort=size'), 400, 'BAD_REQUEST');
    expectProblem(await list('?colour=blue'), 400, 'BAD_REQUEST');
    expectProblem(await api('GET', `/api/v1/bals/${enc(`${orgBox}*secretaire`)}/folders`, { token: tokens.martin }), 400, 'BAD_REQUEST');
    expectProblem(await api('GET', `/api/v1/bals/${who.martin.address}/messages/INBOX/0`, { token: tokens.martin }), 400, 'BAD_REQUEST');
    expectProblem(await api('POST', '/api/v1/login', { json: { login: 'x' } }), 400, 'BAD_REQUEST');
    expectProblem(await api('POST', '/api/v1/login', { json: { login: 'x', password: 'y', admin: true } }), 400, 'BAD_REQUEST');
  });
});

describe('reading a message', () => {
  let uid = 0;
  beforeAll(async () => {
    const l = (await api('GET', `/api/v1/bals/${who.martin.address}/folders/INBOX/messages?q=${enc('pièce jointe')}`, { token: tokens.martin })).json();
    uid = l.messages[0].uid;
  });

  it('parses headers, text and HTML — sanitised — and lists the attachments; reading marks it seen', async () => {
    const r = await api('GET', `/api/v1/bals/${who.martin.address}/messages/INBOX/${uid}`, { token: tokens.martin });
    expect(r.status).toBe(200);
    const m = r.json();
    expect(m).toMatchObject({ uid, subject: 'Résultat avec pièce jointe', messageId: `<pj@${D}>`, from: [{ address: who.secretaire.address }], dispositionNotificationTo: who.secretaire.address, flags: { seen: true } });
    expect(m.text.trim()).toBe('Voir la pièce jointe.');
    expect(m.headers).toEqual(expect.arrayContaining([{ name: 'x-mss-nil', value: 'DPI-Test/1' }]));
    expect(m.html).toContain('<b>docteur</b>');
    expect(m.html).not.toMatch(/script|onclick|alert|javascript:|tracker\.example/i);
    expect(m.html).toContain('<a href="https://example.org/x" rel="noopener noreferrer nofollow" target="_blank">site</a>');
    expect(m.attachments).toEqual([{ index: 0, part: '2', filename: 'résultat.pdf', contentType: 'application/pdf', size: PDF.length, contentId: null, inline: false }]);
    expect(m.documents).toBeUndefined();
    const [stored] = (await inbox(who.martin.address)).filter((x) => x.uid === uid);
    expect(stored.flags.has('\\Seen')).toBe(true);
  });

  it('downloads an attachment: same bytes, its type, as an attachment', async () => {
    const r = await api('GET', `/api/v1/bals/${who.martin.address}/messages/INBOX/${uid}/attachments/0`, { token: tokens.martin });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/pdf');
    expect(r.headers['content-disposition']).toBe(`attachment; filename="r_sultat.pdf"; filename*=UTF-8''r%C3%A9sultat.pdf`);
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.body.equals(PDF)).toBe(true);
    expectProblem(await api('GET', `/api/v1/bals/${who.martin.address}/messages/INBOX/${uid}/attachments/1`, { token: tokens.martin }), 404, 'NOT_FOUND');
    // The connection is usable after a download.
    expect((await api('GET', `/api/v1/bals/${who.martin.address}/messages/INBOX/${uid}?markSeen=false`, { token: tokens.martin })).status).toBe(200);
  });

  it('an unknown message is 404', async () => {
    expectProblem(await api('GET', `/api/v1/bals/${who.martin.address}/messages/INBOX/999999`, { token: tokens.martin }), 404, 'NOT_FOUND');
  });
});

describe('a message read again (webmail.renderCache)', () => {
  // The organisational box, read by its member: the second read is answered from the copy
  // rendered by the first, and is still checked, asked of IMAP and journalled as a read.
  let uid = 0;
  const path = () => `/api/v1/bals/${orgBox}/messages/INBOX/${uid}?markSeen=false`;
  beforeAll(async () => {
    const c = await op.imap(orgBox);
    try {
      const raw = await mime({ from: who.martin.address, to: orgBox, subject: 'Relu deux fois', text: 'Texte relu.', html: '<p onclick="x()">Relu <b>deux</b> fois</p><script>alert(1)</script>' });
      uid = appendedUid(await c.append('INBOX', raw, []));
    } finally {
      await c.logout();
    }
  });

  it('gives the same answer, asks IMAP for the message each time (the proxy journals both reads), and refuses as before', async () => {
    const mine = async () => (await op.platform.journal.list({ type: 'imap.login' })).filter((e) => e.actor === 'person:secretaire' && e.subject === orgBox).map((e) => e.details.session);
    const before = new Set(await mine());
    const t = await login(who.secretaire);
    const first = await api('GET', path(), { token: t });
    expect(first.status, first.body.toString()).toBe(200);
    expect(first.json()).toMatchObject({ uid, subject: 'Relu deux fois', flags: { seen: false } });
    expect(first.json().html).not.toMatch(/script|onclick/i);
    const again = await api('GET', path(), { token: t });
    expect(again.status).toBe(200);
    expect(again.json()).toEqual(first.json());
    // Reading marks it seen, from the copy too.
    expect((await api('GET', `/api/v1/bals/${orgBox}/messages/INBOX/${uid}`, { token: t })).json()).toMatchObject({ subject: 'Relu deux fois', flags: { seen: true } });
    expect((await inbox(orgBox)).find((x) => x.uid === uid)!.flags.has('\\Seen')).toBe(true);

    // A person who may not open the box gets the proxy's refusal, journalled, though a copy is kept.
    const refusedBefore = (await op.platform.journal.list({ type: 'policy.refused' })).filter((e) => e.actor === 'person:intrus' && e.subject === orgBox).length;
    expectProblem(await api('GET', path(), { token: tokens.intrus }), 403, 'WEBMAIL_BAL_REFUSED');
    expect((await op.platform.journal.list({ type: 'policy.refused' })).filter((e) => e.actor === 'person:intrus' && e.subject === orgBox).length).toBe(refusedBefore + 1);

    // Expunged since: 404, though a copy is kept.
    const c = await op.imap(orgBox);
    try {
      await c.mailboxOpen('INBOX');
      await c.messageDelete(String(uid), { uid: true });
    } finally {
      await c.logout();
    }
    expectProblem(await api('GET', path(), { token: t }), 404, 'NOT_FOUND');

    // Every read went to IMAP on the member's session: the first for the message, the others
    // for its first byte — each journalled by the proxy as a read of that UID.
    const sessions = (await mine()).filter((x) => !before.has(x));
    expect(sessions).toHaveLength(1);
    const [session] = sessions;
    expect((await api('POST', '/api/v1/logout', { token: t })).status).toBe(204);
    const reads = async () =>
      (await op.platform.journal.list({ type: 'imap.fetch' })).filter((e) => e.details.session === session && ((e.details.sets as string[] | undefined) ?? []).includes(String(uid)));
    await until(async () => (await reads()).reduce((n, e) => n + Number(e.details.commands ?? 1), 0) >= 3);
    const items = (await reads()).flatMap((e) => (e.details.items as string[] | undefined) ?? []);
    expect(items).toEqual(expect.arrayContaining([expect.stringMatching(/^BODY\.PEEK\[\]<0\.\d+>$/i), expect.stringMatching(/^BODY\.PEEK\[\]<0\.1>$/i)]));
    // A session that ended is refused before any copy is looked at.
    expectProblem(await api('GET', path(), { token: t }), 401, 'WEBMAIL_SESSION_INVALID');
  });
});

describe('reading a big message by its sections', () => {
  // Intrus's own box (no other test reads it): a message far over webmail.readWhole.
  const BIG = Buffer.concat([Buffer.from('%PDF-1.4\n'), randomBytes(400_000), Buffer.from('\n%%EOF\n')]);
  let uid = 0;
  const read = (w: WebmailService, t: string, u: number) => call(w.url, ca, 'GET', `/api/v1/bals/${who.intrus.address}/messages/INBOX/${u}?markSeen=false`, { token: t });
  const loginTo = async (w: WebmailService) => (await call(w.url, ca, 'POST', '/api/v1/login', { json: { login: who.intrus.login, password: who.intrus.password } })).json().token as string;
  beforeAll(async () => {
    const raw = await mime({
      from: who.secretaire.address,
      to: who.intrus.address,
      subject: 'Imagerie — compte rendu et clichés',
      text: 'Voici le compte rendu, accentué : é à ç ô.\n'.repeat(50),
      html: '<p onclick="x()">Compte rendu <b>accentué</b> é à ç</p><script>alert(1)</script><img src="cid:logo@x"><img src="https://tracker.example/p.gif">',
      headers: { 'Disposition-Notification-To': who.secretaire.address },
      attachments: [
        { filename: 'clichés du 12 mars.pdf', content: BIG, contentType: 'application/pdf' },
        { filename: 'logo.png', content: randomBytes(3000), contentType: 'image/png', cid: 'logo@x' },
      ],
    });
    const c = await op.imap(who.intrus.address);
    try {
      uid = appendedUid(await c.append('INBOX', raw, []));
    } finally {
      await c.logout();
    }
  });

  it('answers what the whole message answers, and never fetches an attachment (the proxy\'s read traces)', async () => {
    const bySections = await startTestWebmail(op, {}, { readWhole: 16_384 });
    const whole = await startTestWebmail(op, {}, { readWhole: 10_000_000 });
    try {
      const before = new Set((await op.platform.journal.list({ type: 'imap.login' })).map((e) => e.details.session));
      const [t1, t2] = [await loginTo(bySections), await loginTo(whole)];
      const [a, b] = [await read(bySections, t1, uid), await read(whole, t2, uid)];
      expect(a.status).toBe(200);
      expect(a.json()).toEqual(b.json());
      // Again on the same connection: the same answer, from the copy the first read rendered
      // (webmail.renderCache; its FETCH asks for the flags and the first byte).
      expect((await read(bySections, t1, uid)).json()).toEqual(b.json());
      const m = a.json();
      expect(m.text).toContain('accentué : é à ç ô.');
      expect(m.html).toContain('<b>accentué</b> é à ç');
      expect(m.html).toContain('<img src="cid:logo@x" />');
      expect(m.html).not.toMatch(/script|onclick|tracker\.example/i);
      expect(m.attachments).toMatchObject([
        { index: 0, filename: 'logo.png', contentType: 'image/png', size: 3000, contentId: 'logo@x', inline: true },
        { index: 1, filename: 'clichés du 12 mars.pdf', contentType: 'application/pdf', size: BIG.length, inline: false },
      ]);
      expect(m.dispositionNotificationTo).toBe(who.secretaire.address);
      // The two servers' IMAP sessions, their traces flushed by the logouts.
      const sessionsOf = async () => (await op.platform.journal.list({ type: 'imap.login' })).filter((e) => !before.has(e.details.session) && e.actor === 'person:intrus').map((e) => e.details.session);
      expect(await sessionsOf()).toHaveLength(2);
      expect((await call(bySections.url, ca, 'POST', '/api/v1/logout', { token: t1 })).status).toBe(204);
      expect((await call(whole.url, ca, 'POST', '/api/v1/logout', { token: t2 })).status).toBe(204);
      const items = async (session: unknown) => (await op.platform.journal.list({ type: 'imap.fetch' })).filter((e) => e.details.session === session).flatMap((e) => (e.details.items as string[] | undefined) ?? []);
      const sessions = await sessionsOf();
      await until(async () => (await Promise.all(sessions.map(items))).every((i) => i.length > 0));
      const fetched = await Promise.all(sessions.map(items));
      // The whole-path server asked for up to 10 MB of the message in one FETCH; the sections
      // server for at most readWhole bytes, then its text parts — never part of an attachment.
      const sectionReads = fetched.filter((i) => i.some((x) => /^BODY\.PEEK\[\]<0\.16384>$/i.test(x)));
      expect(fetched.filter((i) => i.some((x) => /^BODY\.PEEK\[\]<0\.10000000>$/i.test(x)))).toHaveLength(1);
      expect(sectionReads).toHaveLength(1);
      expect(sectionReads[0]).toEqual(expect.arrayContaining([expect.stringMatching(/^BODY\.PEEK\[1\.1\]$/i), expect.stringMatching(/^BODY\.PEEK\[1\.2\.1\]$/i)]));
      expect(sectionReads[0].filter((x) => /^BODY\.PEEK\[\]$/i.test(x))).toEqual([]);
      const parts = (m.attachments as Array<{ part: string }>).map((x) => x.part);
      expect(parts).toHaveLength(2);
      expect(sectionReads[0].filter((x) => parts.some((p) => x.toUpperCase().includes(`[${p}]`)))).toEqual([]);
    } finally {
      await bySections.stop();
      await whole.stop();
    }
  });

  it('a message that arrived after the folder was opened on the pooled connection reads at once', async () => {
    const t = tokens.intrus;
    expect((await api('GET', `/api/v1/bals/${who.intrus.address}/folders/INBOX/messages`, { token: t })).status).toBe(200);
    const c = await op.imap(who.intrus.address);
    let fresh = 0;
    try {
      fresh = appendedUid(await c.append('INBOX', await mime({ from: who.secretaire.address, to: who.intrus.address, subject: 'Arrivé à l\'instant', text: 'Nouveau.' }), []));
    } finally {
      await c.logout();
    }
    const r = await api('GET', `/api/v1/bals/${who.intrus.address}/messages/INBOX/${fresh}`, { token: t });
    expect(r.status, r.body.toString()).toBe(200);
    expect(r.json()).toMatchObject({ uid: fresh, subject: "Arrivé à l'instant", flags: { seen: true } });
    expectProblem(await api('GET', `/api/v1/bals/${who.intrus.address}/messages/INBOX/${fresh + 1000}`, { token: t }), 404, 'NOT_FOUND');
  });
});

describe('flags, move, delete', () => {
  const uidOf = async (subject: string, folder = 'INBOX') => {
    const l = (await api('GET', `/api/v1/bals/${who.martin.address}/folders/${enc(folder)}/messages?q=${enc(subject)}`, { token: tokens.martin })).json();
    return l.messages[0]?.uid as number | undefined;
  };

  it('sets and clears flags', async () => {
    const uid = (await uidOf('Ordonnance'))!;
    const r = await api('PATCH', `/api/v1/bals/${who.martin.address}/messages/INBOX/${uid}`, { token: tokens.martin, json: { flagged: true, seen: false } });
    expect(r.status).toBe(200);
    expect(r.json()).toMatchObject({ flagged: true, seen: false, answered: false });
    const [stored] = (await inbox(who.martin.address)).filter((x) => x.uid === uid);
    expect(stored.flags.has('\\Flagged')).toBe(true);
    expect(stored.flags.has('\\Seen')).toBe(false);
    expectProblem(await api('PATCH', `/api/v1/bals/${who.martin.address}/messages/INBOX/${uid}`, { token: tokens.martin, json: {} }), 400, 'BAD_REQUEST');
    expectProblem(await api('PATCH', `/api/v1/bals/${who.martin.address}/messages/INBOX/${uid}`, { token: tokens.martin, json: { deleted: true } }), 400, 'BAD_REQUEST');
  });

  it('moves a message to another folder; an unknown target folder is 404', async () => {
    const c = await op.imap(who.martin.address);
    await c.mailboxCreate('Archives');
    await c.logout();
    const uid = (await uidOf('Rendez-vous'))!;
    expectProblem(await api('POST', `/api/v1/bals/${who.martin.address}/messages/INBOX/${uid}/move`, { token: tokens.martin, json: { to: 'Nulle-part' } }), 404, 'NOT_FOUND');
    const r = await api('POST', `/api/v1/bals/${who.martin.address}/messages/INBOX/${uid}/move`, { token: tokens.martin, json: { to: 'Archives' } });
    expect(r.status).toBe(200);
    expect(r.json().folder).toBe('Archives');
    expect(await uidOf('Rendez-vous')).toBeUndefined();
    expect(await uidOf('Rendez-vous', 'Archives')).toBe(r.json().uid);
  });

  it('deletes to the Trash, then for good from the Trash', async () => {
    const uid = (await uidOf('Bilan sanguin'))!;
    const r = await api('DELETE', `/api/v1/bals/${who.martin.address}/messages/INBOX/${uid}`, { token: tokens.martin });
    expect(r.status).toBe(200);
    expect(r.json()).toEqual({ movedTo: 'Trash' });
    expect(await uidOf('Bilan sanguin')).toBeUndefined();
    const inTrash = (await uidOf('Bilan sanguin', 'Trash'))!;
    expect(inTrash).toBeGreaterThan(0);
    const again = await api('DELETE', `/api/v1/bals/${who.martin.address}/messages/Trash/${inTrash}`, { token: tokens.martin });
    expect(again.json()).toEqual({ movedTo: null });
    expect(await uidOf('Bilan sanguin', 'Trash')).toBeUndefined();
    expect((await inbox(who.martin.address, 'Trash')).length).toBe(0);
  });
});

describe('sending', () => {
  it('sends to a colleague with an attachment (multipart/form-data): it arrives in their box, with X-MSS-NIL, and a copy stays in Sent', async () => {
    const { body, contentType } = await formData({ to: who.secretaire.address, subject: 'Courrier de sortie', text: 'Ci-joint le courrier.' }, [{ name: 'attachments', filename: 'courrier.pdf', type: 'application/pdf', content: PDF }]);
    const r = await api('POST', `/api/v1/bals/${who.martin.address}/send`, { token: tokens.martin, body, contentType });
    expect(r.status).toBe(200);
    expect(r.json()).toMatchObject({ accepted: [who.secretaire.address], rejected: [], sentFolder: 'Sent' });
    const id = r.json().messageId as string;
    await until(async () => (await inbox(who.secretaire.address)).some((m) => m.source.includes(id)));
    const got = (await inbox(who.secretaire.address)).find((m) => m.source.includes(id))!;
    const p = await simpleParser(got.source);
    expect(p.from?.value[0].address).toBe(who.martin.address);
    expect(p.subject).toBe('Courrier de sortie');
    expect(p.headers.get('x-mss-nil')).toBe('MSSante-Operateur webmail-api/1');
    expect(p.attachments[0].content.equals(PDF)).toBe(true);
    // Went through submission as the person (trace header), not around it.
    expect(got.source.toString()).toMatch(/authenticated as person dr\.martin/);
    expect((await inbox(who.martin.address, 'Sent')).some((m) => m.source.includes(id))).toBe(true);
  });

  it('a member sends as the organisational box (JSON, base64 attachment)', async () => {
    const r = await api('POST', `/api/v1/bals/${orgBox}/send`, {
      token: tokens.secretaire,
      json: { to: [who.martin.address], subject: 'Rendez-vous confirmé', text: 'Le 12 à 10 h.', inReplyTo: `<org1@${D}>`, nil: 'DPI-Cardio/2.1', attachments: [{ filename: 'convocation.txt', contentType: 'text/plain', content: Buffer.from('Convocation').toString('base64') }] },
    });
    expect(r.status).toBe(200);
    const id = r.json().messageId as string;
    await until(async () => (await inbox(who.martin.address)).some((m) => m.source.includes(id)));
    const p = await simpleParser((await inbox(who.martin.address)).find((m) => m.source.includes(id))!.source);
    expect(p.from?.value[0].address).toBe(orgBox);
    expect(p.inReplyTo).toBe(`<org1@${D}>`);
    expect(p.headers.get('x-mss-nil')).toBe('DPI-Cardio/2.1');
    expect(p.attachments[0].content.toString()).toBe('Convocation');
  });

  it('a non-member sending as the organisational box gets 403 with the submission server\'s sentence; nothing arrives', async () => {
    const before = (await inbox(who.martin.address)).length;
    const r = await api('POST', `/api/v1/bals/${orgBox}/send`, { token: tokens.intrus, json: { to: [who.martin.address], subject: 'Usurpation', text: 'x' } });
    const p = expectProblem(r, 403, 'WEBMAIL_SEND_FORBIDDEN');
    expect(p.detail).toMatch(new RegExp(`^the submission server refused to send: 553 5\\.7\\.1 person intrus may not send as ${orgBox.replace(/\./g, '\\.')}`));
    const ev = await op.platform.journal.list({ type: 'policy.refused' });
    expect(ev.some((e) => e.actor === 'person:intrus' && e.subject === orgBox && e.details.action === 'send-as')).toBe(true);
    expect((await inbox(who.martin.address)).length).toBe(before);
  });

  it('an unknown local recipient is 422 with the server\'s sentence', async () => {
    const r = await api('POST', `/api/v1/bals/${who.martin.address}/send`, { token: tokens.martin, json: { to: [`personne@${D}`], subject: 'Perdu', text: 'x' } });
    expect(expectProblem(r, 422, 'WEBMAIL_SEND_REFUSED').detail).toContain(`550 5.1.1 there is no mailbox personne@${D} at this operator`);
  });

  it('a message over webmail.maxUpload is 413; bad bodies are 400', async () => {
    const big = Buffer.alloc(MAX_UPLOAD + 1, 1).toString('base64');
    expectProblem(await api('POST', `/api/v1/bals/${who.martin.address}/send`, { token: tokens.martin, json: { to: [who.secretaire.address], subject: 'Gros', attachments: [{ filename: 'a.bin', content: big }] } }), 413, 'MESSAGE_TOO_BIG');
    const { body, contentType } = await formData({ to: who.secretaire.address, subject: 'Gros' }, [{ name: 'attachments', filename: 'a.bin', type: 'application/octet-stream', content: Buffer.alloc(MAX_UPLOAD + 1) }]);
    expectProblem(await api('POST', `/api/v1/bals/${who.martin.address}/send`, { token: tokens.martin, body, contentType }), 413, 'MESSAGE_TOO_BIG');
    expectProblem(await api('POST', `/api/v1/bals/${who.martin.address}/send`, { token: tokens.martin, json: { to: ['pas une adresse'], subject: 'x' } }), 400, 'BAD_REQUEST');
    expectProblem(await api('POST', `/api/v1/bals/${who.martin.address}/send`, { token: tokens.martin, json: { to: [who.secretaire.address], subject: 'a\r\nBcc: x@y' } }), 400, 'BAD_REQUEST');
    expectProblem(await api('POST', `/api/v1/bals/${who.martin.address}/send`, { token: tokens.martin, json: { to: [who.secretaire.address] } }), 400, 'BAD_REQUEST');
  });
});

describe('read receipts (RFC 8098)', () => {
  it('sends the receipt the sender asked for, as multipart/report; once', async () => {
    const l = (await api('GET', `/api/v1/bals/${who.martin.address}/folders/INBOX/messages?q=${enc('pièce jointe')}`, { token: tokens.martin })).json();
    const uid = l.messages[0].uid;
    const r = await api('POST', `/api/v1/bals/${who.martin.address}/messages/INBOX/${uid}/mdn`, { token: tokens.martin });
    expect(r.status).toBe(200);
    expect(r.json().to).toBe(who.secretaire.address);
    const id = r.json().messageId as string;
    await until(async () => (await inbox(who.secretaire.address)).some((m) => m.source.includes(id)));
    const src = (await inbox(who.secretaire.address)).find((m) => m.source.includes(id))!.source.toString();
    expect(src).toMatch(/Content-Type: multipart\/report; report-type=disposition-notification;/i);
    expect(src).toMatch(/Content-Type: message\/disposition-notification/i);
    expect(src).toContain(`Final-Recipient: rfc822; ${who.martin.address}`);
    expect(src).toContain(`Original-Message-ID: <pj@${D}>`);
    expect(src).toContain('Disposition: manual-action/MDN-sent-manually; displayed');
    expect(src).toMatch(/Content-Type: text\/rfc822-headers/i);
    expect(src).toContain(`In-Reply-To: <pj@${D}>`);
    expectProblem(await api('POST', `/api/v1/bals/${who.martin.address}/messages/INBOX/${uid}/mdn`, { token: tokens.martin }), 409, 'WEBMAIL_MDN_ALREADY_SENT');
  });

  it('a message that asks for none is 409', async () => {
    const l = (await api('GET', `/api/v1/bals/${who.martin.address}/folders/INBOX/messages?q=${enc('Ordonnance')}`, { token: tokens.martin })).json();
    expectProblem(await api('POST', `/api/v1/bals/${who.martin.address}/messages/INBOX/${l.messages[0].uid}/mdn`, { token: tokens.martin }), 409, 'WEBMAIL_NO_MDN_REQUESTED');
  });
});

describe('clinical documents', () => {
  it('shows the CDA header of an attached document (dmp/ reader), never its bytes; hands it to the DMP with the masking', async () => {
    const cda = buildCdaDocument({
      patient: { ins: '123456789012345', family: 'DUPONT', given: 'Marie', birthDate: '19800101', gender: 'F' },
      author: { rpps: DEV_RPPS, family: 'MARTIN', given: 'Jeanne' },
      code: { code: '11502-2', scheme: '2.16.840.1.113883.6.1', display: 'CR d\'examens biologiques' },
      title: 'Résultats biologiques',
      text: 'Hémoglobine 13 g/dL',
    });
    const r = await api('POST', `/api/v1/bals/${who.secretaire.address}/send`, {
      token: tokens.secretaire,
      json: { to: [who.martin.address], subject: 'Résultats', text: 'Ci-joint.', attachments: [{ filename: 'cr.xml', contentType: 'text/xml', content: cda.toString('base64') }] },
    });
    expect(r.status).toBe(200);
    const id = r.json().messageId as string;
    await until(async () => (await inbox(who.martin.address)).some((m) => m.source.includes(id)));
    const uid = (await inbox(who.martin.address)).find((m) => m.source.includes(id))!.uid;
    const m = (await api('GET', `/api/v1/bals/${who.martin.address}/messages/INBOX/${uid}`, { token: tokens.martin })).json();
    expect(m.documents, JSON.stringify(m)).toHaveLength(1);
    expect(m.documents[0]).toMatchObject({ filename: 'cr.xml', kind: 'cda', entries: [{ typeCode: { code: '11502-2' }, title: 'Résultats biologiques', size: cda.length }] });
    expect(m.documents[0].content).toBeUndefined();

    const h = await api('POST', `/api/v1/bals/${who.martin.address}/messages/INBOX/${uid}/dmp`, { token: tokens.martin, json: { masking: 'invisible-patient' } });
    expect(h.status).toBe(200);
    expect(h.json()).toEqual({ outcome: 'success', submissions: [{ status: 'success', documentIds: ['1.2.3'], errors: [] }] });
    expect(handoffs.at(-1)).toMatchObject({ bal: who.martin.address, folder: 'INBOX', uid, masking: 'invisible-patient', login: 'dr.martin' });
    expect(handoffs.at(-1)!.raw.includes(id)).toBe(true);
    expectProblem(await api('POST', `/api/v1/bals/${who.martin.address}/messages/INBOX/${uid}/dmp`, { token: tokens.martin, json: { masking: 'secret' } }), 400, 'BAD_REQUEST');
  });
});

describe('annuaire', () => {
  it('finds recipients in the public LDAP tree by name, address or structure', async () => {
    const r = await api('GET', `/api/v1/annuaire?q=${enc('secretariat')}`, { token: tokens.martin });
    expect(r.status, r.body.toString()).toBe(200);
    expect(r.json().results).toEqual([expect.objectContaining({ mail: orgBox, type: 'ORG', service: 'Cardiologie' })]);
    const byName = (await api('GET', `/api/v1/annuaire?q=${enc('dr.martin')}`, { token: tokens.martin })).json();
    expect(byName.results.map((x: { mail: string }) => x.mail)).toEqual([who.martin.address]);
    expect(byName.truncated).toBe(false);
  });

  it('what is typed is a value, never filter syntax', async () => {
    for (const q of ['**', '*)(mail=*', `${D})(|(mail=*`]) {
      const r = await api('GET', `/api/v1/annuaire?q=${enc(q)}`, { token: tokens.martin });
      expect(r.status).toBe(200);
      expect(r.json().results).toEqual([]);
    }
    expectProblem(await api('GET', '/api/v1/annuaire?q=a', { token: tokens.martin }), 400, 'BAD_REQUEST');
  });
});

describe('OpenAPI', () => {
  it('serves the document and the interactive docs', async () => {
    const doc = (await api('GET', '/openapi.json')).json();
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(['/api/v1/login', '/api/v1/bals', '/api/v1/bals/{bal}/folders/{folder}/messages', '/api/v1/bals/{bal}/messages/{folder}/{uid}/attachments/{index}', '/api/v1/bals/{bal}/send', '/api/v1/annuaire']),
    );
    const docs = await api('GET', '/docs/');
    expect(docs.status).toBe(200);
    expect(docs.body.toString()).toContain('swagger');
  });

  it('unknown routes are 404 problem+json', async () => {
    expectProblem(await api('GET', '/api/v1/nothing', { token: tokens.martin }), 404, 'NOT_FOUND');
  });
});

describe('IMAP connections of the API', () => {
  it('one per session and box, logged in with the token, reused across requests, closed after webmail.imapIdle', async () => {
    const w = await startTestWebmail(op, {}, { imapIdle: 300 });
    const sessions = async () => (await op.platform.journal.list({ type: 'imap.login' })).filter((e) => e.actor === 'person:secretaire' && e.subject === orgBox);
    const closed = async (id: unknown) => (await op.platform.journal.list({ type: 'imap.session.close' })).some((e) => e.details.session === id);
    try {
      const before = new Set((await sessions()).map((e) => e.details.session));
      const t = (await call(w.url, ca, 'POST', '/api/v1/login', { json: { login: who.secretaire.login, password: who.secretaire.password } })).json().token;
      const get = (path: string) => call(w.url, ca, 'GET', `/api/v1/bals/${orgBox}${path}`, { token: t });
      expect((await Promise.all([get('/folders'), get('/folders/INBOX/messages'), get('/folders/INBOX/messages?sort=subject')])).map((r) => r.status)).toEqual([200, 200, 200]);
      const first = (await sessions()).filter((e) => !before.has(e.details.session));
      expect(first).toHaveLength(1);
      expect(first[0].details).toMatchObject({ auth: 'token', method: expect.stringMatching(/^(LOGIN|PLAIN)$/), client: expect.stringContaining('mss-webmail-api') });
      await until(() => closed(first[0].details.session));
      expect((await get('/folders')).status).toBe(200);
      const second = (await sessions()).filter((e) => !before.has(e.details.session) && e.details.session !== first[0].details.session);
      expect(second).toHaveLength(1);
    } finally {
      await w.stop();
    }
  });

  it("logout closes the session's connections at once (idle time far away)", async () => {
    const w = await startTestWebmail(op, {}, { imapIdle: 3_600_000 });
    try {
      const before = new Set((await op.platform.journal.list({ type: 'imap.login' })).map((e) => e.details.session));
      const t = (await call(w.url, ca, 'POST', '/api/v1/login', { json: { login: who.secretaire.login, password: who.secretaire.password } })).json().token;
      expect((await call(w.url, ca, 'GET', `/api/v1/bals/${orgBox}/folders`, { token: t })).status).toBe(200);
      const [mine] = (await op.platform.journal.list({ type: 'imap.login' })).filter((e) => !before.has(e.details.session) && e.actor === 'person:secretaire');
      expect((await call(w.url, ca, 'POST', '/api/v1/logout', { token: t })).status).toBe(204);
      await until(async () => (await op.platform.journal.list({ type: 'imap.session.close' })).some((e) => e.details.session === mine.details.session));
    } finally {
      await w.stop();
    }
  });
});

describe('without the optional parts', () => {
  it('DMP hand-off and annuaire search answer 503 when the platform has none', async () => {
    const bare = await startTestWebmail(op, { dmpHandoff: undefined, ldap: undefined });
    try {
      const t = (await call(bare.url, ca, 'POST', '/api/v1/login', { json: { login: who.martin.login, password: who.martin.password } })).json().token;
      const l = (await call(bare.url, ca, 'GET', `/api/v1/bals/${who.martin.address}/folders/INBOX/messages?pageSize=1`, { token: t })).json();
      expectProblem(await call(bare.url, ca, 'POST', `/api/v1/bals/${who.martin.address}/messages/INBOX/${l.messages[0].uid}/dmp`, { token: t, json: {} }), 503, 'WEBMAIL_FEATURE_UNAVAILABLE');
      expectProblem(await call(bare.url, ca, 'GET', '/api/v1/annuaire?q=martin', { token: t }), 503, 'WEBMAIL_FEATURE_UNAVAILABLE');
    } finally {
      await bare.stop();
    }
  });
});

describe('worker processes', () => {
  it('start with the first connection, not with the platform, and serve from outside its process', async () => {
    expect(workersBeforeFirstConnection).toEqual([]);
    // Any request (this one is refused: no token) goes through a worker (webmail.workers default 1), not this process.
    expect((await api('GET', '/api/v1/bals')).status).toBe(401);
    const pids = web.pids();
    expect(pids).toHaveLength(1);
    expect(pids[0]).not.toBe(process.pid);
  });
});

/** The UID Dovecot gave an APPEND (UIDPLUS); a test cannot go on without it. */
function appendedUid(r: false | { uid?: number }): number {
  if (!r || !r.uid) throw new Error('the APPEND returned no UID');
  return r.uid;
}
