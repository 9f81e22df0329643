import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { migrate, openPglite } from '../../core/db/index.js';
import { enqueueOutbound } from '../../smtp/outbound.js';
import { spoolMessage } from '../../smtp/spool.js';
import { Journal } from '../../core/journal/index.js';
import { runMss } from '../helpers/mss.js';
import { testPki, tsaEnv } from '../helpers/pki.js';
import { seedPglite } from '../helpers/templates.js';

it('mss queue list|retry|delete and mss spool list show and move the rows; retry and delete are journalled', async () => {
  const env = tsaEnv(await testPki());
  const dataDir = mkdtempSync(join(tmpdir(), 'mss-queue-'));
  seedPglite(dataDir);
  const db = await openPglite(join(dataDir, 'db'));
  await migrate(db);
  const body = Buffer.from('Subject: x\r\n\r\ny\r\n');
  const spoolId = await spoolMessage(db, { front: 'submission', envFrom: 'dr.martin@mssante.localhost', localRcpts: ['secretariat@mssante.localhost'], body, peer: {} });
  const [qid] = await enqueueOutbound(db, { spoolId, envFrom: 'dr.martin@mssante.localhost', rcpts: ['dr.durand@peer.mssante.fr'], body }, 86_400_000);
  await db.query("UPDATE smtp_outbound SET state = 'deferred', next_attempt_at = now() + interval '1 hour', last_reply = '421 busy' WHERE id = $1", [qid]);
  await db.close();

  const list = runMss(['queue', 'list', '--data-dir', dataDir]);
  expect(list.code).toBe(0);
  expect(list.stdout).toMatch(new RegExp(`^\\s+${qid} deferred peer\\.mssante\\.fr dr\\.martin@mssante\\.localhost → dr\\.durand@peer\\.mssante\\.fr attempts=0 next=\\S+ last="421 busy"$`, 'm'));
  expect(runMss(['queue', 'retry', String(qid), '--data-dir', dataDir], env).stdout).toBe('1 message(s) due now; the running platform sends them within seconds\n');
  expect(runMss(['spool', 'list', '--json', '--data-dir', dataDir]).stdout).toContain('"local_rcpts": [\n      "secretariat@mssante.localhost"');
  expect(runMss(['queue', 'delete', String(qid), '--data-dir', dataDir], env)).toMatchObject({ code: 1, stderr: expect.stringMatching(/required option '--reason <text>'/) });
  expect(runMss(['queue', 'delete', 'abc', '--reason', 'x', '--data-dir', dataDir], env)).toMatchObject({ code: 1, stderr: expect.stringMatching(/the queue id must be a positive whole number, got "abc"/) });
  expect(runMss(['queue', 'delete', String(qid), '--reason', 'peer closed for good', '--data-dir', dataDir], env).stdout).toBe(`message ${qid} deleted from the outbound queue\n`);
  expect(runMss(['queue', 'delete', String(qid), '--reason', 'again', '--data-dir', dataDir], env)).toMatchObject({ code: 1, stderr: `mss: no pending message ${qid} in the outbound queue\n` });
  expect(runMss(['queue', 'list', '--state', 'bounced', '--data-dir', dataDir]).stdout).toContain('last="deleted by the operator"');
  // Both decisions are in the journal, sealed by the command before it exited.
  const after = await openPglite(join(dataDir, 'db'));
  const journal = new Journal(after);
  expect((await journal.list({ type: 'smtp.queue.retried' }))[0]).toMatchObject({ subject: String(qid), details: { count: 1 } });
  expect((await journal.list({ type: 'smtp.queue.deleted' }))[0]).toMatchObject({ subject: String(qid), details: { reason: 'peer closed for good' } });
  const { rows } = await after.query<{ unsealed: number }>('SELECT (SELECT seq FROM journal_head) - coalesce((SELECT max(last_seq) FROM journal_seals), 0) AS unsealed');
  expect(Number(rows[0].unsealed)).toBe(0);
  await after.close();
});
