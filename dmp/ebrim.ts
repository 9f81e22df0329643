// The ebRIM SubmitObjectsRequest: METADATA.XML of an IHE_XDM package and the metadata part of
// an ITI-41 request. Written strictly (namespaced, escaped, every identifier of IHE ITI TF-3
// §4.2.5 as listed in REFERENCE.md); read leniently, because real producers omit the XML
// declaration or the namespace declarations, use other prefixes, or nest the submission
// set's classification. Both directions check the same rules and report every problem at
// once, so a registry (the stand-in DMP) can answer with a full error list.
import { MssError } from '../core/errors.js';
import { attr, child, children, decodeXml, escapeXml, findElement, parseXml, text, XmlRefused, type XmlNode } from './safe-xml.js';
import type { Author, Coded, DocumentEntry, PatientId, SubmissionSet } from './types.js';

export { maskingCodes, maskingOf, withMasking } from './masking.js';

export const NS = {
  lcm: 'urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0',
  rim: 'urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0',
  xsi: 'http://www.w3.org/2001/XMLSchema-instance',
} as const;

/** ebRIM identifiers of XDS metadata (IHE ITI TF-3 §4.2.5). */
export const XDS = {
  documentEntry: 'urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1',
  classCode: 'urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a',
  typeCode: 'urn:uuid:f0306f51-975f-434e-a61c-c59651d33983',
  formatCode: 'urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d',
  confidentialityCode: 'urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f',
  healthcareFacilityTypeCode: 'urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1',
  practiceSettingCode: 'urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead',
  eventCodeList: 'urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4',
  author: 'urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d',
  patientId: 'urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427',
  uniqueId: 'urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab',
  submissionSet: 'urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd',
  ssAuthor: 'urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d',
  ssContentTypeCode: 'urn:uuid:aa543740-bdda-424e-8c96-df4873be8500',
  ssUniqueId: 'urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8',
  ssSourceId: 'urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832',
  ssPatientId: 'urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446',
  hasMember: 'urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember',
} as const;

export interface MetadataSet {
  set: SubmissionSet;
  documents: DocumentEntry[];
}

export interface ReadOptions {
  /**
   * XDM rules (ITI-32): each document must state its hash, size and URI. Without it
   * (ITI-41, where the repository computes them) a missing hash reads as '' and a missing
   * size as -1, which the writer leaves out again.
   */
  xdm?: boolean;
}

// ---------------------------------------------------------------------------------------
// HL7 v2 data types used in slots and external identifiers.

/** Patient id in CX form: `<id>^^^&<oid>&ISO^NH`. */
export function patientCx(p: PatientId): string {
  return `${p.id}^^^&${p.oid}&ISO^NH`;
}

/** Reads a CX patient id; null when it has no id or no ISO assigning authority. */
export function parseCx(cx: string): PatientId | null {
  const comps = cx.trim().split('^');
  const id = comps[0]?.trim();
  const authority = comps[3]?.split('&');
  const oid = authority?.[1]?.trim() || authority?.[0]?.trim();
  if (!id || !oid || !/^[0-2](\.\d+)+$/.test(oid)) return null;
  return { id, oid };
}

const DTM = /^\d{4}(?:\d{2}){0,5}$/;

