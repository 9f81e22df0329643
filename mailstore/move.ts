// Moving a box to a back end of another pair (issue 17: rebalancing, retiring a pair),
// online, with Dovecot's own tools. The mover talks to each back end's doveadm server
// (TCP+TLS, the shared secret's doveadm password) with `doveadm -S`: the back end's own
// Dovecot runs the command, with its mail location and its mail_crypt keys, so the mover
// needs neither and may run on any node. In order, each step named in the error that
// stops it:
//   copy     doveadm backup source → target, the box in use meanwhile (the bulk);
//   freeze   the placement row frozen (frozen_until): the fronts hold deliveries (451,
//            the spool retries) and logins for the box; the mover waits out their map cache;
//   final    the source's pair synced into the source (what a fallback delivery left
//            there), then one more incremental backup source → target;
//   replica  the target synced into its own pair (dsync does not tell the replicator);
//   verify   the target holds every message of the source (mailbox and GUID);
//   switch   the row names the target, unfrozen — only while the freeze still holds, so a
//            move that outlived it (writes may have resumed) is not switched;
//   cleanup  after the switch has committed: the source and its pair expunge the box.
// A failure before the switch unfreezes the box where it was and drops the target's partial
// copy; a failure at cleanup leaves the box moved and says which old copies remain.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, isIP, type AddressInfo, type Server } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Db } from '../core/db/index.js';
import { run } from '../core/backup/database.js';
import { doveadmPassword } from './dovecot.js';
import { BACKEND_FRESH_SECONDS, inPair, MAP_CACHE_MS, moveEnds, PlacementError, type BackendRow } from './placement.js';

type Q = Pick<Db, 'query'>;

export const MOVE_STEPS = ['copy', 'freeze', 'final', 'replica', 'verify', 'switch', 'cleanup'] as const;
export type MoveStep = (typeof MOVE_STEPS)[number];

export class MoveError extends Error {
  constructor(
    readonly step: MoveStep,
    message: string,
    /** Where the box is after the failure. */
    readonly on: string,
  ) {
    super(message);
  }
}

export interface MoveOptions {
  doveadm: string;
  /** The secret every node of the store shares (mailstore.secretFile): doveadm's password derives from it. */
  sharedSecret: string;
  /** The CA the back ends' certificates chain to. */
  caFile: string;
  progress?: (line: string) => void;
  /** How long the box may stay frozen at most (deliveries wait, logins are refused meanwhile). */
  freezeSeconds?: number;
  /** How long the fronts may go on using what they read of the map before the freeze. */
  settleMs?: number;
}

export interface MoveResult {
  from: string;
  to: string;
  messages: number;
  removedFrom: string[];
}

/**
 * A doveadm client of the back ends' doveadm servers: its own configuration, the password in
 * a private file. doveadm's client (2.3) speaks TLS to a server only when a passdb proxy
 * lookup says so, never for -S host:port: it is given a loopback port instead, which this
 * process forwards over TLS, the back end's certificate checked against the CA.
 */
