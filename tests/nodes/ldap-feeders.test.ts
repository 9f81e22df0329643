import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ldapPaths, startDirectory, type Directory } from '../../annuaire/ldap/index.js';
import type { Config } from '../../core/config/index.js';
import { migrate, openPg, type Db } from '../../core/db/index.js';
import { Journal } from '../../core/journal/index.js';
import { silentLogger } from '../../core/logger.js';
import { testPostgres } from '../helpers/pg-cluster.js';
import { testPki } from '../helpers/pki.js';
import { testLdapConfig } from '../helpers/slapd.js';

// One node feeds the directory from a shared PostgreSQL: a second feeding node would drain
// part of the change queue into its own slapd, and neither directory would be complete.

let stopPg: (() => Promise<void>) | undefined;
let db: Db;
const dirs: string[] = [];
const running: Directory[] = [];

beforeAll(async () => {
  const { url, drop } = await testPostgres();
  stopPg = drop;
  db = await openPg({ url, poolSize: 4 });
  await migrate(db);
});

afterAll(async () => {
  for (const d of running.reverse()) await d.stop().catch(() => {});
  await db?.close();
  await stopPg?.();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const node = async (ldap: Partial<Config['ldap']> = {}): Promise<Config> => {
  const d = mkdtempSync(join(tmpdir(), 'mss-feeder-'));
  dirs.push(d);
  const c = testLdapConfig(await testPki(), d);
  return { ...c, ldap: { ...c.ldap, ...ldap } };
};

it('a second feeding node is refused with the name of the first; a consumer is not; after the first stops, another node may feed', async () => {
  const journal = new Journal(db);
  const a = await node({ role: 'provider' });
  const first = await startDirectory(a, silentLogger, db, journal);
  running.push(first);

  const b = await node({ role: 'standalone' });
  await expect(startDirectory(b, silentLogger, db, journal)).rejects.toThrow(/another node \(.*mss-feeder-.*\) feeds the directory from this database; run this one with ldap.role = consumer/);

  const consumer = await startDirectory(await node({ role: 'consumer', providerUrl: first.endpoints[1].url.replace(/\/[^/]*$/, ''), providerSecretFile: ldapPaths(a).secret }), silentLogger, db, journal);
  running.push(consumer);

  // Its row goes with a clean stop: another node may feed at once (after a crash, 30 s later).
  await first.stop();
  running.splice(running.indexOf(first), 1);
  const second = await startDirectory(b, silentLogger, db, journal);
  running.push(second);
  expect((await second.health.check()) as { role: string }).toMatchObject({ role: 'standalone' });
});
