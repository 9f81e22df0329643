import type { Command } from 'commander';
import { maskUrl } from '../../core/config/index.js';
import { createLogger } from '../../core/logger.js';
import { action, configFrom, withConfigOptions } from '../cli.js';
import { seedDemo } from '../demo.js';
import { startPlatform } from '../platform.js';

export function registerStart(program: Command) {
  withConfigOptions(
    program
      .command('start')
      .description('start the platform (database, PKI, journal, HTTP; mail servers as they are added) and run until Ctrl-C / SIGTERM')
      .option('--http-port <port>', 'port of the HTTP listener (overrides MSS_HTTP_PORT)'),
  ).action(
    action(async (opts: { config?: string; dataDir?: string; httpPort?: string }) => {
      const config = configFrom(opts, opts.httpPort !== undefined ? { http: { port: opts.httpPort as unknown as number } } : {});
      const log = createLogger(config);
      const platform = await startPlatform(config, log);
      // Seeded after the start, through the running servers; a failure leaves a working platform.
      const demo = await seedDemo(platform, log).catch((e) => {
        log.error({ err: e }, 'demo data could not be created');
        return null;
      });
      await new Promise<void>((resolve) => {
        let stopping = false;
        const onSignal = (sig: string) => {
          if (stopping) return;
          stopping = true;
          log.info({ signal: sig }, 'stopping');
          platform
            .stop()
            .then(() => {
              process.stdout.write('stopped.\n');
              resolve();
            })
            .catch((e) => {
              log.error({ err: e }, 'error while stopping');
              process.exitCode = 1;
              resolve();
            });
        };
        // Handlers first, banner second: whoever reads "Press Ctrl-C" may signal at once.
        process.once('SIGINT', () => onSignal('SIGINT'));
        process.once('SIGTERM', () => onSignal('SIGTERM'));
        const lines = [
          '',
          `MSSanté operator platform is up — operator domain ${config.operator.domain}`,
          `  data directory   ${config.dataDir}`,
          `  database         ${config.database.url ? maskUrl(config.database.url) : platform.db.target}`,
          ...platform.endpoints.map((e) => `  ${e.name.padEnd(16)} ${e.url}`),
          `  journal          check it with: npx mss journal verify${opts.dataDir ? ` --data-dir ${opts.dataDir}` : ''} ${config.database.url ? '' : ' (after stopping: the embedded database is single-process)'}`,
          ...(demo
            ? [
                '',
                `Demo data (MSS_DEMO_ENABLED=false to start empty) — logins also in ${demo.file}:`,
                ...demo.logins.map((l) => `  ${l.login.padEnd(14)} ${l.password}   ${l.who}; boxes ${l.boxes.join(', ')}`),
                `  ${demo.lab.address}: application certificate ${demo.lab.certFile}`,
                '  Thunderbird: IMAP user name = the box address (for a shared box: box*login), password as above;',
                '  webmail API: POST /api/v1/login {"login":"jeanne.martin","password":"…"} then Authorization: Bearer <token>.',
                '',
              ]
            : []),
          '',
          'Press Ctrl-C to stop.',
          '',
        ];
        process.stdout.write(lines.join('\n'));
      });
    }),
  );
}
