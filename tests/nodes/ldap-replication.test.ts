import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'ldapts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { operatorBalContext } from '../../annuaire/admin/wiring.js';
import { closeBal, createBal } from '../../annuaire/bal/index.js';
import { connect, feederConnection } from '../../annuaire/ldap/client.js';
import { checkDirectory, ldapPaths, startDirectory, type Directory } from '../../annuaire/ldap/index.js';
import { replicationState } from '../../annuaire/ldap/replication.js';
import { seedAnnuaire } from '../../bench/ldap-fixtures.js';
import type { Config } from '../../core/config/index.js';
import type { Db } from '../../core/db/index.js';
import { Journal } from '../../core/journal/index.js';
import { silentLogger } from '../../core/logger.js';
import { nodeTlsPolicy } from '../../certs/tls-policy.js';
import { LdapRecipientResolver } from '../../smtp/recipients.js';
import { pgliteTarget } from '../helpers/db.js';
import { testPki } from '../helpers/pki.js';
import { runMssAsync } from '../helpers/mss.js';
import { eventually, testLdapConfig } from '../helpers/slapd.js';

// Issue 17, directory: the provider node's slapd (fed from the database) and a consumer
// node's slapd (syncrepl refreshAndPersist over LDAPS, checked against the platform's CA),
// both configured and started by the platform's own code. What the provider's node writes
// must appear in the consumer — in the public tree LDAP clients read and in the private
// routing branch recipient resolution reads — and a consumer that was away catches up.

