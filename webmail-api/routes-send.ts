// Sending from a box, and read receipts. The message goes to the platform's submission
// server as the person (session token), which applies the sender rules: a non-member sending
// as an organisational box is refused there (553 5.7.1), and that sentence is the answer.
import multipart, { type MultipartFile } from '@fastify/multipart';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isMssError, MssError } from '../core/errors.js';
import { access, PREFIX, sessionOf, type ApiContext } from './api.js';
import { buildMdn, buildMessage, type OutgoingAttachment } from './compose.js';
import { addKeyword, appendDraft, appendToSent, fetchMessage, removeMessage, setFlags } from './mailbox.js';
import { carried, type OriginalRef } from './outgoing.js';
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
  references?: string[];
  original?: OriginalRef;
  draft?: number;
  xdm?: boolean;
  /** X-MSS-MES: FIN — the patient (Mon Espace Santé) is not expected to answer. */
  noPatientReply?: boolean;
  readReceipt: boolean;
  nil?: string;
  attachments: Array<{ filename: string; contentType?: string; content: string }>;
}

/** Keyword RFC 3503 sets once a receipt went out, so no client sends a second one. */
const MDN_SENT = '$MDNSent';
/** Keyword of a forwarded message (as Thunderbird and Dovecot's clients set it). */
const FORWARDED = '$Forwarded';

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
        summary: 'Send the read receipt (RFC 8098 disposition notification) the sender asked for, or decline to',
        description: 'The person chooses: { "decline": true } sends nothing and records the choice ($MDNSent, RFC 3503), so no client asks again.',
        params: S.messageParams,
        body: S.mdnBody,
        response: { 200: { type: 'object', properties: { messageId: { type: 'string' }, to: { type: 'string' }, declined: { type: 'boolean' } } }, ...S.errors(400, 401, 403, 404, 409, 422, 503) },
      },
    },
    async (req) => {
      const { bal, folder, uid } = req.params as { bal: string; folder: string; uid: number };
      const { decline } = (req.body ?? {}) as { decline?: boolean };
      const s = sessionOf(req);
      const m = await pool.with(s, bal, (c) => fetchMessage(c, bal, folder, uid, false));
      if (m.flags.keywords.some((k) => k.toLowerCase() === MDN_SENT.toLowerCase())) throw new MssError('WEBMAIL_MDN_ALREADY_SENT', { uid });
      const r = await renderMessage(m.raw, m.structure);
      const to = r.dispositionNotificationTo;
      if (!to) throw new MssError('WEBMAIL_NO_MDN_REQUESTED', { uid });
      if (decline) {
        await pool.with(s, bal, (c) => addKeyword(c, bal, folder, uid, MDN_SENT));
        return { declined: true, to };
      }
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
/** A form field holding JSON (`original`); what is not JSON stays text and fails the schema. */
const formJson = (v: string) => {
  try {
    return JSON.parse(v) as unknown;
  } catch {
    return v;
  }
};

async function sendRoute(app: FastifyInstance, ctx: ApiContext, send: Send): Promise<void> {
  const { pool, deps } = ctx;
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

  const formFields = async (req: FastifyRequest) => {
    if (!req.isMultipart()) return;
    formRead.add(req);
    const b = req.body as Record<string, unknown>;
    for (const k of ['to', 'cc', 'bcc']) {
      const v = b[k];
      if (v !== undefined) b[k] = (Array.isArray(v) ? v : [v]).flatMap((x) => String(x).split(',')).map((x) => x.trim()).filter(Boolean);
    }
    if (b.attachments !== undefined && !Array.isArray(b.attachments)) b.attachments = [b.attachments];
    if (b.readReceipt !== undefined) b.readReceipt = formBoolean(b.readReceipt);
    if (b.xdm !== undefined) b.xdm = formBoolean(b.xdm);
    if (b.noPatientReply !== undefined) b.noPatientReply = formBoolean(b.noPatientReply);
    if (typeof b.original === 'string') b.original = formJson(b.original);
  };

  /** The message as it leaves (or is kept as a draft): what was typed, with what it carries from its original and its draft. */
  const compose = async (req: FastifyRequest, bal: string, b: SendBody, draft: boolean) => {
    const added: OutgoingAttachment[] = b.attachments.map((a) => ({ filename: a.filename, contentType: a.contentType, content: Buffer.from(a.content, 'base64') }));
    const w = b.original || b.draft !== undefined ? await pool.with(sessionOf(req), bal, (c) => carried(c, bal, b)) : { attachments: [], inReplyTo: b.inReplyTo, references: b.references, original: null, draft: null, draftHeaders: {}, headers: {} };
    let attachments = [...w.attachments, ...added];
    let subject = b.subject;
    const headers: Record<string, string> = { ...w.headers };
    // Ref #2 / Mon Espace Santé: FIN closes the conversation on the patient's side.
    if (b.noPatientReply) headers['X-MSS-MES'] = 'FIN';
    // A CDA sent as IHE_XDM.zip (Ref #2): the server packs the XML attachments (dmp/ checks each is a CDA) and writes X-MSS-INS / X-MSS-CODECDA.
    if (b.xdm && !draft) {
      if (!deps.packageXdm) throw new MssError('WEBMAIL_FEATURE_UNAVAILABLE', { feature: 'sending a CDA as IHE_XDM' });
      const isXml = (a: OutgoingAttachment) => /xml/i.test(a.contentType ?? '') || /\.xml$/i.test(a.filename);
      const cdas = attachments.filter(isXml);
      if (!cdas.length) throw new MssError('BAD_REQUEST', { reason: 'xdm asks for a CDA document (an .xml attachment) to pack as IHE_XDM.zip; there is none' });
      const p = await deps.packageXdm({ from: bal, to: [...b.to, ...b.cc], cdas: cdas.map((a) => ({ filename: a.filename, content: a.content })) });
      attachments = [...attachments.filter((a) => !isXml(a)), p.attachment];
      Object.assign(headers, p.headers);
      if (!subject.trim()) subject = p.subject;
    }
    const size = attachments.reduce((n, a) => n + a.content.length, Buffer.byteLength(b.text ?? '') + Buffer.byteLength(b.html ?? ''));
    if (size > ctx.maxUpload) throw tooBig();
    const built = await buildMessage({
      from: bal,
      to: b.to,
      cc: b.cc,
      bcc: b.bcc,
      subject,
      text: b.text,
      html: b.html,
      headers,
      inReplyTo: w.inReplyTo,
      references: w.references,
      readReceipt: b.readReceipt,
      nil: b.nil,
      attachments,
      hostname: ctx.hostname,
      ...(draft ? { draft: { headers: w.draftHeaders } } : {}),
    });
    if (built.raw.length > ctx.maxUpload) throw tooBig();
    return { ...built, with: w };
  };

  // A message sent or kept as a draft: JSON with base64 attachments (a third larger than the
  // files) or a form, within the upload cap plus room for the fields.
  const messageBody = { config: { access: access.mailbox }, bodyLimit: Math.ceil(ctx.maxUpload * 1.4) + 1024 * 1024, preValidation: formFields };

  app.post(
    `${PREFIX}/bals/:bal/send`,
    {
      ...messageBody,
      schema: {
        ...tag('send'),
        summary: 'Send a message from this box (through the platform\'s submission, with its sender rules)',
        description:
          'JSON (attachments base64) or multipart/form-data (fields to, cc, bcc — repeated or comma-separated —, subject, text, html, inReplyTo, readReceipt, noPatientReply, nil; files named "attachments"). ' +
          'From is the box; X-MSS-NIL names the sending software. A copy goes to the box\'s Sent folder. ' +
          'A reply or forward names its `original` (JSON; in a form, a field holding that JSON): the server writes the thread headers, a forward takes the original\'s attachments, and the original is marked \\Answered or $Forwarded. `draft` sends a draft (its attachments and thread go along) and deletes it. Refusals of the submission server come back with its sentence: 403 for 5.7.x (not allowed), 422 for other 5xx, 503 for 4xx.',
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
      const s = sessionOf(req);
      const b = req.body as SendBody;
      const { raw, messageId, with: w } = await compose(req, bal, b, false);
      const r = await send(req, bal, [...b.to, ...b.cc, ...b.bcc], raw);
      // What follows is bookkeeping: the message has left; a failure is logged, not an error.
      let sentFolder: string | null = null;
      await pool
        .with(s, bal, async (c) => {
          sentFolder = await appendToSent(c, raw);
          if (w.original) {
            const o = w.original;
            if (o.action === 'reply') await setFlags(c, bal, o.folder, o.uid, { answered: true });
            else await addKeyword(c, bal, o.folder, o.uid, FORWARDED);
          }
          if (w.draft) await removeMessage(c, bal, w.draft.folder, w.draft.uid);
        })
        .catch((e: unknown) => req.log.warn({ err: (e as Error).message, bal }, 'sent; keeping the copy, marking the original or removing the draft failed'));
      return { messageId, accepted: r.accepted, rejected: r.rejected, sentFolder };
    },
  );

  app.post(
    `${PREFIX}/bals/:bal/drafts`,
    {
      ...messageBody,
      schema: {
        ...tag('send'),
        summary: 'Keep a draft in the box\'s Drafts folder (the fields of a message, none required)',
        description:
          'The same body as send. With `draft` (the UID of the draft being edited) the new version takes that one\'s attachments and replaces it; with `original`, the draft remembers the message it answers or forwards. ' +
          'Drafts are listed as the Drafts folder\'s messages, read as messages (with Bcc), sent with send + `draft`, deleted as messages.',
        consumes: ['application/json', 'multipart/form-data'],
        params: S.balParams,
        body: S.draftBody,
        response: { 200: { type: 'object', properties: { folder: { type: 'string' }, uid: { type: ['integer', 'null'] } } }, ...S.errors(400, 401, 403, 404, 413, 503) },
      },
    },
    async (req) => {
      const { bal } = req.params as { bal: string };
      const { raw, with: w } = await compose(req, bal, req.body as SendBody, true);
      return pool.with(sessionOf(req), bal, async (c) => {
        const kept = await appendDraft(c, bal, raw);
        if (w.draft) await removeMessage(c, bal, w.draft.folder, w.draft.uid);
        return kept;
      });
    },
  );
}
