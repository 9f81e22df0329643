import type { Command } from 'commander';
import { describeConfig } from '../../core/config/index.js';
import { action, configFrom, withConfigOptions } from '../cli.js';

export function registerConfig(program: Command) {
  withConfigOptions(
    program
      .command('config')
      .description('print every setting with its environment variable, current value and meaning; checks the configuration')
      .option('--json', 'machine-readable output'),
  ).action(
    action(async (opts: { json?: boolean; config?: string; dataDir?: string }) => {
      const rows = describeConfig(configFrom(opts));
      if (opts.json) {
        process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
        return;
      }
      for (const r of rows) process.stdout.write(`${r.env.padEnd(28)} ${r.value || '(unset)'}\n${' '.repeat(29)}${r.doc}\n`);
    }),
  );
}
