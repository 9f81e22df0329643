// The directory going away under a running platform, and coming back: slapd stopped
// through the platform's own supervisor, then started again from the same table row on
// the same ports, so the fronts reconnect as they would after a real outage.
import { ldapPaths } from '../../annuaire/ldap/files.js';
import { slapdService } from '../../annuaire/ldap/slapd.js';
import { until, type TestOperator } from './operator.js';

export async function withSlapdStopped<T>(op: TestOperator, fn: () => Promise<T>): Promise<T> {
  const { platform, config } = op;
  const urls = platform.directory!.endpoints.map((e) => new URL(e.url));
  const listen = { host: config.ldap.host, port: Number(urls.find((u) => u.protocol === 'ldap:')!.port), ldapsPort: Number(urls.find((u) => u.protocol === 'ldaps:')!.port) };
  await platform.supervisor.stop('slapd');
  try {
    return await fn();
  } finally {
    await platform.supervisor.start(slapdService(config, ldapPaths(config), listen));
    await until(async () => platform.directory!.sync().then(() => true, () => false));
  }
}
