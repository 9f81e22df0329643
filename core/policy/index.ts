// core/policy — the one place where access is decided. Every front (SMTP submission and MX,
// IMAP proxy, webmail API, admin API) asks here and turns the verdict into its wire code
// (core/errors.ts catalogue). Fail closed: no explicit allow is a refusal, and a fact that
// cannot be looked up is a temporary refusal, never an accept. Every refusal is journalled.
import type { JournalEventInput } from '../journal/index.js';
import type { Logger } from '../logger.js';
import { decideAdmin, decideDirectoryRead, decideDmpRule, decideOpenBal, decidePeer, decidePeerFrom, decideSendAs, decideTrustSpace, normaliseAddress, normaliseDomain, type AdminTarget, type DirectoryClient } from './decisions.js';
import type { MailboxFacts, PolicyFacts } from './facts.js';
import { principalActor, type AdminPrincipal, type PeerPrincipal, type Principal } from './principal.js';
import { refuse, type Refusal, type Verdict } from './verdict.js';

export * from './decisions.js';
export * from './facts.js';
export * from './principal.js';
export * from './verdict.js';
export * from './throttle.js';

/** The journal as the policy uses it (core/journal's Journal satisfies it). */
export interface RefusalSink {
  append(ev: JournalEventInput): Promise<unknown>;
}

/** Where the request came from, recorded with a refusal. */
export interface DecisionContext {
  /** smtp-submission, smtp-mx, imap, webmail, admin-api… */
  front?: string;
  /** Client address. */
  remote?: string;
}

export type PolicyAction = 'open-bal' | 'send-as' | 'administer' | 'trust-space' | 'peer-connect' | 'peer-from' | 'dmp-rule' | 'directory-read';

export interface PolicyOptions {
  /** The operator's own mail domains: inside the espace de confiance without a list entry. */
  localDomains: readonly string[];
  /** Refuse a peer whose certificate subject differs from the liste blanche's DNCertificatOperateur. */
  requirePeerDn?: boolean;
  now?: () => Date;
  log?: Logger;
}

/**
 * Journals a refusal as a `policy.refused` event: who (actor), on what (subject), the
 * action, the code and the sentence. A journal that cannot write is logged, never turned
 * into an accept: the refusal stands either way.
 */
export async function journalRefusal(
  sink: RefusalSink,
  v: Refusal,
  e: { principal: Principal | null; action: PolicyAction; subject: string; ctx?: DecisionContext; cause?: string },
  log?: Logger,
): Promise<void> {
  try {
    await sink.append({
      type: 'policy.refused',
      actor: e.principal ? principalActor(e.principal) : 'anonymous',
      subject: e.subject,
      details: {
        action: e.action,
        code: v.code,
        reason: v.reason,
        ...(v.temporary ? { temporary: true } : {}),
        ...(e.principal ? { principal: e.principal.kind, ...(e.principal.kind === 'person' ? { auth: e.principal.auth } : {}) } : {}),
        ...(e.ctx?.front ? { front: e.ctx.front } : {}),
        ...(e.ctx?.remote ? { remote: e.ctx.remote } : {}),
        ...(e.cause ? { cause: e.cause } : {}),
      },
    });
  } catch (err) {
    log?.error({ err, code: v.code, subject: e.subject }, 'could not journal a policy refusal');
  }
}

export class Policy {
  private readonly now: () => Date;

  constructor(
    private readonly facts: PolicyFacts,
    private readonly journal: RefusalSink,
    private readonly opts: PolicyOptions,
  ) {
    this.now = opts.now ?? (() => new Date());
  }

  /** May this principal open (read) the mailbox `address`? (IMAP login, webmail session.) */
  mayOpenBal(p: Principal, address: string, ctx?: DecisionContext): Promise<Verdict> {
    return this.onMailbox(p, 'open-bal', address, ctx, (bal) => decideOpenBal(p, address, bal, this.now()));
  }

  /** May this principal send as `address` (envelope sender and From header)? */
  maySendAs(p: Principal, address: string, ctx?: DecisionContext): Promise<Verdict> {
    return this.onMailbox(p, 'send-as', address, ctx, (bal) => decideSendAs(p, address, bal, this.now()));
  }

  /** May this principal set the DMP rule of the mailbox `address`? (decideDmpRule) */
  maySetDmpRule(p: Principal, address: string, ctx?: DecisionContext): Promise<Verdict> {
    return this.onMailbox(p, 'dmp-rule', address, ctx, (bal) => decideDmpRule(p, address, bal, this.now()));
  }

  /** What maySetDmpRule would answer, not journalled: a page asking whether to offer the change is not an attempt. */
  async wouldSetDmpRule(p: Principal, address: string): Promise<Verdict> {
    try {
      return decideDmpRule(p, address, await this.facts.mailbox(normaliseAddress(address)), this.now());
    } catch {
      return refuse('DIRECTORY_UNAVAILABLE');
    }
  }

