// bench/mixed: a regional operator's busy hour, every front at once, against each front alone
// in the same run (issue 13: no front starves another).
//
// The hour modelled: 20,000 boxes, 2,000 people online. Their Thunderbirds reconnect every
// ~15 min (2.2 IMAP logins/s, each session: LOGIN, SELECT, FETCH of the envelopes, IDLE);
// 400 webmail users click every 10 s (40 requests/s, list and read); 30,000 messages arrive
// from other operators (8.3/s over mutual TLS on the MX) and 5,000 are submitted (1.4/s); two
// administrators query the admin API (0.5/s); monitoring asks /health; and the monthly sync
// of the national file (RPPS) runs. This machine (2 cores, shared) cannot carry all of it,
// so the offered rates are the model's times a factor printed per front (--scale multiplies
// them all), and the people online are --online IDLE sessions held open.
//
// Phases: each front alone for --duration s, then everything together (with the sync and the
// IDLE sessions) for --duration s. For each front: p50/p95/p99 and the rate achieved, alone
// and mixed, and their ratio; the targets are checked at the end (/health p99 ≤ 50 ms, MX 250
// p99 ≤ 500 ms, IMAP login p99 ≤ 500 ms, webmail p95 ≤ 150 ms, every front ≥ 0.8× its solo
// rate); beside /health, a control — a bare HTTP server in a process of its own at the
// health thread's niceness, probed alike — gives the machine's floor for such an answer. Open
// loop: requests start at a fixed rate whatever the answers; latency counts from
// each request's start, and how late the generator started it (its own process, on a busy
// shared machine) is printed apart. Each front's load generator is a child process (they would be other
// machines). The platform runs in this process on PGlite (MSS_DATABASE_URL: PostgreSQL), as
// `mss start` has it; loopback only; bounded in time.
//
//   node dist/bench/mixed.js [--duration 50] [--scale 1] [--online 100] [--users 20] [--national 20000]
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { loadavg, setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import { createAdmin } from '../annuaire/admin/accounts.js';
import { operatorBalContext } from '../annuaire/admin/wiring.js';
import { createBal, createPerson } from '../annuaire/bal/index.js';
import { trustPeer } from './peer.js';
import { startPlatform } from '../bin/platform.js';
import { initDevPki } from '../certs/pki.js';
import { loadConfig } from '../core/config/index.js';
import { silentLogger } from '../core/logger.js';
import { deliverLmtp } from '../mailstore/lmtp.js';
import { activityLines, encodeFile } from '../tests/helpers/rpps-generator.js';
import { connectTcp, lineWaiter, open, openLoop, pct, startTls, Wire, type OpenLoopResult } from './load.js';

const FRONTS = ['health', 'mx', 'submission', 'imap', 'webmail', 'admin'] as const;
type Front = (typeof FRONTS)[number];

/** The busy hour's rates (per second) and what this bench offers at --scale 1. */
const MODEL: Record<Front, { hour: number; offered: number; what: string }> = {
  health: { hour: 1, offered: 5, what: '/health (monitoring), GET' },
  mx: { hour: 8.3, offered: 4, what: 'MX: mutual TLS, MAIL/RCPT/DATA → 250 (time after the data)' },
  submission: { hour: 1.4, offered: 1, what: 'submission 465: TLS, AUTH PLAIN, MAIL/RCPT/DATA → 250 (whole transaction)' },
  imap: { hour: 2.2, offered: 2, what: 'IMAP login (reconnecting, TLS resumed), then SELECT, FETCH envelopes, IDLE 3 s' },
  webmail: { hour: 40, offered: 8, what: 'webmail API: list-50 and read, alternately' },
  admin: { hour: 0.5, offered: 1, what: 'admin API: GET /bals?limit=50' },
};

const { values: args } = parseArgs({
  options: {
    // 50 s: 100 IMAP logins at the offered 2/s, so that their p99 is not simply the slowest.
    duration: { type: 'string', default: '50' },
    scale: { type: 'string', default: '1' },
    online: { type: 'string', default: '100' },
    users: { type: 'string', default: '20' },
    national: { type: 'string', default: '20000' },
    only: { type: 'string' },
    'prober-priority': { type: 'string' },
    child: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  process.stdout.write(
    [
      'usage: node dist/bench/mixed.js [--duration S] [--scale X] [--online N] [--users N] [--national LINES] [--only health,mx,…]',
      '  --duration S   seconds of each phase (each front alone, then all together; default 50, at most 300)',
      '  --scale X      multiplies every offered rate (default 1; the model and the factors are printed)',
      '  --online N     IMAP sessions held in IDLE during the mixed phase (people online; default 100)',
      '  --users N      people with a password and a personal box (default 20)',
      '  --national L   lines of the national activity file synced during the mixed phase (default 20,000)',
      '  --only         the fronts to measure (comma-separated): ' + FRONTS.join(','),
      "  --prober-priority N  niceness of the /health prober (default: the platform's http.healthPriority, -5, as its",
      '                 health thread): in production monitoring probes from another machine; here, at the load',
      "                 generators' niceness, its own wake-ups on the shared cores count in /health's latency (0: that way)",
      '  MSS_DATABASE_URL=postgres://… runs the platform on PostgreSQL instead of PGlite.',
      '',
    ].join('\n'),
  );
  process.exit(0);
}

const DOMAIN = 'mssante.localhost';
const PEER = `peer.${DOMAIN}`;
const PASSWORD = 'correct horse battery staple';
const login = (i: number) => `praticien${i}`;
const box = (i: number) => `praticien${i}@${DOMAIN}`;

// ---------------------------------------------------------------- load generators (children)

interface Target {
  health: string;
  /** A bare HTTP server in a process of its own at the health thread's niceness: the machine's floor for /health. */
  control: string;
  mxPort: number;
  submissionsPort: number;
  imapsPort: number;
  webmail: string;
  admin: string;
  adminLogin: { login: string; password: string };
  ca: string;
  peer: { cert: string; key: string };
  users: number;
}
type Job = { front: Front; rate: number; durationMs: number; t: Target } | { front: 'online'; n: number; t: Target } | { front: 'sync'; durationMs: number; t: Target; files: string[]; from: number };
/** The health front's result, with the control server's latencies. */
type HealthResult = OpenLoopResult & { control?: number[] };
type FromChild = { ready: true } | { ok: true; result: unknown } | { ok: false; error: string };

function https(base: string, ca: string, agent: HttpsAgent, method: string, path: string, o: { token?: string; json?: unknown; body?: Buffer; type?: string } = {}): Promise<{ status: number; body: string }> {
  const u = new URL(path, base);
  const body = o.json !== undefined ? Buffer.from(JSON.stringify(o.json)) : o.body;
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        method,
        ca,
        servername: 'localhost',
        agent,
        headers: { ...(o.token ? { authorization: `Bearer ${o.token}` } : {}), ...(body ? { 'content-type': o.json !== undefined ? 'application/json' : (o.type ?? 'application/octet-stream'), 'content-length': String(body.length) } : {}) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function httpGet(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    httpRequest(url, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    })
      .on('error', reject)
      .end();
  });
}

/** The control for /health: an HTTP server doing nothing else, in a process of its own, at `priority`. */
async function controlServer(priority: number): Promise<{ child: ChildProcess; url: string }> {
  const code = "require('node:http').createServer((q, s) => s.end('{}')).listen(0, '127.0.0.1', function () { process.send(this.address().port); });";
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve, reject) => child.once('message', (m) => resolve(m as number)).once('exit', () => reject(new Error('the control server did not start'))));
  try {
    if (priority && child.pid) setPriority(child.pid, priority);
  } catch {
    // Left at niceness 0: the prober's own message says why (same cause).
  }
  return { child, url: `http://127.0.0.1:${port}/` };
}

