import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { Keyring, spoolCipher } from '../../core/crypt/index.js';
import { resealBodies } from '../../smtp/index.js';
import { action, configFrom, withConfigOptions, withJournal } from '../cli.js';

type Opts = { config?: string; dataDir?: string; reseal?: boolean };

export function registerCrypt(program: Command) {
  const crypt = program.command('crypt').description('encryption at rest: the keys of the mail store (Dovecot mail_crypt) and of the bodies waiting in the database');

  withConfigOptions(crypt.command('status').description('the keyring under <dataDir>/keys: its key generations and the one new data is encrypted with')).action(
    action(async (opts: Opts) => {
      const c = configFrom(opts);
      const ring = Keyring.open(c.dataDir, c.crypt.masterKey, { create: false });
      process.stdout.write(`keyring ${ring.dir}: ${ring.ids.length} generation(s) ${ring.ids.join(', ')}; current ${ring.current}\n`);
      process.stdout.write(`mail store encryption (crypt.mailStore): ${c.crypt.mailStore ? 'on' : 'off'}; spool encryption (crypt.spool): ${c.crypt.spool ? 'on' : 'off'}\n`);
    }),
  );

  withConfigOptions(
    crypt
      .command('rotate')
      .description(
        'make a new generation of keys and encrypt new data with it: new mail files (Dovecot) and new spool rows. Older keys stay in the keyring, so older mail and rows stay readable. ' +
          'A running platform takes the new keys at its next start (on the embedded database it must be stopped for this command). Journalled (crypt.rotated).',
      )
      .option('--reseal', 'also re-encrypt, with the new key, the message bodies still waiting in the database (spool, outbound queue), and seal those left in clear'),
  ).action(
    action(async (opts: Opts) =>
      withJournal(opts, async (db, c, journal) => {
        const ring = Keyring.open(c.dataDir, c.crypt.masterKey, { create: false });
        const previous = ring.current;
        const id = ring.rotate();
        process.stdout.write(`new key generation ${id} (was ${previous}): new mail and spool rows are encrypted with it from the next start of the platform\n`);
        const resealed = opts.reseal ? await resealBodies(db, spoolCipher(ring, true)!, id) : [];
        for (const r of resealed) process.stdout.write(`${r.table}: ${r.count} waiting bodies re-encrypted with ${id}\n`);
        await journal.append({ type: 'crypt.rotated', actor: `cli:${userInfo().username}`, subject: id, details: { previous, resealed: Object.fromEntries(resealed.map((r) => [r.table, r.count])) } });
      }),
    ),
  );
}
