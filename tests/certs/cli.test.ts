import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config/index.js';
import { silentLogger } from '../../core/logger.js';
import { ensureDevPki } from '../../certs/pki.js';
import { runMss } from '../helpers/mss.js';

const dirs: string[] = [];
const tmp = (p: string) => {
  const d = mkdtempSync(join(tmpdir(), p));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** Run the "check it" command line the CLI printed, as a user would paste it. */
const runPrinted = (line: string) => {
  const [cmd, ...args] = line.trim().split(/\s+/);
  return spawnSync(cmd, args, { encoding: 'utf8' });
};

// Each command is a new process (and a PGlite open): slow on a busy machine, hence the ceiling.
describe('mss certs (compiled CLI)', () => {
  it('init creates the PKI and prints an openssl command that succeeds; a second run keeps it', () => {
    const dir = tmp('mss-cli-pki-');
    const first = runMss(['certs', 'init', '--dir', dir, '--domain', 'cli.localhost', '--bits', '2048']);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`created in ${dir}:`);
    expect(first.stdout).toMatch(/^ {2}server\.key$/m);
    const check = first.stdout.split('\n').find((l) => l.includes('openssl verify') && l.includes('server.pem'))!;
    expect(runPrinted(check).stdout).toContain('server.pem: OK');
    const revokedCheck = first.stdout.split('\n').find((l) => l.includes('-crl_check'))!;
    expect(runPrinted(revokedCheck).status).not.toBe(0);

    const again = runMss(['certs', 'init', '--dir', dir, '--domain', 'cli.localhost', '--bits', '2048']);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('every file exists already');
  });

  it('issue mints personal and application certificates from the intermediate, and says what is wrong with bad ids', () => {
    const dir = tmp('mss-cli-issue-');
    expect(runMss(['certs', 'init', '--dir', dir, '--domain', 'cli.localhost', '--bits', '2048']).code).toBe(0);
    const personal = runMss(['certs', 'issue', '--dir', dir, '--type', 'personal', '--name', 'dr-durand', '--rpps', '10003456789', '--bits', '2048']);
    expect(personal.code).toBe(0);
    expect(runPrinted(personal.stdout.split('\n').find((l) => l.includes('openssl verify'))!).stdout).toContain('dr-durand.pem: OK');
    const app = runMss(['certs', 'issue', '--dir', dir, '--type', 'application', '--name', 'dpi', '--org', '750000001', '--bits', '2048']);
    expect(app.code).toBe(0);
    expect(spawnSync('openssl', ['x509', '-in', join(dir, 'dpi.pem'), '-noout', '-subject'], { encoding: 'utf8' }).stdout).toContain('OU = 1750000001');

    const bad = runMss(['certs', 'issue', '--dir', dir, '--type', 'personal', '--name', 'x', '--rpps', '12']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe('mss: "12" is not an RPPS number (11 digits, or 12 digits starting with 8)\n');
    expect(existsSync(join(dir, 'x.pem'))).toBe(false);
    const twice = runMss(['certs', 'issue', '--dir', dir, '--type', 'personal', '--name', 'dr-durand', '--rpps', '10003456789']);
    expect(twice.stderr).toMatch(/dr-durand\.pem exists already/);
    expect(runMss(['certs', 'issue', '--dir', join(dir, 'none'), '--type', 'application', '--name', 'a', '--org', '750000001']).stderr).toMatch(/run "mss certs init" first/);
  });

  it('--help describes each command', () => {
    expect(runMss(['certs', 'init', '--help']).stdout).toMatch(/--peer-domain <domain>[\s\S]*--force/);
    expect(runMss(['certs', 'issue', '--help']).stdout).toMatch(/--type <type>[\s\S]*"personal", "application"/);
  });
});

describe('ensureDevPki', () => {
  it('creates the PKI under pki.dir when TLS files are the defaults, then only checks it', async () => {
    const dataDir = tmp('mss-ensure-');
    const config = loadConfig({ env: {}, overrides: { dataDir, pki: { keyBits: 2048 } } });
    const made = await ensureDevPki(config, silentLogger);
    expect(made?.paths.dir).toBe(join(dataDir, 'pki'));
    expect(existsSync(config.tls.certFile)).toBe(true);
    expect(existsSync(config.tsa.certFile)).toBe(true);
    expect((await ensureDevPki(config, silentLogger))?.created).toEqual([]);
  });

  it('leaves operator-provided files alone', async () => {
    const dataDir = tmp('mss-ensure-prod-');
    const config = loadConfig({ env: {}, overrides: { dataDir, tls: { certFile: join(dataDir, 'igc-sante.pem') } } });
    expect(await ensureDevPki(config, silentLogger)).toBeUndefined();
    expect(existsSync(join(dataDir, 'pki'))).toBe(false);
  });
});
