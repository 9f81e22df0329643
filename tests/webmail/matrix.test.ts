import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_RPPS } from '../../certs/pki.js';
import type { WebmailService } from '../../webmail-api/index.js';
import { freePorts, startOperator, type TestOperator } from '../helpers/operator.js';
import { testPki } from '../helpers/pki.js';
import { expectProblem, inject, routesOf, sendHostile, successStatus, toRequest, type CallSpec, type Route } from '../helpers/routes.js';
import { dmpDepsOf, startTestWebmail, mime } from './stack.js';

// The webmail API's authorisation matrix and hostile-input sweep, generated from its route
// table like the admin API's: every route × {the box's owner, another person, an admin
// token, no token, a garbage token}. Public routes answer alike whatever the credential;
// every other route wants a session; a route on a box (`mailbox`) opened by someone else is
// refused by the platform's own IMAP proxy or submission (core/policy, journalled) and
// leaves the box as it was. Real operator: slapd, Dovecot, SMTP, IMAP proxy.

const D = 'mssante.localhost';
/** Hundreds of requests through IMAP and SMTP: a net for a hung server on a loaded machine, not a performance bound. */
const SAFETY_NET = 900_000;
type Who = 'owner' | 'other' | 'admin' | 'none' | 'garbage';
const EVERYONE: Who[] = ['owner', 'other', 'admin', 'none', 'garbage'];

let op: TestOperator;
let web: WebmailService;
const who: Record<'martin' | 'intrus' | 'secretaire', { login: string; address: string; password: string }> = {} as never;
const tokens = new Map<string, string>();


/** A new message in Martin's INBOX (master user), with an attachment and a read-receipt request; its UID. */
async function freshMessage(): Promise<string> {
  const raw = await mime({
    from: who.secretaire.address,
    to: who.martin.address,
    subject: `Matrice ${randomBytes(4).toString('hex')}`,
    text: 'Bonjour.',
    headers: { 'Disposition-Notification-To': who.secretaire.address },
    attachments: [{ filename: 'note.txt', content: 'une note', contentType: 'text/plain' }],
  });
  const c = await op.imap(who.martin.address);
  try {
    const r = await c.append('INBOX', raw, []);
    if (!r || !r.uid) throw new Error('APPEND gave no UID');
    return String(r.uid);
  } finally {
    await c.logout();
  }
}

/** Martin's box as it stands: its folders, and each INBOX message with its flags. */
async function boxState(): Promise<string> {
  const c = await op.imap(who.martin.address);
  try {
    const folders = (await c.list()).map((f) => f.path).sort();
    await c.mailboxOpen('INBOX');
    const msgs: string[] = [];
    // \Recent belongs to whichever session saw the message first (this one included): not the box's state.
    for await (const m of c.fetch('1:*', { uid: true, flags: true })) msgs.push(`${m.uid}:${[...(m.flags ?? [])].filter((f) => f !== '\\Recent').sort().join(',')}`);
    return JSON.stringify({ folders, msgs });
  } finally {
    await c.logout();
  }
}

const loginOf = async (u: { login: string; password: string }) => {
  const a = await inject(web.app!, toRequest('POST', '/api/v1/login', { body: { login: u.login, password: u.password } }));
  expect(a.status, a.text).toBe(200);
  return a.json().token as string;
};

async function tokenOf(w: Who, fresh = false): Promise<string | undefined> {
  if (w === 'owner' || w === 'other') {
    const u = w === 'owner' ? who.martin : who.intrus;
    if (fresh) return loginOf(u);
    if (!tokens.has(w)) tokens.set(w, await loginOf(u));
    return tokens.get(w);
  }
  if (w === 'admin') return `mssadm_${randomBytes(32).toString('base64url')}`;
  if (w === 'garbage') return `mss_wt_${randomBytes(32).toString('base64url')}`;
  return undefined;
}

