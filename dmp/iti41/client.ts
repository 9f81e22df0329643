// The ITI-41 client: one POST, one outcome. Whatever happens — the metadata cannot be
// written, the DMP cannot be reached or does not answer in time, it answers something that
// is not SOAP — comes back as a failure with a sentence saying so, never as an exception,
// so the caller always has an outcome to record.
//
// node:http/https rather than fetch: the DMP is reached with the platform's CA (and, for the
// real DMP, the structure's client certificate), which fetch cannot be given without an
// extra undici dependency; the answer's size is capped while it is read.
import http from 'node:http';
import https from 'node:https';
import { MssError } from '../../core/errors.js';
import { writeSubmitObjectsRequest } from '../ebrim.js';
import type { Submission } from '../types.js';
import { buildProvideAndRegister, type BuiltRequest, type OutgoingDocument } from './pnr.js';
import { newMessageId, readAnswer, type RegistryError } from './soap.js';

export interface DmpTls {
  /** Trust anchors for an https endpoint (PEM); Node's defaults when absent. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Client certificate and key (PEM), for endpoints that require mutual TLS. */
  cert?: string | Buffer;
  key?: string | Buffer;
}

export interface SubmitOptions {
  timeoutMs: number;
  tls?: DmpTls;
  /** Largest answer read (default 4 MiB): a RegistryResponse is small. */
  maxAnswerBytes?: number;
}

export interface DmpResult {
  status: 'success' | 'failure';
  /** The registry's errors and warnings, or the reason the exchange failed (DMP_* codes). */
  errors: RegistryError[];
  /** 0 when no HTTP answer came. */
  httpStatus: number;
  /** The WS-Addressing MessageID of the request. */
  requestId: string;
}

const failure = (requestId: string, httpStatus: number, code: string, context: string): DmpResult => ({ status: 'failure', errors: [{ code, context, severity: 'error' }], httpStatus, requestId });

interface HttpAnswer {
  status: number;
  contentType: string | undefined;
  body: Buffer;
}

function post(endpoint: URL, req: BuiltRequest, opts: SubmitOptions): Promise<HttpAnswer> {
  const max = opts.maxAnswerBytes ?? 4 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    const headers = {
      'content-type': req.contentType,
      'content-length': String(req.body.length),
      accept: 'multipart/related, application/soap+xml',
      'user-agent': 'mss-dmp-handoff',
    };
    const options: https.RequestOptions = { method: 'POST', headers };
    if (endpoint.protocol === 'https:' && opts.tls) Object.assign(options, { ca: opts.tls.ca, cert: opts.tls.cert, key: opts.tls.key });
    const r = (endpoint.protocol === 'https:' ? https : http).request(endpoint, options, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > max) {
          r.destroy(new AnswerTooLarge(max));
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: res.headers['content-type'], body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    // One deadline for the whole exchange (connect, send, answer), not an idle timeout.
    const timer = setTimeout(() => r.destroy(new TimeoutError(opts.timeoutMs)), opts.timeoutMs);
    r.on('close', () => clearTimeout(timer));
    r.on('error', reject);
    r.end(req.body);
  });
}

class AnswerTooLarge extends Error {
  constructor(readonly max: number) {
    super(`the answer is larger than ${max} bytes`);
  }
}

class TimeoutError extends Error {
  constructor(readonly ms: number) {
    super(`no answer within ${ms} ms`);
  }
}

function preview(body: Buffer): string {
  const s = body.subarray(0, 120).toString('utf8').replace(/\s+/g, ' ').trim();
  return s ? `; it starts with "${s}${body.length > 120 ? '…' : ''}"` : '; the body is empty';
}

