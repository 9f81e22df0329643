// What the tests that run `mss start` processes with most listeners off (tests/nodes, tests/crash) share.
import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Keyring, keysDir } from '../../core/crypt/keyring.js';

/**
 * A node's listeners that these tests do not use, off (port 0 = not opened, or any free
 * port for the always-on ones), and no demo data: each test then sets the ports it talks to.
 */
export const unusedListenersEnv = {
  MSS_SMTP_MX_PORT: '0',
  MSS_SMTP_SUBMISSIONS_PORT: '0',
  MSS_LDAP_PORT: '0',
  MSS_ADMIN_PORT: '0',
  MSS_WEBMAIL_PORT: '0',
  MSS_FHIR_PORT: '0',
  MSS_DEMO_ENABLED: 'false',
  MSS_IMAP_PORT: '0',
  MSS_IMAP_STARTTLS_PORT: '0',
} as const;

/**
 * One set of encryption-at-rest keys for several nodes of one store: the keyring is made
 * once and copied into each data directory, all under the same master key
 * (MSS_CRYPT_MASTER_KEY in the returned env). Nodes that each generated their own would
 * seal spool bodies (crypt.spool, on by default) that no other node can open, so a
 * surviving node could not deliver what a killed one had accepted.
 */
export function sharedKeys(dataDirs: string[]): { MSS_CRYPT_MASTER_KEY: string } {
  const masterKey = randomBytes(32).toString('hex');
  const origin = mkdtempSync(join(tmpdir(), 'mss-keys-'));
  Keyring.open(origin, masterKey);
  for (const d of dataDirs) cpSync(keysDir(origin), keysDir(d), { recursive: true });
  return { MSS_CRYPT_MASTER_KEY: masterKey };
}

/**
 * Polls until check() answers true, at most `tries` times `everyMs` apart; then fails
 * saying what was waited for and, when given, what `detail()` shows of the state — never
 * the runner's test timeout. The bound counts attempts, not wall-clock time: each try may
 * take as long as the loaded machine needs.
 */
export async function poll(what: string, check: () => Promise<boolean>, o: { tries: number; everyMs: number; detail?: () => Promise<unknown> }): Promise<void> {
  let last: unknown;
  for (let i = 0; i < o.tries; i++) {
    try {
      if (await check()) return;
      last = undefined;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, o.everyMs));
  }
  const detail = o.detail ? await o.detail().catch((e) => `(could not read the state: ${(e as Error).message})`) : undefined;
  throw new Error(
    `gave up waiting for ${what} after ${o.tries} tries ${o.everyMs} ms apart` +
      (last ? `; last try failed: ${(last as Error).message ?? String(last)}` : '') +
      (detail !== undefined ? `; state: ${typeof detail === 'string' ? detail : JSON.stringify(detail)}` : ''),
  );
}
