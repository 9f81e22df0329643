import { createHash, createHmac, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { connect as tlsConnect } from 'node:tls';
import { dirname, join } from 'node:path';
import type { Config } from '../core/config/index.js';
import type { Keyring } from '../core/crypt/keyring.js';
import type { HealthCheck } from '../core/http.js';
import type { Logger } from '../core/logger.js';
import { expectBanner, freePort } from '../core/net.js';
import { chownTree, type ChildUser, type Supervisor } from '../core/supervisor.js';
import { dovecotConfig, type DovecotCluster, type MailCryptKey } from './dovecot-config.js';
import type { LmtpRoute } from './lmtp.js';

/** How the IMAP proxy, the webmail and the SMTP front reach the mail store. */
export interface Mailstore {
  imap: { host: string; port: number };
  lmtp: { host: string; port: number };
  /** Log in to Dovecot's IMAP as `${bal}${separator}${user}` with this password. */
  master: { user: string; password: string; separator: '*' };
  mailDir: string;
  health: HealthCheck;
  /**
   * A shared store (mailstore.cluster): where each recipient's box is, for LMTP, and each
   * box's back ends in order, for the IMAP proxy — both over TLS (mailstore/cluster.ts).
   * Absent: the embedded store above holds every box.
   */
  lmtpRoute?: LmtpRoute;
  imapRoute?: (bal: string) => Promise<Array<{ name: string; host: string; port: number }>>;
  /** The CA the back ends' certificates chain to, when they are reached over TLS. */
  backendCa?: string;
  /** A back end of a shared store: its doveadm server's port, into which its pair replicates. */
  doveadmPort?: number;
  /**
   * Writes Dovecot's configuration again with the keyring's key pairs and restarts it: a
   * generation made by `mss crypt rotate` on another node (core/crypt watchKeyring). Present
   * when mail_crypt is configured (a keyring).
   */
  reloadKeys?: () => Promise<void>;
  stop(): Promise<void>;
}

const LOOPBACK = '127.0.0.1';

/**
 * Writes Dovecot's configuration under the data directory and runs it under the
 * supervisor, unprivileged: as the current user, or as the daemons' system user when the
 * platform runs as root. Mail stays under the data directory.
 */
export async function startMailstore(config: Config, log: Logger, supervisor: Supervisor, opts: { cluster?: Omit<DovecotCluster, 'certFile' | 'keyFile' | 'caFile' | 'doveadmPassword'>; keyring?: Keyring; beforeRestart?: () => Promise<void> } = {}): Promise<Mailstore> {
  const HOST = opts.cluster?.listen ?? LOOPBACK;
  const keyring = opts.keyring;
  const user = supervisor.user;
  const home = join(config.dataDir, 'dovecot');
  const mailDir = config.mailstore.mailDir;
  const stateDir = join(home, 'state');
  const baseDir = shortBaseDir(join(home, 'run'), config.dataDir);
  for (const d of [home, stateDir, baseDir, mailDir]) mkdirSync(d, { recursive: true, mode: 0o750 });
  grantTraverse(config.dataDir, user);
  for (const d of [home, mailDir]) requireReachable(d, user);

  const master = { user: config.mailstore.masterUser, password: secret(config.mailstore.secretFile || join(home, 'master-secret')), separator: '*' as const };
  const cluster = opts.cluster ? clusterFiles(config, home, opts.cluster, master.password) : undefined;
  const masterUsersFile = join(home, 'master-users');
  writeFileSync(masterUsersFile, `${master.user}:${ssha512(master.password)}\n`, { mode: 0o600 });

  let crypt = keyring ? mailCrypt(keyring, user) : undefined;
  const encrypt = !!crypt && config.crypt.mailStore;
  // The full-text index is a clear copy of every word of every message: not kept when mail is encrypted.
  const fts = !encrypt && config.mailstore.fullTextSearch && hasFtsPlugin(config.mailstore.pluginDir);
  if (encrypt && config.mailstore.fullTextSearch) log.info('mail is encrypted at rest (crypt.mailStore): no full-text index is kept, since it would hold the words of messages in clear; searches read the messages');
  else if (config.mailstore.fullTextSearch && !fts) {
    log.warn({ pluginDir: config.mailstore.pluginDir }, `Dovecot's full-text search plugin is not installed (${FTS_PLUGIN_FILE} in ${config.mailstore.pluginDir}): searches of message text read every message of the folder. apt-get install dovecot-fts-xapian, or set MSS_MAILSTORE_FULL_TEXT_SEARCH=false to silence this`);
  }
  const imapPort = config.mailstore.imapPort || (await freePort(HOST));
  const lmtpPort = config.mailstore.lmtpPort || (await freePort(HOST));
  const confFile = join(home, 'dovecot.conf');
  const unusablePassword = randomBytes(24).toString('hex');
  const writeConf = () =>
    writeFileSync(
      confFile,
      dovecotConfig({
        baseDir,
        stateDir,
        mailDir,
        user: user.name,
        group: groupName(user),
        imapPort,
        lmtpPort,
        masterUsersFile,
        unusablePassword,
        hibernateTimeoutSec: Math.max(1, Math.round(config.mailstore.hibernateTimeout / 1000)),
        maxSessions: config.mailstore.maxSessions,
        maxUserIpConnections: config.mailstore.maxUserIpConnections,
        postmaster: `postmaster@${config.operator.domain}`,
        hostname: config.operator.hostname,
        // The MX takes up to smtp.maxSize and then prepends its trace headers: the headroom
        // keeps a message it acknowledged from being refused by LMTP afterwards.
        maxMailSize: config.smtp.maxSize + 65_536,
        fts,
        ...(cluster ? { cluster } : {}),
        ...(crypt ? { mailCrypt: { keys: crypt.keys, encrypt } } : {}),
      }),
      { mode: 0o600 },
    );
  writeConf();
  for (const p of [home, stateDir, baseDir, confFile, masterUsersFile, ...(cluster ? [cluster.certFile, cluster.keyFile, cluster.caFile] : [])]) chownTree(p, user);
  chownOne(mailDir, user);

  if (!existsSync(config.mailstore.dovecot)) {
    throw new Error(`Dovecot is not installed (${config.mailstore.dovecot} is missing): apt-get install dovecot-imapd dovecot-lmtpd, or set MSS_MAILSTORE_DOVECOT`);
  }
  const health = async () => {
    const banner = cluster ? (h: string, p: number, re: RegExp) => expectTlsBanner(h, p, re, cluster.caFile) : expectBanner;
    await banner(HOST, imapPort, /^\* OK/);
    await banner(HOST, lmtpPort, /^220 /);
  };
  const env = crypt ? { ...crypt.env } : undefined;
  let reloads = Promise.resolve();
  await supervisor.start({
    name: 'dovecot',
    command: config.mailstore.dovecot,
    args: ['-F', '-c', confFile],
    // One object for the service's life: a new generation's passwords are put into it before a restart (reloadKeys).
    ...(env ? { env } : {}),
    pidFile: join(baseDir, 'master.pid'),
    restart: 'always',
    ...(opts.beforeRestart ? { beforeRestart: opts.beforeRestart } : {}),
    health,
    healthIntervalMs: 15_000,
    readyTimeoutMs: 30_000,
    stopTimeoutMs: 10_000,
    logLevels: { stdout: 'info', stderr: 'info' },
  });
  log.info({ imap: `${HOST}:${imapPort}`, lmtp: `${HOST}:${lmtpPort}`, mailDir, user: user.name, fullTextSearch: fts, encrypted: encrypt ? `${crypt!.keys.length} key(s)` : false }, 'mail store (Dovecot) running');
  return {
    imap: { host: HOST, port: imapPort },
    lmtp: { host: HOST, port: lmtpPort },
    master,
    mailDir,
    ...(cluster ? { doveadmPort: cluster.doveadmPort } : {}),
    health: {
      name: 'mailstore',
      async check() {
        await health();
        return { ok: true, imap: imapPort, lmtp: lmtpPort };
      },
    },
    stop: () => supervisor.stop('dovecot'),
    ...(keyring && env
      ? {
          reloadKeys: () =>
            (reloads = reloads.catch(() => undefined).then(async () => {
              crypt = mailCrypt(keyring, user);
              Object.assign(env, crypt.env);
              writeConf();
              chownTree(confFile, user);
              // Dovecot takes its environment (the private keys' passwords) only when it starts: a restart, not a reload.
              await supervisor.restart('dovecot');
              log.info({ keys: crypt.keys.length, current: keyring.current }, 'mail store (Dovecot) restarted with the keyring\'s new generation');
            })),
        }
      : {}),
  };
}

/**
 * mail_crypt's keys for the Dovecot configuration, and the environment that carries their
 * passwords to Dovecot (the master key itself is not passed on).
 */
function mailCrypt(keyring: Keyring, user: ChildUser): { keys: MailCryptKey[]; env: NodeJS.ProcessEnv } {
  const env = mailCryptEnv(keyring);
  const keys = keyring.dovecotKeys().map((k) => {
    for (const f of [k.publicPemFile, k.privatePemFile]) chownOne(f, user);
    return { publicPemFile: k.publicPemFile, privatePemFile: k.privatePemFile, passwordEnv: passwordEnv(k.id) };
  });
  if (user.dropped) chownOne(keyring.dir, user);
  return { keys, env };
}

const passwordEnv = (id: string) => `MSS_MAIL_CRYPT_PASSWORD_${id.toUpperCase()}`;

/**
 * The environment a Dovecot program run on the platform's generated configuration needs to
 * read encrypted mail (doveadm, dsync: they load mail_crypt too): this process's, with each
 * private key's password.
 */
export function mailCryptEnv(keyring: Keyring | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...Object.fromEntries((keyring?.dovecotKeys() ?? []).map((k) => [passwordEnv(k.id), k.password])) };
  // The keys' passwords, never the master key they derive from.
  delete env.MSS_CRYPT_MASTER_KEY;
  return env;
}

