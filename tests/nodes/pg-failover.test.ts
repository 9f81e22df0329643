import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { expect, it } from 'vitest';
import { operatorBalContext } from '../../annuaire/admin/wiring.js';
import { createBal, createPerson } from '../../annuaire/bal/index.js';
import { loadConfig } from '../../core/config/index.js';
import { migrate, openPg } from '../../core/db/index.js';
import { Journal } from '../../core/journal/index.js';
import { importWhitelist } from '../../annuaire/whitelist/index.js';
import { startPgPair } from '../helpers/pg-cluster.js';
import { runMssAsync, startMss } from '../helpers/mss.js';
import { unusedListenersEnv } from '../helpers/nodes.js';
import { freePorts } from '../helpers/operator.js';
import { testPki, tsaEnv } from '../helpers/pki.js';
import { makeWhitelistXml } from '../helpers/whitelist.js';

// Issue 17, database: the platform on a PostgreSQL primary with a synchronous streaming
// replica. Under a bounded load of mail — submission by a local user, and inbound over the
// MX from a whitelisted peer operator (mutual TLS) — the primary crashes (pg_ctl stop -m immediate) and
// the replica is promoted. The platform finds the new primary by itself (database.hosts),
// and every message it answered 250 for — before, during and after the failover — is
// delivered into Dovecot; the journal, read on the new primary, verifies.

const BEFORE = 20; // acknowledged messages before the primary crashes
const AFTER = 15; // acknowledged messages, sent after the promotion, before the load stops
const MX_AFTER = 5; // of which at least this many came in through the MX
const MAX_ATTEMPTS = 300; // the load's bound
const CONCURRENCY = 3;
const PEER = 'peer.mssante.localhost';

