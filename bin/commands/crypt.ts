import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { Keyring, keysDir, spoolCipher } from '../../core/crypt/index.js';
import { MssError } from '../../core/errors.js';
import { resealBodies } from '../../smtp/index.js';
import { action, configFrom, withConfigOptions, withDb, withJournal } from '../cli.js';

type Opts = { config?: string; dataDir?: string; reseal?: boolean };

export function registerCrypt(program: Command) {
  const crypt = program.command('crypt').description('encryption at rest: the keys of the mail store (Dovecot mail_crypt) and of the bodies waiting in the database');

  withConfigOptions(crypt.command('status').description('the keyring (in the database, copied to <dataDir>/keys): its key generations and the one new data is encrypted with')).action(
    action(async (opts: Opts) => {
      const c = configFrom(opts);
      const show = (ring: Keyring, where: string) => {
        process.stdout.write(`keyring (${where}): ${ring.ids.length} generation(s) ${ring.ids.join(', ')}; current ${ring.current}\n`);
        process.stdout.write(`mail store encryption (crypt.mailStore): ${c.crypt.mailStore ? 'on' : 'off'}; spool encryption (crypt.spool): ${c.crypt.spool ? 'on' : 'off'}\n`);
      };
      try {
        await withDb(opts, async (db) => show(await Keyring.open(db, c.dataDir, c.crypt.masterKey, { create: false, writeLocal: false }), `database ${db.target}`));
      } catch (e) {
        // The running platform holds the embedded database: its local copy is the same keyring.
        if (!(e instanceof MssError && e.code === 'DATA_DIR_LOCKED')) throw e;
        show(Keyring.openLocal(c.dataDir, c.crypt.masterKey), `local copy ${keysDir(c.dataDir)}, the embedded database being in use`);
      }
    }),
  );

  withConfigOptions(
    crypt
      .command('rotate')
      .description(
        'make a new generation of keys and encrypt new data with it: new mail files (Dovecot) and new spool rows. Older keys stay in the keyring, so older mail and rows stay readable. ' +
          'The new generation is written to the database: running nodes on PostgreSQL take it within crypt.keyringPoll (their Dovecot restarted with the new key pair), or at once for a spool row sealed with it; on the embedded database the platform must be stopped for this command and takes it at its next start. Journalled (crypt.rotated).',
      )
      .option('--reseal', 'also re-encrypt, with the new key, the message bodies still waiting in the database (spool, outbound queue), and seal those left in clear'),
  ).action(
    action(async (opts: Opts) =>
      withJournal(opts, async (db, c, journal) => {
        // The platform writes its local copy from the database (start, crypt.keyringPoll): not this command.
        const ring = await Keyring.open(db, c.dataDir, c.crypt.masterKey, { create: false, writeLocal: false });
        const previous = ring.current;
        const id = await ring.rotate();
        process.stdout.write(`new key generation ${id} (was ${previous}), in the database: running nodes on PostgreSQL encrypt new mail and spool rows with it within ${c.crypt.keyringPoll / 1000} s; an embedded database's platform from its next start\n`);
        const resealed = opts.reseal ? await resealBodies(db, spoolCipher(ring, true)!, id) : [];
        for (const r of resealed) process.stdout.write(`${r.table}: ${r.count} waiting bodies re-encrypted with ${id}\n`);
        await journal.append({ type: 'crypt.rotated', actor: `cli:${userInfo().username}`, subject: id, details: { previous, resealed: Object.fromEntries(resealed.map((r) => [r.table, r.count])) } });
      }),
    ),
  );
}
