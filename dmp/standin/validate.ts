// What the stand-in DMP checks before it registers a submission, answered the way an XDS
// registry/repository does: one RegistryError per problem, with the IHE ITI TF-3 §4.2.4.1
// error code and a codeContext saying what is wrong. The metadata is read by dmp/ebrim.ts
// (which already checks the XDS rules: codes with their schemes, DTM times, one patient);
// this adds what the DMP itself requires and what only a repository can see (the bytes).
import { createHash } from 'node:crypto';
import { MssError } from '../../core/errors.js';
import { readSubmitObjectsRequest, type MetadataSet } from '../ebrim.js';
import type { ReceivedRequest } from '../iti41/pnr.js';
import type { RegistryError } from '../iti41/soap.js';
import { NS, attr, descendants } from '../iti41/xml.js';
import type { Author, DocumentEntry } from '../types.js';

/** INS-NIR, INS-NIA, INS-NIR test, INS-NIR demo (REFERENCE.md). */
export const INS_OIDS: readonly string[] = ['1.2.250.1.213.1.4.8', '1.2.250.1.213.1.4.9', '1.2.250.1.213.1.4.10', '1.2.250.1.213.1.4.11'];
/** Identifiant national de professionnel de santé (RPPS, `8` + 11 digits in IDNPS form). */
export const RPPS_OID = '1.2.250.1.71.4.2.1';

const HAS_MEMBER = 'urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember';

/** What the registry already holds: uniqueIds are never registered twice. */
export interface RegistryState {
  hasUniqueId(uid: string): boolean;
}

export interface Verdict {
  errors: RegistryError[];
  /** The metadata, when it could be read. */
  metadata?: MetadataSet;
  /** The bytes of each document, by entryUuid (every document, when there is no error). */
  contents: Map<string, Buffer>;
}

const err = (code: string, context: string, location?: string): RegistryError => ({ code, context, severity: 'error', ...(location ? { location } : {}) });

/** The reader's sentences start with "document <id>:" or "submission set <id>:"; the id is the location. */
function locationOf(problem: string): string | undefined {
  const m = /^(?:document|submission set) ([^\s:]+):/.exec(problem);
  return m && m[1] !== '(no' ? m[1] : undefined;
}

/** XCN `8<RPPS>^NOM^Prénom^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS`: the id when the authority is the RPPS OID. */
export function rppsOf(a: Author): string | null {
  const c = (a.person ?? '').split('^');
  const id = c[0]?.trim();
  const authority = c[8]?.split('&');
  const oid = authority?.[1]?.trim() || authority?.[0]?.trim();
  return id && oid === RPPS_OID ? id : null;
}

const DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** A DTM that is also a real date and time (the reader checks the digits only). */
export function dtmIsReal(v: string): boolean {
  if (!/^\d{4}(?:\d{2}){0,5}$/.test(v)) return false;
  const [mo, d, h, mi, s] = [4, 6, 8, 10, 12].map((i) => (v.length > i ? Number(v.slice(i, i + 2)) : null));
  if (mo !== null && (mo < 1 || mo > 12)) return false;
  if (d !== null && (d < 1 || d > DAYS[mo! - 1]!)) return false;
  return (h === null || h < 24) && (mi === null || mi < 60) && (s === null || s < 60);
}

function documentChecks(d: DocumentEntry, out: RegistryError[]): void {
  const w = `document ${d.entryUuid}`;
  if (!INS_OIDS.includes(d.patientId.oid)) {
    out.push(err('XDSUnknownPatientId', `${w}: patient id ${d.patientId.id} is issued by ${d.patientId.oid}, which is not an INS authority (${INS_OIDS.join(', ')})`, d.entryUuid));
  }
  if (!d.authors.some((a) => rppsOf(a))) {
    out.push(err('XDSRegistryMetadataError', `${w}: no author identified by a national professional id (authorPerson 8<RPPS>^…^&${RPPS_OID}&ISO)`, d.entryUuid));
  }
  if (!dtmIsReal(d.creationTime)) out.push(err('XDSRegistryMetadataError', `${w}: creationTime "${d.creationTime}" is not a real date-time`, d.entryUuid));
}