  /** May this client read the directory's FHIR API? (decideDirectoryRead) `what` names the request in a refusal's journal event. */
  async mayReadDirectory(client: DirectoryClient, what: string, ctx?: DecisionContext): Promise<Verdict> {
    const v = decideDirectoryRead(client);
    if (!v.ok) {
      const c = client.certificate;
      const principal: Principal | null = c ? { kind: 'application', fingerprint: c.fingerprint, subject: c.subject } : null;
      await journalRefusal(this.journal, v, { principal, action: 'directory-read', subject: what, ctx }, this.opts.log);
    }
    return v;
  }

  /** May this admin act on these targets (all of them)? Synchronous facts: the caller resolved them. */
  async mayAdminister(admin: AdminPrincipal, targets: readonly AdminTarget[], ctx?: DecisionContext): Promise<Verdict> {
    const v = decideAdmin(admin, targets);
    if (!v.ok) {
      // One name per thing acted on (an account's scope before and after is one account).
      const subject = [...new Set(targets.map((t) => (t.kind === 'global' ? t.what : t.kind === 'mailbox' ? t.address : t.kind === 'account' || t.kind === 'admin' ? `admin:${t.login}` : t.domain)))].join(', ') || 'unknown';
      await journalRefusal(this.journal, v, { principal: admin, action: 'administer', subject, ctx }, this.opts.log);
    }
    return v;
  }

  /**
   * Is `domain` inside the espace de confiance (an own domain, or on the liste blanche)?
   * role names the address's part in the sentence: 'sender ', 'recipient '.
   */
  async inTrustSpace(domain: string, role = '', ctx?: DecisionContext & { principal?: Principal }): Promise<Verdict> {
    const d = normaliseDomain(domain);
    let v: Verdict;
    let cause: string | undefined;
    if (this.opts.localDomains.some((l) => normaliseDomain(l) === d)) return decideTrustSpace(d, null, this.opts.localDomains, role);
    try {
      v = decideTrustSpace(d, await this.facts.trustSpaceEntry(d), this.opts.localDomains, role);
    } catch (e) {
      cause = (e as Error).message;
      v = refuse('DIRECTORY_UNAVAILABLE');
    }
    if (!v.ok) await journalRefusal(this.journal, v, { principal: ctx?.principal ?? null, action: 'trust-space', subject: d, ctx, cause }, this.opts.log);
    return v;
  }

  /** May this peer operator (mutual TLS) deliver to us? */
  async mayPeerConnect(peer: PeerPrincipal, ctx?: DecisionContext): Promise<Verdict> {
    let v: Verdict;
    let cause: string | undefined;
    try {
      v = decidePeer(peer, await this.facts.trustSpaceEntry(normaliseDomain(peer.domain)), !!this.opts.requirePeerDn);
    } catch (e) {
      cause = (e as Error).message;
      v = refuse('DIRECTORY_UNAVAILABLE');
    }
    if (!v.ok) await journalRefusal(this.journal, v, { principal: peer, action: 'peer-connect', subject: normaliseDomain(peer.domain), ctx, cause }, this.opts.log);
    return v;
  }

  /**
   * May this peer operator deliver a message whose header From is in `domain`? (MX, end of
   * DATA.) certNames: the DNS names its certificate carries.
   */
  async mayPeerSendFrom(peer: PeerPrincipal, certNames: readonly string[], domain: string, ctx?: DecisionContext): Promise<Verdict> {
    const d = normaliseDomain(domain);
    let v: Verdict;
    let cause: string | undefined;
    try {
      v = decidePeerFrom(peer, certNames, d, this.opts.localDomains.some((l) => normaliseDomain(l) === d) ? null : await this.facts.trustSpaceEntry(d), this.opts.localDomains);
    } catch (e) {
      cause = (e as Error).message;
      v = refuse('DIRECTORY_UNAVAILABLE');
    }
    if (!v.ok) await journalRefusal(this.journal, v, { principal: peer, action: 'peer-from', subject: d, ctx, cause }, this.opts.log);
    return v;
  }

  private async onMailbox(p: Principal, action: PolicyAction, address: string, ctx: DecisionContext | undefined, decide: (bal: MailboxFacts | null) => Verdict): Promise<Verdict> {
    const subject = normaliseAddress(address);
    let v: Verdict;
    let cause: string | undefined;
    try {
      v = decide(await this.facts.mailbox(subject));
    } catch (e) {
      cause = (e as Error).message;
      v = refuse('DIRECTORY_UNAVAILABLE');
    }
    if (!v.ok) await journalRefusal(this.journal, v, { principal: p, action, subject, ctx, cause }, this.opts.log);
    return v;
  }
}
