// A node's Dovecot follows the keyring of the database (core/crypt/keyring.ts): a generation
// made by `mss crypt rotate` on any node restarts it with the new key pair, so the mail it
// saves is encrypted with the current key and the mail its pair saved with it stays readable.
import { watchKeyring, type Keyring } from '../core/crypt/index.js';
import type { Db } from '../core/db/types.js';
import type { Logger } from '../core/logger.js';
import type { Mailstore } from './dovecot.js';

/** Polls the keyring every `everyMs` (PostgreSQL; core/crypt watchKeyring) and restarts Dovecot on a new generation; returns the stop. */
export function followKeyring(keyring: Keyring, db: Pick<Db, 'kind'>, everyMs: number, mailstore: Pick<Mailstore, 'reloadKeys'>, log: Pick<Logger, 'info' | 'error'>): () => void {
  keyring.onChange((added) => {
    log.info({ added, current: keyring.current }, 'the keyring has a new generation (database)');
    mailstore.reloadKeys?.().catch((e) => log.error({ err: e }, "could not restart the mail store (Dovecot) with the keyring's new generation"));
  });
  const unwatch = watchKeyring(keyring, db, everyMs, log);
  return () => unwatch?.();
}
