// How message bodies are kept in the database (smtp_spool, smtp_outbound): sealed with the
// platform's key (AES-256-GCM, core/crypt/keyring.ts) when crypt.spool is on, the table and
// the row's id bound in as associated data, so a body copied onto another row does not open.
// body_key names the key generation that sealed it (rotation); NULL is a body kept in clear
// (written before encryption was turned on, or with it off), read as it is.
import type { Queryable } from '../core/db/index.js';
import { MssError } from '../core/errors.js';

export interface BodyCipher {
  /** null: keep this body in clear (crypt.spool off; sealed rows still open). */
  seal(plain: Buffer, aad: string): { key: string; data: Buffer } | null;
  /** Async: a generation this node does not hold yet is looked up in the database first (core/crypt/keyring.ts). */
  open(key: string, data: Buffer, aad: string): Promise<Buffer>;
}

export type BodyTable = 'smtp_spool' | 'smtp_outbound';

export const bodyAad = (table: BodyTable, id: number) => `${table}:${id}`;

/** The body as stored → the message; only delivery calls this. */
export async function openBody(table: BodyTable, id: number, body: Buffer | null, key: string | null, cipher: BodyCipher | undefined): Promise<Buffer | null> {
  if (body === null || key === null) return body;
  if (!cipher) throw new MssError('CRYPT_KEY_UNKNOWN', { key, what: bodyAad(table, id) });
  return cipher.open(key, body, bodyAad(table, id));
}

/**
 * Ids drawn from the table's sequence before the INSERT, so that each body can be sealed
 * with its own row's id (one statement for the whole batch).
 */
export async function drawIds(q: Queryable, table: BodyTable, n: number): Promise<number[]> {
  const { rows } = await q.query<{ id: string | number }>(`SELECT nextval('${table}_id_seq') AS id FROM generate_series(1, $1::int)`, [n]);
  return rows.map((r) => Number(r.id)).sort((a, b) => a - b);
}

/**
 * Ids drawn ahead in blocks (one statement for many rows): the spool writer's hot path then
 * seals without a round trip to the database. Ids drawn and never used are gaps, as a
 * sequence leaves after any rollback.
 */
export class IdBlocks {
  private free: number[] = [];
  constructor(
    private readonly table: BodyTable,
    private readonly size = 256,
  ) {}

  async take(q: Queryable, n: number): Promise<number[]> {
    while (this.free.length < n) this.free.push(...(await drawIds(q, this.table, Math.max(n, this.size))));
    return this.free.splice(0, n);
  }
}

/** What goes into (body, body_key) for a new row. */
export function storedBody(table: BodyTable, id: number, body: Buffer, cipher: BodyCipher | undefined): { data: Buffer; key: string | null } {
  const s = cipher?.seal(body, bodyAad(table, id));
  return s ? s : { data: body, key: null };
}

/**
 * Seals again, with the cipher's current key, every body still waiting that another key
 * sealed or that is in clear (`mss crypt rotate --reseal`): after it, the older keys
 * protect nothing in the database. A row that changed meanwhile (delivered, re-sealed by
 * someone else) is left as it is.
 */
export async function resealBodies(q: Queryable, cipher: BodyCipher, current: string): Promise<{ table: BodyTable; count: number }[]> {
  const out: { table: BodyTable; count: number }[] = [];
  for (const table of ['smtp_spool', 'smtp_outbound'] as const) {
    let count = 0;
    for (let after = 0; ; ) {
      const { rows } = await q.query<{ id: string | number; body: Buffer; body_key: string | null }>(
        `SELECT id, body, body_key FROM ${table} WHERE body IS NOT NULL AND body_key IS DISTINCT FROM $1 AND id > $2 ORDER BY id LIMIT 100`,
        [current, after],
      );
      if (!rows.length) break;
      for (const r of rows) {
        const id = Number(r.id);
        after = id;
        const plain = (await openBody(table, id, r.body, r.body_key, cipher))!;
        const s = cipher.seal(plain, bodyAad(table, id));
        if (!s) continue;
        const u = await q.query(`UPDATE ${table} SET body = $2, body_key = $3 WHERE id = $1 AND body_key IS NOT DISTINCT FROM $4 AND body IS NOT NULL`, [id, s.data, s.key, r.body_key]);
        count += u.rowCount ?? 0;
      }
    }
    out.push({ table, count });
  }
  return out;
}
