// One supervisor for the external daemons the platform runs (slapd now, Dovecot later), in
// the spirit of Postfix's master.cf: each daemon is one row of a table — name, command,
// arguments, restart policy, health check, stop signal and timeout — and this file alone
// knows how to start, watch, restart and stop them.
//
// Children never run as root. When the platform itself runs as root, they run as a
// dedicated system user (created on first use with `useradd --system`); otherwise as the
// current user. A daemon that must bind a privileged port before dropping its privileges
// (slapd -u/-g, Dovecot) says so with `dropPrivileges`: the supervisor then starts it as
// root with those arguments, exactly how the distributions run them.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, lchownSync, lstatSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Logger } from './logger.js';

/** Who the children run as. */
export interface ChildUser {
  name: string;
  uid: number;
  gid: number;
  /** True when the platform runs as root and children run as this (other) user. */
  dropped: boolean;
}

export interface ServiceSpec {
  /** Short name, used in logs and by restart()/stop(): `slapd`, `dovecot`. */
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** always: restart whatever the exit; on-failure: only after a non-zero exit or a signal; never. */
  restart: 'always' | 'on-failure' | 'never';
  /** Back-off between restarts: doubles from initialMs up to maxMs; back to initialMs once the child has stayed up resetAfterMs. */
  backoff?: { initialMs?: number; maxMs?: number; resetAfterMs?: number };
  /** Resolves when the daemon answers, rejects otherwise. Used to wait for readiness and, periodically, to watch it. */
  health?: () => Promise<void>;
  /** How often the health check runs once the daemon is up (0 = only at start). */
  healthIntervalMs?: number;
  /** Consecutive failed health checks after which the daemon is killed and restarted. */
  healthFailures?: number;
  /** Awaited before each automatic restart (after a crash), e.g. to tell others not to rely on what the daemon had; a failure is logged, the restart goes on. */
  beforeRestart?: () => Promise<void>;
  /** How long a start may take before readiness gives up. */
  readyTimeoutMs?: number;
  stopSignal?: NodeJS.Signals;
  /** After stopSignal, how long to wait before SIGKILL. */
  stopTimeoutMs?: number;
  /**
   * Extra arguments that make the daemon drop privileges itself (e.g. slapd `-u U -g G`).
   * Given, and running as root, the child starts as root with them; otherwise it starts
   * directly as the child user.
   */
  dropPrivileges?: (user: ChildUser) => string[];
  /**
   * The daemon's own pid file. If the platform died without stopping it (kill -9, power cut
   * of the parent only), that orphan still holds the pid file, ports and database locks:
   * it is stopped before a new one starts, when the pid is alive and runs this command.
   */
  pidFile?: string;
  /** Where the child's output goes, one log line per output line (default: info for stdout, warn for stderr). */
  logLevels?: { stdout?: 'debug' | 'info' | 'warn'; stderr?: 'debug' | 'info' | 'warn' | 'error' };
}

export type ServiceState = 'starting' | 'running' | 'backoff' | 'stopping' | 'stopped' | 'failed';

export interface ServiceStatus {
  name: string;
  state: ServiceState;
  pid?: number;
  restarts: number;
  lastExit?: { code: number | null; signal: NodeJS.Signals | null; at: Date };
}

const DEFAULT_BACKOFF = { initialMs: 200, maxMs: 30_000, resetAfterMs: 60_000 };

let cachedUser: ChildUser | undefined;

/**
 * The user children run as: the current user, or — as root — the system user `name`,
 * created when missing. Synchronous on purpose: it runs once, at start.
 */
