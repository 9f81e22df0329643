// What the search and read engine (search.ts) needs to know of one resource type: its view,
// its search parameters, what it may include, and how its rows become resources.
import type { Queryable } from '../../core/db/index.js';
import { codeMatch, stringMatch, type ParamDef, type Sql, type Token } from './params.js';
import type { Resource, Row } from './resources.js';
import { CODE_SYSTEM, type BalType } from './codes.js';

export type ResourceType = 'Practitioner' | 'PractitionerRole' | 'Organization';

export interface ResourceSpec {
  type: ResourceType;
  /** The annuaire_fhir_* view, read with alias r; its key column orders and pages. */
  view: string;
  params: Readonly<Record<string, ParamDef>>;
  include: readonly string[];
  revinclude: readonly string[];
  /** The condition selecting the row of a FHIR id, or null when no row can have that id. */
  idCondition(id: string, sql: Sql): string | null;
  /** The resources of some rows of the view, with what they show (their mailboxes). */
  build(q: Queryable, rows: Row[]): Promise<Resource[]>;
}

/** _id, which every resource takes. */
export const idParam = (spec: () => ResourceSpec): ParamDef => ({
  type: 'token',
  doc: 'the logical id',
  where: (v, sql) => spec().idCondition((v as Token).code, sql) ?? 'false',
});

/** active: every served resource is active (inactive entries are not served at all). */
export const activeParam: ParamDef = {
  type: 'token',
  doc: 'true: every resource served (inactive directory entries are not served); false: none',
  where: (v) => ((v as Token).code === 'true' ? 'true' : 'false'),
};

/**
 * Conditions on the published mailboxes m (of these types) a row holds: its column `rowCol`
 * equals the box's `boxCol`. Two plans, chosen by how many boxes match:
 *  - `probe`: a per-row test (OFFSET 0 keeps it one; as a semi-join the planner hashed
 *    every published box first, 0.8 s for 100,000): a page stops after its rows, so
 *    common conditions (a type, a big city) cost a few index probes;
 *  - `among`: the row among the boxes found first — an exact address is one index probe.
 */
export function holdsMailbox(rowCol: string, boxCol: string, types: readonly BalType[]) {
  const kinds = `m.bal_type IN (${types.map((t) => `'${t}'`).join(', ')})`;
  return {
    probe: (cond: string) => `EXISTS (SELECT 1 FROM annuaire_fhir_mailboxes m WHERE ${boxCol} = ${rowCol} AND ${kinds} AND ${cond} OFFSET 0)`,
    among: (cond: string) => `${rowCol} IN (SELECT ${boxCol} FROM annuaire_fhir_mailboxes m WHERE ${kinds} AND ${cond})`,
  };
}

/**
 * The mailbox parameters of the ANS IG (as-sp-mailbox-mss, as-sp-mailbox-mss-type) and
 * telecom, over the published mailboxes a row holds (holdsMailbox).
 */
export function mailboxParams(rowCol: string, boxCol: string, types: readonly BalType[], whose: string): Record<string, ParamDef> {
  const { probe, among } = holdsMailbox(rowCol, boxCol, types);
  const exact = (v: string, sql: Sql) => among(`lower(m.address) = lower(${sql.p(v)})`);
  return {
    'mailbox-mss': {
      type: 'string',
      modifiers: ['exact', 'contains'],
      doc: `an MSSanté address of ${whose} (start of the address; :exact the whole address, any case; :contains anywhere)`,
      where: (v, sql, mod) => (mod === 'exact' ? exact(v as string, sql) : probe(stringMatch('m.address', v as string, sql, mod))),
    },
    'mailbox-mss-type': { type: 'token', doc: `the type of one of ${whose} MSSanté mailboxes (${types.join(', ')}; system ${CODE_SYSTEM.typeBal})`, where: (v, sql) => probe(codeMatch('m.bal_type', CODE_SYSTEM.typeBal, v as Token, sql)) },
    telecom: {
      type: 'token',
      doc: `email|<address>: ${whose} MSSanté address, whole, any case`,
      where: (v, sql) => {
        const t = v as Token;
        return t.system !== undefined && t.system !== 'email' ? 'false' : exact(t.code, sql);
      },
    },
  };
}

/** A string parameter over some columns (any of them may match). */
export const stringParam = (doc: string, ...cols: string[]): ParamDef => ({
  type: 'string',
  modifiers: ['exact', 'contains'],
  doc,
  where: (v, sql, mod) => (cols.length === 1 ? stringMatch(cols[0], v as string, sql, mod) : `(${cols.map((c) => stringMatch(c, v as string, sql, mod)).join(' OR ')})`),
});

/** Rows grouped by a column, in the order given. */
export function groupBy(rows: Row[], col: string): Map<string, Row[]> {
  const m = new Map<string, Row[]>();
  for (const r of rows) {
    const k = String(r[col]);
    const list = m.get(k);
    if (list) list.push(r);
    else m.set(k, [r]);
  }
  return m;
}
