// PractitionerRole: an activity (situation d'exercice) of a served Practitioner, pointing to
// its structure (annuaire_fhir_roles). Codes: profession, mode d'exercice, fonction, genre.
import { CODE_SYSTEM, PERSONAL_BAL_TYPES } from './codes.js';
import { organizationKey, parseRoleId, practitionerKey } from './ids.js';
import { codeMatch, idnpsRanges, referenceId, type Token } from './params.js';
import { practitionerRole } from './resources.js';
import { activeParam, idParam, mailboxParams, type ResourceSpec } from './spec.js';

/** role=[system|]code: the code columns of a role, by their system. */
const ROLE_CODES: Array<[string, string]> = [
  [CODE_SYSTEM.profession, 'r.profession_code'],
  [CODE_SYSTEM.fonction, 'r.role_code'],
  [CODE_SYSTEM.modeExercice, 'r.mode_exercice_code'],
  [CODE_SYSTEM.genreActivite, 'r.genre_code'],
];

/** The first 48 bits of SHA-256 of the key, in hex (ids.ts roleHash, in SQL). */
const KEY_HASH = `left(encode(sha256(convert_to(r.key, 'UTF8')), 'hex'), 12)`;

export const ROLE: ResourceSpec = {
  type: 'PractitionerRole',
  view: 'annuaire_fhir_roles',
  include: ['PractitionerRole:practitioner', 'PractitionerRole:organization'],
  revinclude: [],
  params: {
    _id: idParam(() => ROLE),
    active: activeParam,
    practitioner: {
      type: 'reference',
      target: 'Practitioner',
      doc: 'the professional (Practitioner/<id>)',
      where: (v, sql) => {
        const id = referenceId(v as string, 'Practitioner');
        const key = id ? practitionerKey(id) : null;
        return key ? idnpsRanges('r.key', [key], sql) : 'false';
      },
    },
    organization: {
      type: 'reference',
      target: 'Organization',
      doc: 'the structure (Organization/<id>)',
      where: (v, sql) => {
        const id = referenceId(v as string, 'Organization');
        const key = id ? organizationKey(id) : null;
        return key ? `r.organization_key = ${sql.p(key)}` : 'false';
      },
    },
    role: {
      type: 'token',
      doc: `profession (${CODE_SYSTEM.profession}), fonction (${CODE_SYSTEM.fonction}), mode d'exercice (${CODE_SYSTEM.modeExercice}) or genre d'activité (${CODE_SYSTEM.genreActivite}); without a system, any of them`,
      where: (v, sql) => {
        const t = v as Token;
        if (t.system === undefined) {
          const p = sql.p(t.code);
          return `(${ROLE_CODES.map(([, col]) => `${col} = ${p}`).join(' OR ')})`;
        }
        const col = ROLE_CODES.find(([s]) => s === t.system)?.[1];
        return col ? `${col} = ${sql.p(t.code)}` : 'false';
      },
    },
    specialty: { type: 'token', doc: `savoir-faire (spécialité ordinale: ${CODE_SYSTEM.specialite})`, where: (v, sql) => codeMatch('r.savoir_faire_code', CODE_SYSTEM.specialite, v as Token, sql) },
    ...mailboxParams('r.idnps', 'm.idnps', PERSONAL_BAL_TYPES, "the role's professional's"),
  },
  idCondition: (id, sql) => {
    const r = parseRoleId(id);
    return r ? `${idnpsRanges('r.key', [r.idnps], sql)} AND ${KEY_HASH} = ${sql.p(r.hash)}` : null;
  },
  build: async (_q, rows) => rows.map(practitionerRole),
};