/** The fts-xapian plugin's library (Debian dovecot-fts-xapian). */
const FTS_PLUGIN_FILE = 'lib21_fts_xapian_plugin.so';
const hasFtsPlugin = (dir: string) => existsSync(join(dir, FTS_PLUGIN_FILE));

/** A generated secret kept 0600 in a file, the same across restarts. */
function secret(file: string): string {
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const s = randomBytes(24).toString('base64url');
  writeFileSync(file, s + '\n', { mode: 0o600 });
  return s;
}

/** Dovecot's {SSHA512}: base64(SHA-512(password ‖ salt) ‖ salt). */
export function ssha512(password: string): string {
  const salt = randomBytes(16);
  return `{SSHA512}${Buffer.concat([createHash('sha512').update(password).update(salt).digest(), salt]).toString('base64')}`;
}

// Dovecot's sockets live under base_dir and a unix socket path may not exceed 107 bytes:
// a deep data directory gets a short, stable directory under the system's tmp instead.
function shortBaseDir(preferred: string, dataDir: string): string {
  if (preferred.length <= 60) return preferred;
  return join(tmpdir(), `mss-dovecot-${createHash('sha256').update(dataDir).digest('hex').slice(0, 10)}`);
}

function groupName(user: ChildUser): string {
  if (!user.dropped) {
    try {
      const line = readFileSync('/etc/group', 'utf8')
        .split('\n')
        .find((l) => l.split(':')[2] === String(user.gid));
      if (line) return line.split(':')[0];
    } catch {
      /* fall through */
    }
  }
  return user.dropped ? user.name : String(user.gid);
}

