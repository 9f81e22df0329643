// bench/nodes: inbound mail (MX → spool → LMTP over TLS to the shared back end) and IMAP
// FETCH through the proxy, with one front node, then two, on this machine (issue 17).
//
//   node dist/bench/nodes.js [--messages 200] [--connections 4] [--fetches 400] [--clients 4]
//
// Each node is an `mss start` process (node.roles=fronts, mailstore.cluster) over one
// PostgreSQL (MSS_DATABASE_URL's, on a scratch database; else a private cluster under /tmp)
// with one Dovecot back end node (node.roles=mailstore). The load is spread over the fronts
// running. Inbound is timed until every message is delivered (spool rows done), not at the
// last 250. CPU per message: the CPU time of the node processes and their children (Dovecot
// included) from /proc, over the phase. The cores are shared, so the ratio two / one shows
// the coordination cost rather than a gain. Prints the load average with each figure.
// Loopback only; bounded in count; processes and directories removed at the end.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import pg from 'pg';
import { operatorBalContext } from '../annuaire/admin/wiring.js';
import { createBal, createPerson } from '../annuaire/bal/index.js';
import { trustPeer } from './peer.js';
import { initDevPki } from '../certs/pki.js';
import { loadConfig } from '../core/config/index.js';
import { migrate, openPg } from '../core/db/index.js';
import { Journal } from '../core/journal/index.js';
import { freePort } from '../core/net.js';
import { fromRoot } from '../core/paths.js';
import { allProcs } from './proc.js';

const { values: args } = parseArgs({ options: { messages: { type: 'string', default: '200' }, connections: { type: 'string', default: '4' }, fetches: { type: 'string', default: '400' }, clients: { type: 'string', default: '4' } } });
const MESSAGES = Math.min(5000, Number(args.messages));
const CONNECTIONS = Math.min(32, Number(args.connections));
const FETCHES = Math.min(10_000, Number(args.fetches));
const CLIENTS = Math.min(32, Number(args.clients));
const DOMAIN = 'mssante.localhost';
const PEER = `peer.${DOMAIN}`;
const PGBIN = '/usr/lib/postgresql/15/bin';

const cleanups: Array<() => void> = [];
const la = () => loadavg().map((x) => x.toFixed(1)).join(' ');

async function database(): Promise<string> {
  const base = process.env.MSS_DATABASE_URL;
  if (base) {
    const name = `mss_bench_nodes_${process.pid}`;
    const c = new pg.Client({ connectionString: base });
    await c.connect();
    await c.query(`CREATE DATABASE ${name}`);
    await c.end();
    cleanups.push(() => execFileSync(process.execPath, ['-e', `const pg=require('pg');const c=new pg.Client({connectionString:${JSON.stringify(base)}});c.connect().then(()=>c.query('DROP DATABASE IF EXISTS ${name} WITH (FORCE)')).then(()=>c.end())`], { cwd: fromRoot() }));
    const u = new URL(base);
    u.pathname = `/${name}`;
    return u.toString();
  }
  if (!existsSync(join(PGBIN, 'initdb'))) throw new Error(`no PostgreSQL: set MSS_DATABASE_URL or install postgresql-15 (${PGBIN}/initdb)`);
  const dir = mkdtempSync(join(tmpdir(), 'mss-bench-nodes-pg-'));
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, 'pw'), 'bench\n');
  const port = await freePort();
  const sh = (cmd: string) => (process.getuid?.() === 0 ? (execFileSync('chown', ['-R', 'postgres', dir]), execFileSync('su', ['postgres', '-c', cmd], { stdio: 'pipe' })) : execFileSync('sh', ['-c', cmd], { stdio: 'pipe' }));
  sh(`${PGBIN}/initdb -D ${dir}/data -A scram-sha-256 -U postgres --pwfile=${dir}/pw >/dev/null`);
  sh(`${PGBIN}/pg_ctl -D ${dir}/data -o '-p ${port} -k ${dir} -c listen_addresses=127.0.0.1' -l ${dir}/log -w start`);
  cleanups.push(() => {
    sh(`${PGBIN}/pg_ctl -D ${dir}/data -m fast stop`);
    rmSync(dir, { recursive: true, force: true });
  });
  return `postgres://postgres:bench@127.0.0.1:${port}/postgres`;
}

