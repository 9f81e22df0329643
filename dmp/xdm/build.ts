// Writing an IHE_XDM.zip (IHE ITI-32 media, REFERENCE.md "IHE XDM package"): README.TXT and
// INDEX.HTM at the root, one subset folder with METADATA.XML and the documents. Hash, size
// and URI of each document are computed from its bytes here, never taken from the caller.
import { createHash } from 'node:crypto';
import yazl from 'yazl';
import { MssError } from '../../core/errors.js';
import { writeSubmitObjectsRequest } from '../ebrim.js';
import { escapeXml } from '../safe-xml.js';
import type { DocumentEntry, Submission } from '../types.js';

export const XDM_SUBSET = 'SUBSET01';
export const XDM_ATTACHMENT_NAME = 'IHE_XDM.zip';

const EXTENSIONS: Record<string, string> = {
  'text/xml': 'XML',
  'application/xml': 'XML',
  'application/pdf': 'PDF',
  'text/plain': 'TXT',
  'application/dicom': 'DCM',
  'image/jpeg': 'JPG',
  'image/tiff': 'TIF',
  'application/pkcs7-signature': 'P7S',
};

/** DOC0001.XML, DOC0002.PDF…: 8.3 names, as the media profile asks. */
export function documentFileName(index: number, mimeType: string): string {
  return `DOC${String(index + 1).padStart(4, '0')}.${EXTENSIONS[mimeType.toLowerCase()] ?? 'BIN'}`;
}

/** The submission as it will be packaged: each document's URI, hash and size from its bytes. */
export function packageSubmission(sub: Submission): Submission {
  const documents: DocumentEntry[] = sub.documents.map((d, i) => {
    const bytes = sub.contents.get(d.entryUuid);
    if (!bytes) throw new MssError('XDS_METADATA_INVALID', { reason: `document ${d.entryUuid} has no content to package`, problems: [`document ${d.entryUuid} has no content to package`] });
    return { ...d, uri: documentFileName(i, d.mimeType), hash: createHash('sha1').update(bytes).digest('hex'), size: bytes.length };
  });
  return { set: { ...sub.set }, documents, contents: sub.contents };
}

function readme(sub: Submission): string {
  const lines = [
    'IHE XDM package (IHE ITI-32, Cross-Enterprise Document Media Interchange)',
    '',
    `Submission set ${sub.set.uniqueId}, sent by ${sub.set.sourceId} on ${sub.set.submissionTime} (UTC).`,
    `Patient ${sub.set.patientId.id} (${sub.set.patientId.oid}).`,
    '',
    `IHE_XDM/${XDM_SUBSET}/METADATA.XML describes the documents (ebRIM SubmitObjectsRequest):`,
    ...sub.documents.map((d) => `  IHE_XDM/${XDM_SUBSET}/${d.uri}  ${d.title ?? d.typeCode.display ?? d.typeCode.code}  (${d.mimeType}, ${d.size} bytes)`),
    '',
    'Written by the open-source MSSanté operator platform (mssante-operateur).',
    '',
  ];
  return lines.join('\r\n');
}

function index(sub: Submission): string {
  const e = (s: string) => escapeXml(s, 'a title');
  const items = sub.documents
    .map((d) => `<li><a href="IHE_XDM/${XDM_SUBSET}/${e(d.uri!)}">${e(d.title ?? d.typeCode.display ?? d.typeCode.code)}</a> (${e(d.mimeType)}, ${d.size} octets)</li>`)
    .join('\r\n');
  return `<!DOCTYPE html>\r\n<html lang="fr"><head><meta charset="utf-8"><title>${e(sub.set.title ?? 'Documents IHE XDM')}</title></head>\r\n<body><h1>${e(sub.set.title ?? 'Documents IHE XDM')}</h1>\r\n<ul>\r\n${items}\r\n</ul>\r\n<p><a href="README.TXT">README.TXT</a> · <a href="IHE_XDM/${XDM_SUBSET}/METADATA.XML">METADATA.XML</a></p></body></html>\r\n`;
}

/** The IHE_XDM.zip bytes of a submission. Throws XDS_METADATA_INVALID for incomplete metadata. */
export async function buildXdm(input: Submission): Promise<Buffer> {
  const sub = packageSubmission(input);
  const metadata = writeSubmitObjectsRequest(sub);
  const mtime = dateOf(sub.set.submissionTime);
  const zip = new yazl.ZipFile();
  const add = (name: string, bytes: Buffer) => zip.addBuffer(bytes, name, { mtime, mode: 0o100644 });
  add('README.TXT', Buffer.from(readme(sub), 'utf8'));
  add('INDEX.HTM', Buffer.from(index(sub), 'utf8'));
  add(`IHE_XDM/${XDM_SUBSET}/METADATA.XML`, Buffer.from(metadata, 'utf8'));
  for (const d of sub.documents) add(`IHE_XDM/${XDM_SUBSET}/${d.uri}`, sub.contents.get(d.entryUuid)!);
  zip.end();
  const chunks: Buffer[] = [];
  for await (const c of zip.outputStream as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

/** What a ZIP entry can date: yazl writes a DOS date (1980–2107) and a 32-bit Unix time (found by fuzzing: a 1969 submission threw asynchronously and the build never ended). */
const ZIP_DATES = { min: Date.UTC(1980, 0, 1), max: Date.UTC(2106, 0, 1) };

/** XDS DTM → Date for the entries' timestamps (now when unreadable), within what a ZIP entry can carry. */
function dateOf(dtm: string): Date {
  const m = /^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?$/.exec(dtm);
  if (!m) return new Date();
  const t = Date.UTC(+m[1]!, +(m[2] ?? 1) - 1, +(m[3] ?? 1), +(m[4] ?? 0), +(m[5] ?? 0), +(m[6] ?? 0));
  return Number.isNaN(t) ? new Date() : new Date(Math.min(Math.max(t, ZIP_DATES.min), ZIP_DATES.max));
}
