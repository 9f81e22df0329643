// Issue 17: every front node runs the DMP rule watcher. Two watchers — two nodes, each with
// its own connection pool — on one PostgreSQL, reading the same Dovecot, passing over the
// same ruled boxes at the same moments: each document reaches the (stand-in) DMP once.
import { mkdtempSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import { expect, it } from 'vitest';
import { DEV_RPPS } from '../../certs/pki.js';
import { loadConfig } from '../../core/config/index.js';
import { migrate, openPg, type Db } from '../../core/db/index.js';
import { Journal } from '../../core/journal/index.js';
import { silentLogger } from '../../core/logger.js';
import { Supervisor } from '../../core/supervisor.js';
import { demoResultMessage } from '../../dmp/demo.js';
import { documentsOfMessage, handoffMessage, startDmpWatcher, startStandinDmp, xdmLimits, type DmpWatcher } from '../../dmp/index.js';
import { startMailstore } from '../../mailstore/dovecot.js';
import { LmtpPool } from '../../smtp/lmtp-sessions.js';
import { startPgPair } from '../helpers/pg-cluster.js';

const BOXES = ['dr.un@mssante.localhost', 'dr.deux@mssante.localhost', 'dr.trois@mssante.localhost'];
/** Each round: one result per box, then a pass of both nodes. */
const ROUNDS = 3;

it('two nodes watching the same ruled boxes hand each document off exactly once', async () => {
  const server = await startPgPair({ replica: false });
  const sup = new Supervisor(silentLogger);
  const dbs: Db[] = [];
  const watchers: DmpWatcher[] = [];
  let standin: Awaited<ReturnType<typeof startStandinDmp>> | undefined;
  try {
    const url = await server.createDatabase('mss');
    for (let i = 0; i < 2; i++) dbs.push(await openPg({ url, poolSize: 3 }));
    await migrate(dbs[0]);

    const dataDir = mkdtempSync(join(tmpdir(), 'mss-dmpw-'));
    chmodSync(dataDir, 0o711);
    const config = loadConfig({ env: {}, overrides: { dataDir, mailstore: { fullTextSearch: false } } });
    const store = await startMailstore(config, silentLogger, sup);
    standin = await startStandinDmp({ log: silentLogger });

    const lmtp = new LmtpPool(store.lmtp, { name: 'test', size: 1 });
    const deliverRound = async () => {
      for (const bal of BOXES) {
        const raw = await new MailComposer(await demoResultMessage({ from: 'labo-resultats@mssante.localhost', to: [bal], rpps: DEV_RPPS })).compile().build();
        expect(await lmtp.deliver({ from: 'labo-resultats@mssante.localhost', to: [bal] }, raw)).toEqual({ accepted: [bal], failed: [] });
      }
    };

    const limits = xdmLimits(config);
    for (const [i, db] of dbs.entries()) {
      const handoff = { db, journal: new Journal(db), documentsOf: (raw: Buffer) => documentsOfMessage(raw, limits), endpoint: standin.url, timeoutMs: 60_000, log: silentLogger };
      watchers.push(
        startDmpWatcher({
          db,
          rules: async () => BOXES.map((bal) => ({ bal, masking: 'normal' as const })),
          imap: { host: store.imap.host, port: store.imap.port, master: store.master },
          handoff: (req) => handoffMessage(handoff, req),
          // Passes are driven by the test (tick), both nodes at once.
          intervalMs: 3_600_000,
          log: silentLogger.child({ node: `front-${i + 1}` }),
        }),
      );
    }

    // Mail keeps arriving between passes; both nodes pass over every box at the same moments.
    let handed = 0;
    for (let round = 0; round < ROUNDS; round++) {
      await deliverRound();
      handed += (await Promise.all(watchers.map((w) => w.tick()))).reduce((a, b) => a + b, 0);
    }
    lmtp.close();
    const delivered = ROUNDS * BOXES.length;
    expect(await countInboxes()).toBe(delivered);
    // A box one node skipped (the other held it) is taken on a later pass: two more, both nodes at once.
    for (let i = 0; i < 2; i++) handed += (await Promise.all(watchers.map((w) => w.tick()))).reduce((a, b) => a + b, 0);

    const { rows } = await dbs[0].query<{ bal: string; uid: number; status: string; n: string }>('SELECT bal, uid, min(status) AS status, count(*) AS n FROM dmp_submissions GROUP BY bal, uid ORDER BY bal, uid');
    expect(rows.length, 'one dmp_submissions row per delivered message').toBe(delivered);
    expect(rows.filter((r) => Number(r.n) !== 1), 'messages handed off more than once').toEqual([]);
    expect(rows.every((r) => r.status === 'success')).toBe(true);
    expect(handed).toBe(delivered);
    expect(standin.submissions()).toHaveLength(delivered);
    expect(new Set(standin.submissions().map((s) => s.documents[0].uniqueId)).size).toBe(delivered);

    async function countInboxes(): Promise<number> {
      let n = 0;
      for (const bal of BOXES) {
        const c = new ImapFlow({ host: store.imap.host, port: store.imap.port, secure: false, auth: { user: `${bal}*${store.master.user}`, pass: store.master.password }, logger: false });
        await c.connect();
        try {
          const st = await c.status('INBOX', { messages: true });
          n += st ? (st.messages ?? 0) : 0;
        } finally {
          await c.logout();
        }
      }
      return n;
    }
  } finally {
    for (const w of watchers) await w.stop();
    await standin?.stop();
    await sup.stopAll();
    for (const db of dbs) await db.close();
    await server.stop();
  }
});