function startNode(env: Record<string, string>, dataDir: string): Promise<ChildProcess> {
  const clean: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('MSS_')) clean[k] = v;
  const child = spawn(process.execPath, [fromRoot('dist', 'bin', 'mss.js'), 'start', '--data-dir', dataDir, '--http-port', '0'], { env: { ...clean, MSS_LOG_LEVEL: 'warn', MSS_LOG_FORMAT: 'json', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  cleanups.push(() => child.kill('SIGTERM'));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      if (/Press Ctrl-C to stop/.test(out)) resolve(child);
    });
    child.stderr!.resume();
    child.on('exit', (code) => reject(new Error(`a node exited with ${code} before it was ready`)));
  });
}

/** CPU ms of these processes and all their descendants (Dovecot, slapd, workers). */
function cpuOf(pids: number[]): number {
  const procs = allProcs();
  const kids = new Map<number, number[]>();
  for (const p of procs) kids.set(p.ppid, [...(kids.get(p.ppid) ?? []), p.pid]);
  const byPid = new Map(procs.map((p) => [p.pid, p]));
  let ms = 0;
  const walk = (pid: number) => {
    ms += byPid.get(pid)?.cpuMs ?? 0;
    for (const k of kids.get(pid) ?? []) walk(k);
  };
  pids.forEach(walk);
  return ms;
}

