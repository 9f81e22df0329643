// bench/imap-proxy: the IMAP proxy against Dovecot itself, same client, same run.
//   1. FETCH throughput of a mailbox of --messages messages of --size bytes (BODY.PEEK[] of
//      1:*, imapflow in a child process), through the proxy (TLS, login, policy, tracing) vs
//      directly against Dovecot over IMAPS — what a client without our proxy would use, and
//      the ratio the target is judged on — and, for information, Dovecot over plain loopback
//      and a bare Node TLS relay. Dovecot's IMAPS is a second instance of the same Dovecot
//      (the platform's generated configuration included, same mail, same master user) with a
//      TLS listener, the platform's certificate and the same suites: the production
//      configuration keeps TLS in the proxy only. Rounds rotate the order; medians and the
//      per-round (paired) ratios are printed, with the negotiated protocol and cipher.
//   2. Login latency p50/p99: password (scrypt + policy + journal + Dovecot login); the same
//      reconnecting (password cache), with a new TLS session and with the last one resumed
//      as Thunderbird does; client certificate (EXTERNAL); a direct Dovecot login for
//      reference; and --burst (200) simultaneous logins from one address and one account,
//      which must all succeed (issue 13: a hospital behind one NAT address).
//   3. Memory: RSS of the proxy with --idle concurrent sessions sitting in IDLE (Dovecot
//      hibernates them), and Dovecot's own RSS. The proxy runs as --workers processes
//      (imap.workers, default 2): every session holds two descriptors and one process may
//      not hold 20,000 here. Its RSS is the sum of the workers' VmRSS plus what the
//      platform's process (listeners, logins, journal) grew by during the phase — the
//      platform's process itself also holds the embedded database, counted apart.
// The clients run in child processes (as they would on other machines; two for the idle
// sessions, each under its own descriptor limit). Loopback only.
//
//   node dist/bench/imap-proxy.js [--messages 1000] [--size 51200] [--rounds 5] [--logins 200] [--burst 200]
//        [--idle 10000] [--workers 2] [--only fetch,logins,idle] [--targets …] [--cpu-profile FILE]
//
// Dovecot hibernates an idle session by handing its inotify instance to imap-hibernate, so
// each hibernated session keeps one: fs.inotify.max_user_instances (128 by default on
// Debian) must exceed the number of idle sessions, or Dovecot silently keeps one imap
// process (~5 MB) per session. The bench says so when the limit is too low
// (`sysctl fs.inotify.max_user_instances=16384`).
import { fork, type ChildProcess } from 'node:child_process';
import { Session } from 'node:inspector';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect, type AddressInfo, type Socket } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, createServer as createTlsServer, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { parseArgs } from 'node:util';
import { writeHeapSnapshot } from 'node:v8';
import { ImapFlow } from 'imapflow';
import { loadConfig, type Config } from '../core/config/index.js';
import { migrate, openPglite } from '../core/db/index.js';
import { Journal } from '../core/journal/index.js';
import { silentLogger } from '../core/logger.js';
import { freePort } from '../core/net.js';
import { LoginThrottle, Policy } from '../core/policy/index.js';
import { chownTree, Supervisor } from '../core/supervisor.js';
import { DEV_RPPS, DEV_STRUCTURE_ID, initDevPki } from '../certs/pki.js';
import { loadTrustStore } from '../certs/client-cert.js';
import { loadTlsMaterial, MSSANTE_TLS12_CIPHERS, serverTlsOptions, TLS13_CIPHERS } from '../certs/tls.js';
import { startMailstore } from '../mailstore/dovecot.js';
import { deliverLmtp } from '../mailstore/lmtp.js';
import { allProcs, descendants, procStat } from './proc.js';
import { lineWaiter, open } from './load.js';
import { balFactSource, checkCredentials, createBal, CredentialCache, createPerson, principalForCertificate, registerAppCertificate } from '../annuaire/bal/index.js';
import { whitelistFactSource } from '../annuaire/whitelist/index.js';
import { startImapProxy } from '../imap-proxy/index.js';

