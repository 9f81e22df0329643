// RFC 3161 §3.4 "Time-Stamp Protocol via HTTP": POST application/timestamp-query, answer
// application/timestamp-reply. An encapsulated Fastify plugin: its body parsers apply to
// its own route only, so the rest of the HTTP API keeps JSON.

import type { FastifyPluginAsync } from 'fastify';
import { MssError, problem } from '../core/errors.js';
import type { Tsa } from './tsa.js';

export interface TsaRoutesOptions {
  tsa: Pick<Tsa, 'respond'>;
}

const QUERY = 'application/timestamp-query';
const REPLY = 'application/timestamp-reply';

export const tsaRoutes: FastifyPluginAsync<TsaRoutesOptions> = async (app, { tsa }) => {
  // Take every body as raw bytes here, so a wrong content type reaches the handler and gets
  // our 415 problem+json rather than a parser error about JSON.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 64 * 1024 }, (_req, body, done) => done(null, body));

  app.post('/tsa', async (req, reply) => {
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (type !== QUERY) {
      const body = problem(new MssError('UNSUPPORTED_MEDIA_TYPE', { expected: QUERY, got: type || 'no content type' }), req.url);
      return reply.code(415).type('application/problem+json').send(body);
    }
    // Garbage with the right content type is answered in the protocol: a TimeStampResp
    // with status rejection, which is what an RFC 3161 client knows how to show.
    const der = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    return reply.type(REPLY).send(await tsa.respond(der));
  });
};
