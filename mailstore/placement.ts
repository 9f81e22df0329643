// Which Dovecot back end holds a box, when several nodes share the mail store
// (mailstore.cluster, issue 17). The map is in PostgreSQL, the one thing every node shares:
// the back ends register themselves (mailstore_backends), each box is placed on one of them
// (mailstore_placement) on its first delivery or login, and every node's LMTP delivery and
// IMAP proxy read the same row. A back end's pair holds a replica of its boxes (Dovecot's
// replicator), so when the back end cannot be reached its pair serves them.
import type { Db } from '../core/db/index.js';

export interface BackendRow {
  name: string;
  host: string;
  imap_port: number;
  lmtp_port: number;
  doveadm_port: number;
  partner: string | null;
  seen_at: Date;
  /** Set while the back end catches up on what its pair took while it was away (cluster.ts): the pair serves its boxes first. */
  catchup_since: Date | null;
  caught_up_at: Date | null;
}

/** A box's back ends in the order to try them: where it is placed, then that back end's pair. */
export interface BoxRoute {
  address: string;
  backends: BackendRow[];
}

/** A back end counts as alive for new placements while it refreshed its row this recently. */
export const BACKEND_FRESH_SECONDS = 30;

/** How long the fronts keep what they read of the map (Placement's cache): a change is seen everywhere after this. */
export const MAP_CACHE_MS = 2000;

type Q = Pick<Db, 'query'>;

/** A back end with a pair starts out catching up (catchup_since, kept if markCatchingUp set it already). */
export async function registerBackend(db: Q, b: { name: string; host: string; imapPort: number; lmtpPort: number; doveadmPort: number; partner?: string }) {
  await db.query(
    `INSERT INTO mailstore_backends (name, host, imap_port, lmtp_port, doveadm_port, partner, seen_at, catchup_since) VALUES ($1, $2, $3, $4, $5, $6, now(), CASE WHEN $6::text IS NULL THEN NULL ELSE now() END)
     ON CONFLICT (name) DO UPDATE SET host = excluded.host, imap_port = excluded.imap_port, lmtp_port = excluded.lmtp_port, doveadm_port = excluded.doveadm_port, partner = excluded.partner, seen_at = now(),
       catchup_since = CASE WHEN excluded.partner IS NULL THEN NULL ELSE coalesce(mailstore_backends.catchup_since, now()) END`,
    [b.name, b.host, b.imapPort, b.lmtpPort, b.doveadmPort, b.partner || null],
  );
}

/**
 * Before its Dovecot (re)starts: the back end may lack what its pair took meanwhile, so the
 * fronts are to prefer the pair until it has caught up. True when it was registered already
 * (a front may hold the earlier row for MAP_CACHE_MS).
 */
export async function markCatchingUp(db: Q, name: string): Promise<boolean> {
  const r = await db.query('UPDATE mailstore_backends SET catchup_since = now() WHERE name = $1 AND partner IS NOT NULL', [name]);
  return r.rowCount > 0;
}

/**
 * Every box of the pair synced by a run that began at `since` (the database's clock): the
 * back end (and its pair, if marked) serves its boxes first again — unless it was marked
 * again after the run began (a restart meanwhile), which the next run covers.
 */
export async function markCaughtUp(db: Q, name: string, since: Date, partner?: string) {
  await db.query('UPDATE mailstore_backends SET caught_up_at = now() WHERE name = $1', [name]);
  // The sync is two-way: a pair marked before the run began has caught up as well.
  await db.query('UPDATE mailstore_backends SET catchup_since = NULL WHERE (name = $1 OR name = $3) AND catchup_since <= $2', [name, since, partner ?? name]);
}

/** The boxes a back end and its pair hold: those placed on either. */
export async function pairBoxes(db: Q, name: string, partner: string): Promise<string[]> {
  const { rows } = await db.query<{ address: string }>('SELECT address FROM mailstore_placement WHERE backend = $1 OR backend = $2 ORDER BY address', [name, partner]);
  return rows.map((r) => r.address);
}

