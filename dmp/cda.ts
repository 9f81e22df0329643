// CDA R2 documents: the header read for the XDS metadata it states (patient INS, document
// code, confidentiality, time, author, title, language, id) and a minimal builder for demo
// data and tests. What the header does not state (classCode, formatCode, practice setting)
// is the sender's choice; see dmp/documents.ts.
import { createHash, randomUUID } from 'node:crypto';
import { MssError } from '../core/errors.js';
import { withoutComments } from '../core/xml.js';
import { attr, child, children, decodeXml, escapeXml, parseXml, text, XmlRefused, type XmlNode } from './safe-xml.js';
import type { Author, Coded, DocumentEntry, PatientId } from './types.js';

export const CDA_NAMESPACE = 'urn:hl7-org:v3';
export const LOINC_OID = '2.16.840.1.113883.6.1';
/** RPPS national id of a professional (`8` + RPPS number), the CI-SIS author id root. */
export const RPPS_OID = '1.2.250.1.71.4.2.1';
/** National id of a structure (FINESS / SIRET forms), CI-SIS organisation id root. */
export const STRUCTURE_OID = '1.2.250.1.71.4.2.2';
/** INS OIDs: NIR, NIA, NIR test, NIR demo (REFERENCE.md). */
export const INS_OIDS = ['1.2.250.1.213.1.4.8', '1.2.250.1.213.1.4.9', '1.2.250.1.213.1.4.10', '1.2.250.1.213.1.4.11'] as const;

/** The patient as a CDA header names them (for the message subject and sourcePatientInfo). */
export interface CdaPatient {
  family?: string;
  given?: string;
  /** YYYYMMDD. */
  birthDate?: string;
  gender?: string;
}

export interface CdaHeader extends Partial<DocumentEntry> {
  hash: string;
  size: number;
  mimeType: string;
  patient: CdaPatient;
}

const ARRAYS = new Set(['id', 'name', 'family', 'given', 'author', 'recordTarget', 'documentationOf', 'performer', 'templateId', 'confidentialityCode']);

function codedOf(node: XmlNode | undefined): Coded | undefined {
  const code = attr(node, 'code')?.trim();
  const scheme = attr(node, 'codeSystem')?.trim();
  if (!code || !scheme) return undefined;
  const display = attr(node, 'displayName')?.trim();
  return display ? { code, scheme, display } : { code, scheme };
}

/**
 * HL7 TS (YYYYMMDDhhmmss[.ffff][±zzzz]) → XDS DTM in UTC. Without a zone the digits are
 * kept as they are (the precision the author gave); with one, the time is moved to UTC.
 */
export function tsToDtm(ts: string | undefined): string | undefined {
  const m = /^(\d{4,14})(?:\.\d+)?([+-]\d{4})?$/.exec(ts?.trim() ?? '');
  if (!m) return undefined;
  const digits = m[1]!;
  if (!m[2] || digits.length < 10 || digits.length % 2) return digits.length % 2 ? undefined : digits;
  const n = (i: number, l = 2) => Number(digits.slice(i, i + l) || '0');
  const sign = m[2][0] === '-' ? -1 : 1;
  const offset = sign * (Number(m[2].slice(1, 3)) * 60 + Number(m[2].slice(3, 5)));
  const utc = Date.UTC(n(0, 4), n(4) - 1, n(6), n(8), n(10), n(12)) - offset * 60_000;
  return new Date(utc).toISOString().replace(/[-:T]/g, '').slice(0, digits.length);
}

function names(node: XmlNode | undefined): { family?: string; given?: string } {
  const name = child(node, 'name');
  const families = children(name, 'family');
  // French CDA: family qualifier BR is the birth name, SP the used name; the birth name first.
  const family = text(families.find((f) => attr(f, 'qualifier') === 'BR') ?? families[0]);
  const given = text(children(name, 'given')[0]);
  return { ...(family ? { family } : {}), ...(given ? { given } : {}) };
}

/** XCN of a professional: `<id>^<NOM>^<Prénom>^^^^^^&<OID>&ISO^D^^^IDNPS` (REFERENCE.md). */
export function authorXcn(id: string, family = '', given = '', oid = RPPS_OID): string {
  return `${id}^${family}^${given}^^^^^^&${oid}&ISO^D^^^IDNPS`;
}

function readAuthor(a: XmlNode): Author | undefined {
  const assigned = child(a, 'assignedAuthor');
  if (!assigned) return undefined;
  const out: Author = {};
  const rpps = children(assigned, 'id').find((i) => attr(i, 'root') === RPPS_OID);
  const person = names(child(assigned, 'assignedPerson'));
  const ext = attr(rpps, 'extension')?.trim();
  if (ext) out.person = authorXcn(ext, person.family, person.given);
  const org = child(assigned, 'representedOrganization');
  const orgName = text(children(org, 'name')[0]);
  if (orgName) {
    const orgId = children(org, 'id').find((i) => attr(i, 'root') === STRUCTURE_OID);
    const idExt = attr(orgId, 'extension')?.trim();
    out.institution = [idExt ? `${orgName}^^^^^&${STRUCTURE_OID}&ISO^IDNST^^^${idExt}` : orgName];
  }
  const specialty = codedOf(child(assigned, 'code'));
  if (specialty) out.specialty = [`${specialty.code}^${specialty.display ?? ''}^${specialty.scheme}`];
  return out.person || out.institution ? out : undefined;
}

