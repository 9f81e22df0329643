// Handing a message's documents to the DMP: what the webmail's "send to the DMP" button and
// the per-BAL rules (dmp/watcher.ts) both call. The documents come from the message's
// attachments (an IHE_XDM package as it is; a bare CDA with a submission made from its
// header), take the masking asked for, and go to the DMP by ITI-41; each attempt's outcome
// is one row of dmp_submissions and one journal event, written together. A message with a
// refused attachment (a hostile or broken XDM) sends nothing at all: half a message's
// documents in a patient's record would be worse than none.
import type { Db, Queryable } from '../core/db/index.js';
import { MssError } from '../core/errors.js';
import type { Journal } from '../core/journal/index.js';
import type { Logger } from '../core/logger.js';
import { submitToDmp, type DmpResult, type DmpTls } from './iti41/client.js';
import type { RegistryError } from './iti41/soap.js';
import { MASKINGS, maskingOf, withMasking } from './masking.js';
import { submissionFromCda } from './documents.js';
import type { Masking, Submission } from './types.js';

/** sourceId when none is configured: the private arc the dev PKI also uses (never for production). */
export const DEFAULT_SOURCE_ID = '1.2.250.1.999.1.1';

/**
 * One attachment of a message as dmp/documents.ts documentsOfMessage gives it: an
 * IHE_XDM.zip with its checked submission, a bare CDA with its bytes, or the reason the
 * attachment was refused.
 */
export interface MessageDocument {
  kind: string;
  filename?: string;
  /** An XDM's checked submission, the documents' bytes included. */
  submission?: Submission;
  /** A bare CDA document's bytes. */
  content?: Buffer;
  /** Why the attachment is refused (a sentence, an MssError or an Error). */
  error?: unknown;
  /** The catalogue code of that refusal. */
  errorCode?: string;
}

export interface HandoffDeps {
  db: Db;
  journal: Pick<Journal, 'appendIn'>;
  /** The documents of a raw RFC 5322 message (dmp/documents.ts documentsOfMessage). */
  documentsOf(raw: Buffer): Promise<MessageDocument[]> | MessageDocument[];
  /** The platform's OID, sourceId of the submission sets made for bare CDA documents. */
  sourceId?: string;
  /** ITI-41 endpoint of the DMP (or of the stand-in). */
  endpoint: string;
  timeoutMs: number;
  tls?: DmpTls;
  log: Logger;
}

export interface HandoffRequest {
  /** Who asks: the principal (person login) or `dmp-rule:<bal>`. */
  actor: string;
  bal: string;
  folder: string;
  uid: number;
  messageId?: string;
  raw: Buffer;
  /** The DMP visibility to give every document; absent: as the documents say. */
  masking?: Masking;
}

export interface HandoffSubmission {
  /** dmp_submissions.id */
  id: number;
  attachment: string | null;
  status: 'success' | 'failure';
  documentIds: string[];
  errors: RegistryError[];
  requestId: string | null;
  httpStatus: number | null;
  journalSeq: number;
}

export interface HandoffResult {
  /** nothing: the message carries no document for the DMP. */
  outcome: 'success' | 'failure' | 'nothing';
  /** When refused before sending: why, in words. */
  reason?: string;
  submissions: HandoffSubmission[];
}

function refusalOf(what: string, error: unknown, code?: string): RegistryError {
  if (error instanceof MssError) return { code: error.code, context: `${what}: ${error.message}`, severity: 'error' };
  const text = error instanceof Error ? error.message : typeof error === 'string' && error ? error : 'no document could be read from it';
  return { code: code ?? 'DMP_DOCUMENT_REFUSED', context: `${what}: ${text}`, severity: 'error' };
}

const nameOf = (d: MessageDocument) => (d.filename ? `${d.filename} (${d.kind})` : d.kind);

/** The submission with the masking applied to every document's confidentiality codes. */
export function applyMasking(s: Submission, masking: Masking | undefined): Submission {
  if (!masking) return s;
  return { ...s, documents: s.documents.map((d) => ({ ...d, confidentialityCodes: withMasking(d.confidentialityCodes, masking) })) };
}

interface Outcome {
  attachment: string | null;
  kind: string | null;
  documentIds: string[];
  status: 'success' | 'failure';
  errors: RegistryError[];
  result?: DmpResult;
  visibility?: Masking[];
}

