// bench/imap-proxy: the IMAP proxy against Dovecot itself, same client, same run.
//   1. FETCH throughput of a mailbox of --messages messages of --size bytes (BODY.PEEK[] of
//      1:*, imapflow), through the proxy (TLS, auth, tracing) vs directly against Dovecot
//      (plain loopback, master-user login); rounds alternate and the medians are compared.
//   2. Login latency p50/p99: password (scrypt + policy + journal + Dovecot login), client
//      certificate (EXTERNAL), and a direct Dovecot login for reference.
//   3. Memory: RSS of the proxy's process with --idle concurrent sessions sitting in IDLE
//      (Dovecot hibernates them), and Dovecot's own RSS.
// The clients run in a child process (as they would on other machines), so the proxy's
// process holds only the proxy, the embedded database and the journal. Loopback only.
//
//   node dist/bench/imap-proxy.js [--messages 1000] [--size 51200] [--rounds 3] [--logins 200] [--idle 10000]
//
// Dovecot hibernates an idle session by handing its inotify instance to imap-hibernate, so
// each hibernated session keeps one: fs.inotify.max_user_instances (128 by default on
// Debian) must exceed the number of idle sessions, or Dovecot silently keeps one imap
// process (~5 MB) per session. The bench says so when the limit is too low
// (`sysctl fs.inotify.max_user_instances=16384`).
//
// File descriptors: every proxied session holds two (client + Dovecot). The bench cannot
// raise the hard limit (`ulimit -Hn`, a root/systemd setting: LimitNOFILE=); it opens as
// many idle sessions as the limit allows and says so. Raise it with `ulimit -n 65536`
// (as root) before running to measure more.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect as tcpConnect, createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, createServer as createTlsServer, type ConnectionOptions } from 'node:tls';
import { parseArgs } from 'node:util';
import { ImapFlow } from 'imapflow';
import { loadConfig } from '../core/config/index.js';
import { migrate, openPglite } from '../core/db/index.js';
import { Journal } from '../core/journal/index.js';
import { silentLogger } from '../core/logger.js';
import { Policy } from '../core/policy/index.js';
import { Supervisor } from '../core/supervisor.js';
import { DEV_RPPS, DEV_STRUCTURE_ID, initDevPki } from '../certs/pki.js';
import { loadTlsMaterial, serverTlsOptions } from '../certs/tls.js';
import { startMailstore } from '../mailstore/dovecot.js';
import { deliverLmtp } from '../mailstore/lmtp.js';
import { balFactSource, checkCredentials, createBal, createPerson, principalForCertificate, registerAppCertificate } from '../annuaire/bal/index.js';
import { whitelistFactSource } from '../annuaire/whitelist/index.js';
import { startImapProxy } from '../imap-proxy/index.js';

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '1000' },
    size: { type: 'string', default: '51200' },
    rounds: { type: 'string', default: '3' },
    logins: { type: 'string', default: '200' },
    idle: { type: 'string', default: '10000' },
    child: { type: 'boolean', default: false },
    relay: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  process.stdout.write('usage: node dist/bench/imap-proxy.js [--messages N] [--size BYTES] [--rounds R] [--logins N] [--idle N]\n');
  process.exit(0);
}

const DOMAIN = 'mssante.localhost';
const PER = `jeanne.martin@${DOMAIN}`;
const PASSWORD = 'correct horse battery staple';
const APP_BOXES = 20;
const app = (i: number) => `labo-${i}@${DOMAIN}`;

// ---------------------------------------------------------------- the client side (child)

type Request =
  | { cmd: 'fetch'; host: string; port: number; secure: boolean; tls: ConnectionOptions; user: string; pass: string }
  | { cmd: 'logins'; n: number; port: number; tls?: ConnectionOptions; login: string }
  | { cmd: 'idle'; n: number; concurrency: number; port: number; tls: ConnectionOptions; boxes: string[] }
  | { cmd: 'connect'; n: number; port: number; tls: ConnectionOptions }
  | { cmd: 'close' };