function cdaInvalid(reason: string): MssError {
  return new MssError('CDA_INVALID', { reason });
}

/**
 * The XDS metadata a CDA R2 header states, with the SHA-1 and size of the bytes. Throws
 * CDA_INVALID for what is not a CDA document at all (not XML, a DOCTYPE, another root);
 * fields the header lacks are simply absent.
 */
export function readCdaHeader(bytes: Buffer): CdaHeader {
  try {
    return headerOf(parseXml(decodeXml(bytes), ARRAYS, { stopNodes: ['ClinicalDocument.component'] }), bytes);
  } catch (e) {
    if (e instanceof XmlRefused) throw cdaInvalid(e.message);
    throw e;
  }
}

/** True when the bytes look like a CDA document (cheap check on the start, no parsing). */
export function looksLikeCda(bytes: Buffer): boolean {
  const head = withoutComments(bytes.subarray(0, 4096).toString('latin1'));
  return /<(?:[A-Za-z_][\w.-]*:)?ClinicalDocument[\s>/]/.test(head);
}

function headerOf(root: XmlNode, bytes: Buffer): CdaHeader {
  const doc = child(root, 'ClinicalDocument');
  if (!doc) throw cdaInvalid('its root element is not ClinicalDocument (HL7 CDA R2)');
  const out: CdaHeader = {
    hash: createHash('sha1').update(bytes).digest('hex'),
    size: bytes.length,
    mimeType: 'text/xml',
    patient: {},
  };
  const id = children(doc, 'id')[0];
  const idRoot = attr(id, 'root')?.trim();
  const idExt = attr(id, 'extension')?.trim();
  if (idRoot) out.uniqueId = idExt ? `${idRoot}^${idExt}` : idRoot;
  const type = codedOf(child(doc, 'code'));
  if (type) out.typeCode = type;
  const title = text(child(doc, 'title'));
  if (title) out.title = title;
  const created = tsToDtm(attr(child(doc, 'effectiveTime'), 'value'));
  if (created) out.creationTime = created;
  const conf = children(doc, 'confidentialityCode').map(codedOf).filter((c): c is Coded => !!c);
  if (conf.length) out.confidentialityCodes = conf;
  const lang = attr(child(doc, 'languageCode'), 'code')?.trim();
  if (lang) out.languageCode = lang;

  const role = child(children(doc, 'recordTarget')[0], 'patientRole');
  const ins = children(role, 'id').find((i) => (INS_OIDS as readonly string[]).includes(attr(i, 'root') ?? ''));
  const insExt = attr(ins, 'extension')?.trim();
  if (ins && insExt) out.patientId = { id: insExt, oid: attr(ins, 'root')! } satisfies PatientId;
  const patient = child(role, 'patient');
  out.patient = names(patient);
  const birth = attr(child(patient, 'birthTime'), 'value')?.trim().slice(0, 8);
  if (birth && /^\d{8}$/.test(birth)) out.patient.birthDate = birth;
  const gender = attr(child(patient, 'administrativeGenderCode'), 'code')?.trim();
  if (gender) out.patient.gender = gender;
  const info: string[] = [];
  if (out.patient.family || out.patient.given) info.push(`PID-5|${out.patient.family ?? ''}^${out.patient.given ?? ''}^^^^^L`);
  if (out.patient.birthDate) info.push(`PID-7|${out.patient.birthDate}`);
  if (out.patient.gender) info.push(`PID-8|${out.patient.gender}`);
  if (info.length) out.sourcePatientInfo = info;

  const authors = children(doc, 'author').map(readAuthor).filter((a): a is Author => !!a);
  if (authors.length) out.authors = authors;

  const event = child(children(doc, 'documentationOf')[0], 'serviceEvent');
  const start = tsToDtm(attr(child(child(event, 'effectiveTime'), 'low'), 'value'));
  if (start) out.serviceStartTime = start;
  const stop = tsToDtm(attr(child(child(event, 'effectiveTime'), 'high'), 'value'));
  if (stop) out.serviceStopTime = stop;
  // CI-SIS: the practice setting is the performer's organisation's standardIndustryClassCode.
  const practice = codedOf(child(child(child(children(event, 'performer')[0], 'assignedEntity'), 'representedOrganization'), 'standardIndustryClassCode'));
  if (practice) out.practiceSettingCode = practice;
  const facility = codedOf(child(child(child(child(child(doc, 'componentOf'), 'encompassingEncounter'), 'location'), 'healthCareFacility'), 'code'));
  if (facility) out.healthcareFacilityTypeCode = facility;
  return out;
}