export function childUser(name = 'mssante'): ChildUser {
  if (cachedUser && cachedUser.name === name) return cachedUser;
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  if (uid !== 0) {
    cachedUser = { name: process.env.USER ?? String(uid), uid, gid, dropped: false };
    return cachedUser;
  }
  const lookup = () => {
    try {
      const line = execFileSync('getent', ['passwd', name], { encoding: 'utf8' }).trim();
      const [, , u, g] = line.split(':');
      return { uid: Number(u), gid: Number(g) };
    } catch {
      return undefined;
    }
  };
  let found = lookup();
  if (!found) {
    try {
      execFileSync('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', '--comment', 'MSSante platform daemons', name], { stdio: 'pipe' });
    } catch (e) {
      // Another process may have created it in the meantime: look again before failing.
      found = lookup();
      if (!found) throw new Error(`cannot create the system user "${name}" for the daemons: ${(e as { stderr?: Buffer }).stderr?.toString().trim() || (e as Error).message}`);
    }
    found ??= lookup();
    if (!found) throw new Error(`the system user "${name}" was created but cannot be found`);
  }
  cachedUser = { name, ...found, dropped: true };
  return cachedUser;
}

/** Give a tree to the child user (no-op when children run as ourselves). Symlinks are changed, not followed. */
export function chownTree(path: string, user: ChildUser): void {
  if (!user.dropped) return;
  const st = lstatSync(path);
  if (st.isSymbolicLink()) return lchownSync(path, user.uid, user.gid);
  chownSync(path, user.uid, user.gid);
  if (st.isDirectory()) for (const f of readdirSync(path)) chownTree(join(path, f), user);
}

interface Running {
  spec: ServiceSpec;
  state: ServiceState;
  child?: ChildProcess;
  restarts: number;
  delay: number;
  startedAt: number;
  lastExit?: ServiceStatus['lastExit'];
  exited?: Promise<void>;
  timer?: NodeJS.Timeout;
  healthTimer?: NodeJS.Timeout;
  healthFails: number;
  /** Called with the outcome of the next start: ready, or failed before being ready. */
  onReady?: (err?: Error) => void;
}

export class Supervisor {
  private readonly services = new Map<string, Running>();
  readonly user: ChildUser;

  constructor(
    private readonly log: Logger,
    opts: { user?: ChildUser; userName?: string } = {},
  ) {
    this.user = opts.user ?? childUser(opts.userName);
  }

  /** Starts a daemon and resolves once its health check passes (or at once without one). */
  async start(spec: ServiceSpec): Promise<void> {
    if (this.services.has(spec.name)) throw new Error(`service ${spec.name} is already supervised`);
    if (spec.pidFile) await stopOrphan(spec, this.log);
    const r: Running = { spec, state: 'starting', restarts: 0, delay: spec.backoff?.initialMs ?? DEFAULT_BACKOFF.initialMs, startedAt: 0, healthFails: 0 };
    this.services.set(spec.name, r);
    try {
      await this.launchAndWait(r);
    } catch (e) {
      await this.stop(spec.name);
      throw e;
    }
  }

  status(name?: string): ServiceStatus[] {
    return [...this.services.values()]
      .filter((r) => !name || r.spec.name === name)
      .map((r) => ({ name: r.spec.name, state: r.state, pid: r.child?.pid, restarts: r.restarts, lastExit: r.lastExit }));
  }

  /** Planned restart (new configuration, swapped database): stop, start again, wait until healthy. */
  async restart(name: string): Promise<void> {
    const r = this.get(name);
    clearTimeout(r.timer);
    r.state = 'stopping';
    await this.terminate(r);
    r.state = 'starting';
    r.delay = r.spec.backoff?.initialMs ?? DEFAULT_BACKOFF.initialMs;
    await this.launchAndWait(r);
  }

