// docker-compose.yml, read as Compose reads it: the platform publishes exactly its public
// listeners (the admin API on the host's loopback only), keeps health / metrics / TSA and
// PostgreSQL on the internal network, and its environment is a valid configuration whose
// listeners are the ports it publishes. `yaml` comes with @fastify/swagger (a dependency).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig, settings } from '../../core/config/index.js';
import { fromRoot } from '../../core/paths.js';

interface Service {
  environment?: Record<string, string>;
  ports?: string[];
  networks?: string[] | Record<string, { ipv4_address?: string } | null>;
}
const compose = parse(readFileSync(fromRoot('docker-compose.yml'), 'utf8')) as { services: Record<string, Service>; networks: Record<string, { internal?: boolean }> };
const platform = compose.services.platform;
/** The environment as Compose would pass it, ${VAR} and ${VAR:-default} filled in. */
const env = Object.fromEntries(
  Object.entries(platform.environment ?? {}).map(([k, v]) => [k, String(v).replace(/\$\{(\w+)(?::-([^}]*)|:\?[^}]*)?\}/g, (_m, name: string, def?: string) => (name === 'MSS_DB_PASSWORD' ? 'secret' : def ?? ''))]),
);
/** "host:container" or "ip:host:container" → { ip, host, container } */
const published = (platform.ports ?? []).map((p) => {
  const parts = String(p).split(':');
  return { ip: parts.length === 3 ? parts[0] : '0.0.0.0', host: Number(parts[parts.length - 2]), container: Number(parts[parts.length - 1]) };
});

describe('docker-compose.yml', () => {
  it('publishes exactly the public listeners, and the admin API on loopback only', () => {
    expect(published.filter((p) => p.ip === '0.0.0.0').map((p) => p.container).sort((a, b) => a - b)).toEqual([25, 143, 389, 465, 587, 636, 993, 8444, 9443]);
    expect(published.filter((p) => p.ip !== '0.0.0.0')).toEqual([{ ip: '127.0.0.1', host: 8443, container: 8443 }]);
    for (const p of published) expect(p.host).toBe(p.container);
    expect(compose.services.postgres.ports).toBeUndefined();
  });

  it('its environment is a valid configuration whose listeners are what it publishes', () => {
    for (const k of Object.keys(env)) expect(settings().map((s) => s.env)).toContain(k);
    const c = loadConfig({ env });
    expect(c.portOffset).toBe(0);
    const listeners = { mx: c.smtp.mxPort, submission: c.smtp.submissionPort, submissions: c.smtp.submissionsPort, imaps: c.imap.port, imap: c.imap.starttlsPort, ldap: c.ldap.port, ldaps: c.ldap.ldapsPort, webmail: c.webmail.port, admin: c.admin.port, fhir: c.fhir.port };
    expect(Object.values(listeners).sort((a, b) => a - b)).toEqual(published.map((p) => p.container).sort((a, b) => a - b));
    // Published ports arrive on the container's interface: those listeners bind every address.
    for (const host of [c.smtp.host, c.imap.host, c.ldap.host, c.webmail.host, c.admin.host, c.fhir.host]) expect(host).toBe('0.0.0.0');
    expect(c.demo.enabled).toBe(false);
  });

  it('keeps health, metrics and the TSA, and PostgreSQL, on the internal network', () => {
    const c = loadConfig({ env });
    expect(published.map((p) => p.container)).not.toContain(c.http.port);
    expect(compose.networks.backend.internal).toBe(true);
    // The HTTP listener binds the platform's backend address alone, not 0.0.0.0.
    const nets = platform.networks as Record<string, { ipv4_address?: string } | null>;
    expect(c.http.host).toBe(nets.backend?.ipv4_address);
    expect(compose.services.postgres.networks).toEqual(['backend']);
  });

  it('.dockerignore keeps state, keys, build outputs and modules out of the build context', () => {
    const lines = readFileSync(fromRoot('.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    for (const p of ['data/', 'dist/', 'node_modules/', '.git/', '*.log', '*.key', '*.pem']) expect(lines).toContain(p);
  });
});
