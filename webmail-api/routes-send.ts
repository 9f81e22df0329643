// Sending from a box, and read receipts. The message goes to the platform's submission
// server as the person (session token), which applies the sender rules: a non-member sending
// as an organisational box is refused there (553 5.7.1), and that sentence is the answer.
import multipart, { type MultipartFile } from '@fastify/multipart';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isMssError, MssError } from '../core/errors.js';
import { access, PREFIX, sessionOf, type ApiContext } from './api.js';
import { buildMdn, buildMessage, type OutgoingAttachment } from './compose.js';
import { addKeyword, appendToSent, fetchMessage } from './mailbox.js';
import { renderMessage } from './render.js';
import * as S from './schemas.js';
import { submit } from './submit.js';

const tag = (t: string) => ({ tags: [t], security: [{ bearer: [] }] });

interface SendBody {
  to: string[];
  cc: string[];
  bcc: string[];
  subject: string;
  text?: string;
  html?: string;
  inReplyTo?: string;
  readReceipt: boolean;
  nil?: string;
  attachments: Array<{ filename: string; contentType?: string; content: string }>;
}

/** Keyword RFC 3503 sets once a receipt went out, so no client sends a second one. */
const MDN_SENT = '$MDNSent';

export function sendRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { deps, pool } = ctx;

  const send = async (req: FastifyRequest, bal: string, recipients: string[], raw: Buffer) => {
    const s = sessionOf(req);
    return submit(deps.submission, { user: s.principal.login, token: s.token }, { from: bal, to: recipients }, raw);
  };

  // The send route alone takes multipart/form-data: its parser lives in this inner scope.
  void app.register(async (form) => sendRoute(form, ctx, send));

  app.post(
    `${PREFIX}/bals/:bal/messages/:folder/:uid/mdn`,
    {
      config: { access: access.mailbox },
      schema: {
        ...tag('send'),
        summary: 'Send the read receipt (RFC 8098 disposition notification) the sender asked for',
        params: S.messageParams,
        response: { 200: { type: 'object', properties: { messageId: { type: 'string' }, to: { type: 'string' } } }, ...S.errors(400, 401, 403, 404, 409, 422, 503) },
      },
    },
    async (req) => {
      const { bal, folder, uid } = req.params as { bal: string; folder: string; uid: number };
      const s = sessionOf(req);
      const m = await pool.with(s, bal, (c) => fetchMessage(c, bal, folder, uid, false));
      if (m.flags.keywords.some((k) => k.toLowerCase() === MDN_SENT.toLowerCase())) throw new MssError('WEBMAIL_MDN_ALREADY_SENT', { uid });
      const r = await renderMessage(m.raw, m.structure);
      const to = r.dispositionNotificationTo;
      if (!to) throw new MssError('WEBMAIL_NO_MDN_REQUESTED', { uid });
      const mdn = await buildMdn({ bal, to, original: { raw: m.raw, messageId: r.messageId, subject: r.subject }, hostname: ctx.hostname });
      // RFC 8098 wants a null envelope sender; the submission server takes only a box the
      // person may send as, so the receipt leaves from the box that received the message.
      await send(req, bal, [to], mdn.raw);
      await pool.with(s, bal, (c) => addKeyword(c, bal, folder, uid, MDN_SENT));
      return { messageId: mdn.messageId, to };
    },
  );
}

type Send = (req: FastifyRequest, bal: string, recipients: string[], raw: Buffer) => ReturnType<typeof submit>;

/** Multipart form fields are text: "true"/"false" are the form's booleans, anything else stays text and fails the schema. */
const formBoolean = (v: unknown) => (v === 'true' ? true : v === 'false' ? false : v);

