import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import nodemailer from 'nodemailer';
import { simpleParser, type ParsedMail } from 'mailparser';
import { decrypt, generateKey, readKey, readMessage, readPrivateKey, revokeKey, type PrivateKey } from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdmin } from '../../annuaire/admin/accounts.js';
import type { WebmailService } from '../../webmail-api/index.js';
import { freePorts, startOperator, until, type TestOperator } from '../helpers/operator.js';
import { testPki, type TestPki } from '../helpers/pki.js';
import { call, expectProblem, startTestWebmail } from '../webmail/stack.js';

// Opt-in OpenPGP per box (issue 16 §4). One whole operator (PGlite, slapd, Dovecot, SMTP,
// admin API, webmail API); the peer operator is played by a client presenting the test
// PKI's peer-operator certificate to the MX (mutual TLS), as the MX tests do. The key pair
// is generated here; the platform only ever sees the public key.

const A = 'mssante.localhost';
const PEER = 'peer.mssante.localhost'; // the peer-operator certificate's domain
const PASSWORD = 'mot-de-passe-admin-openpgp-2026';

let pki: TestPki;
let op: TestOperator;
let web: WebmailService;
let ca: string;
let adminBase = '';
let adminToken = '';
let holder: { login: string; address: string; password: string };
let clear: { login: string; address: string; password: string };
let martin: { login: string; address: string; password: string };
let pair: { publicKey: string; privateKey: string };
let privateKey: PrivateKey;

const admin = (method: string, path: string, json?: unknown) => call(adminBase, ca, method, path, { token: adminToken, ...(json !== undefined ? { json } : {}) });
const tls = () => ({ ca: pki.read('ca.pem'), servername: 'localhost', minVersion: 'TLSv1.2' as const });
const peerCert = () => ({ cert: readFileSync(pki.file('peer-operator.pem'), 'utf8') + pki.read('intermediate.pem'), key: readFileSync(pki.file('peer-operator.key'), 'utf8') });
/** The peer operator's MX client: STARTTLS with its IGC-Santé-like certificate. */
const mx = () => nodemailer.createTransport({ host: '127.0.0.1', port: op.ports.mx, secure: false, requireTLS: true, tls: { ...tls(), ...peerCert() }, name: PEER });
const submission = (u: { login: string; password: string }) => nodemailer.createTransport({ host: '127.0.0.1', port: op.ports.submission, secure: false, requireTLS: true, tls: tls(), auth: { user: u.login, pass: u.password } });

/** Every message of a box's INBOX, raw, read over Dovecot's IMAP with imapflow. */
async function inbox(address: string): Promise<Buffer[]> {
  const c = await op.imap(address);
  try {
    const s = await c.status('INBOX', { messages: true });
    if (!s || !s.messages) return [];
    await c.mailboxOpen('INBOX');
    const out: Buffer[] = [];
    for await (const m of c.fetch('1:*', { source: true })) out.push(m.source!);
    return out;
  } finally {
    await c.logout();
  }
}
const waitFor = async (address: string, n: number) => {
  let got: Buffer[] = [];
  await until(async () => (got = await inbox(address)).length >= n);
  return got;
};

/** A message with an accented body, a binary attachment and the MSSanté headers, as bytes (MailComposer). */
async function original(o: { from: string; to: string | string[]; subject: string }) {
  const attachment = randomBytes(5000);
  const built = await new MailComposer({
    ...o,
    messageId: `<${randomBytes(8).toString('hex')}@${o.from.split('@')[1]}>`,
    text: 'Bonjour,\nci-joint le compte rendu : hémoglobine glyquée 6,1 %.\nCordialement.\n',
    headers: { 'X-MSS-NIL': 'openpgp-test/1.0' },
    attachments: [{ filename: 'compte-rendu.pdf', content: attachment, contentType: 'application/pdf' }],
  })
    .compile()
    .build();
  // As the SMTP transfer carries it: CRLF line ends (nodemailer's client rewrites a bare LF), a last line break.
  const raw = Buffer.from(built.toString('latin1').replace(/\r?\n/g, '\r\n').replace(/(?<!\r\n)$/, '\r\n'), 'latin1');
  return { raw, attachment };
}