const SECTIONS = ['fetch', 'logins', 'idle'] as const;
type Section = (typeof SECTIONS)[number];

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '1000' },
    size: { type: 'string', default: '51200' },
    rounds: { type: 'string', default: '5' },
    logins: { type: 'string', default: '200' },
    burst: { type: 'string', default: '200' },
    idle: { type: 'string', default: '10000' },
    workers: { type: 'string', default: '2' },
    hold: { type: 'string', default: '0' },
    'idle-read': { type: 'string', default: '0' },
    only: { type: 'string' },
    targets: { type: 'string' },
    'cpu-profile': { type: 'string' },
    'heap-snapshot': { type: 'string' },
    child: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  process.stdout.write(
    [
      'usage: node dist/bench/imap-proxy.js [--messages N] [--size BYTES] [--rounds R] [--logins N] [--burst N] [--idle N] [--workers N] [--only fetch,logins,idle] [--cpu-profile FILE]',
      '  --burst N simultaneous password logins from one address (default 200): how many succeed, are refused, fail.',
      '  --heap-snapshot FILE writes a V8 heap snapshot of this process with the idle sessions open (with --workers 1 the proxy is in it).',
      '  --idle-read BYTES: each idle session first reads a message of that size (a client that synced, then idles).',
      '  --hold S keeps the idle sessions open S seconds after measuring (to look at the processes).',
      '  --workers is imap.workers (default 2: 10,000 sessions need 20,000 descriptors, more than one process may hold here); 1 runs the proxy in this process.',
      '  --only runs some sections (comma-separated); --targets proxy,dovecotTls,dovecotPlain,tlsRelay limits the FETCH paths (profiling: the ratios need proxy and dovecotTls);',
      '  --cpu-profile FILE writes a V8 CPU profile of this process over the measured FETCH rounds (with --workers 1 the proxy is in it).',
      '',
    ].join('\n'),
  );
  process.exit(0);
}
const ONLY = new Set<Section>(args.only ? (args.only.split(',').map((s) => s.trim()) as Section[]) : SECTIONS);
for (const s of ONLY) if (!SECTIONS.includes(s)) throw new Error(`--only: ${s} is not one of ${SECTIONS.join(', ')}`);

const DOMAIN = 'mssante.localhost';
const PER = `jeanne.martin@${DOMAIN}`;
const PASSWORD = 'correct horse battery staple';
const APP_BOXES = 20;
const app = (i: number) => `labo-${i}@${DOMAIN}`;

// ---------------------------------------------------------------- the client side (child)

type FetchRequest = { cmd: 'fetch'; host: string; port: number; secure: boolean; tls: ConnectionOptions; user: string; pass: string };
type Request =
  | FetchRequest
  | { cmd: 'logins'; n: number; port: number; tls?: ConnectionOptions; login: string; resume?: boolean }
  | { cmd: 'burst'; n: number; port: number; tls?: ConnectionOptions; login: string }
  | { cmd: 'idle'; n: number; from: number; concurrency: number; port: number; tls: ConnectionOptions; boxes: string[]; read: boolean }
  | { cmd: 'close' };
interface FetchResult {
  bytes: number;
  n: number;
  seconds: number;
  /** Negotiated TLS, as the client saw it. */
  tls: string | null;
  /** Average plaintext bytes per TLS record received (one socket 'data' event per record). */
  record: number | null;
}

function describeTls(s: TLSSocket): string {
  const c = s.getCipher();
  const k = s.getEphemeralKeyInfo() as { name?: string; type?: string } | null;
  return `${s.getProtocol()} ${c.standardName ?? c.name}${k && (k.name || k.type) ? ` (${k.name ?? k.type})` : ''}`;
}

