// Practitioner: a professional of the national register holding a published personal
// mailbox (annuaire_fhir_practitioners); its PER/CAB mailboxes are its telecom entries.
import type { Queryable } from '../../core/db/index.js';
import { ID_SYSTEM, PERSONAL_BAL_TYPES, CODE_SYSTEM } from './codes.js';
import { practitionerKey } from './ids.js';
import { codeMatch, stringMatch, type Token } from './params.js';
import { practitioner, type Row } from './resources.js';
import { activeParam, groupBy, holdsMailbox, idParam, mailboxParams, stringParam, type ResourceSpec } from './spec.js';

/** The published personal mailboxes of these professionals, by idnps. */
export async function personalBoxes(q: Queryable, ids: string[]): Promise<Map<string, Row[]>> {
  if (!ids.length) return new Map();
  const { rows } = await q.query<Row>(`SELECT * FROM annuaire_fhir_mailboxes WHERE idnps = ANY($1::text[]) AND bal_type IN ('PER', 'CAB') ORDER BY key`, [ids]);
  return groupBy(rows, 'idnps');
}

const holds = holdsMailbox('r.key', 'm.idnps', PERSONAL_BAL_TYPES).probe;

export const PRACTITIONER: ResourceSpec = {
  type: 'Practitioner',
  view: 'annuaire_fhir_practitioners',
  include: [],
  revinclude: ['PractitionerRole:practitioner'],
  params: {
    _id: idParam(() => PRACTITIONER),
    active: activeParam,
    identifier: {
      type: 'token',
      doc: `${ID_SYSTEM.idnps}|<IDNPS> ("8" + RPPS, "0" + ADELI), ${ID_SYSTEM.rpps}|<RPPS>, or a bare value (either)`,
      where: (v, sql) => {
        const t = v as Token;
        if (t.system === ID_SYSTEM.idnps) return `r.key = ${sql.p(t.code)}`;
        if (t.system === ID_SYSTEM.rpps) return `r.key = ${sql.p('8' + t.code)}`;
        if (t.system !== undefined) return 'false';
        return `r.key IN (${sql.p(t.code)}, ${sql.p('8' + t.code)})`;
      },
    },
    name: stringParam('family or given name', 'r.nom', 'r.prenom'),
    family: stringParam('family name', 'r.nom'),
    given: stringParam('given name', 'r.prenom'),
    'qualification-code': { type: 'token', doc: `profession (${CODE_SYSTEM.profession})`, where: (v, sql) => codeMatch('r.profession_code', CODE_SYSTEM.profession, v as Token, sql) },
    'address-city': { type: 'string', modifiers: ['exact', 'contains'], doc: 'city of one of the addresses of its mailboxes', where: (v, sql, mod) => holds(stringMatch('m.city', v as string, sql, mod)) },
    'address-postalcode': { type: 'string', modifiers: ['exact', 'contains'], doc: 'postal code of one of the addresses of its mailboxes', where: (v, sql, mod) => holds(stringMatch('m.postal_code', v as string, sql, mod)) },
    ...mailboxParams('r.key', 'm.idnps', PERSONAL_BAL_TYPES, "the professional's"),
  },
  idCondition: (id, sql) => {
    const key = practitionerKey(id);
    return key ? `r.key = ${sql.p(key)}` : null;
  },
  async build(q, rows) {
    const boxes = await personalBoxes(q, rows.map((r) => String(r.key)));
    return rows.map((r) => practitioner(r, boxes.get(String(r.key)) ?? []));
  },
};
