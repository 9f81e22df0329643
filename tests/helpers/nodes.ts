// What the tests that run `mss start` processes with most listeners off (tests/nodes, tests/crash) share.
import { randomBytes } from 'node:crypto';

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
 * The encryption-at-rest master key several nodes of one database share (MSS_CRYPT_MASTER_KEY):
 * the keyring itself is in the database (core/crypt/keyring.ts), each node writing its local
 * copy from it, so nothing is copied between data directories. Nodes each left to generate a
 * development master key would not open the keyring the first of them made.
 */
export function sharedMasterKey(): { MSS_CRYPT_MASTER_KEY: string } {
  return { MSS_CRYPT_MASTER_KEY: randomBytes(32).toString('hex') };
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
