/**
 * The one query interface every module uses. Two implementations run the same SQL: real
 * PostgreSQL through `pg`, and PGlite (PostgreSQL compiled to WASM, in-process) as the
 * embedded default. Values come back normalised: int8 and numeric as JS numbers when
 * safe, bytea as Buffer, timestamptz as Date.
 */
export interface Queryable {
  query<R = Record<string, any>>(sql: string, params?: unknown[]): Promise<QueryResult<R>>;
  /** Several statements separated by `;`, no parameters (migrations, DDL). */
  exec(sql: string): Promise<void>;
  /**
   * Bulk load: feeds `data` (COPY text-format lines, each chunk holding whole lines) to a
   * `COPY … FROM STDIN` statement; resolves with the rows loaded. pg streams it over the
   * wire with back-pressure; PGlite, which has no COPY FROM STDIN, loads it in bounded
   * chunks through its /dev/blob device. Either way memory stays flat.
   */
  copyFrom?(sql: string, data: AsyncIterable<string | Buffer>): Promise<number>;
  /**
   * PostgreSQL only: the whole output of a `COPY … TO STDOUT` statement (binary format:
   * bulk reads without a text form in between — see annuaire/import's digests).
   */
  copyTo?(sql: string): Promise<Buffer>;
}

export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
}

export interface Db extends Queryable {
  readonly kind: 'pg' | 'pglite';
  /** Where it points, fit to print (password masked). */
  readonly target: string;
  /** Runs fn in one transaction: committed when fn resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>, opts?: TransactionOptions): Promise<T>;
  /**
   * The same database for work that can wait: bulk loads and syncs, the directory feeder,
   * VACUUM. On PGlite (one connection, one statement at a time) its statements and
   * transactions give way to waiting interactive ones — a login, an MX's 250 — see
   * pglite-turns.ts; on PostgreSQL, whose pool serves both at once, it is this Db.
   */
  background(): Db;
  /**
   * PGlite only: a tar of its data directory, taken under its lock while no statement or
   * transaction runs — one consistent image, what `mss backup` keeps (core/backup) — and
   * the rows of `sql`, read from that very state (e.g. the journal head it covers).
   */
  dumpDataDir?(sql: string): Promise<{ tar: Uint8Array; rows: Record<string, unknown>[] }>;
  close(): Promise<void>;
}

/** What a transaction's caller allows after a lost database connection (PostgreSQL failover, pg.ts). */
export interface TransactionOptions {
  /** fn only touches the database: run it again from the start when the connection was lost before COMMIT (the server rolled it back). */
  retry?: boolean;
  /** Running it twice is harmless: also run it again when the connection was lost during COMMIT (saved or not, unknown). */
  idempotent?: boolean;
}
