#!/usr/bin/env node
import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { fromRoot } from '../core/paths.js';
import { commands } from './commands/index.js';

// `mss … | head` closes the pipe early: that is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

const pkg = JSON.parse(readFileSync(fromRoot('package.json'), 'utf8')) as { version: string };

const program = new Command('mss')
  .description('MSSanté operator platform: mail servers, annuaire, journal, PKI')
  .version(pkg.version)
  .showHelpAfterError('(run "mss --help" or "mss <command> --help" for usage)');

for (const register of commands) register(program);

await program.parseAsync(process.argv);
