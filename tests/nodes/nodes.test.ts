// Several nodes over one PostgreSQL (issue 17): three front nodes (A, B, C) and a pair of
// Dovecot back ends (S1, S2), each an `mss start` process of its own on distinct loopback
// ports, sharing only the database, the PKI and the store's secret. Mail in through A's MX
// is read through B's IMAP proxy and C's webmail; then, under a bounded load, A and the
// back end holding the box are killed with SIGKILL: every message answered 250 is in the
// store at least once, clients carry on through another node, and the journal verifies.
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { operatorBalContext } from '../../annuaire/admin/wiring.js';
import { createBal, createPerson } from '../../annuaire/bal/index.js';
import { importWhitelist } from '../../annuaire/whitelist/index.js';
import { loadConfig } from '../../core/config/index.js';
import { migrate, openPg, type Db } from '../../core/db/index.js';
import { Journal } from '../../core/journal/index.js';
import { realPgUrl } from '../helpers/db.js';
import { runMssAsync, startMss, type Started } from '../helpers/mss.js';
import { poll, sharedMasterKey } from '../helpers/nodes.js';
import { freePorts } from '../helpers/operator.js';
import { testPostgres } from '../helpers/pg-cluster.js';
import { testPki, tsaEnv, type TestPki } from '../helpers/pki.js';
import { makeWhitelistXml } from '../helpers/whitelist.js';

const PGBIN = process.env.MSS_TEST_PGBIN ?? '/usr/lib/postgresql/15/bin';
const DOMAIN = 'mssante.localhost';
const PEER = `peer.${DOMAIN}`;
const LOAD = 40;
const KILL_AFTER = 10;

/** A scratch database on the PostgreSQL MSS_DATABASE_URL names (CI), or a private cluster under /tmp (tests/helpers/pg-cluster.ts). */
async function postgres(): Promise<{ url: string; stop(): Promise<void> } | null> {
  if (!realPgUrl && !existsSync(join(PGBIN, 'initdb'))) return null;
  // Five nodes, each with its pools (the fronts' webmail workers have their own), the CLI
  // commands and the test: more than PostgreSQL's default 100 connections.
  const { url, drop } = await testPostgres({ maxConnections: 200 });
  return { url, stop: drop };
}

async function ports(n: number): Promise<number[]> {
  const out = new Set<number>();
  while (out.size < n) for (const p of Object.values(await freePorts())) out.add(p);
  return [...out].slice(0, n);
}

interface Node {
  name: string;
  dataDir: string;
  env: Record<string, string>;
  proc?: Started;
  mx?: number;
  imap?: number;
  webmail?: number;
}

