// The FHIR annuaire API's own HTTPS listener (fhir.host:fhir.port, base /fhir/r4). Its
// clients are software of the espace de confiance (DPI, LPS, lab systems, other operators),
// so it asks for a client certificate in the TLS handshake and lets core/policy decide
// (decideDirectoryRead); a refusal is an OperationOutcome 403, journalled. The handshake
// itself does not refuse (rejectUnauthorized false): a client without a certificate then
// gets a sentence saying why, not a bare TLS alert. Read-only: GET (and HEAD) only.
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import type { TLSSocket, TlsOptions } from 'node:tls';
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Config } from '../../core/config/index.js';
import type { Queryable } from '../../core/db/index.js';
import { MssError } from '../../core/errors.js';
import { httpsHeaders, quietRequests, requestLog } from '../../core/http.js';
import type { Logger } from '../../core/logger.js';
import { verdictError, type DirectoryClient, type Policy } from '../../core/policy/index.js';
import { loadTlsMaterial, peerIdentity, serverTlsOptions, type TlsMaterial } from '../../certs/tls.js';
import { capabilityStatement } from './capability.js';
import { FHIR_JSON, negotiate } from './format.js';
import { isFhirId } from './ids.js';
import { operationOutcome } from './outcome.js';
import { read, search, SPECS } from './search.js';

export const FHIR_BASE_PATH = '/fhir/r4';

export interface FhirDeps {
  db: Queryable;
  policy: Pick<Policy, 'mayReadDirectory'>;
  /** The trust material the TLS layer verified with: its CRLs say whether a certificate is revoked. */
  tls: Pick<TlsMaterial, 'crls' | 'anchors' | 'intermediates'>;
  /** The absolute base of the links (https://host:port/fhir/r4), known once the listener listens. */
  baseUrl: () => string;
  software?: { name: string; version: string };
}

/** What the TLS handshake showed of the client: one answer per connection. */
const clients = new WeakMap<TLSSocket, DirectoryClient>();

function directoryClient(s: TLSSocket, tls: FhirDeps['tls']): DirectoryClient {
  let c = clients.get(s);
  if (c) return c;
  const cert = typeof s.getPeerCertificate === 'function' ? s.getPeerCertificate(true) : undefined;
  if (!cert?.raw) c = { certificate: null };
  else {
    let revoked = false;
    let subject = Object.entries(cert.subject ?? {}).map(([k, v]) => `${k}=${v}`).join(', ');
    try {
      const id = peerIdentity(cert, tls);
      revoked = id.revocation === 'revoked';
      subject = Object.entries(id.subject).map(([k, v]) => `${k}=${v}`).join(', ') || subject;
    } catch {
      /* unreadable: the TLS layer did not authorise it either */
    }
    const error = s.authorizationError ? String(s.authorizationError) : revoked ? 'CERT_REVOKED' : undefined;
    c = { certificate: { fingerprint: createHash('sha256').update(cert.raw).digest('hex'), subject, verified: s.authorized && !revoked, ...(error ? { error } : {}) } };
  }
  clients.set(s, c);
  return c;
}

const queryOf = (url: string) => {
  const i = url.indexOf('?');
  return i < 0 ? '' : url.slice(i + 1);
};

function send(reply: FastifyReply, status: number, body: unknown) {
  return reply.code(status).type(FHIR_JSON).send(JSON.stringify(body));
}

function fail(reply: FastifyReply, e: unknown, req: FastifyRequest) {
  const { status, body } = operationOutcome(e);
  if (status >= 500) req.log.error({ err: e }, 'fhir: unexpected error');
  return send(reply, status, body);
}