/** A valid call of each route, on Martin's box. A route missing here fails the matrix. */
const message = async () => ({ bal: who.martin.address, folder: 'INBOX', uid: await freshMessage() });
const samples: Record<string, () => Promise<CallSpec & { freshToken?: boolean }>> = {
  'POST /api/v1/login': async () => ({ body: { login: who.martin.login, password: who.martin.password } }),
  'POST /api/v1/web/login': async () => ({ body: { login: who.martin.login, password: who.martin.password } }),
  'GET /': async () => ({}),
  'GET /ui/*': async () => ({ params: { '*': 'webmail/' } }),
  'POST /api/v1/logout': async () => ({ freshToken: true }),
  'GET /api/v1/me': async () => ({}),
  'GET /api/v1/bals': async () => ({ query: { unseen: 'true' } }),
  'GET /api/v1/annuaire': async () => ({ query: { q: 'martin' } }),
  'GET /api/v1/bals/:bal/folders': async () => ({ params: { bal: who.martin.address } }),
  'GET /api/v1/bals/:bal/folders/:folder/messages': async () => ({ params: { bal: who.martin.address, folder: 'INBOX' }, query: { pageSize: '10' } }),
  'GET /api/v1/bals/:bal/messages/:folder/:uid': async () => ({ params: await message(), query: { markSeen: 'false' } }),
  'GET /api/v1/bals/:bal/messages/:folder/:uid/attachments/:index': async () => ({ params: { ...(await message()), index: '0' } }),
  'PATCH /api/v1/bals/:bal/messages/:folder/:uid': async () => ({ params: await message(), body: { flagged: true } }),
  'POST /api/v1/bals/:bal/messages/:folder/:uid/move': async () => ({ params: await message(), body: { to: 'Archives' } }),
  'DELETE /api/v1/bals/:bal/messages/:folder/:uid': async () => ({ params: await message() }),
  'POST /api/v1/bals/:bal/messages/:folder/:uid/dmp': async () => ({ params: await message(), body: { masking: 'normal' } }),
  'POST /api/v1/bals/:bal/messages/:folder/:uid/mdn': async () => ({ params: await message() }),
  'POST /api/v1/bals/:bal/send': async () => ({ params: { bal: who.martin.address }, body: { to: [who.secretaire.address], subject: 'Matrice', text: 'Bonjour.' } }),
  'POST /api/v1/bals/:bal/drafts': async () => ({ params: { bal: who.martin.address }, body: { subject: 'Brouillon de la matrice' } }),
  // The DMP rule is an organisational box's: Martin's practice, of which he is the professional member.
  'GET /api/v1/bals/:bal/dmp-rule': async () => ({ params: { bal: cabinet } }),
  'PUT /api/v1/bals/:bal/dmp-rule': async () => ({ params: { bal: cabinet }, body: { masking: 'masque-ps' } }),
  'DELETE /api/v1/bals/:bal/dmp-rule': async () => ({ params: { bal: cabinet } }),
};
const sampleOf = (r: Route) => {
  const s = samples[r.key.replace(/^HEAD /, 'GET ')];
  if (s) return s;
  if (r.access?.kind === 'public' && r.method !== 'POST') return async (): Promise<CallSpec & { freshToken?: boolean }> => ({ params: { '*': 'swagger-ui.css' } });
  return undefined;
};

let cabinet = '';
const refusalsOf = async (login: string) => (await op.platform.journal.list({ type: 'policy.refused', actor: `person:${login}`, limit: 1000 })).length;

beforeAll(async () => {
  const pki = await testPki();
  op = await startOperator({ pki, domain: D, cert: 'server', ports: await freePorts(), peers: [] });
  who.martin = await op.person('dr.martin', `8${DEV_RPPS}`);
  who.intrus = await op.person('intrus', '899999999903');
  who.secretaire = await op.person('secretaire', '899999999902');
  // Its address ends with Martin's, so a refusal on it names his box as the other routes' do.
  cabinet = await op.bal({ local: 'cabinet.dr.martin', type: 'ORG', owner: '1750000009', service: 'Cabinet' });
  await op.member(cabinet, who.martin.login);
  await op.synced();
  const c = await op.imap(who.martin.address);
  try {
    await c.mailboxCreate('Archives');
  } finally {
    await c.logout();
  }
  // In this process (webmail.workers 0): the matrix reads the route table and injects requests into the fastify app.
  web = await startTestWebmail(op, { ...dmpDepsOf(op), dmpHandoff: async () => ({ outcome: 'nothing' }) }, { workers: 0 });
}, 240_000);

afterAll(async () => {
  await web?.stop();
  await op?.stop();
});