async function child() {
  const held: Socket[] = [];
  process.on('message', (req: Request) => {
    void (async () => {
      try {
        if (req.cmd === 'fetch') {
          const c = new ImapFlow({ host: req.host, port: req.port, secure: req.secure, tls: req.tls, auth: { user: req.user, pass: req.pass }, logger: false });
          await c.connect();
          const socket = (c as unknown as { socket: Socket }).socket;
          const tls = req.secure ? describeTls(socket as TLSSocket) : null;
          const lock = await c.getMailboxLock('INBOX');
          process.send!({ progress: 0 }); // logged in: the parent starts counting CPU for the transfer
          let records = 0;
          let recordBytes = 0;
          if (req.secure)
            socket.on('data', (d: Buffer) => {
              records++;
              recordBytes += d.length;
            });
          const t0 = performance.now();
          let bytes = 0;
          let n = 0;
          for await (const m of c.fetch('1:*', { source: true })) {
            bytes += m.source?.length ?? 0;
            n++;
          }
          const seconds = (performance.now() - t0) / 1000;
          lock.release();
          await c.logout();
          process.send!({ ok: true, result: { bytes, n, seconds, tls, record: records ? recordBytes / records : null } satisfies FetchResult });
        } else if (req.cmd === 'logins') {
          const times: number[] = [];
          // A reconnecting client offers the TLS session of its last connection (TLS 1.3
          // tickets arrive after the handshake: the latest one is kept).
          let last: Buffer | undefined;
          let resumed = 0;
          for (let i = 0; i < req.n; i++) {
            const t0 = performance.now();
            const s = await open(req.port, req.tls && req.resume && last ? { ...req.tls, session: last } : req.tls);
            if (req.resume) {
              if ((s as TLSSocket).isSessionReused()) resumed++;
              s.on('session', (b: Buffer) => (last = b));
            }
            const wait = lineWaiter(s);
            await wait(/\r\n/);
            s.write(`a ${req.login}\r\n`);
            const answer = await wait(/^a (OK|NO|BAD).*\r\n/m);
            times.push(performance.now() - t0);
            if (!/^a OK/m.test(answer)) throw new Error(`login refused: ${answer.trim()}`);
            s.write('z LOGOUT\r\n');
            if (req.resume) await wait(/^z OK.*\r\n/m).catch(() => '');
            s.end();
          }
          if (req.resume) process.send!({ progress: resumed });
          process.send!({ ok: true, result: times });
        } else if (req.cmd === 'burst') {
          // n logins at once from this one address: each connects, logs in and waits for its answer.
          const one = async () => {
            const t0 = performance.now();
            const s = await open(req.port, req.tls);
            const wait = lineWaiter(s);
            await wait(/\r\n/);
            s.write(`a ${req.login}\r\n`);
            const answer = await wait(/^a (OK|NO|BAD).*\r\n/m);
            s.destroy();
            return { ms: performance.now() - t0, ok: /^a OK/m.test(answer), answer: answer.trim().split('\r\n').pop()! };
          };
          const out = await Promise.allSettled(Array.from({ length: req.n }, one));
          const done = out.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
          const refused = done.filter((r) => !r.ok);
          const failed = out.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
          process.send!({ ok: true, result: { times: done.filter((r) => r.ok).map((r) => r.ms), refused: refused.length, firstRefusal: refused[0]?.answer ?? null, failed: failed.length, firstFailure: failed[0] ? String(failed[0].reason) : null } });
        } else if (req.cmd === 'idle') {
          let next = 0;
          let failed = 0;
          let firstError = '';
          const one = async (i: number) => {
            const s = await open(req.port, req.tls);
            const wait = lineWaiter(s);
            await wait(/\r\n/);
            const box = req.boxes[(req.from + i) % req.boxes.length];
            s.write(`a AUTHENTICATE EXTERNAL ${Buffer.from(box).toString('base64')}\r\n`);
            const a = await wait(/^a (OK|NO|BAD).*\r\n/m);
            if (!/^a OK/m.test(a)) throw new Error(a.trim());
            s.write('b SELECT INBOX\r\n');
            await wait(/^b OK.*\r\n/m);
            if (req.read) {
              s.write('d FETCH 1 BODY.PEEK[]\r\n');
              await wait(/^d OK.*\r\n/m);
            }
            s.write('c IDLE\r\n');
            await wait(/^\+ .*\r\n/m);
            s.removeAllListeners('data');
            s.on('data', () => {});
            held.push(s);
          };
          const worker = async () => {
            for (let i = next++; i < req.n; i = next++) {
              try {
                await one(i);
              } catch (e) {
                failed++;
                firstError ||= (e as Error).message;
              }
              if ((i + 1) % 1000 === 0) process.send!({ progress: i + 1 });
            }
          };
          await Promise.all(Array.from({ length: req.concurrency }, worker));
          process.send!({ ok: true, result: { opened: held.length, failed, firstError } });
        } else if (req.cmd === 'close') {
          for (const s of held.splice(0)) s.destroy();
          process.send!({ ok: true, result: null });
        }
      } catch (e) {
        process.send!({ ok: false, error: (e as Error).stack ?? String(e) });
      }
    })();
  });
}

// ---------------------------------------------------------------- the proxy side (parent)

function ask<T>(c: ChildProcess, req: Request, onProgress?: (n: number) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const on = (m: { ok?: boolean; result?: T; error?: string; progress?: number }) => {
      if (m.progress !== undefined) return onProgress?.(m.progress);
      c.off('message', on);
      if (m.ok) resolve(m.result as T);
      else reject(new Error(m.error));
    };
    c.on('message', on);
    c.send(req);
  });
}

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const median = (xs: number[]) => {
  const s = sorted(xs);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const pct = (xs: number[], p: number) => sorted(xs)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)];
const mb = (bytes: number) => bytes / 1024 / 1024;
const say = (s: string) => process.stdout.write(s + '\n');
const load = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

function openFileLimit(): number {
  const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return m ? Number(m[1]) : 1024;
}

/** RSS (MiB) of a process and all its descendants, from /proc. */
function treeRss(root: number): { mib: number; processes: number; byName: Record<string, { n: number; kib: number }> } {
  let kib = 0;
  let processes = 0;
  const byName: Record<string, { n: number; kib: number }> = {};
  for (const p of descendants(allProcs(), root)) {
    try {
      const k = rssKib(p.pid);
      kib += k;
      processes++;
      byName[p.comm] ??= { n: 0, kib: 0 };
      byName[p.comm].n++;
      byName[p.comm].kib += k;
    } catch {
      /* gone */
    }
  }
  return { mib: kib / 1024, processes, byName };
}

/**
 * CPU time (ms) of a process and all its descendants, living or reaped: each one's user +
 * system time plus what it collected from children it waited for (an exited Dovecot imap
 * process is counted in its master), from /proc.
 */
function treeCpuMs(root: number): number {
  return descendants(allProcs(), root).reduce((ms, p) => ms + p.treeMs, 0);
}

/** CPU time (ms, user + system) of processes so far, from /proc. */
function cpuMs(pids: number[]): number {
  return pids.reduce((ms, pid) => ms + (procStat(pid)?.cpuMs ?? 0), 0);
}

function rssKib(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
}

/**
 * Dovecot over IMAPS, for the FETCH comparison: a second instance of the platform's own
 * Dovecot — its generated configuration included as is, so the same mail, master user and
 * settings — with a TLS listener using the platform's certificate and the same suites and
 * preferences as the proxy. Its own base and state directories; LMTP and plain IMAP off.
 */