/** Checks a stored message is PGP/MIME (RFC 3156 §4) and returns what its holder decrypts. */
async function decrypted(stored: Buffer): Promise<{ outer: ParsedMail; inner: Buffer }> {
  const outer = await simpleParser(stored);
  const ct = outer.headers.get('content-type') as { value: string; params: Record<string, string> };
  expect(ct.value).toBe('multipart/encrypted');
  expect(ct.params.protocol).toBe('application/pgp-encrypted');
  expect(outer.attachments.map((a) => a.contentType)).toEqual(['application/pgp-encrypted', 'application/octet-stream']);
  expect(outer.attachments[0].content.toString()).toMatch(/^Version: 1\r?\n/);
  const armored = outer.attachments[1].content.toString();
  expect(armored).toMatch(/^-----BEGIN PGP MESSAGE-----/);
  const { data } = await decrypt({ message: await readMessage({ armoredMessage: armored }), decryptionKeys: privateKey, format: 'binary' });
  return { outer, inner: Buffer.from(data as Uint8Array) };
}

beforeAll(async () => {
  pki = await testPki();
  ca = pki.read('ca.pem');
  op = await startOperator({ pki, domain: A, cert: 'server', ports: await freePorts(), peers: [PEER], overrides: { admin: { enabled: true, port: 0 } } });
  adminBase = op.platform.admin!.url;
  await createAdmin(op.platform.db, op.platform.journal, { login: 'national', role: 'national', password: PASSWORD }, 'test');
  holder = await op.person('dr.chiffre', '810000000011');
  clear = await op.person('dr.clair', '810000000012');
  martin = await op.person('dr.martin', '810000000013');
  await op.synced();
  pair = await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ name: 'Dr Chiffre', email: holder.address }], format: 'armored' });
  privateKey = await readPrivateKey({ armoredKey: pair.privateKey });
  adminToken = (await call(adminBase, ca, 'POST', '/api/v1/login', { json: { login: 'national', password: PASSWORD } })).json().token;
  web = await startTestWebmail(op);
}, 300_000);

afterAll(async () => {
  await web?.stop();
  await op?.stop();
});

