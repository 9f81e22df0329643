// The stand-in DMP: the real DMP is out of reach, so the platform (its demo, its tests)
// hands documents to this local server, which speaks the same ITI-41 — SOAP 1.2, WS-
// Addressing, MTOM/XOP — checks the submission the way the DMP would (dmp/standin/validate)
// and answers a RegistryResponse, Success or Failure with its RegistryErrorList. It is the
// project's only stand-in: the parsing, checks and answers are real; only the storage is
// memory. Listens on 127.0.0.1 unless told otherwise.
import Fastify, { type FastifyBaseLogger } from 'fastify';
import { nodeTlsPolicy } from '../../certs/tls-policy.js';
import { quietRequests } from '../../core/http.js';
import type { Logger } from '../../core/logger.js';
import { buildRelated } from '../iti41/mime.js';
import { readProvideAndRegister } from '../iti41/pnr.js';
import { ITI41_RESPONSE_ACTION, SoapError, envelope, faultEnvelope, newMessageId, registryResponseXml, type RegistryError } from '../iti41/soap.js';
import { XmlError } from '../iti41/xml.js';
import type { DocumentEntry, SubmissionSet } from '../types.js';
import { checkSubmission } from './validate.js';

export interface StoredSubmission {
  receivedAt: Date;
  /** The request's WS-Addressing MessageID. */
  requestId: string;
  set: SubmissionSet;
  documents: DocumentEntry[];
  /** The documents' bytes, by entryUuid. */
  contents: Map<string, Buffer>;
}

export interface StandinOptions {
  host?: string;
  /** 0 (default): any free port. */
  port?: number;
  log: Logger;
  /** Largest request accepted (default 64 MiB). */
  maxBodyBytes?: number;
  /** Serve https with this certificate (PEM, chain appended) and key; plain http when absent. */
  tls?: { cert: string | Buffer; key: string | Buffer };
}

export interface StandinDmp {
  /** The ITI-41 endpoint: http(s)://host:port/dmp/iti41. */
  url: string;
  port: number;
  /** Accepted submissions, oldest first. */
  submissions(): StoredSubmission[];
  stop(): Promise<void>;
}

export const ITI41_PATH = '/dmp/iti41';

export async function startStandinDmp(opts: StandinOptions): Promise<StandinDmp> {
  const host = opts.host ?? '127.0.0.1';
  const maxBody = opts.maxBodyBytes ?? 64 * 1024 * 1024;
  const log = opts.log.child({ mod: 'dmp-standin' });
  const stored: StoredSubmission[] = [];
  const uniqueIds = new Set<string>();

  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    logController: quietRequests(),
    bodyLimit: maxBody,
    ...(opts.tls ? { https: { cert: opts.tls.cert, key: opts.tls.key, ...nodeTlsPolicy(), honorCipherOrder: true } } : {}),
  });
  // Every body arrives as bytes: the SOAP layer decides what it is (and refuses what it is not).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  const soapReply = (status: number, xml: string, action?: string) => ({
    status,
    type: `application/soap+xml; charset=UTF-8${action ? `; action="${action}"` : ''}`,
    body: xml,
  });

  app.setErrorHandler((e, req, reply) => {
    // Errors fastify raises before our handler (body too large, unreadable body) are SOAP faults too.
    const status = (e as { statusCode?: number }).statusCode ?? 500;
    if (status >= 500) log.error({ err: e }, 'stand-in DMP: unexpected error');
    const reason = status >= 500 ? 'the stand-in DMP failed to process the request' : (e as Error).message;
    const f = soapReply(status, faultEnvelope(status >= 500 ? 'Receiver' : 'Sender', reason));
    void reply.code(f.status).type(f.type).send(f.body);
    void req;
  });

  app.post(ITI41_PATH, async (req, reply) => {
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    let received;
    try {
      received = readProvideAndRegister(body, req.headers['content-type']);
      if (!received.wsa.action) throw new SoapError(400, 'Sender', 'the WS-Addressing Action header is missing (ITI-41 requires urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b)');
      if (!received.wsa.messageId) throw new SoapError(400, 'Sender', 'the WS-Addressing MessageID header is missing');
    } catch (e) {
      if (!(e instanceof SoapError) && !(e instanceof XmlError)) throw e;
      const status = e instanceof SoapError ? e.httpStatus : 400;
      log.info({ status, reason: e.message }, 'stand-in DMP: request refused with a SOAP fault');
      const f = soapReply(status, faultEnvelope(e instanceof SoapError ? e.faultCode : 'Sender', e.message));
      return reply.code(f.status).type(f.type).send(f.body);
    }

    let errors: RegistryError[];
    try {
      const verdict = checkSubmission(received, { hasUniqueId: (u) => uniqueIds.has(u) });
      errors = verdict.errors;
      if (verdict.metadata && !errors.some((x) => x.severity === 'error')) {
        const { set, documents } = verdict.metadata;
        stored.push({ receivedAt: new Date(), requestId: received.wsa.messageId!, set, documents, contents: verdict.contents });
        uniqueIds.add(set.uniqueId);
        for (const d of documents) uniqueIds.add(d.uniqueId);
      }
    } catch (e) {
      // A value the metadata reader could not decode, for instance: the sender's fault, told as such.
      if (!(e instanceof XmlError)) throw e;
      errors = [{ code: 'XDSRegistryMetadataError', context: e.message, severity: 'error' }];
    }
    const ok = !errors.some((x) => x.severity === 'error');
    log.info({ requestId: received.wsa.messageId, status: ok ? 'Success' : 'Failure', errors: errors.map((x) => x.code) }, 'stand-in DMP: submission answered');
    const xml = envelope({ action: ITI41_RESPONSE_ACTION, messageId: newMessageId(), relatesTo: received.wsa.messageId }, registryResponseXml(errors));
    // Answer in kind: MTOM for an MTOM request, as SOAP stacks (CXF, Axis2) do.
    const related = buildRelated([{ contentType: 'application/xop+xml; charset=UTF-8; type="application/soap+xml"', contentId: `root.${newMessageId().slice(9)}@standin`, body: Buffer.from(xml, 'utf8') }], {
      type: 'application/xop+xml',
      startInfo: 'application/soap+xml',
      action: ITI41_RESPONSE_ACTION,
    });
    return reply.code(200).type(related.contentType).send(related.body);
  });

  app.get('/dmp/submissions', async () =>
    stored.map((s) => ({
      receivedAt: s.receivedAt.toISOString(),
      requestId: s.requestId,
      set: s.set,
      documents: s.documents,
    })),
  );

  await app.listen({ host, port: opts.port ?? 0 });
  const port = (app.server.address() as { port: number }).port;
  const url = `${opts.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}${ITI41_PATH}`;
  log.info({ url }, 'stand-in DMP listening');
  return {
    url,
    port,
    submissions: () => [...stored],
    stop: () => app.close(),
  };
}
