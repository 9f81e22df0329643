// Reading a box: folders, the message list, a message, an attachment; flags, move, delete;
// the DMP hand-off of a message. Each request runs on the session's IMAP connection to that
// box, so a person who may not open it gets the policy's refusal (403) from the proxy.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isMssError, MssError, problem } from '../core/errors.js';
import { access, PREFIX, sessionOf, type ApiContext } from './api.js';
import { deleteMessage, fetchMessage, listFolders, listMessages, moveMessage, openAttachment, readMessage, setFlags, type ListQuery } from './mailbox.js';
import { carriesDocuments, plain, renderMessage, renderSections, safeHtml, textSections } from './render.js';
import { RenderCache } from './render-cache.js';
import * as S from './schemas.js';

const tag = (t: string) => ({ tags: [t], security: [{ bearer: [] }] });

/** Each document's narrative (HTML made by dmp/ from escaped text) goes through the same sanitiser as a message's HTML: one more net. */
function sanitisedViews(documents: unknown): unknown {
  if (!Array.isArray(documents)) return documents;
  for (const d of documents as Array<{ view?: { documents?: Array<{ narrative?: unknown }> } }>) {
    for (const x of d?.view?.documents ?? []) if (typeof x.narrative === 'string') x.narrative = safeHtml(x.narrative);
  }
  return documents;
}

/** Attachments shown inside the page (an image) or opened in a tab (a PDF) when asked: never HTML, SVG, XML or text, which a browser could run or style. */
export const PREVIEWABLE = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'application/pdf']);

type MessageParams = { bal: string; folder: string; uid: number };