describe('registering a box OpenPGP key (admin API)', () => {
  it('refuses what the delivery could not use, with its reason, each refusal journalled; stores nothing', async () => {
    const expired = await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email: holder.address }], date: new Date(Date.now() - 2 * 86_400_000), keyExpirationTime: 3600, format: 'armored' });
    const signOnly = await generateKey({ type: 'ecc', curve: 'ed25519Legacy', userIDs: [{ email: holder.address }], subkeys: [], format: 'armored' });
    const revoked = await revokeKey({ key: await readPrivateKey({ armoredKey: (await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email: holder.address }], format: 'armored' })).privateKey }), format: 'armored' });
    const other = await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email: 'autre@mssante.localhost' }], format: 'armored' });
    const cases: Array<[string, string, RegExp]> = [
      ['not a key at all', 'OPENPGP_KEY_INVALID', /no armored public key block/],
      [pair.privateKey, 'OPENPGP_KEY_PRIVATE', /private \(secret\) OpenPGP key: register the public key only/],
      [expired.publicKey, 'OPENPGP_KEY_EXPIRED', /expired on 20\d\d-/],
      [signOnly.publicKey, 'OPENPGP_KEY_NO_ENCRYPTION', /has no valid key usable for encryption/],
      [revoked.publicKey, 'OPENPGP_KEY_INVALID', /is not valid now \(.*revoked/i],
      [pair.publicKey + '\n' + other.publicKey, 'OPENPGP_KEY_INVALID', /2 key blocks in the upload; register one key per box/],
      [pair.publicKey.replace(/\n[A-Za-z0-9+/]{20}/, '\n' + 'A'.repeat(20)), 'OPENPGP_KEY_INVALID', /not a readable OpenPGP key|not valid now/],
    ];
    for (const [armored, code, reason] of cases) {
      const r = await admin('PUT', `/api/v1/bals/${holder.address}/openpgp-key`, { armored });
      expect(expectProblem(r, 422, code).detail).toMatch(reason);
    }
    const refused = await op.platform.journal.list({ type: 'bal.openpgp.refused', limit: 100 });
    expect(refused.map((e) => e.details.code).sort()).toEqual(cases.map((c) => c[1]).sort());
    expect(refused.every((e) => e.subject === holder.address && e.actor === 'admin:national')).toBe(true);
    expectProblem(await admin('GET', `/api/v1/bals/${holder.address}/openpgp-key`), 404, 'OPENPGP_KEY_NONE');
    expectProblem(await admin('PUT', `/api/v1/bals/personne@${A}/openpgp-key`, { armored: pair.publicKey }), 404, 'BAL_UNKNOWN');
  });

  it('registers the public key: shown, journalled', async () => {
    const r = await admin('PUT', `/api/v1/bals/${holder.address}/openpgp-key`, { armored: pair.publicKey });
    expect(r.status, r.body.toString()).toBe(200);
    const fingerprint = (await readKey({ armoredKey: pair.publicKey })).getFingerprint().toUpperCase();
    expect(r.json()).toMatchObject({ address: holder.address, fingerprint, userIds: [`Dr Chiffre <${holder.address}>`], expiresAt: null, registeredBy: 'admin:national' });
    expect(r.json().armored).not.toMatch(/PRIVATE/);
    expect((await admin('GET', `/api/v1/bals/${holder.address}/openpgp-key`)).json()).toMatchObject({ fingerprint });
    const [ev] = await op.platform.journal.list({ type: 'bal.openpgp.registered' });
    expect(ev).toMatchObject({ subject: holder.address, actor: 'admin:national', details: { fingerprint } });
  });
});