async function record(deps: HandoffDeps, req: HandoffRequest, o: Outcome): Promise<HandoffSubmission> {
  return deps.db.transaction(async (tx: Queryable) => {
    const { seq } = await deps.journal.appendIn(tx, {
      type: o.status === 'success' ? 'dmp.submitted' : 'dmp.failed',
      actor: req.actor,
      subject: req.messageId ?? `${req.bal}/${req.folder}/${req.uid}`,
      details: {
        bal: req.bal,
        folder: req.folder,
        uid: req.uid,
        ...(req.messageId ? { messageId: req.messageId } : {}),
        ...(o.attachment ? { attachment: o.attachment } : {}),
        documents: o.documentIds,
        status: o.status,
        ...(req.masking ? { masking: req.masking } : {}),
        ...(o.visibility ? { visibility: o.visibility } : {}),
        ...(o.result ? { endpoint: deps.endpoint, requestId: o.result.requestId, httpStatus: o.result.httpStatus } : { sent: false }),
        errors: o.errors,
      },
    });
    const { rows } = await tx.query<{ id: number }>(
      `INSERT INTO dmp_submissions (bal, folder, uid, message_id, actor, attachment, kind, document_ids, masking, status, errors, endpoint, request_id, http_status, journal_seq)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12, $13, $14, $15) RETURNING id`,
      [
        req.bal,
        req.folder,
        req.uid,
        req.messageId ?? null,
        req.actor,
        o.attachment,
        o.kind,
        o.documentIds,
        req.masking ?? null,
        o.status,
        JSON.stringify(o.errors),
        o.result ? deps.endpoint : null,
        o.result?.requestId ?? null,
        o.result?.httpStatus ?? null,
        seq,
      ],
    );
    return {
      id: Number(rows[0]!.id),
      attachment: o.attachment,
      status: o.status,
      documentIds: o.documentIds,
      errors: o.errors,
      requestId: o.result?.requestId ?? null,
      httpStatus: o.result?.httpStatus ?? null,
      journalSeq: seq,
    };
  });
}

/**
 * The Message-ID header of a raw message (first occurrence, unfolded), so the outcome can be
 * found by it when the caller did not pass it. Only the header block is looked at.
 */
export function messageIdOf(raw: Buffer): string | undefined {
  let end = raw.indexOf('\r\n\r\n');
  if (end < 0) end = raw.indexOf('\n\n');
  const head = raw.subarray(0, end < 0 ? Math.min(raw.length, 256 * 1024) : end).toString('latin1').replace(/\r?\n[ \t]+/g, ' ');
  const m = /^message-id:[ \t]*(<[^<>\s]+>)/im.exec(head);
  return m?.[1];
}

/** Hands the message's documents to the DMP and records the outcome (never throws for a DMP or document problem). */
export async function handoffMessage(deps: HandoffDeps, req: HandoffRequest): Promise<HandoffResult> {
  if (req.masking !== undefined && !MASKINGS.includes(req.masking)) throw new MssError('BAD_REQUEST', { reason: `unknown masking "${String(req.masking)}" (one of ${MASKINGS.join(', ')})` });
  if (req.messageId === undefined) {
    const found = messageIdOf(req.raw);
    if (found) req = { ...req, messageId: found };
  }
  const log = deps.log.child({ mod: 'dmp-handoff', bal: req.bal, uid: req.uid });
  let found: MessageDocument[];
  try {
    found = await deps.documentsOf(req.raw);
  } catch (e) {
    found = [{ kind: 'message', error: e }];
  }
  if (!found.length) return { outcome: 'nothing', submissions: [] };

  // What goes: each XDM's submission as it is; the bare CDA documents together, in one
  // submission made from their headers (they must be about one patient).
  const refused: Array<{ d: MessageDocument; error: RegistryError }> = [];
  const ready: Array<{ d: MessageDocument; submission: Submission }> = [];
  const cdas: MessageDocument[] = [];
  for (const d of found) {
    if (d.error !== undefined) refused.push({ d, error: refusalOf(nameOf(d), d.error, d.errorCode) });
    else if (d.submission) ready.push({ d, submission: d.submission });
    else if (d.kind === 'cda' && d.content) cdas.push(d);
    else refused.push({ d, error: refusalOf(nameOf(d), undefined) });
  }
  if (cdas.length) {
    try {
      const submission = submissionFromCda(
        cdas.map((d) => d.content!),
        { sourceId: deps.sourceId ?? DEFAULT_SOURCE_ID },
      );
      ready.push({ d: { kind: 'cda', filename: cdas.map((d) => d.filename ?? 'cda').join(', ') }, submission });
    } catch (e) {
      refused.push({ d: cdas[0]!, error: refusalOf(cdas.map(nameOf).join(', '), e) });
    }
  }
  if (refused.length) {
    const errors = refused.map((r) => r.error);
    const reason = errors.map((e) => e.context).join('; ');
    log.warn({ reason }, 'dmp hand-off refused: nothing sent');
    const row = await record(deps, req, { attachment: refused.map((r) => r.d.filename ?? r.d.kind).join(', '), kind: refused[0]!.d.kind, documentIds: [], status: 'failure', errors });
    return { outcome: 'failure', reason, submissions: [row] };
  }

  const submissions: HandoffSubmission[] = [];
  for (const { d, submission } of ready) {
    const sub = applyMasking(submission, req.masking);
    const result = await submitToDmp(deps.endpoint, sub, { timeoutMs: deps.timeoutMs, tls: deps.tls });
    const documentIds = sub.documents.map((x) => x.uniqueId);
    log.info({ status: result.status, documents: documentIds, errors: result.errors.map((e) => e.code), requestId: result.requestId }, 'dmp hand-off');
    submissions.push(
      await record(deps, req, {
        attachment: d.filename ?? null,
        kind: d.kind,
        documentIds,
        status: result.status,
        errors: result.errors,
        result,
        visibility: [...new Set(sub.documents.flatMap((x) => maskingOf(x.confidentialityCodes)))],
      }),
    );
  }
  return { outcome: submissions.every((s) => s.status === 'success') ? 'success' : 'failure', submissions };
}