// ---------------------------------------------------------------------------------------
// Builder.

export interface CdaInput {
  patient: { ins: string; oid?: string; family: string; given: string; birthDate?: string; gender?: 'M' | 'F' | 'U' };
  /** rpps: the 11-digit RPPS number (the id becomes `8<rpps>`), or the 12-character national id. */
  author: { rpps: string; family: string; given: string; organization?: { id?: string; name: string }; specialty?: Coded };
  /** The document's kind (LOINC), e.g. 11502-2 lab report. */
  code: Coded;
  title: string;
  /** Narrative: one paragraph per line. */
  text: string;
  id?: { root: string; extension?: string };
  effectiveTime?: Date;
  confidentiality?: Coded;
  languageCode?: string;
}

/** An OID made from a random UUID (ITU-T X.667: 2.25.<the UUID as an integer>). */
export function uuidOid(): string {
  return `2.25.${BigInt(`0x${randomUUID().replace(/-/g, '')}`).toString()}`;
}

/** HL7 TS in UTC with its zone: YYYYMMDDhhmmss+0000. */
function ts(d: Date): string {
  return `${d.toISOString().replace(/[-:T]/g, '').slice(0, 14)}+0000`;
}

/** A minimal CDA R2 document (CI-SIS header, one narrative section) for demo data and tests. */
export function buildCdaDocument(input: CdaInput): Buffer {
  try {
    return buildCda(input);
  } catch (e) {
    if (e instanceof XmlRefused) throw cdaInvalid(e.message);
    throw e;
  }
}

function buildCda(input: CdaInput): Buffer {
  const e = (s: string | undefined) => escapeXml(s ?? '', 'a CDA field');
  const at = ts(input.effectiveTime ?? new Date());
  const id = input.id ?? { root: uuidOid() };
  const rpps = /^\d{11}$/.test(input.author.rpps) ? `8${input.author.rpps}` : input.author.rpps;
  const conf = input.confidentiality ?? { code: 'N', scheme: '2.16.840.1.113883.5.25', display: 'Normal' };
  const p = input.patient;
  const a = input.author;
  const paragraphs = input.text.split(/\r?\n/).map((l) => `<paragraph>${e(l)}</paragraph>`).join('');
  const coded = (el: string, c: Coded) => `<${el} code="${e(c.code)}" codeSystem="${e(c.scheme)}"${c.display ? ` displayName="${e(c.display)}"` : ''}/>`;
  const org = a.organization
    ? `<representedOrganization>${a.organization.id ? `<id root="${STRUCTURE_OID}" extension="${e(a.organization.id)}"/>` : ''}<name>${e(a.organization.name)}</name></representedOrganization>`
    : '';
  const xml = `<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="${CDA_NAMESPACE}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <realmCode code="FR"/>
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
  <templateId root="2.16.840.1.113883.2.8.2.1"/>
  <templateId root="1.2.250.1.213.1.1.1.1"/>
  <id root="${e(id.root)}"${id.extension ? ` extension="${e(id.extension)}"` : ''}/>
  ${coded('code', input.code)}
  <title>${e(input.title)}</title>
  <effectiveTime value="${at}"/>
  ${coded('confidentialityCode', conf)}
  <languageCode code="${e(input.languageCode ?? 'fr-FR')}"/>
  <recordTarget>
    <patientRole>
      <id root="${e(p.oid ?? INS_OIDS[2])}" extension="${e(p.ins)}"/>
      <patient>
        <name><given>${e(p.given)}</given><family qualifier="BR">${e(p.family)}</family></name>
        <administrativeGenderCode code="${p.gender ?? 'U'}" codeSystem="2.16.840.1.113883.5.1"/>
        ${p.birthDate ? `<birthTime value="${e(p.birthDate)}"/>` : ''}
      </patient>
    </patientRole>
  </recordTarget>
  <author>
    <time value="${at}"/>
    <assignedAuthor>
      <id root="${RPPS_OID}" extension="${e(rpps)}"/>
      ${a.specialty ? coded('code', a.specialty) : ''}
      <assignedPerson><name><given>${e(a.given)}</given><family>${e(a.family)}</family></name></assignedPerson>
      ${org}
    </assignedAuthor>
  </author>
  <custodian><assignedCustodian><representedCustodianOrganization>${a.organization?.id ? `<id root="${STRUCTURE_OID}" extension="${e(a.organization.id)}"/>` : ''}<name>${e(a.organization?.name ?? 'Auteur')}</name></representedCustodianOrganization></assignedCustodian></custodian>
  <component>
    <structuredBody>
      <component><section><title>${e(input.title)}</title><text>${paragraphs}</text></section></component>
    </structuredBody>
  </component>
</ClinicalDocument>
`;
  return Buffer.from(xml.replace(/\n\s*\n/g, '\n'), 'utf8');
}