/** RFC 6266: an ASCII fallback and the UTF-8 name. */
function contentDisposition(filename: string | null, kind: 'attachment' | 'inline' = 'attachment'): string {
  if (!filename) return kind;
  const ascii = filename.replace(/[^\x20-\x7e]/g, '_').replace(/["\\]/g, '_');
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(filename).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}`;
}

export function mailRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { deps, pool } = ctx;
  const onBox = <T>(req: FastifyRequest, bal: string, fn: Parameters<typeof pool.with<T>>[2]) => pool.with(sessionOf(req), bal, fn);

  app.get(
    `${PREFIX}/bals/:bal/folders`,
    { config: { access: access.mailbox }, schema: { ...tag('folders'), summary: 'The folders of a box, with message and unseen counts', params: S.balParams, response: { 200: { type: 'array', items: { $ref: 'Folder#' } }, ...S.errors(400, 401, 403, 503) } } },
    async (req) => {
      const { bal } = req.params as { bal: string };
      return onBox(req, bal, (c) => listFolders(c, bal));
    },
  );

  app.get(
    `${PREFIX}/bals/:bal/folders/:folder/messages`,
    {
      config: { access: access.mailbox },
      schema: {
        ...tag('messages'),
        summary: 'A page of the messages of a folder, sorted, optionally searched',
        description: 'The folder path is URL-encoded (a "/" in it as %2F).',
        params: S.folderParams,
        querystring: S.listQuery,
        response: {
          200: { type: 'object', properties: { bal: { type: 'string' }, folder: { type: 'string' }, total: { type: 'integer' }, page: { type: 'integer' }, pageSize: { type: 'integer' }, messages: { type: 'array', items: { $ref: 'MessageSummary#' } } } },
          ...S.errors(400, 401, 403, 404, 503),
        },
      },
    },
    async (req) => {
      const { bal, folder } = req.params as { bal: string; folder: string };
      const q = req.query as ListQuery;
      const r = await onBox(req, bal, (c) => listMessages(c, bal, folder, q));
      return { bal, folder, total: r.total, page: q.page, pageSize: q.pageSize, messages: r.messages };
    },
  );

  app.get(
    `${PREFIX}/bals/:bal/messages/:folder/:uid`,
    {
      config: { access: access.mailbox },
      schema: {
        ...tag('messages'),
        summary: 'One message, parsed: headers, text, sanitised HTML, attachments, and the XDS metadata of its clinical documents',
        params: S.messageParams,
        querystring: { type: 'object', additionalProperties: false, properties: { markSeen: { type: 'boolean', default: true, description: 'reading marks the message seen' } } },
        response: { 200: { $ref: 'Message#' }, ...S.errors(400, 401, 403, 404, 503) },
      },
    },
    async (req) => {
      const { bal, folder, uid } = req.params as MessageParams;
      const { markSeen } = req.query as { markSeen: boolean };
      const documentsOf = deps.documentsOf;
      const copies = ctx.rendered;
      const m = await onBox(req, bal, (c) =>
        readMessage(c, bal, folder, uid, { markSeen, whole: ctx.readWhole, sections: (s) => textSections(s, { documents: !!documentsOf }), rendered: copies ? (v) => copies.get(RenderCache.key(bal, folder, v, uid)) : undefined }),
      );
      if ('rendered' in m) return { uid, bal, folder, ...m.rendered, flags: m.flags };
      const r = 'raw' in m.content ? await renderMessage(m.content.raw, m.structure) : await renderSections(m.content.header, m.content.plain, m.content.html, m.structure!, m.content.sizes);
      let documents: unknown;
      let documentsError: { title: string; detail: string } | undefined;
      const withDocuments = !!(documentsOf && r.parsed && 'raw' in m.content && carriesDocuments(r.parsed));
      if (withDocuments) {
        try {
          documents = plain(await documentsOf!((m.content as { raw: Buffer }).raw));
        } catch (e) {
          // A refused archive is shown as such with its reason; the message itself still reads.
          if (!isMssError(e)) req.log.error({ err: e }, 'reading the documents of a message failed');
          const p = problem(e);
          documentsError = { title: p.title, detail: p.detail };
        }
      }
      // The outcome of each hand-off of this message to the DMP (by its Message-ID), shown with it.
      let dmp: unknown;
      if (documents !== undefined && deps.dmpOutcomes && r.messageId) dmp = plain(await deps.dmpOutcomes(bal, r.messageId));
      const { parsed: _p, ...shown } = r;
      // Kept for the next read, unless it carries clinical documents (the dmp/ readers are asked each time).
      if (copies && !withDocuments) {
        const copy = { date: m.date, size: m.size, ...shown };
        copies.put(RenderCache.key(bal, folder, m.validity, uid), copy, Buffer.byteLength(JSON.stringify(copy)));
      }
      return {
        uid,
        bal,
        folder,
        date: m.date,
        size: m.size,
        flags: m.flags,
        ...shown,
        ...(documents !== undefined ? { documents: sanitisedViews(documents) } : {}),
        ...(documentsError ? { documentsError } : {}),
        ...(dmp !== undefined ? { dmp } : {}),
      };
    },
  );

  app.get(
    `${PREFIX}/bals/:bal/messages/:folder/:uid/attachments/:index`,
    {
      config: { access: access.mailbox },
      schema: {
        ...tag('messages'),
        summary: 'One attachment, streamed with its content type (index from the message\'s attachment list)',
        description: `With inline=true, an image or a PDF (${[...PREVIEWABLE].join(', ')}) comes with Content-Disposition: inline, to be shown in the page or a tab; any other type is refused (415): HTML, SVG or XML are never shown inline. Always: nosniff and a CSP sandbox.`,
        params: S.attachmentParams,
        querystring: { type: 'object', additionalProperties: false, properties: { inline: { type: 'boolean', default: false } } },
        response: { 200: { description: 'the attachment\'s bytes', type: 'string', format: 'binary' }, ...S.errors(400, 401, 403, 404, 415, 503) },
      },
    },
    async (req, reply) => {
      const { bal, folder, uid, index } = req.params as MessageParams & { index: number };
      const { inline } = req.query as { inline: boolean };
      const held = await pool.hold(sessionOf(req), bal);
      let a: Awaited<ReturnType<typeof openAttachment>>;
      try {
        // Checked before the part is fetched: a refusal leaves the connection clean.
        a = await openAttachment(held.client, bal, folder, uid, index, (ref) => {
          if (inline && !PREVIEWABLE.has(ref.contentType)) throw new MssError('WEBMAIL_NO_PREVIEW', { type: ref.contentType });
        });
      } catch (e) {
        held.release();
        throw e;
      }
      // The connection is busy until the part is read; a client gone half-way leaves the
      // IMAP FETCH in an unknown state, so that connection is dropped, not reused.
      let ended = false;
      a.content.once('end', () => {
        ended = true;
        a.done();
        held.release();
      });
      a.content.once('error', () => {
        a.done();
        held.discard();
      });
      reply.raw.once('close', () => {
        if (ended) return;
        a.content.destroy();
        a.done();
        held.discard();
      });
      return reply
        .header('content-type', a.ref.contentType)
        .header('content-disposition', contentDisposition(a.filename, inline ? 'inline' : 'attachment'))
        .header('x-content-type-options', 'nosniff')
        .header('content-security-policy', "sandbox; default-src 'none'")
        .header('cache-control', 'private, no-store')
        .send(a.content);
    },
  );

  app.patch(
    `${PREFIX}/bals/:bal/messages/:folder/:uid`,
    { config: { access: access.mailbox }, schema: { ...tag('messages'), summary: 'Set or clear flags: seen, flagged, answered', params: S.messageParams, body: S.flagsBody, response: { 200: { $ref: 'Flags#' }, ...S.errors(400, 401, 403, 404, 503) } } },
    async (req) => {
      const { bal, folder, uid } = req.params as MessageParams;
      return onBox(req, bal, (c) => setFlags(c, bal, folder, uid, req.body as { seen?: boolean }));
    },
  );

  app.post(
    `${PREFIX}/bals/:bal/messages/:folder/:uid/move`,
    {
      config: { access: access.mailbox },
      schema: {
        ...tag('messages'),
        summary: 'Move a message to another folder of the same box',
        params: S.messageParams,
        body: S.moveBody,
        response: { 200: { type: 'object', properties: { folder: { type: 'string' }, uid: { type: ['integer', 'null'] } } }, ...S.errors(400, 401, 403, 404, 503) },
      },
    },
    async (req) => {
      const { bal, folder, uid } = req.params as MessageParams;
      const { to } = req.body as { to: string };
      if (to === folder) throw new MssError('BAD_REQUEST', { reason: `message ${uid} is already in ${folder}` });
      const r = await onBox(req, bal, (c) => moveMessage(c, bal, folder, uid, to));
      return { folder: to, uid: r.uid };
    },
  );

  app.delete(
    `${PREFIX}/bals/:bal/messages/:folder/:uid`,
    {
      config: { access: access.mailbox },
      schema: {
        ...tag('messages'),
        summary: 'Delete a message: to the Trash, or for good when it is in the Trash (or the box has none)',
        params: S.messageParams,
        response: { 200: { type: 'object', properties: { movedTo: { type: ['string', 'null'] } } }, ...S.errors(400, 401, 403, 404, 503) },
      },
    },
    async (req) => {
      const { bal, folder, uid } = req.params as MessageParams;
      return onBox(req, bal, (c) => deleteMessage(c, bal, folder, uid));
    },
  );

  app.post(
    `${PREFIX}/bals/:bal/messages/:folder/:uid/dmp`,
    {
      config: { access: access.mailbox },
      schema: {
        ...tag('dmp'),
        summary: "Hand the message's clinical documents to the DMP (ITI-41), with a masking choice",
        params: S.messageParams,
        body: S.dmpBody,
        response: {
          200: {
            type: 'object',
            description: 'success: every document was registered; failure: see reason and each submission\'s registry errors; nothing: the message carries no document',
            properties: { outcome: { type: 'string', enum: ['success', 'failure', 'nothing'] }, reason: { type: 'string' }, submissions: { type: 'array', items: { type: 'object', additionalProperties: true } } },
          },
          ...S.errors(400, 401, 403, 404, 422, 503),
        },
      },
    },
    async (req) => {
      if (!deps.dmpHandoff) throw new MssError('WEBMAIL_FEATURE_UNAVAILABLE', { feature: 'the DMP hand-off' });
      const { bal, folder, uid } = req.params as MessageParams;
      const { masking } = (req.body ?? {}) as { masking?: string };
      const m = await onBox(req, bal, (c) => fetchMessage(c, bal, folder, uid, false));
      const outcome = await deps.dmpHandoff({ principal: sessionOf(req).principal, bal, folder, uid, raw: m.raw, masking });
      return plain(outcome);
    },
  );
}