export async function heartbeatBackend(db: Q, name: string) {
  await db.query('UPDATE mailstore_backends SET seen_at = now() WHERE name = $1', [name]);
}

export async function listBackends(db: Q): Promise<Array<BackendRow & { boxes: number }>> {
  const { rows } = await db.query<BackendRow & { boxes: string }>(
    `SELECT b.*, (SELECT count(*) FROM mailstore_placement p WHERE p.backend = b.name) AS boxes FROM mailstore_backends b ORDER BY b.name`,
  );
  return rows.map((r) => ({ ...r, boxes: Number(r.boxes) }));
}

/** The box's back end, placing it on the least-filled fresh back end if it has none yet (any node may race: the first insert wins). */
export async function placeBox(db: Q, address: string): Promise<string> {
  return (await placedBox(db, address)).backend;
}

/** placeBox, and whether the box is frozen by a move between pairs (move.ts). */
async function placedBox(db: Q, address: string): Promise<{ backend: string; frozen: boolean }> {
  const a = address.toLowerCase();
  const sql = 'SELECT backend, coalesce(frozen_until > now(), false) AS frozen FROM mailstore_placement WHERE address = $1';
  const found = await db.query<{ backend: string; frozen: boolean }>(sql, [a]);
  if (found.rows[0]) return found.rows[0];
  await db.query(
    `INSERT INTO mailstore_placement (address, backend)
     SELECT $1, b.name FROM mailstore_backends b
     WHERE b.seen_at > now() - make_interval(secs => $2)
     ORDER BY (SELECT count(*) FROM mailstore_placement p WHERE p.backend = b.name), b.name
     LIMIT 1
     ON CONFLICT (address) DO NOTHING`,
    [a, BACKEND_FRESH_SECONDS],
  );
  const placed = await db.query<{ backend: string; frozen: boolean }>(sql, [a]);
  if (!placed.rows[0]) throw new Error('no Dovecot back end of the shared store is registered and alive (mailstore_backends): start a node with the mailstore role');
  return placed.rows[0];
}

/** Where a box is, for `mss mailstore show`; null: not placed yet. */
export async function boxPlacement(db: Q, address: string): Promise<{ address: string; backend: string; partner: string | null; placed_at: Date } | null> {
  const { rows } = await db.query<{ address: string; backend: string; partner: string | null; placed_at: Date }>(
    'SELECT p.address, p.backend, b.partner, p.placed_at FROM mailstore_placement p JOIN mailstore_backends b ON b.name = p.backend WHERE p.address = $1',
    [address.toLowerCase()],
  );
  return rows[0] ?? null;
}

export class PlacementError extends Error {}

/** The box is being moved to another pair: nothing is written to it until the move ends (or its freeze runs out). */
export class BoxMovingError extends Error {
  constructor(readonly address: string) {
    super(`${address} is being moved to another back end: try again in a few seconds`);
  }
}

/**
 * Moves a box to the other back end of its pair. The data is already there (the replica),
 * so only the map changes and the next login or delivery goes to the new one. A move to
 * another pair copies the mail first: move.ts (moveAcrossPairs), which this refuses.
 */
export async function moveBox(db: Q, address: string, to: string): Promise<{ from: string; to: string }> {
  const { box, target } = await moveEnds(db, address, to);
  if (box.backend === to) return { from: box.backend, to };
  if (!inPair(box, target)) {
    throw new PlacementError(`${to} is not the pair of ${box.backend}, which holds ${box.address}: a move to another pair copies the mail (mss mailstore move)`);
  }
  // Not while a move to another pair holds the box: that one switches the row when it is done.
  const r = await db.query("UPDATE mailstore_placement SET backend = $2, placed_at = now() WHERE address = $1 AND (frozen_until IS NULL OR frozen_until <= now())", [box.address, to]);
  if (!r.rowCount) throw new PlacementError(`${box.address} is being moved to another pair: try again when that move has ended`);
  return { from: box.backend, to };
}