/** The registry's verdict on one received ITI-41 request. */
export function checkSubmission(req: ReceivedRequest, registry: RegistryState): Verdict {
  const contents = new Map<string, Buffer>();
  let metadata: MetadataSet;
  try {
    metadata = readSubmitObjectsRequest(req.submitObjectsRequest);
  } catch (e) {
    if (!(e instanceof MssError) || e.code !== 'XDS_METADATA_INVALID') throw e;
    const problems = Array.isArray(e.details.problems) ? (e.details.problems as string[]) : [String(e.details.reason ?? e.message)];
    // One patient per submission: the reader says so in words; the registry has a code for it.
    const errors = problems.map((p) => err(/^document [^:]+: patient .* is not the submission set's /.test(p) ? 'XDSPatientIdDoesNotMatch' : 'XDSRegistryMetadataError', p, locationOf(p)));
    return { errors, contents };
  }
  const errors: RegistryError[] = [];
  const { set, documents } = metadata;

  if (!INS_OIDS.includes(set.patientId.oid)) {
    errors.push(err('XDSUnknownPatientId', `submission set ${set.entryUuid}: patient id ${set.patientId.id} is issued by ${set.patientId.oid}, which is not an INS authority (${INS_OIDS.join(', ')})`, set.entryUuid));
  }
  if (!set.authors.length) errors.push(err('XDSRegistryMetadataError', `submission set ${set.entryUuid}: no author`, set.entryUuid));
  for (const d of documents) documentChecks(d, errors);

  // Every document is a member of the set.
  const members = new Set(
    descendants(req.sor, NS.rim, 'Association')
      .filter((a) => attr(a, 'associationType') === HAS_MEMBER && attr(a, 'sourceObject') === set.entryUuid)
      .map((a) => attr(a, 'targetObject')),
  );
  for (const d of documents) {
    if (!members.has(d.entryUuid)) errors.push(err('XDSRegistryMetadataError', `document ${d.entryUuid}: no HasMember association from the submission set ${set.entryUuid}`, d.entryUuid));
  }

  // Unique ids: once in the message, never again in the registry.
  const seen = new Set<string>();
  for (const [uid, where] of [[set.uniqueId, set.entryUuid], ...documents.map((d) => [d.uniqueId, d.entryUuid])] as Array<[string, string]>) {
    if (seen.has(uid)) errors.push(err('XDSRegistryDuplicateUniqueIdInMessage', `uniqueId ${uid} is used twice in this submission`, where));
    else if (registry.hasUniqueId(uid)) errors.push(err('XDSDuplicateUniqueIdInRegistry', `uniqueId ${uid} is already registered`, where));
    seen.add(uid);
  }

  // The repository's side: each document's bytes, as described.
  const received = new Map<string, (typeof req.documents)[number]>();
  for (const r of req.documents) {
    if (received.has(r.id)) errors.push(err('XDSRepositoryMetadataError', `two xdsb:Document elements have the id ${r.id}`, r.id));
    received.set(r.id, r);
  }
  const described = new Set(documents.map((d) => d.entryUuid));
  for (const r of req.documents) {
    if (!described.has(r.id)) errors.push(err('XDSMissingDocumentMetadata', `the attached document ${r.id || '(no id)'} has no DocumentEntry in the metadata`, r.id || undefined));
  }
  for (const d of documents) {
    const r = received.get(d.entryUuid);
    if (!r) {
      errors.push(err('XDSMissingDocument', `document ${d.entryUuid} (${d.uniqueId}) is described but not attached: no xdsb:Document with this id`, d.entryUuid));
      continue;
    }
    if (!r.bytes) {
      errors.push(err('XDSMissingDocument', `document ${d.entryUuid} (${d.uniqueId}) is not attached: ${r.problem ?? 'no content'}`, d.entryUuid));
      continue;
    }
    if (!r.bytes.length) {
      errors.push(err('XDSRepositoryMetadataError', `document ${d.entryUuid} is empty (0 bytes)`, d.entryUuid));
      continue;
    }
    const sha1 = createHash('sha1').update(r.bytes).digest('hex');
    if (d.hash && d.hash.toLowerCase() !== sha1) errors.push(err('XDSNonIdenticalHash', `document ${d.entryUuid} (${d.uniqueId}): the metadata gives SHA-1 ${d.hash}, the attached bytes have ${sha1}`, d.entryUuid));
    if (d.size >= 0 && d.size !== r.bytes.length) errors.push(err('XDSNonIdenticalSize', `document ${d.entryUuid} (${d.uniqueId}): the metadata gives size ${d.size}, the attached bytes are ${r.bytes.length}`, d.entryUuid));
    contents.set(d.entryUuid, r.bytes);
  }
  for (const cid of req.unreferenced) errors.push({ code: 'XDSRepositoryMetadataError', context: `the attached part <${cid}> is referred to by no xdsb:Document and is ignored`, severity: 'warning' });
  return { errors, metadata, contents };
}
