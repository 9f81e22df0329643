import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/index.js';
import { Keyring, keysDir } from './keyring.js';

export { Keyring, keysDir } from './keyring.js';

/**
 * The platform's keyring: created with its first keys by the first start when anything is
 * encrypted at rest (crypt.mailStore, crypt.spool); opened as well when encryption was
 * turned off afterwards, so that what was sealed before stays readable.
 */
export function platformKeyring(config: Config): Keyring | undefined {
  const on = config.crypt.mailStore || config.crypt.spool;
  if (!on && !existsSync(join(keysDir(config.dataDir), 'keyring.json'))) return undefined;
  return Keyring.open(config.dataDir, config.crypt.masterKey);
}

/** The spool's body cipher (smtp/body-cipher.ts): seals new bodies when `seal` (crypt.spool), opens sealed ones always. */
export function spoolCipher(keyring: Keyring | undefined, seal: boolean) {
  if (!keyring) return undefined;
  return {
    seal: (plain: Buffer, aad: string) => (seal ? keyring.sealBody(plain, aad) : null),
    open: (key: string, data: Buffer, aad: string) => keyring.openBody(key, data, aad),
  };
}