/** XDS DTM (UTC) of a date, to the second. */
export function dtm(d: Date): string {
  return d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

// ---------------------------------------------------------------------------------------
// Checks shared by the writer and the reader.

function codedProblems(where: string, what: string, c: Coded | undefined, required: boolean): string[] {
  if (!c) return required ? [`${where}: no ${what}`] : [];
  const out: string[] = [];
  if (!c.code?.trim()) out.push(`${where}: ${what} has no code`);
  if (!c.scheme?.trim()) out.push(`${where}: ${what} ${c.code ?? ''} has no coding scheme`);
  return out;
}

function patientProblems(where: string, p: PatientId | undefined): string[] {
  if (!p || !p.id?.trim() || !p.oid?.trim()) return [`${where}: no patient id (INS and its OID)`];
  if (!/^[0-2](\.\d+)+$/.test(p.oid)) return [`${where}: patient id OID "${p.oid}" is not an OID`];
  if (/[\^&|~\\]/.test(p.id)) return [`${where}: patient id "${p.id}" contains an HL7 separator`];
  return [];
}

function timeProblems(where: string, what: string, v: string | undefined, required: boolean): string[] {
  if (v === undefined || v === '') return required ? [`${where}: no ${what}`] : [];
  return DTM.test(v) ? [] : [`${where}: ${what} "${v}" is not an XDS date-time (YYYY[MM[DD[hh[mm[ss]]]]], UTC)`];
}

/** Every rule a submission breaks, as sentences; empty when it can be written or used. */
export function submissionProblems(sub: MetadataSet, opts: ReadOptions = {}): string[] {
  const p: string[] = [];
  const s = sub.set;
  const where = `submission set ${s?.entryUuid || '(no id)'}`;
  if (!s) return ['no submission set'];
  if (!s.entryUuid?.trim()) p.push('submission set: no id');
  if (!s.uniqueId?.trim()) p.push(`${where}: no uniqueId`);
  if (!s.sourceId?.trim()) p.push(`${where}: no sourceId`);
  p.push(...patientProblems(where, s.patientId));
  p.push(...codedProblems(where, 'contentTypeCode', s.contentTypeCode, true));
  p.push(...timeProblems(where, 'submissionTime', s.submissionTime, true));
  if (!sub.documents?.length) p.push('it describes no document');
  const ids = new Set<string>([s.entryUuid]);
  for (const d of sub.documents ?? []) {
    const w = `document ${d.entryUuid || '(no id)'}`;
    if (!d.entryUuid?.trim()) p.push('a document has no id');
    else if (ids.has(d.entryUuid)) p.push(`${w}: id used twice`);
    ids.add(d.entryUuid);
    if (!d.uniqueId?.trim()) p.push(`${w}: no uniqueId`);
    p.push(...patientProblems(w, d.patientId));
    if (s.patientId?.id && d.patientId?.id && (s.patientId.id !== d.patientId.id || s.patientId.oid !== d.patientId.oid)) {
      p.push(`${w}: patient ${d.patientId.id} (${d.patientId.oid}) is not the submission set's ${s.patientId.id} (${s.patientId.oid})`);
    }
    p.push(...codedProblems(w, 'classCode', d.classCode, true));
    p.push(...codedProblems(w, 'typeCode', d.typeCode, true));
    p.push(...codedProblems(w, 'formatCode', d.formatCode, true));
    if (!d.confidentialityCodes?.length) p.push(`${w}: no confidentialityCode`);
    for (const c of d.confidentialityCodes ?? []) p.push(...codedProblems(w, 'confidentialityCode', c, true));
    p.push(...codedProblems(w, 'practiceSettingCode', d.practiceSettingCode, false));
    p.push(...codedProblems(w, 'healthcareFacilityTypeCode', d.healthcareFacilityTypeCode, false));
    for (const c of d.eventCodes ?? []) p.push(...codedProblems(w, 'eventCode', c, true));
    p.push(...timeProblems(w, 'creationTime', d.creationTime, true));
    p.push(...timeProblems(w, 'serviceStartTime', d.serviceStartTime, false));
    p.push(...timeProblems(w, 'serviceStopTime', d.serviceStopTime, false));
    if (!d.mimeType?.trim()) p.push(`${w}: no mimeType`);
    if (!d.languageCode?.trim()) p.push(`${w}: no languageCode`);
    const hashStated = d.hash !== undefined && d.hash !== '';
    if (hashStated && !/^[0-9a-f]{40}$/.test(d.hash)) p.push(`${w}: hash "${d.hash}" is not a SHA-1 in lower-case hex`);
    if (!hashStated && opts.xdm) p.push(`${w}: no hash`);
    const sizeStated = typeof d.size === 'number' && d.size >= 0;
    if (sizeStated && !Number.isSafeInteger(d.size)) p.push(`${w}: size ${d.size} is not a whole number`);
    if (!sizeStated && opts.xdm) p.push(`${w}: no size`);
    if (opts.xdm && !d.uri?.trim()) p.push(`${w}: no URI (its file name in the package)`);
    for (const a of d.authors ?? []) if (!a.person && !a.institution?.length) p.push(`${w}: an author has neither authorPerson nor authorInstitution`);
  }
  for (const a of s.authors ?? []) if (!a.person && !a.institution?.length) p.push(`${where}: an author has neither authorPerson nor authorInstitution`);
  return p;
}

// ---------------------------------------------------------------------------------------
// Writer.

class Writer {
  private n = { cl: 0, ei: 0, as: 0 };
  readonly lines: string[] = [];

  private esc(s: string, what: string): string {
    try {
      return escapeXml(s, what);
    } catch (e) {
      throw new MssError('XDS_METADATA_INVALID', { reason: (e as Error).message, problems: [(e as Error).message] });
    }
  }

  line(depth: number, s: string) {
    this.lines.push('  '.repeat(depth) + s);
  }

  slot(depth: number, name: string, values: readonly string[] | undefined) {
    if (!values?.length) return;
    this.line(depth, `<rim:Slot name="${this.esc(name, 'a slot name')}">`);
    this.line(depth + 1, '<rim:ValueList>');
    for (const v of values) this.line(depth + 2, `<rim:Value>${this.esc(v, `slot ${name}`)}</rim:Value>`);
    this.line(depth + 1, '</rim:ValueList>');
    this.line(depth, '</rim:Slot>');
  }

  name(depth: number, value: string | undefined) {
    if (!value) return;
    this.line(depth, `<rim:Name><rim:LocalizedString value="${this.esc(value, 'a title')}"/></rim:Name>`);
  }

  coded(depth: number, scheme: string, object: string, c: Coded | undefined) {
    if (!c) return;
    const id = `cl${++this.n.cl}`;
    this.line(depth, `<rim:Classification id="${id}" classificationScheme="${scheme}" classifiedObject="${this.esc(object, 'an id')}" nodeRepresentation="${this.esc(c.code, 'a code')}">`);
    this.slot(depth + 1, 'codingScheme', [c.scheme]);
    // Registries require a display name; the code stands in when the source gave none.
    this.name(depth + 1, c.display || c.code);
    this.line(depth, '</rim:Classification>');
  }

  author(depth: number, scheme: string, object: string, a: Author) {
    const id = `cl${++this.n.cl}`;
    this.line(depth, `<rim:Classification id="${id}" classificationScheme="${scheme}" classifiedObject="${this.esc(object, 'an id')}" nodeRepresentation="">`);
    this.slot(depth + 1, 'authorPerson', a.person ? [a.person] : undefined);
    this.slot(depth + 1, 'authorInstitution', a.institution);
    this.slot(depth + 1, 'authorRole', a.role);
    this.slot(depth + 1, 'authorSpecialty', a.specialty);
    this.line(depth, '</rim:Classification>');
  }

  identifier(depth: number, scheme: string, object: string, value: string, label: string) {
    const id = `ei${++this.n.ei}`;
    this.line(depth, `<rim:ExternalIdentifier id="${id}" registryObject="${this.esc(object, 'an id')}" identificationScheme="${scheme}" value="${this.esc(value, label)}">`);
    this.name(depth + 1, label);
    this.line(depth, '</rim:ExternalIdentifier>');
  }

  document(depth: number, d: DocumentEntry) {
    const id = d.entryUuid;
    this.line(depth, `<rim:ExtrinsicObject id="${this.esc(id, 'an id')}" mimeType="${this.esc(d.mimeType, 'a MIME type')}" objectType="${XDS.documentEntry}">`);
    const s = depth + 1;
    this.slot(s, 'creationTime', [d.creationTime]);
    if (d.hash) this.slot(s, 'hash', [d.hash]);
    this.slot(s, 'languageCode', [d.languageCode]);
    this.slot(s, 'serviceStartTime', d.serviceStartTime ? [d.serviceStartTime] : undefined);
    this.slot(s, 'serviceStopTime', d.serviceStopTime ? [d.serviceStopTime] : undefined);
    if (d.size >= 0) this.slot(s, 'size', [String(d.size)]);
    this.slot(s, 'sourcePatientId', [patientCx(d.patientId)]);
    this.slot(s, 'sourcePatientInfo', d.sourcePatientInfo);
    this.slot(s, 'URI', d.uri ? [d.uri] : undefined);
    this.name(s, d.title);
    for (const a of d.authors ?? []) this.author(s, XDS.author, id, a);
    this.coded(s, XDS.classCode, id, d.classCode);
    for (const c of d.confidentialityCodes) this.coded(s, XDS.confidentialityCode, id, c);
    for (const c of d.eventCodes ?? []) this.coded(s, XDS.eventCodeList, id, c);
    this.coded(s, XDS.formatCode, id, d.formatCode);
    this.coded(s, XDS.healthcareFacilityTypeCode, id, d.healthcareFacilityTypeCode);
    this.coded(s, XDS.practiceSettingCode, id, d.practiceSettingCode);
    this.coded(s, XDS.typeCode, id, d.typeCode);
    this.identifier(s, XDS.patientId, id, patientCx(d.patientId), 'XDSDocumentEntry.patientId');
    this.identifier(s, XDS.uniqueId, id, d.uniqueId, 'XDSDocumentEntry.uniqueId');
    this.line(depth, '</rim:ExtrinsicObject>');
  }

  set(depth: number, set: SubmissionSet) {
    const id = set.entryUuid;
    this.line(depth, `<rim:RegistryPackage id="${this.esc(id, 'an id')}">`);
    const s = depth + 1;
    this.slot(s, 'submissionTime', [set.submissionTime]);
    this.slot(s, 'intendedRecipient', set.intendedRecipients);
    this.name(s, set.title);
    for (const a of set.authors ?? []) this.author(s, XDS.ssAuthor, id, a);
    this.coded(s, XDS.ssContentTypeCode, id, set.contentTypeCode);
    this.identifier(s, XDS.ssUniqueId, id, set.uniqueId, 'XDSSubmissionSet.uniqueId');
    this.identifier(s, XDS.ssSourceId, id, set.sourceId, 'XDSSubmissionSet.sourceId');
    this.identifier(s, XDS.ssPatientId, id, patientCx(set.patientId), 'XDSSubmissionSet.patientId');
    this.line(depth, '</rim:RegistryPackage>');
    this.line(depth, `<rim:Classification id="cl${++this.n.cl}" classifiedObject="${this.esc(id, 'an id')}" classificationNode="${XDS.submissionSet}"/>`);
  }

  member(depth: number, setId: string, docId: string) {
    this.line(depth, `<rim:Association id="as${++this.n.as}" associationType="${XDS.hasMember}" sourceObject="${this.esc(setId, 'an id')}" targetObject="${this.esc(docId, 'an id')}">`);
    this.slot(depth + 1, 'SubmissionSetStatus', ['Original']);
    this.line(depth, '</rim:Association>');
  }
}

/** METADATA.XML / the ITI-41 metadata: throws XDS_METADATA_INVALID listing every problem. */
export function writeSubmitObjectsRequest(sub: MetadataSet): string {
  const problems = submissionProblems(sub);
  if (problems.length) throw new MssError('XDS_METADATA_INVALID', { reason: problems.join('; '), problems });
  const w = new Writer();
  w.lines.push('<?xml version="1.0" encoding="UTF-8"?>');
  w.line(0, `<lcm:SubmitObjectsRequest xmlns:lcm="${NS.lcm}" xmlns:rim="${NS.rim}" xmlns:xsi="${NS.xsi}">`);
  w.line(1, '<rim:RegistryObjectList>');
  for (const d of sub.documents) w.document(2, d);
  w.set(2, sub.set);
  for (const d of sub.documents) w.member(2, sub.set.entryUuid, d.entryUuid);
  w.line(1, '</rim:RegistryObjectList>');
  w.line(0, '</lcm:SubmitObjectsRequest>');
  return w.lines.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------
// Reader.

const ARRAYS = new Set(['Slot', 'Value', 'Classification', 'ExternalIdentifier', 'ExtrinsicObject', 'RegistryPackage', 'Association', 'LocalizedString', 'ObjectRef']);

function invalid(reason: string, problems: string[] = [reason]): MssError {
  return new MssError('XDS_METADATA_INVALID', { reason, problems });
}

/** Slot values by name; URI values split as `1|…`, `2|…` (long URIs) are joined back. */
function slotsOf(node: XmlNode): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const s of children(node, 'Slot')) {
    const name = attr(s, 'name');
    if (!name) continue;
    const values = children(child(s, 'ValueList'), 'Value').map((v) => text(v) ?? '');
    out.set(name, [...(out.get(name) ?? []), ...values]);
  }
  const uri = out.get('URI');
  if (uri && uri.length > 1 && uri.every((v) => /^\d+\|/.test(v))) {
    const parts = uri.map((v) => ({ n: parseInt(v, 10), s: v.slice(v.indexOf('|') + 1) })).sort((a, b) => a.n - b.n);
    out.set('URI', [parts.map((p) => p.s).join('')]);
  }
  return out;
}