async function main() {
  const work = mkdtempSync(join(tmpdir(), 'mss-bench-nodes-'));
  chmodSync(work, 0o711);
  cleanups.push(() => rmSync(work, { recursive: true, force: true }));
  const pkiDir = join(work, 'pki');
  const { paths } = await initDevPki({ dir: pkiDir, domain: DOMAIN, keyBits: 2048, validityDays: 30 });
  const url = await database();
  const db = await openPg({ url, poolSize: 2 });
  await migrate(db);
  const journal = new Journal(db);
  const ctx = operatorBalContext(loadConfig({ env: {}, overrides: { operator: { domain: DOMAIN } } }), db, journal);
  const person = { login: 'dr.bench', idnps: '899999999955', password: 'mot-de-passe-bench-2026', address: `dr.bench@${DOMAIN}` };
  await createPerson(ctx, { login: person.login, idnps: person.idnps, nom: 'BENCH', prenom: 'Nodes', password: person.password }, 'bench');
  await createBal(ctx, { address: person.address, type: 'PER', owner: person.idnps }, 'bench');
  await trustPeer(db, journal, PEER);
  const secretFile = join(work, 'secret');
  writeFileSync(secretFile, 'bench-store-secret\n', { mode: 0o644 });
  const common = {
    MSS_DATABASE_URL: url,
    MSS_DEMO_ENABLED: 'false',
    MSS_PKI_AUTO_INIT: 'false',
    MSS_PKI_DIR: pkiDir,
    MSS_OPERATOR_DOMAIN: DOMAIN,
    MSS_MAILSTORE_CLUSTER: 'true',
    MSS_MAILSTORE_SECRET_FILE: secretFile,
    MSS_MAILSTORE_FULL_TEXT_SEARCH: 'false',
    MSS_ADMIN_ENABLED: 'false',
    MSS_FHIR_ENABLED: 'false',
    MSS_WEBMAIL_ENABLED: 'false',
    MSS_DMP_STANDIN: 'false',
    MSS_PSC_STANDIN: 'false',
  };
  const dir = (n: string) => {
    const d = join(work, n);
    execFileSync('mkdir', ['-p', d]);
    chmodSync(d, 0o711);
    return d;
  };
  const store = await startNode({ ...common, MSS_NODE_NAME: 'store', MSS_NODE_ROLES: 'mailstore' }, dir('store'));
  const fronts: Array<{ proc: ChildProcess; mx: number; imap: number }> = [];
  const addFront = async (name: string) => {
    const mx = await freePort();
    const imap = await freePort();
    const proc = await startNode({ ...common, MSS_NODE_NAME: name, MSS_NODE_ROLES: 'fronts', MSS_SMTP_MX_PORT: String(mx), MSS_SMTP_SUBMISSION_PORT: '0', MSS_SMTP_SUBMISSIONS_PORT: '0', MSS_IMAP_PORT: String(imap), MSS_IMAP_STARTTLS_PORT: '0', MSS_LDAP_PORT: '0', MSS_LDAP_LDAPS_PORT: '0' }, dir(name));
    fronts.push({ proc, mx, imap });
  };
  const ca = readFileSync(paths.chain);
  const tls = { ca, servername: DOMAIN, cert: readFileSync(paths.leaves['peer-operator'].cert), key: readFileSync(paths.leaves['peer-operator'].key) };
  const pids = () => [store.pid!, ...fronts.map((f) => f.proc.pid!)];
  const done = async () => Number((await db.query<{ n: string }>("SELECT count(*) AS n FROM smtp_spool WHERE state = 'done'")).rows[0].n);

  const inbound = async () => {
    const before = await done();
    const cpu0 = cpuOf(pids());
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: CONNECTIONS }, async (_, c) => {
        const t = nodemailer.createTransport({ host: '127.0.0.1', port: fronts[c % fronts.length].mx, secure: false, requireTLS: true, name: PEER, pool: true, maxConnections: 1, tls });
        while (next < MESSAGES) {
          const i = next++;
          await t.sendMail({ from: `labo@${PEER}`, to: person.address, subject: `bench ${i}`, text: `message ${i} `.repeat(50) });
        }
        t.close();
      }),
    );
    while ((await done()) - before < MESSAGES) await new Promise((r) => setTimeout(r, 50));
    const s = (performance.now() - t0) / 1000;
    return { rate: MESSAGES / s, cpuPerMsg: (cpuOf(pids()) - cpu0) / MESSAGES };
  };
  const fetches = async () => {
    const cpu0 = cpuOf(pids());
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: CLIENTS }, async (_, c) => {
        const f = fronts[c % fronts.length];
        const cl = new ImapFlow({ host: '127.0.0.1', port: f.imap, secure: true, tls: { ca: [ca], servername: DOMAIN }, auth: { user: person.address, pass: person.password }, logger: false });
        await cl.connect();
        const box = await cl.mailboxOpen('INBOX', { readOnly: true });
        while (next < FETCHES) {
          next++;
          await cl.fetchOne(String(1 + Math.floor(Math.random() * box.exists)), { source: true });
        }
        await cl.logout();
      }),
    );
    const s = (performance.now() - t0) / 1000;
    return { rate: FETCHES / s, cpuPerFetch: (cpuOf(pids()) - cpu0) / FETCHES };
  };

  await addFront('front-1');
  const in1 = await inbound();
  const f1 = await fetches();
  console.log(`one front:  inbound ${in1.rate.toFixed(1)} msg/s, ${in1.cpuPerMsg.toFixed(1)} ms CPU/msg; FETCH ${f1.rate.toFixed(1)}/s, ${f1.cpuPerFetch.toFixed(2)} ms CPU/fetch (load ${la()})`);
  await addFront('front-2');
  const in2 = await inbound();
  const f2 = await fetches();
  console.log(`two fronts: inbound ${in2.rate.toFixed(1)} msg/s, ${in2.cpuPerMsg.toFixed(1)} ms CPU/msg; FETCH ${f2.rate.toFixed(1)}/s, ${f2.cpuPerFetch.toFixed(2)} ms CPU/fetch (load ${la()})`);
  console.log(`ratio two / one: inbound ${(in2.rate / in1.rate).toFixed(2)}×, FETCH ${(f2.rate / f1.rate).toFixed(2)}×; CPU per message ${(in2.cpuPerMsg / in1.cpuPerMsg).toFixed(2)}×, per fetch ${(f2.cpuPerFetch / f1.cpuPerFetch).toFixed(2)}× (${MESSAGES} messages over ${CONNECTIONS} connections, ${FETCHES} fetches by ${CLIENTS} clients; shared cores)`);
  await db.close();
}

main()
  .catch((e) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const c of cleanups.reverse()) {
      try {
        c();
      } catch {
        /* best effort */
      }
    }
    await new Promise((r) => setTimeout(r, 500));
  });