function get(url: string, ca: string, o: { method?: string; token?: string; json?: unknown } = {}): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const body = o.json === undefined ? undefined : Buffer.from(JSON.stringify(o.json));
    const req = request(url, { method: o.method ?? 'GET', ca, servername: DOMAIN, headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...(o.token ? { authorization: `Bearer ${o.token}` } : {}) } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const pg = await postgres();

describe.skipIf(!pg)('three front nodes and a back end pair over one PostgreSQL', () => {
  let pki: TestPki;
  let db: Db;
  let ca: string;
  const nodes: Record<string, Node> = {};
  const person = { login: 'dr.nodes', idnps: '899999999977', password: 'mot-de-passe-nodes-2026', address: `dr.nodes@${DOMAIN}` };

  const start = async (n: Node) => {
    n.proc = await startMss(['--data-dir', n.dataDir, '--http-port', '0'], n.env);
  };
  const imapThrough = async (n: Node) => {
    const c = new ImapFlow({ host: '127.0.0.1', port: n.imap!, secure: true, tls: { ca: [ca], servername: DOMAIN }, auth: { user: `${person.address}*${person.login}`, pass: person.password }, logger: false });
    await c.connect();
    return c;
  };
  const messageIdsThrough = async (n: Node) => {
    const c = await imapThrough(n);
    try {
      await c.mailboxOpen('INBOX', { readOnly: true });
      const ids: string[] = [];
      for await (const m of c.fetch('1:*', { envelope: true })) if (m.envelope?.messageId) ids.push(m.envelope.messageId);
      return ids;
    } catch (e) {
      if (/Mailbox is empty|Invalid messageset|Nothing to fetch/i.test(String(e))) return [];
      throw e;
    } finally {
      await c.logout().catch(() => {});
    }
  };
  const mx = (n: Node) =>
    nodemailer.createTransport({
      host: '127.0.0.1',
      port: n.mx!,
      secure: false,
      requireTLS: true,
      name: PEER,
      tls: { ca, servername: DOMAIN, cert: readFileSync(pki.paths.leaves['peer-operator'].cert), key: readFileSync(pki.paths.leaves['peer-operator'].key) },
      connectionTimeout: 20_000,
      greetingTimeout: 20_000,
      socketTimeout: 60_000,
    });

  beforeAll(async () => {
    pki = await testPki();
    ca = readFileSync(pki.paths.chain, 'utf8');
    db = await openPg({ url: pg!.url, poolSize: 4 });
    await migrate(db);
    const journal = new Journal(db);
    const ctx = operatorBalContext(loadConfig({ env: {}, overrides: { operator: { domain: DOMAIN } } }), db, journal);
    await createPerson(ctx, { login: person.login, idnps: person.idnps, nom: 'NODES', prenom: 'Test', password: person.password }, 'test');
    await createBal(ctx, { address: person.address, type: 'PER', owner: person.idnps }, 'test');
    await importWhitelist(db, journal, Buffer.from(makeWhitelistXml({ count: 3, extra: [{ nom: PEER }] })), 'test', 'test');

    const secretDir = mkdtempSync(join(tmpdir(), 'mss-nodes-secret-'));
    const secretFile = join(secretDir, 'store-secret');
    writeFileSync(secretFile, 'the-secret-every-node-of-this-store-shares\n', { mode: 0o644 });
    const leaf = pki.paths.leaves.server;
    const common: Record<string, string> = {
      MSS_DATABASE_URL: pg!.url,
      MSS_DEMO_ENABLED: 'false',
      MSS_PKI_AUTO_INIT: 'false',
      MSS_OPERATOR_DOMAIN: DOMAIN,
      MSS_TLS_CERT_FILE: leaf.cert,
      MSS_TLS_KEY_FILE: leaf.key,
      MSS_TLS_CHAIN_FILE: pki.paths.intermediate,
      MSS_TLS_CA_FILE: pki.paths.chain,
      MSS_TLS_CRL_FILE: pki.file('crl.pem'),
      ...tsaEnv(pki),
      MSS_MAILSTORE_CLUSTER: 'true',
      MSS_MAILSTORE_SECRET_FILE: secretFile,
      MSS_MAILSTORE_FULL_TEXT_SEARCH: 'false',
      MSS_ADMIN_ENABLED: 'false',
      MSS_FHIR_ENABLED: 'false',
      MSS_DMP_STANDIN: 'false',
      MSS_PSC_STANDIN: 'false',
      MSS_JOURNAL_SEAL_INTERVAL: '500ms',
    };
    const [d1, d2, providerLdaps, ...fp] = await ports(12);
    const dirs = Object.fromEntries(
      ['s1', 's2', 'a', 'b', 'c'].map((name) => {
        const d = mkdtempSync(join(tmpdir(), `mss-${name}-`));
        chmodSync(d, 0o711);
        return [name, d];
      }),
    );
    // Any node delivers what another one spooled (after a crash, its leases): one keyring, in the database, under one master key.
    Object.assign(common, sharedMasterKey());
    const dir = (name: string) => dirs[name];
    for (const [name, doveadm, partner] of [
      ['s1', d1, `s2=127.0.0.1:${d2}`],
      ['s2', d2, `s1=127.0.0.1:${d1}`],
    ] as const) {
      nodes[name] = { name, dataDir: dir(name), env: { ...common, MSS_NODE_NAME: name, MSS_NODE_ROLES: 'mailstore', MSS_MAILSTORE_DOVEADM_PORT: String(doveadm), MSS_MAILSTORE_PARTNER: partner } };
    }
    ['a', 'b', 'c'].forEach((name, i) => {
      const [mxPort, imapPort, webmailPort] = fp.slice(i * 3, i * 3 + 3);
      nodes[name] = {
        name,
        dataDir: dir(name),
        mx: mxPort,
        imap: imapPort,
        webmail: webmailPort,
        env: {
          ...common,
          MSS_NODE_NAME: name,
          MSS_NODE_ROLES: 'fronts',
          MSS_SMTP_MX_PORT: String(mxPort),
          MSS_SMTP_SUBMISSION_PORT: '0',
          MSS_SMTP_SUBMISSIONS_PORT: '0',
          MSS_IMAP_PORT: String(imapPort),
          MSS_IMAP_STARTTLS_PORT: '0',
          MSS_WEBMAIL_PORT: String(webmailPort),
          MSS_LDAP_PORT: '0',
          // One node feeds the directory (a second feeder on the database is refused); B and C read syncrepl copies of A's.
          ...(name === 'a'
            ? { MSS_LDAP_ROLE: 'provider', MSS_LDAP_LDAPS_PORT: String(providerLdaps) }
            : { MSS_LDAP_ROLE: 'consumer', MSS_LDAP_LDAPS_PORT: '0', MSS_LDAP_PROVIDER_URL: `ldaps://127.0.0.1:${providerLdaps}`, MSS_LDAP_PROVIDER_SECRET_FILE: join(nodes.a.dataDir, 'ldap', 'rootpw') }),
        },
      };
    });
    // Back ends first (the fronts place boxes on registered back ends), then the fronts: A
    // first (it writes the directory secret B and C read at their start), then B and C together.
    await Promise.all([start(nodes.s1), start(nodes.s2)]);
    await start(nodes.a);
    await Promise.all([start(nodes.b), start(nodes.c)]);
  });

  afterAll(async () => {
    // Stopped together; one that does not stop on SIGTERM is killed and named (a stop that hangs is a defect).
    const hung: string[] = [];
    await Promise.all(
      Object.values(nodes).map(async (n) => {
        if (!n.proc || n.proc.child.exitCode !== null || n.proc.child.signalCode !== null) return;
        n.proc.child.kill('SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        const stopped = await Promise.race([n.proc.exited.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 120_000)))]);
        clearTimeout(timer);
        if (!stopped) {
          hung.push(n.name);
          n.proc.child.kill('SIGKILL');
          await n.proc.exited;
        }
      }),
    );
    await db?.close();
    await pg?.stop();
    expect(hung, 'nodes that did not stop within 120 s of SIGTERM').toEqual([]);
  });

  it("mail in through A's MX is read through B's IMAP proxy and C's webmail", async () => {
    const messageId = `<nodes-first-${Date.now()}@${PEER}>`;
    const info = await mx(nodes.a).sendMail({ from: `labo@${PEER}`, to: person.address, subject: 'Par le nœud A', text: 'Résultat normal.', messageId });
    expect(info.response).toMatch(/^250 /);
    await poll(`${messageId} to be read through B's IMAP proxy`, async () => (await messageIdsThrough(nodes.b)).includes(messageId), { tries: 240, everyMs: 250 });

    const login = await get(`https://127.0.0.1:${nodes.c.webmail}/api/v1/login`, ca, { method: 'POST', json: { login: person.login, password: person.password } });
    expect(login.status).toBe(200);
    const list = await get(`https://127.0.0.1:${nodes.c.webmail}/api/v1/bals/${person.address}/folders/INBOX/messages`, ca, { token: login.body.token });
    expect(list.status).toBe(200);
    expect(list.body.messages.map((m: { subject: string }) => m.subject)).toContain('Par le nœud A');

    const placed = await db.query<{ backend: string }>('SELECT backend FROM mailstore_placement WHERE address = $1', [person.address]);
    expect(['s1', 's2']).toContain(placed.rows[0].backend);
  });

  it('mss mailstore shows where the box is and moves it to its pair once the replica is there; the nodes follow', async () => {
    const env = { MSS_DATABASE_URL: pg!.url, MSS_DATA_DIR: nodes.b.dataDir, MSS_PKI_AUTO_INIT: 'false', ...tsaEnv(pki) };
    const help = await runMssAsync(['mailstore', '--help'], env);
    expect(help.stdout).toMatch(/backends[\s\S]*show[\s\S]*move/);
    const shown = await runMssAsync(['mailstore', 'show', person.address, '--json'], env);
    expect(shown.code, shown.stderr).toBe(0);
    const from = JSON.parse(shown.stdout) as { backend: string; partner: string };
    // The pair's copy is on its disk (Dovecot's replicator) before the map points there.
    const onDisk = (n: Node) => ['new', 'cur'].reduce((k, d) => k + (existsSync(join(n.dataDir, 'mail', DOMAIN, 'dr.nodes', 'Maildir', d)) ? readdirSync(join(n.dataDir, 'mail', DOMAIN, 'dr.nodes', 'Maildir', d)).length : 0), 0);
    await poll(`the replica of the box on ${from.partner}'s disk`, async () => onDisk(nodes[from.partner]) >= 1, { tries: 480, everyMs: 250 });
    const moved = await runMssAsync(['mailstore', 'move', person.address, from.partner], env);
    expect(moved.stdout).toContain(`moved from ${from.backend} to ${from.partner}`);
    const refused = await runMssAsync(['mailstore', 'move', person.address, 'nowhere'], env);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('no back end named "nowhere"');
    // C's proxy reads the box on its new back end (its map cache lasts 2 s).
    await poll(`C's proxy to read the box on ${from.partner}`, async () => (await messageIdsThrough(nodes.c)).length >= 1, { tries: 240, everyMs: 250 });
    expect((await db.query<{ backend: string }>('SELECT backend FROM mailstore_placement WHERE address = $1', [person.address])).rows[0].backend).toBe(from.partner);
  });

  it('under load, kill -9 of front A and of the back end holding the box: every 250 is delivered at least once, clients go on through B and C, the journal verifies', async () => {
    const holder = (await db.query<{ backend: string }>('SELECT backend FROM mailstore_placement WHERE address = $1', [person.address])).rows[0].backend;
    const store = nodes[holder];
    const dovecotPid = Number(readFileSync(join(store.dataDir, 'dovecot', 'run', 'master.pid'), 'utf8').trim());
    const slapdPidA = Number(readFileSync(join(nodes.a.dataDir, 'ldap', 'run', 'slapd.pid'), 'utf8').trim());
    const fronts = [nodes.a, nodes.b, nodes.c].map((n) => ({ n, t: mx(n) }));
    const acknowledged: string[] = [];
    /** Answered 250 once A and the back end were dead: only B and C could take them, only the pair could store them. */
    const afterKill: string[] = [];
    let next = 0;
    let killed = false;
    let refusedAttempts = 0;
    // Three senders; each message tries A, then B, then C — a client that finds a node
    // dead goes to the next one, as an MTA does with several MX records.
    await Promise.all(
      Array.from({ length: 3 }, async (_, w) => {
        while (next < LOAD) {
          const i = next++;
          const messageId = `<nodes-load-${i}-${Date.now()}@${PEER}>`;
          for (let k = 0; k < fronts.length; k++) {
            const { t } = fronts[(w + k) % fronts.length];
            try {
              const info = await t.sendMail({ from: `labo@${PEER}`, to: person.address, subject: `charge ${i}`, text: `message ${i}`, messageId });
              if (/^250 /.test(info.response)) {
                acknowledged.push(messageId);
                if (killed) afterKill.push(messageId);
              }
              break;
            } catch {
              refusedAttempts++;
            }
          }
          if (!killed && acknowledged.length >= KILL_AFTER) {
            killed = true;
            // The machines die: the node processes and the daemons they ran.
            nodes.a.proc!.child.kill('SIGKILL');
            process.kill(slapdPidA, 'SIGKILL');
            store.proc!.child.kill('SIGKILL');
            process.kill(dovecotPid, 'SIGKILL');
          }
        }
      }),
    );
    expect(killed).toBe(true);
    await nodes.a.proc!.exited;
    await store.proc!.exited;
    expect(acknowledged.length).toBeGreaterThanOrEqual(LOAD - 5);
    // The senders did meet the dead node and went on through another one.
    expect(refusedAttempts).toBeGreaterThan(0);
    expect(afterKill.length).toBeGreaterThan(0);

    // Every spooled message is delivered by a surviving node (A's leases end with its
    // heartbeat, 30 s; the survivors open what A sealed: the nodes share the spool keys).
    await poll('every spooled message to be delivered by B or C', async () => Number((await db.query<{ n: string }>("SELECT count(*) AS n FROM smtp_spool WHERE state = 'queued'")).rows[0].n) === 0, {
      tries: 600,
      everyMs: 500,
      detail: async () => (await db.query("SELECT id, attempts, leased_by, next_attempt_at, last_error FROM smtp_spool WHERE state = 'queued' ORDER BY id")).rows,
    });
    // Readers carry on through B and C: the proxy falls back to the box's pair.
    const viaB = await messageIdsThrough(nodes.b);
    const viaC = await messageIdsThrough(nodes.c);
    expect(viaC.sort()).toEqual(viaB.sort());
    // …and what was accepted after the kill was delivered to the pair and is read there.
    expect(afterKill.filter((id) => !viaB.includes(id))).toEqual([]);
    // What the dead back end took before it died and had not replicated yet is on its disk:
    // bring it back and read both copies directly (TLS, master user) — their union holds every 250.
    await start(store);
    const backends = (await db.query<{ name: string; imap_port: number }>('SELECT name, imap_port FROM mailstore_backends ORDER BY name')).rows;
    const secret = readFileSync(nodes.s1.env.MSS_MAILSTORE_SECRET_FILE, 'utf8').trim();
    const union = new Set<string>();
    for (const b of backends) {
      const c = new ImapFlow({ host: '127.0.0.1', port: b.imap_port, secure: true, tls: { ca: [ca], servername: DOMAIN }, auth: { user: `${person.address}*mss-proxy`, pass: secret }, logger: false });
      await c.connect();
      try {
        await c.mailboxOpen('INBOX', { readOnly: true });
        for await (const m of c.fetch('1:*', { envelope: true })) if (m.envelope?.messageId) union.add(m.envelope.messageId);
      } finally {
        await c.logout().catch(() => {});
      }
    }
    expect(acknowledged.filter((id) => !union.has(id))).toEqual([]);

    const verify = await runMssAsync(['journal', 'verify'], { MSS_DATABASE_URL: pg!.url, MSS_DATA_DIR: nodes.b.dataDir, MSS_PKI_AUTO_INIT: 'false', ...tsaEnv(pki) });
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  });
});

if (!pg) {
  describe('three front nodes and a back end pair over one PostgreSQL', () => {
    it.skip(`skipped: no PostgreSQL (${PGBIN}/initdb is missing and MSS_DATABASE_URL is not set)`, () => {});
  });
}