async function doveadmClient(o: MoveOptions) {
  const dir = mkdtempSync(join(tmpdir(), 'mss-move-'));
  const conf = join(dir, 'doveadm.conf');
  writeFileSync(conf, `base_dir = ${dir}\ndoveadm_password = ${doveadmPassword(o.sharedSecret)}\n`, { mode: 0o600 });
  const ca = readFileSync(o.caFile);
  const tunnels = new Map<string, { server: Server; port: number }>();
  const tunnel = async (b: BackendRow) => {
    const key = `${b.host}:${b.doveadm_port}`;
    let t = tunnels.get(key);
    if (!t) {
      const server = createServer((plain) => {
        const sealed = tlsConnect({ host: b.host, port: b.doveadm_port, ca, servername: isIP(b.host) ? undefined : b.host, minVersion: 'TLSv1.2' });
        plain.pipe(sealed).pipe(plain);
        plain.on('error', () => sealed.destroy());
        sealed.on('error', () => plain.destroy());
        plain.on('close', () => sealed.destroy());
        sealed.on('close', () => plain.destroy());
      });
      await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', () => resolve()));
      t = { server, port: (server.address() as AddressInfo).port };
      tunnels.set(key, t);
    }
    return t.port;
  };
  return {
    on: async (b: BackendRow, cmd: string, box: string, args: string[], format: string[] = []) => run(o.doveadm, ['-c', conf, ...format, cmd, '-S', `127.0.0.1:${await tunnel(b)}`, '-u', box, ...args]),
    close: () => {
      for (const t of tunnels.values()) t.server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function moveAcrossPairs(db: Q, address: string, to: string, o: MoveOptions): Promise<MoveResult> {
  const { box, target } = await moveEnds(db, address, to);
  const a = box.address;
  if (inPair(box, target)) throw new PlacementError(`${to} is in the pair of ${box.backend}, which holds ${a}: its replica is there already, only the map changes (moveBox)`);
  const fresh = async (name: string) => (await db.query<BackendRow & { alive: boolean }>('SELECT *, seen_at > now() - make_interval(secs => $2) AS alive FROM mailstore_backends WHERE name = $1', [name, BACKEND_FRESH_SECONDS])).rows[0];
  const source = (await fresh(box.backend))!;
  const sourcePair = box.partner ? await fresh(box.partner) : undefined;
  const targetPair = target.partner ? await fresh(target.partner) : undefined;
  const targetNow = (await fresh(to))!;
  const checks: Array<[(BackendRow & { alive: boolean }) | undefined, string]> = [
    [source, 'it holds the box'],
    [targetNow, 'it is to hold the box'],
    [sourcePair, 'its copy may hold mail the source lacks, and must be removed'],
    [targetPair, 'it is to hold the replica'],
  ];
  for (const [b, why] of checks) {
    if (b && !b.alive) throw new PlacementError(`${b.name} has not been seen for ${BACKEND_FRESH_SECONDS} s (${why}): ${a} stays on ${box.backend}`);
  }
  if (box.partner && !sourcePair) throw new PlacementError(`${box.partner}, the pair of ${box.backend}, is not registered: ${a} stays on ${box.backend}`);
  if (target.partner && !targetPair) throw new PlacementError(`${target.partner}, the pair of ${to}, is not registered: ${a} stays on ${box.backend}`);

  const say = o.progress ?? (() => {});
  const dv = await doveadmClient(o);
  const tcps = `tcps:${target.host}:${target.doveadm_port}`;
  const settle = o.settleMs ?? MAP_CACHE_MS + 1000;
  const freezeSeconds = o.freezeSeconds ?? 300;
  let step: MoveStep = 'copy';
  let switched = false;
  let frozenByUs = false;
  try {
    say(`copy: ${a} from ${source.name} to ${to} (doveadm backup; the box stays in use)`);
    await dv.on(source, 'backup', a, [tcps]);

    step = 'freeze';
    const frozen = await db.query(
      `UPDATE mailstore_placement SET moving_to = $3, frozen_until = now() + make_interval(secs => $4)
       WHERE address = $1 AND backend = $2 AND (frozen_until IS NULL OR frozen_until <= now())`,
      [a, source.name, to, freezeSeconds],
    );
    if (!frozen.rowCount) throw new Error(`${a} was moved or frozen by another move meanwhile`);
    frozenByUs = true;
    say(`freeze: deliveries to ${a} wait and its logins are refused for a moment (${settle} ms for every node to see it)`);
    await sleep(settle);

    step = 'final';
    if (sourcePair) {
      say(`final: ${box.partner} synced into ${source.name}`);
      await dv.on(source, 'sync', a, ['-d', '-l', '30']);
    }
    say(`final: last incremental copy from ${source.name} to ${to}`);
    await dv.on(source, 'backup', a, ['-l', '30', tcps]);

    step = 'replica';
    if (targetPair) {
      say(`replica: ${to} synced into its pair ${targetPair.name}`);
      await dv.on(target, 'sync', a, ['-d', '-l', '30']);
    }

    step = 'verify';
    const [have, got] = [await messages(dv, source, a), await messages(dv, target, a)];
    const missing = [...have].filter((m) => !got.has(m));
    if (missing.length) throw new Error(`${missing.length} of ${have.size} messages are not on ${to} after the copy`);

    step = 'switch';
    const sw = await db.query(
      `UPDATE mailstore_placement SET backend = $3, moving_to = NULL, frozen_until = NULL, placed_at = now()
       WHERE address = $1 AND backend = $2 AND moving_to = $3 AND frozen_until > now()`,
      [a, source.name, to],
    );
    if (!sw.rowCount) throw new Error(`the freeze ran out before the copy ended (more than ${freezeSeconds} s): writes may have resumed on ${source.name}`);
    switched = true;
    say(`switch: ${a} is on ${to} (replica on ${targetPair?.name ?? 'none'}); every node follows within ${MAP_CACHE_MS} ms`);

    step = 'cleanup';
    const removedFrom: string[] = [];
    // A straggler (a delivery already under way before the freeze, landed after the copy) stays where it is.
    const still = [...(await messages(dv, source, a))].filter((m) => !got.has(m));
    if (still.length) throw new Error(`${still.length} messages reached ${source.name} after the last copy`);
    for (const b of [source, sourcePair].filter((x): x is NonNullable<typeof x> => !!x)) {
      await dv.on(b, 'expunge', a, ['mailbox', '*', 'all']);
      removedFrom.push(b.name);
      say(`cleanup: ${a} emptied on ${b.name}`);
    }
    return { from: source.name, to, messages: have.size, removedFrom };
  } catch (e) {
    const why = (e as Error).message;
    if (switched) throw new MoveError(step, `${a} is on ${to}, but its old copies on ${[source.name, sourcePair?.name].filter(Boolean).join(' and ')} were not all removed (${step}): ${why}`, to);
    // Where the row says it is: a switch whose answer was lost may have committed.
    const row = (await db.query<{ backend: string; frozen: boolean }>('SELECT backend, coalesce(frozen_until > now(), false) AS frozen FROM mailstore_placement WHERE address = $1', [a])).rows[0];
    if (row?.backend === to) throw new MoveError(step, `${a} is on ${to} (the switch committed), but ${step} reported: ${why}`, to);
    // Another move holds the box (its freeze, not ours): its copy on the target is left alone.
    if (!frozenByUs && row?.frozen) throw new MoveError(step, `the move of ${a} to ${to} failed at ${step}: ${why}; ${a} stays on ${row.backend}`, row.backend);
    if (frozenByUs) await db.query('UPDATE mailstore_placement SET moving_to = NULL, frozen_until = NULL WHERE address = $1 AND moving_to = $2', [a, to]);
    // The target's partial copy is nobody's: dropped (it and its replica), best effort.
    for (const b of [target, targetPair].filter((x): x is NonNullable<typeof x> => !!x)) await dv.on(b, 'expunge', a, ['mailbox', '*', 'all']).catch(() => {});
    throw new MoveError(step, `the move of ${a} to ${to} failed at ${step}: ${why}; ${a} stays on ${source.name}, in use`, source.name);
  } finally {
    dv.close();
  }
}

/** The box's messages as "mailbox GUID" (dsync keeps both). */
async function messages(dv: Awaited<ReturnType<typeof doveadmClient>>, b: BackendRow, box: string): Promise<Set<string>> {
  const out = await dv.on(b, 'fetch', box, ['mailbox guid', 'mailbox', '*', 'all'], ['-f', 'tab']);
  return new Set(out.split('\n').slice(1).filter(Boolean));
}
