import type { Command } from 'commander';
import { migrate, openDb } from '../../core/db/index.js';
import { action, configFrom, withConfigOptions } from '../cli.js';

export function registerDb(program: Command) {
  const db = program.command('db').description('database maintenance');
  withConfigOptions(db.command('migrate').description('apply the pending SQL migrations (also done by "mss start")')).action(
    action(async (opts: { config?: string; dataDir?: string }) => {
      const c = configFrom(opts);
      const handle = await openDb(c);
      try {
        const applied = await migrate(handle);
        process.stdout.write(applied.length ? `applied ${applied.length} migration(s) to ${handle.target}:\n${applied.map((a) => `  ${a}\n`).join('')}` : `${handle.target} is up to date\n`);
      } finally {
        await handle.close();
      }
    }),
  );
}