it('a PostgreSQL failover to the replica under load loses no message answered 250', async () => {
  const pair = await startPgPair();
  const dataDir = mkdtempSync(join(tmpdir(), 'mss-failover-'));
  chmodSync(dataDir, 0o711);
  let platform: Awaited<ReturnType<typeof startMss>> | undefined;
  try {
    const primaryUrl = await pair.createDatabase('mss');
    const replicaUrl = pair.url(pair.replica.port, 'mss');

    const ports = await freePorts();
    // The test PKI: the platform's certificate and a peer operator's client certificate from one CA.
    const pki = await testPki();
    const ca = readFileSync(pki.paths.chain);
    const config = loadConfig({ env: {}, overrides: { dataDir } });
    const db = await openPg({ url: primaryUrl, poolSize: 2 });
    await migrate(db);
    const ctx = operatorBalContext(config, db, new Journal(db));
    const password = 'mot-de-passe-bascule-2026';
    await createPerson(ctx, { login: 'dr.bascule', idnps: '899999999902', password }, 'test');
    const address = 'dr.bascule@mssante.localhost';
    await createBal(ctx, { address, type: 'PER', owner: '899999999902' }, 'test');
    await importWhitelist(db, new Journal(db), Buffer.from(makeWhitelistXml({ count: 3, extra: [{ nom: PEER }] })), 'test', 'test');
    await db.close();

    const env = {
      MSS_DATABASE_URL: primaryUrl,
      MSS_DATABASE_HOSTS: `127.0.0.1:${pair.replica.port}`,
      ...unusedListenersEnv,
      MSS_SMTP_SUBMISSION_PORT: String(ports.submission),
      MSS_SMTP_MX_PORT: String(ports.mx),
      MSS_LDAP_LDAPS_PORT: '0',
      MSS_PKI_AUTO_INIT: 'false',
      MSS_TLS_CERT_FILE: pki.paths.leaves.server.cert,
      MSS_TLS_KEY_FILE: pki.paths.leaves.server.key,
      MSS_TLS_CHAIN_FILE: pki.paths.intermediate,
      MSS_TLS_CA_FILE: pki.paths.chain,
      MSS_TLS_CRL_FILE: pki.file('crl.pem'),
      ...tsaEnv(pki),
    };
    platform = await startMss(['--data-dir', dataDir, '--http-port', '0'], env);

    const timeouts = { connectionTimeout: 120_000, greetingTimeout: 120_000, socketTimeout: 180_000 };
    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: ports.submission, secure: false, requireTLS: true, tls: { ca, servername: 'mssante.localhost' }, auth: { user: 'dr.bascule', pass: password }, ...timeouts });
    const peer = pki.paths.leaves['peer-operator'];
    const mx = nodemailer.createTransport({ host: '127.0.0.1', port: ports.mx, secure: false, requireTLS: true, name: PEER, tls: { ca, servername: 'mssante.localhost', cert: readFileSync(peer.cert), key: readFileSync(peer.key) }, ...timeouts });
    const acknowledged: string[] = [];
    let mxAcknowledged = 0;
    let mxAfterPromotion = 0;
    let refused = 0;
    let attempts = 0;
    let ackAfterPromotion = 0;
    let failover: Promise<void> | undefined;
    let promoted = false;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (attempts < MAX_ATTEMPTS && !(promoted && ackAfterPromotion >= AFTER && mxAfterPromotion >= MX_AFTER)) {
          const i = attempts++;
          const sentAfterPromotion = promoted;
          // Every other message comes in from the peer operator through the MX.
          const inbound = i % 2 === 1;
          const messageId = `<failover-${i}-${Date.now()}@${inbound ? PEER : 'mssante.localhost'}>`;
          try {
            const info = inbound
              ? await mx.sendMail({ from: `labo@${PEER}`, to: address, subject: `bascule mx ${i}`, text: `message ${i}`, messageId })
              : await transport.sendMail({ from: address, to: address, subject: `bascule ${i}`, text: `message ${i}`, messageId });
            if (/^250 /.test(info.response)) {
              acknowledged.push(messageId);
              if (inbound) mxAcknowledged++;
              if (sentAfterPromotion) ackAfterPromotion++;
              if (sentAfterPromotion && inbound) mxAfterPromotion++;
            }
          } catch {
            refused++;
            // A refusal (4xx while no primary accepts writes) is retried by a real client later.
            await new Promise((r) => setTimeout(r, 200));
          }
          if (!failover && acknowledged.length >= BEFORE) {
            failover = (async () => {
              await pair.crashPrimary();
              await pair.promoteReplica();
              promoted = true;
            })();
          }
        }
      }),
    );
    await failover;
    process.stdout.write(`failover load: ${attempts} attempted, ${acknowledged.length} acknowledged (${mxAcknowledged} through the MX), ${ackAfterPromotion} after the promotion (${mxAfterPromotion} through the MX), ${refused} refused\n`);
    if (ackAfterPromotion < AFTER || mxAfterPromotion < MX_AFTER) process.stdout.write((platform.stdout() + platform.stderr()).slice(-6000));
    expect(promoted).toBe(true);
    expect(ackAfterPromotion).toBeGreaterThanOrEqual(AFTER);
    expect(mxAcknowledged).toBeGreaterThan(0);
    expect(mxAfterPromotion).toBeGreaterThanOrEqual(MX_AFTER);
    const logs = platform.stdout() + platform.stderr();
    // The platform moved to the replica by itself.
    expect(logs).toContain('PostgreSQL primary changed (failover)');

    // Every acknowledged message ends in Dovecot (delivered by the platform from the spool on the new primary).
    const imap = /mail store\s+Dovecot, IMAP ([\d.]+):(\d+)/.exec(platform.stdout())!;
    const master = readFileSync(join(dataDir, 'dovecot', 'master-secret'), 'utf8').trim();
    const found = new Map<string, number>();
    const deadline = Date.now() + 480_000; // a safety net against a hang, not a measure
    for (;;) {
      const c = new ImapFlow({ host: imap[1], port: Number(imap[2]), secure: false, auth: { user: `${address}*mss-proxy`, pass: master }, logger: false });
      await c.connect();
      found.clear();
      const lock = await c.getMailboxLock('INBOX');
      try {
        for await (const m of c.fetch('1:*', { envelope: true })) {
          const id = m.envelope?.messageId ?? '';
          found.set(id, (found.get(id) ?? 0) + 1);
        }
      } catch {
        /* empty mailbox */
      } finally {
        lock.release();
        await c.logout();
      }
      if (acknowledged.every((id) => found.has(id)) || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    const duplicated = acknowledged.filter((id) => (found.get(id) ?? 0) > 1).length;
    process.stdout.write(`failover test: ${attempts} attempted, ${acknowledged.length} acknowledged with 250 (${ackAfterPromotion} sent after the promotion), ${refused} refused, ${acknowledged.filter((id) => found.has(id)).length} of them in Dovecot (${duplicated} twice)\n`);
    expect(acknowledged.filter((id) => !found.has(id))).toEqual([]);

    // The journal, read on the new primary: one unbroken chain, seals included.
    const verify = await runMssAsync(['journal', 'verify', '--data-dir', dataDir], { MSS_DATABASE_URL: replicaUrl, MSS_PKI_AUTO_INIT: 'false', ...tsaEnv(pki) });
    expect(verify.stderr + verify.stdout).not.toMatch(/broken|mismatch|gap/i);
    expect(verify.code, verify.stderr + verify.stdout).toBe(0);
  } finally {
    if (platform) {
      platform.child.kill('SIGTERM');
      await platform.exited;
    }
    await pair.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