/** Only the mail root: what is below it Dovecot created, as that user already. */
function chownOne(path: string, user: ChildUser) {
  if (user.dropped) chownSync(path, user.uid, user.gid);
}

/**
 * The data directory is ours: let the daemons' group pass through it (not list it), so a
 * 0700 directory made by mkdtemp or a strict umask still works.
 */
export function grantTraverse(dataDir: string, user: ChildUser) {
  if (!user.dropped) return;
  const st = statSync(dataDir);
  if (st.uid === user.uid || st.mode & 0o001 || (st.gid === user.gid && st.mode & 0o010)) return;
  chownSync(dataDir, st.uid, user.gid);
  chmodSync(dataDir, (st.mode & 0o7777) | 0o010);
}

/**
 * As root the daemons run as another user, who must be able to reach the data directory
 * (e.g. a checkout under /root is not): say so plainly rather than let Dovecot fail.
 */
function requireReachable(dir: string, user: ChildUser) {
  if (!user.dropped) return;
  for (let d = dirname(dir); d !== dirname(d); d = dirname(d)) {
    const st = statSync(d);
    const bit = st.uid === user.uid ? 0o100 : st.gid === user.gid ? 0o010 : 0o001;
    if (!(st.mode & bit)) {
      throw new Error(`the daemons run as the system user "${user.name}", who cannot enter ${d}: choose a data directory outside it (MSS_DATA_DIR=/var/lib/mss) or run as a normal user`);
    }
  }
}

/** The master password of a shared store is the shared secret; doveadm's is derived from it, so neither is the other. */
export const doveadmPassword = (sharedSecret: string) => createHmac('sha256', sharedSecret).update('mss doveadm').digest('base64url');

/** The platform's certificate, key and CA, copied where the unprivileged Dovecot may read them. */
function clusterFiles(config: Config, home: string, c: Omit<DovecotCluster, 'certFile' | 'keyFile' | 'caFile' | 'doveadmPassword'>, sharedSecret: string): DovecotCluster {
  const certFile = join(home, 'tls.pem');
  const keyFile = join(home, 'tls.key');
  const caFile = join(home, 'ca.pem');
  const chain = existsSync(config.tls.chainFile) ? readFileSync(config.tls.chainFile, 'utf8') : '';
  writeFileSync(certFile, readFileSync(config.tls.certFile, 'utf8').trimEnd() + '\n' + chain, { mode: 0o600 });
  writeFileSync(keyFile, readFileSync(config.tls.keyFile), { mode: 0o600 });
  writeFileSync(caFile, readFileSync(config.tls.caFile), { mode: 0o600 });
  return { ...c, certFile, keyFile, caFile, doveadmPassword: doveadmPassword(sharedSecret) };
}

/** A TLS listener's first line matches, its certificate checked against the CA (a back end of a shared store). */
function expectTlsBanner(host: string, port: number, pattern: RegExp, caFile: string, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = tlsConnect({ host, port, ca: readFileSync(caFile), servername: isIP(host) ? undefined : host, minVersion: 'TLSv1.2' });
    const timer = setTimeout(() => sock.destroy(new Error(`no banner from ${host}:${port} within ${timeoutMs} ms`)), timeoutMs);
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      sock.destroy();
      const line = buf.slice(0, nl).trim();
      if (pattern.test(line)) resolve(line);
      else reject(new Error(`unexpected banner from ${host}:${port}: ${line.slice(0, 100)}`));
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}