const message = (to: string, i: number, from: string) =>
  Buffer.from(
    `From: <${from}>\r\nTo: <${to}>\r\nSubject: Compte rendu ${i}\r\nDate: ${new Date().toUTCString()}\r\nMessage-ID: <mixed.${process.pid}.${i}@${PEER}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n` +
      'Resultats de biologie : hemoglobine 14,2 g/dL, plaquettes 250 G/L, RAS.\r\n'.repeat(100) +
      '.\r\n',
    'latin1',
  );

/** Tells the platform this generator is ready (logged in, connected) and waits for the signal every front starts on together. */
async function readyThenGo(): Promise<void> {
  process.send!({ ready: true } satisfies FromChild);
  await new Promise<void>((r) => process.once('message', () => r()));
}

async function generate(job: Job): Promise<unknown> {
  const t = job.t;
  const agent = new HttpsAgent({ keepAlive: true, maxSockets: 256, ca: t.ca });
  const tls: ConnectionOptions = { ca: t.ca, servername: 'localhost' };
  switch (job.front) {
    case 'health': {
      // The control is probed alike, half a period later: what /health's answer costs beyond
      // any process's on this machine at that moment.
      const probe = (url: string) => async () => {
        const code = await httpGet(url);
        if (code !== 200) throw new Error(`${url} answered ${code}`);
      };
      // Connected before the window, as a monitoring agent keeps its connection (Node's
      // keep-alive agent): the window then times the answers, not the first probe's TCP
      // handshake amid every other generator's start.
      await probe(t.health)();
      await probe(t.control)();
      await readyThenGo();
      const control = new Promise((r) => setTimeout(r, 500 / job.rate)).then(() => openLoop(job.rate, job.durationMs, probe(t.control)));
      const health = await openLoop(job.rate, job.durationMs, probe(t.health));
      return { ...health, control: (await control).lat } satisfies HealthResult;
    }
    case 'mx': {
      const mtls: ConnectionOptions = { ...tls, cert: t.peer.cert, key: t.peer.key };
      await readyThenGo();
      return openLoop(job.rate, job.durationMs, async (i) => {
        const wire0 = new Wire(await connectTcp(t.mxPort));
        let wire = wire0;
        try {
          await wire.cmd('', '220');
          await wire.cmd(`EHLO mx.${PEER}\r\n`, '250');
          await wire.cmd('STARTTLS\r\n', '220');
          wire = new Wire(await startTls(wire0.detachPlain(), mtls));
          await wire.cmd(`EHLO mx.${PEER}\r\n`, '250');
          const to = box(i % t.users);
          await wire.cmd(`MAIL FROM:<labo@${PEER}>\r\n`, '250');
          await wire.cmd(`RCPT TO:<${to}>\r\n`, '250');
          await wire.cmd('DATA\r\n', '354');
          const t0 = performance.now();
          await wire.cmd(message(to, i, `labo@${PEER}`), '250');
          const ms = performance.now() - t0;
          await wire.cmd('QUIT\r\n', '221').catch(() => {});
          return ms;
        } finally {
          wire.sock.destroy();
        }
      });
    }
    case 'submission':
      await readyThenGo();
      return openLoop(job.rate, job.durationMs, async (i) => {
        const me = i % t.users;
        const sock = await open(t.submissionsPort, tls);
        const wire = new Wire(sock);
        try {
          await wire.cmd('', '220');
          await wire.cmd('EHLO poste.localhost\r\n', '250');
          await wire.cmd(`AUTH PLAIN ${Buffer.from(`\0${login(me)}\0${PASSWORD}`).toString('base64')}\r\n`, '235');
          const to = box((me + 1) % t.users);
          await wire.cmd(`MAIL FROM:<${box(me)}>\r\n`, '250');
          await wire.cmd(`RCPT TO:<${to}>\r\n`, '250');
          await wire.cmd('DATA\r\n', '354');
          await wire.cmd(message(to, i, box(me)), '250');
          await wire.cmd('QUIT\r\n', '221').catch(() => {});
        } finally {
          sock.destroy();
        }
      });
    case 'imap': {
      // One TLS session kept per user, offered again at each reconnection (Thunderbird does).
      const sessions = new Map<number, Buffer>();
      const loginAs = async (u: number): Promise<{ s: TLSSocket; wait: ReturnType<typeof lineWaiter> }> => {
        const s = (await open(t.imapsPort, { ...tls, ...(sessions.has(u) ? { session: sessions.get(u) } : {}) })) as TLSSocket;
        s.on('session', (b: Buffer) => sessions.set(u, b));
        const wait = lineWaiter(s);
        await wait(/\r\n/);
        s.write(`a LOGIN "${box(u)}" "${PASSWORD}"\r\n`);
        const a = await wait(/^a (OK|NO|BAD).*\r\n/m);
        if (!/^a OK/m.test(a)) {
          s.destroy();
          throw new Error(`login: ${a.trim().split('\r\n').pop()}`);
        }
        return { s, wait };
      };
      // Each person has logged in once already (the password is in the cache, the client
      // holds a TLS session): these are reconnections, as in the busy hour.
      for (let u = 0; u < t.users; u++) (await loginAs(u)).s.destroy();
      await readyThenGo();
      return openLoop(job.rate, job.durationMs, async (i) => {
        const u = i % t.users;
        const t0 = performance.now();
        const { s, wait } = await loginAs(u);
        try {
          const ms = performance.now() - t0;
          s.write('b SELECT INBOX\r\n');
          await wait(/^b OK.*\r\n/m);
          s.write('c FETCH 1:* (FLAGS ENVELOPE)\r\n');
          await wait(/^c (OK|NO|BAD).*\r\n/m);
          s.write('d IDLE\r\n');
          await wait(/^\+ .*\r\n/m);
          await new Promise((res) => setTimeout(res, 3000));
          s.write('DONE\r\ne LOGOUT\r\n');
          await wait(/^e OK.*\r\n/m).catch(() => '');
          return ms;
        } finally {
          s.destroy();
        }
      });
    }
    case 'webmail': {
      const tokens: string[] = [];
      for (let u = 0; u < t.users; u++) {
        const r = await https(t.webmail, t.ca, agent, 'POST', '/api/v1/login', { json: { login: login(u), password: PASSWORD } });
        if (r.status !== 200) throw new Error(`webmail login: ${r.status} ${r.body.slice(0, 200)}`);
        tokens.push(JSON.parse(r.body).token as string);
        // Opens the person's box (the API's IMAP connection): not timed, as a client's connect is not.
        await https(t.webmail, t.ca, agent, 'GET', `/api/v1/bals/${encodeURIComponent(box(u))}/folders`, { token: tokens[u] });
      }
      await readyThenGo();
      const uids = new Map<number, number[]>();
      return openLoop(job.rate, job.durationMs, async (i) => {
        const u = i % t.users;
        const b = encodeURIComponent(box(u));
        const known = uids.get(u);
        const path = i % 2 === 0 || !known?.length ? `/api/v1/bals/${b}/folders/INBOX/messages?pageSize=50` : `/api/v1/bals/${b}/messages/INBOX/${known[i % known.length]}?markSeen=false`;
        const r = await https(t.webmail, t.ca, agent, 'GET', path, { token: tokens[u] });
        if (r.status !== 200) throw new Error(`${path.split('?')[0]}: ${r.status} ${r.body.slice(0, 200)}`);
        if (path.includes('/folders/INBOX/messages')) uids.set(u, (JSON.parse(r.body).messages as Array<{ uid: number }>).map((m) => m.uid));
      });
    }
    case 'admin': {
      const l = await https(t.admin, t.ca, agent, 'POST', '/api/v1/login', { json: t.adminLogin });
      if (l.status !== 200) throw new Error(`admin login: ${l.status} ${l.body.slice(0, 200)}`);
      const token = JSON.parse(l.body).token as string;
      await readyThenGo();
      return openLoop(job.rate, job.durationMs, async (i) => {
        const r = await https(t.admin, t.ca, agent, 'GET', `/api/v1/bals?limit=50&offset=${(i * 7) % t.users}`, { token });
        if (r.status !== 200) throw new Error(`admin: ${r.status} ${r.body.slice(0, 200)}`);
      });
    }
    case 'online': {
      // People online: IDLE sessions held until the parent says stop.
      const held: TLSSocket[] = [];
      let failed = 0;
      let firstError = '';
      for (let k = 0; k < job.n; k += 8)
        await Promise.all(
          Array.from({ length: Math.min(8, job.n - k) }, async (_, j) => {
            try {
              const s = (await open(t.imapsPort, tls)) as TLSSocket;
              const wait = lineWaiter(s);
              await wait(/\r\n/);
              s.write(`a LOGIN "${box((k + j) % t.users)}" "${PASSWORD}"\r\nb SELECT INBOX\r\nc IDLE\r\n`);
              await wait(/^\+ .*\r\n/m);
              s.removeAllListeners('data');
              s.on('data', () => {});
              held.push(s);
            } catch (e) {
              failed++;
              firstError ||= (e as Error).message;
            }
          }),
        );
      await readyThenGo();
      for (const s of held) s.destroy();
      return { opened: held.length, failed, firstError };
    }
    case 'sync': {
      // The national file, uploaded to the admin API again and again (next month's, this
      // month's…: each a small difference to apply) until the phase ends.
      const l = await https(t.admin, t.ca, agent, 'POST', '/api/v1/login', { json: t.adminLogin });
      const token = JSON.parse(l.body).token as string;
      await readyThenGo();
      const end = performance.now() + job.durationMs;
      const runs: number[] = [];
      for (let k = 0; k === 0 || performance.now() < end; k++) {
        // The file name carries the extraction date: one hour later each time.
        const stamp = new Date(job.from + k * 3_600_000).toISOString().replace(/[-:T]/g, '').slice(0, 12);
        const t0 = performance.now();
        const r = await https(t.admin, t.ca, agent, 'POST', `/api/v1/imports/extractions?name=PS_LibreAcces_Personne_activite_${stamp}.txt`, { token, body: readFileSync(job.files[k % job.files.length]), type: 'text/plain' });
        if (r.status !== 200) throw new Error(`sync: ${r.status} ${r.body.slice(0, 300)}`);
        runs.push(performance.now() - t0);
      }
      return runs;
    }
  }
}


