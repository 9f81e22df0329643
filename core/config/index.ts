import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { schema, type Config, type Setting } from './schema.js';

export type { Config } from './schema.js';
export { schema } from './schema.js';

/** Thrown when the configuration is invalid; one human sentence per problem. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
  }
}

export interface SettingInfo {
  path: string[];
  key: string;
  env: string;
  setting: Setting<unknown>;
}

const isSetting = (v: unknown): v is Setting<unknown> =>
  typeof v === 'object' && v !== null && 'kind' in v && 'doc' in v;

export const envName = (path: string[]) =>
  'MSS_' + path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('_');

/** Every setting, flattened, in declaration order. */
export function settings(node: object = schema, prefix: string[] = []): SettingInfo[] {
  const out: SettingInfo[] = [];
  for (const [k, v] of Object.entries(node)) {
    const path = [...prefix, k];
    if (isSetting(v)) out.push({ path, key: path.join('.'), env: envName(path), setting: v });
    else out.push(...settings(v as object, path));
  }
  return out;
}

const UNITS: Record<string, number> = { b: 1, k: 1024, kb: 1000, kib: 1024, m: 1024 ** 2, mb: 1000 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1000 ** 3, gib: 1024 ** 3 };
const TIME: Record<string, number> = { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000 };

type Parsed = { ok: true; value: unknown } | { ok: false; expected: string };

/** Parse one raw value (string from the environment, or JSON value from the file). */
export function parseValue(s: Setting<unknown>, raw: unknown): Parsed {
  const text = typeof raw === 'string' ? raw.trim() : raw;
  const bad = (expected: string): Parsed => ({ ok: false, expected });
  const inRange = (n: number, what: string): Parsed =>
    Number.isInteger(n) && n >= (s.min ?? -Infinity) && n <= (s.max ?? Infinity)
      ? { ok: true, value: n }
      : bad(s.max !== undefined && s.max < Number.MAX_SAFE_INTEGER ? `${what} (${s.min}-${s.max})` : `${what} (at least ${s.min ?? 0})`);
  switch (s.kind) {
    case 'string':
    case 'path':
      return typeof text === 'string' ? { ok: true, value: text } : bad('a string');
    case 'url': {
      if (typeof text !== 'string') return bad('a URL');
      if (text === '') return { ok: true, value: undefined };
      try {
        new URL(text);
        return { ok: true, value: text };
      } catch {
        return bad('a URL (scheme://host…)');
      }
    }
    case 'port': {
      const n = typeof text === 'number' ? text : /^\d+$/.test(String(text)) ? Number(text) : NaN;
      return Number.isInteger(n) && n >= 0 && n <= 65535 ? { ok: true, value: n } : bad('a port number (1-65535)');
    }
    case 'int': {
      const n = typeof text === 'number' ? text : /^-?\d+$/.test(String(text)) ? Number(text) : NaN;
      return inRange(n, 'a whole number');
    }
    case 'bool': {
      if (typeof text === 'boolean') return { ok: true, value: text };
      const t = String(text).toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(t)) return { ok: true, value: true };
      if (['0', 'false', 'no', 'off'].includes(t)) return { ok: true, value: false };
      return bad('true or false');
    }
    case 'list': {
      if (Array.isArray(text) && text.every((x) => typeof x === 'string')) return { ok: true, value: text };
      if (typeof text !== 'string') return bad('a list of strings');
      return { ok: true, value: text.split(',').map((x) => x.trim()).filter(Boolean) };
    }
    case 'size': {
      if (typeof text === 'number') return inRange(text, 'a size');
      const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(String(text));
      const unit = m ? UNITS[(m[2] || 'b').toLowerCase()] : undefined;
      return m && unit ? inRange(Math.round(Number(m[1]) * unit), 'a size') : bad('a size such as 25MB, 512k or 1048576');
    }
    case 'duration': {
      if (typeof text === 'number') return inRange(text, 'a duration');
      const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(String(text));
      const unit = m ? TIME[(m[2] || 'ms').toLowerCase()] : undefined;
      return m && unit ? inRange(Math.round(Number(m[1]) * unit), 'a duration') : bad('a duration such as 500ms, 30s, 5m or 2h');
    }
    case 'enum':
      return typeof text === 'string' && s.values!.includes(text) ? { ok: true, value: text } : bad(`one of ${s.values!.join(', ')}`);
  }
}

