import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { usesDevPki, type Config } from '../core/config/index.js';
import type { Db } from '../core/db/index.js';
import { MssError } from '../core/errors.js';
import { Journal, type JournalOptions, type Timestamper, type TokenVerifier } from '../core/journal/index.js';
import { commandLogger, type Logger } from '../core/logger.js';
import { ensureDevPki } from '../certs/pki.js';
import { createHttpTimestamper, loadTsa, verifyTimestampResponse } from '../certs/tsa.js';

// How the journal is sealed, for the platform and for every `mss` command alike: the same
// timestamping authority, batch size and anchor file. A command seals its own events
// before it exits (withSealedJournal in cli.ts), so nothing it wrote waits for the next
// start of the platform to be sealed.

/** Where each seal leaves its mark outside the database (see core/journal/anchor.ts). */
export const journalAnchorFile = (config: Config) => join(config.dataDir, 'journal', 'anchor.json');

/** The built-in TSA from the configured files, or an external one (tsa.url). */
export async function journalTimestamping(config: Config): Promise<{ timestamper: Timestamper; verifier: TokenVerifier; tsa?: Awaited<ReturnType<typeof loadTsa>> }> {
  const read = (file: string, what: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch (e) {
      throw new MssError('FILE_UNREADABLE', { what, file, reason: (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message });
    }
  };
  const verifier: TokenVerifier = {
    verify: (tsr, data) =>
      verifyTimestampResponse(tsr, data, { caPems: [read(config.tsa.caFile, 'TSA trust anchors (tsa.caFile)')], untrustedPems: [read(config.tsa.chainFile, 'TSA chain (tsa.chainFile)')] }),
  };
  if (config.tsa.url) return { timestamper: createHttpTimestamper(config.tsa.url), verifier };
  const tsa = await loadTsa(config);
  return { timestamper: tsa, verifier, tsa };
}

/** Options of a journal that seals (everything but the timestamping, which callers load once). */
export function sealingOptions(config: Config, log?: Logger): Omit<JournalOptions, 'timestamper' | 'verifier'> {
  return { log, sealBatch: config.journal.sealBatch, sealIntervalMs: config.journal.sealInterval, anchorFile: journalAnchorFile(config) };
}

/**
 * A journal for one `mss` command, able to seal. The timestamping authority is loaded
 * now, before the command changes anything: a command that could not seal what it
 * journals refuses to run (the development PKI is created first when `npm start` would).
 */
export async function commandJournal(config: Config, db: Db): Promise<Journal> {
  const log = commandLogger();
  let timestamping;
  try {
    if (config.pki.autoInit && usesDevPki(config)) await ensureDevPki(config, log);
    timestamping = await journalTimestamping(config);
  } catch (e) {
    throw new MssError('JOURNAL_CANNOT_SEAL', { reason: (e as Error).message }, { cause: e });
  }
  return new Journal(db, { ...sealingOptions(config, log), timestamper: timestamping.timestamper, verifier: timestamping.verifier });
}
