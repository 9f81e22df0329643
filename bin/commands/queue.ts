import { userInfo } from 'node:os';
import { InvalidArgumentError, type Command } from 'commander';
import { deleteOutbound, listOutbound, listSpool, retryOutbound } from '../../smtp/index.js';
import { ExitError, action, withConfigOptions, withDb, withJournal } from '../cli.js';

type Opts = { config?: string; dataDir?: string; json?: boolean; state?: string; limit?: string; reason?: string };

const actor = () => `cli:${userInfo().username}`;

/** A queue id or a row count as typed: a positive integer, or a clear refusal (never NaN into SQL). */
const positive = (what: string) => (v: string) => {
  if (!/^\d{1,15}$/.test(v) || Number(v) < 1) throw new InvalidArgumentError(`${what} must be a positive whole number, got ${JSON.stringify(v)}`);
  return v;
};

const print = (opts: Opts, rows: object[], line: (r: any) => string) => {
  if (opts.json) process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
  else if (!rows.length) process.stdout.write('(empty)\n');
  else for (const r of rows) process.stdout.write(line(r) + '\n');
};

const iso = (d: Date | string) => new Date(d).toISOString().replace(/\.\d+Z$/, 'Z');

export function registerQueue(program: Command) {
  const queue = program.command('queue').description('the outbound queue: messages to other operators of the espace de confiance');
  withConfigOptions(queue.command('list').description('list queued, deferred, sent and bounced messages, newest first').option('--state <state>', 'queued | sending | deferred | sent | bounced').option('--limit <n>', 'at most n rows', positive('--limit'), '100').option('--json', 'machine-readable output')).action(
    action(async (opts: Opts) =>
      withDb(opts, async (db) =>
        print(opts, await listOutbound(db, { state: opts.state, limit: Number(opts.limit) }), (r) =>
          `${String(r.id).padStart(6)} ${r.state.padEnd(8)} ${r.domain} ${r.env_from || '<>'} → ${r.rcpts.join(',')} attempts=${r.attempts} next=${iso(r.next_attempt_at)}${r.last_reply ? ` last="${r.last_reply}"` : ''}`,
        ),
      ),
    ),
  );
  withConfigOptions(queue.command('retry').description('make deferred messages due now (all, or one by id); journalled').argument('[id]', 'queue id', positive('the queue id'))).action(
    action(async (id: string | undefined, opts: Opts) =>
      withJournal(opts, async (db, _c, journal) => {
        const n = await retryOutbound(db, id ? Number(id) : undefined);
        await journal.append({ type: 'smtp.queue.retried', actor: actor(), subject: id ?? 'all', details: { count: n } });
        process.stdout.write(`${n} message(s) due now; the running platform sends them within seconds\n`);
      }),
    ),
  );
  withConfigOptions(queue.command('delete').description('give up on one message without a bounce; journalled with the reason').argument('<id>', 'queue id', positive('the queue id')).requiredOption('--reason <text>', 'why the message is given up (kept in the journal)')).action(
    action(async (id: string, opts: Opts) =>
      withJournal(opts, async (db, _c, journal) => {
        if (!(await deleteOutbound(db, Number(id)))) throw new ExitError(`no pending message ${id} in the outbound queue`);
        await journal.append({ type: 'smtp.queue.deleted', actor: actor(), subject: id, details: { reason: opts.reason } });
        process.stdout.write(`message ${id} deleted from the outbound queue\n`);
      }),
    ),
  );
  const spool = program.command('spool').description('the SMTP spool: messages accepted (250) and their local delivery to Dovecot');
  withConfigOptions(spool.command('list').description('list spooled messages, newest first').option('--state <state>', 'queued | done | failed').option('--limit <n>', 'at most n rows', positive('--limit'), '100').option('--json', 'machine-readable output')).action(
    action(async (opts: Opts) =>
      withDb(opts, async (db) =>
        print(opts, await listSpool(db, { state: opts.state, limit: Number(opts.limit) }), (r) =>
          `${String(r.id).padStart(6)} ${r.state.padEnd(6)} ${iso(r.received_at)} ${r.front} ${r.env_from || '<>'} pending=${r.local_rcpts.join(',') || '-'} delivered=${r.delivered_rcpts.length} size=${r.size}${r.last_error ? ` error="${r.last_error}"` : ''}`,
        ),
      ),
    ),
  );
}