// ---------------------------------------------------------------- the platform (this process)

/** A generator in its own process: `ready` once it has logged in or connected (when it has to), `go` starts it, `result` is its answer. */
function spawnGenerator<T>(job: Job): { ready: Promise<void>; go(): void; result: Promise<T>; child: ChildProcess } {
  const child = fork(new URL(import.meta.url).pathname, ['--child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let readyResolve!: () => void;
  const ready = new Promise<void>((r) => (readyResolve = r));
  const result = new Promise<T>((resolve, reject) => {
    child.on('message', (m: FromChild) => {
      if ('ready' in m) return readyResolve();
      if (m.ok) resolve(m.result as T);
      else reject(new Error(m.error));
    });
    child.once('exit', (code) => code && reject(new Error(`the ${job.front} generator exited with ${code}`)));
  });
  result.catch(() => readyResolve());
  child.send(job);
  return { ready, go: () => child.connected && child.send('go'), result, child };
}

const fmt = (x: number) => (Number.isFinite(x) ? x.toFixed(x < 10 ? 1 : 0) : '—');
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');

async function main() {
  const DURATION = Number(args.duration) * 1000;
  const SCALE = Number(args.scale);
  const ONLINE = Number(args.online);
  const USERS = Number(args.users);
  const NATIONAL = Number(args.national);
  if (!(DURATION > 0 && DURATION <= 300_000) || !(SCALE > 0 && SCALE <= 20) || !(USERS >= 2 && USERS <= 500) || !(ONLINE >= 0 && ONLINE <= 5000) || !(NATIONAL >= 100 && NATIONAL <= 1_000_000)) {
    throw new Error('--duration 1–300 s, --scale ≤ 20, --users 2–500, --online ≤ 5000, --national 100–1,000,000 (a bench on one machine)');
  }
  const only = args.only ? (args.only.split(',').map((s) => s.trim()) as Front[]) : [...FRONTS];
  for (const f of only) if (!FRONTS.includes(f)) throw new Error(`--only: ${f} is not one of ${FRONTS.join(', ')}`);
  const dir = mkdtempSync(join(tmpdir(), 'mss-bench-mixed-'));
  // Dovecot and slapd run as a system user when this runs as root: they must enter it.
  chmodSync(dir, 0o711);
  const say = (s: string) => process.stdout.write(s + '\n');
  say(`bench/mixed — a busy hour of a regional operator (20,000 boxes, 2,000 online), scaled: ${USERS} people, ${ONLINE} IDLE sessions, a ${NATIONAL.toLocaleString('en')}-line national file; ${DURATION / 1000} s per phase; load average ${load()}`);
  const env: Record<string, string> = {};
  if (process.env.MSS_DATABASE_URL) env.MSS_DATABASE_URL = process.env.MSS_DATABASE_URL;
  const { paths } = await initDevPki({ dir: join(dir, 'pki'), domain: DOMAIN, keyBits: 2048, validityDays: 30 });
  const config = loadConfig({
    env,
    overrides: {
      dataDir: join(dir, 'data'),
      operator: { domain: DOMAIN, hostname: 'localhost' },
      http: { port: 0 },
      ldap: { port: 0, ldapsPort: 0 },
      // The bench's national admin logs in with a password only (admin.requireTotp is about people, not load).
      admin: { port: 0, requireTotp: false },
      pki: { autoInit: false },
      tls: { certFile: paths.leaves.server.cert, keyFile: paths.leaves.server.key, chainFile: paths.intermediate, caFile: paths.chain, crlFile: paths.crl },
      tsa: { certFile: paths.leaves.tsa.cert, keyFile: paths.leaves.tsa.key, chainFile: paths.intermediate, caFile: paths.ca },
      smtp: { mxPort: 0, submissionPort: 0, submissionsPort: 0, ratePerHour: 0 },
      // Every generator is on 127.0.0.1: the per-address caps are a hospital NAT's, not a bench's.
      imap: { port: 0, starttlsPort: 0, maxPreAuthPerSource: 10_000, workers: 2 },
      mailstore: { maxUserIpConnections: 10_000 },
      webmail: { port: 0 },
      fhir: { port: 0 },
      dmp: { standin: false },
      demo: { enabled: false },
    },
  });
  const platform = await startPlatform(config, silentLogger);
  const children = new Set<ChildProcess>();
  try {
    const { db, journal } = platform;
    const ctx = operatorBalContext(config, db, journal);
    await trustPeer(db, journal, PEER);
    for (let i = 0; i < USERS; i++) {
      const idnps = `8${String(10_000_000_000 + i)}`;
      await createPerson(ctx, { login: login(i), idnps, nom: `PRATICIEN${i}`, prenom: 'Camille', password: PASSWORD }, 'bench');
      await createBal(ctx, { address: box(i), type: 'PER', owner: idnps }, 'bench');
    }
    const admin = await createAdmin(db, journal, { login: 'bench-national', role: 'national' }, 'bench');
    await platform.directory?.sync();
    // Each box starts with 30 messages (what the webmail lists and reads, what IMAP fetches).
    for (let i = 0; i < USERS; i++)
      for (let k = 0; k < 30; k++) {
        const raw = await new MailComposer({ from: `Dr Correspondant <c${k}@chu.${PEER}>`, to: box(i), subject: `Compte rendu n° ${k}`, text: 'Voici le compte rendu de la consultation de ce jour. '.repeat(30), date: new Date(Date.now() - (30 - k) * 60_000) }).compile().build();
        await deliverLmtp(platform.mailstore.lmtp, { from: `c${k}@chu.${PEER}`, to: [box(i)] }, raw);
      }
    // The national file: this month's imported now, then this month's and next month's
    // alternately during the mixed phase (each applying a few % of difference).
    const files = [0, 1].map((month) => {
      const path = join(dir, `activite-${month}.txt`);
      writeFileSync(path, encodeFile(activityLines({ lines: NATIONAL, seed: 13, month: month as 0 | 1, changed: 0.02, vanished: 0.01, added: 0.01 })));
      return path;
    });
    const t0 = performance.now();
    const control = await controlServer(config.http.healthPriority);
    children.add(control.child);
    const target: Target = {
      health: platform.endpoints.find((e) => e.name === 'health')!.url,
      control: control.url,
      mxPort: platform.smtp!.ports.mx,
      submissionsPort: platform.smtp!.ports.submissions,
      imapsPort: platform.imap!.ports.imaps,
      webmail: platform.webmail!.url,
      admin: platform.endpoints.find((e) => e.name === 'admin API')!.url.split('/api/v1')[0],
      adminLogin: { login: admin.account.login, password: admin.password },
      ca: readFileSync(paths.ca, 'utf8'),
      peer: { cert: readFileSync(paths.leaves['peer-operator'].cert, 'utf8') + readFileSync(paths.intermediate, 'utf8'), key: readFileSync(paths.leaves['peer-operator'].key, 'utf8') },
      users: USERS,
    };
    // Everyone has logged in once before the hour (their password in the cache: the busy
    // hour's logins are reconnections); a first login's scrypt is bench/imap-proxy's subject.
    for (let u = 0; u < USERS; u++) {
      const s = await open(target.imapsPort, { ca: target.ca, servername: 'localhost' });
      const wait = lineWaiter(s);
      await wait(/\r\n/);
      s.write(`a LOGIN "${box(u)}" "${PASSWORD}"\r\n`);
      const a = await wait(/^a (OK|NO|BAD).*\r\n/m);
      s.destroy();
      if (!/^a OK/m.test(a)) throw new Error(`the first login of ${box(u)} failed: ${a.trim()}`);
    }
    {
      const g = spawnGenerator<number[]>({ front: 'sync', durationMs: 1, t: target, files: [files[0]], from: Date.UTC(2026, 1, 1) });
      children.add(g.child);
      await g.ready;
      g.go();
      await g.result;
    }
    say(`set-up: ${USERS} people and boxes with 30 messages each, the national file's first import (${NATIONAL.toLocaleString('en')} lines) in ${((performance.now() - t0) / 1000).toFixed(1)} s; load average ${load()}`);

    // The /health prober stands for monitoring on another machine: at the health thread's
    // niceness, so what it measures is the platform's answer rather than its own turn for a
    // core among the load generators (both ways are printed at --prober-priority 0 / default).
    const proberPriority = args['prober-priority'] !== undefined ? Number(args['prober-priority']) : config.http.healthPriority;
    const prioritise = (f: Front, child: ChildProcess) => {
      if (f !== 'health' || !proberPriority || !child.pid) return;
      try {
        setPriority(child.pid, proberPriority);
      } catch (e) {
        say(`  (the /health prober stays at niceness 0: ${(e as Error).message})`);
      }
    };
    say(`/health prober at niceness ${proberPriority} (--prober-priority), the health thread at ${config.http.healthPriority}`);

    const run = async (fronts: Front[], extras: boolean): Promise<{ results: Partial<Record<Front, OpenLoopResult>>; syncs?: number[]; online?: { opened: number; failed: number; firstError: string }; loopLag: string }> => {
      const gens = fronts.map((f) => ({ f, g: spawnGenerator<OpenLoopResult>({ front: f, rate: MODEL[f].offered * SCALE, durationMs: DURATION, t: target }) }));
      const online = extras && ONLINE > 0 ? spawnGenerator<{ opened: number; failed: number; firstError: string }>({ front: 'online', n: ONLINE, t: target }) : undefined;
      const sync = extras ? spawnGenerator<number[]>({ front: 'sync', durationMs: DURATION, t: target, files: [files[1], files[0]], from: Date.UTC(2026, 2, 1) }) : undefined;
      for (const x of [...gens.map((g) => g.g), online, sync]) if (x) children.add(x.child);
      for (const x of gens) prioritise(x.f, x.g.child);
      // Everyone ready (logged in, IDLE sessions open), then all start together.
      await Promise.all([...gens.map((x) => x.g.ready), online?.ready, sync?.ready]);
      // How long the platform's event loop (PGlite's too) was kept from turning, meanwhile.
      const lag = monitorEventLoopDelay({ resolution: 10 });
      lag.enable();
      for (const x of gens) x.g.go();
      sync?.go();
      const results: Partial<Record<Front, OpenLoopResult>> = {};
      for (const x of gens) results[x.f] = await x.g.result.catch((e: Error) => ({ lat: [], late: [], offered: 0, errors: 1, firstError: e.message.split('\n')[0], seconds: DURATION / 1000 }));
      const syncs = await sync?.result.catch((e: Error) => (say(`  sync failed: ${e.message.split('\n')[0]}`), []));
      lag.disable();
      const loopLag = `${fmt(lag.percentile(50) / 1e6)} / ${fmt(lag.percentile(99) / 1e6)} / ${fmt(lag.max / 1e6)}`;
      online?.go();
      const held = await online?.result.catch((e: Error) => ({ opened: 0, failed: ONLINE, firstError: e.message }));
      return { results, syncs, online: held, loopLag };
    };

    const solo: Partial<Record<Front, OpenLoopResult>> = {};
    for (const f of only) {
      const r = await run([f], false);
      solo[f] = r.results[f];
      say(`  alone: ${f.padEnd(10)} done; the platform's event loop delayed p50 / p99 / max ${r.loopLag} ms; load average ${load()}`);
    }
    const mixed = await run(only, true);
    say(`  mixed: done; the platform's event loop delayed p50 / p99 / max ${mixed.loopLag} ms; load average ${load()}`);
    say('');
    say(`Each front alone, then all together with ${mixed.online?.opened ?? 0} IDLE sessions open${mixed.online?.failed ? ` (${mixed.online.failed} failed: ${mixed.online.firstError})` : ''} and the national file synced ${mixed.syncs?.length ?? 0} times (${(mixed.syncs ?? []).map((ms) => (ms / 1000).toFixed(1) + ' s').join(', ')}):`);
    say(`  ${'front'.padEnd(11)} ${'offered/s'.padStart(9)} ${'(model/s)'.padStart(9)}   ${'alone: p50 / p95 / p99 ms, rate/s'.padEnd(36)} ${'mixed: p50 / p95 / p99 ms, rate/s'.padEnd(36)} mixed/alone rate`);
    const verdicts: string[] = [];
    const lateness: string[] = [];
    for (const f of only) {
      const a = solo[f]!;
      const m = mixed.results[f]!;
      const rate = (r: OpenLoopResult) => r.lat.length / r.seconds;
      const line = (r: OpenLoopResult) => `${fmt(pct(r.lat, 50))} / ${fmt(pct(r.lat, 95))} / ${fmt(pct(r.lat, 99))}, ${rate(r).toFixed(2)}${r.errors ? ` (${r.errors} errors)` : ''}`;
      lateness.push(`${f} ${fmt(pct(a.late ?? [], 99))} / ${fmt(pct(m.late ?? [], 99))}`);
      const ratio = rate(m) / rate(a);
      say(`  ${f.padEnd(11)} ${(MODEL[f].offered * SCALE).toFixed(1).padStart(9)} ${`(${MODEL[f].hour})`.padStart(9)}   ${line(a).padEnd(36)} ${line(m).padEnd(36)} ${ratio.toFixed(2)}×`);
      for (const r of [a, m]) if (r.firstError) say(`      first error: ${r.firstError.slice(0, 300)}`);
      if (ratio < 0.8) verdicts.push(`${f}: mixed rate ${ratio.toFixed(2)}× alone (target ≥ 0.8×)`);
    }
    say(`  (latency from each request's start; the generators' own lateness in starting them, p99 alone / mixed, ms — the machine's, not the server's: ${lateness.join(', ')})`);
    const target99 = (f: Front, p: number, max: number, label: string) => {
      const r = mixed.results[f];
      if (!r) return;
      const v = pct(r.lat, p);
      // Of fewer than 100 / (100 - p) samples, the p-th percentile is the largest: say so.
      const n = r.lat.length;
      const few = n * (1 - p / 100) < 1 ? `: fewer than ${Math.ceil(100 / (100 - p))} samples, this p${p} is their maximum (--duration)` : '';
      say(`  target: ${label} p${p} ≤ ${max} ms: ${fmt(v)} ms ${v <= max ? 'met' : 'NOT met'} (${n} samples${few})`);
      if (!(v <= max)) verdicts.push(`${label} p${p} ${fmt(v)} ms > ${max} ms`);
    };
    say('');
    target99('health', 99, 50, '/health');
    const floor = (r?: HealthResult) => (r?.control?.length ? `p99 ${fmt(pct(r.control, 99))} ms` : 'not measured');
    say(`  (the control — a bare Node HTTP server in a process of its own at the health thread's niceness, probed alike — alone ${floor(solo.health)}, mixed ${floor(mixed.results.health)}: the machine's floor under this load)`);
    target99('mx', 99, 500, 'MX 250');
    target99('imap', 99, 500, 'IMAP login');
    target99('webmail', 95, 150, 'webmail');
    for (const f of only) say(`  (${f}: ${MODEL[f].what})`);
    say(verdicts.length ? `targets not met: ${verdicts.join('; ')}` : 'every target met');
    say(`load average at the end: ${load()}`);
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill();
    await platform.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (args.child) {
  process.once('message', (job: Job) => {
    generate(job).then(
      (result) => process.send!({ ok: true, result } satisfies FromChild, () => process.exit(0)),
      (e: unknown) => process.send!({ ok: false, error: (e as Error).stack ?? String(e) } satisfies FromChild, () => process.exit(1)),
    );
  });
} else await main();
