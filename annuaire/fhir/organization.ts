// Organization: a structure (annuaire_fhir_organizations); its published ORG/APP mailboxes
// are its telecom entries.
import type { Queryable } from '../../core/db/index.js';
import { CODE_SYSTEM, ID_SYSTEM, STRUCTURE_BAL_TYPES } from './codes.js';
import { organizationKey } from './ids.js';
import { codeMatch, type Token } from './params.js';
import { organization, type Row } from './resources.js';
import { activeParam, groupBy, idParam, mailboxParams, stringParam, type ResourceSpec } from './spec.js';

async function structureBoxes(q: Queryable, keys: string[]): Promise<Map<string, Row[]>> {
  if (!keys.length) return new Map();
  const { rows } = await q.query<Row>(`SELECT * FROM annuaire_fhir_mailboxes WHERE structure_id = ANY($1::text[]) AND bal_type IN ('ORG', 'APP') ORDER BY key`, [keys]);
  return groupBy(rows, 'structure_id');
}

export const ORGANIZATION: ResourceSpec = {
  type: 'Organization',
  view: 'annuaire_fhir_organizations',
  include: [],
  revinclude: ['PractitionerRole:organization'],
  params: {
    _id: idParam(() => ORGANIZATION),
    active: activeParam,
    identifier: {
      type: 'token',
      doc: `${ID_SYSTEM.finess}|<FINESS> (site or legal entity), ${ID_SYSTEM.siret}|<SIRET>, ${ID_SYSTEM.idnst}|<IDNST> ("1" + FINESS, "3" + SIRET), or a bare value (any)`,
      where: (v, sql) => {
        const t = v as Token;
        const p = () => sql.p(t.code);
        if (t.system === ID_SYSTEM.idnst) return `r.key = ${p()}`;
        if (t.system === ID_SYSTEM.finess) return `${p()} IN (r.finess, r.finess_ej)`;
        if (t.system === ID_SYSTEM.siret) return `r.siret = ${p()}`;
        if (t.system !== undefined) return 'false';
        const x = p();
        return `(r.key = ${x} OR ${x} IN (r.finess, r.finess_ej, r.siret))`;
      },
    },
    name: stringParam('name or trade name', 'r.name', 'r.enseigne'),
    'address-city': stringParam('city', 'r.city'),
    'address-postalcode': stringParam('postal code', 'r.postal_code'),
    type: { type: 'token', doc: `secteur d'activité (${CODE_SYSTEM.secteur})`, where: (v, sql) => codeMatch('r.secteur_code', CODE_SYSTEM.secteur, v as Token, sql) },
    ...mailboxParams('r.key', 'm.structure_id', STRUCTURE_BAL_TYPES, "the structure's"),
  },
  idCondition: (id, sql) => {
    const key = organizationKey(id);
    return key ? `r.key = ${sql.p(key)}` : null;
  },
  async build(q, rows) {
    const boxes = await structureBoxes(q, rows.map((r) => String(r.key)));
    return rows.map((r) => organization(r, boxes.get(String(r.key)) ?? []));
  },
};

