import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKey, readKey } from 'openpgp';
import { beforeAll, describe, expect, it } from 'vitest';
import { runMss } from '../helpers/mss.js';
import { testPki, tsaEnv } from '../helpers/pki.js';
import { seedPglite } from '../helpers/templates.js';

// `mss bal openpgp` as users run it (compiled `mss`), on the embedded database of a fresh
// data dir (the run's migrated template: creating it is not what is tested here); each
// command opens PGlite in a new process, hence the generous timeout.
describe('mss bal openpgp set / show / remove', { timeout: 600_000 }, () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'mss-openpgp-cli-'));
  seedPglite(dataDir);
  const files = mkdtempSync(join(tmpdir(), 'mss-openpgp-keys-'));
  const box = 'dr.cle@mssante.localhost';
  let env: Record<string, string>;
  beforeAll(async () => void (env = { MSS_PKI_AUTO_INIT: 'false', ...tsaEnv(await testPki()) }));
  const mss = (...args: string[]) => runMss([...args, '--data-dir', dataDir], env);

  it('documents itself', () => {
    // commander wraps the text to the terminal's width: compared with spaces squeezed.
    const help = runMss(['bal', 'openpgp', '--help']);
    expect(help.code).toBe(0);
    const text = help.stdout.replace(/\s+/g, ' ');
    expect(text).toMatch(/stored encrypted to it \(PGP\/MIME, RFC 3156\)/);
    expect(text).toMatch(/set \[options\] <address> <key-file>/);
    expect(text).toMatch(/show \[options\] <address>.*remove \[options\] <address>/);
    expect(runMss(['bal', 'openpgp', 'set', '--help']).stdout.replace(/\s+/g, ' ')).toMatch(/one ASCII-armored public key \(gpg --armor --export ADDRESS > key\.asc\)/);
  });

  it('registers a public key, shows it, refuses a private one with the reason, removes it; all journalled', async () => {
    const pair = await generateKey({ type: 'ecc', curve: 'curve25519Legacy', userIDs: [{ name: 'Dr Clé', email: box }], format: 'armored' });
    const fingerprint = (await readKey({ armoredKey: pair.publicKey })).getFingerprint().toUpperCase();
    writeFileSync(join(files, 'public.asc'), pair.publicKey);
    writeFileSync(join(files, 'private.asc'), pair.privateKey);
    expect(mss('bal', 'create', box, '--type', 'PER', '--owner', '99999999901').code).toBe(0);

    const priv = mss('bal', 'openpgp', 'set', box, join(files, 'private.asc'));
    expect(priv.code).toBe(1);
    expect(priv.stderr).toBe('mss: this is a private (secret) OpenPGP key: register the public key only (gpg --armor --export), and keep the private key with its holder\n');
    const none = mss('bal', 'openpgp', 'show', box);
    expect(none).toMatchObject({ code: 1, stderr: `mss: the mailbox ${box} has no OpenPGP key\n` });

    const set = mss('bal', 'openpgp', 'set', box, join(files, 'public.asc'));
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toBe(`registered OpenPGP key ${fingerprint} (eddsaLegacy ed25519Legacy, Dr Clé <${box}>, does not expire) for ${box}: its mail is stored encrypted from now on\n`);
    expect(mss('bal', 'openpgp', 'show', box).stdout).toMatch(new RegExp(`^${box.replace(/\./g, '\\.')}  ${fingerprint}  eddsaLegacy ed25519Legacy  Dr Clé <`));
    expect(mss('bal', 'openpgp', 'show', box, '--armor').stdout).toMatch(/^-----BEGIN PGP PUBLIC KEY BLOCK-----/);
    expect(mss('bal', 'openpgp', 'remove', box)).toMatchObject({ code: 0, stdout: `removed the OpenPGP key of ${box}\n` });

    const events = mss('journal', 'list', '--prefix', 'bal.openpgp.', '--json')
      .stdout.split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { type: string; subject: string; details: Record<string, unknown> });
    expect(events.map((e) => e.type)).toEqual(['bal.openpgp.removed', 'bal.openpgp.registered', 'bal.openpgp.refused']);
    expect(events.every((e) => e.subject === box)).toBe(true);
    expect(events[2].details.code).toBe('OPENPGP_KEY_PRIVATE');
  });
});