/** One IMAP exchange on a socket: resolves at the first line matching `re`. */
function lineWaiter(sock: import('node:net').Socket) {
  let buf = '';
  let waiter: { re: RegExp; resolve: (s: string) => void; reject: (e: Error) => void } | null = null;
  const check = () => {
    if (waiter && waiter.re.test(buf)) {
      const w = waiter;
      waiter = null;
      const b = buf;
      buf = '';
      w.resolve(b);
    }
  };
  sock.on('data', (d: Buffer) => {
    buf += d.toString('latin1');
    if (buf.length > 65536) buf = buf.slice(-4096);
    check();
  });
  sock.on('close', () => waiter?.reject(new Error(`closed; got ${buf.slice(-200)}`)));
  sock.on('error', (e) => waiter?.reject(e));
  return (re: RegExp) =>
    new Promise<string>((resolve, reject) => {
      waiter = { re, resolve, reject };
      check();
    });
}

function open(port: number, tls?: ConnectionOptions): Promise<import('node:net').Socket> {
  return new Promise((resolve, reject) => {
    const s = tls ? tlsConnect({ host: '127.0.0.1', port, ...tls }, () => resolve(s)) : tcpConnect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

async function child() {
  const held: Array<import('node:net').Socket> = [];
  process.on('message', (req: Request) => {
    void (async () => {
      try {
        if (req.cmd === 'fetch') {
          const c = new ImapFlow({ host: req.host, port: req.port, secure: req.secure, tls: req.tls, auth: { user: req.user, pass: req.pass }, logger: false });
          await c.connect();
          const lock = await c.getMailboxLock('INBOX');
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
          process.send!({ ok: true, result: { bytes, n, seconds } });
        } else if (req.cmd === 'logins') {
          const times: number[] = [];
          for (let i = 0; i < req.n; i++) {
            const t0 = performance.now();
            const s = await open(req.port, req.tls);
            const wait = lineWaiter(s);
            await wait(/\r\n/);
            s.write(`a ${req.login}\r\n`);
            const answer = await wait(/^a (OK|NO|BAD).*\r\n/m);
            times.push(performance.now() - t0);
            if (!/^a OK/m.test(answer)) throw new Error(`login refused: ${answer.trim()}`);
            s.write('z LOGOUT\r\n');
            s.end();
          }
          process.send!({ ok: true, result: times });
        } else if (req.cmd === 'idle') {
          let next = 0;
          let failed = 0;
          let firstError = '';
          const one = async (i: number) => {
            const s = await open(req.port, req.tls);
            const wait = lineWaiter(s);
            await wait(/\r\n/);
            const box = req.boxes[i % req.boxes.length];
            s.write(`a AUTHENTICATE EXTERNAL ${Buffer.from(box).toString('base64')}\r\n`);
            const a = await wait(/^a (OK|NO|BAD).*\r\n/m);
            if (!/^a OK/m.test(a)) throw new Error(a.trim());
            s.write('b SELECT INBOX\r\n');
            await wait(/^b OK.*\r\n/m);
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
        } else if (req.cmd === 'connect') {
          // Bare connections through a relay: the TLS handshake and Dovecot's greeting, no login.
          for (let i = 0; i < req.n; i++) {
            const s = await open(req.port, req.tls);
            await lineWaiter(s)(/\r\n/);
            s.removeAllListeners('data');
            s.on('data', () => {});
            held.push(s);
          }
          process.send!({ ok: true, result: held.length });
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

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)];
const mb = (bytes: number) => bytes / 1024 / 1024;
const say = (s: string) => process.stdout.write(s + '\n');

function openFileLimit(): number {
  const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return m ? Number(m[1]) : 1024;
}

/** RSS (MiB) of a process and all its descendants, from /proc. */
function treeRss(root: number): { mib: number; processes: number; byName: Record<string, number> } {
  const parent = new Map<number, number>();
  const names = new Map<number, string>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      parent.set(Number(d), Number(stat.slice(close + 2).split(' ')[1]));
      names.set(Number(d), stat.slice(stat.indexOf('(') + 1, close));
    } catch {
      /* gone */
    }
  }
  const inTree = (pid: number): boolean => pid === root || (parent.has(pid) && pid !== 1 && inTree(parent.get(pid)!));
  let kib = 0;
  let processes = 0;
  const byName: Record<string, number> = {};
  for (const pid of parent.keys()) {
    if (!inTree(pid)) continue;
    try {
      const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
      kib += rss;
      processes++;
      const n = names.get(pid)!;
      byName[n] = (byName[n] ?? 0) + 1;
    } catch {
      /* gone */
    }
  }
  return { mib: kib / 1024, processes, byName };
}

async function parent() {
  const M = Number(args.messages);
  const SIZE = Number(args.size);
  const ROUNDS = Number(args.rounds);
  const LOGINS = Number(args.logins);
  const fdLimit = openFileLimit();
  // Two descriptors per proxied session, plus what the process itself holds (database,
  // listeners, Dovecot's pipes, the child's IPC): keep 200 aside.
  const IDLE = Math.min(Number(args.idle), Math.floor((fdLimit - 200) / 2));

  const inotify = Number(readFileSync('/proc/sys/fs/inotify/max_user_instances', 'utf8'));
  if (inotify < IDLE + 100) say(`warning: fs.inotify.max_user_instances is ${inotify}: Dovecot cannot hibernate more than about that many sessions (sysctl fs.inotify.max_user_instances=16384)`);
  const dir = mkdtempSync(join(tmpdir(), 'mss-bench-imap-'));
  say(`bench/imap-proxy — ${M} messages of ${SIZE} bytes, ${ROUNDS} rounds; ${LOGINS} logins; ${IDLE} idle sessions (open-file limit ${fdLimit})`);
  const { paths } = await initDevPki({ dir: join(dir, 'pki'), domain: DOMAIN, keyBits: 2048, validityDays: 30 });
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir: dir,
      operator: { domain: DOMAIN, hostname: 'localhost' },
      // A bench on loopback: many connections from one address is the point here.
      imap: { port: 0, starttlsPort: 0, maxPreAuthPerSource: 1000, maxConnections: 100_000 },
      mailstore: { hibernateTimeout: 1000, maxSessions: Math.max(12_000, IDLE + 1000), maxUserIpConnections: 100_000 },
      tls: { certFile: paths.leaves.server.cert, keyFile: paths.leaves.server.key, chainFile: paths.intermediate, caFile: paths.ca, crlFile: paths.crl },
    },
  });
  const supervisor = new Supervisor(silentLogger);
  const store = await startMailstore(config, silentLogger, supervisor);
  const db = await openPglite();
  await migrate(db);
  const journal = new Journal(db);
  const policy = new Policy({ ...balFactSource(db), ...whitelistFactSource(db) }, journal, { localDomains: [DOMAIN] });
  const ctx = { db, journal, domains: [DOMAIN] };
  await createPerson(ctx, { login: 'jeanne', idnps: DEV_RPPS, password: PASSWORD }, 'bench');
  await createBal(ctx, { address: PER, type: 'PER', owner: DEV_RPPS }, 'bench');
  const appPem = readFileSync(paths.leaves.application.cert, 'utf8');
  for (let i = 0; i < APP_BOXES; i++) {
    await createBal(ctx, { address: app(i), type: 'APP', owner: DEV_STRUCTURE_ID }, 'bench');
    await registerAppCertificate(ctx, app(i), appPem, 'bench');
  }
  const material = loadTlsMaterial(config);
  const proxy = await startImapProxy(config, {
    tls: material,
    policy,
    journal,
    log: silentLogger,
    backend: { host: store.imap.host, port: store.imap.port, master: store.master },
    checkPassword: (u, s) => checkCredentials(db, u, s),
    certificatePrincipal: (pem) => principalForCertificate(db, pem),
  });

  // References in the same process as the proxy: what any relay costs on this machine. A
  // bare TCP relay and a bare TLS relay (same certificate and suites as the proxy), both
  // stream.pipe() to Dovecot, no authentication, no tracing.
  const relay = (server: Server) => {
    server.on('connection', () => {});
    return new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
  };
  const pipeTo = (c: Socket) => {
    const b = tcpConnect({ host: store.imap.host, port: store.imap.port, noDelay: true });
    c.setNoDelay(true);
    c.pipe(b).on('error', () => c.destroy());
    b.pipe(c).on('error', () => b.destroy());
  };
  const tcpRelay = createTcpServer(pipeTo);
  const tlsRelay = createTlsServer(serverTlsOptions(material), pipeTo);
  const relayPorts = { tcp: await relay(tcpRelay), tls: await relay(tlsRelay) };

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

  const kid = fork(process.argv[1], ['--child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ca = readFileSync(paths.ca, 'utf8');
  const tlsOpts: ConnectionOptions = { ca, servername: 'localhost' };
  const certOpts: ConnectionOptions = { ...tlsOpts, cert: appPem + readFileSync(paths.intermediate, 'utf8'), key: readFileSync(paths.leaves.application.key, 'utf8') };
  try {
    // 1. FETCH throughput: the four paths in turn, each round, so drifts hit them alike.
    const master = { user: `${PER}${store.master.separator}${store.master.user}`, pass: store.master.password };
    const paths = {
      direct: { cmd: 'fetch' as const, host: store.imap.host, port: store.imap.port, secure: false, tls: {}, ...master },
      tcpRelay: { cmd: 'fetch' as const, host: '127.0.0.1', port: relayPorts.tcp, secure: false, tls: {}, ...master },
      tlsRelay: { cmd: 'fetch' as const, host: '127.0.0.1', port: relayPorts.tls, secure: true, tls: tlsOpts, ...master },
      proxy: { cmd: 'fetch' as const, host: '127.0.0.1', port: proxy.ports.imaps, secure: true, tls: tlsOpts, user: PER, pass: PASSWORD },
    };
    type Fetch = { bytes: number; n: number; seconds: number };
    const speed: Record<keyof typeof paths, number[]> = { direct: [], tcpRelay: [], tlsRelay: [], proxy: [] };
    const cpu: Record<keyof typeof paths, number[]> = { direct: [], tcpRelay: [], tlsRelay: [], proxy: [] };
    for (let r = -1; r < ROUNDS; r++) {
      for (const [name, req] of Object.entries(paths) as Array<[keyof typeof paths, (typeof paths)['direct']]>) {
        const c0 = process.cpuUsage();
        const f = await ask<Fetch>(kid, req);
        const c = process.cpuUsage(c0);
        if (f.n !== M) throw new Error(`${name}: fetched ${f.n} messages, expected ${M}`);
        if (r < 0) continue; // a first round to warm caches and code paths
        speed[name].push(mb(f.bytes) / f.seconds);
        cpu[name].push((c.user + c.system) / 1000);
      }
    }
    say('');
    say(`FETCH 1:* BODY.PEEK[] (${M} × ${SIZE} B, imapflow in a child process, median of ${ROUNDS} rounds)`);
    const row = (label: string, k: keyof typeof paths) =>
      say(`  ${label.padEnd(44)} ${median(speed[k]).toFixed(1).padStart(6)} MiB/s  ${(median(speed[k]) / median(speed.direct)).toFixed(3)}   CPU in this process ${median(cpu[k]).toFixed(0).padStart(4)} ms   rounds ${speed[k].map((x) => x.toFixed(0)).join(' ')}`);
    say(`  ${''.padEnd(44)} ${'speed'.padStart(12)}  ratio`);
    row('direct to Dovecot (plain, master login)', 'direct');
    row('reference: bare TCP relay (pipe)', 'tcpRelay');
    row('reference: bare TLS relay (pipe)', 'tlsRelay');
    row('the proxy (TLS, login, policy, tracing)', 'proxy');
    say(`  ratio proxy / direct ${(median(speed.proxy) / median(speed.direct)).toFixed(3)} (target ≥ 0.95); proxy / bare TLS relay ${(median(speed.proxy) / median(speed.tlsRelay)).toFixed(3)}`);

    // 2. Login latency.
    const q = (s: string) => `"${s}"`;
    const lat = async (label: string, port: number, tls: ConnectionOptions | undefined, login: string) => {
      await ask<number[]>(kid, { cmd: 'logins', n: 5, port, tls, login });
      const t = await ask<number[]>(kid, { cmd: 'logins', n: LOGINS, port, tls, login });
      say(`  ${label.padEnd(48)} p50 ${pct(t, 50).toFixed(1).padStart(6)} ms   p99 ${pct(t, 99).toFixed(1).padStart(6)} ms`);
    };
    say('');
    say(`Login latency, connect → tagged OK (${LOGINS} sequential logins each)`);
    await lat('proxy, LOGIN password (scrypt, policy, journal)', proxy.ports.imaps, tlsOpts, `LOGIN ${q(PER)} ${q(PASSWORD)}`);
    await lat('proxy, AUTHENTICATE EXTERNAL (certificate)', proxy.ports.imaps, certOpts, `AUTHENTICATE EXTERNAL ${Buffer.from(app(0)).toString('base64')}`);
    await lat('Dovecot directly, master login (reference)', store.imap.port, undefined, `LOGIN ${q(`${PER}*${store.master.user}`)} ${q(store.master.password)}`);

    // 3. Idle sessions.
    await journal.flush();
    const before = process.memoryUsage();
    const dovecotPid = supervisor.status('dovecot')[0].pid!;
    say('');
    say(`${IDLE} concurrent sessions in IDLE (certificate logins over ${APP_BOXES} APP boxes, 64 at a time)`);
    const t0 = performance.now();
    const idle = await ask<{ opened: number; failed: number; firstError: string }>(kid, { cmd: 'idle', n: IDLE, concurrency: 64, port: proxy.ports.imaps, tls: certOpts, boxes: Array.from({ length: APP_BOXES }, (_, i) => app(i)) }, (n) =>
      process.stdout.write(`  … ${n} opened\n`),
    );
    const openSeconds = (performance.now() - t0) / 1000;
    // Let Dovecot hibernate them and the journal catch up, then measure.
    await new Promise((r) => setTimeout(r, config.mailstore.hibernateTimeout + 5000));
    await journal.flush();
    const after = process.memoryUsage();
    const dove = treeRss(dovecotPid);
    say(`  opened ${idle.opened} (failed ${idle.failed}${idle.firstError ? `: ${idle.firstError}` : ''}) in ${openSeconds.toFixed(1)} s; proxy holds ${proxy.stats().sessions} sessions`);
    say(`  proxy process RSS ${mb(after.rss).toFixed(0)} MiB (before: ${mb(before.rss).toFixed(0)} MiB, so ${((after.rss - before.rss) / 1024 / Math.max(1, idle.opened)).toFixed(1)} KiB per session); JS heap ${mb(after.heapUsed).toFixed(0)} MiB   (target ≤ 1024 MiB)`);
    say(`  (the proxy's process also holds the embedded PGlite database and the journal: the "before" figure)`);
    say(`  Dovecot: ${dove.processes} processes, RSS ${dove.mib.toFixed(0)} MiB — ${Object.entries(dove.byName).map(([k, v]) => `${k}×${v}`).join(', ')}`);
    await ask(kid, { cmd: 'close' });

    // Reference: what one connection costs a bare Node TLS relay (TLS socket with a client
    // certificate + a socket to Dovecot, greeting only), in a fresh process of its own so
    // the allocator has nothing to reuse.
    const REF = 2000;
    const bare = fork(process.argv[1], ['--relay'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    try {
      const ref = await new Promise<{ port: number; rss: number }>((resolve) => {
        bare.once('message', (m: { port: number; rss: number }) => resolve(m));
        bare.send({ tls: serverTlsOptions(material), dovecot: store.imap });
      });
      await ask<number>(kid, { cmd: 'connect', n: REF, port: ref.port, tls: certOpts });
      await new Promise((r) => setTimeout(r, 1000));
      const rss = await new Promise<number>((resolve) => {
        bare.once('message', (m: { rss: number }) => resolve(m.rss));
        bare.send('rss');
      });
      say(`  reference: a bare Node TLS relay holds ${((rss - ref.rss) / 1024 / REF).toFixed(1)} KiB per connection (${REF} connections with a client certificate, fresh process)`);
      await ask(kid, { cmd: 'close' });
    } finally {
      bare.kill();
    }
  } finally {
    kid.kill();
    tcpRelay.close();
    tlsRelay.close();
    await proxy.stop();
    await journal.flush();
    await supervisor.stopAll();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The reference relay's process: a TLS server piping to Dovecot, reporting its RSS. */
function relayProcess() {
  process.on('message', (m: 'rss' | { tls: import('node:tls').TlsOptions; dovecot: { host: string; port: number } }) => {
    if (m === 'rss') return process.send!({ rss: process.memoryUsage().rss });
    const server = createTlsServer(m.tls, (c) => {
      const b = tcpConnect(m.dovecot);
      c.pipe(b).on('error', () => c.destroy());
      b.pipe(c).on('error', () => b.destroy());
      c.on('error', () => b.destroy());
    });
    server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as AddressInfo).port, rss: process.memoryUsage().rss }));
  });
}

if (args.child) void child();
else if (args.relay) relayProcess();
else
  parent().catch((e) => {
    process.stderr.write(`bench failed: ${(e as Error).stack}\n`);
    process.exit(1);
  });
