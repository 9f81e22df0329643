// SOAP 1.2 envelopes of ITI-41: the answer (an ebRS RegistryResponse with its
// RegistryErrorList), SOAP faults, and reading either from the bytes a server sent.
import { randomUUID } from 'node:crypto';
import { MimeError, parseContentType, parseRelated } from './mime.js';
import { NS, XmlError, attr, elements, esc, first, parseDocument, qnameValue, textOf, type El } from './xml.js';

export const ITI41_ACTION = 'urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b';
export const ITI41_RESPONSE_ACTION = 'urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bResponse';
export const WSA_ANONYMOUS = 'http://www.w3.org/2005/08/addressing/anonymous';

export const RESPONSE_STATUS = {
  success: 'urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success',
  failure: 'urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure',
  partialSuccess: 'urn:ihe:iti:2007:ResponseStatusType:PartialSuccess',
} as const;

export const ERROR_SEVERITY = {
  error: 'urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error',
  warning: 'urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Warning',
} as const;

/** One entry of a RegistryErrorList (ebRS 3.0 §2.1.6), or a failure of ours in the same shape. */
export interface RegistryError {
  /** XDS error code (XDSMissingDocument…), a SOAP fault code, or one of the client's DMP_* codes. */
  code: string;
  /** What is wrong, in words. */
  context: string;
  severity: 'error' | 'warning';
  /** Where: the id of the object concerned, when known. */
  location?: string;
}

/** A message that is not usable SOAP: the server answers it with a fault and this HTTP status. */
export class SoapError extends Error {
  constructor(
    readonly httpStatus: number,
    /** SOAP 1.2 fault code: Sender, Receiver, VersionMismatch, MustUnderstand, DataEncodingUnknown. */
    readonly faultCode: 'Sender' | 'Receiver' | 'VersionMismatch',
    message: string,
  ) {
    super(message);
  }
}

export function newMessageId(): string {
  return `urn:uuid:${randomUUID()}`;
}

