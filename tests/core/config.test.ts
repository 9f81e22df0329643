import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, envName, loadConfig, parseValue, settings } from '../../core/config/index.js';
import { size } from '../../core/config/schema.js';

const problemsOf = (fn: () => unknown): string[] => {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  throw new Error('expected a ConfigError');
};

describe('config', () => {
  it('has defaults for every setting and derives the environment names', () => {
    const c = loadConfig({ env: {}, cwd: '/srv/mss' });
    expect(c.dataDir).toBe('/srv/mss/data');
    expect(c.tls.certFile).toBe('/srv/mss/data/pki/server.pem');
    expect(c.database.url).toBeUndefined();
    expect(envName(['smtp', 'port'])).toBe('MSS_SMTP_PORT');
    expect(envName(['database', 'poolSize'])).toBe('MSS_DATABASE_POOL_SIZE');
    expect(settings().every((s) => s.setting.doc.length > 10)).toBe(true);
  });

  it('takes MSS_* variables over the file, and overrides over both', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mss-cfg-'));
    const file = join(dir, 'mss.json');
    writeFileSync(file, JSON.stringify({ http: { port: 9000, host: '::1' }, journal: { sealInterval: '5s' } }));
    const c = loadConfig({ env: { MSS_HTTP_PORT: '9001' }, file, cwd: dir });
    expect(c.http).toMatchObject({ host: '::1', port: 9001 });
    expect(c.journal.sealInterval).toBe(5000);
    expect(loadConfig({ env: { MSS_HTTP_PORT: '9001' }, file, overrides: { http: { port: 0 } } }).http.port).toBe(0);
    expect(loadConfig({ env: { MSS_TLS_CERT_FILE: 'certs/x.pem' }, cwd: dir }).tls.certFile).toBe(join(dir, 'certs/x.pem'));
  });

  it('reports each bad value on its own line, naming the variable and the value', () => {
    const problems = problemsOf(() =>
      loadConfig({ env: { MSS_HTTP_PORT: 'abc', MSS_LOG_LEVEL: 'loud', MSS_DATABASE_URL: 'not a url', MSS_FROBNICATE: '1' } }),
    );
    expect(problems).toContain('MSS_HTTP_PORT must be a port number (1-65535), got "abc"');
    expect(problems).toContain('MSS_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "loud"');
    expect(problems.some((p) => p.startsWith('MSS_DATABASE_URL must be a URL'))).toBe(true);
    expect(problems).toContain('MSS_FROBNICATE is not a known setting (see "mss config")');
    expect(problems).toHaveLength(4);
  });

  it('rejects a broken or unknown config file clearly', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mss-cfg-'));
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{ "http": ');
    expect(problemsOf(() => loadConfig({ env: {}, file: broken }))[0]).toMatch(/^config file .*broken\.json is not valid JSON/);
    const unknown = join(dir, 'unknown.json');
    writeFileSync(unknown, JSON.stringify({ htpp: { port: 1 }, http: { prot: 2 } }));
    expect(problemsOf(() => loadConfig({ env: {}, file: unknown }))).toEqual([
      `config file ${unknown}: unknown setting "htpp"`,
      `config file ${unknown}: unknown setting "http.prot"`,
    ]);
    expect(problemsOf(() => loadConfig({ env: {}, file: join(dir, 'none.json') }))[0]).toMatch(/does not exist$/);
    expect(problemsOf(() => loadConfig({ env: {}, file: unknown, overrides: {} })).length).toBe(2);
  });

  it('still reads a moved setting under its old name (file and environment); the new name wins', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mss-cfg-'));
    const file = join(dir, 'old.json');
    writeFileSync(file, JSON.stringify({ imap: { maxFailuresPerAccount: 4, failureWindow: '5m' } }));
    const c = loadConfig({ env: { MSS_IMAP_MAX_FAILURES_PER_SOURCE: '30', MSS_IMAP_FAILURE_DELAY: '1s' }, file });
    expect(c.auth).toMatchObject({ maxFailuresPerAccount: 4, failureWindow: 300_000, maxFailuresPerSource: 30, failureDelay: 1000 });
    expect(loadConfig({ env: { MSS_IMAP_FAILURE_DELAY: '1s', MSS_AUTH_FAILURE_DELAY: '3s' } }).auth.failureDelay).toBe(3000);
    expect(problemsOf(() => loadConfig({ env: { MSS_IMAP_FAILURE_WINDOW: 'soon' } }))).toEqual(['MSS_IMAP_FAILURE_WINDOW must be a duration such as 500ms, 30s, 5m or 2h, got "soon"']);
  });

  it('parses sizes and durations with units', () => {
    const s = size(0, 'x');
    expect(parseValue(s, '25MB')).toEqual({ ok: true, value: 25_000_000 });
    expect(parseValue(s, '512k')).toEqual({ ok: true, value: 524_288 });
    expect(parseValue(s, 'lots').ok).toBe(false);
    expect(loadConfig({ env: { MSS_JOURNAL_SEAL_INTERVAL: '1.5s' } }).journal.sealInterval).toBe(1500);
    expect(problemsOf(() => loadConfig({ env: { MSS_PKI_KEY_BITS: '1024' } }))).toEqual(['MSS_PKI_KEY_BITS must be a whole number (2048-8192), got "1024"']);
  });
});