async function sendRoute(app: FastifyInstance, ctx: ApiContext, send: Send): Promise<void> {
  const { pool } = ctx;
  const tooBig = () => new MssError('MESSAGE_TOO_BIG', { limit: ctx.maxUpload });

  // multipart/form-data: fields become the JSON body's properties and each file part named
  // "attachments" becomes one attachment, so one schema validates both forms.
  await app.register(multipart, {
    attachFieldsToBody: 'keyValues',
    limits: { fileSize: ctx.maxUpload, fieldSize: ctx.maxUpload, files: 100, fields: 200, parts: 300 },
    async onFile(this: FastifyRequest, part: MultipartFile) {
      let content: Buffer;
      try {
        content = await part.toBuffer();
      } catch (e) {
        if ((e as { code?: string }).code === 'FST_REQ_FILE_TOO_LARGE') throw tooBig();
        throw e;
      }
      (part as unknown as { value: unknown }).value = { filename: part.filename, contentType: part.mimetype, content: content.toString('base64') };
    },
  });
  // A form the parser could not read (truncated, no boundary, a broken part header) fails
  // inside the plugin's own hook with the parser's plain error: it is the client's 400. Once
  // the form is read (formRead), errors are the handler's and go up as they are.
  const formRead = new WeakSet<FastifyRequest>();
  app.setErrorHandler((err, req) => {
    const e = err as { statusCode?: number; code?: string; message?: string };
    if (req.isMultipart() && !formRead.has(req) && !isMssError(err) && e.statusCode === undefined) {
      throw new MssError('BAD_REQUEST', { reason: `the multipart/form-data body cannot be read: ${String(e.message).slice(0, 200)}` });
    }
    throw err;
  });

  app.post(
    `${PREFIX}/bals/:bal/send`,
    {
      config: { access: access.mailbox },
      bodyLimit: Math.ceil(ctx.maxUpload * 1.4) + 1024 * 1024,
      preValidation: async (req) => {
        if (!req.isMultipart()) return;
        formRead.add(req);
        const b = req.body as Record<string, unknown>;
        for (const k of ['to', 'cc', 'bcc']) {
          const v = b[k];
          if (v !== undefined) b[k] = (Array.isArray(v) ? v : [v]).flatMap((x) => String(x).split(',')).map((x) => x.trim()).filter(Boolean);
        }
        if (b.attachments !== undefined && !Array.isArray(b.attachments)) b.attachments = [b.attachments];
        if (b.readReceipt !== undefined) b.readReceipt = formBoolean(b.readReceipt);
      },
      schema: {
        ...tag('send'),
        summary: 'Send a message from this box (through the platform\'s submission, with its sender rules)',
        description:
          'JSON (attachments base64) or multipart/form-data (fields to, cc, bcc — repeated or comma-separated —, subject, text, html, inReplyTo, readReceipt, nil; files named "attachments"). ' +
          'From is the box; X-MSS-NIL names the sending software. A copy goes to the box\'s Sent folder. Refusals of the submission server come back with its sentence: 403 for 5.7.x (not allowed), 422 for other 5xx, 503 for 4xx.',
        consumes: ['application/json', 'multipart/form-data'],
        params: S.balParams,
        body: S.sendBody,
        response: {
          200: {
            type: 'object',
            properties: {
              messageId: { type: 'string' },
              accepted: { type: 'array', items: { type: 'string' } },
              rejected: { type: 'array', items: { type: 'object', properties: { address: { type: 'string' }, reply: { type: 'string' } } } },
              sentFolder: { type: ['string', 'null'] },
            },
          },
          ...S.errors(400, 401, 403, 413, 422, 503),
        },
      },
    },
    async (req) => {
      const { bal } = req.params as { bal: string };
      const b = req.body as SendBody;
      const attachments: OutgoingAttachment[] = b.attachments.map((a) => ({ filename: a.filename, contentType: a.contentType, content: Buffer.from(a.content, 'base64') }));
      const size = attachments.reduce((n, a) => n + a.content.length, Buffer.byteLength(b.text ?? '') + Buffer.byteLength(b.html ?? ''));
      if (size > ctx.maxUpload) throw tooBig();
      const { raw, messageId } = await buildMessage({ from: bal, to: b.to, cc: b.cc, bcc: b.bcc, subject: b.subject, text: b.text, html: b.html, inReplyTo: b.inReplyTo, readReceipt: b.readReceipt, nil: b.nil, attachments, hostname: ctx.hostname });
      if (raw.length > ctx.maxUpload) throw tooBig();
      const r = await send(req, bal, [...b.to, ...b.cc, ...b.bcc], raw);
      // The copy in Sent is a convenience: the message has left; a failure here is logged, not an error.
      let sentFolder: string | null = null;
      try {
        sentFolder = await pool.with(sessionOf(req), bal, (c) => appendToSent(c, raw));
      } catch (e) {
        req.log.warn({ err: (e as Error).message, bal }, 'could not keep a copy in Sent');
      }
      return { messageId, accepted: r.accepted, rejected: r.rejected, sentFolder };
    },
  );
}
