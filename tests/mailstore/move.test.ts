// Moving a box to a back end of another pair (mailstore/move.ts, issue 17): two real pairs of
// Dovecot back ends (four Dovecots, each started by its node's mail store role, TLS only,
// replicating into its pair), a front-only node delivering and reading through the map. The
// mail is copied by the back ends' own doveadm servers; deliveries race the move.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../core/config/index.js';
import type { Db } from '../../core/db/index.js';
import type { Supervisor } from '../../core/supervisor.js';
import type { Mailstore } from '../../mailstore/dovecot.js';
import { moveAcrossPairs, MoveError, type MoveOptions } from '../../mailstore/move.js';
import { boxPlacement, PlacementError, registerBackend } from '../../mailstore/placement.js';
import { migrate, openPg } from '../../core/db/index.js';
import { runMssAsync } from '../helpers/mss.js';
import { testPostgres } from '../helpers/pg-cluster.js';
import { poll } from '../helpers/nodes.js';
import { freePort } from '../../core/net.js';
import { testPki, tsaEnv, type TestPki } from '../helpers/pki.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adminLogin, createAdmin } from '../../annuaire/admin/accounts.js';
import { createAdminServer } from '../../annuaire/admin/server.js';
import { operatorBalContext } from '../../annuaire/admin/wiring.js';
import { balFactSource } from '../../annuaire/bal/index.js';
import { whitelistFactSource } from '../../annuaire/whitelist/index.js';
import { loadTlsMaterial, serverTlsOptions } from '../../certs/tls.js';
import { Journal } from '../../core/journal/index.js';
import { LoginThrottle, Policy } from '../../core/policy/index.js';
import { mailstoreDoveadm } from '../../mailstore/relocate.js';
import { asBox, deliverThroughMap, inboxSources, messageFiles, sharedSecretFile, startTwoPairs, type StoreName } from '../helpers/store-nodes.js';

const SECRET = 'a-secret-every-node-of-the-store-shares';

