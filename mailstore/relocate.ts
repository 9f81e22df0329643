// One box moved to another back end, as `mss mailstore move` and the admin API make it: to
// the other back end of its pair only the map changes (placement.ts moveBox); to another
// pair the mail is copied first (move.ts moveAcrossPairs). Either way journalled: moved,
// refused (with the sentence why, nothing changed) or failed (the step, where the box is).
import { existsSync, readFileSync } from 'node:fs';
import type { Config } from '../core/config/index.js';
import type { Db } from '../core/db/index.js';
import type { Journal } from '../core/journal/index.js';
import { moveAcrossPairs, MoveError, type MoveResult } from './move.js';
import { inPair, moveBox, moveEnds, PlacementError } from './placement.js';

export interface RelocateDeps {
  db: Db;
  journal: Pick<Journal, 'append'>;
  /** What a move to another pair needs (mailstoreDoveadm): absent, such a move is refused. */
  doveadm?: { bin: string; secretFile: string; caFile: string };
}

/** A node's way to the back ends' doveadm servers, from its configuration. */
export const mailstoreDoveadm = (config: Pick<Config, 'mailstore' | 'dataDir' | 'tls'>): NonNullable<RelocateDeps['doveadm']> => ({
  bin: config.mailstore.doveadm,
  secretFile: config.mailstore.secretFile || `${config.dataDir}/dovecot/master-secret`,
  caFile: config.tls.caFile,
});

export interface RelocateRequest {
  address: string;
  backend: string;
  actor: string;
  /** Longest the box may stay frozen for the last copy (a move to another pair). */
  freezeSeconds: number;
  progress?: (line: string) => void;
}

export type Relocation = { from: string; to: string; across: false } | (MoveResult & { across: true });

export interface Relocating {
  /**
   * Within the pair (the map only) or to another pair (copying the mail, minutes for a large
   * box): the admin API answers the first at once and follows the second as a job.
   */
  kind: 'within' | 'across';
  run(): Promise<Relocation>;
}

/** The move, checked: one that cannot be made is refused here, journalled, nothing changed. */
export async function planRelocation(deps: RelocateDeps, r: RelocateRequest): Promise<Relocating> {
  const subject = r.address.toLowerCase();
  const { box, target } = await refusedIf(deps, r, () => moveEnds(deps.db, subject, r.backend));
  if (inPair(box, target)) {
    return {
      kind: 'within',
      run: async () => {
        const m = await refusedIf(deps, r, () => moveBox(deps.db, subject, r.backend));
        if (m.from !== m.to) await deps.journal.append({ type: 'mailstore.box.moved', actor: r.actor, subject, details: m });
        return { ...m, across: false };
      },
    };
  }
  const dv = deps.doveadm;
  const secret = await refusedIf(deps, r, async () => {
    if (!dv) throw new PlacementError(`this process is not given the way to the back ends' doveadm servers (mailstore.doveadm, mailstore.secretFile, tls.caFile): ${subject} stays where it is`);
    if (!existsSync(dv.secretFile)) throw new PlacementError(`mailstore.secretFile (${dv.secretFile}) is missing: the move talks to the back ends' doveadm servers with the secret the store's nodes share`);
    return readFileSync(dv.secretFile, 'utf8').trim();
  });
  return {
    kind: 'across',
    run: async () => {
      try {
        const m = await refusedIf(deps, r, () => moveAcrossPairs(deps.db, subject, r.backend, { doveadm: dv!.bin, sharedSecret: secret, caFile: dv!.caFile, freezeSeconds: r.freezeSeconds, progress: r.progress }));
        await deps.journal.append({ type: 'mailstore.box.moved', actor: r.actor, subject, details: { ...m, across: true } });
        return { ...m, across: true };
      } catch (e) {
        if (e instanceof MoveError) await deps.journal.append({ type: 'mailstore.box.move_failed', actor: r.actor, subject, details: { to: r.backend, step: e.step, on: e.on, error: e.message } });
        throw e;
      }
    },
  };
}

/** planRelocation, then the move itself (`mss mailstore move`). */
export const relocate = async (deps: RelocateDeps, r: RelocateRequest): Promise<Relocation> => (await planRelocation(deps, r)).run();

/** Runs `fn`; a PlacementError it throws (the move cannot be made, nothing changed) is journalled first. */
async function refusedIf<T>(deps: RelocateDeps, r: Pick<RelocateRequest, 'address' | 'backend' | 'actor'>, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof PlacementError) await deps.journal.append({ type: 'mailstore.box.move_refused', actor: r.actor, subject: r.address.toLowerCase(), details: { to: r.backend, reason: e.message } });
    throw e;
  }
}
