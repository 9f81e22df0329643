// bench/smtp-inbound: mail from another operator into the MX and on to Dovecot, against
// Postfix doing the same job on the same machine, with raw LMTP injection as the ceiling.
//
//   node dist/bench/smtp-inbound.js [--messages 2000] [--connections 16] [--per-connection 10]
//                                   [--size 10240] [--rounds 1] [--timeout 600] [--db pglite|pg]
//
// One load generator (a child process, so it never shares an event loop with the MX) sends
// --messages messages of --size bytes over --connections parallel connections, a few
// (--per-connection) per connection, one recipient each, spread over a handful of BALs:
//   (a) our MX: STARTTLS presenting the test PKI's peer-operator certificate + intermediate,
//       MAIL / RCPT (resolved over LDAP) / DATA, spool row committed before 250, then the
//       delivery worker hands it to Dovecot over LMTP;
//   (b) Postfix (Debian `postfix`) run from a private configuration directory on another
//       loopback port: TLS required, the same server certificate, the peer's client
//       certificate required and verified against the same CA, the operator's domain as
//       relay_domains with its recipients listed, relayed to the same Dovecot over LMTP;
//   (c) raw LMTP straight into Dovecot, no TLS, no spool: the ceiling.
// (a) and (b) are timed until every accepted message is in its Dovecot mailbox — counted
// over IMAP (STATUS every 50 ms, logged in with the master user, from the generator's
// process), not at the last 250; (c) is polled the same way, so the three carry the same
// observer. Each target has its own mailboxes. A warm-up (a tenth, ≤ 200) precedes each.
// The platform runs in this process — on PGlite (embedded, as `npm start` has it), or with
// --db pg on a scratch database created (and dropped) on the PostgreSQL of MSS_DATABASE_URL,
// as operators run it in production — and the load generator in a child; --only, --queries and --cpu-profile help find where the time goes.
// Prints messages/s for each and the ratios ours / Postfix (target ≥ 1.0) and ours / LMTP
// (target ≥ 0.8), with the machine's load average. Loopback only; bounded in count and in
// time; Postfix, the platform and the temporary directories are removed even on failure.
//
// Debian packages: postfix, besides what the platform itself needs (dovecot-imapd,
// dovecot-lmtpd, slapd, ldap-utils). When /usr/sbin/postfix is missing and the bench runs
// as root it installs it (DEBIAN_FRONTEND=noninteractive, debconf "No configuration", so no
// system Postfix is configured or started; a system Postfix that the install started anyway
// is stopped). It is not one of `npm start`'s packages: only this bench uses it.
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { Session } from 'node:inspector';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { parseArgs } from 'node:util';
import { ImapFlow } from 'imapflow';
import { operatorBalContext } from '../annuaire/admin/wiring.js';
import { createBal } from '../annuaire/bal/index.js';
import { trustPeer } from './peer.js';
import { startPlatform, type Platform } from '../bin/platform.js';
import { initDevPki } from '../certs/pki.js';
import pg from 'pg';
import { loadConfig, maskUrl } from '../core/config/index.js';
import type { Queryable } from '../core/db/index.js';
import { createLogger, silentLogger } from '../core/logger.js';
import { freePort } from '../core/net.js';
import { allProcs, type ProcStat } from './proc.js';
import { connectTcp, Refusal, startTls, Wire } from './load.js';

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '2000' },
    connections: { type: 'string', default: '16' },
    'per-connection': { type: 'string', default: '10' },
    size: { type: 'string', default: '10240' },
    rounds: { type: 'string', default: '1' },
    timeout: { type: 'string', default: '600' },
    'delivery-concurrency': { type: 'string' },
    db: { type: 'string', default: 'pglite' },
    'shared-buffers': { type: 'string' },
    'pglite-settings': { type: 'string' },
    only: { type: 'string' },
    crypt: { type: 'string' },
    fts: { type: 'string' },
    queries: { type: 'boolean', default: false },
    'cpu-profile': { type: 'string' },
    child: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  process.stdout.write(
    [
      'usage: node dist/bench/smtp-inbound.js [--messages N] [--connections C] [--per-connection K] [--size BYTES] [--rounds R] [--timeout SECONDS]',
      '',
      'N messages of BYTES (default 2000 × 10240) over C parallel mutual-TLS connections (default 16), K per connection',
      '(default 10), into (a) the platform MX, (b) Postfix from a private configuration directory, both relaying to the',
      'same Dovecot over LMTP, and (c) raw LMTP into Dovecot (the ceiling). Timed until the messages are in Dovecot.',
      '--db pglite (default) runs the platform on its embedded database, --db pg on a scratch database of MSS_DATABASE_URL;',
      '--shared-buffers SIZE sets PGlite\'s (database.pgliteSharedBuffers, e.g. 128MiB to compare with PostgreSQL\'s default),',
      '--pglite-settings name=value,… further PostgreSQL settings of PGlite (database.pgliteSettings).',
      'R rounds alternate the three (medians printed). --delivery-concurrency overrides smtp.deliveryConcurrency;',
      '--only ours|postfix|lmtp runs one target (profiling: node --cpu-prof …); the ratios need all three.',
      '--crypt on|off sets encryption at rest (crypt.mailStore and crypt.spool; default on), --fts on|off Dovecot\'s full-text index (bench/encryption runs both ways).',
      '--queries prints the database statements the platform ran during the measured rounds (count, wall time);',
      '--cpu-profile FILE writes a V8 CPU profile of the platform process over the measured rounds.',
      'Needs root for Postfix (its master runs as root, its daemons as the postfix user); installs Debian postfix if missing.',
      '',
    ].join('\n'),
  );
  process.exit(0);
}

