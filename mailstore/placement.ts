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
  const a = address.toLowerCase();
  const found = await db.query<{ backend: string }>('SELECT backend FROM mailstore_placement WHERE address = $1', [a]);
  if (found.rows[0]) return found.rows[0].backend;
  await db.query(
    `INSERT INTO mailstore_placement (address, backend)
     SELECT $1, b.name FROM mailstore_backends b
     WHERE b.seen_at > now() - make_interval(secs => $2)
     ORDER BY (SELECT count(*) FROM mailstore_placement p WHERE p.backend = b.name), b.name
     LIMIT 1
     ON CONFLICT (address) DO NOTHING`,
    [a, BACKEND_FRESH_SECONDS],
  );
  const placed = await db.query<{ backend: string }>('SELECT backend FROM mailstore_placement WHERE address = $1', [a]);
  if (!placed.rows[0]) throw new Error('no Dovecot back end of the shared store is registered and alive (mailstore_backends): start a node with the mailstore role');
  return placed.rows[0].backend;
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

/**
 * Moves a box to another back end. Within a pair the data is already there (the replica),
 * so only the map changes and the next login or delivery goes to the new one. Between
 * pairs the mail would have to be copied first (doveadm backup): refused, not half-done.
 */
export async function moveBox(db: Q, address: string, to: string): Promise<{ from: string; to: string }> {
  const a = address.toLowerCase();
  const cur = await boxPlacement(db, a);
  if (!cur) throw new PlacementError(`${a} is not placed on any back end yet (it is placed on its first delivery or login)`);
  const target = (await db.query<BackendRow>('SELECT * FROM mailstore_backends WHERE name = $1', [to])).rows[0];
  if (!target) throw new PlacementError(`no back end named ${JSON.stringify(to)} is registered (mss mailstore backends lists them)`);
  if (cur.backend === to) return { from: cur.backend, to };
  if (cur.partner !== to && target.partner !== cur.backend) {
    throw new PlacementError(`${to} is not the pair of ${cur.backend}, which holds ${a}: only a move within a pair (where the replica already is) is supported`);
  }
  await db.query('UPDATE mailstore_placement SET backend = $2, placed_at = now() WHERE address = $1', [a, to]);
  return { from: cur.backend, to };
}

/**
 * The fronts' reader of the map, with a short cache: a delivery or login asks once per
 * box per `cacheMs`, and a move is seen by every node within that time.
 */
export class Placement {
  private backends: { at: number; rows: Map<string, BackendRow> } | null = null;
  private readonly boxes = new Map<string, { at: number; backend: string }>();

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

  async route(address: string): Promise<BoxRoute> {
    const a = address.toLowerCase();
    let hit = this.boxes.get(a);
    if (!hit || Date.now() - hit.at >= this.cacheMs) {
      hit = { at: Date.now(), backend: await placeBox(this.db, a) };
      if (this.boxes.size > 100_000) this.boxes.clear();
      this.boxes.set(a, hit);
    }
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

  /** Recipients grouped by the back ends that hold them. */
  async group(addresses: string[]): Promise<Array<{ rcpts: string[]; backends: BackendRow[] }>> {
    const groups = new Map<string, { rcpts: string[]; backends: BackendRow[] }>();
    for (const rcpt of addresses) {
      const r = await this.route(rcpt);
      const key = r.backends.map((b) => b.name).join('+');
      const g = groups.get(key) ?? { rcpts: [], backends: r.backends };
      g.rcpts.push(rcpt);
      groups.set(key, g);
    }
    return [...groups.values()];
  }
}
