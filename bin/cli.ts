import { Command, Option } from 'commander';
import { ConfigError, loadConfig, type Config, type DeepPartial } from '../core/config/index.js';
import { MssError, isMssError } from '../core/errors.js';
import { migrate, openDb, type Db } from '../core/db/index.js';
import { Journal } from '../core/journal/index.js';
import { commandJournal } from './sealing.js';

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

/**
 * Opens the database and a journal for a command that journals what it does, and seals
 * every event before returning — when the command succeeds and when it fails — so that no
 * command leaves unsealed events behind for the next start of the platform. The
 * timestamping authority is loaded before the command runs: one that cannot seal does
 * nothing. If the seal itself fails (an external TSA out of reach) the command says so
 * and exits 1; the events are stored, and `mss journal seal` seals them later.
 */
export async function withJournal<T>(
  opts: { config?: string; dataDir?: string },
  fn: (db: Db, config: Config, journal: Journal) => Promise<T>,
  overrides: DeepPartial<Config> = {},
): Promise<T> {
  const config = configFrom(opts, overrides);
  const db = await openDb(config);
  try {
    await migrate(db);
    const journal = await commandJournal(config, db);
    try {
      return await fn(db, config, journal);
    } finally {
      await sealBeforeExit(db, journal);
    }
  } finally {
    await db.close();
  }
}

async function sealBeforeExit(db: Db, journal: Journal): Promise<void> {
  try {
    await journal.stop();
  } catch (e) {
    const { rows } = await db.query<{ n: number }>('SELECT (SELECT seq FROM journal_head) - coalesce((SELECT max(last_seq) FROM journal_seals), 0) AS n').catch(() => ({ rows: [{ n: NaN }] }));
    const err = new MssError('JOURNAL_SEAL_FAILED', { count: Number.isNaN(rows[0].n) ? 'some' : rows[0].n, reason: (e as Error).message }, { cause: e });
    process.stderr.write(`mss: ${err.message}\n`);
    process.exitCode = 1;
  }
}

/** The journal for commands that only read it (verify, list, export): it cannot append. */
export function readJournal(db: Db): Pick<Journal, 'verify' | 'list' | 'proof' | 'get'> {
  return new Journal(db);
}