describe('webmail API generated from its route table', () => {
  it('every route declares an access rule and has a sample call', () => {
    const routes = routesOf(web.app!);
    expect(routes.length).toBeGreaterThan(20);
    for (const r of routes) {
      expect(['public', 'self', 'mailbox'], r.key).toContain(r.access?.kind);
      expect(sampleOf(r), `no sample call for ${r.key}: add one to this matrix`).toBeDefined();
    }
  });

  it('every route × every caller: a session on all but login and the documents; another person\'s box refused and left as it was', async () => {
    let calls = 0;
    for (const r of routesOf(web.app!)) {
      const rule = r.access!;
      const statuses = new Map<Who, number>();
      for (const w of EVERYONE) {
        const spec = await sampleOf(r)!();
        const token = await tokenOf(w, spec.freshToken);
        const what = `${r.key} as ${w}`;
        const before = rule.kind === 'mailbox' && w !== 'owner' ? await boxState() : null;
        const refusedBefore = await refusalsOf(who.intrus.login);
        const a = await inject(web.app!, toRequest(r.method, r.url, spec, token));
        calls++;
        statuses.set(w, a.status);
        const session = w === 'owner' || w === 'other';
        if (rule.kind === 'public') continue;
        if (!session) {
          if (r.method !== 'HEAD') expect(expectProblem(a, what, 401).title, what).toBe('WEBMAIL_SESSION_INVALID');
          expect(a.status, what).toBe(401);
        } else if (rule.kind === 'mailbox' && w === 'other') {
          if (r.method !== 'HEAD') expect(expectProblem(a, what, 403).detail, what).toContain(who.martin.address);
          expect(a.status, what).toBe(403);
          expect(await refusalsOf(who.intrus.login), `${what}: journalled`).toBeGreaterThan(refusedBefore);
        } else {
          expect(a.status, `${what}: ${a.text.slice(0, 300)}`).toBe(successStatus(r));
        }
        if (before !== null) expect(await boxState(), `${what}: the box is as it was`).toBe(before);
        // The boxes a person may open: never another's.
        if (r.key === 'GET /api/v1/bals' && session) {
          expect(a.text.includes(who.martin.address), what).toBe(w === 'owner');
        }
      }
      if (rule.kind === 'public') {
        expect(new Set(statuses.values()).size, `${r.key}: ${JSON.stringify([...statuses])}`).toBe(1);
        expect(statuses.get('none')!, r.key).toBeLessThan(400);
      }
    }
    expect(calls).toBeGreaterThan(100);
  }, SAFETY_NET);

  it('every parameter of every route answers hostile values with a 4xx problem+json naming it, never a 500', async () => {
    // Login last: its failed attempts are throttled and delayed, which must not touch the other routes.
    const routes = routesOf(web.app!)
      .filter((r) => r.method !== 'HEAD')
      .sort((a, b) => Number(a.key.endsWith('/login')) - Number(b.key.endsWith('/login')));
    const sent = await sendHostile(
      web.app!,
      routes.map((route) => ({ route, valid: sampleOf(route)!, token: () => tokenOf('owner', route.key === 'POST /api/v1/logout') })),
    );
    expect(sent).toBeGreaterThan(1000);
    expect((await inject(web.app!, toRequest('GET', '/api/v1/bals/:bal/folders', { params: { bal: who.martin.address } }, await tokenOf('owner')))).status).toBe(200);
  }, SAFETY_NET);

  it('the JSON body is taken as sent: a string for "to" is refused, not made a list; a form\'s readReceipt is true or false', async () => {
    const t = await tokenOf('owner');
    const url = `/api/v1/bals/${encodeURIComponent(who.martin.address)}/send`;
    const json = await inject(web.app!, { method: 'POST', url, headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json' }, payload: JSON.stringify({ to: who.secretaire.address, subject: 's' }) });
    expect(expectProblem(json, 'to as a string', 400).detail).toBe('the field to must be an array, not the string "secretaire@mssante.localhost"');
    const form = new FormData();
    form.append('to', who.secretaire.address);
    form.append('subject', 'Formulaire');
    form.append('readReceipt', 'yes');
    const r = new Response(form);
    const multipart = await inject(web.app!, { method: 'POST', url, headers: { authorization: `Bearer ${t}`, 'content-type': r.headers.get('content-type')! }, payload: Buffer.from(await r.arrayBuffer()) });
    expect(expectProblem(multipart, 'readReceipt=yes', 400).detail).toMatch(/field readReceipt must be true or false/);
    // A form cut short is the client's error, said as such.
    const cut = await inject(web.app!, { method: 'POST', url, headers: { authorization: `Bearer ${t}`, 'content-type': 'multipart/form-data; boundary=x' }, payload: '--x\r\nContent-Disposition: form-data; name="subject"\r\n\r\nno end' });
    expect(expectProblem(cut, 'truncated form', 400).detail).toMatch(/^the multipart\/form-data body cannot be read: /);
    // A form on a route that takes JSON only is refused before it is read.
    const elsewhere = await inject(web.app!, { method: 'PATCH', url: `/api/v1/bals/${encodeURIComponent(who.martin.address)}/messages/INBOX/1`, headers: { authorization: `Bearer ${t}`, 'content-type': r.headers.get('content-type')! }, payload: Buffer.from(await new Response(form).arrayBuffer()) });
    expect(expectProblem(elsewhere, 'multipart on PATCH', 415).title).toBe('UNSUPPORTED_MEDIA_TYPE');
  });
});
