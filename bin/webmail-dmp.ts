// The webmail's clinical-document functions, made from the platform's parts (composition
// root): what a message carries and how the webmail shows it, the DMP hand-off and its
// recorded outcomes, the IHE_XDM package of CDA documents to send, and the per-box DMP rule
// (core/policy decides who may set it; dmp/ keeps and journals it). webmail-api receives
// them as functions, never importing dmp/ or the database.
import type { Db } from '../core/db/index.js';
import type { Journal } from '../core/journal/index.js';
import { principalActor, verdictError, type PersonPrincipal, type Policy } from '../core/policy/index.js';
import { composeXdmMessage, dmpStatus, handoffMessage, listDmpRules, removeDmpRule, setDmpRule, submissionFromCda, withViews, type HandoffDeps, type Masking, type MessageDocument } from '../dmp/index.js';
import { DEFAULT_SOURCE_ID } from '../dmp/handoff.js';
import type { DmpRuleAnswer, WebmailDeps, XdmPackage } from '../webmail-api/deps.js';

export function webmailDmpDeps(o: { db: Db; journal: Journal; policy: Policy; handoff: HandoffDeps; documentsOf(raw: Buffer): Promise<MessageDocument[]> }): Required<Pick<WebmailDeps, 'documentsOf' | 'dmpHandoff' | 'dmpOutcomes' | 'packageXdm' | 'dmpRule'>> {
  const ctx = { front: 'webmail' };
  const ruleOf = async (principal: PersonPrincipal, bal: string): Promise<DmpRuleAnswer> => {
    const address = bal.toLowerCase();
    const v = await o.policy.wouldSetDmpRule(principal, address);
    const row = (await listDmpRules(o.db)).find((r) => r.bal === address);
    return {
      bal: address,
      rule: row ? { masking: row.masking, enabled: row.enabled, updatedAt: row.updatedAt.toISOString(), createdBy: row.createdBy } : null,
      maySet: v.ok,
      ...(v.ok ? {} : { why: v.reason }),
    };
  };
  /** Reading the rule is open to whoever may open the box; a refusal to set it is part of the answer. */
  const readable = async (principal: PersonPrincipal, bal: string) => {
    const open = await o.policy.mayOpenBal(principal, bal, ctx);
    if (!open.ok) throw verdictError(open);
    return ruleOf(principal, bal);
  };
  const settable = async (principal: PersonPrincipal, bal: string) => {
    const v = await o.policy.maySetDmpRule(principal, bal.toLowerCase(), ctx);
    if (!v.ok) throw verdictError(v);
  };
  return {
    documentsOf: async (raw) => withViews(await o.documentsOf(raw)),
    dmpHandoff: (req) => handoffMessage(o.handoff, { actor: principalActor(req.principal), bal: req.bal, folder: req.folder, uid: req.uid, raw: req.raw, masking: req.masking as Masking | undefined }),
    dmpOutcomes: async (bal, messageId) => (await dmpStatus(o.db, bal.toLowerCase(), [messageId])).get(messageId) ?? [],
    async packageXdm(req): Promise<XdmPackage> {
      const submission = submissionFromCda(
        req.cdas.map((c) => c.content),
        { sourceId: o.handoff.sourceId ?? DEFAULT_SOURCE_ID, intendedRecipients: req.to },
      );
      const m = await composeXdmMessage({ from: req.from, to: req.to, text: '', submission, nil: 'webmail' });
      const a = (m.attachments ?? [])[0] as { filename: string; contentType: string; content: Buffer };
      const h = m.headers as Record<string, string>;
      return {
        attachment: { filename: a.filename, contentType: a.contentType, content: a.content },
        headers: Object.fromEntries(Object.entries(h).filter(([k]) => /^x-mss-(ins|codecda)$/i.test(k))),
        subject: String(m.subject ?? ''),
      };
    },
    dmpRule: {
      get: readable,
      async set(principal, bal, rule) {
        await settable(principal, bal);
        await setDmpRule({ db: o.db, journal: o.journal }, { bal: bal.toLowerCase(), masking: rule.masking as Masking, enabled: rule.enabled, actor: principalActor(principal) });
        return ruleOf(principal, bal);
      },
      async remove(principal, bal) {
        await settable(principal, bal);
        await removeDmpRule({ db: o.db, journal: o.journal }, bal.toLowerCase(), principalActor(principal));
        return ruleOf(principal, bal);
      },
    },
  };
}
