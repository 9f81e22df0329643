import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/index.js';
import type { Db } from '../db/types.js';
import type { Logger } from '../logger.js';
import { Keyring, keysDir } from './keyring.js';

export { Keyring, keysDir } from './keyring.js';

const localRing = (config: Config) => existsSync(join(keysDir(config.dataDir), 'keyring.json'));

/**
 * The platform's keyring, from the database (core/crypt/keyring.ts): created with its first
 * keys by the first start when anything is encrypted at rest (crypt.mailStore, crypt.spool);
 * opened as well when encryption was turned off afterwards, so that what was sealed before
 * stays readable.
 */
export async function platformKeyring(config: Config, db: Db): Promise<Keyring | undefined> {
  const on = config.crypt.mailStore || config.crypt.spool;
  if (!on && !localRing(config) && !Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM crypt_keyring')).rows[0].n)) return undefined;
  return Keyring.open(db, config.dataDir, config.crypt.masterKey);
}

/** The local copy of the keyring, for what runs beside the platform on its data directory (`mss backup`'s Dovecot). */
export function localKeyring(config: Config): Keyring | undefined {
  return localRing(config) ? Keyring.openLocal(config.dataDir, config.crypt.masterKey) : undefined;
}

/**
 * Reads the database's keyring every crypt.keyringPoll, so a rotation made on another node
 * reaches this one's Dovecot (keyring.onChange) without a restart. PostgreSQL only: the
 * embedded database has one process, and `mss crypt rotate` needs it stopped.
 */
export function watchKeyring(keyring: Keyring, db: Pick<Db, 'kind'>, everyMs: number, log: Pick<Logger, 'error'>): (() => void) | undefined {
  if (db.kind !== 'pg' || everyMs <= 0) return undefined;
  const timer = setInterval(() => {
    keyring.reload().catch((e) => log.error({ err: e }, 'could not read the keyring from the database'));
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** The spool's body cipher (smtp/body-cipher.ts): seals new bodies when `seal` (crypt.spool), opens sealed ones always. */
export function spoolCipher(keyring: Keyring | undefined, seal: boolean) {
  if (!keyring) return undefined;
  return {
    seal: (plain: Buffer, aad: string) => (seal ? keyring.sealBody(plain, aad) : null),
    open: (key: string, data: Buffer, aad: string) => keyring.openBodyFresh(key, data, aad),
  };
}