/** The box as placed and the back end it is to go to, or a sentence why not. */
export async function moveEnds(db: Q, address: string, to: string) {
  const a = address.toLowerCase();
  const box = await boxPlacement(db, a);
  if (!box) throw new PlacementError(`${a} is not placed on any back end yet (it is placed on its first delivery or login)`);
  const target = (await db.query<BackendRow>('SELECT * FROM mailstore_backends WHERE name = $1', [to])).rows[0];
  if (!target) throw new PlacementError(`no back end named ${JSON.stringify(to)} is registered (mss mailstore backends lists them)`);
  return { box, target };
}

/** The target holds the box's replica already: same back end or its pair. */
export const inPair = (box: { backend: string; partner: string | null }, target: BackendRow) => box.backend === target.name || box.partner === target.name || target.partner === box.backend;

/**
 * The fronts' reader of the map, with a short cache: a delivery or login asks once per
 * box per `cacheMs`, and a move is seen by every node within that time.
 */
export class Placement {
  private backends: { at: number; rows: Map<string, BackendRow> } | null = null;
  private readonly boxes = new Map<string, { at: number; backend: string; frozen: boolean }>();

  constructor(
    private readonly db: Q,
    private readonly cacheMs = MAP_CACHE_MS,
  ) {}

  private async backendRows(): Promise<Map<string, BackendRow>> {
    if (this.backends && Date.now() - this.backends.at < this.cacheMs) return this.backends.rows;
    const { rows } = await this.db.query<BackendRow>('SELECT * FROM mailstore_backends');
    this.backends = { at: Date.now(), rows: new Map(rows.map((r) => [r.name, r])) };
    return this.backends.rows;
  }

  /** Throws BoxMovingError while a move between pairs holds the box. */
  async route(address: string): Promise<BoxRoute> {
    const a = address.toLowerCase();
    let hit = this.boxes.get(a);
    if (!hit || Date.now() - hit.at >= this.cacheMs) {
      hit = { at: Date.now(), ...(await placedBox(this.db, a)) };
      if (this.boxes.size > 100_000) this.boxes.clear();
      this.boxes.set(a, hit);
    }
    if (hit.frozen) throw new BoxMovingError(a);
    const all = await this.backendRows();
    const primary = all.get(hit.backend) ?? (await this.refreshed(hit.backend));
    const pair = primary.partner ? all.get(primary.partner) : undefined;
    if (!pair) return { address: a, backends: [primary] };
    // A back end catching up may lack the newest mail of the box: the pair, which took it, serves first.
    return { address: a, backends: primary.catchup_since && !pair.catchup_since ? [pair, primary] : [primary, pair] };
  }

  /** A back end registered since the cache was filled. */
  private async refreshed(name: string): Promise<BackendRow> {
    this.backends = null;
    const row = (await this.backendRows()).get(name);
    if (!row) throw new Error(`the back end ${name} holding a box is not registered`);
    return row;
  }

  /** Recipients grouped by the back ends that hold them; a box being moved is in a group without any (its delivery waits: 451). */
  async group(addresses: string[]): Promise<Array<{ rcpts: string[]; backends: BackendRow[] }>> {
    const groups = new Map<string, { rcpts: string[]; backends: BackendRow[] }>();
    for (const rcpt of addresses) {
      const r = await this.route(rcpt).catch((e) => {
        if (e instanceof BoxMovingError) return { address: e.address, backends: [] };
        throw e;
      });
      const key = r.backends.map((b) => b.name).join('+');
      const g = groups.get(key) ?? { rcpts: [], backends: r.backends };
      g.rcpts.push(rcpt);
      groups.set(key, g);
    }
    return [...groups.values()];
  }
}