const DOMAIN = 'mssante.localhost';
const PEER = `peer.${DOMAIN}`;
const FROM = `labo-resultats@${PEER}`;
const BOXES_PER_TARGET = 8;
type Target = 'ours' | 'postfix' | 'lmtp';
const ALL_TARGETS: Target[] = ['ours', 'postfix', 'lmtp'];
const TARGETS: Target[] = args.only ? ALL_TARGETS.filter((t) => t === args.only) : ALL_TARGETS;
if (!TARGETS.length) throw new Error(`--only: one of ${ALL_TARGETS.join(', ')}`);
const boxes = (t: Target) => Array.from({ length: BOXES_PER_TARGET }, (_, i) => `bench-${t}-${i}@${DOMAIN}`);
const say = (s: string) => process.stdout.write(s + '\n');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- the load generator (child)

interface Job {
  kind: 'smtp' | 'lmtp';
  port: number;
  /** STARTTLS with these options (client certificate included); none for LMTP. */
  tls?: ConnectionOptions;
  n: number;
  connections: number;
  perConnection: number;
  size: number;
  from: string;
  rcpts: string[];
  tag: string;
  deadline: number;
}

interface JobResult {
  ok: number;
  refused: number;
  errors: number;
  firstProblem: string;
  seconds: number;
  sessions: number;
  tls?: string;
}

/** A message of exactly `size` bytes before the terminating dot, CRLF lines, none starting with a dot. */
function makeMessage(tag: string, i: number, rcpt: string, size: number, filler: string): Buffer {
  const head =
    `From: <${FROM}>\r\nTo: <${rcpt}>\r\nSubject: Compte rendu ${tag} ${i}\r\nDate: ${new Date().toUTCString()}\r\n` +
    `Message-ID: <${tag}.${i}.${process.pid}@${PEER}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n`;
  const bodyLen = Math.max(2, size - Buffer.byteLength(head));
  const body = filler.slice(0, bodyLen - 2) + '\r\n';
  return Buffer.from(head + body + '.\r\n', 'latin1');
}

async function runJob(job: Job): Promise<JobResult> {
  const line = 'Resultats de biologie : hemoglobine 14,2 g/dL, plaquettes 250 G/L, RAS'.padEnd(76, '.') + '\r\n';
  const filler = line.repeat(Math.ceil(job.size / line.length) + 1);
  const r: JobResult = { ok: 0, refused: 0, errors: 0, firstProblem: '', seconds: 0, sessions: 0 };
  const problems = new Map<string, number>();
  const problem = (what: string) => {
    const key = what.replace(/<[^>]*>/g, '<…>').slice(0, 300);
    problems.set(key, (problems.get(key) ?? 0) + 1);
  };
  let next = 0;
  const sockets = new Set<Socket>();
  const stages: string[] = [];
  const timer = setTimeout(() => {
    problem(`deadline reached with ${job.n - next} messages not sent; connections waiting on: ${stages.filter(Boolean).join(', ') || 'nothing'}`);
    next = job.n;
    for (const s of sockets) s.destroy();
  }, Math.max(0, job.deadline - Date.now()));
  const t0 = performance.now();
  const worker = async (w: number) => {
    const at = (what: string) => (stages[w] = what);
    while (next < job.n) {
      if (r.errors > Math.max(10, job.n / 10)) {
        problem('too many connection failures');
        next = job.n;
        return;
      }
      let inFlight = 0;
      let wire: Wire | null = null;
      try {
        at('connect');
        const plain = await connectTcp(job.port);
        sockets.add(plain);
        wire = new Wire(plain);
        at('greeting');
        await wire.cmd('', '220');
        if (job.kind === 'lmtp') await wire.cmd('LHLO bench.localhost\r\n', '250');
        else {
          await wire.cmd(`EHLO mx.${PEER}\r\n`, '250');
          at('STARTTLS');
          await wire.cmd('STARTTLS\r\n', '220');
          at('TLS handshake');
          const sock = await startTls(wire.detachPlain(), job.tls!);
          sockets.add(sock);
          r.tls ??= `${sock.getProtocol()} ${sock.getCipher()?.name}`;
          wire = new Wire(sock);
          await wire.cmd(`EHLO mx.${PEER}\r\n`, '250');
        }
        r.sessions++;
        for (let k = 0; k < job.perConnection && next < job.n; k++) {
          const i = next++;
          inFlight = 1;
          const rcpt = job.rcpts[i % job.rcpts.length];
          try {
            at('MAIL');
            await wire.cmd(`MAIL FROM:<${job.from}>\r\n`, '250');
            at('RCPT');
            await wire.cmd(`RCPT TO:<${rcpt}>\r\n`, '250');
            at('DATA');
            await wire.cmd('DATA\r\n', '354');
            at('end of data');
            await wire.cmd(makeMessage(job.tag, i, rcpt, job.size, filler), '250');
            r.ok++;
          } catch (e) {
            if (!(e instanceof Refusal)) throw e;
            r.refused++;
            problem((e as Error).message);
            await wire.cmd('RSET\r\n', '250');
          }
          inFlight = 0;
        }
        at('QUIT');
        await wire.cmd('QUIT\r\n', '221').catch(() => {});
        at('');
      } catch (e) {
        r.errors += Math.max(1, inFlight);
        problem(`connection: ${(e as Error).message}`);
      } finally {
        wire?.sock.destroy();
        for (const s of sockets) if (s.destroyed) sockets.delete(s);
      }
    }
  };
  await Promise.all(Array.from({ length: job.connections }, (_, w) => worker(w)));
  clearTimeout(timer);
  r.seconds = (performance.now() - t0) / 1000;
  r.firstProblem = [...problems].slice(0, 5).map(([k, n]) => `${n} × ${k}`).join('; ');
  return r;
}