/** A SOAP 1.2 envelope with WS-Addressing headers around `body` (XML text, no declaration). */
export function envelope(h: { action: string; messageId: string; to?: string; relatesTo?: string; replyTo?: boolean }, body: string): string {
  const headers = [`<wsa:Action soap:mustUnderstand="true">${esc(h.action)}</wsa:Action>`, `<wsa:MessageID>${esc(h.messageId)}</wsa:MessageID>`];
  if (h.relatesTo) headers.push(`<wsa:RelatesTo>${esc(h.relatesTo)}</wsa:RelatesTo>`);
  if (h.replyTo) headers.push(`<wsa:ReplyTo><wsa:Address>${WSA_ANONYMOUS}</wsa:Address></wsa:ReplyTo>`);
  if (h.to) headers.push(`<wsa:To soap:mustUnderstand="true">${esc(h.to)}</wsa:To>`);
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n<soap:Envelope xmlns:soap="${NS.soap12}" xmlns:wsa="${NS.wsa}">` +
    `<soap:Header>${headers.join('')}</soap:Header><soap:Body>${body}</soap:Body></soap:Envelope>`
  );
}

export function registryResponseXml(errors: RegistryError[]): string {
  const failed = errors.some((e) => e.severity === 'error');
  const status = failed ? RESPONSE_STATUS.failure : RESPONSE_STATUS.success;
  let list = '';
  if (errors.length) {
    const items = errors.map(
      (e) =>
        `<rs:RegistryError errorCode="${esc(e.code)}" codeContext="${esc(e.context)}" severity="${ERROR_SEVERITY[e.severity]}"${e.location ? ` location="${esc(e.location)}"` : ''}/>`,
    );
    list = `<rs:RegistryErrorList highestSeverity="${failed ? ERROR_SEVERITY.error : ERROR_SEVERITY.warning}">${items.join('')}</rs:RegistryErrorList>`;
  }
  return `<rs:RegistryResponse xmlns:rs="${NS.rs}" status="${status}">${list}</rs:RegistryResponse>`;
}

/** A SOAP 1.2 fault envelope (part 1 §5.4). */
export function faultEnvelope(code: SoapError['faultCode'], reason: string, relatesTo?: string): string {
  const body =
    `<soap:Fault><soap:Code><soap:Value>soap:${code}</soap:Value></soap:Code>` +
    `<soap:Reason><soap:Text xml:lang="en">${esc(reason)}</soap:Text></soap:Reason></soap:Fault>`;
  return envelope({ action: 'http://www.w3.org/2005/08/addressing/soap/fault', messageId: newMessageId(), relatesTo }, body);
}

export interface Envelope {
  root: El;
  header: El | undefined;
  body: El;
  /** WS-Addressing headers that were present. */
  wsa: { action?: string; messageId?: string; to?: string; relatesTo?: string };
}

/** The SOAP 1.2 envelope in an XML text; SoapError when it is not one. */
export function readEnvelope(xml: string): Envelope {
  let root: El;
  try {
    root = parseDocument(xml);
  } catch (e) {
    if (e instanceof XmlError) throw new SoapError(400, 'Sender', `the SOAP message is not usable XML: ${e.message}`);
    throw e;
  }
  if (root.local === 'Envelope' && root.ns === NS.soap11) throw new SoapError(400, 'VersionMismatch', 'this is a SOAP 1.1 envelope; ITI-41 uses SOAP 1.2 (http://www.w3.org/2003/05/soap-envelope)');
  if (root.local !== 'Envelope' || root.ns !== NS.soap12) throw new SoapError(400, 'Sender', `the root element is {${root.ns ?? ''}}${root.local}, not a SOAP 1.2 Envelope`);
  const header = first(root, NS.soap12, 'Header');
  const bodies = elements(root, NS.soap12, 'Body');
  if (bodies.length !== 1) throw new SoapError(400, 'Sender', 'the SOAP envelope must have exactly one Body');
  const wsaText = (local: string) => {
    const el = first(header, NS.wsa, local);
    return el ? textOf(el).trim() : undefined;
  };
  return { root, header, body: bodies[0], wsa: { action: wsaText('Action'), messageId: wsaText('MessageID'), to: wsaText('To'), relatesTo: wsaText('RelatesTo') } };
}

/** The XML text of a SOAP message, plain or MTOM-packaged (the root part of multipart/related). */
export function soapText(body: Buffer, contentType: string | undefined): { xml: string; mtom: ReturnType<typeof parseRelated> | null } {
  const ct = parseContentType(contentType);
  if (!ct) throw new SoapError(415, 'Sender', `a SOAP 1.2 message is application/soap+xml or MTOM multipart/related, not ${contentType || 'a body without Content-Type'}`);
  if (ct.type === 'application/soap+xml') return { xml: decodeUtf8(body, ct.params.charset), mtom: null };
  if (ct.type === 'multipart/related') {
    const start = parseContentType(ct.params['start-info'] ?? ct.params.type);
    let mtom;
    try {
      mtom = parseRelated(body, contentType!);
    } catch (e) {
      if (e instanceof MimeError) throw new SoapError(400, 'Sender', e.message);
      throw e;
    }
    const rootType = mtom.root.contentType;
    if (ct.params.type?.toLowerCase() !== 'application/xop+xml' || rootType?.type !== 'application/xop+xml') {
      throw new SoapError(415, 'Sender', `an MTOM message has type="application/xop+xml" and a root part of that type (got type="${ct.params.type ?? ''}", root ${rootType?.type ?? 'untyped'})`);
    }
    const inner = parseContentType(rootType.params.type) ?? start;
    if (inner && inner.type !== 'application/soap+xml') throw new SoapError(415, 'Sender', `the MTOM root part carries ${inner.type}, not application/soap+xml (SOAP 1.2)`);
    return { xml: decodeUtf8(mtom.root.body, rootType.params.charset), mtom };
  }
  if (ct.type === 'text/xml') throw new SoapError(415, 'VersionMismatch', 'text/xml is SOAP 1.1; ITI-41 uses SOAP 1.2 (application/soap+xml, MTOM)');
  throw new SoapError(415, 'Sender', `a SOAP 1.2 message is application/soap+xml or MTOM multipart/related, not ${ct.type}`);
}

function decodeUtf8(b: Buffer, charset: string | undefined): string {
  if (charset && !/^utf-?8$/i.test(charset)) throw new SoapError(415, 'Sender', `charset ${charset} is not used by this service (UTF-8)`);
  const s = b.toString('utf8');
  return s.charCodeAt(0) === 0xfeff ? s.slice(1) : s;
}

export type SoapAnswer =
  | { kind: 'registry'; status: 'success' | 'failure'; statusUri: string; errors: RegistryError[]; relatesTo?: string }
  | { kind: 'fault'; code: string; subcodes: string[]; reason: string; relatesTo?: string };

function severityOf(uri: string | undefined): 'error' | 'warning' {
  return uri === ERROR_SEVERITY.warning || /:Warning$/.test(uri ?? '') ? 'warning' : 'error';
}

/** What a server answered to an ITI-41 request: a RegistryResponse or a SOAP fault. SoapError when neither. */
export function readAnswer(body: Buffer, contentType: string | undefined): SoapAnswer {
  const env = readEnvelope(soapText(body, contentType).xml);
  const fault = first(env.body, NS.soap12, 'Fault');
  if (fault) {
    const code = first(fault, NS.soap12, 'Code');
    const value = first(code, NS.soap12, 'Value');
    const subcodes: string[] = [];
    for (let sub = first(code, NS.soap12, 'Subcode'); sub; sub = first(sub, NS.soap12, 'Subcode')) {
      const v = first(sub, NS.soap12, 'Value');
      if (v) subcodes.push(qnameValue(v, textOf(v)).local);
    }
    const reasons = elements(first(fault, NS.soap12, 'Reason'), NS.soap12, 'Text').map((t) => textOf(t).trim());
    return { kind: 'fault', code: value ? qnameValue(value, textOf(value)).local : 'Receiver', subcodes, reason: reasons.find(Boolean) ?? '(no reason given)', relatesTo: env.wsa.relatesTo };
  }
  const rr = first(env.body, NS.rs, 'RegistryResponse');
  if (!rr) {
    const got = elements(env.body)[0];
    throw new SoapError(502, 'Receiver', `the SOAP body holds ${got ? `{${got.ns ?? ''}}${got.local}` : 'nothing'}, not a RegistryResponse`);
  }
  const statusUri = attr(rr, 'status') ?? '';
  const errors: RegistryError[] = elements(first(rr, NS.rs, 'RegistryErrorList'), NS.rs, 'RegistryError').map((e) => {
    const location = attr(e, 'location');
    return {
      code: attr(e, 'errorCode') ?? '(no errorCode)',
      context: attr(e, 'codeContext') ?? textOf(e).trim(),
      severity: severityOf(attr(e, 'severity')),
      ...(location ? { location } : {}),
    };
  });
  // Only Success is a success: PartialSuccess (some documents refused) and Failure are not.
  return { kind: 'registry', status: statusUri === RESPONSE_STATUS.success ? 'success' : 'failure', statusUri, errors, relatesTo: env.wsa.relatesTo };
}
