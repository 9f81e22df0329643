import { Command, Option } from 'commander';
import { ConfigError, loadConfig, type Config, type DeepPartial } from '../core/config/index.js';
import { isMssError } from '../core/errors.js';
import { migrate, openDb, type Db } from '../core/db/index.js';

/**
 * Shared by every `mss` subcommand: --config/--data-dir flags, config loading, and the
 * rule that a failure prints one clear line per problem and exits non-zero, never a
 * bare stack trace (the stack only with MSS_LOG_LEVEL=debug).
 */
export function withConfigOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('-c, --config <file>', 'JSON configuration file (also MSS_CONFIG_FILE)'))
    .addOption(new Option('-d, --data-dir <dir>', 'data directory (also MSS_DATA_DIR, default ./data)'));
}

export function configFrom(opts: { config?: string; dataDir?: string }, overrides: DeepPartial<Config> = {}): Config {
  return loadConfig({ file: opts.config, overrides: { ...overrides, ...(opts.dataDir ? { dataDir: opts.dataDir } : {}) } });
}

export class ExitError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export function reportAndExit(e: unknown): never {
  if (e instanceof ConfigError) {
    for (const p of e.problems) process.stderr.write(`mss: ${p}\n`);
    process.exit(2);
  }
  if (e instanceof ExitError) {
    if (e.message) process.stderr.write(`mss: ${e.message}\n`);
    process.exit(e.exitCode);
  }
  if (isMssError(e)) {
    process.stderr.write(`mss: ${e.message}\n`);
    if (process.env.MSS_LOG_LEVEL === 'debug' && e.cause) process.stderr.write(`${(e.cause as Error).stack ?? e.cause}\n`);
    process.exit(1);
  }
  const err = e as Error;
  process.stderr.write(`mss: unexpected error: ${err?.message ?? String(e)}\n`);
  if (process.env.MSS_LOG_LEVEL === 'debug') process.stderr.write(`${err?.stack}\n`);
  else process.stderr.write('mss: (set MSS_LOG_LEVEL=debug to see the stack trace)\n');
  process.exit(1);
}

/** Wraps a command action so that every error goes through reportAndExit. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void | number>) {
  return async (...args: A) => {
    try {
      const code = await fn(...args);
      if (typeof code === 'number' && code !== 0) process.exitCode = code;
    } catch (e) {
      reportAndExit(e);
    }
  };
}

/** Opens the configured database (migrated) for one command and closes it afterwards. */
export async function withDb<T>(opts: { config?: string; dataDir?: string }, fn: (db: Db, config: Config) => Promise<T>): Promise<T> {
  const config = configFrom(opts);
  const db = await openDb(config);
  try {
    await migrate(db);
    return await fn(db, config);
  } finally {
    await db.close();
  }
}