export interface DmpOutcome {
  id: number;
  folder: string;
  uid: number;
  messageId: string | null;
  actor: string;
  attachment: string | null;
  documentIds: string[];
  masking: Masking | null;
  status: 'success' | 'failure';
  errors: RegistryError[];
  endpoint: string | null;
  requestId: string | null;
  httpStatus: number | null;
  submittedAt: Date;
  journalSeq: number;
}

/** The hand-off attempts of these messages of a box, newest first, by Message-ID. */
export async function dmpStatus(db: Queryable, bal: string, messageIds: string[]): Promise<Map<string, DmpOutcome[]>> {
  const out = new Map<string, DmpOutcome[]>();
  if (!messageIds.length) return out;
  const { rows } = await db.query<Record<string, unknown>>(
    `SELECT id, folder, uid, message_id, actor, attachment, document_ids, masking, status, errors, endpoint, request_id, http_status, submitted_at, journal_seq
       FROM dmp_submissions WHERE bal = $1 AND message_id = ANY($2::text[]) ORDER BY submitted_at DESC, id DESC`,
    [bal, messageIds],
  );
  for (const r of rows) {
    const o: DmpOutcome = {
      id: Number(r.id),
      folder: String(r.folder),
      uid: Number(r.uid),
      messageId: (r.message_id as string | null) ?? null,
      actor: String(r.actor),
      attachment: (r.attachment as string | null) ?? null,
      documentIds: (r.document_ids as string[] | null) ?? [],
      masking: (r.masking as Masking | null) ?? null,
      status: r.status as 'success' | 'failure',
      errors: (typeof r.errors === 'string' ? JSON.parse(r.errors) : r.errors) as RegistryError[],
      endpoint: (r.endpoint as string | null) ?? null,
      requestId: (r.request_id as string | null) ?? null,
      httpStatus: r.http_status === null || r.http_status === undefined ? null : Number(r.http_status),
      submittedAt: r.submitted_at as Date,
      journalSeq: Number(r.journal_seq),
    };
    const list = out.get(o.messageId!) ?? [];
    list.push(o);
    out.set(o.messageId!, list);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Per-BAL rules: "every document arriving in this box goes to the DMP with this masking".

export interface DmpRuleRow {
  bal: string;
  masking: Masking;
  enabled: boolean;
  createdBy: string;
  createdAt: Date;
  updatedAt: Date;
}

/** The rules in force (enabled), as the watcher reads them. */
export async function dmpRules(db: Queryable): Promise<Array<{ bal: string; masking: Masking }>> {
  const { rows } = await db.query<{ bal: string; masking: Masking }>('SELECT bal, masking FROM dmp_rules WHERE enabled ORDER BY bal');
  return rows.map((r) => ({ bal: r.bal, masking: r.masking }));
}

export async function listDmpRules(db: Queryable): Promise<DmpRuleRow[]> {
  const { rows } = await db.query<Record<string, unknown>>('SELECT bal, masking, enabled, created_by, created_at, updated_at FROM dmp_rules ORDER BY bal');
  return rows.map((r) => ({
    bal: String(r.bal),
    masking: r.masking as Masking,
    enabled: Boolean(r.enabled),
    createdBy: String(r.created_by),
    createdAt: r.created_at as Date,
    updatedAt: r.updated_at as Date,
  }));
}

/** Creates or changes the rule of a box; journalled. */
export async function setDmpRule(deps: { db: Db; journal: Pick<Journal, 'appendIn'> }, rule: { bal: string; masking: Masking; enabled?: boolean; actor: string }): Promise<void> {
  if (!MASKINGS.includes(rule.masking)) throw new MssError('BAD_REQUEST', { reason: `unknown masking "${String(rule.masking)}" (one of ${MASKINGS.join(', ')})` });
  const enabled = rule.enabled ?? true;
  await deps.db.transaction(async (tx) => {
    await tx.query(
      `INSERT INTO dmp_rules (bal, masking, enabled, created_by) VALUES ($1, $2, $3, $4)
       ON CONFLICT (bal) DO UPDATE SET masking = EXCLUDED.masking, enabled = EXCLUDED.enabled, updated_at = now()`,
      [rule.bal, rule.masking, enabled, rule.actor],
    );
    await deps.journal.appendIn(tx, { type: 'dmp.rule.set', actor: rule.actor, subject: rule.bal, details: { masking: rule.masking, enabled } });
  });
}

/** Removes the rule of a box; journalled. False when there was none. */
export async function removeDmpRule(deps: { db: Db; journal: Pick<Journal, 'appendIn'> }, bal: string, actor: string): Promise<boolean> {
  return deps.db.transaction(async (tx) => {
    const { rowCount } = await tx.query('DELETE FROM dmp_rules WHERE bal = $1', [bal]);
    if (rowCount) await deps.journal.appendIn(tx, { type: 'dmp.rule.removed', actor, subject: bal, details: {} });
    return rowCount > 0;
  });
}