function localized(node: XmlNode, element: 'Name' | 'Description'): string | undefined {
  const v = attr(child(child(node, element), 'LocalizedString'), 'value');
  return v?.trim() || undefined;
}

function one(slots: Map<string, string[]>, name: string): string | undefined {
  const v = slots.get(name)?.[0]?.trim();
  return v || undefined;
}

interface RimObject {
  node: XmlNode;
  id: string;
  slots: Map<string, string[]>;
  classifications: XmlNode[];
  identifiers: XmlNode[];
}

function readCoded(cl: XmlNode): Coded {
  const code = attr(cl, 'nodeRepresentation')?.trim() ?? '';
  const scheme = one(slotsOf(cl), 'codingScheme') ?? '';
  const display = localized(cl, 'Name');
  return display ? { code, scheme, display } : { code, scheme };
}

function readAuthor(cl: XmlNode): Author {
  const s = slotsOf(cl);
  const a: Author = {};
  const person = one(s, 'authorPerson');
  if (person) a.person = person;
  const list = (n: string) => (s.get(n) ?? []).map((v) => v.trim()).filter(Boolean);
  if (list('authorInstitution').length) a.institution = list('authorInstitution');
  if (list('authorRole').length) a.role = list('authorRole');
  if (list('authorSpecialty').length) a.specialty = list('authorSpecialty');
  return a;
}

