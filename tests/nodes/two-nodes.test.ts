import { chmodSync, cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import pg from 'pg';
import { expect, it } from 'vitest';
import { operatorBalContext } from '../../annuaire/admin/wiring.js';
import { createBal, createPerson } from '../../annuaire/bal/index.js';
import { freePort } from '../../annuaire/ldap/slapd.js';
import { initDevPki } from '../../certs/pki.js';
import { loadConfig } from '../../core/config/index.js';
import { migrate, openPg } from '../../core/db/index.js';
import { Journal } from '../../core/journal/index.js';
import { testPostgres } from '../helpers/pg-cluster.js';
import { runMssAsync, startMss, type Started } from '../helpers/mss.js';
import { sharedMasterKey, unusedListenersEnv } from '../helpers/nodes.js';

// Issue 17, coordination through PostgreSQL only: two platform processes (two nodes: A
// feeds the directory as its slapd provider, B reads a syncrepl consumer) on one
// PostgreSQL. Mail submitted to both at once appends to one journal from both processes;
// the submission rate and the failed-login throttle count across both nodes; afterwards
// `mss journal verify` finds one unbroken chain with its seals.

const RATE = 24; // messages per hour per person (smtp.ratePerHour): 12 through each node
const MAX_FAILURES = 4; // auth.maxFailuresPerAccount: 2 wrong passwords through each node

it('two nodes on one PostgreSQL: one journal chain, rate and login throttle counted across both', async () => {
  const server = await testPostgres();
  const url = server.url;
  const dirA = mkdtempSync(join(tmpdir(), 'mss-nodeA-'));
  const dirB = mkdtempSync(join(tmpdir(), 'mss-nodeB-'));
  const nodes: Started[] = [];
  try {
    try {
      for (const d of [dirA, dirB]) chmodSync(d, 0o711);
      // One operator, one PKI: each node has its copy of the same files.
      await initDevPki({ dir: join(dirA, 'pki'), domain: 'mssante.localhost', keyBits: 2048 });
      cpSync(join(dirA, 'pki'), join(dirB, 'pki'), { recursive: true });

      const db = await openPg({ url, poolSize: 2 });
      await migrate(db);
      const ctx = operatorBalContext(loadConfig({ env: {}, overrides: { dataDir: dirA } }), db, new Journal(db));
      const password = 'mot-de-passe-deux-noeuds';
      await createPerson(ctx, { login: 'dr.noeuds', idnps: '899999999903', password }, 'test');
      const address = 'dr.noeuds@mssante.localhost';
      await createBal(ctx, { address, type: 'PER', owner: '899999999903' }, 'test');

      const submission = { a: await freePort('127.0.0.1'), b: await freePort('127.0.0.1') };
      const providerLdaps = await freePort('127.0.0.1');
      const common = {
        MSS_DATABASE_URL: url,
        // One keyring in the database for both: it opens only under the master key it was made with.
        ...sharedMasterKey(),
        ...unusedListenersEnv,
        MSS_SMTP_RATE_PER_HOUR: String(RATE),
        MSS_AUTH_MAX_FAILURES_PER_ACCOUNT: String(MAX_FAILURES),
        MSS_AUTH_FAILURE_DELAY: '0',
        MSS_LOG_LEVEL: 'info',
      };
      nodes.push(await startMss(['--data-dir', dirA, '--http-port', '0'], { ...common, MSS_SMTP_SUBMISSION_PORT: String(submission.a), MSS_LDAP_ROLE: 'provider', MSS_LDAP_LDAPS_PORT: String(providerLdaps) }));
      nodes.push(
        await startMss(['--data-dir', dirB, '--http-port', '0'], {
          ...common,
          MSS_SMTP_SUBMISSION_PORT: String(submission.b),
          MSS_LDAP_LDAPS_PORT: '0',
          MSS_LDAP_ROLE: 'consumer',
          MSS_LDAP_PROVIDER_URL: `ldaps://127.0.0.1:${providerLdaps}`,
          MSS_LDAP_PROVIDER_SECRET_FILE: join(dirA, 'ldap', 'rootpw'),
        }),
      );

      // Nothing under keys/ was copied: B wrote its copy of the keyring from the database, the one A made.
      expect((await db.query<{ id: string }>('SELECT id FROM crypt_keyring')).rows).toEqual([{ id: 'k1' }]);
      for (const f of ['dovecot-k1.pub.pem', 'dovecot-k1.key.pem', 'keyring.json']) expect(readFileSync(join(dirB, 'keys', f), 'utf8'), f).toBe(readFileSync(join(dirA, 'keys', f), 'utf8'));

      const ca = readFileSync(join(dirA, 'pki', 'ca.pem'));
      const transport = (port: number, pass = password) =>
        nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, requireTLS: true, tls: { ca, servername: 'localhost' }, auth: { user: 'dr.noeuds', pass }, connectionTimeout: 60_000, greetingTimeout: 60_000, socketTimeout: 120_000 });
      const send = (port: number, i: number) => transport(port).sendMail({ from: address, to: address, subject: `deux noeuds ${i}`, text: `message ${i}`, messageId: `<nodes-${i}@mssante.localhost>` });

      // Both nodes at once, three connections each: the journal is appended by both processes.
      const perNode = RATE / 2;
      const load = async (port: number, from: number) => {
        const replies: string[] = [];
        let next = 0;
        await Promise.all(
          Array.from({ length: 3 }, async () => {
            while (next < perNode) {
              const i = from + next++;
              replies.push((await send(port, i)).response);
            }
          }),
        );
        return replies;
      };
      const [ra, rb] = await Promise.all([load(submission.a, 0), load(submission.b, 1000)]);
      expect([...ra, ...rb].filter((r) => !/^250 /.test(r))).toEqual([]);
      // The rate is spent across the two nodes: the next message is refused on either.
      for (const port of [submission.a, submission.b]) {
        const refused = await send(port, 9999).catch((e: { responseCode?: number; response?: string }) => e);
        expect(refused).toMatchObject({ responseCode: 451 });
        expect((refused as { response: string }).response).toMatch(/4\.7\.0 too many messages from .*at most 24 per hour/);
      }

      // Failed logins, two through each node: the account is locked on both.
      const wrong = async (port: number) => {
        const e = await transport(port, 'pas-le-bon').verify().catch((err: { responseCode?: number }) => err);
        expect(e).toMatchObject({ responseCode: 535 });
      };
      await wrong(submission.a);
      await wrong(submission.b);
      await wrong(submission.a);
      await wrong(submission.b);
      for (const port of [submission.b, submission.a]) {
        const locked = await transport(port).verify().catch((err: { responseCode?: number; response?: string }) => err);
        expect(locked).toMatchObject({ responseCode: 454 });
        expect((locked as { response: string }).response).toMatch(/too many failed logins/);
      }
      await db.close();
    } finally {
      for (const n of nodes.reverse()) {
        n.child.kill('SIGTERM');
        await n.exited;
      }
    }
    // Both nodes stopped (each flushed and sealed its part): one chain, from either data directory.
    const verify = await runMssAsync(['journal', 'verify', '--data-dir', dirB], { MSS_DATABASE_URL: url });
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    const { rows } = await c.query<{ n: number; sealed: number }>("SELECT (SELECT count(*)::int FROM journal_events WHERE type = 'smtp.received') AS n, (SELECT coalesce(max(last_seq), 0)::int FROM journal_seals) AS sealed");
    const head = await c.query<{ seq: number }>('SELECT seq FROM journal_head WHERE id = 1');
    await c.end();
    expect(rows[0].n).toBe(RATE);
    // Every event sealed, by whichever node sealed last.
    expect(rows[0].sealed).toBe(head.rows[0].seq);
  } finally {
    // Whatever failed above: the private PostgreSQL and the data directories go.
    await server.drop();
    rmSync(dirA, { recursive: true, force: true });
    rmSync(dirB, { recursive: true, force: true });
  }
});

