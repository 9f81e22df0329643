// Search and read over the annuaire_fhir_* views: one statement per page, keyset paging on
// the view's key (stable: a page starts after the last key of the one before, so rows
// added or removed meanwhile never shift the others; no offset, no cap to walk the whole
// set), searchset Bundles with self / next / previous links, _include and _revinclude.
import type { Queryable } from '../../core/db/index.js';
import { MssError } from '../../core/errors.js';
import { conditions, idnpsRanges, parseSearch, Sql, type Control } from './params.js';
import type { Resource, Row } from './resources.js';
import type { ResourceSpec } from './spec.js';
import { ORGANIZATION } from './organization.js';
import { PRACTITIONER } from './practitioner.js';
import { ROLE } from './role.js';

export const SPECS: Readonly<Record<string, ResourceSpec>> = { Practitioner: PRACTITIONER, PractitionerRole: ROLE, Organization: ORGANIZATION };

/** Most resources one page's _include / _revinclude adds (a big hospital has thousands of roles). */
export const MAX_INCLUDED = 1000;

interface Cursor {
  /** a: the page after key k; b: the page before it. */
  d: 'a' | 'b';
  k: string;
}

const encodeCursor = (c: Cursor) => Buffer.from(JSON.stringify([c.d, c.k]), 'utf8').toString('base64url');

function decodeCursor(s: string): Cursor {
  try {
    const [d, k] = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as unknown[];
    if ((d === 'a' || d === 'b') && typeof k === 'string' && k.length <= 300) return { d, k };
  } catch {
    /* below */
  }
  throw new MssError('FHIR_PARAM_INVALID', { reason: '_cursor is not one of the links this server gave' });
}

/** Resources of one view by condition, built. */
async function selectBuilt(q: Queryable, spec: ResourceSpec, where: string, sql: Sql, limit: number): Promise<Resource[]> {
  const { rows } = await q.query<Row>(`SELECT * FROM ${spec.view} r WHERE ${where} ORDER BY r.key LIMIT ${limit}`, sql.values);
  return spec.build(q, rows);
}

/** The resource of this id, or null when the directory does not serve it. */
export async function read(q: Queryable, spec: ResourceSpec, id: string): Promise<Resource | null> {
  const sql = new Sql();
  const cond = spec.idCondition(id, sql);
  if (!cond) return null;
  return (await selectBuilt(q, spec, cond, sql, 1))[0] ?? null;
}

export interface Bundle {
  resourceType: 'Bundle';
  type: 'searchset';
  total?: number;
  link: Array<{ relation: string; url: string }>;
  entry?: Array<{ fullUrl: string; resource: Resource; search: { mode: 'match' | 'include' } }>;
}

export async function search(q: Queryable, spec: ResourceSpec, query: string, base: string): Promise<Bundle> {
  const { params, control } = parseSearch(query, spec.type, spec.params, spec);
  const sql = new Sql();
  const where = conditions(params, spec.params, sql);
  const filter = where.length ? where.join(' AND ') : 'true';
  const cursor = control.cursor ? decodeCursor(control.cursor) : undefined;

  let total: number | undefined;
  if (control.total || control.count === 0) {
    const { rows } = await q.query<{ n: string | number }>(`SELECT count(*) AS n FROM ${spec.view} r WHERE ${filter}`, sql.values);
    total = Number(rows[0].n);
  }

  let rows: Row[] = [];
  let more = false;
  if (control.count > 0) {
    const page = new Sql();
    page.values.push(...sql.values);
    const keyCond = cursor ? ` AND r.key ${cursor.d === 'a' ? '>' : '<'} ${page.p(cursor.k)}` : '';
    const order = cursor?.d === 'b' ? 'DESC' : 'ASC';
    ({ rows } = await q.query<Row>(`SELECT * FROM ${spec.view} r WHERE ${filter}${keyCond} ORDER BY r.key ${order} LIMIT ${control.count + 1}`, page.values));
    more = rows.length > control.count;
    rows = rows.slice(0, control.count);
    if (order === 'DESC') rows.reverse();
  }

  const matches = await spec.build(q, rows);
  const included = await includes(q, rows, matches, control);
  const link = links(spec, query, base, control, cursor, rows, more);
  const entry = [
    ...matches.map((resource) => ({ fullUrl: `${base}/${resource.resourceType}/${resource.id}`, resource, search: { mode: 'match' as const } })),
    ...included.map((resource) => ({ fullUrl: `${base}/${resource.resourceType}/${resource.id}`, resource, search: { mode: 'include' as const } })),
  ];
  return { resourceType: 'Bundle', type: 'searchset', ...(total !== undefined ? { total } : {}), link, ...(entry.length ? { entry } : {}) };
}

/** The resources _include and _revinclude ask for, each once, none of them a match already. */
async function includes(q: Queryable, rows: Row[], matches: Resource[], c: Control): Promise<Resource[]> {
  if (!rows.length) return [];
  const out: Resource[] = [];
  const seen = new Set(matches.map((r) => `${r.resourceType}/${r.id}`));
  const add = (list: Resource[]) => {
    for (const r of list) {
      const k = `${r.resourceType}/${r.id}`;
      if (!seen.has(k) && out.length < MAX_INCLUDED) out.push(r), seen.add(k);
    }
  };
  const keys = (col: string) => [...new Set(rows.map((r) => r[col]).filter((v): v is string => typeof v === 'string'))];
  for (const inc of c.include) {
    const [target, col] = inc === 'PractitionerRole:practitioner' ? [PRACTITIONER, 'idnps'] : [ORGANIZATION, 'organization_key'];
    const ks = keys(col);
    if (!ks.length) continue;
    const sql = new Sql();
    add(await selectBuilt(q, target, `r.key = ANY(${sql.p(ks)}::text[])`, sql, MAX_INCLUDED));
  }
  for (const rev of c.revinclude) {
    const sql = new Sql();
    const ks = keys('key');
    const where = rev === 'PractitionerRole:practitioner' ? idnpsRanges('r.key', ks, sql) : `r.organization_key = ANY(${sql.p(ks)}::text[])`;
    add(await selectBuilt(q, ROLE, where, sql, MAX_INCLUDED));
  }
  return out;
}

/** self (this page), next and previous, each the same search with another cursor. */
function links(spec: ResourceSpec, query: string, base: string, c: Control, cursor: Cursor | undefined, rows: Row[], more: boolean) {
  const url = (cur?: Cursor) => {
    const p = new URLSearchParams();
    for (const [k, v] of new URLSearchParams(query)) if (k !== '_cursor' && k !== '_count' && k !== '_format') p.append(k, v);
    p.set('_count', String(c.count));
    if (cur) p.set('_cursor', encodeCursor(cur));
    return `${base}/${spec.type}?${p.toString()}`;
  };
  const out = [{ relation: 'self', url: url(cursor) }];
  if (!rows.length) return out;
  const first = String(rows[0].key);
  const last = String(rows[rows.length - 1].key);
  // Forward pages: more rows after when one more was found, or when we came backwards from a later page.
  if (cursor?.d === 'b' || more) out.push({ relation: 'next', url: url({ d: 'a', k: last }) });
  if (cursor?.d === 'a' || (cursor?.d === 'b' && more)) out.push({ relation: 'previous', url: url({ d: 'b', k: first }) });
  return out;
}
