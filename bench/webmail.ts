// bench/webmail: what a web or DPI client gets from the webmail API, next to what an IMAP
// client gets doing the same through the same IMAP proxy, in one run.
//
//   list-50  the 50 newest messages of a mailbox of --messages (envelope, flags, size, structure)
//   read     one message, parsed (headers, text, HTML, attachment list)
//   search   the 50 newest messages whose text holds a patient's name (IMAP SEARCH TEXT)
//
//   webmail API   HTTPS + JSON → webmail-api → IMAP proxy (session token) → Dovecot
//   imapflow      IMAPS → IMAP proxy (password) → Dovecot; the read is parsed with mailparser
//                 as the webmail does, so both sides do the same work for the person
//
// 1. Saturation: for list-50, then read, --clients closed-loop clients (each sends its next
//    request when the last one is answered) for --seconds per pass; passes alternate
//    imapflow, webmail, webmail, imapflow so drift in the machine's load hits both sides.
//    Requests per second = answers within the window / the window. Target: webmail ≥ 0.8×
//    imapflow for both.
// 2. Open loop: --rate requests/s for --seconds per side, arrivals at fixed intervals
//    whatever the answers (a latency counts from the request's scheduled time, so a server
//    that falls behind is charged for the queue), spread over --sessions logged-in
//    sessions, mix list-50 40 % / read 50 % / search 10 % (seeded, the same sequence for
//    both sides), after --warmup seconds at the same rate on the same sessions that are not
//    counted (connections open, code compiled: a busy hour is not a cold start; --warmup 0
//    measures from one). Target: webmail p95 ≤ 100 ms and no error.
//
// Every client logs in and opens the box before its window (not timed, as the IMAP side's
// connect is not), and logs out after it: a webmail session that is not closed keeps its
// IMAP connection to the box for webmail.imapIdle. Every request that is not a 200 (or an
// IMAP OK) counts as an error, with the first few reasons printed. With each figure: the
// load average, and the CPU time the server side (the platform's processes and Dovecot, not
// the clients) spent per request — the machine is shared, and CPU per request does not
// depend on what else runs.
//
// The clients run in a child process (they would be other machines), the platform in this
// one (startPlatform: PGlite by default, PostgreSQL with MSS_DATABASE_URL). Loopback only.
//
//   node dist/bench/webmail.js [--clients 100] [--seconds 10] [--rate 200] [--sessions 50]
//        [--messages 500] [--only saturation,open] [--webmail-workers N] [--imap-workers N] [--render-cache BYTES]
//        [--cpu-profile FILE] [--timeline] [--warmup 5]
import { fork } from 'node:child_process';
import { Session } from 'node:inspector';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ImapFlow } from 'imapflow';
import { simpleParser } from 'mailparser';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import { operatorBalContext } from '../annuaire/admin/wiring.js';
import { createBal, createPerson } from '../annuaire/bal/index.js';
import { DEV_RPPS } from '../certs/pki.js';
import { loadConfig } from '../core/config/index.js';
import { silentLogger } from '../core/logger.js';
import { deliverLmtp } from '../mailstore/lmtp.js';
import { startPlatform } from '../bin/platform.js';
import { allProcs, descendants } from './proc.js';