/** Counts messages in INBOX of each box, over IMAP as the box with the master user. */
class Counter {
  private clients = new Map<string, ImapFlow>();
  constructor(private readonly store: ImapInfo) {}

  private async client(box: string) {
    let c = this.clients.get(box);
    if (c?.usable) return c;
    const m = this.store;
    c = new ImapFlow({ host: m.imap.host, port: m.imap.port, secure: false, auth: { user: `${box}${m.master.separator}${m.master.user}`, pass: m.master.password }, logger: false });
    await c.connect();
    this.clients.set(box, c);
    return c;
  }

  async count(list: string[]): Promise<number> {
    const n = await Promise.all(
      list.map(async (box) => {
        const s = await (await this.client(box)).status('INBOX', { messages: true });
        return s ? (s.messages ?? 0) : 0;
      }),
    );
    return n.reduce((a: number, b: number) => a + b, 0);
  }

  async close() {
    for (const c of this.clients.values()) await c.logout().catch(() => c.close());
    this.clients.clear();
  }
}

interface ImapInfo {
  imap: { host: string; port: number };
  master: { user: string; password: string; separator: string };
}

interface Measured {
  sent: JobResult;
  acceptSeconds: number;
  storedSeconds: number;
  stored: number;
}

/**
 * Runs a job and times it until every accepted message is in Dovecot: the INBOX counts of
 * the job's mailboxes polled over IMAP every 50 ms, from this process (the observer costs
 * the platform's process nothing, and costs the same for every target).
 */
async function runMeasured(job: Job, counter: Counter): Promise<Measured> {
  const base = await counter.count(job.rcpts);
  const t0 = performance.now();
  let sent: JobResult | undefined;
  let failed: Error | undefined;
  let t250 = 0;
  const gen = runJob(job).then(
    (r) => {
      sent = r;
      t250 = performance.now();
    },
    (e) => (failed = e as Error),
  );
  let stored = 0;
  for (;;) {
    const done = sent !== undefined;
    stored = (await counter.count(job.rcpts)) - base;
    const now = performance.now();
    if (failed) throw failed;
    if (done && stored >= sent!.ok) {
      await gen;
      return { sent: sent!, acceptSeconds: (t250 - t0) / 1000, storedSeconds: (Math.max(now, t250) - t0) / 1000, stored };
    }
    if (Date.now() > job.deadline + 5000) throw new Error(`only ${stored} of ${sent?.ok ?? job.n} messages reached Dovecot before the deadline`);
    await sleep(50);
  }
}

function child() {
  let counter: Counter | undefined;
  process.on('message', (m: { job: Job; store: ImapInfo }) => {
    counter ??= new Counter(m.store);
    runMeasured(m.job, counter).then(
      (result) => process.send!({ ok: true, result }),
      (e) => process.send!({ ok: false, error: (e as Error).stack ?? String(e) }),
    );
  });
}

// ---------------------------------------------------------------- Postfix

const POSTFIX = '/usr/sbin/postfix';

