import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { boxPlacement, listBackends, moveBox, PlacementError } from '../../mailstore/placement.js';
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
  withConfigOptions(ms.command('move').description("move a box to the other back end of its pair (where its replica is); the nodes follow within seconds; journalled").argument('<address>', 'the box (BAL) address').argument('<backend>', 'the back end to hold it')).action(
    action(async (address: string, backend: string, opts: Opts) =>
      withJournal(opts, async (db, _c, journal) => {
        try {
          const r = await moveBox(db, address, backend);
          await journal.append({ type: 'mailstore.box.moved', actor: actor(), subject: address.toLowerCase(), details: r });
          process.stdout.write(r.from === r.to ? `${address.toLowerCase()} is already on ${r.to}\n` : `${address.toLowerCase()} moved from ${r.from} to ${r.to}\n`);
        } catch (e) {
          if (e instanceof PlacementError) throw new ExitError(e.message);
          throw e;
        }
      }),
    ),
  );
}