async function startDovecotTls(config: Config, supervisor: Supervisor, cert: { chainPem: string; keyPem: string }): Promise<{ host: string; port: number }> {
  const home = join(config.dataDir, 'dovecot-tls');
  const run = join(home, 'run');
  const state = join(home, 'state');
  for (const d of [home, run, state]) mkdirSync(d, { recursive: true, mode: 0o750 });
  writeFileSync(join(home, 'cert.pem'), cert.chainPem, { mode: 0o600 });
  writeFileSync(join(home, 'key.pem'), cert.keyPem, { mode: 0o600 });
  const port = await freePort('127.0.0.1');
  const file = join(home, 'dovecot.conf');
  writeFileSync(
    file,
    `# bench/imap-proxy: the platform's Dovecot, plus a TLS listener (a second instance).
!include ${join(config.dataDir, 'dovecot', 'dovecot.conf')}
base_dir = ${run}
state_dir = ${state}
instance_name = mss-bench-imaps
ssl = yes
ssl_cert = <${join(home, 'cert.pem')}
ssl_key = <${join(home, 'key.pem')}
ssl_min_protocol = TLSv1.2
ssl_cipher_list = ${MSSANTE_TLS12_CIPHERS.join(':')}
ssl_cipher_suites = ${TLS13_CIPHERS.join(':')}
ssl_prefer_server_ciphers = yes
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = ${port}
    ssl = yes
  }
}
service lmtp {
  inet_listener lmtp {
    port = 0
  }
}
`,
    { mode: 0o600 },
  );
  chownTree(home, supervisor.user);
  const banner = () =>
    new Promise<void>((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {});
      const t = setTimeout(() => (s.destroy(), reject(new Error('no IMAPS banner'))), 2000);
      s.once('data', (d) => {
        clearTimeout(t);
        s.destroy();
        if (d.toString().startsWith('* OK')) resolve();
        else reject(new Error(`unexpected banner ${d.toString().slice(0, 80)}`));
      });
      s.once('error', (e) => (clearTimeout(t), reject(e)));
    });
  await supervisor.start({
    name: 'dovecot-imaps',
    command: config.mailstore.dovecot,
    args: ['-F', '-c', file],
    pidFile: join(run, 'master.pid'),
    restart: 'never',
    health: banner,
    readyTimeoutMs: 30_000,
    stopTimeoutMs: 10_000,
    logLevels: { stdout: 'info', stderr: 'info' },
  });
  return { host: '127.0.0.1', port };
}

