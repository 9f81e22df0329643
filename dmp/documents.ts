// Clinical documents and messages: what a received message carries (each IHE_XDM.zip read
// and checked, each bare CDA document's header read — a hostile attachment gives an error
// on that attachment, never on the whole message), and the message that carries a
// submission when sending (Ref #2: IHE_XDM.zip, X-MSS-* headers, the XDM subject).
import { randomUUID } from 'node:crypto';
import { simpleParser, type Attachment } from 'mailparser';
import type { SendMailOptions } from 'nodemailer';
import yauzl from 'yauzl';
import { MssError, isMssError, type ErrorCode } from '../core/errors.js';
import { INS_OIDS, looksLikeCda, readCdaHeader, uuidOid, type CdaHeader } from './cda.js';
import { dtm } from './ebrim.js';
import { maskingCodes, withMasking } from './masking.js';
import type { Author, Coded, DocumentEntry, Masking, Submission } from './types.js';
import { buildXdm, XDM_ATTACHMENT_NAME } from './xdm/build.js';
import { readXdm, type XdmLimits } from './xdm/read.js';

export interface MessageDocument {
  /** The attachment's file name as sent (or `attachment-<n>`). */
  filename: string;
  contentType: string;
  kind: 'xdm' | 'cda';
  /** kind xdm: the checked submission, with the documents' bytes. */
  submission?: Submission;
  /** kind cda: what the header states (with hash and size). */
  entries?: CdaHeader[];
  /** kind cda: the document's bytes. */
  content?: Buffer;
  /** Why the attachment was refused (a sentence); nothing else is given then. */
  error?: string;
  errorCode?: ErrorCode;
}

const ZIP_TYPES = new Set(['application/zip', 'application/x-zip-compressed', 'application/x-zip', 'multipart/x-zip']);
const XML_TYPES = new Set(['text/xml', 'application/xml', 'application/hl7-v3+xml', 'application/hl7-cda+xml']);

