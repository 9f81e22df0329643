import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { migrate, openPglite } from '../../core/db/index.js';
import { enqueueOutbound } from '../../smtp/outbound.js';
import { spoolMessage } from '../../smtp/spool.js';
import { runMss } from '../helpers/mss.js';

it('mss queue list|retry|delete and mss spool list show and move the rows', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'mss-queue-'));
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
  expect(runMss(['queue', 'retry', String(qid), '--data-dir', dataDir]).stdout).toBe('1 message(s) due now; the running platform sends them within seconds\n');
  expect(runMss(['spool', 'list', '--json', '--data-dir', dataDir]).stdout).toContain('"local_rcpts": [\n      "secretariat@mssante.localhost"');
  expect(runMss(['queue', 'delete', String(qid), '--data-dir', dataDir]).stdout).toBe(`message ${qid} deleted from the outbound queue\n`);
  expect(runMss(['queue', 'delete', String(qid), '--data-dir', dataDir])).toMatchObject({ code: 1, stderr: `mss: no pending message ${qid} in the outbound queue\n` });
  expect(runMss(['queue', 'list', '--state', 'bounced', '--data-dir', dataDir]).stdout).toContain('last="deleted by the operator"');
});