describe('delivery to a box with a key (PGP/MIME, RFC 3156)', () => {
  let fromMx: Awaited<ReturnType<typeof original>>;
  let fromSubmission: Awaited<ReturnType<typeof original>>;
  let stored: Buffer[];

  beforeAll(async () => {
    fromMx = await original({ from: `dr.durand@${PEER}`, to: holder.address, subject: 'Résultats de M. Dupont Jean' });
    await mx().sendMail({ envelope: { from: `dr.durand@${PEER}`, to: [holder.address] }, raw: fromMx.raw });
    stored = await waitFor(holder.address, 1);
    // Submission to a box with a key and one without, in one message.
    fromSubmission = await original({ from: martin.address, to: [holder.address, clear.address], subject: 'Résultats de Mme Durand Marie' });
    await submission(martin).sendMail({ envelope: { from: martin.address, to: [holder.address, clear.address] }, raw: fromSubmission.raw });
    stored = await waitFor(holder.address, 2);
  }, 120_000);

  it('stores both encrypted: the holder decrypts the accepted header fields and content byte for byte, the real Subject as protected header', async () => {
    for (const [i, sent] of [fromMx, fromSubmission].entries()) {
      const { outer, inner } = await decrypted(stored[i]);
      // Inside, as Thunderbird writes its own (protected headers): every header field of the
      // accepted message (the front's Received first) byte for byte, then a multipart/mixed;
      // protected-headers=v1 wrapper whose one part is the message's content entity, byte for byte.
      const ctAt = sent.raw.indexOf('Content-Type:'); // MailComposer writes it last
      const fields = sent.raw.subarray(0, ctAt).toString('latin1').replace('MIME-Version: 1.0\r\n', '');
      const wrapperAt = inner.indexOf('Content-Type: multipart/mixed; protected-headers=v1;');
      expect(wrapperAt).toBeGreaterThan(0);
      expect(inner.toString('latin1', 0, wrapperAt)).toMatch(new RegExp(`^(Received: [^\\r]*\\r\\n(\\t[^\\r]*\\r\\n)*)+${fields.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
      expect(inner.includes(sent.raw.subarray(ctAt))).toBe(true);
      const m = await simpleParser(inner);
      const s = await simpleParser(sent.raw);
      expect(m.subject).toBe(s.subject);
      expect(m.text).toBe(s.text);
      expect(m.attachments).toHaveLength(1);
      expect(m.attachments[0].filename).toBe('compte-rendu.pdf');
      expect(m.attachments[0].content.equals(sent.attachment)).toBe(true);
      // Outside: routing and journal headers readable, the subject obscured, no health data.
      expect(outer.subject).toBe('[...]');
      expect(outer.messageId).toBe(s.messageId);
      expect(outer.from!.text).toBe(s.from!.text);
      expect(outer.headers.get('x-mss-nil')).toBe('openpgp-test/1.0');
      expect(outer.headers.get('received')).toBeDefined();
      const text = stored[i].toString('latin1');
      expect(text).not.toMatch(/Dupont|Durand Marie|glyqu|compte-rendu/);
    }
  });

  it('the box without a key gets the same submission in clear', async () => {
    const [m] = await waitFor(clear.address, 1);
    const p = await simpleParser(m);
    expect(p.subject).toBe('Résultats de Mme Durand Marie');
    expect(p.attachments[0].content.equals(fromSubmission.attachment)).toBe(true);
    expect(m.toString('latin1')).not.toMatch(/multipart\/encrypted/);
  });

  it('journals each encrypted delivery with the key it used', async () => {
    const fingerprint = (await readKey({ armoredKey: pair.publicKey })).getFingerprint().toUpperCase();
    const delivered = await op.platform.journal.list({ type: 'smtp.delivered', limit: 100 });
    const withPgp = delivered.filter((e) => e.details.openpgp);
    expect(withPgp).toHaveLength(2);
    for (const e of withPgp) expect(e.details.openpgp).toEqual([{ rcpt: holder.address, fingerprint }]);
    // The submission to both boxes: one delivery, the copy to the box without a key in clear.
    const both = delivered.find((e) => (e.details.rcpts as string[]).includes(clear.address))!;
    expect([...(both.details.rcpts as string[])].sort()).toEqual([holder.address, clear.address].sort());
    expect(both.details.openpgp).toEqual([{ rcpt: holder.address, fingerprint }]);
  });

  it('mail that is PGP/MIME already is stored as it came, not encrypted again', async () => {
    // A sender who encrypted to the holder's key: the platform must not wrap it a second time.
    const inner = await original({ from: `dr.durand@${PEER}`, to: holder.address, subject: 'Déjà chiffré' });
    const { encryptToPgpMime } = await import('../../smtp/openpgp.js');
    const already = (await encryptToPgpMime(inner.raw, pair.publicKey))!;
    await mx().sendMail({ envelope: { from: `dr.durand@${PEER}`, to: [holder.address] }, raw: already });
    const all = await waitFor(holder.address, 3);
    const got = all[2];
    expect(got.subarray(got.length - already.length).equals(already)).toBe(true);
    const { inner: once } = await decrypted(got);
    expect((await simpleParser(once)).subject).toBe('Déjà chiffré');
    expect(once.includes(inner.raw.subarray(inner.raw.indexOf('Content-Type:')))).toBe(true);
  });

  it('the webmail says plainly that the message is read in a client holding the key, and lists its parts', async () => {
    const token = (await call(web.url, ca, 'POST', '/api/v1/login', { json: { login: holder.login, password: holder.password } })).json().token;
    const r = await call(web.url, ca, 'GET', `/api/v1/bals/${holder.address}/messages/INBOX/1`, { token });
    expect(r.status, r.body.toString()).toBe(200);
    const m = r.json();
    expect(m.subject).toBe('[...]');
    expect(m.encrypted).toEqual({ scheme: 'pgp-mime', notice: expect.stringMatching(/ne peut être lu que dans un logiciel de messagerie qui détient la clé privée de la boîte/) });
    expect(m.attachments.map((a: { contentType: string; filename: string | null }) => [a.contentType, a.filename])).toEqual([
      ['application/pgp-encrypted', null],
      ['application/octet-stream', 'encrypted.asc'],
    ]);
    const asc = await call(web.url, ca, 'GET', `/api/v1/bals/${holder.address}/messages/INBOX/1/attachments/1`, { token });
    expect(asc.status).toBe(200);
    expect(asc.body.toString()).toMatch(/^-----BEGIN PGP MESSAGE-----/);
    const clearToken = (await call(web.url, ca, 'POST', '/api/v1/login', { json: { login: clear.login, password: clear.password } })).json().token;
    const c = (await call(web.url, ca, 'GET', `/api/v1/bals/${clear.address}/messages/INBOX/1`, { token: clearToken })).json();
    expect(c.encrypted).toBeNull();
    expect(c.subject).toBe('Résultats de Mme Durand Marie');
  });

  it('a removed key: removal journalled, the next mail is stored in clear', async () => {
    const d = await admin('DELETE', `/api/v1/bals/${holder.address}/openpgp-key`);
    expect(d.status).toBe(204);
    expectProblem(await admin('DELETE', `/api/v1/bals/${holder.address}/openpgp-key`), 404, 'OPENPGP_KEY_NONE');
    expect(await op.platform.journal.list({ type: 'bal.openpgp.removed' })).toHaveLength(1);
    const after = await original({ from: martin.address, to: holder.address, subject: 'Après retrait' });
    await submission(martin).sendMail({ envelope: { from: martin.address, to: [holder.address] }, raw: after.raw });
    const all = await waitFor(holder.address, 4);
    expect((await simpleParser(all[3])).subject).toBe('Après retrait');
  });

  it('a key that no longer encrypts keeps the mail waiting, never stored in clear', async () => {
    // Registered while it was valid (two days ago), expired by the time the mail comes: the box asked for encryption.
    const past = new Date(Date.now() - 2 * 86_400_000);
    const expiring = await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ email: holder.address }], date: past, keyExpirationTime: 3600, format: 'armored' });
    const { registerOpenPgpKey } = await import('../../annuaire/bal/openpgp.js');
    const k = await registerOpenPgpKey(op.ctx, holder.address, expiring.publicKey, 'test', new Date(past.getTime() + 60_000));
    const m = await original({ from: martin.address, to: holder.address, subject: 'En attente' });
    await submission(martin).sendMail({ envelope: { from: martin.address, to: [holder.address] }, raw: m.raw });
    let deferred: Array<{ details: Record<string, unknown> }> = [];
    await until(async () => (deferred = await op.platform.journal.list({ type: 'smtp.delivery.deferred', limit: 10 })).length > 0);
    expect(deferred[0].details.rcpts).toEqual([holder.address]);
    expect(String(deferred[0].details.error)).toContain(`mail for ${holder.address} is kept: it cannot be encrypted to the OpenPGP key ${k.fingerprint}`);
    expect(await inbox(holder.address)).toHaveLength(4);
    const { rows } = await op.platform.db.query<{ n: number }>("SELECT count(*)::int AS n FROM smtp_spool WHERE state = 'queued'");
    expect(rows[0].n).toBe(1);
    // The operator's alerting sees it: the key has ended (mss_openpgp_keys, read at each scrape).
    const metrics = (await op.platform.http.inject({ url: '/metrics' })).body;
    expect(metrics).toMatch(/^mss_openpgp_keys\{state="expired"\} 1$/m);
    expect(metrics).toMatch(/^mss_openpgp_keys\{state="valid"\} 0$/m);
  });
});
