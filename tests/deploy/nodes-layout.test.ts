// docs/nodes: the production layout for several nodes. Each node's environment (common.env,
// then its own file, as mss@.service reads them) is a valid configuration, and the files
// agree with one another: roles, the pair of back ends naming each other, the directory
// consumer pointing at the provider, every front trusted by the back ends.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadConfig, settings } from '../../core/config/index.js';
import { fromRoot } from '../../core/paths.js';

const envFile = (name: string) =>
  Object.fromEntries(
    readFileSync(fromRoot('docs', 'nodes', name), 'utf8')
      .split('\n')
      .filter((l) => l.trim() && !l.startsWith('#'))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  ) as Record<string, string>;
const common = envFile('common.env');
const NODES = ['store-1', 'store-2', 'front-a', 'front-b'] as const;
const env = (n: string) => ({ ...common, ...envFile(`${n}.env`) });
const config = Object.fromEntries(NODES.map((n) => [n, loadConfig({ env: env(n) })]));

describe('docs/nodes: two fronts, a Dovecot pair, PostgreSQL primary + standby', () => {
  it('every file names only settings that exist, and each node loads', () => {
    const known = new Set(settings().map((s) => s.env));
    for (const n of NODES) for (const k of Object.keys(env(n))) expect(known, `${n}: ${k}`).toContain(k);
    for (const n of NODES) {
      expect(config[n].node.name).toBe(n);
      expect(config[n].mailstore.cluster).toBe(true);
      expect(config[n].database.url).toBe(common.MSS_DATABASE_URL);
      expect(config[n].database.hosts.length).toBeGreaterThan(0);
    }
  });

  it('the back ends are a pair, each replicating into the other, and trust every front', () => {
    const [s1, s2] = [config['store-1'], config['store-2']];
    for (const s of [s1, s2]) expect(s.node.roles).toEqual(['mailstore']);
    expect(s1.mailstore.partner).toBe(`store-2=${s2.mailstore.listen}:${s2.mailstore.doveadmPort}`);
    expect(s2.mailstore.partner).toBe(`store-1=${s1.mailstore.listen}:${s1.mailstore.doveadmPort}`);
    const fronts = [config['front-a'], config['front-b']].map((f) => `${f.http.host}/32`);
    for (const s of [s1, s2]) expect(s.mailstore.trustedNetworks.sort()).toEqual(fronts.sort());
  });

  it('one front feeds the directory, the other reads its copy from it', () => {
    const [a, b] = [config['front-a'], config['front-b']];
    for (const f of [a, b]) expect(f.node.roles).toEqual(['fronts']);
    expect(a.ldap.role).toBe('provider');
    expect(b.ldap.role).toBe('consumer');
    expect(b.ldap.providerUrl).toBe(`ldaps://${a.http.host}:${a.ldap.ldapsPort}`);
    expect(b.ldap.providerSecretFile).toBeTruthy();
  });

  it('the systemd template reads common.env then the node\'s file, and starts the platform', () => {
    const unit = readFileSync(fromRoot('docs', 'nodes', 'mss@.service'), 'utf8');
    expect(unit).toMatch(/^EnvironmentFile=\/etc\/mss\/common\.env\nEnvironmentFile=\/etc\/mss\/%i\.env$/m);
    expect(unit).toMatch(/^ExecStart=.*dist\/bin\/mss\.js start$/m);
    expect(unit).toMatch(/^AmbientCapabilities=.*CAP_SYS_NICE/m);
  });
});