/** Sends an already-written SubmitObjectsRequest and its documents. */
export async function sendProvideAndRegister(
  endpoint: string,
  input: { submitObjectsRequest: string; documents: OutgoingDocument[]; messageId?: string },
  opts: SubmitOptions,
): Promise<DmpResult> {
  let url: URL;
  let req: BuiltRequest;
  const requestId = input.messageId ?? newMessageId();
  try {
    url = new URL(endpoint);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`${url.protocol} is not http: or https:`);
  } catch (e) {
    return failure(requestId, 0, 'DMP_ENDPOINT_INVALID', `the DMP endpoint "${endpoint}" is not usable: ${(e as Error).message}`);
  }
  try {
    req = buildProvideAndRegister({ to: endpoint, ...input, messageId: requestId });
  } catch (e) {
    return failure(requestId, 0, 'DMP_REQUEST_INVALID', `the ITI-41 request cannot be built: ${(e as Error).message}`);
  }
  let answer: HttpAnswer;
  try {
    answer = await post(url, req, opts);
  } catch (e) {
    if (e instanceof TimeoutError) return failure(req.messageId, 0, 'DMP_TIMEOUT', `the DMP at ${endpoint} gave no answer within ${e.ms} ms`);
    if (e instanceof AnswerTooLarge) return failure(req.messageId, 0, 'DMP_BAD_ANSWER', `the DMP at ${endpoint} answered more than ${e.max} bytes, which no RegistryResponse needs; not read`);
    const code = (e as NodeJS.ErrnoException).code;
    return failure(req.messageId, 0, 'DMP_UNREACHABLE', `cannot reach the DMP at ${endpoint}: ${(e as Error).message}${code && !(e as Error).message.includes(code) ? ` (${code})` : ''}`);
  }
  let parsed;
  try {
    parsed = readAnswer(answer.body, answer.contentType);
  } catch (e) {
    // SoapError, and XmlError from a value that cannot be decoded: either way not an answer we can read.
    return failure(req.messageId, answer.status, 'DMP_BAD_ANSWER', `the DMP at ${endpoint} answered HTTP ${answer.status} (${answer.contentType ?? 'no Content-Type'}) that is not an ITI-41 answer: ${(e as Error).message}${preview(answer.body)}`);
  }
  if (parsed.relatesTo && parsed.relatesTo !== req.messageId) {
    return failure(req.messageId, answer.status, 'DMP_BAD_ANSWER', `the DMP's answer relates to ${parsed.relatesTo}, not to this request ${req.messageId}`);
  }
  if (parsed.kind === 'fault') {
    const sub = parsed.subcodes.length ? ` (${parsed.subcodes.join(' / ')})` : '';
    return failure(req.messageId, answer.status, `soap:${parsed.code}`, `the DMP refused the request with a SOAP fault${sub}: ${parsed.reason}`);
  }
  const errors = parsed.errors;
  if (parsed.status === 'failure' && !errors.some((e) => e.severity === 'error')) {
    errors.push({ code: 'DMP_FAILURE_UNEXPLAINED', context: `the DMP answered ${parsed.statusUri || 'no status'} without an error`, severity: 'error' });
  }
  return { status: parsed.status, errors, httpStatus: answer.status, requestId: req.messageId };
}

/**
 * Provide and Register Document Set-b of a submission (its metadata written by
 * dmp/ebrim.ts, its documents attached by MTOM/XOP) to the DMP at `endpoint`.
 */
export async function submitToDmp(endpoint: string, submission: Submission, opts: SubmitOptions & { messageId?: string }): Promise<DmpResult> {
  let sor: string;
  const documents: OutgoingDocument[] = [];
  try {
    for (const d of submission.documents) {
      const bytes = submission.contents.get(d.entryUuid);
      if (!bytes) throw new Error(`document ${d.entryUuid} has no content`);
      documents.push({ id: d.entryUuid, mimeType: d.mimeType, bytes });
    }
    sor = writeSubmitObjectsRequest({ set: submission.set, documents: submission.documents });
  } catch (e) {
    const reason = e instanceof MssError ? e.message : `the ITI-41 request cannot be built: ${(e as Error).message}`;
    return failure(opts.messageId ?? newMessageId(), 0, e instanceof MssError ? e.code : 'DMP_REQUEST_INVALID', reason);
  }
  return sendProvideAndRegister(endpoint, { submitObjectsRequest: sor, documents, messageId: opts.messageId ?? newMessageId() }, opts);
}
