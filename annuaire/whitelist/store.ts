// The liste blanche in the database: applying a newer list as a diff in one transaction,
// journalled domain by domain, and the lookups SMTP uses through core/policy.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Db, Queryable } from '../../core/db/index.js';
import { MssError } from '../../core/errors.js';
import type { Journal } from '../../core/journal/index.js';
import type { TrustSpaceEntry, TrustSpaceFactSource } from '../../core/policy/index.js';
import { domainForms, parseWhitelist, WhitelistFormatError, type WhitelistEntry } from './parse.js';

export interface WhitelistImportResult {
  generatedAt: Date;
  source: string;
  sha256: string;
  domains: number;
  added: string[];
  removed: string[];
  changed: string[];
  rejected: Array<{ name: string; reason: string }>;
  duplicates: string[];
  /** True when the same list (same SHA-256) was already in place: nothing was written. */
  unchanged: boolean;
  /** SHA-256 of the list in place before this one (null: none yet): what a preview was computed against. */
  base: string | null;
  /** A preview: the difference as it would be applied, nothing written. */
  dryRun: boolean;
  /** For each changed domain, the fields that differ, before → after. */
  changes: Array<{ domain: string; fields: Array<{ field: string; before: string | null; after: string | null }> }>;
}

/**
 * What a confirmation must match (the console's preview → confirm): the file previewed
 * (its SHA-256) and the list it was compared with (`base`, null: none). Anything else is
 * refused, so what is applied is exactly the difference the admin saw.
 */
export interface WhitelistExpectation {
  sha256: string;
  base: string | null;
}

/** The national list is ~1 MB; anything far larger is not it. */
const MAX_BYTES = 64 << 20;