/** Whether a ZIP has the IHE_XDM layout, from its central directory alone (nothing inflated). */
function hasXdmLayout(bytes: Buffer): Promise<boolean> {
  return new Promise((resolve) =>
    yauzl.fromBuffer(bytes, { lazyEntries: true, autoClose: false, decodeStrings: false }, (err, zip) => {
      if (err || !zip) return resolve(false);
      let seen = 0;
      const finish = (v: boolean) => {
        zip.close();
        resolve(v);
      };
      zip.on('error', () => finish(false));
      zip.on('entry', (e: yauzl.Entry) => {
        const name = (e.fileName as unknown as Buffer).toString('latin1');
        if (/^IHE_XDM\//i.test(name)) return finish(true);
        // A glance suffices: real packages list IHE_XDM/ among the first few entries.
        if (++seen >= 16) return finish(false);
        zip.readEntry();
      });
      zip.on('end', () => finish(false));
      zip.readEntry();
    }),
  );
}

function refusedEntry(base: Omit<MessageDocument, 'error' | 'errorCode'>, e: unknown): MessageDocument {
  // Unexpected failures never leak their message; MssErrors are written for people.
  const m = isMssError(e) ? e : new MssError('INTERNAL');
  return { ...base, error: isMssError(e) ? m.message : 'this attachment could not be read', errorCode: m.code };
}

async function readAttachment(a: Attachment, n: number, limits: XdmLimits): Promise<MessageDocument | null> {
  const filename = a.filename || `attachment-${n}`;
  const contentType = (a.contentType || 'application/octet-stream').toLowerCase();
  const content = a.content;
  const zipNamed = /\.zip$/i.test(filename);
  const isXdm = filename.toUpperCase() === XDM_ATTACHMENT_NAME.toUpperCase() || ((ZIP_TYPES.has(contentType) || zipNamed) && (await hasXdmLayout(content)));
  if (isXdm) {
    const base = { filename, contentType, kind: 'xdm' as const };
    try {
      return { ...base, submission: await readXdm(content, limits) };
    } catch (e) {
      return refusedEntry(base, e);
    }
  }
  const xmlish = XML_TYPES.has(contentType) || (/\.xml$/i.test(filename) && contentType === 'application/octet-stream');
  if (xmlish && looksLikeCda(content)) {
    const base = { filename, contentType, kind: 'cda' as const };
    try {
      return { ...base, entries: [readCdaHeader(content)], content };
    } catch (e) {
      return refusedEntry(base, e);
    }
  }
  return null;
}

/**
 * The clinical documents a message carries, one item per IHE_XDM.zip or bare CDA
 * attachment (other attachments are not listed). Throws only when the message itself
 * cannot be parsed.
 */
export async function documentsOfMessage(raw: Buffer, limits: XdmLimits): Promise<MessageDocument[]> {
  const mail = await simpleParser(raw, { skipHtmlToText: true, skipTextToHtml: true, skipImageLinks: true, keepCidLinks: true });
  const out: MessageDocument[] = [];
  let n = 0;
  for (const a of mail.attachments) {
    const doc = await readAttachment(a, ++n, limits);
    if (doc) out.push(doc);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Sending.

export interface CdaSubmissionOptions {
  /** OID of the sending system (the submission set's sourceId). */
  sourceId: string;
  /** Default: 10 "Compte rendu" (1.2.250.1.213.1.1.4.1). */
  classCode?: Coded;
  /**
   * Default: IHE's generic urn:ihe:iti:xds:2017:mimeTypeSufficient; set the CI-SIS format
   * of the document's volet (e.g. urn:ihe:lab:xd-lab:2008) when known.
   */
  formatCode?: Coded;
  practiceSettingCode?: Coded;
  healthcareFacilityTypeCode?: Coded;
  /** Default: the first document's typeCode (a stand-in; the DMP has its own list). */
  contentTypeCode?: Coded;
  masking?: Masking | Masking[];
  submissionTime?: Date;
  intendedRecipients?: string[];
  /** The submission set's author; default the first document's first author. */
  author?: Author;
  title?: string;
}

export const DEFAULT_CLASS_CODE: Coded = { code: '10', scheme: '1.2.250.1.213.1.1.4.1', display: 'Compte rendu' };
export const DEFAULT_FORMAT_CODE: Coded = { code: 'urn:ihe:iti:xds:2017:mimeTypeSufficient', scheme: '1.3.6.1.4.1.19376.1.2.3', display: 'Format défini par le type MIME' };

/**
 * A submission for CDA documents about one patient: what the headers state, completed by
 * the sender's choices. Throws CDA_INVALID when a header lacks what XDS requires.
 */
export function submissionFromCda(docs: Buffer | Buffer[], opts: CdaSubmissionOptions): Submission {
  const list = Array.isArray(docs) ? docs : [docs];
  if (!list.length) throw new MssError('CDA_INVALID', { reason: 'no document was given' });
  const contents = new Map<string, Buffer>();
  const documents: DocumentEntry[] = list.map((bytes, i) => {
    const h = readCdaHeader(bytes);
    const which = list.length > 1 ? `document ${i + 1}: ` : '';
    const missing = (['patientId', 'typeCode', 'uniqueId', 'creationTime'] as const).filter((k) => !h[k]);
    if (missing.length) throw new MssError('CDA_INVALID', { reason: `${which}its header has no ${missing.join(', ')}` });
    const entryUuid = `urn:uuid:${randomUUID()}`;
    contents.set(entryUuid, bytes);
    const base = h.confidentialityCodes ?? [];
    const d: DocumentEntry = {
      entryUuid,
      uniqueId: h.uniqueId!,
      patientId: h.patientId!,
      classCode: opts.classCode ?? DEFAULT_CLASS_CODE,
      typeCode: h.typeCode!,
      formatCode: opts.formatCode ?? DEFAULT_FORMAT_CODE,
      confidentialityCodes: opts.masking ? withMasking(base, opts.masking) : base.length ? base : maskingCodes('normal'),
      authors: h.authors ?? [],
      creationTime: h.creationTime!,
      mimeType: h.mimeType,
      languageCode: h.languageCode ?? 'fr-FR',
      hash: h.hash,
      size: h.size,
    };
    const practice = opts.practiceSettingCode ?? h.practiceSettingCode;
    if (practice) d.practiceSettingCode = practice;
    const facility = opts.healthcareFacilityTypeCode ?? h.healthcareFacilityTypeCode;
    if (facility) d.healthcareFacilityTypeCode = facility;
    for (const k of ['serviceStartTime', 'serviceStopTime', 'title', 'sourcePatientInfo'] as const) if (h[k]) (d as unknown as Record<string, unknown>)[k] = h[k];
    return d;
  });
  const first = documents[0]!;
  const other = documents.find((d) => d.patientId.id !== first.patientId.id || d.patientId.oid !== first.patientId.oid);
  if (other) throw new MssError('CDA_INVALID', { reason: `the documents are about different patients (${first.patientId.id}, ${other.patientId.id}); send one message per patient` });
  const author = opts.author ?? first.authors[0];
  return {
    set: {
      entryUuid: `urn:uuid:${randomUUID()}`,
      uniqueId: uuidOid(),
      sourceId: opts.sourceId,
      patientId: { ...first.patientId },
      contentTypeCode: opts.contentTypeCode ?? first.typeCode,
      submissionTime: dtm(opts.submissionTime ?? new Date()),
      authors: author ? [author] : [],
      ...(opts.title ? { title: opts.title } : first.title ? { title: first.title } : {}),
      ...(opts.intendedRecipients?.length ? { intendedRecipients: opts.intendedRecipients } : {}),
    },
    documents,
    contents,
  };
}

export interface XdmSubjectParts {
  label: string;
  family?: string;
  given?: string;
  /** YYYYMMDD. */
  birthDate?: string;
}

const plain = (s: string) => s.normalize('NFD').replace(/[\u0300-\u036f]/g, '').replace(/\s+/g, ' ').trim();

/**
 * `XDM/1.0/DDM+<label> <NOM> <prénom> <date of birth>` (Ref #2): the label is the
 * document's code display name (40 characters at most) or "<n> documents", the name in
 * capitals, names without accents, the date as DD/MM/YYYY.
 */
export function xdmSubject(p: XdmSubjectParts): string {
  const parts = [plain(p.label).slice(0, 40).trim()];
  if (p.family) parts.push(plain(p.family).toUpperCase());
  if (p.given) parts.push(plain(p.given));
  if (p.birthDate && /^\d{8}$/.test(p.birthDate)) parts.push(`${p.birthDate.slice(6, 8)}/${p.birthDate.slice(4, 6)}/${p.birthDate.slice(0, 4)}`);
  return `XDM/1.0/DDM+${parts.join(' ')}`;
}

/** The patient's name and birth date from sourcePatientInfo (PID-5 NOM^Prénom, PID-7 date). */
export function patientOfSubmission(sub: Pick<Submission, 'documents'>): { family?: string; given?: string; birthDate?: string } {
  for (const d of sub.documents) {
    const info = d.sourcePatientInfo ?? [];
    const pid5 = info.find((l) => l.startsWith('PID-5|'))?.slice(6).split('~')[0]?.split('^');
    const pid7 = info.find((l) => l.startsWith('PID-7|'))?.slice(6).trim();
    if (pid5?.[0]) return { family: pid5[0], ...(pid5[1] ? { given: pid5[1] } : {}), ...(pid7 && /^\d{8}/.test(pid7) ? { birthDate: pid7.slice(0, 8) } : {}) };
  }
  return {};
}

export interface ComposeXdmOptions {
  from: string;
  to: string | string[];
  cc?: string | string[];
  /** Default: the XDM subject when the patient's name is known, else the label. */
  subject?: string;
  text: string;
  submission: Submission;
  /** The sending software's reference (X-MSS-NIL). */
  nil: string;
  /** Whether the patient's INS is qualified; default: its OID is an INS one. */
  insQualified?: boolean;
  /** Subject label; default the document's code display name or "<n> documents". */
  label?: string;
}

/** Nodemailer options for a message carrying a submission as IHE_XDM.zip (nothing is sent). */
export async function composeXdmMessage(o: ComposeXdmOptions): Promise<SendMailOptions> {
  const zip = await buildXdm(o.submission);
  const docs = o.submission.documents;
  // X-MSS-CODECDA names the CDA documents' codes only (Ref #2); absent when there is none.
  const codes = [...new Set(docs.filter((d) => /xml/i.test(d.mimeType)).map((d) => d.typeCode.code))];
  const ins = o.insQualified ?? (INS_OIDS as readonly string[]).includes(o.submission.set.patientId.oid);
  const label = o.label ?? (docs.length === 1 ? docs[0]!.typeCode.display ?? docs[0]!.title ?? docs[0]!.typeCode.code : `${docs.length} documents`);
  const patient = patientOfSubmission(o.submission);
  const subject = o.subject ?? (patient.family ? xdmSubject({ label, ...patient }) : label);
  return {
    from: o.from,
    to: o.to,
    ...(o.cc ? { cc: o.cc } : {}),
    subject,
    text: o.text,
    headers: {
      'X-MSS-INS': ins ? 'O' : 'N',
      ...(codes.length ? { 'X-MSS-CODECDA': codes.join(',') } : {}),
      'X-MSS-NIL': o.nil,
    },
    attachments: [{ filename: XDM_ATTACHMENT_NAME, content: zip, contentType: 'application/zip' }],
    // Header names are case-insensitive, but written as Ref #2 spells them (nodemailer would write X-Mss-Ins).
    normalizeHeaderKey: (key: string) => (/^x-mss-/i.test(key) ? key.toUpperCase() : key),
  };
}

/** A received subject as shown to people: the technical `XDM/1.0/DDM+` prefix removed. */
export function displaySubject(subject: string): string {
  return subject.replace(/^(\s*(?:\[[^\]]*\]\s*)*)XDM\/1\.0\/DDM\+/i, '$1');
}