function byScheme(o: RimObject, scheme: string): XmlNode[] {
  return o.classifications.filter((c) => attr(c, 'classificationScheme') === scheme);
}

function identifier(o: RimObject, scheme: string): string | undefined {
  return attr(o.identifiers.find((e) => attr(e, 'identificationScheme') === scheme), 'value')?.trim() || undefined;
}

function readPatient(where: string, cx: string | undefined, problems: string[]): PatientId {
  if (!cx) return { id: '', oid: '' };
  const p = parseCx(cx);
  if (!p) {
    problems.push(`${where}: patient id "${cx}" is not in CX form <id>^^^&<OID>&ISO`);
    return { id: '', oid: '' };
  }
  return p;
}

function readDocument(o: RimObject, problems: string[]): DocumentEntry {
  const w = `document ${o.id}`;
  const first = (scheme: string) => {
    const c = byScheme(o, scheme)[0];
    return c ? readCoded(c) : undefined;
  };
  const hash = one(o.slots, 'hash');
  const size = one(o.slots, 'size');
  if (size !== undefined && !/^\d+$/.test(size)) problems.push(`${w}: size "${size}" is not a number of bytes`);
  const d: DocumentEntry = {
    entryUuid: o.id,
    uniqueId: identifier(o, XDS.uniqueId) ?? '',
    patientId: readPatient(w, identifier(o, XDS.patientId), problems),
    classCode: first(XDS.classCode)!,
    typeCode: first(XDS.typeCode)!,
    formatCode: first(XDS.formatCode)!,
    confidentialityCodes: byScheme(o, XDS.confidentialityCode).map(readCoded),
    authors: byScheme(o, XDS.author).map(readAuthor),
    creationTime: one(o.slots, 'creationTime') ?? '',
    mimeType: attr(o.node, 'mimeType')?.trim() ?? '',
    languageCode: one(o.slots, 'languageCode') ?? '',
    hash: hash ? hash.toLowerCase() : '',
    size: size !== undefined && /^\d+$/.test(size) ? Number(size) : -1,
  };
  const practice = first(XDS.practiceSettingCode);
  if (practice) d.practiceSettingCode = practice;
  const facility = first(XDS.healthcareFacilityTypeCode);
  if (facility) d.healthcareFacilityTypeCode = facility;
  const events = byScheme(o, XDS.eventCodeList).map(readCoded);
  if (events.length) d.eventCodes = events;
  const start = one(o.slots, 'serviceStartTime');
  if (start) d.serviceStartTime = start;
  const stop = one(o.slots, 'serviceStopTime');
  if (stop) d.serviceStopTime = stop;
  const title = localized(o.node, 'Name');
  if (title) d.title = title;
  const uri = one(o.slots, 'URI');
  if (uri) d.uri = uri;
  const info = o.slots.get('sourcePatientInfo')?.map((v) => v.trim()).filter(Boolean);
  if (info?.length) d.sourcePatientInfo = info;
  return d;
}