/** The fastify instance of the FHIR API (not listening yet). */
export function createFhirServer(deps: FhirDeps, tlsOptions: TlsOptions, log: Logger): FastifyInstance {
  const app = Fastify({
    https: { ...tlsOptions, requestCert: true, rejectUnauthorized: false },
    loggerInstance: log.child({ mod: 'fhir' }) as FastifyBaseLogger,
    logController: quietRequests(),
    routerOptions: { maxParamLength: 256 },
    frameworkErrors: (err: FastifyError, req: FastifyRequest, reply: FastifyReply) => fail(reply, new MssError('FHIR_PARAM_INVALID', { reason: err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'a path segment is too long' : 'the request URL is not validly percent-encoded' }), req),
  }) as unknown as FastifyInstance;
  requestLog(app);
  httpsHeaders(app);
  app.setErrorHandler((err, req, reply) => {
    // fastify's own client errors (4xx) say what is wrong in their message; anything else is ours, and stays unsaid.
    const status = (err as FastifyError).statusCode;
    fail(reply, err instanceof MssError || !status || status >= 500 ? err : new MssError('FHIR_PARAM_INVALID', { reason: (err as Error).message }), req);
  });
  app.setNotFoundHandler((req, reply) => fail(reply, new MssError('FHIR_NOT_SERVED', { what: req.url.split('?')[0].slice(0, 120) }), req));

  // Every request: who is asking (policy, journalled when refused), then read-only, then the format.
  app.addHook('onRequest', async (req) => {
    const v = await deps.policy.mayReadDirectory(directoryClient(req.raw.socket as TLSSocket, deps.tls), `fhir ${req.method} ${req.url.split('?')[0].slice(0, 200)}`, { front: 'fhir', remote: req.ip });
    if (!v.ok) throw verdictError(v);
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new MssError('FHIR_METHOD_UNSUPPORTED', { method: req.method });
    negotiate(new URLSearchParams(queryOf(req.url)).get('_format'), req.headers.accept);
  });

  const date = new Date().toISOString();
  app.get(`${FHIR_BASE_PATH}/metadata`, async (req, reply) => {
    onlyFormat(req.url);
    return send(reply, 200, capabilityStatement(deps.baseUrl(), deps.software ?? { name: 'mss', version: '1' }, date));
  });

  app.get<{ Params: { type: string } }>(`${FHIR_BASE_PATH}/:type`, async (req, reply) => send(reply, 200, await search(deps.db, specOf(req.params.type), queryOf(req.url), deps.baseUrl())));

  app.get<{ Params: { type: string; id: string } }>(`${FHIR_BASE_PATH}/:type/:id`, async (req, reply) => {
    const spec = specOf(req.params.type);
    onlyFormat(req.url);
    const found = isFhirId(req.params.id) ? await read(deps.db, spec, req.params.id) : null;
    if (!found) throw new MssError('FHIR_NOT_SERVED', { what: `${spec.type}/${req.params.id.slice(0, 80)}` });
    return send(reply, 200, found);
  });
  return app;
}

function specOf(type: string) {
  const spec = Object.hasOwn(SPECS, type) ? SPECS[type] : undefined;
  if (!spec) throw new MssError('FHIR_NOT_SERVED', { what: `the resource type ${type.slice(0, 60)}` });
  return spec;
}

/** A read or /metadata takes no parameter but _format. */
function onlyFormat(url: string) {
  for (const [name] of new URLSearchParams(queryOf(url))) {
    if (name !== '_format') throw new MssError('FHIR_PARAM_UNKNOWN', { param: name.slice(0, 60), type: 'this interaction', reason: 'a read takes only _format' });
  }
}

export interface FhirService {
  url: string;
  app: FastifyInstance;
  stop(): Promise<void>;
}

/** Listens on fhir.host:fhir.port with the platform's server certificate and trust bundle. */
export async function startFhir(config: Config, log: Logger, deps: Omit<FhirDeps, 'baseUrl' | 'tls'>): Promise<FhirService> {
  const material = loadTlsMaterial(config);
  let base = '';
  const app = createFhirServer({ ...deps, tls: material, baseUrl: () => base }, serverTlsOptions(material), log);
  await app.listen({ host: config.fhir.host, port: config.fhir.port });
  const port = (app.server.address() as AddressInfo).port;
  const host = config.fhir.publicUrl ? '' : config.fhir.host.includes(':') ? `[${config.fhir.host}]` : config.fhir.host;
  base = config.fhir.publicUrl ? config.fhir.publicUrl.replace(/\/+$/, '') : `https://${host}:${port}${FHIR_BASE_PATH}`;
  return { url: base, app, stop: () => app.close() };
}
