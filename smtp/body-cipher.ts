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
  open(key: string, data: Buffer, aad: string): Buffer;
}

export type BodyTable = 'smtp_spool' | 'smtp_outbound';

export const bodyAad = (table: BodyTable, id: number) => `${table}:${id}`;

/** The body as stored → the message; only delivery calls this. */
export function openBody(table: BodyTable, id: number, body: Buffer | null, key: string | null, cipher: BodyCipher | undefined): Buffer | null {
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

/** What goes into (body, body_key) for a new row. */
export function storedBody(table: BodyTable, id: number, body: Buffer, cipher: BodyCipher | undefined): { data: Buffer; key: string | null } {
  const s = cipher?.seal(body, bodyAad(table, id));
  return s ? s : { data: body, key: null };
}