function setIn(obj: Record<string, any>, path: string[], value: unknown) {
  let o = obj;
  for (const p of path.slice(0, -1)) o = o[p] ??= {};
  o[path[path.length - 1]] = value;
}

function getIn(obj: unknown, path: string[]): unknown {
  let o: any = obj;
  for (const p of path) {
    if (o === null || typeof o !== 'object' || !(p in o)) return undefined;
    o = o[p];
  }
  return o;
}

function unknownKeys(file: unknown, node: object, prefix: string[] = []): string[] {
  if (file === null || typeof file !== 'object' || Array.isArray(file)) return [];
  const out: string[] = [];
  for (const [k, v] of Object.entries(file)) {
    const def = (node as Record<string, unknown>)[k];
    if (def === undefined) out.push([...prefix, k].join('.'));
    else if (!isSetting(def)) out.push(...unknownKeys(v, def as object, [...prefix, k]));
  }
  return out;
}

export interface LoadOptions {
  /** Environment to read MSS_* variables from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** JSON config file; default: $MSS_CONFIG_FILE, if set. */
  file?: string;
  /** Highest priority, e.g. from CLI flags or tests: { http: { port: 0 } }. */
  overrides?: DeepPartial<Config>;
  /** Base for a relative dataDir (default: the current directory). */
  cwd?: string;
}

export type DeepPartial<T> = T extends (infer U)[] ? U[] : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

/**
 * Defaults < config file < MSS_* environment < overrides. Every problem is collected, so
 * a broken configuration is reported in one go, one line per problem.
 */
export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  const problems: string[] = [];
  const fileName = opts.file ?? (env.MSS_CONFIG_FILE || undefined);
  let fileData: unknown = undefined;
  if (fileName) {
    if (!existsSync(fileName)) problems.push(`config file ${fileName} does not exist`);
    else {
      try {
        fileData = JSON.parse(readFileSync(fileName, 'utf8'));
        for (const k of unknownKeys(fileData, schema)) if (!(k in MOVED)) problems.push(`config file ${fileName}: unknown setting "${k}"`);
      } catch (e) {
        problems.push(`config file ${fileName} is not valid JSON: ${(e as Error).message}`);
      }
    }
  }
  const known = new Set([...settings().map((s) => s.env), ...Object.keys(MOVED).map((k) => envName(k.split('.')))]);
  for (const name of Object.keys(env)) {
    if (name.startsWith('MSS_') && !known.has(name) && !EXTRA_ENV.has(name)) problems.push(`${name} is not a known setting (see "mss config")`);
  }
  const out: Record<string, any> = {};
  const explicit = new Set<string>();
  for (const info of settings()) {
    let value: unknown = info.setting.default;
    const old = Object.keys(MOVED).filter((k) => MOVED[k] === info.key);
    const sources: Array<[unknown, string]> = [
      ...old.map((k): [unknown, string] => [getIn(fileData, k.split('.')), `${k} in ${fileName}`]),
      [getIn(fileData, info.path), `${info.key} in ${fileName}`],
      ...old.map((k): [unknown, string] => [env[envName(k.split('.'))], envName(k.split('.'))]),
      [env[info.env], info.env],
      [getIn(opts.overrides, info.path), info.key],
    ];
    for (const [raw, where] of sources) {
      if (raw === undefined) continue;
      const parsed = parseValue(info.setting, raw);
      if (parsed.ok) {
        value = parsed.value;
        explicit.add(info.key);
      } else problems.push(`${where} must be ${parsed.expected}, got ${JSON.stringify(raw)}`);
    }
    setIn(out, info.path, Array.isArray(value) ? [...value] : value);
  }
  if (problems.length) throw new ConfigError(problems);
  // Standard ports (25, 993, 389…) need root: shift the ones left at their default.
  for (const info of settings()) {
    const d = info.setting.default;
    if (info.setting.kind === 'port' && !explicit.has(info.key) && typeof d === 'number' && d > 0 && d < 1024) setIn(out, info.path, d + out.portOffset);
  }
  return resolvePaths(out as Config, opts.cwd ?? process.cwd());
}