const { values: args } = parseArgs({
  options: {
    clients: { type: 'string', default: '100' },
    seconds: { type: 'string', default: '10' },
    rate: { type: 'string', default: '200' },
    sessions: { type: 'string', default: '50' },
    messages: { type: 'string', default: '500' },
    only: { type: 'string', default: 'saturation,open' },
    ops: { type: 'string', default: 'list,read' },
    'webmail-workers': { type: 'string' },
    'imap-workers': { type: 'string' },
    'render-cache': { type: 'string' },
    'cpu-profile': { type: 'string' },
    timeline: { type: 'boolean', default: false },
    warmup: { type: 'string', default: '5' },
    child: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  process.stdout.write(
    [
      'usage: node dist/bench/webmail.js [--clients 100] [--seconds 10] [--rate 200] [--sessions 50] [--messages 500]',
      '         [--only saturation,open] [--webmail-workers N] [--imap-workers N] [--cpu-profile FILE] [--warmup 5] [--timeline]',
      '  --clients N         closed-loop clients per side in the saturation passes',
      '  --seconds S         length of each measured pass',
      '  --rate R            open-loop arrivals per second (mix list-50 40 %, read 50 %, search 10 %)',
      '  --sessions N        logged-in sessions the open-loop requests are spread over',
      '  --messages N        messages in the mailbox',
      '  --ops list,read     the operations measured at saturation',
      '  --webmail-workers N, --imap-workers N   override webmail.workers / imap.workers (default: the platform\'s defaults)',
      '  --render-cache BYTES  override webmail.renderCache (0: every read parses the message, as a first read does)',
      '  --cpu-profile FILE  V8 CPU profile of the platform\'s process over the measured passes',
      '  --warmup S          open loop: S seconds at the same rate before each side\'s window, not counted (0: from a cold start)',
      '  --timeline          open loop: p50 / p95 / max latency of the requests that arrived in each second (where a stall was)',
      '  MSS_DATABASE_URL=postgres://… runs the platform on PostgreSQL instead of PGlite',
      '',
    ].join('\n'),
  );
  process.exit(0);
}

const DOMAIN = 'mssante.localhost';
const BOX = `jeanne.martin@${DOMAIN}`;
const LOGIN = 'jeanne.martin';
const PASSWORD = 'correct horse battery staple';
const PATIENTS = ['DUPONT', 'MARTIN', 'BERNARD', 'PETIT'];

type Op = 'list' | 'read' | 'search';
type Side = 'webmail' | 'imapflow';
const OPS: Op[] = ['list', 'read', 'search'];
const MIX: Record<Op, number> = { list: 0.4, read: 0.5, search: 0.1 };

interface Target {
  ca: string;
  webmail: string;
  imap: { host: string; port: number };
  uids: number[];
}
interface Job extends Target {
  side: Side;
  /** closed: `clients` clients each doing `op` back to back; open: `rate` arrivals/s over `clients` sessions. */
  kind: 'closed' | 'open';
  op?: Op;
  clients: number;
  seconds: number;
  rate?: number;
  /** Open loop: seconds at the same rate before the window, not counted. */
  warmupSeconds?: number;
  seed: number;
}
interface Result {
  lat: Record<Op, number[]>;
  /** Answers within the window. */
  done: number;
  /** Arrivals sent (open loop). */
  sent: number;
  windowMs: number;
  errors: number;
  reasons: string[];
  /** The client process's own CPU time within the window, ms. */
  clientCpuMs: number;
  /** Open loop: each answer's arrival (ms from the first) and latency, for --timeline. */
  arrivals: Array<[number, number]>;
}

// ---------------------------------------------------------------- the clients (child process)

/** mulberry32: the same request sequence on both sides. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface ClientSession {
  run(op: Op, rnd: () => number): Promise<void>;
  close(): Promise<void>;
}

function https(agent: Agent, base: string, method: string, path: string, token?: string, json?: unknown): Promise<{ status: number; body: string }> {
  const u = new URL(path, base);
  const body = json === undefined ? undefined : Buffer.from(JSON.stringify(json));
  return new Promise((resolve, reject) => {
    const req = request(
      { host: u.hostname, port: u.port, path: u.pathname + u.search, method, servername: 'localhost', agent, timeout: 60_000, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json', 'content-length': String(body.length) } : {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer within 60 s')));
    req.on('error', reject);
    req.end(body);
  });
}

const box = encodeURIComponent(BOX);
const pick = <T>(xs: T[], rnd: () => number) => xs[Math.floor(rnd() * xs.length)];

/** A browser: its own keep-alive HTTPS connections, a session token. */
async function webmailSession(job: Job): Promise<ClientSession> {
  const agent = new Agent({ keepAlive: true, maxSockets: 6, ca: job.ca });
  const r = await https(agent, job.webmail, 'POST', '/api/v1/login', undefined, { login: LOGIN, password: PASSWORD });
  if (r.status !== 200) throw new Error(`login: ${r.status} ${r.body.slice(0, 200)}`);
  const token = JSON.parse(r.body).token as string;
  const get = async (path: string) => {
    const a = await https(agent, job.webmail, 'GET', path, token);
    if (a.status !== 200) throw new Error(`${path.replace(/\?.*/, '')}: ${a.status} ${a.body.slice(0, 200)}`);
    return JSON.parse(a.body) as unknown;
  };
  await get(`/api/v1/bals/${box}/folders`);
  return {
    async run(op, rnd) {
      if (op === 'list') await get(`/api/v1/bals/${box}/folders/INBOX/messages?pageSize=50`);
      else if (op === 'read') await get(`/api/v1/bals/${box}/messages/INBOX/${pick(job.uids, rnd)}?markSeen=false`);
      else await get(`/api/v1/bals/${box}/folders/INBOX/messages?pageSize=50&q=${pick(PATIENTS, rnd)}`);
    },
    async close() {
      await https(agent, job.webmail, 'POST', '/api/v1/logout', token).catch(() => {});
      agent.destroy();
    },
  };
}

const SUMMARY = { uid: true, flags: true, envelope: true, internalDate: true, size: true, bodyStructure: true } as const;

/** Thunderbird-like: one IMAPS connection, the box selected read-only. */
async function imapSession(job: Job): Promise<ClientSession> {
  const c = new ImapFlow({ host: job.imap.host, port: job.imap.port, secure: true, tls: { ca: job.ca, servername: 'localhost' }, auth: { user: BOX, pass: PASSWORD }, logger: false });
  await c.connect();
  await c.mailboxOpen('INBOX', { readOnly: true });
  const rows = async (range: string, uid: boolean) => {
    const out = [];
    for await (const m of c.fetch(range, SUMMARY, { uid })) out.push(m);
    JSON.stringify(out.reverse().map((m) => ({ uid: m.uid, subject: m.envelope?.subject, from: m.envelope?.from, date: m.internalDate, size: m.size, flags: [...(m.flags ?? [])] })));
  };
  return {
    async run(op, rnd) {
      if (op === 'list') {
        const n = c.mailbox ? c.mailbox.exists : 0;
        await rows(`${Math.max(1, n - 49)}:${n}`, false);
      } else if (op === 'read') {
        const m = await c.fetchOne(String(pick(job.uids, rnd)), { source: true }, { uid: true });
        if (!m || !m.source) throw new Error('no such message');
        const p = await simpleParser(m.source);
        JSON.stringify({ subject: p.subject, text: p.text, html: p.html, attachments: p.attachments.map((a) => ({ filename: a.filename, size: a.size })) });
      } else {
        const found = (await c.search({ text: pick(PATIENTS, rnd) }, { uid: true })) || [];
        if (found.length) await rows(found.sort((a, b) => a - b).slice(-50).join(','), true);
      }
    },
    async close() {
      await c.logout().catch(() => c.close());
    },
  };
}

/** What went wrong, with the server's own sentence when there is one (imapflow puts it in responseText). */
function reason(e: unknown): string {
  const x = e as Error & { responseText?: string; executedCommand?: string };
  return [x.message, x.executedCommand && `(${x.executedCommand.split(' ').slice(1, 3).join(' ')})`, x.responseText].filter(Boolean).join(' ').slice(0, 240);
}

/** Tells the platform's process when the measured window starts and ends (it reads the server's CPU time then). */
const mark = (m: 'start' | 'end') => process.send!({ mark: m });
const cpuNow = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

async function runJob(job: Job): Promise<Result> {
  const out: Result = { lat: { list: [], read: [], search: [] }, done: 0, sent: 0, windowMs: job.seconds * 1000, errors: 0, reasons: [], clientCpuMs: 0, arrivals: [] };
  let c0 = 0;
  const fail = (e: unknown) => {
    out.errors++;
    if (out.reasons.length < 5) out.reasons.push(reason(e));
  };
  const open = job.side === 'webmail' ? webmailSession : imapSession;
  // Sessions open a few at a time: a login storm is another bench's subject (bench/imap-proxy).
  const sessions: ClientSession[] = [];
  for (let i = 0; i < job.clients; i += 10) {
    const got = await Promise.allSettled(Array.from({ length: Math.min(10, job.clients - i) }, () => open(job)));
    for (const g of got) g.status === 'fulfilled' ? sessions.push(g.value) : fail(g.reason);
  }
  const rnd = prng(job.seed);
  if (job.kind === 'closed') {
    // Each client back to back; the first request of each is a warm-up, not counted.
    const op = job.op!;
    await Promise.all(
      sessions.map(async (s) => {
        await s.run(op, rnd).catch(fail);
      }),
    );
    mark('start');
    c0 = cpuNow();
    const start = performance.now();
    const stop = start + out.windowMs;
    let done = 0;
    await Promise.all(
      sessions.map(async (s) => {
        while (performance.now() < stop) {
          const t = performance.now();
          try {
            await s.run(op, rnd);
            const now = performance.now();
            if (now <= stop) done++;
            out.lat[op].push(now - t);
          } catch (e) {
            // A client whose request failed stops: a persistent failure would only spin.
            fail(e);
            return;
          }
        }
      }),
    );
    mark('end');
    out.clientCpuMs = cpuNow() - c0;
    out.done = done;
  } else {
    // Arrivals at fixed intervals, each on a session drawn at random; a latency counts from the arrival.
    const interval = 1000 / job.rate!;
    const arrive = async (seconds: number, record: boolean) => {
      const total = Math.round(seconds * job.rate!);
      const inflight: Promise<void>[] = [];
      const kinds: Op[] = [];
      for (let i = 0; i < total; i++) {
        const x = rnd();
        kinds.push(x < MIX.list ? 'list' : x < MIX.list + MIX.read ? 'read' : 'search');
      }
      let i = 0;
      const base = performance.now();
      await new Promise<void>((resolve) => {
        const tick = () => {
          const now = performance.now();
          while (i < total && base + i * interval <= now) {
            const due = base + i * interval;
            const op = kinds[i];
            const s = pick(sessions, rnd);
            if (record) out.sent++;
            inflight.push(
              s.run(op, rnd).then(
                () => {
                  if (!record) return;
                  const t = performance.now();
                  out.done++;
                  out.lat[op].push(t - due);
                  out.arrivals.push([due - base, t - due]);
                },
                fail,
              ),
            );
            i++;
          }
          if (i < total) setTimeout(tick, Math.max(0, base + i * interval - performance.now()));
          else resolve();
        };
        tick();
      });
      await Promise.all(inflight);
      return base;
    };
    // The warm-up: the same rate on the same sessions, not counted (a browser's connections are
    // open and the processes' code compiled before a busy hour's requests; a cold start is
    // another figure, --warmup 0). Its answers all in before the window opens.
    if (job.warmupSeconds) await arrive(job.warmupSeconds, false);
    mark('start');
    c0 = cpuNow();
    const base = await arrive(job.seconds, true);
    mark('end');
    out.clientCpuMs = cpuNow() - c0;
    // Answered per second: over the time it took to answer them all (a server that falls behind takes longer than the window).
    out.windowMs = Math.max(out.windowMs, performance.now() - base);
  }
  await Promise.all(sessions.map((s) => s.close()));
  return out;
}

// ---------------------------------------------------------------- the platform (this process)

let clientPid = 0;
/** Runs the job in a client process; `cpuMs` is the server's CPU time within the measured window (and `split`, by kind of process). */
function inChild(job: Job): Promise<Result & { cpuMs: number; split: CpuSplit }> {
  return new Promise((resolve, reject) => {
    const child = fork(new URL(import.meta.url).pathname, ['--child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
    clientPid = child.pid ?? 0;
    let c0: CpuSplit = { platform: 0, workers: 0, daemons: 0 };
    let split = c0;
    child.on('message', (m: { mark: 'start' | 'end' } | { ok: boolean; r?: Result; error?: string }) => {
      if ('mark' in m) {
        if (m.mark === 'start') c0 = serverCpu();
        else {
          const c1 = serverCpu();
          split = { platform: c1.platform - c0.platform, workers: c1.workers - c0.workers, daemons: c1.daemons - c0.daemons };
        }
        return;
      }
      child.kill();
      if (m.ok) resolve({ ...m.r!, cpuMs: split.platform + split.workers + split.daemons, split });
      else reject(new Error(m.error));
    });
    child.once('exit', (code) => code && reject(new Error(`client process exited with ${code}`)));
    child.send(job);
  });
}

/** Server CPU time (ms) by kind of process: this one (the platform's), its Node worker processes, the daemons (Dovecot, slapd). */
interface CpuSplit {
  platform: number;
  workers: number;
  daemons: number;
}

/** CPU time of the server side: this process and its descendants (workers, Dovecot, slapd; reaped ones included), not the clients. */
function serverCpu(): CpuSplit {
  const procs = allProcs();
  const clients = new Set(clientPid ? descendants(procs, clientPid).map((p) => p.pid) : []);
  const out: CpuSplit = { platform: 0, workers: 0, daemons: 0 };
  for (const p of descendants(procs, process.pid)) {
    if (clients.has(p.pid)) continue;
    if (p.pid === process.pid) out.platform += p.cpuMs;
    else if (p.ppid === process.pid && /node|MainThread/.test(p.comm)) out.workers += p.treeMs;
    else out.daemons += p.treeMs;
  }
  return out;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN;
};
/** Open loop, per second of arrival: p50 / p95 / max. */
function timeline(arrivals: Array<[number, number]>): string {
  const secs: number[][] = [];
  for (const [at, lat] of arrivals) (secs[Math.floor(at / 1000)] ??= []).push(lat);
  return secs.map((xs, i) => `${i}s ${pct(xs, 50).toFixed(0)}/${pct(xs, 95).toFixed(0)}/${Math.max(...xs).toFixed(0)}`).join(', ');
}
const f1 = (x: number, w = 7) => (Number.isFinite(x) ? x.toFixed(1) : '—').padStart(w);
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const say = (s: string) => process.stdout.write(`${s}\n`);

interface Measured extends Result {
  /** Server CPU per answered request, ms. */
  cpuPerReq: number;
  /** The client process's CPU per answered request, ms (imapflow's side parses there what the API parses on the server). */
  clientPerReq: number;
  /** Server CPU per answered request by kind of process, ms. */
  splitPerReq: CpuSplit;
  load: string;
}

async function main() {
  const clients = Number(args.clients);
  const seconds = Number(args.seconds);
  const rate = Number(args.rate);
  const sessions = Number(args.sessions);
  const messages = Number(args.messages);
  const only = new Set(args.only!.split(','));
  const dataDir = mkdtempSync(join(tmpdir(), 'mss-bench-webmail-'));
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (k === 'MSS_DATABASE_URL' && v) env[k] = v;
  const config = loadConfig({
    env,
    overrides: {
      dataDir,
      http: { port: 0 },
      pki: { keyBits: 2048 },
      ldap: { port: 0, ldapsPort: 0 },
      admin: { enabled: false },
      smtp: { mxPort: 0, submissionPort: 0, submissionsPort: 0 },
      // Every client comes from 127.0.0.1 here, the API's own connections too: lift the per-address cap.
      imap: { port: 0, starttlsPort: 0, maxPreAuthPerSource: 10_000, ...(args['imap-workers'] ? { workers: Number(args['imap-workers']) } : {}) },
      webmail: { port: 0, ...(args['webmail-workers'] ? { workers: Number(args['webmail-workers']) } : {}), ...(args['render-cache'] !== undefined ? { renderCache: Number(args['render-cache']) } : {}) },
      fhir: { port: 0 },
      // …and every one of them opens the same box (a busy hour spreads over many): lift Dovecot's per-box-and-address cap.
      mailstore: { maxUserIpConnections: 10_000 },
      dmp: { standin: false },
    },
  });
  const w = config.webmail as { workers?: number };
  say(
    `bench/webmail — mailbox of ${messages} messages; database ${config.database.url ? 'PostgreSQL' : 'PGlite'}; imap.workers ${config.imap.workers}${w.workers !== undefined ? `, webmail.workers ${w.workers}` : ''}; webmail.renderCache ${config.webmail.renderCache}; load average ${load()}`,
  );
  const platform = await startPlatform(config, silentLogger);
  const profiler = args['cpu-profile'] ? new Session() : undefined;
  const post = <T = unknown>(m: string) => new Promise<T>((res, rej) => profiler!.post(m, (e, r) => (e ? rej(e) : res(r as T))));
  try {
    const ctx = operatorBalContext(config, platform.db, platform.journal);
    await createPerson(ctx, { login: LOGIN, idnps: DEV_RPPS, nom: 'MARTIN', prenom: 'Jeanne', password: PASSWORD }, 'bench');
    await createBal(ctx, { address: BOX, type: 'PER', owner: DEV_RPPS }, 'bench');
    await platform.directory?.sync();
    const t0 = performance.now();
    const pdf = Buffer.alloc(20_000, 'x');
    for (let i = 0; i < messages; i++) {
      const raw = await new MailComposer({
        from: `Dr Correspondant ${i % 17} <correspondant${i % 17}@chu-exemple.mssante.fr>`,
        to: BOX,
        subject: `Compte rendu de consultation n° ${i} — patient ${PATIENTS[i % 4]}`,
        text: `Chère consœur,\n\n${'Voici le compte rendu de la consultation de ce jour. '.repeat(20)}\n\nBien confraternellement`,
        html: `<p>Chère consœur,</p><p>${'Voici le compte rendu de la consultation de ce jour. '.repeat(20)}</p><p>Bien confraternellement</p>`,
        date: new Date(Date.now() - (messages - i) * 60_000),
        ...(i % 5 === 0 ? { attachments: [{ filename: `cr-${i}.pdf`, content: pdf, contentType: 'application/pdf' }] } : {}),
      })
        .compile()
        .build();
      await deliverLmtp(platform.mailstore.lmtp, { from: 'correspondant@chu-exemple.mssante.fr', to: [BOX] }, raw);
    }
    say(`  mailbox filled over LMTP in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    {
      // Dovecot's full-text index is written by its indexer as mail arrives: one search waits
      // for the last of it, so neither side's first search pays for the fill.
      const t1 = performance.now();
      const c = new ImapFlow({ host: '127.0.0.1', port: platform.imap!.ports.imaps, secure: true, tls: { ca: readFileSync(config.tls.caFile, 'utf8'), servername: 'localhost' }, auth: { user: BOX, pass: PASSWORD }, logger: false });
      await c.connect();
      await c.mailboxOpen('INBOX', { readOnly: true });
      await c.search({ text: PATIENTS[0] }, { uid: true });
      await c.logout();
      say(`  first search (the full-text index caught up) ${((performance.now() - t1) / 1000).toFixed(1)} s`);
    }

    const target: Target = {
      ca: readFileSync(config.tls.caFile, 'utf8'),
      webmail: platform.webmail!.url,
      imap: { host: '127.0.0.1', port: platform.imap!.ports.imaps },
      uids: Array.from({ length: messages }, (_, i) => i + 1),
    };
    if (profiler) {
      profiler.connect();
      await post('Profiler.enable');
      await post('Profiler.start');
    }
    const measure = async (job: Job): Promise<Measured> => {
      const { cpuMs, split, ...r } = await inChild(job);
      // Per request answered between the marks (those finishing after a closed-loop window included).
      const answered = Math.max(1, OPS.reduce((n, op) => n + r.lat[op].length, 0));
      const per = (x: number) => x / answered;
      return { ...r, cpuPerReq: per(cpuMs), clientPerReq: per(r.clientCpuMs), splitPerReq: { platform: per(split.platform), workers: per(split.workers), daemons: per(split.daemons) }, load: load() };
    };
    const merge = (a: Measured | undefined, b: Measured): Measured =>
      a
        ? { lat: { list: [...a.lat.list, ...b.lat.list], read: [...a.lat.read, ...b.lat.read], search: [...a.lat.search, ...b.lat.search] }, done: a.done + b.done, sent: a.sent + b.sent, windowMs: a.windowMs + b.windowMs, errors: a.errors + b.errors, reasons: [...a.reasons, ...b.reasons].slice(0, 5), clientCpuMs: a.clientCpuMs + b.clientCpuMs, arrivals: [...a.arrivals, ...b.arrivals], cpuPerReq: (a.cpuPerReq + b.cpuPerReq) / 2, clientPerReq: (a.clientPerReq + b.clientPerReq) / 2, splitPerReq: { platform: (a.splitPerReq.platform + b.splitPerReq.platform) / 2, workers: (a.splitPerReq.workers + b.splitPerReq.workers) / 2, daemons: (a.splitPerReq.daemons + b.splitPerReq.daemons) / 2 }, load: `${a.load} / ${b.load}` }
        : b;
    const verdicts: string[] = [];
    const errorLines = (side: string, r: Measured) => [
      `      ${''.padEnd(9)}server CPU ms/req: platform's process ${r.splitPerReq.platform.toFixed(2)}, its worker processes ${r.splitPerReq.workers.toFixed(2)}, Dovecot and slapd ${r.splitPerReq.daemons.toFixed(2)}`,
      ...r.reasons.map((x) => `      ${side}: ${x}`),
    ];

    if (only.has('saturation')) {
      say(`\nSaturation: ${clients} closed-loop clients per side, ${seconds} s per pass, passes imapflow, webmail, webmail, imapflow`);
      say('                              requests/s     p50 ms     p95 ms   errors   CPU ms/req server  client   load average');
      for (const op of (['list', 'read'] as const).filter((o) => args.ops!.split(',').includes(o))) {
        const got: Partial<Record<Side, Measured>> = {};
        let seed = 1;
        for (const side of ['imapflow', 'webmail', 'webmail', 'imapflow'] as const) {
          got[side] = merge(got[side], await measure({ ...target, side, kind: 'closed', op, clients, seconds, seed: seed++ }));
        }
        const tput = (s: Side) => got[s]!.done / (got[s]!.windowMs / 1000);
        for (const side of ['webmail', 'imapflow'] as const) {
          const r = got[side]!;
          say(`  ${(op === 'list' ? 'list-50' : op).padEnd(7)} ${side.padEnd(9)}        ${f1(tput(side), 9)}  ${f1(pct(r.lat[op], 50), 9)}  ${f1(pct(r.lat[op], 95), 9)}   ${String(r.errors).padStart(6)}   ${f1(r.cpuPerReq, 17)} ${f1(r.clientPerReq)}   ${r.load}`);
          for (const l of errorLines(side, r)) say(l);
        }
        const ratio = tput('webmail') / tput('imapflow');
        say(`  ${(op === 'list' ? 'list-50' : op).padEnd(7)} ratio webmail / imapflow ${ratio.toFixed(2)}×`);
        verdicts.push(`${ratio >= 0.8 ? 'PASS' : 'FAIL'}  ${op === 'list' ? 'list-50' : 'read'} throughput ${ratio.toFixed(2)}× imapflow (target ≥ 0.8×)${got.webmail!.errors ? `, ${got.webmail!.errors} errors` : ''}`);
      }
    }

    if (only.has('open')) {
      const warmupSeconds = Number(args.warmup);
      say(
        `\nOpen loop: ${rate} requests/s for ${seconds} s per side over ${sessions} sessions, mix list-50 ${MIX.list * 100} % / read ${MIX.read * 100} % / search ${MIX.search * 100} % (same sequence both sides), ${warmupSeconds ? `after ${warmupSeconds} s at the same rate not counted` : 'from a cold start (no warm-up)'}`,
      );
      say('                    sent  answered/s   p50 ms   p95 ms   p99 ms   max ms   errors   CPU ms/req server  client   load average');
      const got: Partial<Record<Side, Measured>> = {};
      for (const side of ['webmail', 'imapflow'] as const) got[side] = await measure({ ...target, side, kind: 'open', clients: sessions, seconds, rate, warmupSeconds, seed: 42 });
      for (const side of ['webmail', 'imapflow'] as const) {
        const r = got[side]!;
        const all = OPS.flatMap((op) => r.lat[op]);
        say(`  ${side.padEnd(9)}  ${String(r.sent).padStart(9)}  ${f1(r.done / (r.windowMs / 1000), 10)}  ${f1(pct(all, 50))}  ${f1(pct(all, 95))}  ${f1(pct(all, 99))}  ${f1(Math.max(...all))}   ${String(r.errors).padStart(6)}   ${f1(r.cpuPerReq, 17)} ${f1(r.clientPerReq)}   ${r.load}`);
        for (const op of OPS) say(`      ${op.padEnd(7)} ${String(r.lat[op].length).padStart(6)} answered   p50 ${f1(pct(r.lat[op], 50))}  p95 ${f1(pct(r.lat[op], 95))}  p99 ${f1(pct(r.lat[op], 99))}`);
        for (const l of errorLines(side, r)) say(l);
        if (args.timeline) say(`      by second of arrival (p50 / p95 / max ms): ${timeline(r.arrivals)}`);
      }
      const wr = got.webmail!;
      const p95 = pct(OPS.flatMap((op) => wr.lat[op]), 95);
      verdicts.push(`${p95 <= 100 ? 'PASS' : 'FAIL'}  open loop ${rate}/s: webmail p95 ${p95.toFixed(1)} ms (target ≤ 100 ms)`);
      verdicts.push(`${wr.errors === 0 && wr.sent === Math.round(seconds * rate) ? 'PASS' : 'FAIL'}  open loop ${rate}/s: webmail errors ${wr.errors} of ${wr.sent} (target 0)`);
    }
    if (profiler) {
      const { profile } = await post<{ profile: unknown }>('Profiler.stop');
      writeFileSync(args['cpu-profile']!, JSON.stringify(profile));
      say(`\nCPU profile of the platform's process over the measured passes: ${args['cpu-profile']}`);
    }
    say(`\n${verdicts.join('\n')}\nload average at the end ${load()}`);
  } finally {
    profiler?.disconnect();
    await platform.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (args.child) {
  process.on('message', (job: Job) => {
    runJob(job).then(
      (r) => process.send!({ ok: true, r }),
      (e) => process.send!({ ok: false, error: (e as Error).stack }),
    );
  });
} else {
  await main();
}