describe('directory replication: slapd provider and syncrepl consumer', () => {
  let db: Db;
  let dispose: () => Promise<void>;
  let journal: Journal;
  let providerConfig: Config;
  let consumerConfig: Config;
  let provider: Directory;
  let consumer: Directory;
  const base = 'o=MSSante,c=FR';
  const dirs: string[] = [];

  const ldapsOf = (d: Directory) => d.endpoints[1].url.replace(/\/[^/]*$/, '');
  /** A node's own view, bound as its own rootdn (as its recipient resolver is). */
  const bound = (c: Config, d: Directory) => connect(feederConnection(ldapPaths(c), ldapsOf(d), base));
  const publicEntry = async (d: Directory, mail: string) => {
    const client = new Client({ url: d.endpoints[0].url.replace(/\/[^/]*$/, '') });
    try {
      const { searchEntries } = await client.search(`ou=bal,${base}`, { scope: 'one', filter: `(mail=${mail})` });
      return searchEntries[0];
    } finally {
      await client.unbind();
    }
  };
  const routing = async (c: Config, d: Directory, mail: string) => {
    const client = await bound(c, d);
    try {
      const { searchEntries } = await client.search(`ou=routage,${base}`, { scope: 'one', filter: `(mail=${mail})`, attributes: ['*'] });
      return searchEntries[0];
    } finally {
      await client.unbind();
    }
  };
  /** The consumer shows exactly what the provider shows for this address, in both branches. */
  const sameOnBoth = async (mail: string) => {
    const [pp, cp, pr, cr] = await Promise.all([publicEntry(provider, mail), publicEntry(consumer, mail), routing(providerConfig, provider, mail), routing(consumerConfig, consumer, mail)]);
    return JSON.stringify(pp) === JSON.stringify(cp) && JSON.stringify(pr) === JSON.stringify(cr);
  };

  const startConsumer = async () => (consumer = await startDirectory(consumerConfig, silentLogger, db, journal));

  beforeAll(async () => {
    ({ db, dispose } = await pgliteTarget.open());
    journal = new Journal(db);
    await seedAnnuaire(db, { count: 200 });
    const pki = await testPki();
    const fresh = () => {
      const d = mkdtempSync(join(tmpdir(), 'mss-node-'));
      dirs.push(d);
      return d;
    };
    const withRole = (c: Config, ldap: Partial<Config['ldap']>): Config => ({ ...c, ldap: { ...c.ldap, ...ldap } });
    providerConfig = withRole(testLdapConfig(pki, fresh()), { role: 'provider' });
    provider = await startDirectory(providerConfig, silentLogger, db, journal);
    consumerConfig = withRole(testLdapConfig(pki, fresh()), {
      role: 'consumer',
      // The provider's certificate names 127.0.0.1 (the dev PKI's loopback SAN): checked by name too.
      providerUrl: ldapsOf(provider),
      providerSecretFile: ldapPaths(providerConfig).secret,
    });
    await startConsumer();
  });

  afterAll(async () => {
    await consumer?.stop();
    await provider?.stop();
    await dispose?.();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('a new consumer serves only once it holds the whole directory: at its start the database and the consumer agree', async () => {
    // No waiting here: startDirectory returned once the first refresh was in (an empty
    // consumer would answer "unknown recipient", a permanent 5xx, for boxes that exist).
    const client = await bound(consumerConfig, consumer);
    try {
      const r = await checkDirectory(db, client, base);
      expect(r.database).toBeGreaterThan(200);
      expect(r).toMatchObject({ directory: r.database, missing: 0, extra: 0, different: 0 });
    } finally {
      await client.unbind();
    }
  });

  it('a box created on the provider node is visible on the consumer (public tree and routing branch), and resolved there', async () => {
    const ctx = operatorBalContext(providerConfig, db, journal);
    const address = 'secretariat.replique@mssante.localhost';
    await createBal(ctx, { address, type: 'ORG', owner: '010000001', displayName: 'Secrétariat répliqué' }, 'test');
    // Fed on the provider by its own drain; pushed to the consumer by syncrepl.
    await eventually(async () => (await routing(consumerConfig, consumer, address)) !== undefined);
    expect(await sameOnBoth(address)).toBe(true);
    // Its /health says it is caught up with the provider; with the provider out of reach it
    // still serves its copy, and says the provider cannot be asked.
    await eventually(async () => JSON.stringify(await consumer.health.check()).includes('"caughtUp":true'));
    expect(await consumer.health.check()).toMatchObject({ role: 'consumer', replication: { provider: ldapsOf(provider), reachable: true, caughtUp: true, lagSeconds: 0 } });
    const conn0 = feederConnection(ldapPaths(consumerConfig), ldapsOf(consumer), base);
    const away = await replicationState({ ldap: { ...consumerConfig.ldap, providerUrl: 'ldaps://127.0.0.1:1' } }, () => connect(conn0), conn0.ca);
    expect(away).toMatchObject({ provider: 'ldaps://127.0.0.1:1', reachable: false, error: expect.stringMatching(/ECONNREFUSED|connect/) });
    // The consumer node's recipient resolution, as bin/platform.ts builds it, reads its local slapd.
    const conn = feederConnection(ldapPaths(consumerConfig), ldapsOf(consumer), base);
    const resolver = new LdapRecipientResolver({ url: conn.url, bindDn: conn.bindDn, bindPassword: conn.secret, base: `ou=routage,${base}`, tlsOptions: { ca: [conn.ca], checkServerIdentity: () => undefined, ...nodeTlsPolicy() } });
    try {
      expect(await resolver.resolve(address)).toMatchObject({ kind: 'local', address });
    } finally {
      await resolver.close();
    }
  });

  it('the consumer is read-only: a write there is refused, and its node feeds nothing', async () => {
    const client = await bound(consumerConfig, consumer);
    try {
      await expect(client.add(`mail=intrus@mssante.localhost,ou=bal,${base}`, { objectClass: ['inetOrgPerson'], cn: 'x', sn: 'x', mail: 'intrus@mssante.localhost' })).rejects.toThrow();
    } finally {
      await client.unbind();
    }
    expect((await consumer.sync()).skipped).toBe(true);
  });

  it('a consumer stopped while boxes are created and closed catches up when it starts again', async () => {
    const ctx = operatorBalContext(providerConfig, db, journal);
    await consumer.stop();
    const created = 'accueil.absent@mssante.localhost';
    const closed = 'secretariat.replique@mssante.localhost';
    await createBal(ctx, { address: created, type: 'ORG', owner: '010000001', displayName: 'Accueil' }, 'test');
    await closeBal(ctx, closed, 'test');
    // Applied on the provider first (its drain), while the consumer is down.
    await eventually(async () => (await routing(providerConfig, provider, created)) !== undefined && (await publicEntry(provider, closed)) === undefined);
    await startConsumer();
    await eventually(async () => (await sameOnBoth(created)) && (await sameOnBoth(closed)));
    expect(await publicEntry(consumer, created)).toBeDefined();
    expect(await publicEntry(consumer, closed)).toBeUndefined();
  });

  it('a consumer without its provider\'s URL or secret refuses to start with a clear sentence', async () => {
    const pki = await testPki();
    const d = mkdtempSync(join(tmpdir(), 'mss-node-'));
    dirs.push(d);
    const c = testLdapConfig(pki, d);
    const consumerOf = (ldap: Partial<Config['ldap']>): Config => ({ ...c, ldap: { ...c.ldap, role: 'consumer', ...ldap } });
    await expect(startDirectory(consumerOf({}), silentLogger, db, journal)).rejects.toThrow("the LDAP directory (slapd) did not start: ldap.role is consumer: ldap.providerUrl must be the provider's ldaps:// URL (got nothing)");
    await expect(startDirectory(consumerOf({ providerUrl: 'ldap://127.0.0.1:389' }), silentLogger, db, journal)).rejects.toThrow(/providerUrl must be the provider's ldaps:\/\/ URL \(got "ldap:/);
    await expect(startDirectory(consumerOf({ providerUrl: ldapsOf(provider), providerSecretFile: join(d, 'absent') }), silentLogger, db, journal)).rejects.toThrow(/cannot read ldap.providerSecretFile .*absent/);
  });

  it('mss annuaire rebuild-ldap refuses on a consumer node: its directory is the provider\'s copy', async () => {
    const d = mkdtempSync(join(tmpdir(), 'mss-node-'));
    dirs.push(d);
    const r = await runMssAsync(['annuaire', 'rebuild-ldap', '--data-dir', d], { MSS_LDAP_ROLE: 'consumer', MSS_LDAP_PROVIDER_URL: 'ldaps://127.0.0.1:6360' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("rebuilding the LDAP directory failed, the previous one stays in place: this node is an LDAP consumer (ldap.role = consumer): its directory is replicated from ldaps://127.0.0.1:6360; rebuild on the provider's node");
  });

  it('a full rebuild on the provider reaches the consumer too (nothing missing, nothing extra)', async () => {
    const ctx = operatorBalContext(providerConfig, db, journal);
    const address = 'apres.reconstruction@mssante.localhost';
    await createBal(ctx, { address, type: 'ORG', owner: '010000001', displayName: 'Après reconstruction' }, 'test');
    await provider.rebuild('test');
    const client = await bound(consumerConfig, consumer);
    try {
      await eventually(async () => {
        const r = await checkDirectory(db, client, base);
        return r.missing + r.extra + r.different === 0;
      });
    } catch (e) {
      await client.unbind();
      throw e;
    }
    await client.unbind();
    expect(await sameOnBoth(address)).toBe(true);
  });
});