/**
 * Settings that moved, old name → new one. The old name still works (file and environment);
 * the new one wins when both are set.
 */
const MOVED: Record<string, string> = {
  // One login throttle for every front (core/policy/throttle.ts), no longer the IMAP proxy's own.
  'imap.failureDelay': 'auth.failureDelay',
  'imap.failureWindow': 'auth.failureWindow',
  'imap.maxFailuresPerSource': 'auth.maxFailuresPerSource',
  'imap.maxFailuresPerAccount': 'auth.maxFailuresPerAccount',
};

/** Variables read elsewhere that are not settings (the config file itself, test switches). */
// MSS_ADMIN_PASSWORD: a credential `mss indicators` uses against a running platform's admin API, not a setting.
const EXTRA_ENV = new Set(['MSS_CONFIG_FILE', 'MSS_TEST_DATABASE_URL', 'MSS_TEST_CRASH', 'MSS_TEST_LOG', 'MSS_ADMIN_PASSWORD']);

/** Fill derived defaults: relative paths hang off dataDir, TLS files off the PKI dir, the host name off the domain. */
function resolvePaths(c: Config, cwd: string): Config {
  // The name peers see in the banner, EHLO and Received headers: the operator's, never the machine's.
  c.operator.hostname ||= c.operator.domain;
  c.dataDir = resolve(cwd, c.dataDir);
  const inData = (p: string) => (isAbsolute(p) ? p : resolve(c.dataDir, p));
  c.pki.dir = inData(c.pki.dir);
  c.mailstore.mailDir = inData(c.mailstore.mailDir);
  const inPki = (p: string, name: string) => (p === '' ? resolve(c.pki.dir, name) : resolve(cwd, p));
  c.tls.certFile = inPki(c.tls.certFile, 'server.pem');
  c.tls.keyFile = inPki(c.tls.keyFile, 'server.key');
  c.tls.chainFile = inPki(c.tls.chainFile, 'intermediate.pem');
  c.tls.caFile = inPki(c.tls.caFile, 'chain.pem');
  c.tls.crlFile = inPki(c.tls.crlFile, 'crl.pem');
  c.tsa.certFile = inPki(c.tsa.certFile, 'tsa.pem');
  c.tsa.keyFile = inPki(c.tsa.keyFile, 'tsa.key');
  c.tsa.chainFile = inPki(c.tsa.chainFile, 'intermediate.pem');
  c.tsa.caFile = inPki(c.tsa.caFile, 'ca.pem');
  return c;
}

/** True when the TLS files are the development PKI's defaults (so it may be created). */
export function usesDevPki(c: Config, env: NodeJS.ProcessEnv = process.env): boolean {
  return !env.MSS_TLS_CERT_FILE && !env.MSS_TLS_KEY_FILE && c.tls.certFile === resolve(c.pki.dir, 'server.pem');
}

/** The configuration as shown to a human: secrets masked. */
export function describeConfig(c: Config): Array<{ key: string; env: string; value: string; doc: string }> {
  return settings().map((info) => {
    const v = getIn(c, info.path);
    let shown = v === undefined ? '' : Array.isArray(v) ? v.join(',') : String(v);
    if (info.setting.secret && typeof v === 'string') shown = maskUrl(v);
    return { key: info.key, env: info.env, value: shown, doc: info.setting.doc };
  });
}

/** postgres://user:secret@host/db → postgres://user:***@host/db */
export function maskUrl(u: string): string {
  try {
    const url = new URL(u);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return '***';
  }
}
