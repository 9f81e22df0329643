import { chmodSync, cpSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { expect, it } from 'vitest';
import { operatorBalContext } from '../../annuaire/admin/wiring.js';
import { createBal, createPerson } from '../../annuaire/bal/index.js';
import { loadConfig } from '../../core/config/index.js';
import { migrate, openPglite } from '../../core/db/index.js';
import { Journal } from '../../core/journal/index.js';
import { startMss } from '../helpers/mss.js';
import { freePorts } from '../helpers/operator.js';
import { testPki } from '../helpers/pki.js';
import { seedPglite } from '../helpers/templates.js';
import { unusedListenersEnv } from '../helpers/nodes.js';

// kill -9 the platform (SMTP, spool, delivery all in that process) while a bounded load
// runs; restart; every message that was answered 250 must be in Dovecot, at least once.

const LOAD = 60;
const CONCURRENCY = 3;
const KILL_AFTER = 20;

// It once hung now and then: the killed process's delivery leases outlived the restart, so
// the new process waited for them to expire. Leases now follow a worker heartbeat (0201).
it('no message acknowledged with 250 is lost across a kill -9', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'mss-crash-'));
  chmodSync(dataDir, 0o711);
  const ports = await freePorts();
  // The platform's own PKI directory and database: the run's test PKI and migrated database, copied.
  cpSync((await testPki()).dir, join(dataDir, 'pki'), { recursive: true });
  seedPglite(dataDir);
  const config = loadConfig({ env: {}, overrides: { dataDir } });
  const db = await openPglite(join(dataDir, 'db'));
  await migrate(db);
  const ctx = operatorBalContext(config, db, new Journal(db));
  const password = 'mot-de-passe-crash-2026';
  await createPerson(ctx, { login: 'dr.crash', idnps: '899999999901', password }, 'test');
  const address = 'dr.crash@mssante.localhost';
  await createBal(ctx, { address, type: 'PER', owner: '899999999901' }, 'test');
  await db.close();

  const env = { ...unusedListenersEnv, MSS_LDAP_LDAPS_PORT: '0', MSS_SMTP_SUBMISSION_PORT: String(ports.submission) };
  const start = () => startMss(['--data-dir', dataDir, '--http-port', '0'], env);
  const first = await start();

  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: ports.submission, secure: false, requireTLS: true, tls: { ca: readFileSync(join(dataDir, 'pki', 'ca.pem')), servername: 'localhost' }, auth: { user: 'dr.crash', pass: password }, connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 30_000 });
  const acknowledged: string[] = [];
  let refused = 0;
  let next = 0;
  let killed = false;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < LOAD) {
        const i = next++;
        const messageId = `<crash-${i}-${Date.now()}@mssante.localhost>`;
        try {
          const info = await transport.sendMail({ from: address, to: address, subject: `crash ${i}`, text: `message ${i}`, messageId });
          if (/^250 /.test(info.response)) acknowledged.push(messageId);
        } catch {
          refused++;
        }
        if (!killed && acknowledged.length >= KILL_AFTER) {
          killed = true;
          first.child.kill('SIGKILL');
        }
      }
    }),
  );
  await first.exited;

  const second = await start();
  try {
    const imap = /mail store\s+Dovecot, IMAP ([\d.]+):(\d+)/.exec(second.stdout())!;
    const master = readFileSync(join(dataDir, 'dovecot', 'master-secret'), 'utf8').trim();
    const found = new Map<string, number>();
    // Delivery after the restart takes a moment (seconds; minutes on a loaded machine); a
    // lost message must fail the test with the counts, not keep it waiting until the
    // runner's timeout (600 s), hence a deadline far above any delivery time but below it.
    const deadline = Date.now() + 480_000;
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
    process.stdout.write(`crash test: ${LOAD} attempted, ${acknowledged.length} acknowledged with 250, ${refused} failed during the kill, ${acknowledged.filter((id) => found.has(id)).length} of them in Dovecot after restart (${duplicated} delivered twice), ${found.size} messages in the mailbox\n`);
    expect(acknowledged.length).toBeGreaterThanOrEqual(KILL_AFTER);
    expect(acknowledged.filter((id) => !found.has(id))).toEqual([]);
  } finally {
    second.child.kill('SIGTERM');
    await second.exited;
  }
});