async function parent() {
  const M = Number(args.messages);
  const SIZE = Number(args.size);
  const ROUNDS = Number(args.rounds);
  const LOGINS = Number(args.logins);
  const BURST = Number(args.burst);
  const fdLimit = openFileLimit();
  const WORKERS = Number(args.workers);
  // Two descriptors per proxied session in the process holding it, plus what that process
  // holds besides (listeners, the database when it is this one, IPC): keep 200 aside.
  const IDLE = Math.min(Number(args.idle), Math.max(1, WORKERS) * Math.floor((fdLimit - 200) / 2));

  const inotify = Number(readFileSync('/proc/sys/fs/inotify/max_user_instances', 'utf8'));
  if (ONLY.has('idle') && inotify < IDLE + 100) say(`warning: fs.inotify.max_user_instances is ${inotify}: Dovecot cannot hibernate more than about that many sessions (sysctl fs.inotify.max_user_instances=16384)`);
  const dir = mkdtempSync(join(tmpdir(), 'mss-bench-imap-'));
  say(`bench/imap-proxy — ${[...ONLY].join(', ')}; ${M} messages of ${SIZE} bytes, ${ROUNDS} rounds; ${LOGINS} logins; ${IDLE} idle sessions (open-file limit ${fdLimit} per process); proxy in ${WORKERS > 1 ? `${WORKERS} worker processes` : 'this process'}; load average ${load()}`);
  const { paths } = await initDevPki({ dir: join(dir, 'pki'), domain: DOMAIN, keyBits: 2048, validityDays: 30 });
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir: dir,
      operator: { domain: DOMAIN, hostname: 'localhost' },
      // A bench on loopback: many connections from one address is the point here.
      imap: { port: 0, starttlsPort: 0, maxPreAuthPerSource: 1000, maxConnections: 100_000, workers: WORKERS },
      mailstore: { hibernateTimeout: 1000, maxSessions: Math.max(12_000, IDLE + 1000), maxUserIpConnections: 100_000 },
      tls: { certFile: paths.leaves.server.cert, keyFile: paths.leaves.server.key, chainFile: paths.intermediate, caFile: paths.chain, crlFile: paths.crl },
    },
  });
  const supervisor = new Supervisor(silentLogger);
  const store = await startMailstore(config, silentLogger, supervisor);
  const material = loadTlsMaterial(config);
  const imaps = ONLY.has('fetch') ? await startDovecotTls(config, supervisor, { chainPem: material.certChainPem, keyPem: material.keyPem }) : null;
  const db = await openPglite();
  await migrate(db);
  const journal = new Journal(db);
  const policy = new Policy({ ...balFactSource(db), ...whitelistFactSource(db) }, journal, { localDomains: [DOMAIN] });
  const ctx = { db, journal, domains: [DOMAIN], trust: () => loadTrustStore(config.tls) };
  await createPerson(ctx, { login: 'jeanne', idnps: DEV_RPPS, password: PASSWORD }, 'bench');
  await createBal(ctx, { address: PER, type: 'PER', owner: DEV_RPPS }, 'bench');
  const appPem = readFileSync(paths.leaves.application.cert, 'utf8');
  for (let i = 0; i < APP_BOXES; i++) {
    await createBal(ctx, { address: app(i), type: 'APP', owner: DEV_STRUCTURE_ID }, 'bench');
    await registerAppCertificate(ctx, app(i), appPem, 'bench', { allowShared: true });
  }
  // The platform's password cache (auth.cacheTtl), switched on for the "reconnecting" row only.
  const credentialCache = new CredentialCache({ ttlMs: config.auth.cacheTtl, maxEntries: config.auth.cacheSize });
  let useCache = false;
  const proxy = await startImapProxy(config, {
    tls: material,
    policy,
    journal,
    log: silentLogger,
    backend: { host: store.imap.host, port: store.imap.port, master: store.master },
    checkPassword: (u, s) => checkCredentials(db, u, s, useCache ? { cache: credentialCache } : {}),
    certificatePrincipal: (pem) => principalForCertificate(db, pem),
    throttle: new LoginThrottle(config.auth, { db, journal }),
  });

  // Reference in the same process as the proxy: what any Node relay costs on this machine.
  // A bare TLS relay (same certificate and suites as the proxy), stream.pipe() to Dovecot,
  // no login, no tracing.
  const tlsRelay = createTlsServer(serverTlsOptions(material), (c) => {
    const b = tcpConnect({ host: store.imap.host, port: store.imap.port, noDelay: true });
    c.setNoDelay(true);
    c.pipe(b).on('error', () => c.destroy());
    b.pipe(c).on('error', () => b.destroy());
  });
  const relayPort = await new Promise<number>((resolve) => tlsRelay.listen(0, '127.0.0.1', () => resolve((tlsRelay.address() as AddressInfo).port)));

  const kid = fork(process.argv[1], ['--child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ca = readFileSync(paths.ca, 'utf8');
  const tlsOpts: ConnectionOptions = { ca, servername: 'localhost' };
  const certOpts: ConnectionOptions = { ...tlsOpts, cert: appPem + readFileSync(paths.intermediate, 'utf8'), key: readFileSync(paths.leaves.application.key, 'utf8') };
  try {
    if (ONLY.has('fetch')) {
      // The mailbox: M messages of SIZE bytes, delivered over LMTP 8 at a time.
      const line = 'Compte rendu de biologie : hémoglobine 14,2 g/dL, plaquettes 250 G/L, RAS.'.padEnd(76, '.') + '\r\n';
      const body = line.repeat(Math.ceil(SIZE / Buffer.byteLength(line)));
      let made = 0;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (made < M) {
            const i = ++made;
            const head = `From: labo@peer.${DOMAIN}\r\nTo: ${PER}\r\nSubject: Résultat ${i}\r\nMessage-ID: <${i}@bench>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n`;
            const msg = Buffer.from(head + body, 'utf8').subarray(0, SIZE);
            await deliverLmtp(store.lmtp, { from: `labo@peer.${DOMAIN}`, to: [PER] }, msg);
          }
        }),
      );
      await fetchSection({ kid, M, SIZE, ROUNDS, tlsOpts, store, imaps: imaps!, relayPort, proxyPort: proxy.ports.imaps, platformPids: () => [process.pid, ...(WORKERS > 1 ? proxy.pids() : [])] });
    }

    if (ONLY.has('logins')) {
      const q = (s: string) => `"${s}"`;
      const lat = async (label: string, port: number, tls: ConnectionOptions | undefined, login: string, resume = false) => {
        await ask<number[]>(kid, { cmd: 'logins', n: 5, port, tls, login });
        let resumed = 0;
        const t = await ask<number[]>(kid, { cmd: 'logins', n: LOGINS, port, tls, login, resume }, (n) => (resumed = n));
        say(`  ${label.padEnd(54)} p50 ${pct(t, 50).toFixed(1).padStart(6)} ms   p99 ${pct(t, 99).toFixed(1).padStart(6)} ms${resume ? `   (${resumed} of ${LOGINS} resumed)` : ''}`);
      };
      say('');
      say(`Login latency, connect → tagged OK (${LOGINS} sequential logins each; load average ${load()})`);
      await lat('proxy, LOGIN password (scrypt, policy, journal)', proxy.ports.imaps, tlsOpts, `LOGIN ${q(PER)} ${q(PASSWORD)}`);
      useCache = true;
      await lat('proxy, LOGIN password, new TLS session (password cache)', proxy.ports.imaps, tlsOpts, `LOGIN ${q(PER)} ${q(PASSWORD)}`);
      await lat('proxy, LOGIN password, reconnecting (TLS resumed, cache)', proxy.ports.imaps, tlsOpts, `LOGIN ${q(PER)} ${q(PASSWORD)}`, true);
      const burst = await ask<{ times: number[]; refused: number; firstRefusal: string | null; failed: number; firstFailure: string | null }>(kid, { cmd: 'burst', n: BURST, port: proxy.ports.imaps, tls: tlsOpts, login: `LOGIN ${q(PER)} ${q(PASSWORD)}` });
      say(
        `  ${`${BURST} simultaneous LOGINs, one address, one account`.padEnd(54)} ${burst.times.length} OK, ${burst.refused} refused${burst.firstRefusal ? ` (${burst.firstRefusal})` : ''}, ${burst.failed} failed${burst.firstFailure ? ` (${burst.firstFailure})` : ''}; p50 ${pct(burst.times, 50).toFixed(1)} ms, p99 ${pct(burst.times, 99).toFixed(1)} ms`,
      );
      const direct = await ask<{ times: number[]; refused: number }>(kid, { cmd: 'burst', n: BURST, port: store.imap.port, login: `LOGIN ${q(`${PER}*${store.master.user}`)} ${q(store.master.password)}` });
      say(`  ${`  the same against Dovecot directly (reference)`.padEnd(54)} ${direct.times.length} OK, ${direct.refused} refused; p50 ${pct(direct.times, 50).toFixed(1)} ms, p99 ${pct(direct.times, 99).toFixed(1)} ms`);
      useCache = false;
      await lat('proxy, AUTHENTICATE EXTERNAL (certificate)', proxy.ports.imaps, certOpts, `AUTHENTICATE EXTERNAL ${Buffer.from(app(0)).toString('base64')}`);
      await lat('Dovecot directly, master login (reference)', store.imap.port, undefined, `LOGIN ${q(`${PER}*${store.master.user}`)} ${q(store.master.password)}`);
      say(`  (load average after: ${load()})`);
    }

    if (ONLY.has('idle')) {
      await journal.flush();
      (globalThis as { gc?: () => void }).gc?.();
      const rssOf = (pids: number[]) => pids.reduce((a, pid) => a + rssKib(pid), 0) / 1024;
      const workerPids = WORKERS > 1 ? proxy.pids() : [];
      const before = { self: rssOf([process.pid]), workers: rssOf(workerPids), heap: process.memoryUsage() };
      const dovecotPid = supervisor.status('dovecot')[0].pid!;
      const READ = Number(args['idle-read']);
      if (READ > 0) {
        // One message of READ bytes in each APP box: every idle session reads it first.
        const line = 'Résultat de biologie, valeurs de référence jointes.'.padEnd(76, '.') + '\r\n';
        for (let k = 0; k < APP_BOXES; k++) {
          const head = `From: labo@peer.${DOMAIN}\r\nTo: ${app(k)}\r\nSubject: Lot ${k}\r\nMessage-ID: <lot-${k}@bench>\r\n\r\n`;
          const msg = Buffer.from(head + line.repeat(Math.ceil(READ / Buffer.byteLength(line))), 'utf8').subarray(0, READ);
          await deliverLmtp(store.lmtp, { from: `labo@peer.${DOMAIN}`, to: [app(k)] }, msg);
        }
      }
      // Two load generators, each under its own descriptor limit, half the sessions each.
      const gens = [0, 1].map(() => fork(process.argv[1], ['--child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
      const half = Math.ceil(IDLE / 2);
      say('');
      say(`${IDLE} concurrent sessions in IDLE (certificate logins over ${APP_BOXES} APP boxes, ${READ > 0 ? `each having read a ${READ}-byte message first, ` : ''}from 2 client processes, 32 at a time each; load average ${load()})`);
      const t0 = performance.now();
      let progress = 0;
      const idles = await Promise.all(
        gens.map((g, i) =>
          ask<{ opened: number; failed: number; firstError: string }>(
            g,
            { cmd: 'idle', n: i ? IDLE - half : half, from: i * half, concurrency: 32, port: proxy.ports.imaps, tls: certOpts, boxes: Array.from({ length: APP_BOXES }, (_, k) => app(k)), read: READ > 0 },
            () => {
              progress += 1000;
              process.stdout.write(`  … ${progress} opened (${((performance.now() - t0) / 1000).toFixed(0)} s)\n`);
            },
          ),
        ),
      );
      const idle = { opened: idles[0].opened + idles[1].opened, failed: idles[0].failed + idles[1].failed, firstError: idles[0].firstError || idles[1].firstError };
      const openSeconds = (performance.now() - t0) / 1000;
      // Let Dovecot hibernate them, the workers report, the journal catch up; then measure.
      await new Promise((r) => setTimeout(r, config.mailstore.hibernateTimeout + 5000));
      await journal.flush();
      // Started with node --expose-gc: garbage of the login burst collected first (this process only).
      (globalThis as { gc?: () => void }).gc?.();
      const after = { self: rssOf([process.pid]), workers: rssOf(workerPids) };
      const dove = treeRss(dovecotPid);
      const perSession = (mib: number) => ((mib * 1024) / Math.max(1, idle.opened)).toFixed(1);
      say(`  opened ${idle.opened} (failed ${idle.failed}${idle.firstError ? `: ${idle.firstError}` : ''}) in ${openSeconds.toFixed(1)} s (${(idle.opened / openSeconds).toFixed(0)}/s); the proxy holds ${proxy.stats().sessions} sessions`);
      if (WORKERS > 1) {
        const grown = after.self - before.self;
        const total = after.workers + Math.max(0, grown);
        say(`  proxy RSS ${total.toFixed(0)} MiB (target ≤ 1024 MiB) = the ${workerPids.length} worker processes' VmRSS, summed: ${after.workers.toFixed(0)} MiB (${workerPids.map((pid) => `${(rssKib(pid) / 1024).toFixed(0)}`).join(' + ')}; before the sessions ${before.workers.toFixed(0)} MiB, so ${perSession(after.workers - before.workers)} KiB per session)`);
        say(`    + what the platform's process grew by meanwhile (logins, journal, IPC): ${grown.toFixed(0)} MiB (it holds ${after.self.toFixed(0)} MiB with the embedded database, the journal and the bench's references: not the proxy's)`);
      } else {
        const m = process.memoryUsage();
        say(`  proxy process RSS ${after.self.toFixed(0)} MiB (target ≤ 1024 MiB), ${before.self.toFixed(0)} MiB before the sessions (the embedded database, the journal, the bench's references), so ${perSession(after.self - before.self)} KiB per session`);
        say(`    of which JS heap ${perSession(mb(m.heapUsed - before.heap.heapUsed))} KiB per session (used ${mb(m.heapUsed).toFixed(0)} MiB of ${mb(m.heapTotal).toFixed(0)}${(globalThis as { gc?: unknown }).gc ? ', after a full GC' : '; --expose-gc to collect first'}), the rest native (TLS, sockets)`);
      }
      say(`  Dovecot: ${dove.processes} processes, RSS ${dove.mib.toFixed(0)} MiB — ${Object.entries(dove.byName)
          .sort((a, b) => b[1].kib - a[1].kib)
          .map(([k, v]) => `${k}×${v.n} ${(v.kib / 1024).toFixed(0)} MiB`)
          .join(', ')}`);
      say(`  (load average after: ${load()})`);
      if (args['heap-snapshot']) say(`  heap snapshot: ${writeHeapSnapshot(args['heap-snapshot'])}`);
      if (Number(args.hold) > 0) {
        say(`  holding the sessions ${args.hold} s: this process ${process.pid}, workers ${proxy.pids().join(' ')}, Dovecot ${dovecotPid}`);
        await new Promise((r) => setTimeout(r, Number(args.hold) * 1000));
      }
      await Promise.all(gens.map((g) => ask(g, { cmd: 'close' })));
      for (const g of gens) g.kill();
    }
  } finally {
    kid.kill();
    tlsRelay.close();
    await proxy.stop();
    await journal.flush();
    await supervisor.stopAll();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function fetchSection(o: {
  kid: ChildProcess;
  M: number;
  SIZE: number;
  ROUNDS: number;
  tlsOpts: ConnectionOptions;
  store: { imap: { host: string; port: number }; master: { user: string; password: string; separator: string } };
  imaps: { host: string; port: number };
  relayPort: number;
  proxyPort: number;
  /** This process (the relay, logins, journal) and the proxy's workers. */
  platformPids(): number[];
}) {
  const master = { user: `${PER}${o.store.master.separator}${o.store.master.user}`, pass: o.store.master.password };
  const targets = {
    proxy: { label: 'the proxy (TLS, login, policy, tracing)', req: { cmd: 'fetch', host: '127.0.0.1', port: o.proxyPort, secure: true, tls: o.tlsOpts, user: PER, pass: PASSWORD } },
    dovecotTls: { label: 'Dovecot directly over IMAPS (the peer)', req: { cmd: 'fetch', host: o.imaps.host, port: o.imaps.port, secure: true, tls: o.tlsOpts, ...master } },
    dovecotPlain: { label: 'Dovecot directly, plain loopback', req: { cmd: 'fetch', host: o.store.imap.host, port: o.store.imap.port, secure: false, tls: {}, ...master } },
    tlsRelay: { label: 'reference: bare Node TLS relay (pipe)', req: { cmd: 'fetch', host: '127.0.0.1', port: o.relayPort, secure: true, tls: o.tlsOpts, ...master } },
  } satisfies Record<string, { label: string; req: FetchRequest }>;
  type Name = keyof typeof targets;
  const names = (Object.keys(targets) as Name[]).filter((n) => !args.targets || args.targets.split(',').includes(n));
  const speed = Object.fromEntries(Object.keys(targets).map((n) => [n, [] as number[]])) as Record<Name, number[]>;
  const cpu = Object.fromEntries(Object.keys(targets).map((n) => [n, [] as number[]])) as Record<Name, number[]>;
  const clientCpu = Object.fromEntries(Object.keys(targets).map((n) => [n, [] as number[]])) as Record<Name, number[]>;
  const serverCpu = Object.fromEntries(Object.keys(targets).map((n) => [n, [] as number[]])) as Record<Name, number[]>;
  for (const n of ['proxy', 'dovecotTls', 'dovecotPlain'] as const) if (!names.includes(n)) speed[n].push(NaN);
  const tls: Partial<Record<Name, string | null>> = {};
  const record: Partial<Record<Name, number | null>> = {};
  const loads: string[] = [load()];

  const profiler = args['cpu-profile'] ? new Session() : undefined;
  const post = (method: string, params?: object) =>
    new Promise<{ profile?: unknown }>((resolve, reject) => profiler!.post(method, params ?? {}, (e, r) => (e ? reject(e) : resolve(r as { profile?: unknown }))));
  for (let r = -1; r < o.ROUNDS; r++) {
    if (r === 0 && profiler) {
      profiler.connect();
      await post('Profiler.enable');
      await post('Profiler.start');
    }
    // Rotate the order each round so drifts (caches, other load on the machine) hit all alike.
    const order = names.map((_, i) => names[(i + Math.max(0, r)) % names.length]);
    for (const name of order) {
      const pids = o.platformPids();
      const c0 = cpuMs(pids);
      // From the login on: the transfer's CPU only (the ask's progress message).
      let all0 = 0;
      let kid0 = 0;
      const f = await ask<FetchResult>(o.kid, targets[name].req, () => {
        all0 = treeCpuMs(process.pid);
        kid0 = treeCpuMs(o.kid.pid!);
      });
      const c = cpuMs(pids) - c0;
      const kidMs = treeCpuMs(o.kid.pid!) - kid0;
      const serverMs = treeCpuMs(process.pid) - all0 - kidMs;
      if (f.n !== o.M) throw new Error(`${name}: fetched ${f.n} messages, expected ${o.M}`);
      tls[name] = f.tls;
      record[name] = f.record;
      if (r < 0) continue; // a first round to warm caches and code paths
      speed[name].push(mb(f.bytes) / f.seconds);
      cpu[name].push(c);
      clientCpu[name].push(kidMs);
      serverCpu[name].push(serverMs);
    }
    if (r >= 0) loads.push(load());
  }
  if (profiler) {
    const { profile } = await post('Profiler.stop');
    writeFileSync(args['cpu-profile']!, JSON.stringify(profile));
    profiler.disconnect();
  }

  say('');
  say(`FETCH 1:* BODY.PEEK[] (${o.M} × ${o.SIZE} B, imapflow in a child process, ${o.ROUNDS} rounds after a warm-up, order rotated)`);
  say(`  ${''.padEnd(44)} ${'median'.padStart(12)}  vs IMAPS  vs plain   platform CPU   rounds (MiB/s)`);
  const peer = median(speed.dovecotTls);
  const plain = median(speed.dovecotPlain);
  for (const n of names) {
    const m = median(speed[n]);
    say(
      `  ${targets[n].label.padEnd(44)} ${m.toFixed(1).padStart(6)} MiB/s  ${(m / peer).toFixed(3).padStart(7)}  ${(m / plain).toFixed(3).padStart(7)}  ${median(cpu[n]).toFixed(0).padStart(6)} ms       ${speed[n].map((x) => x.toFixed(0)).join(' ')}`,
    );
  }
  say(`  ("platform CPU": this process — the relay, logins, journal — and the proxy's workers, per fetch including its login)`);
  say(`  CPU of the transfer (after the login), whatever the machine's load (median ms): client + server side (proxy or relay, and Dovecot) = total`);
  for (const n of names) {
    const c = median(clientCpu[n]);
    const sv = median(serverCpu[n]);
    say(`    ${targets[n].label.padEnd(44)} ${c.toFixed(0).padStart(5)} + ${sv.toFixed(0).padStart(5)} = ${(c + sv).toFixed(0).padStart(5)} ms`);
  }
  const rec = (n: Name) => (record[n] ? `${(record[n]! / 1024).toFixed(1)} KiB` : '—');
  say(`  TLS records received by the client, average plaintext: proxy ${rec('proxy')}; Dovecot ${rec('dovecotTls')}; relay ${rec('tlsRelay')}`);
  const paired = speed.proxy.map((x, i) => x / speed.dovecotTls[i]);
  say(`  TLS negotiated: proxy ${tls.proxy}; Dovecot ${tls.dovecotTls}; relay ${tls.tlsRelay}${tls.proxy === tls.dovecotTls ? ' — same' : ' — DIFFERENT: the comparison is not like for like'}`);
  say(`  ratio proxy / Dovecot IMAPS ${(median(speed.proxy) / peer).toFixed(3)} (target ≥ 0.95); per round ${paired.map((x) => x.toFixed(3)).join(' ')} (min ${Math.min(...paired).toFixed(3)}, max ${Math.max(...paired).toFixed(3)})`);
  say(`  ratio proxy / Dovecot plain ${(median(speed.proxy) / plain).toFixed(3)} (information: the client then decrypts nothing)`);
  say(`  load average per round: ${loads.join(' | ')}`);
  if (profiler) say(`  CPU profile of the measured rounds (this process): ${args['cpu-profile']}`);
}

if (args.child) void child();
else
  parent().catch((e) => {
    process.stderr.write(`bench failed: ${(e as Error).stack}\n`);
    process.exit(1);
  });
