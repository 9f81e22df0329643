import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { MoveError } from '../../mailstore/move.js';
import { boxPlacement, listBackends, PlacementError } from '../../mailstore/placement.js';
import { mailstoreDoveadm, relocate } from '../../mailstore/relocate.js';
import { ExitError, action, withConfigOptions, withDb, withJournal } from '../cli.js';

type Opts = { config?: string; dataDir?: string; json?: boolean };

const actor = () => `cli:${userInfo().username}`;
const iso = (d: Date | string) => new Date(d).toISOString().replace(/\.\d+Z$/, 'Z');
const out = (opts: Opts, value: unknown, text: string) => process.stdout.write(opts.json ? JSON.stringify(value, null, 2) + '\n' : text + '\n');

/** `mss mailstore`: the back ends of a shared store (mailstore.cluster) and where each box is. */
export function registerMailstore(program: Command) {
  const ms = program.command('mailstore').description('the mail store shared by several nodes (mailstore.cluster): its Dovecot back ends and which one holds each box');
  withConfigOptions(ms.command('backends').description('list the registered back ends, their pair, when each was last seen and how many boxes it holds').option('--json', 'machine-readable output')).action(
    action(async (opts: Opts) =>
      withDb(opts, async (db) => {
        const rows = await listBackends(db);
        out(opts, rows, rows.length ? rows.map((r) => `${r.name.padEnd(16)} ${r.host} imap=${r.imap_port} lmtp=${r.lmtp_port} doveadm=${r.doveadm_port} pair=${r.partner ?? '-'} seen=${iso(r.seen_at)} boxes=${r.boxes}`).join('\n') : '(no back end registered: the store is embedded, or no node with the mailstore role has started)');
      }),
    ),
  );
  withConfigOptions(ms.command('show').description("show which back end holds a box, and its pair (the replica)").argument('<address>', 'the box (BAL) address').option('--json', 'machine-readable output')).action(
    action(async (address: string, opts: Opts) =>
      withDb(opts, async (db) => {
        const p = await boxPlacement(db, address);
        if (!p) throw new ExitError(`${address.toLowerCase()} is not placed on any back end yet: it is placed on its first delivery or login`);
        out(opts, p, `${p.address} on ${p.backend} (replica on ${p.partner ?? 'none'}) since ${iso(p.placed_at)}`);
      }),
    ),
  );
  withConfigOptions(
    ms
      .command('move')
      .description(
        'move a box to another back end. Within its pair (where its replica is) only the map changes. To a back end of another pair the mail is copied ' +
          "first, online, by the back ends' doveadm servers (doveadm backup), then the box is frozen for the last incremental copy (its deliveries wait, " +
          'its logins are refused for a moment), the map switched, and the old pair emptied; a failure at any step leaves the box where it was, in use, ' +
          'and names the step. Prints one line per step; journalled (mailstore.box.moved, move_refused, move_failed). The admin API does the same: POST /api/v1/bals/{address}/move.',
      )
      .argument('<address>', 'the box (BAL) address')
      .argument('<backend>', 'the back end to hold it (mss mailstore backends lists them)')
      .option('--freeze <seconds>', 'longest the box may stay frozen during the last copy (a move that takes longer is not switched)', '300'),
  ).action(
    action(async (address: string, backend: string, opts: Opts & { freeze: string }) =>
      withJournal(opts, async (db, config, journal) => {
        const freezeSeconds = Number(opts.freeze);
        if (!Number.isInteger(freezeSeconds) || freezeSeconds < 5 || freezeSeconds > 3600) throw new ExitError(`--freeze: a whole number of seconds from 5 to 3600, got ${JSON.stringify(opts.freeze)}`);
        try {
          const r = await relocate(
            { db, journal, doveadm: mailstoreDoveadm(config) },
            { address, backend, actor: actor(), freezeSeconds, progress: (line) => process.stdout.write(line + '\n') },
          );
          if (!r.across) process.stdout.write(r.from === r.to ? `${address.toLowerCase()} is already on ${r.to}\n` : `${address.toLowerCase()} moved from ${r.from} to ${r.to} (its pair: the map only)\n`);
          else process.stdout.write(`${address.toLowerCase()} moved from ${r.from} to ${r.to} (${r.messages} messages copied; emptied on ${r.removedFrom.join(', ')})\n`);
        } catch (e) {
          if (e instanceof MoveError || e instanceof PlacementError) throw new ExitError(e.message);
          throw e;
        }
      }),
    ),
  );
}
