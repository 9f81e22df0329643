// The publication payload of a BAL change, in the shape of the ANS FHIR IG "API Messagerie
// Sécurisée de Santé" (Annuaire Santé): a BAL is a `telecom` ContactPoint of the resource
// that carries it (Practitioner for PER/CAB, Organization for ORG/APP) with the
// as-ext-mailbox-mss-metadata extension; it is created, changed and removed by a FHIR
// Patch (`Parameters`: insert / replace / delete), sent as a conditional PATCH on the
// carrier's business identifier. Pure: a change in, a payload out.
import type { Bal, BalChange } from '../bal/index.js';

export const URL_MAILBOX_METADATA = 'https://interop.esante.gouv.fr/ig/fhir/annuaire/StructureDefinition/as-ext-mailbox-mss-metadata';
export const URL_EMAIL_TYPE = 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-contact-point-email-type';
export const SYSTEM_EMAIL_TYPE = 'https://mos.esante.gouv.fr/NOS/TRE_R256-TypeMessagerie/FHIR/TRE-R256-TypeMessagerie';
export const SYSTEM_BAL_TYPE = 'https://mos.esante.gouv.fr/NOS/TRE_R257-TypeBAL/FHIR/TRE-R257-TypeBAL';
/** idNatPs (IDNPS) and idNatStruct identifier systems of the Annuaire Santé. */
export const SYSTEM_IDNPS = 'urn:oid:1.2.250.1.71.4.2.1';
export const SYSTEM_IDNST = 'urn:oid:1.2.250.1.71.4.2.2';

export type PatchKind = 'insert' | 'replace' | 'delete';

export interface Publication {
  address: string;
  version: number;
  change: PatchKind;
  /** Conditional PATCH target, relative to the annuaire's FHIR base: `Practitioner?identifier=…`. */
  target: string;
  /** FHIR Patch body (`Parameters`). */
  payload: FhirParameters;
}

export interface FhirParameters {
  resourceType: 'Parameters';
  parameter: Array<{ name: 'operation'; part: Array<Record<string, unknown>> }>;
}

type Extension = { url: string } & Record<string, unknown>;

/** Which resource carries the BAL and how to find it by its business identifier. */
export function carrierOf(bal: Pick<Bal, 'type' | 'ownerId'>): { resource: 'Practitioner' | 'Organization'; target: string } {
  if (bal.type === 'PER' || bal.type === 'CAB') return { resource: 'Practitioner', target: `Practitioner?identifier=${SYSTEM_IDNPS}|${bal.ownerId}` };
  return { resource: 'Organization', target: `Organization?identifier=${SYSTEM_IDNST}|${bal.ownerId}` };
}

/**
 * The metadata the IG lets each type carry (description, service, responsible are not
 * published for PER; service not for CAB). Liste rouge travels as a flag: the national
 * annuaire knows the box and never publishes it.
 */
export function metadataExtension(bal: Bal): Extension {
  const ext: Extension[] = [{ url: 'type', valueCodeableConcept: { coding: [{ system: SYSTEM_BAL_TYPE, code: bal.type }] } }];
  const str = (url: string, v: string | null) => v && ext.push({ url, valueString: v });
  if (bal.type !== 'PER') str('description', bal.description);
  if (bal.type === 'ORG' || bal.type === 'APP') str('service', bal.service);
  if (bal.type !== 'PER') str('responsible', bal.responsible);
  ext.push({ url: 'listeRouge', valueBoolean: bal.listeRouge });
  return { url: URL_MAILBOX_METADATA, extension: ext };
}

export function contactPoint(bal: Bal): Record<string, unknown> {
  return {
    extension: [{ url: URL_EMAIL_TYPE, valueCoding: { system: SYSTEM_EMAIL_TYPE, code: 'MSSANTE' } }, metadataExtension(bal)],
    system: 'email',
    value: bal.address,
    ...(bal.rank ? { rank: bal.rank } : {}),
  };
}

/** FHIRPath string literals: backslash and quote escaped. */
const literal = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/**
 * The publication of a change, or null when the change is not published (members and
 * application certificates are the operator's business, not the annuaire's).
 */
export function publicationFor(change: Pick<BalChange, 'kind' | 'bal'>): Publication | null {
  const { bal } = change;
  const { resource, target } = carrierOf(bal);
  const telecom = `${resource}.telecom.where(value = ${literal(bal.address)})`;
  let kind: PatchKind;
  let part: Array<Record<string, unknown>>;
  switch (change.kind) {
    case 'created':
    case 'reopened':
      kind = 'insert';
      part = [{ name: 'type', valueCode: 'insert' }, { name: 'path', valueString: `${resource}.telecom` }, { name: 'index', valueInteger: 0 }, { name: 'value', valueContactPoint: contactPoint(bal) }];
      break;
    case 'updated':
      // A closed box is not in the annuaire: its changes wait for a reopening, which sends them all.
      if (bal.status === 'closed') return null;
      kind = 'replace';
      part = [{ name: 'type', valueCode: 'replace' }, { name: 'path', valueString: telecom }, { name: 'value', valueContactPoint: contactPoint(bal) }];
      break;
    case 'closed':
      kind = 'delete';
      part = [{ name: 'type', valueCode: 'delete' }, { name: 'path', valueString: telecom }];
      break;
    default:
      return null;
  }
  return { address: bal.address, version: bal.version, change: kind, target, payload: { resourceType: 'Parameters', parameter: [{ name: 'operation', part }] } };
}
