// Rows as the callers expect them from PGlite, in a module of its own: the database thread's
// caller (pglite-thread.ts) needs this without loading PGlite itself into the platform's thread.

const normalise = (v: unknown): unknown => (v instanceof Uint8Array && !Buffer.isBuffer(v) ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : v);

/** Bytea as Buffers: PGlite's Uint8Arrays, or a structured clone's (pglite-thread.ts). */
export function normaliseRows<R>(rows: unknown[]): R[] {
  for (const row of rows as Record<string, unknown>[]) {
    for (const k of Object.keys(row)) row[k] = normalise(row[k]);
  }
  return rows as R[];
}
