// The child of createPgliteInChild (pglite-create.ts): opens (so initdb runs here), migrates,
// closes, replies, exits — and takes initdb's memory with it.
import { isMssError } from '../errors.js';
import { migrate } from './migrate.js';
import { openPglite } from './pglite.js';
import type { CreateReply, CreateRequest } from './pglite-create.js';

process.once('message', (req: CreateRequest) => {
  const reply = (m: CreateReply) => process.send!(m, () => process.exit(m.t === 'created' ? 0 : 1));
  (async () => {
    const db = await openPglite(req.dir, { sharedBuffers: req.sharedBuffers, settings: req.settings });
    try {
      return await migrate(db);
    } finally {
      await db.close();
    }
  })().then(
    (applied) => reply({ t: 'created', applied }),
    (e: unknown) => reply(isMssError(e) ? { t: 'failed', code: e.code, details: e.details, message: e.message } : { t: 'failed', message: e instanceof Error ? e.message : String(e) }),
  );
});
