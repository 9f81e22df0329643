// The ITI-41 request itself (IHE ITI TF-2b §3.41): a ProvideAndRegisterDocumentSetRequest
// holding the ebRIM SubmitObjectsRequest and one xdsb:Document per document, whose bytes
// travel as MTOM/XOP parts referenced by xop:Include. The SubmitObjectsRequest is written
// and read by dmp/ebrim.ts; this file only carries it.
import { randomBytes } from 'node:crypto';
import { buildRelated, cidOfHref, type InPart } from './mime.js';
import { ITI41_ACTION, SoapError, envelope, newMessageId, readEnvelope, soapText } from './soap.js';
import { NS, XmlError, attr, elements, esc, first, parseDocument, serialize, textOf, type El } from './xml.js';

export interface OutgoingDocument {
  /** The ExtrinsicObject id of the document in the SubmitObjectsRequest. */
  id: string;
  mimeType: string;
  bytes: Buffer;
}

export interface BuiltRequest {
  body: Buffer;
  contentType: string;
  messageId: string;
}

/** Drops the XML declaration and checks the text is one lcm:SubmitObjectsRequest. */
function embeddable(sor: string): string {
  const text = sor.replace(/^\uFEFF/, '').replace(/^\s*<\?xml[^>]*\?>\s*/, '');
  let root: El;
  try {
    root = parseDocument(text);
  } catch (e) {
    throw new Error(`the SubmitObjectsRequest to send is not usable XML: ${(e as Error).message}`);
  }
  if (root.local !== 'SubmitObjectsRequest' || root.ns !== NS.lcm) throw new Error(`the metadata to send is {${root.ns ?? ''}}${root.local}, not an lcm:SubmitObjectsRequest`);
  return text;
}

/** The HTTP body and Content-Type of a Provide and Register Document Set-b request to `to`. */
export function buildProvideAndRegister(input: { to: string; submitObjectsRequest: string; documents: OutgoingDocument[]; messageId?: string }): BuiltRequest {
  const messageId = input.messageId ?? newMessageId();
  const tag = randomBytes(6).toString('hex');
  const ids = new Set<string>();
  const parts = input.documents.map((d, i) => {
    if (ids.has(d.id)) throw new Error(`two documents have the id ${d.id}`);
    ids.add(d.id);
    if (!/^[\w.+-]+\/[\w.+-]+$/.test(d.mimeType)) throw new Error(`document ${d.id} has an unusable MIME type "${d.mimeType}"`);
    return { contentType: d.mimeType, contentId: `doc${i + 1}.${tag}@mss`, body: d.bytes };
  });
  const docs = input.documents.map((d, i) => `<xdsb:Document id="${esc(d.id)}"><xop:Include xmlns:xop="${NS.xop}" href="cid:${encodeURIComponent(parts[i].contentId).replace(/%40/g, '@')}"/></xdsb:Document>`);
  const body = `<xdsb:ProvideAndRegisterDocumentSetRequest xmlns:xdsb="${NS.xdsb}">${embeddable(input.submitObjectsRequest)}${docs.join('')}</xdsb:ProvideAndRegisterDocumentSetRequest>`;
  const xml = envelope({ action: ITI41_ACTION, messageId, to: input.to, replyTo: true }, body);
  const related = buildRelated([{ contentType: 'application/xop+xml; charset=UTF-8; type="application/soap+xml"', contentId: `root.${tag}@mss`, body: Buffer.from(xml, 'utf8') }, ...parts], {
    type: 'application/xop+xml',
    startInfo: 'application/soap+xml',
    action: ITI41_ACTION,
  });
  return { ...related, messageId };
}

export interface ReceivedDocument {
  id: string;
  /** The bytes, when the document could be resolved. */
  bytes?: Buffer;
  mimeType?: string;
  /** Why it could not (an xop:Include naming no part, no content at all). */
  problem?: string;
}

export interface ReceivedRequest {
  wsa: { action?: string; messageId?: string; to?: string };
  /** The SubmitObjectsRequest as a standalone XML document (namespace declarations carried over). */
  submitObjectsRequest: string;
  sor: El;
  documents: ReceivedDocument[];
  /** Content-IDs of attached parts no xdsb:Document refers to. */
  unreferenced: string[];
}

/**
 * Reads an ITI-41 request. SoapError for what cannot be an ITI-41 request at all (the
 * server answers a SOAP fault); a document whose bytes are missing is reported in
 * `documents` instead, so the registry can answer XDSMissingDocument for it.
 */
export function readProvideAndRegister(body: Buffer, contentType: string | undefined): ReceivedRequest {
  const { xml, mtom } = soapText(body, contentType);
  const env = readEnvelope(xml);
  if (env.wsa.action !== undefined && env.wsa.action !== ITI41_ACTION) throw new SoapError(400, 'Sender', `the WS-Addressing Action is ${env.wsa.action}, not ${ITI41_ACTION}`);
  const req = first(env.body, NS.xdsb, 'ProvideAndRegisterDocumentSetRequest');
  if (!req) {
    const got = elements(env.body)[0];
    throw new SoapError(400, 'Sender', `the SOAP body holds ${got ? `{${got.ns ?? ''}}${got.local}` : 'nothing'}, not an xdsb:ProvideAndRegisterDocumentSetRequest`);
  }
  const sors = elements(req, NS.lcm, 'SubmitObjectsRequest');
  if (sors.length !== 1) throw new SoapError(400, 'Sender', `the request must hold exactly one lcm:SubmitObjectsRequest (found ${sors.length})`);
  let submitObjectsRequest: string;
  try {
    submitObjectsRequest = serialize(sors[0]);
  } catch (e) {
    if (e instanceof XmlError) throw new SoapError(400, 'Sender', e.message);
    throw e;
  }
  const referenced = new Set<string>();
  const documents: ReceivedDocument[] = elements(req, NS.xdsb, 'Document').map((d) => {
    const id = attr(d, 'id') ?? '';
    const inc = first(d, NS.xop, 'Include');
    if (!inc) {
      // Not optimised: MTOM lets a sender inline the bytes as base64.
      const b64 = textOf(d).replace(/\s+/g, '');
      if (!b64) return { id, problem: 'the xdsb:Document has neither content nor an xop:Include' };
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) return { id, problem: 'the xdsb:Document content is not base64' };
      return { id, bytes: Buffer.from(b64, 'base64') };
    }
    const href = attr(inc, 'href') ?? '';
    const cid = cidOfHref(href);
    if (!cid) return { id, problem: `the xop:Include href "${href}" is not a cid: URL` };
    referenced.add(cid);
    const part: InPart | undefined = mtom?.byCid.get(cid);
    if (!part) return { id, problem: `the xop:Include names the part <${cid}>, which the message does not carry` };
    return { id, bytes: part.body, ...(part.contentType ? { mimeType: part.contentType.type } : {}) };
  });
  const unreferenced = mtom ? [...mtom.byCid.keys()].filter((c) => !referenced.has(c)) : [];
  return { wsa: env.wsa, submitObjectsRequest, sor: sors[0], documents, unreferenced };
}
