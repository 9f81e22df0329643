// Moves of boxes between the shared store's back ends, started from the admin API
// (mailstore/relocate.ts, as `mss mailstore move`): a move within the box's pair changes the
// map only and is answered done; one to another pair copies the mail first (minutes for a
// large box) and is followed as a job, its steps as the mover tells them. Jobs live in this
// process's memory, as the import jobs do; what a move did is in the journal.
import { randomBytes } from 'node:crypto';
import { MssError } from '../../core/errors.js';
import { MoveError } from '../../mailstore/move.js';
import { PlacementError } from '../../mailstore/placement.js';
import { planRelocation, type RelocateDeps, type RelocateRequest, type Relocation } from '../../mailstore/relocate.js';

export interface MoveJob {
  id: string;
  address: string;
  backend: string;
  actor: string;
  state: 'running' | 'done' | 'failed';
  startedAt: Date;
  finishedAt: Date | null;
  /** One line per step, as `mss mailstore move` prints them. */
  steps: string[];
  result: Relocation | null;
  /** A failed move: the step that failed and where the box is (it stays usable there). */
  error: { step: string; on: string | null; detail: string } | null;
}

/** Finished jobs kept for their page; the oldest go first. */
const KEPT_JOBS = 50;

export class MoveJobs {
  private readonly jobs = new Map<string, MoveJob>();
  constructor(private readonly deps: RelocateDeps) {}

  get(id: string): MoveJob {
    const j = this.jobs.get(id);
    if (!j) throw new MssError('NOT_FOUND', { what: 'this move (moves are kept in memory until the platform restarts; the journal keeps what each did)' });
    return j;
  }

  /**
   * A move that cannot be made is refused at once (409, journalled, nothing changed); one
   * within the pair is done on return; one to another pair is running, to follow by its id.
   */
  async start(r: Omit<RelocateRequest, 'progress'>): Promise<MoveJob> {
    const address = r.address.toLowerCase();
    const busy = [...this.jobs.values()].find((j) => j.state === 'running' && j.address === address);
    if (busy) {
      const reason = `${address} is being moved to ${busy.backend} already (move ${busy.id}): try again when it has ended`;
      await this.deps.journal.append({ type: 'mailstore.box.move_refused', actor: r.actor, subject: address, details: { to: r.backend, reason } });
      throw new MssError('MAILSTORE_MOVE_REFUSED', { reason });
    }
    const job: MoveJob = { id: randomBytes(16).toString('hex'), address, backend: r.backend, actor: r.actor, state: 'running', startedAt: new Date(), finishedAt: null, steps: [], result: null, error: null };
    const plan = await refused(() => planRelocation(this.deps, { ...r, progress: (line) => void job.steps.push(line) }));
    if (plan.kind === 'within') {
      job.result = await refused(() => plan.run());
      this.finish(job, 'done');
      return job;
    }
    this.keep(job);
    plan.run().then(
      (res) => {
        job.result = res;
        this.finish(job, 'done');
      },
      (e: Error) => {
        // Refused after the start (a back end not seen lately): nothing moved, the box where it was.
        job.error = e instanceof MoveError ? { step: e.step, on: e.on, detail: e.message } : { step: e instanceof PlacementError ? 'refused' : 'unknown', on: null, detail: e.message };
        this.finish(job, 'failed');
      },
    );
    return job;
  }

  private finish(job: MoveJob, state: MoveJob['state']) {
    job.state = state;
    job.finishedAt = new Date();
    this.keep(job);
  }

  private keep(job: MoveJob) {
    this.jobs.set(job.id, job);
    const finished = [...this.jobs.values()].filter((j) => j.state !== 'running');
    for (const old of finished.slice(0, Math.max(0, finished.length - KEPT_JOBS))) this.jobs.delete(old.id);
  }
}

/** A move that cannot be made (relocate journalled it): the API's 409 with the sentence why. */
async function refused<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof PlacementError) throw new MssError('MAILSTORE_MOVE_REFUSED', { reason: e.message });
    throw e;
  }
}

export const moveJobView = (j: MoveJob) => ({
  id: j.id,
  address: j.address,
  backend: j.backend,
  actor: j.actor,
  state: j.state,
  startedAt: j.startedAt.toISOString(),
  finishedAt: j.finishedAt?.toISOString() ?? null,
  steps: j.steps,
  result: j.result,
  error: j.error,
});