function readSet(o: RimObject, problems: string[]): SubmissionSet {
  const w = `submission set ${o.id}`;
  const ct = byScheme(o, XDS.ssContentTypeCode)[0];
  const s: SubmissionSet = {
    entryUuid: o.id,
    uniqueId: identifier(o, XDS.ssUniqueId) ?? '',
    sourceId: identifier(o, XDS.ssSourceId) ?? '',
    patientId: readPatient(w, identifier(o, XDS.ssPatientId), problems),
    contentTypeCode: ct ? readCoded(ct) : (undefined as unknown as Coded),
    submissionTime: one(o.slots, 'submissionTime') ?? '',
    authors: byScheme(o, XDS.ssAuthor).map(readAuthor),
  };
  const title = localized(o.node, 'Name');
  if (title) s.title = title;
  const recipients = o.slots.get('intendedRecipient')?.map((v) => v.trim()).filter(Boolean);
  if (recipients?.length) s.intendedRecipients = recipients;
  return s;
}

/**
 * Reads a SubmitObjectsRequest (alone or inside an envelope such as an ITI-41 request):
 * the submission set and its documents. Throws XDS_METADATA_INVALID with every problem.
 */
export function readSubmitObjectsRequest(xml: string | Buffer, opts: ReadOptions = {}): MetadataSet {
  try {
    return readTree(parseXml(decodeXml(xml), ARRAYS), opts);
  } catch (e) {
    // Also raised while reading values (an undeclared entity in an attribute).
    if (e instanceof XmlRefused) throw invalid(e.message);
    throw e;
  }
}

