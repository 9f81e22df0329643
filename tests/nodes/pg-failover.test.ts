import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { expect, it } from 'vitest';
import { operatorBalContext } from '../../annuaire/admin/wiring.js';
import { createBal, createPerson } from '../../annuaire/bal/index.js';
import { initDevPki } from '../../certs/pki.js';
import { loadConfig } from '../../core/config/index.js';
import { migrate, openPg } from '../../core/db/index.js';
import { Journal } from '../../core/journal/index.js';
import { startPgPair } from '../helpers/pg-cluster.js';
import { runMssAsync, startMss } from '../helpers/mss.js';
import { unusedListenersEnv } from '../helpers/nodes.js';
import { freePorts } from '../helpers/operator.js';

// Issue 17, database: the platform on a PostgreSQL primary with a synchronous streaming
// replica. Under a bounded load of mail, the primary crashes (pg_ctl stop -m immediate) and
// the replica is promoted. The platform finds the new primary by itself (database.hosts),
// and every message it answered 250 for — before, during and after the failover — is
// delivered into Dovecot; the journal, read on the new primary, verifies.

const BEFORE = 20; // acknowledged messages before the primary crashes
const AFTER = 15; // acknowledged messages, sent after the promotion, before the load stops
const MAX_ATTEMPTS = 300; // the load's bound
const CONCURRENCY = 3;

it('a PostgreSQL failover to the replica under load loses no message answered 250', async () => {
  const pair = await startPgPair();
  const dataDir = mkdtempSync(join(tmpdir(), 'mss-failover-'));
  chmodSync(dataDir, 0o711);
  let platform: Awaited<ReturnType<typeof startMss>> | undefined;
  try {
    const primaryUrl = await pair.createDatabase('mss');
    const replicaUrl = pair.url(pair.replica.port, 'mss');

    const ports = await freePorts();
    await initDevPki({ dir: join(dataDir, 'pki'), domain: 'mssante.localhost', keyBits: 2048 });
    const config = loadConfig({ env: {}, overrides: { dataDir } });
    const db = await openPg({ url: primaryUrl, poolSize: 2 });
    await migrate(db);
    const ctx = operatorBalContext(config, db, new Journal(db));
    const password = 'mot-de-passe-bascule-2026';
    await createPerson(ctx, { login: 'dr.bascule', idnps: '899999999902', password }, 'test');
    const address = 'dr.bascule@mssante.localhost';
    await createBal(ctx, { address, type: 'PER', owner: '899999999902' }, 'test');
    await db.close();

    const env = {
      MSS_DATABASE_URL: primaryUrl,
      MSS_DATABASE_HOSTS: `127.0.0.1:${pair.replica.port}`,
      ...unusedListenersEnv,
      MSS_SMTP_SUBMISSION_PORT: String(ports.submission),
      MSS_LDAP_LDAPS_PORT: '0',
    };
    platform = await startMss(['--data-dir', dataDir, '--http-port', '0'], env);

    const transport = nodemailer.createTransport({ host: '127.0.0.1', port: ports.submission, secure: false, requireTLS: true, tls: { ca: readFileSync(join(dataDir, 'pki', 'ca.pem')), servername: 'localhost' }, auth: { user: 'dr.bascule', pass: password }, connectionTimeout: 120_000, greetingTimeout: 120_000, socketTimeout: 180_000 });
    const acknowledged: string[] = [];
    let refused = 0;
    let attempts = 0;
    let ackAfterPromotion = 0;
    let failover: Promise<void> | undefined;
    let promoted = false;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (attempts < MAX_ATTEMPTS && !(promoted && ackAfterPromotion >= AFTER)) {
          const i = attempts++;
          const sentAfterPromotion = promoted;
          const messageId = `<failover-${i}-${Date.now()}@mssante.localhost>`;
          try {
            const info = await transport.sendMail({ from: address, to: address, subject: `bascule ${i}`, text: `message ${i}`, messageId });
            if (/^250 /.test(info.response)) {
              acknowledged.push(messageId);
              if (sentAfterPromotion) ackAfterPromotion++;
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
    process.stdout.write(`failover load: ${attempts} attempted, ${acknowledged.length} acknowledged, ${ackAfterPromotion} after the promotion, ${refused} refused\n`);
    if (ackAfterPromotion < AFTER) process.stdout.write((platform.stdout() + platform.stderr()).slice(-6000));
    expect(promoted).toBe(true);
    expect(ackAfterPromotion).toBeGreaterThanOrEqual(AFTER);
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
    const verify = await runMssAsync(['journal', 'verify', '--data-dir', dataDir], { MSS_DATABASE_URL: replicaUrl });
    expect(verify.stderr + verify.stdout).not.toMatch(/broken|mismatch|gap/i);
    expect(verify.code).toBe(0);
  } finally {
    if (platform) {
      platform.child.kill('SIGTERM');
      await platform.exited;
    }
    await pair.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
