// A mail store shared by several nodes (mailstore.cluster, issue 17): two Dovecot back ends
// of one pair, each started by its node's mail store role, TLS only, registered in the
// database; a front-only node delivers (LMTP) and reads (IMAP, master user) over TLS where
// the map says, and Dovecot's replicator keeps the pair's copy.
import { connect } from 'node:net';
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../core/config/index.js';
import type { Db } from '../../core/db/index.js';
import { silentLogger } from '../../core/logger.js';
import { Supervisor } from '../../core/supervisor.js';
import { nodeRoles, startMailstoreRole } from '../../mailstore/cluster.js';
import type { Mailstore } from '../../mailstore/dovecot.js';
import { boxPlacement, listBackends, moveBox, Placement } from '../../mailstore/placement.js';
import { LmtpPool } from '../../smtp/lmtp-sessions.js';
import { pgliteTarget } from '../helpers/db.js';
import { freePorts, until } from '../helpers/operator.js';
import { eventually } from '../helpers/slapd.js';
import { testPki, type TestPki } from '../helpers/pki.js';
import { deliverThroughMap, inboxSources, messageFiles, sharedSecretFile, storeMessage as msg, storeNodeConfig as nodeConfig } from '../helpers/store-nodes.js';

describe('mail store shared by several nodes (mailstore.cluster)', () => {
  let pki: TestPki;
  let db: Db;
  let dispose: () => Promise<void>;
  const sups: Supervisor[] = [];
  let a: Mailstore;
  let b: Mailstore;
  let front: Mailstore;
  let configB: Config;

  beforeAll(async () => {
    pki = await testPki();
    ({ db, dispose } = await pgliteTarget.open());
    const secretFile = sharedSecretFile('a-secret-every-node-of-the-store-shares');
    const p = await freePorts();
    // The pair's doveadm ports are known before either starts: each replicates into the other.
    const [da, dbp] = [p.mx, p.submission];
    const sa = new Supervisor(silentLogger);
    const sb = new Supervisor(silentLogger);
    const sf = new Supervisor(silentLogger);
    sups.push(sa, sb, sf);
    a = await startMailstoreRole(nodeConfig(pki, secretFile, { node: { name: 'store-a', roles: ['mailstore'] }, mailstore: { doveadmPort: da, partner: `store-b=127.0.0.1:${dbp}` } }), silentLogger, sa, db);
    configB = nodeConfig(pki, secretFile, { node: { name: 'store-b', roles: ['mailstore'] }, mailstore: { doveadmPort: dbp, partner: `store-a=127.0.0.1:${da}` } });
    b = await startMailstoreRole(configB, silentLogger, sb, db);
    front = await startMailstoreRole(nodeConfig(pki, secretFile, { node: { name: 'front-1', roles: ['fronts'] } }), silentLogger, sf, db);
  });
  afterAll(async () => {
    for (const s of sups) await s.stopAll();
    await dispose?.();
  });

  it('checks the roles: unknown roles and a lone role without a shared store are refused with a sentence', () => {
    const base = loadConfig({ env: {}, overrides: {} });
    expect(nodeRoles(base)).toEqual({ fronts: true, mailstore: true });
    expect(() => nodeRoles({ ...base, node: { ...base.node, roles: ['fronts', 'mx'] } })).toThrow(/unknown role "mx"/);
    expect(() => nodeRoles({ ...base, node: { ...base.node, roles: ['fronts'] } })).toThrow(/mailstore\.cluster=true/);
  });

  it('registers both back ends with their pair', async () => {
    const rows = await listBackends(db);
    expect(rows.map((r) => [r.name, r.partner])).toEqual([
      ['store-a', 'store-b'],
      ['store-b', 'store-a'],
    ]);
  });

  it('speaks TLS only on the network: a client in clear gets no IMAP or LMTP greeting', async () => {
    for (const port of [a.imap.port, a.lmtp.port]) {
      // A clear-text client speaks first; the server takes it for a TLS hello, fails it and closes.
      const first = await new Promise<string>((resolve) => {
        const s = connect({ host: '127.0.0.1', port }, () => s.write('a LOGIN x y\r\nLHLO x\r\n'));
        let got = '';
        s.on('data', (d) => (got += d.toString('latin1')));
        s.on('close', () => resolve(got));
        s.on('error', () => resolve(got));
      });
      expect(first).not.toMatch(/^\* OK|^220 /);
    }
  });

  it('delivers through the map over TLS, reads over TLS as the box with the master user, and the pair gets the replica', async () => {
    const bal = 'dr.martin@mssante.localhost';
    const groups = await front.lmtpRoute!([bal]);
    expect(groups).toHaveLength(1);
    expect(groups[0].targets.map((t) => t.port)).toHaveLength(2);
    const pool = new LmtpPool(groups[0].targets[0], { name: 'front-1', size: 1 });
    try {
      expect(await pool.deliver({ from: 'labo@peer.mssante.fr', to: [bal] }, msg('Bilan sanguin'))).toEqual({ accepted: [bal], failed: [] });
    } finally {
      pool.close();
    }
    const placed = await boxPlacement(db, bal);
    const [primary, pair] = await front.imapRoute!(bal);
    expect(primary.name).toBe(placed!.backend);
    const read = async (at: { host: string; port: number }) => {
      const c = new ImapFlow({ host: at.host, port: at.port, secure: true, tls: { ca: [front.backendCa!] }, auth: { user: `${bal}*${front.master.user}`, pass: front.master.password }, logger: false });
      await c.connect();
      try {
        const st = await c.status('INBOX', { messages: true });
        return st ? st.messages : -1;
      } finally {
        await c.logout();
      }
    };
    expect(await read(primary)).toBe(1);
    // Dovecot's replicator syncs the box into the pair's doveadm server (TLS) after the change.
    // (Looked for on the pair's disk first: a login there before the first sync would make
    // the pair an INBOX of its own, which dsync then has to reconcile.)
    const pairStore = pair.name === 'store-a' ? a : b;
    await until(async () => messageFiles(pairStore, bal).length === 1, 200);
    expect(await read(pair)).toBe(1);
    // A move within the pair only changes the map: the data is there already.
    expect(await moveBox(db, bal, pair.name)).toEqual({ from: primary.name, to: pair.name });
    await expect(moveBox(db, bal, 'store-z')).rejects.toThrow(/no back end named "store-z"/);
  });

  it('puts the pair first for the boxes of a back end that is catching up', async () => {
    const bal = 'dr.leroy@mssante.localhost';
    await db.query("INSERT INTO mailstore_placement (address, backend) VALUES ($1, 'store-a')", [bal]);
    const fresh = new Placement(db, 0);
    expect((await fresh.route(bal)).backends.map((x) => x.name)).toEqual(['store-a', 'store-b']);
    await db.query("UPDATE mailstore_backends SET catchup_since = now() WHERE name = 'store-a'");
    try {
      expect((await fresh.route(bal)).backends.map((x) => x.name)).toEqual(['store-b', 'store-a']);
    } finally {
      await db.query("UPDATE mailstore_backends SET catchup_since = NULL WHERE name = 'store-a'");
    }
  });

  const settles = async (what: string, check: () => Promise<boolean>) => {
    await eventually(check, 300_000, 100).catch(() => {
      throw new Error(`${what}: still not so after 300 s`);
    });
  };
  const deliver = (bal: string, subject: string) => deliverThroughMap(front, bal, subject);
  const sources = (bal: string, at: { host: string; port: number }) => inboxSources(front, bal, at);
  const onDisk = (store: Mailstore, bal: string) => messageFiles(store, bal).length;

  it('a back end killed and started again catches up on what its pair took meanwhile: the same bytes, no duplicate', async () => {
    const bal = 'dr.durand@mssante.localhost';
    await db.query("INSERT INTO mailstore_placement (address, backend) VALUES ($1, 'store-b')", [bal]);
    expect(await deliver(bal, 'Compte rendu 1')).toBe(b.lmtp.port);
    await settles('the first message replicated to store-a', async () => onDisk(a, bal) === 1);

    // store-b dies hard (its Dovecot killed, its node gone: nothing restarts it), the mail goes to store-a.
    const pid = sups[1].status('dovecot')[0].pid!;
    process.kill(pid, 'SIGKILL');
    await b.stop();
    expect(await deliver(bal, 'Compte rendu 2')).toBe(a.lmtp.port);
    expect(await deliver(bal, 'Compte rendu 3')).toBe(a.lmtp.port);
    const onA = await sources(bal, a.imap);
    expect(onA).toHaveLength(3);

    // It comes back: its node marks it catching up, starts Dovecot and syncs every box of the pair.
    const sb2 = new Supervisor(silentLogger);
    sups.push(sb2);
    b = await startMailstoreRole(configB, silentLogger, sb2, db);
    await settles('store-b caught up (mailstore_backends.catchup_since cleared)', async () => (await listBackends(db)).find((r) => r.name === 'store-b')!.catchup_since === null);
    // Straight from store-b's IMAP: all three, byte for byte as store-a has them, each once.
    const onB = await sources(bal, b.imap);
    expect(onB).toEqual(onA);
    expect(new Set(onB.map((x) => /Message-ID: (\S+)/i.exec(x)![1])).size).toBe(3);
    // And the route the fronts take (the IMAP proxy's, the DMP watcher's) serves store-b first again.
    const route = await new Placement(db, 0).route(bal);
    expect(route.backends.map((x) => x.name)).toEqual(['store-b', 'store-a']);
    await settles("the front's map serving store-b first", async () => (await front.imapRoute!(bal))[0].port === b.imap.port);
    expect(await sources(bal, (await front.imapRoute!(bal))[0])).toEqual(onA);
  });

  it('a back end whose Dovecot crashed is restarted by its node, served second meanwhile, and catches up', async () => {
    const bal = 'dr.petit@mssante.localhost';
    const row = async () => (await listBackends(db)).find((r) => r.name === 'store-a')!;
    await settles('store-a caught up after its start', async () => (await row()).catchup_since === null);
    await db.query("INSERT INTO mailstore_placement (address, backend) VALUES ($1, 'store-a')", [bal]);
    expect(await deliver(bal, 'Ordonnance 1')).toBe(a.lmtp.port);
    await settles('the first message replicated to store-b', async () => onDisk(b, bal) === 1);

    // Dovecot dies; the supervisor restarts it, having marked the back end catching up first.
    const before = sups[0].status('dovecot')[0];
    process.kill(before.pid!, 'SIGKILL');
    await settles('store-a marked catching up before its Dovecot restarts', async () => (await row()).catchup_since !== null);
    // Whether its Dovecot is still down or already back, the mail goes to the pair.
    expect(await deliver(bal, 'Ordonnance 2')).toBe(b.lmtp.port);
    await settles('store-a caught up after the restart', async () => (await row()).catchup_since === null);
    expect(sups[0].status('dovecot')[0].restarts).toBeGreaterThan(before.restarts);
    const onB = await sources(bal, b.imap);
    expect(onB).toHaveLength(2);
    expect(await sources(bal, a.imap)).toEqual(onB);
  });
});