function readTree(root: XmlNode, opts: ReadOptions): MetadataSet {
  const request = findElement(root, 'SubmitObjectsRequest');
  if (!request) throw invalid('it has no SubmitObjectsRequest element');
  const list = child(request, 'RegistryObjectList');
  if (!list) throw invalid('its SubmitObjectsRequest has no RegistryObjectList');

  // Classifications and identifiers may be nested in their object or stand at the top level.
  const looseClassifications = children(list, 'Classification');
  const looseIdentifiers = children(list, 'ExternalIdentifier');
  const rim = (node: XmlNode): RimObject => {
    const id = attr(node, 'id')?.trim() ?? '';
    return {
      node,
      id,
      slots: slotsOf(node),
      classifications: [...children(node, 'Classification'), ...looseClassifications.filter((c) => attr(c, 'classifiedObject') === id)],
      identifiers: [...children(node, 'ExternalIdentifier'), ...looseIdentifiers.filter((e) => attr(e, 'registryObject') === id)],
    };
  };

  const problems: string[] = [];
  const packages = children(list, 'RegistryPackage').map(rim);
  const isSet = (p: RimObject) =>
    p.classifications.some((c) => attr(c, 'classificationNode') === XDS.submissionSet) || p.identifiers.some((e) => attr(e, 'identificationScheme') === XDS.ssUniqueId);
  const sets = packages.filter(isSet);
  if (sets.length !== 1) {
    const reason = sets.length ? `it has ${sets.length} submission sets, one is expected` : `it has no submission set (a RegistryPackage classified ${XDS.submissionSet})`;
    throw invalid(reason);
  }
  const set = readSet(sets[0]!, problems);

  const documents = children(list, 'ExtrinsicObject')
    .map(rim)
    .filter((o) => {
      const type = attr(o.node, 'objectType');
      return !type || type === XDS.documentEntry;
    })
    .map((o) => readDocument(o, problems));

  const all = [...new Set([...problems, ...submissionProblems({ set, documents }, opts)])];
  if (all.length) throw invalid(all.join('; '), all);
  return { set, documents };
}