function postfixRunning(configDir?: string): boolean {
  try {
    execFileSync(POSTFIX, [...(configDir ? ['-c', configDir] : []), 'status'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Installs Debian's postfix when missing, with no system configuration and nothing left running. */
function ensurePostfix() {
  if (existsSync(POSTFIX)) return;
  if (process.getuid?.() !== 0) throw new Error(`Postfix is not installed (${POSTFIX}): as root, DEBIAN_FRONTEND=noninteractive apt-get install -y postfix`);
  say('installing Debian postfix (debconf: No configuration) …');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('debconf-set-selections', { input: 'postfix postfix/main_mailer_type select No configuration\n', stdio: ['pipe', 'ignore', 'inherit'] });
  try {
    execFileSync('apt-get', ['install', '-y', '-q', 'postfix'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  } catch {
    execFileSync('apt-get', ['update', '-q'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
    execFileSync('apt-get', ['install', '-y', '-q', 'postfix'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  // "No configuration" writes no main.cf, so nothing can have started; should a system
  // Postfix run anyway it would hold port 25, which the platform's MX may want.
  if (existsSync('/etc/postfix/main.cf') && postfixRunning()) {
    say('the postfix package started a system Postfix: stopping it');
    execFileSync(POSTFIX, ['stop'], { stdio: 'ignore' });
  }
}

interface PostfixInstance {
  port: number;
  stop(): Promise<void>;
}

/**
 * Postfix from a private configuration directory: smtpd on a loopback port, TLS required
 * with the operator's server certificate, the peer's client certificate required and
 * verified, the operator's domain relayed (its recipients listed) to Dovecot over LMTP.
 * Everything else is Postfix's defaults (queue files fsync'ed before 250, as ours).
 */
async function startPostfix(root: string, o: { certFile: string; keyFile: string; chainFile: string; caFile: string; lmtpPort: number; recipients: string[]; log: (s: string) => void }): Promise<PostfixInstance> {
  const etc = join(root, 'etc');
  const spool = join(root, 'spool');
  const lib = join(root, 'lib');
  for (const d of [etc, spool, lib]) mkdirSync(d, { recursive: true, mode: 0o755 });
  chmodSync(root, 0o755);
  const uid = Number(execFileSync('id', ['-u', 'postfix']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postfix']).toString().trim());
  chownSync(lib, uid, gid);
  const port = await freePort('127.0.0.1');
  const maillog = () => (existsSync(join(root, 'maillog')) ? readFileSync(join(root, 'maillog'), 'utf8').slice(-2000) : '');
  const inline = (entries: string[]) => `inline:{${entries.map((e) => `${e}=OK`).join(',')}}`;
  writeFileSync(
    join(etc, 'main.cf'),
    `# bench/smtp-inbound: a private Postfix relaying the operator's domain to Dovecot over LMTP.
compatibility_level = 3.6
queue_directory = ${spool}
data_directory = ${lib}
mail_owner = postfix
myhostname = postfix.bench.localhost
mydestination =
local_recipient_maps =
local_transport = error:local delivery is disabled
alias_maps =
alias_database =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
maillog_file_prefixes = ${root}
maillog_file = ${join(root, 'maillog')}
biff = no
# The operator's domain, its recipients known (as the MX knows them from the annuaire),
# delivered to the platform's Dovecot over LMTP.
relay_domains = ${DOMAIN}
relay_recipient_maps = ${inline(o.recipients)}
relay_transport = lmtp:inet:127.0.0.1:${o.lmtpPort}
# Like the MX: only the peer's domain as sender, no relaying elsewhere.
smtpd_relay_restrictions = reject_unauth_destination
smtpd_sender_restrictions = check_sender_access ${inline([PEER])}, reject
# Mutual TLS: STARTTLS required, a client certificate chaining to the CA required.
smtpd_tls_security_level = encrypt
smtpd_tls_chain_files = ${o.keyFile}, ${o.certFile}, ${o.chainFile}
smtpd_tls_CAfile = ${o.caFile}
smtpd_tls_ask_ccert = yes
smtpd_tls_req_ccert = yes
smtpd_tls_mandatory_protocols = >=TLSv1.2
smtpd_tls_protocols = >=TLSv1.2
smtpd_tls_received_header = yes
smtpd_tls_loglevel = 0
message_size_limit = 26214400
`,
  );
  const svc = (name: string, type: string, priv: string, wakeup: string, limit: string, cmd: string) => `${name.padEnd(20)} ${type.padEnd(10)} ${priv} - n ${wakeup} ${limit} ${cmd}`;
  writeFileSync(
    join(etc, 'master.cf'),
    [
      svc(`127.0.0.1:${port}`, 'inet', 'n', '-', '-', 'smtpd'),
      svc('cleanup', 'unix', 'n', '-', '0', 'cleanup'),
      svc('qmgr', 'unix', 'n', '300', '1', 'qmgr'),
      svc('tlsmgr', 'unix', '-', '1000?', '1', 'tlsmgr'),
      svc('rewrite', 'unix', '-', '-', '-', 'trivial-rewrite'),
      svc('bounce', 'unix', '-', '-', '0', 'bounce'),
      svc('defer', 'unix', '-', '-', '0', 'bounce'),
      svc('trace', 'unix', '-', '-', '0', 'bounce'),
      svc('verify', 'unix', '-', '-', '1', 'verify'),
      svc('flush', 'unix', 'n', '1000?', '0', 'flush'),
      svc('proxymap', 'unix', '-', '-', '-', 'proxymap'),
      svc('showq', 'unix', 'n', '-', '-', 'showq'),
      svc('error', 'unix', '-', '-', '-', 'error'),
      svc('retry', 'unix', '-', '-', '-', 'error'),
      svc('discard', 'unix', '-', '-', '-', 'discard'),
      svc('lmtp', 'unix', '-', '-', '-', 'lmtp'),
      svc('anvil', 'unix', '-', '-', '1', 'anvil'),
      svc('scache', 'unix', '-', '-', '1', 'scache'),
      svc('postlog', 'unix-dgram', 'n', '-', '1', 'postlogd'),
      '',
    ].join('\n'),
  );
  try {
    execFileSync(POSTFIX, ['-c', etc, 'check'], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    throw new Error(`postfix check: ${String((e as { stderr?: Buffer }).stderr ?? '').trim() || (e as Error).message}\n${maillog()}`);
  }
  const master: ChildProcess = spawn(POSTFIX, ['-c', etc, 'start-fg'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  master.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  master.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const stop = async () => {
    try {
      execFileSync(POSTFIX, ['-c', etc, 'stop'], { stdio: 'ignore' });
    } catch {
      /* not running */
    }
    // Whatever is left (a master that did not answer): by its own pid file.
    for (let i = 0; i < 50 && postfixRunning(etc); i++) await sleep(100);
    try {
      const pid = Number(readFileSync(join(spool, 'pid', 'master.pid'), 'utf8').trim());
      if (pid > 1) process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    if (master.exitCode === null) master.kill('SIGKILL');
  };
  // Ready when smtpd answers its banner.
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const s = await connectTcp(port);
      const w = new Wire(s);
      const banner = await w.reply();
      s.destroy();
      if (banner.startsWith('220')) break;
    } catch {
      /* not yet */
    }
    if (master.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`Postfix did not start: ${output.trim() || `exit ${master.exitCode}`}\n${maillog()}`);
    }
    await sleep(100);
  }
  o.log(`Postfix ${execFileSync('postconf', ['-d', '-h', 'mail_version']).toString().trim()} on 127.0.0.1:${port} (configuration ${etc})`);
  return { port, stop };
}

// ---------------------------------------------------------------- the run (parent)

/** Wraps the platform's database handle to count statements (--queries). */
function countQueries(db: Platform['db']) {
  const stats = new Map<string, { n: number; ms: number }>();
  const wrap = (q: Queryable): Queryable => {
    const query = q.query.bind(q);
    return Object.assign(q, {
      query: async (sql: string, params?: unknown[]) => {
        const t0 = performance.now();
        try {
          return await query(sql, params);
        } finally {
          const key = sql.replace(/\s+/g, ' ').trim().slice(0, 110);
          const e = stats.get(key) ?? { n: 0, ms: 0 };
          e.n++;
          e.ms += performance.now() - t0;
          stats.set(key, e);
        }
      },
    }) as Queryable;
  };
  wrap(db);
  const transaction = db.transaction.bind(db);
  Object.assign(db, { transaction: <T>(fn: (tx: Queryable) => Promise<T>) => transaction((tx) => fn(wrap(tx))) });
  return stats;
}

function cpuLine(m: Pick<Measure, 'cpu' | 'sent'>): string {
  const per = (g: CpuGroup) => (1000 * m.cpu[g]) / Math.max(1, m.sent.ok);
  const parts = CPU_GROUPS.filter((g) => m.cpu[g] > 0).map((g) => `${g} ${per(g).toFixed(2)}`);
  return `${parts.join(', ')}; total ${CPU_GROUPS.reduce((a, g) => a + per(g), 0).toFixed(2)}`;
}

function ask(c: ChildProcess, job: Job, store: ImapInfo): Promise<Measured> {
  return new Promise((resolve, reject) => {
    const onExit = () => reject(new Error('the load generator exited'));
    c.once('exit', onExit);
    c.once('message', (m: { ok: boolean; result?: Measured; error?: string }) => {
      c.off('exit', onExit);
      if (m.ok) resolve(m.result!);
      else reject(new Error(m.error));
    });
    c.send({ job, store });
  });
}

// ---------------------------------------------------------------- where the CPU goes

type CpuGroup = 'platform' | 'generator' | 'dovecot' | 'postfix' | 'slapd' | 'postgres';
const CPU_GROUPS: CpuGroup[] = ['platform', 'generator', 'dovecot', 'postfix', 'slapd', 'postgres'];

/**
 * CPU seconds so far of everything this bench started, by part: this process (the
 * platform), the load generator, Dovecot, Postfix and slapd are all its descendants (a
 * process that exited counts in the parent that reaped it); PostgreSQL's backends serving
 * the platform's database are found by their pids (its shared background processes are not
 * counted).
 */
function cpuByGroup(generatorPid: number, pgPids: number[]): Record<CpuGroup, number> {
  const procs = allProcs();
  const children = new Map<number, ProcStat[]>();
  for (const p of procs) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p]);
  const total: Record<CpuGroup, number> = { platform: 0, generator: 0, dovecot: 0, postfix: 0, slapd: 0, postgres: 0 };
  const self = procs.find((p) => p.pid === process.pid);
  const walk = (p: ProcStat, group: CpuGroup) => {
    total[group] += p.treeMs / 1000;
    for (const c of children.get(p.pid) ?? []) {
      const g: CpuGroup = c.pid === generatorPid ? 'generator' : /^(dovecot|imap|lmtp|auth|anvil|log|config|stats)/.test(c.comm) ? 'dovecot' : c.comm === 'slapd' ? 'slapd' : c.comm === 'master' || c.comm === 'postfix' ? 'postfix' : group;
      walk(c, g);
    }
  };
  if (self) {
    // Our own line without the children it reaped (those are counted under their group).
    walk({ ...self, treeMs: 0 }, 'platform');
    const u = process.cpuUsage();
    total.platform += (u.user + u.system) / 1e6;
  }
  for (const pid of pgPids) {
    const p = procs.find((x) => x.pid === pid);
    if (p) total.postgres += p.treeMs / 1000;
  }
  return total;
}

interface Measure {
  target: Target;
  sent: JobResult;
  /** Accepted messages per second, until the last 250. */
  acceptRate: number;
  /** Until every accepted message was counted in Dovecot. */
  storedSeconds: number;
  rate: number;
  stored: number;
  cpuSeconds: number;
  /** CPU seconds per part of the machine's work, during this run. */
  cpu: Record<CpuGroup, number>;
}

async function parent() {
  const N = Number(args.messages);
  const C = Number(args.connections);
  const K = Number(args['per-connection']);
  const SIZE = Number(args.size);
  const ROUNDS = Number(args.rounds);
  const TIMEOUT = Number(args.timeout) * 1000;
  for (const [k, v] of Object.entries({ messages: N, connections: C, 'per-connection': K, size: SIZE, rounds: ROUNDS, timeout: TIMEOUT })) {
    if (!Number.isInteger(v) || v <= 0) throw new Error(`--${k} must be a positive integer`);
  }
  if (N > 100_000 || C > 256) throw new Error('--messages ≤ 100000 and --connections ≤ 256 (a bench on one machine)');
  const started = Date.now();
  const hardDeadline = started + TIMEOUT;
  const load0 = loadavg();
  say(`bench/smtp-inbound — ${N} messages of ${SIZE} B over ${C} connections (${K} per connection), ${ROUNDS} round(s); ${cpus().length} CPUs, load average ${load0.map((x) => x.toFixed(2)).join(' ')}`);

  ensurePostfix();
  const dir = mkdtempSync(join(tmpdir(), 'mss-bench-smtp-'));
  const cleanups: Array<() => Promise<unknown>> = [];
  const cleanup = async () => {
    for (const c of cleanups.reverse()) await c().catch((e) => process.stderr.write(`cleanup: ${(e as Error).message}\n`));
    if (process.env.MSS_BENCH_KEEP) say(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  };
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    say('interrupted: cleaning up');
    void cleanup().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const pkiDir = join(dir, 'pki');
    const { paths } = await initDevPki({ dir: pkiDir, domain: DOMAIN, keyBits: 2048, validityDays: 30 });
    const dataDir = join(dir, 'data');
    mkdirSync(dataDir, { mode: 0o711 });
    chmodSync(dir, 0o711);
    let database: { url: string; label: string } | undefined;
    if (args.db === 'pg') {
      const base = process.env.MSS_DATABASE_URL;
      if (!base) throw new Error('--db pg needs MSS_DATABASE_URL (a PostgreSQL where a scratch database may be created)');
      const name = `mss_bench_smtp_${process.pid}`;
      const admin = new pg.Client({ connectionString: base });
      await admin.connect();
      const settings = (await admin.query<{ v: string; f: string; s: string }>("SELECT current_setting('server_version') AS v, current_setting('fsync') AS f, current_setting('synchronous_commit') AS s")).rows[0];
      await admin.query(`CREATE DATABASE ${name}`);
      await admin.end();
      cleanups.push(async () => {
        const c = new pg.Client({ connectionString: base });
        await c.connect();
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await c.end();
      });
      const u = new URL(base);
      u.pathname = `/${name}`;
      database = { url: u.toString(), label: `PostgreSQL ${settings.v} (fsync ${settings.f}, synchronous_commit ${settings.s}) at ${maskUrl(u.toString())}` };
    } else if (args.db !== 'pglite') throw new Error('--db: pglite or pg');
    const config = loadConfig({
      env: {},
      overrides: {
        dataDir,
        ...(database ? { database: { url: database.url } } : {}),
        ...(args['shared-buffers'] || args['pglite-settings']
          ? { database: { pgliteSharedBuffers: (args['shared-buffers'] ?? undefined) as unknown as number, pgliteSettings: (args['pglite-settings'] ?? undefined) as unknown as string[] } }
          : {}),
        operator: { domain: DOMAIN, hostname: 'mx.' + DOMAIN },
        http: { port: 0 },
        ldap: { port: 0, ldapsPort: 0 },
        admin: { enabled: false },
        fhir: { enabled: false },
        imap: { enabled: false },
        pki: { autoInit: false },
        tls: { certFile: paths.leaves.server.cert, keyFile: paths.leaves.server.key, chainFile: paths.intermediate, caFile: paths.ca, crlFile: paths.crl },
        tsa: { certFile: paths.leaves.tsa.cert, keyFile: paths.leaves.tsa.key, chainFile: paths.intermediate, caFile: paths.ca },
        smtp: { mxPort: 0, submissionPort: 0, submissionsPort: 0, ...(args['delivery-concurrency'] ? { deliveryConcurrency: Number(args['delivery-concurrency']) } : {}) },
        ...(args.crypt ? { crypt: { mailStore: args.crypt === 'on', spool: args.crypt === 'on' } } : {}),
        ...(args.fts ? { mailstore: { fullTextSearch: args.fts === 'on' } } : {}),
      },
    });
    const log = process.env.MSS_BENCH_LOG ? createLogger({ log: { level: process.env.MSS_BENCH_LOG as 'info', format: 'json' } }) : silentLogger;
    const platform = await startPlatform(config, log);
    cleanups.push(() => platform.stop());
    if (!platform.smtp || !platform.directory) throw new Error('the platform started without its SMTP front or its directory');
    const { db, journal } = platform;
    await trustPeer(db, journal, PEER);
    const ctx = operatorBalContext(config, db, journal);
    for (const t of ALL_TARGETS) for (const address of boxes(t)) await createBal(ctx, { address, type: 'ORG', owner: '1750000001', service: `Bench ${t}` }, 'bench');
    await platform.directory.sync();
    const stats = args.queries ? countQueries(db) : undefined;
    const lmtp = platform.mailstore.lmtp;
    say(`platform: MX 127.0.0.1:${platform.smtp.ports.mx}, Dovecot LMTP ${lmtp.host}:${lmtp.port}, delivery concurrency ${config.smtp.deliveryConcurrency}`);
    const dbLabel = database?.label ?? `PGlite ${db.target}`;
    say(`database: ${dbLabel}`);

    const postfix = !TARGETS.includes('postfix') ? { port: 0, stop: async () => {} } : await startPostfix(join(dir, 'postfix'), {
      certFile: paths.leaves.server.cert,
      keyFile: paths.leaves.server.key,
      chainFile: paths.intermediate,
      caFile: paths.ca,
      lmtpPort: lmtp.port,
      recipients: boxes('postfix'),
      log: say,
    });
    cleanups.push(() => postfix.stop());

    const kid = fork(process.argv[1], ['--child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    cleanups.push(async () => {
      if (kid.exitCode === null) kid.kill();
    });
    const store: ImapInfo = { imap: platform.mailstore.imap, master: platform.mailstore.master };

    const tls: ConnectionOptions = {
      ca: readFileSync(paths.ca, 'utf8'),
      cert: readFileSync(paths.leaves['peer-operator'].cert, 'utf8') + readFileSync(paths.intermediate, 'utf8'),
      key: readFileSync(paths.leaves['peer-operator'].key, 'utf8'),
      servername: 'localhost',
      minVersion: 'TLSv1.2',
    };
    const ports: Record<Target, number> = { ours: platform.smtp.ports.mx, postfix: postfix.port, lmtp: lmtp.port };

    const pgPids = async () =>
      database ? (await db.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = current_database()')).rows.map((r) => r.pid) : [];
    const measure = async (target: Target, n: number, tag: string): Promise<Measure> => {
      const pids = await pgPids();
      const tree0 = cpuByGroup(kid.pid!, pids);
      const cpu0 = process.cpuUsage();
      const deadline = Math.min(hardDeadline, Date.now() + TIMEOUT);
      const job: Job = { kind: target === 'lmtp' ? 'lmtp' : 'smtp', port: ports[target], tls: target === 'lmtp' ? undefined : tls, n, connections: C, perConnection: K, size: SIZE, from: FROM, rcpts: boxes(target), tag, deadline };
      const m = await ask(kid, job, store);
      const cpu = process.cpuUsage(cpu0);
      const tree1 = cpuByGroup(kid.pid!, pids);
      const byGroup = Object.fromEntries(CPU_GROUPS.map((g) => [g, Math.max(0, tree1[g] - tree0[g])])) as Record<CpuGroup, number>;
      const s = m.sent;
      if (s.refused || s.errors) say(`  ${target}: ${s.refused} refused, ${s.errors} failed — ${s.firstProblem}`);
      return { target, sent: s, acceptRate: s.ok / m.acceptSeconds, storedSeconds: m.storedSeconds, rate: s.ok / m.storedSeconds, stored: m.stored, cpuSeconds: (cpu.user + cpu.system) / 1e6, cpu: byGroup };
    };

    // Warm-up: TLS, LDAP, code paths, Dovecot's processes; not measured.
    const warm = Math.min(200, Math.max(C, Math.ceil(N / 10)));
    for (const t of TARGETS) await measure(t, warm, `warm-${t}`);
    say(`warm-up: ${warm} messages to each target`);

    stats?.clear();
    const profiler = args['cpu-profile'] ? new Session() : undefined;
    const post = (method: string, params?: object) => new Promise<any>((resolve, reject) => profiler!.post(method, params ?? {}, (e, r) => (e ? reject(e) : resolve(r))));
    if (profiler) {
      profiler.connect();
      await post('Profiler.enable');
      await post('Profiler.start');
    }
    const results: Record<Target, Measure[]> = { ours: [], postfix: [], lmtp: [] };
    for (let r = 0; r < ROUNDS; r++) {
      // Rotate the order each round so drifts (maildirs growing, caches) hit them alike.
      const order = TARGETS.map((_, i) => TARGETS[(i + r) % TARGETS.length]);
      for (const t of order) {
        const m = await measure(t, N, `r${r}-${t}`);
        results[t].push(m);
        say(`  round ${r + 1} ${t.padEnd(8)} ${m.rate.toFixed(1).padStart(7)} msg/s into Dovecot (${m.stored} in ${m.storedSeconds.toFixed(2)} s; 250s at ${m.acceptRate.toFixed(1)} msg/s; platform process CPU ${m.cpuSeconds.toFixed(1)} s; load ${loadavg()[0].toFixed(2)})`);
        say(`          CPU ms per message: ${cpuLine(m)}`);
      }
    }
    if (profiler) {
      const { profile } = await post('Profiler.stop');
      writeFileSync(args['cpu-profile']!, JSON.stringify(profile));
      profiler.disconnect();
      say(`CPU profile of the measured rounds: ${args['cpu-profile']}`);
    }
    if (stats) {
      say('database statements during the measured rounds (count, wall ms including waits):');
      for (const [sql, v] of [...stats].sort((a, b) => b[1].ms - a[1].ms).slice(0, 20)) say(`  ${String(v.n).padStart(7)} ${v.ms.toFixed(0).padStart(8)} ms  ${sql}`);
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const cpuMedian = (t: Target) => {
      const per = results[t].map((m) => CPU_GROUPS.map((g) => (1000 * m.cpu[g]) / Math.max(1, m.sent.ok)));
      return CPU_GROUPS.map((_, i) => median(per.map((p) => p[i])));
    };
    const rate = (t: Target) => median(results[t].map((m) => m.rate));
    const load1 = loadavg();
    say('');
    say(`${N} × ${SIZE} B messages, ${C} parallel connections, ${K} messages per connection${ROUNDS > 1 ? `, median of ${ROUNDS} rounds` : ''}; platform database: ${args.db === 'pg' ? 'PostgreSQL' : 'PGlite'}`);
    say(`  ${'target'.padEnd(58)} ${'msg/s'.padStart(8)}  ${'accept msg/s'.padStart(12)}  TLS`);
    const row = (label: string, t: Target) => say(`  ${label.padEnd(58)} ${rate(t).toFixed(1).padStart(8)}  ${median(results[t].map((m) => m.acceptRate)).toFixed(1).padStart(12)}  ${results[t][0].sent.tls ?? '-'}`);
    const labels: Record<Target, string> = {
      ours: '(a) our MX (mutual TLS, LDAP, spool, LMTP to Dovecot)',
      postfix: '(b) Postfix (mutual TLS, queue, LMTP to Dovecot)',
      lmtp: '(c) raw LMTP into Dovecot (no TLS, no spool: ceiling)',
    };
    for (const t of TARGETS) row(labels[t], t);
    say(`  CPU ms per message (median), by part: ${['target', ...CPU_GROUPS, 'total'].join(' / ')}`);
    for (const t of TARGETS) {
      const c = cpuMedian(t);
      say(`    ${t.padEnd(8)} ${c.map((x) => x.toFixed(2)).join(' / ')} / ${c.reduce((a, b) => a + b, 0).toFixed(2)}`);
    }
    if (TARGETS.length < ALL_TARGETS.length) return;
    const vsPostfix = rate('ours') / rate('postfix');
    const vsLmtp = rate('ours') / rate('lmtp');
    say(`  ratio ours / Postfix  ${vsPostfix.toFixed(3)}  (target ≥ 1.0) ${vsPostfix >= 1 ? 'met' : 'NOT met'}`);
    say(`  ratio ours / raw LMTP ${vsLmtp.toFixed(3)}  (target ≥ 0.8) ${vsLmtp >= 0.8 ? 'met' : 'NOT met'}`);
    say(`  load average before ${load0.map((x) => x.toFixed(2)).join(' ')}, after ${load1.map((x) => x.toFixed(2)).join(' ')}; ${cpus().length} CPUs (generator, MX, Postfix and Dovecot share them)`);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (!interrupted) await cleanup();
  }
}

if (args.child) child();
else
  parent().then(
    () => process.exit(0),
    (e) => {
      process.stderr.write(`bench failed: ${(e as Error).stack}\n`);
      process.exit(1);
    },
  );