describe('moving a box to another pair of back ends', () => {
  let pki: TestPki;
  let db: Db;
  let dispose: () => Promise<void>;
  const sups: Supervisor[] = [];
  let stores: Record<StoreName, Mailstore>;
  let logs: Awaited<ReturnType<typeof startTwoPairs>>['logs'];
  let front: Mailstore;
  let config: Config;
  let opts: MoveOptions;
  let pgUrl: string;
  let secretFile: string;

  beforeAll(async () => {
    pki = await testPki();
    // PostgreSQL (a private cluster, or a scratch database on CI's): the CLI below shares it.
    const pg = await testPostgres();
    pgUrl = pg.url;
    db = await openPg({ url: pg.url, poolSize: 4 });
    await migrate(db);
    dispose = async () => {
      await db.close();
      await pg.drop();
    };
    secretFile = sharedSecretFile(SECRET);
    ({ stores, front, config, logs } = await startTwoPairs(pki, secretFile, db, sups));
    opts = { doveadm: config.mailstore.doveadm, sharedSecret: SECRET, caFile: config.tls.caFile };
  });
  afterAll(async () => {
    for (const s of sups) await s.stopAll();
    await dispose?.();
  });

  const onDisk = (store: Mailstore, bal: string) => messageFiles(store, bal).length;
  const subjectOf = (m: string) => /Subject: (.*)\r\n/.exec(m)?.[1];
  const imapOf = (name: string) => stores[name.replace('store-', '') as StoreName].imap;
  const settled = (what: string, check: () => Promise<boolean>) => poll(what, check, { tries: 3000, everyMs: 100 });
  /** A delivery as the spool makes it: held (451) while the box is frozen, tried again. */
  let held = 0;
  const deliverHeld = async (bal: string, subject: string) => {
    for (let i = 0; i < 3000; i++) {
      const port = await deliverThroughMap(front, bal, subject);
      if (port !== null) return port;
      held++;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${subject}: held for 3000 tries`);
  };
  const uidsAndFlags = (bal: string, at: { host: string; port: number }) =>
    asBox(front, bal, at, async (c) => {
      await c.mailboxOpen('INBOX', { readOnly: true });
      const out: Record<string, { uid: number; flags: string[] }> = {};
      for await (const m of c.fetch('1:*', { envelope: true, flags: true, uid: true })) out[m.envelope!.subject!] = { uid: m.uid, flags: [...(m.flags ?? [])].sort() };
      return out;
    });

  it('moves a box with its mail, a delivery racing the move included: all on the new pair, byte for byte, each once; gone from the old one', async () => {
    const bal = 'dr.moreau@mssante.localhost';
    await db.query("INSERT INTO mailstore_placement (address, backend) VALUES ($1, 'store-a')", [bal]);
    for (const s of ['Bilan 1', 'Bilan 2', 'Bilan 3']) expect(await deliverThroughMap(front, bal, s)).toBe(stores.a.lmtp.port);
    // A flag set through IMAP travels with the box.
    await asBox(front, bal, stores.a.imap, async (c) => {
      await c.mailboxOpen('INBOX');
      await c.messageFlagsAdd({ header: { subject: 'Bilan 2' } }, ['\\Flagged', '\\Seen']);
    });
    // Looked for on store-b's disk: a login there before the replicator's first sync would make it an INBOX of its own to reconcile.
    await settled('the replica of the first messages on store-b', async () => onDisk(stores.b, bal) === 3);
    const before = await uidsAndFlags(bal, stores.a.imap);
    const onA = await inboxSources(front, bal, stores.a.imap);

    // Deliveries started at the copy (the box in use: it lands on store-a, the last copy takes
    // it), at the freeze (the front may not have seen it yet: store-a or held), and once every
    // node has seen the freeze (held until the switch, then to store-c).
    const racing: Array<Promise<number>> = [];
    const lines: string[] = [];
    const r = await moveAcrossPairs(db, bal, 'store-c', {
      ...opts,
      progress: (line) => {
        lines.push(line);
        if (line.startsWith('copy:')) racing.push(deliverHeld(bal, 'Pendant la copie'));
        if (line.startsWith('freeze:')) racing.push(deliverHeld(bal, 'Au gel'));
        if (line.startsWith('final:') && racing.length === 2) racing.push(deliverHeld(bal, 'Pendant le gel'));
      },
    });
    expect(r).toEqual({ from: 'store-a', to: 'store-c', messages: expect.any(Number), removedFrom: ['store-a', 'store-b'] });
    expect(lines.map((l) => l.split(':')[0])).toEqual(['copy', 'freeze', 'final', 'final', 'replica', 'switch', 'cleanup', 'cleanup']);
    const ports = await Promise.all(racing);
    // The one sent while the box was frozen waited for the switch and went to the new back end.
    expect(ports[0]).toBe(stores.a.lmtp.port);
    expect(held).toBeGreaterThan(0);
    expect(ports[2]).toBe(stores.c.lmtp.port);
    expect((await boxPlacement(db, bal))!.backend).toBe('store-c');

    const route = await front.imapRoute!(bal);
    await settled("the front's map naming store-c", async () => (await front.imapRoute!(bal))[0].name === 'store-c');
    expect(route.length).toBe(2);
    const onC = await inboxSources(front, bal, (await front.imapRoute!(bal))[0]);
    const subjects = onC.map(subjectOf).sort();
    expect(subjects).toEqual(['Au gel', 'Bilan 1', 'Bilan 2', 'Bilan 3', 'Pendant la copie', 'Pendant le gel']);
    // Byte for byte: what the fronts delivered, as they delivered it (Dovecot adds its Return-Path/Delivered-To lines the same way everywhere).
    for (const m of onA) expect(onC.filter((x) => x === m)).toHaveLength(1);
    // Same UIDs and flags for what was there before the move.
    const after = await uidsAndFlags(bal, imapOf('store-c'));
    for (const [s, v] of Object.entries(before)) expect(after[s]).toEqual(v);
    expect(after['Bilan 2'].flags).toEqual(['\\Flagged', '\\Seen']);
    // The new pair's replica, and nothing left on the old pair.
    // Mail delivered after the switch reaches store-d by store-c's replicator, which tries a
    // failed sync again 5 minutes later (Dovecot's REPLICATOR_FAILURE_RESYNC_INTERVAL_SECS):
    // waited for past that, and the pair's warnings shown if it never comes.
    const onD = async () => (await inboxSources(front, bal, stores.d.imap)).map(subjectOf).sort();
    await poll('the replica on store-d', async () => JSON.stringify(await inboxSources(front, bal, stores.d.imap)) === JSON.stringify(onC), {
      tries: 800,
      everyMs: 500,
      detail: async () => ({ onD: await onD(), onC: subjects, storeC: logs.c.tail(), storeD: logs.d.tail() }),
    });
    expect(await inboxSources(front, bal, stores.a.imap)).toEqual([]);
    expect(await inboxSources(front, bal, stores.b.imap)).toEqual([]);
  });

  it('the messages moved are byte-identical to those the old back end held', async () => {
    const bal = 'dr.faure@mssante.localhost';
    await db.query("INSERT INTO mailstore_placement (address, backend) VALUES ($1, 'store-c')", [bal]);
    for (const s of ['Scanner', 'IRM']) await deliverThroughMap(front, bal, s);
    const onC = await inboxSources(front, bal, stores.c.imap);
    await moveAcrossPairs(db, bal, 'store-b', opts);
    expect(await inboxSources(front, bal, stores.b.imap)).toEqual(onC);
    expect(await inboxSources(front, bal, stores.c.imap)).toEqual([]);
  });

  it('refuses a move to an unknown back end, and a failing copy leaves the box where it was, in use, saying which step failed', async () => {
    const bal = 'dr.roux@mssante.localhost';
    await db.query("INSERT INTO mailstore_placement (address, backend) VALUES ($1, 'store-a')", [bal]);
    await deliverThroughMap(front, bal, 'Radio');
    await expect(moveAcrossPairs(db, bal, 'store-z', opts)).rejects.toThrow(new PlacementError('no back end named "store-z" is registered (mss mailstore backends lists them)'));
    await expect(moveAcrossPairs(db, bal, 'store-b', opts)).rejects.toThrow(/store-b is in the pair of store-a/);

    // A back end registered, alive, whose doveadm server does not answer: the copy fails.
    await registerBackend(db, { name: 'store-x', host: '127.0.0.1', imapPort: 1, lmtpPort: 1, doveadmPort: await freePort('127.0.0.1') });
    const failed = await moveAcrossPairs(db, bal, 'store-x', opts).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(MoveError);
    expect((failed as MoveError).step).toBe('copy');
    expect((failed as MoveError).message).toMatch(/^the move of dr\.roux@mssante\.localhost to store-x failed at copy: .+; dr\.roux@mssante\.localhost stays on store-a, in use$/);
    expect((await boxPlacement(db, bal))!.backend).toBe('store-a');
    const row = (await db.query<{ frozen_until: Date | null; moving_to: string | null }>('SELECT frozen_until, moving_to FROM mailstore_placement WHERE address = $1', [bal])).rows[0];
    expect(row).toEqual({ frozen_until: null, moving_to: null });
    expect(await deliverThroughMap(front, bal, 'Radio 2')).toBe(stores.a.lmtp.port);
    expect((await inboxSources(front, bal, stores.a.imap)).length).toBe(2);
  });

  it('mss mailstore move: --help tells it, one line per step, journalled; a refusal exits non-zero with the sentence, journalled too', async () => {
    const bal = 'dr.cli@mssante.localhost';
    await db.query("INSERT INTO mailstore_placement (address, backend) VALUES ($1, 'store-b')", [bal]);
    await deliverThroughMap(front, bal, 'Par la CLI');
    const onB = await inboxSources(front, bal, stores.b.imap);
    const env = { MSS_DATABASE_URL: pgUrl, MSS_DATA_DIR: config.dataDir, MSS_PKI_AUTO_INIT: 'false', MSS_MAILSTORE_SECRET_FILE: secretFile, MSS_TLS_CA_FILE: config.tls.caFile, ...tsaEnv(pki) };
    const help = await runMssAsync(['mailstore', 'move', '--help'], env);
    expect(help.stdout).toMatch(/another pair[\s\S]*doveadm backup[\s\S]*--freeze <seconds>/);

    const moved = await runMssAsync(['mailstore', 'move', bal, 'store-d'], env);
    expect(moved.code, moved.stderr).toBe(0);
    expect(moved.stdout.split('\n').filter(Boolean).map((l) => l.split(':')[0])).toEqual(['copy', 'freeze', 'final', 'final', 'replica', 'switch', 'cleanup', 'cleanup', `${bal} moved from store-b to store-d (1 messages copied; emptied on store-b, store-a)`]);
    expect(await inboxSources(front, bal, stores.d.imap)).toEqual(onB);
    expect(await inboxSources(front, bal, stores.b.imap)).toEqual([]);

    const refused = await runMssAsync(['mailstore', 'move', bal, 'nowhere'], env);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('no back end named "nowhere" is registered');
    const events = await db.query<{ type: string; details: Record<string, unknown> }>('SELECT type, details FROM journal_events WHERE subject = $1 ORDER BY seq', [bal]);
    expect(events.rows.map((e) => e.type)).toEqual(['mailstore.box.moved', 'mailstore.box.move_refused']);
    expect(events.rows[0].details).toMatchObject({ from: 'store-b', to: 'store-d', messages: 1, across: true });
  });

  it('the admin API moves a box: within its pair at once (200), to another pair as a move to follow (202: its steps, then done); a refusal is a 409, journalled; a failed copy names its step', async () => {
    const journal = new Journal(db);
    const ctx = operatorBalContext({ operator: { domain: 'mssante.localhost', domains: [] }, tls: config.tls } as never, db, journal);
    const policy = new Policy({ ...balFactSource(db), ...whitelistFactSource(db) }, journal, { localDomains: ['mssante.localhost'] });
    const dataDir = mkdtempSync(join(tmpdir(), 'mss-move-api-'));
    const app = await createAdminServer(
      { db, journal, policy, throttle: new LoginThrottle(config.auth, { db, journal }), bal: ctx, tokenTtlMs: 600_000, uploadDir: join(dataDir, 'u'), reportDir: join(dataDir, 'r'), mailstoreDoveadm: mailstoreDoveadm({ ...config, mailstore: { ...config.mailstore, secretFile } }) },
      serverTlsOptions(loadTlsMaterial(config)),
    );
    try {
      const password = 'deplacer-' + Date.now();
      await createAdmin(db, journal, { login: 'nat-move', role: 'national', password }, 'test:seed');
      const login = await adminLogin(db, journal, 'nat-move', password, 600_000);
      if (!login.ok) throw new Error('no admin session');
      const call = (method: 'GET' | 'POST', url: string, payload?: unknown) => app.inject({ method, url, payload: payload as object, headers: { authorization: `Bearer ${login.token}` } });

      const backends = await call('GET', '/api/v1/mailstore/backends');
      expect(backends.statusCode).toBe(200);
      expect(backends.json().map((b: { name: string; partner: string | null }) => `${b.name}/${b.partner}`)).toEqual(expect.arrayContaining(['store-a/store-b', 'store-b/store-a', 'store-c/store-d', 'store-d/store-c']));

      const bal = 'dr.api@mssante.localhost';
      await db.query("INSERT INTO mailstore_placement (address, backend) VALUES ($1, 'store-a')", [bal]);
      await deliverThroughMap(front, bal, 'Par l’API');
      await settled('the replica of the message on store-b', async () => onDisk(stores.b, bal) === 1);
      const onA = await inboxSources(front, bal, stores.a.imap);

      // Within the pair: the map only, done on return.
      const within = await call('POST', `/api/v1/bals/${bal}/move`, { backend: 'store-b' });
      expect(within.statusCode, within.body).toBe(200);
      expect(within.json()).toMatchObject({ address: bal, backend: 'store-b', state: 'done', result: { from: 'store-a', to: 'store-b', across: false }, error: null });
      expect((await boxPlacement(db, bal))!.backend).toBe('store-b');

      // Refused: nothing changed, a sentence, journalled.
      const refused = await call('POST', `/api/v1/bals/${bal}/move`, { backend: 'nowhere' });
      expect(refused.statusCode).toBe(409);
      expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(refused.json().detail).toContain('no back end named "nowhere" is registered');

      // To another pair: a move to follow.
      const across = await call('POST', `/api/v1/bals/${bal}/move`, { backend: 'store-c', freezeSeconds: 120 });
      expect(across.statusCode, across.body).toBe(202);
      expect(across.json()).toMatchObject({ state: 'running', backend: 'store-c' });
      const again = await call('POST', `/api/v1/bals/${bal}/move`, { backend: 'store-d' });
      expect(again.statusCode).toBe(409);
      expect(again.json().detail).toMatch(/is being moved to store-c already/);
      let job = across.json();
      await poll('the move through the API to end', async () => (job = (await call('GET', `/api/v1/mailstore/moves/${job.id}`)).json()).state !== 'running', { tries: 1200, everyMs: 250 });
      expect(job.error).toBeNull();
      expect(job).toMatchObject({ state: 'done', result: { from: 'store-b', to: 'store-c', across: true, messages: 1, removedFrom: ['store-b', 'store-a'] } });
      expect(job.steps.map((l: string) => l.split(':')[0])).toEqual(['copy', 'freeze', 'final', 'final', 'replica', 'switch', 'cleanup', 'cleanup']);
      expect(await inboxSources(front, bal, stores.c.imap)).toEqual(onA);
      expect(await inboxSources(front, bal, stores.b.imap)).toEqual([]);

      // A back end whose doveadm server does not answer: the move fails at its copy, the box stays, in use.
      await registerBackend(db, { name: 'store-y', host: '127.0.0.1', imapPort: 1, lmtpPort: 1, doveadmPort: await freePort('127.0.0.1') });
      const failing = (await call('POST', `/api/v1/bals/${bal}/move`, { backend: 'store-y' })).json();
      await poll('the failing move to end', async () => (job = (await call('GET', `/api/v1/mailstore/moves/${failing.id}`)).json()).state !== 'running', { tries: 1200, everyMs: 250 });
      expect(job).toMatchObject({ state: 'failed', result: null, error: { step: 'copy', on: 'store-c' } });
      expect(job.error.detail).toMatch(/failed at copy: .+; dr\.api@mssante\.localhost stays on store-c, in use$/);
      expect((await boxPlacement(db, bal))!.backend).toBe('store-c');

      const unknown = await call('GET', `/api/v1/mailstore/moves/${'0'.repeat(32)}`);
      expect(unknown.statusCode).toBe(404);
      const events = await db.query<{ type: string; actor: string }>("SELECT type, actor FROM journal_events WHERE subject = $1 AND type LIKE 'mailstore.%' ORDER BY seq", [bal]);
      expect(events.rows.map((e) => e.type)).toEqual(['mailstore.box.moved', 'mailstore.box.move_refused', 'mailstore.box.move_refused', 'mailstore.box.moved', 'mailstore.box.move_failed']);
      expect(new Set(events.rows.map((e) => e.actor))).toEqual(new Set(['admin:nat-move']));
    } finally {
      await app.close();
    }
  });
});