/** Reads the list from a file path or an http(s) URL. */
export async function readWhitelistSource(source: string, fetchImpl: typeof fetch = fetch): Promise<Buffer> {
  if (/^https?:\/\//i.test(source)) {
    let res: Response;
    try {
      res = await fetchImpl(source, { redirect: 'follow', signal: AbortSignal.timeout(60_000) });
    } catch (e) {
      throw new MssError('WHITELIST_INVALID', { source, reason: `download failed (${(e as Error).message})` });
    }
    if (!res.ok) throw new MssError('WHITELIST_INVALID', { source, reason: `the server answered HTTP ${res.status}` });
    const body = Buffer.from(await res.arrayBuffer());
    if (body.length > MAX_BYTES) throw new MssError('WHITELIST_INVALID', { source, reason: `it is larger than ${MAX_BYTES >> 20} MB` });
    return body;
  }
  try {
    const body = await readFile(source);
    if (body.length > MAX_BYTES) throw new MssError('WHITELIST_INVALID', { source, reason: `it is larger than ${MAX_BYTES >> 20} MB` });
    return body;
  } catch (e) {
    if (e instanceof MssError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new MssError('FILE_UNREADABLE', { what: 'liste blanche', file: source, reason: code === 'ENOENT' ? 'no such file' : (e as Error).message });
  }
}

interface DomainRow {
  domain: string;
  domain_unicode: string;
  description: string | null;
  operator_dn: string | null;
  responsable_contact: string | null;
  support_contact: string | null;
  date_maj: string | null;
}

const COLUMNS = ['domain', 'domain_unicode', 'description', 'operator_dn', 'responsable_contact', 'support_contact', 'date_maj'] as const;
const rowOf = (e: WhitelistEntry): DomainRow => ({
  domain: e.domain,
  domain_unicode: e.domainUnicode,
  description: e.description,
  operator_dn: e.operatorDn,
  responsable_contact: e.responsableContact,
  support_contact: e.supportContact,
  date_maj: e.dateMaj,
});
const sameRow = (a: DomainRow, b: DomainRow) => COLUMNS.every((c) => a[c] === b[c]);
const FIELD: Record<(typeof COLUMNS)[number], string> = {
  domain: 'Nom',
  domain_unicode: 'Nom',
  description: 'Description',
  operator_dn: 'DNCertificatOperateur',
  responsable_contact: 'ResponsableContact',
  support_contact: 'SupportContact',
  date_maj: 'DateMAJ',
};
/** The fields of a domain that differ, by their names in the national file. */
const fieldChanges = (a: DomainRow, b: DomainRow) => COLUMNS.filter((c) => c !== 'domain' && a[c] !== b[c]).map((c) => ({ field: FIELD[c], before: a[c], after: b[c] }));

/** Multi-row INSERT in slices that stay far below PostgreSQL's 65,535 parameters. */
async function insertRows(tx: Queryable, rows: DomainRow[], importId: number) {
  const SLICE = 1000;
  for (let i = 0; i < rows.length; i += SLICE) {
    const slice = rows.slice(i, i + SLICE);
    const params: unknown[] = [];
    const values = slice.map((r) => {
      const n = params.length;
      params.push(...COLUMNS.map((c) => r[c]), importId);
      return `(${COLUMNS.map((_, j) => `$${n + j + 1}`).join(', ')}, $${n + COLUMNS.length + 1})`;
    });
    await tx.query(`INSERT INTO whitelist_domains (${COLUMNS.join(', ')}, import_id) VALUES ${values.join(', ')}`, params);
  }
}

/**
 * Applies a list: refuses one generated before the list in place (WHITELIST_OLDER), then in
 * one transaction adds, removes and updates what differs, records the import and journals a
 * summary event plus one event per domain added, removed or changed (subject = the domain,
 * so "when did this domain enter the trust space" is one journal query).
 * `dryRun`: the same checks and difference, nothing written (a preview). `expect`: refused
 * (WHITELIST_PREVIEW_MISMATCH) unless the file and the list in place are those previewed.
 */
export async function importWhitelist(
  db: Db,
  journal: Pick<Journal, 'appendIn' | 'appendManyIn'>,
  body: Buffer,
  source: string,
  actor: string,
  o: { dryRun?: boolean; expect?: WhitelistExpectation } = {},
): Promise<WhitelistImportResult> {
  let parsed;
  try {
    parsed = parseWhitelist(body);
  } catch (e) {
    if (e instanceof WhitelistFormatError) throw new MssError('WHITELIST_INVALID', { source, reason: e.message });
    throw e;
  }
  const sha256 = createHash('sha256').update(body).digest('hex');
  if (o.expect && o.expect.sha256 !== sha256) {
    throw new MssError('WHITELIST_PREVIEW_MISMATCH', { source, reason: `the file sent (SHA-256 ${sha256}) is not the one previewed (${o.expect.sha256})` });
  }
  const dryRun = o.dryRun === true;
  return db.transaction(async (tx) => {
    // One importer at a time: the "newer than" check and the diff must see the same list.
    await tx.query('SELECT pg_advisory_xact_lock($1)', [0x4d53_5341]);
    const last = (await tx.query<{ generated_at: Date; generated_raw: string; sha256: string }>('SELECT generated_at, generated_raw, sha256 FROM whitelist_imports ORDER BY generated_at DESC, id DESC LIMIT 1')).rows[0];
    const inPlace = last?.sha256 ?? null;
    if (o.expect && o.expect.base !== inPlace) {
      throw new MssError('WHITELIST_PREVIEW_MISMATCH', { source, reason: `the list in place changed since the preview (another import was applied meanwhile): preview it again` });
    }
    const base = { generatedAt: parsed.generatedAt, source, sha256, domains: parsed.entries.length, rejected: parsed.rejected, duplicates: parsed.duplicates, base: inPlace, dryRun };
    if (last && new Date(last.generated_at).getTime() > parsed.generatedAt.getTime()) {
      throw new MssError('WHITELIST_OLDER', { source, date: parsed.generatedRaw, current: last.generated_raw });
    }
    if (last && last.sha256 === sha256) return { ...base, added: [], removed: [], changed: [], changes: [], unchanged: true };

    const current = new Map((await tx.query<DomainRow>(`SELECT ${COLUMNS.join(', ')} FROM whitelist_domains`)).rows.map((r) => [r.domain, r]));
    const next = new Map(parsed.entries.map((e) => [e.domain, rowOf(e)]));
    const added = [...next.keys()].filter((d) => !current.has(d)).sort();
    const removed = [...current.keys()].filter((d) => !next.has(d)).sort();
    const changed = [...next.keys()].filter((d) => current.has(d) && !sameRow(current.get(d)!, next.get(d)!)).sort();
    const changes = changed.map((d) => ({ domain: d, fields: fieldChanges(current.get(d)!, next.get(d)!) }));
    if (dryRun) return { ...base, added, removed, changed, changes, unchanged: false };

    const imp = await tx.query<{ id: number }>(
      `INSERT INTO whitelist_imports (generated_at, generated_raw, source, sha256, domains, added, removed, changed, rejected, actor)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
      [parsed.generatedAt, parsed.generatedRaw, source, sha256, parsed.entries.length, added.length, removed.length, changed.length, parsed.rejected.length, actor],
    );
    const importId = imp.rows[0].id;
    if (removed.length) await tx.query('DELETE FROM whitelist_domains WHERE domain = ANY($1::text[])', [removed]);
    if (changed.length) await tx.query('DELETE FROM whitelist_domains WHERE domain = ANY($1::text[])', [changed]);
    await insertRows(tx, [...added, ...changed].map((d) => next.get(d)!), importId);

    await journal.appendIn(tx, {
      type: 'whitelist.imported',
      actor,
      subject: source,
      details: {
        generatedAt: parsed.generatedAt.toISOString(),
        generatedRaw: parsed.generatedRaw,
        sha256,
        domains: parsed.entries.length,
        added: added.length,
        removed: removed.length,
        changed: changed.length,
        ...(parsed.rejected.length ? { rejected: parsed.rejected } : {}),
      },
    });
    const per = (type: string, list: string[]) =>
      list.map((d) => {
        const r = next.get(d) ?? current.get(d)!;
        return { type, actor, subject: d, details: { unicode: r.domain_unicode, operatorDn: r.operator_dn, generatedAt: parsed.generatedAt.toISOString() } };
      });
    await journal.appendManyIn(tx, [...per('whitelist.domain.added', added), ...per('whitelist.domain.removed', removed), ...per('whitelist.domain.changed', changed)]);
    return { ...base, added, removed, changed, changes, unchanged: false };
  });
}

export interface WhitelistedDomain {
  domain: string;
  domainUnicode: string;
  description: string | null;
  operatorDn: string | null;
  responsableContact: string | null;
  supportContact: string | null;
  dateMaj: string | null;
}

const toDomain = (r: DomainRow): WhitelistedDomain => ({
  domain: r.domain,
  domainUnicode: r.domain_unicode,
  description: r.description,
  operatorDn: r.operator_dn,
  responsableContact: r.responsable_contact,
  supportContact: r.support_contact,
  dateMaj: r.date_maj,
});

/** The list's entry for a domain (Unicode or A-label, any case), or null when it is not on it. */
export async function whitelistEntry(q: Queryable, domain: string): Promise<WhitelistedDomain | null> {
  const forms = domainForms(domain);
  if (!forms) return null;
  const { rows } = await q.query<DomainRow>(`SELECT ${COLUMNS.join(', ')} FROM whitelist_domains WHERE domain = $1`, [forms.ascii]);
  return rows[0] ? toDomain(rows[0]) : null;
}

/** Is this domain on the liste blanche? (Own domains are decided by core/policy, not here.) */
export async function isWhitelisted(q: Queryable, domain: string): Promise<boolean> {
  return (await whitelistEntry(q, domain)) !== null;
}

/** DNCertificatOperateur of a listed domain: the subject its operator's certificate must carry. */
export async function operatorDnFor(q: Queryable, domain: string): Promise<string | null> {
  return (await whitelistEntry(q, domain))?.operatorDn ?? null;
}

export async function listWhitelist(q: Queryable, f: { text?: string; limit?: number; offset?: number } = {}): Promise<WhitelistedDomain[]> {
  const like = f.text ? f.text.replace(/[\\%_]/g, (c) => '\\' + c) : null;
  const { rows } = await q.query<DomainRow>(
    `SELECT ${COLUMNS.join(', ')} FROM whitelist_domains
      WHERE $1::text IS NULL OR domain ILIKE '%' || $1 || '%' OR domain_unicode ILIKE '%' || $1 || '%' OR description ILIKE '%' || $1 || '%' OR operator_dn ILIKE '%' || $1 || '%'
      ORDER BY domain LIMIT $2 OFFSET $3`,
    [like, Math.min(f.limit ?? 100, 10_000), f.offset ?? 0],
  );
  return rows.map(toDomain);
}

/** The list in place: its generation date and size, or null before the first import. */
export async function currentWhitelist(q: Queryable): Promise<{ generatedAt: Date; generatedRaw: string; source: string; importedAt: Date; domains: number } | null> {
  const { rows } = await q.query<{ generated_at: Date; generated_raw: string; source: string; imported_at: Date }>(
    'SELECT generated_at, generated_raw, source, imported_at FROM whitelist_imports ORDER BY generated_at DESC, id DESC LIMIT 1',
  );
  if (!rows[0]) return null;
  const n = (await q.query<{ n: number }>('SELECT count(*)::int8 AS n FROM whitelist_domains')).rows[0].n;
  return { generatedAt: new Date(rows[0].generated_at), generatedRaw: rows[0].generated_raw, source: rows[0].source, importedAt: new Date(rows[0].imported_at), domains: n };
}

/** annuaire/whitelist's side of core/policy. */
export function whitelistFactSource(q: Queryable): TrustSpaceFactSource {
  return {
    async trustSpaceEntry(domain): Promise<TrustSpaceEntry | null> {
      const e = await whitelistEntry(q, domain);
      return e && { domain: e.domain, operatorDn: e.operatorDn };
    },
  };
}
