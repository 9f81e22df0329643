import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { ImapFlow, type StatusObject } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { message, ORG, PER, PER_PAUL, PW, RawImap, startStack, type Stack } from './stack.js';

const run = promisify(execFile);

async function eventually<T>(get: () => Promise<T | undefined | null | false>): Promise<T> {
  for (;;) {
    const v = await get();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

// Python's imaplib: SSL on the IMAPS port, then STARTTLS on the other one. IDLE by hand
// (imaplib has idle() only from Python 3.14).
const PYTHON = String.raw`
import imaplib, ssl, sys
port, starttls_port, ca, user, pw = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(cafile=ca)
M = imaplib.IMAP4_SSL('127.0.0.1', port, ssl_context=ctx)
M.login(user, pw)
typ, boxes = M.list()
print('LIST', typ, len(boxes))
print('SELECT', M.select('INBOX')[1][0].decode())
typ, data = M.fetch('1', '(BODY[])')
print('FETCH', typ, b'Python' in data[0][1])
print('STORE', M.store('1', '+FLAGS', '\\Deleted')[0])
print('EXPUNGE', M.expunge())
msg = b'From: paul.durand@mssante.localhost\r\nSubject: brouillon\r\n\r\nBrouillon imaplib\r\n'
print('APPEND', M.append('Drafts', '(\\Draft)', None, msg)[0])
tag = M._new_tag()
M.send(tag + b' IDLE\r\n')
print('IDLE', M.readline().decode().strip())
M.send(b'DONE\r\n')
line = M.readline()
while not line.startswith(tag):
    line = M.readline()
print('DONE', line.decode().split(' ')[1])
M.logout()
P = imaplib.IMAP4('127.0.0.1', starttls_port)
print('PLAIN CAPS', ' '.join(sorted(c for c in P.capabilities if c in ('STARTTLS', 'LOGINDISABLED'))))
P.starttls(ssl_context=ctx)
P.login(user, pw)
print('STARTTLS EXAMINE', P.select('Drafts', readonly=True)[1][0].decode())
P.logout()
`;

// Real clients through the real proxy into the real Dovecot: imapflow (what the webmail
// will use), curl and Python's imaplib — three independent IMAP implementations.
describe('imap-proxy with real clients', () => {
  let s: Stack;
  const flow = (user: string, pass: string, o: { starttls?: boolean } = {}) =>
    new ImapFlow({
      host: '127.0.0.1',
      port: o.starttls ? s.proxy.ports.imap : s.proxy.ports.imaps,
      secure: !o.starttls,
      doSTARTTLS: o.starttls ? true : undefined,
      tls: s.tls(),
      auth: { user, pass },
      logger: false,
      clientInfo: { name: 'vitest' },
    });

  beforeAll(async () => {
    s = await startStack();
    for (let i = 1; i <= 3; i++) await s.deliver(PER, `Bilan ${i}`, `Résultat ${i} : normal.`);
  });
  afterAll(async () => s?.stop());

  it('imapflow: login, list, select, fetch, flag, IDLE, move, expunge, append; every action traced', async () => {
    const c = flow(PER, PW.jeanne);
    await c.connect();
    // The tagged OK of the login carries Dovecot's post-login capabilities, without COMPRESS.
    expect(c.capabilities.has('IDLE')).toBe(true);
    expect(c.capabilities.has('MOVE')).toBe(true);
    expect(c.capabilities.has('CONDSTORE')).toBe(true);
    expect([...c.capabilities.keys()].some((k) => k.startsWith('COMPRESS'))).toBe(false);

    const boxes = (await c.list()).map((b) => b.path).sort();
    expect(boxes).toEqual(['Drafts', 'INBOX', 'Junk', 'Sent', 'Trash']);
    const lock = await c.getMailboxLock('INBOX');
    try {
      const all = [];
      for await (const m of c.fetch('1:*', { uid: true, envelope: true, source: true })) all.push(m);
      expect(all.map((m) => m.envelope?.subject)).toEqual(['Bilan 1', 'Bilan 2', 'Bilan 3']);
      expect(all[0].source?.toString()).toContain('Résultat 1 : normal.');
      const one = await c.fetchOne(String(all[1].uid), { bodyParts: ['1'] }, { uid: true });
      expect(one && one.bodyParts?.get('1')?.toString()).toContain('Résultat 2');

      // IDLE: a message delivered while idling is announced through the proxy.
      const exists = new Promise<number>((resolve) => c.on('exists', (d: { count: number }) => resolve(d.count)));
      const idling = c.idle();
      await new Promise((r) => setTimeout(r, 200));
      await s.deliver(PER, 'Arrivé pendant IDLE');
      expect(await exists).toBe(4);

      await c.noop(); // ends the IDLE
      await idling;

      // CONDSTORE through the proxy: only the message flagged since the mod-sequence comes back.
      const { highestModseq } = (await c.status('INBOX', { highestModseq: true })) as StatusObject;
      expect(highestModseq).toBeTypeOf('bigint');
      await c.messageFlagsAdd(String(all[0].uid), ['\\Flagged'], { uid: true });
      const changed = [];
      for await (const m of c.fetch('1:*', { uid: true, flags: true }, { changedSince: highestModseq! })) changed.push(m);
      expect(changed.map((m) => m.uid)).toEqual([all[0].uid]);

      expect(await c.messageMove(String(all[2].uid), 'Trash', { uid: true })).toBeTruthy();
      await c.messageFlagsAdd(String(all[1].uid), ['\\Deleted'], { uid: true });
      expect(await c.messageDelete(String(all[1].uid), { uid: true })).toBe(true); // UID EXPUNGE
    } finally {
      lock.release();
    }
    await c.append('Sent', message('dest@mssante.localhost', 'Envoyé depuis imapflow'), ['\\Seen']);
    expect(((await c.status('Sent', { messages: true })) as StatusObject).messages).toBe(1);
    expect(((await c.status('Trash', { messages: true })) as StatusObject).messages).toBe(1);
    expect(((await c.status('INBOX', { messages: true })) as StatusObject).messages).toBe(2);
    await c.logout();
  });

  it('journals every action of that session: login, select, reads, \\Deleted, expunge, move, append, close', async () => {
    const close = await eventually(async () => (await s.events('imap.session.close', PER))[0]);
    const session = close.details.session;
    const ev = (await s.events('imap.', PER)).filter((e) => e.details.session === session || e.type === 'imap.login');
    const types = ev.map((e) => e.type);
    for (const t of ['imap.login', 'imap.select', 'imap.fetch', 'imap.store', 'imap.expunge', 'imap.move', 'imap.append', 'imap.session.close']) expect(types).toContain(t);
    const login = ev.find((e) => e.type === 'imap.login' && e.details.session === session)!;
    expect(login).toMatchObject({ actor: 'person:jeanne', subject: PER, details: { method: 'PLAIN', auth: 'password', remote: '127.0.0.1', client: expect.stringMatching(/^vitest/) } });
    expect(ev.find((e) => e.type === 'imap.select')!.details).toMatchObject({ mailbox: 'INBOX', status: 'OK' });
    const reads = ev.filter((e) => e.type === 'imap.fetch');
    expect(reads.some((e) => (e.details.items as string[]).includes('BODY.PEEK[]'))).toBe(true);
    expect(reads.some((e) => (e.details.items as string[]).includes('BODY.PEEK[1]'))).toBe(true);
    expect(ev.find((e) => e.type === 'imap.store')!.details).toMatchObject({ mailbox: 'INBOX', uid: true, flags: '+FLAGS (\\Deleted)' });
    expect(ev.find((e) => e.type === 'imap.expunge')!.details).toMatchObject({ mailbox: 'INBOX', via: 'UID EXPUNGE', expunged: 1 });
    expect(ev.find((e) => e.type === 'imap.move')!.details).toMatchObject({ mailbox: 'INBOX', to: 'Trash', uid: true });
    const append = ev.find((e) => e.type === 'imap.append')!;
    expect(append.details).toMatchObject({ mailbox: 'Sent', status: 'OK' });
    expect((append.details.sizes as number[])[0]).toBeGreaterThan(100);
    expect(close.details).toMatchObject({ reason: expect.any(String) });
    expect(close.details.bytesIn as number).toBeGreaterThan(300);
    expect(close.details.bytesOut as number).toBeGreaterThan(close.details.bytesIn as number);
  });

  it('imapflow over STARTTLS on the other port, as a member of an organisational box ("box*login")', async () => {
    await s.deliver(ORG, 'Pour le secrétariat');
    const c = flow(`${ORG}*marie.secretaire`, PW.marie, { starttls: true });
    await c.connect();
    expect(c.secureConnection ?? true).toBeTruthy();
    const st = (await c.status('INBOX', { messages: true })) as StatusObject;
    expect(st.messages).toBe(1);
    await c.logout();
    const login = await eventually(async () => (await s.events('imap.login', ORG))[0]);
    expect(login.actor).toBe('person:marie.secretaire');
  });

  it('LOGIN and AUTHENTICATE before STARTTLS are refused on the STARTTLS port (LOGINDISABLED)', async () => {
    const c = await RawImap.tcp(s.proxy.ports.imap);
    const greeting = await c.until(/\r\n/);
    expect(greeting).toMatch(/STARTTLS/);
    expect(greeting).toMatch(/LOGINDISABLED/);
    expect(greeting).not.toMatch(/AUTH=/);
    c.send(`a LOGIN ${PER} "${PW.jeanne}"\r\n`);
    expect(await c.until(/a .*\r\n/)).toMatch(/^a NO \[PRIVACYREQUIRED\] logins travel over TLS only/);
    c.send(`b AUTHENTICATE PLAIN ${Buffer.from(`\0${PER}\0${PW.jeanne}`).toString('base64')}\r\n`);
    expect(await c.until(/b .*\r\n/)).toMatch(/^b NO \[PRIVACYREQUIRED\]/);
    // After STARTTLS the same connection may log in; what was pipelined in clear is dropped.
    c.send('c STARTTLS\r\nd NOOP\r\n');
    expect(await c.until(/c .*\r\n/)).toMatch(/^c OK Begin TLS/);
    await c.upgrade(s.tls());
    c.send('e CAPABILITY\r\n');
    const caps = await c.until(/e OK.*\r\n/);
    expect(caps).not.toMatch(/^d /m);
    expect(caps).toMatch(/AUTH=PLAIN/);
    expect(caps).not.toMatch(/STARTTLS|LOGINDISABLED/);
    c.send(`f LOGIN ${PER} "${PW.jeanne}"\r\n`);
    expect(await c.until(/f .*\r\n/)).toMatch(/^f OK \[CAPABILITY IMAP4rev1 /);
    c.send('g LOGOUT\r\n');
    await c.rest();
  });

  it('openssl s_client -starttls imap with the personal certificate: AUTHENTICATE EXTERNAL on 143, as on 993', async () => {
    const leaf = s.pki.paths.leaves.personal;
    const out = await new Promise<string>((resolve) => {
      const c = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${s.proxy.ports.imap}`, '-starttls', 'imap', '-CAfile', s.pki.file('ca.pem'), '-cert', leaf.cert, '-key', leaf.key, '-cert_chain', s.pki.file('intermediate.pem'), '-quiet', '-crlf'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let text = '';
      c.stdout.on('data', (d) => (text += d));
      c.stderr.on('data', (d) => (text += d));
      // Read once the TLS session is up; LOGOUT ends the connection, and s_client with it.
      c.stdin.end('a AUTHENTICATE EXTERNAL =\nb EXAMINE INBOX\nc LOGOUT\n');
      c.on('close', () => resolve(text));
    });
    expect(out).toMatch(/^a OK \[CAPABILITY IMAP4rev1 .*\] Logged in, mailbox jeanne\.martin@mssante\.localhost\r?$/m);
    expect(out).toMatch(/^b OK \[READ-ONLY\]/m);
    const login = (await s.events('imap.login', PER)).at(-1)!;
    expect(login).toMatchObject({ actor: 'person:jeanne', details: { method: 'EXTERNAL', auth: 'certificate', port: s.proxy.ports.imap } });
  });

  it('curl: list, fetch by UID, examine — over implicit TLS and over STARTTLS', async () => {
    await s.deliver(ORG, 'Lu par curl', 'Contenu lu par curl.');
    const base = ['-sS', '--cacert', s.pki.file('ca.pem'), '--user', `${ORG}*marie.secretaire:${PW.marie}`];
    const list = await run('curl', [...base, `imaps://127.0.0.1:${s.proxy.ports.imaps}/`]);
    expect(list.stdout).toMatch(/^\* LIST .* INBOX\r?$/m);
    expect(list.stdout).toMatch(/Trash/);
    const body = await run('curl', [...base, `imaps://127.0.0.1:${s.proxy.ports.imaps}/INBOX;UID=2`]);
    expect(body.stdout).toContain('Contenu lu par curl.');
    const examine = await run('curl', [...base, '--ssl-reqd', `imap://127.0.0.1:${s.proxy.ports.imap}/INBOX`, '-X', 'EXAMINE INBOX']);
    expect(examine.stdout).toMatch(/\* 2 EXISTS/);
    const reads = await eventually(async () => (await s.events('imap.fetch', ORG)).filter((e) => e.actor === 'person:marie.secretaire'));
    expect(reads.length).toBeGreaterThan(0);
  });

  it("Python's imaplib: login, list, select, fetch, \\Deleted, expunge, append, IDLE; STARTTLS", async () => {
    await s.deliver(PER_PAUL, 'Pour Python', 'Message lu par Python.');
    const { stdout } = await run('python3', ['-c', PYTHON, String(s.proxy.ports.imaps), String(s.proxy.ports.imap), s.pki.file('ca.pem'), PER_PAUL, PW.paul]);
    expect(stdout.trim().split('\n')).toEqual([
      'LIST OK 5',
      'SELECT 1',
      'FETCH OK True',
      'STORE OK',
      "EXPUNGE ('OK', [b'1'])",
      'APPEND OK',
      'IDLE + idling',
      'DONE OK',
      'PLAIN CAPS LOGINDISABLED STARTTLS',
      'STARTTLS EXAMINE 1',
    ]);
    const ev = (await eventually(async () => {
      const all = await s.events('imap.', PER_PAUL);
      return all.filter((e) => e.type === 'imap.session.close').length === 2 && all;
    })).map((e) => e.type);
    expect(ev).toEqual(expect.arrayContaining(['imap.login', 'imap.select', 'imap.fetch', 'imap.store', 'imap.expunge', 'imap.append', 'imap.examine', 'imap.session.close']));
  });
});
