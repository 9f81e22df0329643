import pino, { type Logger } from 'pino';
import type { Config } from './config/index.js';

export type { Logger } from 'pino';

/**
 * One JSON line per protocol event for machines; pino-pretty when a person watches a
 * terminal. Modules take a child logger named after themselves (`log.child({ mod: 'smtp' })`).
 */
export function createLogger(c: Pick<Config, 'log'>, dest?: pino.DestinationStream): Logger {
  const pretty = c.log.format === 'pretty' || (c.log.format === 'auto' && process.stdout.isTTY && !dest);
  const opts: pino.LoggerOptions = {
    level: c.log.level,
    base: undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ['password', '*.password', 'secret', '*.secret', 'authorization', 'accessToken', '*.accessToken', 'token', '*.token', 'clientSecret', '*.clientSecret'], censor: '***' },
  };
  if (pretty) {
    return pino({ ...opts, transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } });
  }
  return dest ? pino(opts, dest) : pino(opts);
}

/**
 * The logger of a one-shot `mss` command: warnings and errors, as JSON lines, on stderr —
 * stdout is the command's own output, which scripts read.
 */
export const commandLogger = (): Logger => createLogger({ log: { level: 'warn', format: 'json' } }, pino.destination(2));

/** A logger that drops everything (tests that do not look at logs, CLI one-shots). */
export const silentLogger: Logger = pino({ level: 'silent' });
