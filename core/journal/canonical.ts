import { createHash } from 'node:crypto';

/** JSON with object keys sorted at every level and no white space: one text per value. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v ?? null);
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
    .join(',')}}`;
}

/**
 * What the database will give back for these details: a JSON round trip (Dates become
 * strings, undefined vanishes) and no NUL characters (jsonb refuses them). Hashing this
 * form means the hash can be recomputed from the stored row.
 */
export function storableDetails(details: Record<string, unknown> | undefined): Record<string, unknown> {
  return JSON.parse(JSON.stringify(details ?? {}, (_k, v) => (typeof v === 'string' ? v.replace(/\u0000/g, '\uFFFD') : v)));
}

export interface HashedFields {
  seq: number;
  at: Date;
  type: string;
  actor: string;
  subject: string | null;
  details: Record<string, unknown>;
}

/** The exact text hashed for an event, after the previous event's hash and a newline. */
export function eventText(e: HashedFields): string {
  return canonicalJson({ seq: e.seq, at: e.at.toISOString(), type: e.type, actor: e.actor, subject: e.subject, details: e.details });
}

export function eventHash(prevHash: string, e: HashedFields): string {
  return createHash('sha256').update(prevHash).update('\n').update(eventText(e)).digest('hex');
}

export const GENESIS_HASH = '0'.repeat(64);
