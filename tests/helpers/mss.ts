import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fromRoot } from '../../core/paths.js';

export const mssBin = fromRoot('dist', 'bin', 'mss.js');

/**
 * The environment for a child `mss`: nothing MSS_* leaks in from the test runner (CI sets
 * MSS_DATABASE_URL for the database suites), plus what the test asks for.
 */
export function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('MSS_') && k !== 'NODE_OPTIONS' && !k.startsWith('VITEST')) env[k] = v;
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return { ...env, MSS_LOG_FORMAT: 'json', ...(extra.MSS_LOG_LEVEL ? {} : { MSS_LOG_LEVEL: 'warn' }) };
}

/** Runs `mss …` to its end; the timeout is a safety net against a hang (CI runs on a loaded machine). */
export function runMss(args: string[], env: Record<string, string | undefined> = {}, timeoutMs = 600_000) {
  const r = spawnSync(process.execPath, [mssBin, ...args], { env: childEnv(env), encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * runMss without blocking the test's event loop: for a command that talks to a platform the
 * test itself runs (spawnSync would stop that platform from answering).
 */
export function runMssAsync(args: string[], env: Record<string, string | undefined> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [mssBin, ...args], { env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export interface Started {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
}

/** Spawns `mss start …` and resolves once it printed `pattern` (or rejects if it exits first). */
export async function startMss(args: string[], env: Record<string, string | undefined>, pattern = /Press Ctrl-C to stop/): Promise<Started> {
  const child = spawn(process.execPath, [mssBin, 'start', ...args], { env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      if (pattern.test(out)) resolve();
    });
    child.stderr!.on('data', (d) => (err += d));
    void exited.then((code) => reject(new Error(`mss start exited with ${code} before it was ready:\n${out}\n${err}`)));
  });
  return { child, stdout: () => out, stderr: () => err, exited };
}