  /** Stops one daemon: stop signal, then SIGKILL after the timeout. */
  async stop(name: string): Promise<void> {
    const r = this.services.get(name);
    if (!r) return;
    r.state = 'stopping';
    clearTimeout(r.timer);
    clearInterval(r.healthTimer);
    await this.terminate(r);
    r.state = 'stopped';
    this.services.delete(name);
    this.log.info({ service: name }, 'service stopped');
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.services.keys()].map((n) => this.stop(n)));
  }

  private get(name: string): Running {
    const r = this.services.get(name);
    if (!r) throw new Error(`no supervised service named ${name}`);
    return r;
  }

  private launchAndWait(r: Running): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timeout = setTimeout(() => {
        r.onReady = undefined;
        reject(new Error(`${r.spec.name} did not become ready within ${r.spec.readyTimeoutMs ?? 20_000} ms`));
      }, r.spec.readyTimeoutMs ?? 20_000);
      r.onReady = (err) => {
        clearTimeout(timeout);
        r.onReady = undefined;
        if (err) reject(err);
        else resolve();
      };
      this.launch(r);
    });
  }

  private launch(r: Running): void {
    const { spec } = r;
    const asRootDropping = this.user.dropped && spec.dropPrivileges;
    const args = asRootDropping ? [...spec.args, ...spec.dropPrivileges!(this.user)] : spec.args;
    const ids = this.user.dropped && !asRootDropping ? { uid: this.user.uid, gid: this.user.gid } : {};
    const log = this.log.child({ service: spec.name });
    let child: ChildProcess;
    try {
      child = spawn(spec.command, args, { cwd: spec.cwd, env: spec.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], ...ids });
    } catch (e) {
      r.state = 'failed';
      r.onReady?.(new Error(`cannot start ${spec.name} (${spec.command}): ${(e as Error).message}`));
      return;
    }
    r.child = child;
    r.startedAt = Date.now();
    r.state = 'starting';
    r.healthFails = 0;
    let lastErrLine = '';
    const lines = (stream: NodeJS.ReadableStream, level: 'debug' | 'info' | 'warn' | 'error', isErr: boolean) => {
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
        if (!line.trim()) return;
        if (isErr) lastErrLine = line.trim();
        log[level]({ pid: child.pid }, line);
      });
    };
    lines(child.stdout!, spec.logLevels?.stdout ?? 'info', false);
    lines(child.stderr!, spec.logLevels?.stderr ?? 'warn', true);
    r.exited = new Promise<void>((resolve) => {
      let exited = false;
      child.once('error', (e) => {
        // Spawn failures (ENOENT, EACCES) arrive here, instead of 'exit'.
        lastErrLine = `${spec.command}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such program' : e.message}`;
        if (child.pid === undefined) onExit(null, null);
      });
      const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
        if (exited) return;
        exited = true;
        clearInterval(r.healthTimer);
        r.lastExit = { code, signal, at: new Date() };
        resolve();
        if (r.child === child) r.child = undefined;
        if (r.state === 'stopping' || r.state === 'stopped') return;
        const why = lastErrLine ? `: ${lastErrLine}` : '';
        if (r.onReady) {
          // Died before it was ever ready: a configuration error, not a crash to retry.
          r.state = 'failed';
          const how = code === null && signal === null ? 'could not be started' : `exited (${signal ?? `code ${code}`}) before it was ready`;
          r.onReady(new Error(`${spec.name} ${how}${why}`));
          return;
        }
        log.error({ code, signal }, `${spec.name} exited unexpectedly${why}`);
        this.scheduleRestart(r, code, signal);
      };
      child.once('exit', onExit);
    });
    void this.watchReady(r, child);
  }

  private async watchReady(r: Running, child: ChildProcess) {
    const { spec } = r;
    // A program that cannot be run fails with 'error' instead of 'spawn'.
    await new Promise<void>((res) => {
      child.once('spawn', res);
      child.once('error', () => res());
    });
    if (spec.health) {
      // Poll until it answers, the child dies, or launchAndWait's timeout gives up.
      for (let wait = 25; r.child === child && r.onReady; wait = Math.min(wait * 2, 500)) {
        try {
          await spec.health();
          break;
        } catch {
          await new Promise((res) => setTimeout(res, wait));
        }
      }
    }
    if (r.child !== child || !r.onReady) return;
    r.state = 'running';
    this.log.info({ service: spec.name, pid: child.pid, restarts: r.restarts }, 'service running');
    r.onReady();
    if (spec.health && spec.healthIntervalMs) {
      r.healthTimer = setInterval(() => void this.checkHealth(r, child), spec.healthIntervalMs);
      r.healthTimer.unref();
    }
  }

  private async checkHealth(r: Running, child: ChildProcess) {
    if (r.child !== child || r.state !== 'running') return;
    try {
      await r.spec.health!();
      r.healthFails = 0;
    } catch (e) {
      r.healthFails++;
      this.log.warn({ service: r.spec.name, failures: r.healthFails, err: (e as Error).message }, 'health check failed');
      if (r.healthFails >= (r.spec.healthFailures ?? 3)) {
        this.log.error({ service: r.spec.name }, 'not answering: killing it to restart it');
        child.kill('SIGKILL');
      }
    }
  }

  private scheduleRestart(r: Running, code: number | null, signal: NodeJS.Signals | null) {
    const { spec } = r;
    const failed = code !== 0 || signal !== null;
    if (spec.restart === 'never' || (spec.restart === 'on-failure' && !failed)) {
      r.state = 'stopped';
      return;
    }
    const b = { ...DEFAULT_BACKOFF, ...spec.backoff };
    if (Date.now() - r.startedAt >= b.resetAfterMs) r.delay = b.initialMs;
    const delay = r.delay;
    r.delay = Math.min(r.delay * 2, b.maxMs);
    r.state = 'backoff';
    r.restarts++;
    this.log.warn({ service: spec.name, inMs: delay, restarts: r.restarts }, 'restarting after back-off');
    r.timer = setTimeout(async () => {
      if (r.state !== 'backoff') return;
      if (spec.beforeRestart) {
        await spec.beforeRestart().catch((e) => this.log.warn({ service: spec.name, err: (e as Error).message }, 'before restart'));
        if (r.state !== 'backoff') return;
      }
      // A restart that fails before ready is retried like a crash, with a longer back-off.
      r.onReady = (err) => {
        r.onReady = undefined;
        if (err) {
          this.log.error({ service: spec.name, err: err.message }, 'restart failed');
          r.state = 'backoff';
          this.scheduleRestart(r, 1, null);
        }
      };
      this.launch(r);
    }, delay);
    r.timer.unref();
  }

  private async terminate(r: Running): Promise<void> {
    const child = r.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill(r.spec.stopSignal ?? 'SIGTERM');
    const killer = setTimeout(() => {
      this.log.warn({ service: r.spec.name, pid: child.pid }, 'did not stop in time: SIGKILL');
      child.kill('SIGKILL');
    }, r.spec.stopTimeoutMs ?? 10_000);
    await r.exited;
    clearTimeout(killer);
  }
}

