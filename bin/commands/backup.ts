// `mss backup DIR` and `mss restore DIR` (bin/backup.ts does the steps).
import type { Command } from 'commander';
import { loadConfig } from '../../core/config/index.js';
import { backup, restore } from '../backup.js';
import { action, configFrom, withConfigOptions } from '../cli.js';

type Opts = { config?: string; dataDir?: string };
const say = (cmd: string) => (line: string) => void process.stderr.write(`mss ${cmd}: ${line}\n`);

export function registerBackup(program: Command) {
  withConfigOptions(
    program
      .command('backup')
      .argument('<dir>', 'the backup set: a new directory, or an earlier set to bring up to date')
      .description(
        'back up the platform while it runs, as one consistent set: the database (pg_dump in one snapshot on PostgreSQL; on the embedded database an image taken by the running platform between two transactions), ' +
          'the mail of every box (doveadm backup, i.e. dsync, against the platform\'s Dovecot: incremental into an earlier set), the PKI and keys, the generated secrets and the configuration files; ' +
          'then manifest.json (SHA-256 of every file, the journal head the database holds) sealed by the timestamping authority (manifest.tsr). Progress on stderr. ' +
          'Only the mail is incremental: the database and the files are taken whole at every run. Run as the data directory\'s owner (or root).',
      ),
  ).action(
    action(async (dir: string, o: Opts) => {
      const configFile = o.config ?? process.env.MSS_CONFIG_FILE;
      const m = await backup(configFrom(o), dir, { configFile }, say('backup'));
      process.stdout.write(`backup set ${dir}: ${m.files.length} files, ${m.mail.boxes.length} boxes, journal event ${m.journal.seq}\n`);
    }),
  );

  withConfigOptions(
    program
      .command('restore')
      .argument('<dir>', 'a backup set made by mss backup')
      .description(
        'restore a backup set into a new, empty data directory (--data-dir) or an empty PostgreSQL database (MSS_DATABASE_URL). The set is checked first — the seal of its manifest, then the size and SHA-256 of every file, and no file added — and refused, with the file and what is wrong, before anything is written. ' +
          'Then the files, the database, the mail (doveadm backup -R into a Dovecot on the new data directory); the journal head must be the one the manifest names, its unsealed tail is sealed and the whole journal verified; the LDAP directory is rebuilt from the restored annuaire. ' +
          'Give the same MSS_* settings as the platform had (the manifest lists them, secrets masked).',
      )
      .option('--tsa-ca <file>', "trust anchors for the manifest's seal (default: tsa.caFile of this configuration if it exists, else the set's own copy)"),
  ).action(
    action(async (dir: string, o: Opts & { tsaCa?: string }) => {
      const config = configFrom(o);
      const sourceOf = (m: { dataDir: string }) => loadConfig({ file: o.config, overrides: { dataDir: m.dataDir } });
      const r = await restore(config, dir, { trust: o.tsaCa, sourceOf }, say('restore'));
      process.stdout.write(`restored ${dir} into ${config.dataDir}: journal ${r.journal.events} events verified, ${r.manifest.mail.boxes.length} boxes, ${r.ldapEntries} LDAP entries\n`);
    }),
  );
}