/** Stops a leftover instance named by spec.pidFile, if it is alive and is that program. */
async function stopOrphan(spec: ServiceSpec, log: Logger): Promise<void> {
  let pid: number;
  try {
    pid = Number(readFileSync(spec.pidFile!, 'utf8').trim());
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 1) return;
  // A dead orphan may linger as a zombie when its new parent does not reap it: it counts
  // as gone, and so must its pid file (the daemon's own kill(pid, 0) would see it alive).
  const alive = () => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
    } catch {
      return false;
    }
  };
  const forget = () => rmSync(spec.pidFile!, { force: true });
  if (!alive()) return forget();
  let cmdline = '';
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return forget();
  }
  // Never signal an unrelated process that reused the pid.
  if (!cmdline.includes(spec.command)) return forget();
  log.warn({ service: spec.name, pid }, 'stopping a leftover instance from a previous run that did not stop cleanly');
  try {
    process.kill(pid, spec.stopSignal ?? 'SIGTERM');
  } catch {
    return forget();
  }
  for (let waited = 0; alive() && waited < (spec.stopTimeoutMs ?? 10_000); waited += 100) await new Promise((r) => setTimeout(r, 100));
  if (alive()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    for (let i = 0; alive() && i < 50; i++) await new Promise((r) => setTimeout(r, 100));
  }
  if (!alive()) forget();
}
