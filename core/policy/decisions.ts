// The decisions themselves: pure functions from facts to a verdict, no I/O, so the whole
// access matrix is tested without a database and every front gets the same answer.
import { domainToASCII } from 'node:url';
import type { MailboxFacts, TrustSpaceEntry } from './facts.js';
import { principalLabel, type AdminPrincipal, type AdminRole, type PeerPrincipal, type Principal } from './principal.js';
import { ALLOW, refuse, type Verdict } from './verdict.js';

export const normaliseAddress = (a: string) => a.trim().toLowerCase();
export const normaliseDomain = (d: string) => d.trim().toLowerCase().replace(/\.$/, '');
/** SHA-256 fingerprints arrive as "AB:CD:…" (openssl, Node) or plain hex: compare one form. */
export const normaliseFingerprint = (f: string) => f.replace(/[:\s]/g, '').toLowerCase();

/**
 * Why this principal may not use this mailbox, or null when it may. The one rule behind
 * both "open" and "send as": PER/CAB → its holder; ORG → its members; APP → its registered,
 * unrevoked, unexpired application certificate; a closed mailbox → nobody.
 */
function whyNot(p: Principal, bal: MailboxFacts, now: Date): string | null {
  switch (bal.type) {
    case 'PER':
    case 'CAB':
      if (p.kind !== 'person') return `it is a personal mailbox, opened only by its holder`;
      if (!p.idnps || p.idnps !== bal.ownerId) return `it is the personal mailbox of another professional`;
      return null;
    case 'ORG':
      if (p.kind !== 'person') return `it is an organisational mailbox, opened only by its members`;
      if (!bal.memberIds.includes(p.id)) return `this account is not a member of the organisational mailbox`;
      return null;
    case 'APP': {
      if (p.kind !== 'application') return `it is a technical mailbox, opened only by its application's registered certificate`;
      const fp = normaliseFingerprint(p.fingerprint);
      const reg = bal.applications.find((a) => normaliseFingerprint(a.fingerprint) === fp);
      if (!reg) return `this certificate is not registered for the mailbox`;
      if (reg.revokedAt && reg.revokedAt <= now) return `this certificate's registration was revoked on ${reg.revokedAt.toISOString()}`;
      if (reg.notAfter <= now) return `this certificate expired on ${reg.notAfter.toISOString()}`;
      return null;
    }
    default:
      // A type this code does not know: no explicit allow, so no access.
      return `its type is not one this operator grants access to`;
  }
}

/** May this principal open (read) this mailbox? bal null = no such mailbox. */
export function decideOpenBal(p: Principal, address: string, bal: MailboxFacts | null, now: Date): Verdict {
  if (!bal) return refuse('BAL_UNKNOWN', { address });
  if (bal.status !== 'active') return refuse('BAL_CLOSED', { address: bal.address });
  const why = whyNot(p, bal, now);
  return why === null ? ALLOW : refuse('BAL_NOT_MEMBER', { principal: principalLabel(p), address: bal.address, why });
}

/** May this principal send as this address (envelope sender and From)? Same rule as opening it. */
export function decideSendAs(p: Principal, address: string, bal: MailboxFacts | null, now: Date): Verdict {
  const principal = principalLabel(p);
  if (!bal) return refuse('SEND_AS_FORBIDDEN', { principal, address, why: 'it is not a mailbox of this operator' });
  if (bal.status !== 'active') return refuse('SEND_AS_FORBIDDEN', { principal, address: bal.address, why: 'the mailbox is closed' });
  const why = whyNot(p, bal, now);
  return why === null ? ALLOW : refuse('SEND_AS_FORBIDDEN', { principal, address: bal.address, why });
}

/** What an admin wants to act on. `global` covers platform-wide acts (imports, accounts). */
// `account`: the admin's own account (the events about it are its own to read).
export type AdminTarget =
  | { kind: 'global'; what: string }
  | { kind: 'mailbox'; address: string; domain: string; structureId?: string | null }
  | { kind: 'domain'; domain: string }
  | { kind: 'account'; login: string }
  // `admin`: an admin account acted on (listed, created, its scope changed, disabled, reset),
  // described by the role and scope it has or would have.
  | { kind: 'admin'; login: string; role: AdminRole; domains: readonly string[]; structures: readonly string[] };

export const targetLabel = (t: AdminTarget) =>
  t.kind === 'global' ? t.what : t.kind === 'mailbox' ? t.address : t.kind === 'account' || t.kind === 'admin' ? `admin account ${t.login}` : `domain ${t.domain}`;

/**
 * What an admin's reads are narrowed to: `everywhere` for a national account; for a
 * regional one, the mailboxes of its domains (A-label, lower case) or of its structures
 * (national ids, upper case). The list queries apply it in SQL (annuaire/bal), the
 * decisions below through inAdminScope: one definition of "in scope" for both.
 */
export type AdminScope = { kind: 'everywhere' } | { kind: 'within'; domains: readonly string[]; structures: readonly string[] };

export const EVERYWHERE: AdminScope = Object.freeze({ kind: 'everywhere' });

/** The scope of an admin; an account of unknown role gets an empty one (fail closed). */
export function adminScope(admin: AdminPrincipal): AdminScope {
  if (admin.role === 'national') return EVERYWHERE;
  if (admin.role !== 'regional') return { kind: 'within', domains: [], structures: [] };
  return { kind: 'within', domains: admin.domains.map(normaliseDomain), structures: admin.structures.map((s) => s.trim().toUpperCase()) };
}

/** Is a mailbox of this domain (and structure) inside the scope? */
export function inAdminScope(scope: AdminScope, box: { domain: string; structureId?: string | null }): boolean {
  if (scope.kind === 'everywhere') return true;
  return scope.domains.includes(normaliseDomain(box.domain)) || (!!box.structureId && scope.structures.includes(box.structureId.trim().toUpperCase()));
}

/**
 * Is an admin account (its role and scope) inside this scope? A regional scope holds only
 * regional accounts whose every domain and structure it holds too: what a regional admin
 * sees and manages of the accounts, so it can neither make a national account nor widen one.
 */
export function adminAccountInScope(scope: AdminScope, a: { role: AdminRole; domains: readonly string[]; structures: readonly string[] }): boolean {
  if (scope.kind === 'everywhere') return true;
  if (a.role !== 'regional') return false;
  return a.domains.every((d) => scope.domains.includes(normaliseDomain(d))) && a.structures.every((s) => scope.structures.includes(s.trim().toUpperCase()));
}

/**
 * May this admin act on every one of these targets? `national` acts anywhere; `regional`
 * on mailboxes of its listed domains, or owned by its listed structures. An empty target
 * list (e.g. a person attached to no mailbox) is national-only: nothing proves it is in scope.
 */
export function decideAdmin(admin: AdminPrincipal, targets: readonly AdminTarget[]): Verdict {
  if (admin.mustEnrolSecondFactor) return refuse('ADMIN_TOTP_ENROLMENT_REQUIRED', { admin: admin.login });
  if (admin.role === 'national') return ALLOW;
  const label = principalLabel(admin);
  if (admin.role !== 'regional') return refuse('ADMIN_OUT_OF_SCOPE', { admin: admin.login, target: targets.map(targetLabel).join(', ') || 'this', why: 'the account has no known role' });
  if (!targets.length) return refuse('ADMIN_OUT_OF_SCOPE', { admin: admin.login, target: 'it', why: 'nothing ties it to a domain or structure of the account; a national account must do it' });
  const scope = adminScope(admin);
  for (const t of targets) {
    if (t.kind === 'global') return refuse('ADMIN_OUT_OF_SCOPE', { admin: admin.login, target: t.what, why: 'it is a national operation and the account is regional' });
    if (t.kind === 'account') {
      if (t.login === admin.login) continue;
      return refuse('ADMIN_OUT_OF_SCOPE', { admin: admin.login, target: targetLabel(t), why: 'another admin account is a national matter' });
    }
    if (t.kind === 'admin') {
      if (t.role !== 'regional') return refuse('ADMIN_OUT_OF_SCOPE', { admin: admin.login, target: targetLabel(t), why: 'a national account is a national matter' });
      if (!adminAccountInScope(scope, t)) return refuse('ADMIN_OUT_OF_SCOPE', { admin: admin.login, target: targetLabel(t), why: `its scope would reach beyond ${label}'s (${describeScope(admin)})` });
      continue;
    }
    if (!inAdminScope(scope, { domain: t.domain, structureId: t.kind === 'mailbox' ? t.structureId : null })) {
      return refuse('ADMIN_OUT_OF_SCOPE', { admin: admin.login, target: targetLabel(t), why: `${label}'s scope covers ${describeScope(admin)}` });
    }
  }
  return ALLOW;
}

const describeScope = (a: AdminPrincipal) =>
  [a.domains.length ? `domains ${a.domains.join(', ')}` : '', a.structures.length ? `structures ${a.structures.join(', ')}` : ''].filter(Boolean).join(' and ') || 'nothing';

/**
 * Is this domain inside the espace de confiance? The operator's own domains are; any other
 * must be on the liste blanche. role prefixes the sentence: "sender ", "recipient ", "peer ".
 */
export function decideTrustSpace(domain: string, entry: TrustSpaceEntry | null, localDomains: readonly string[], role = ''): Verdict {
  const d = normaliseDomain(domain);
  if (!d) return refuse('DOMAIN_NOT_WHITELISTED', { role, domain: '(empty)' });
  if (localDomains.some((l) => normaliseDomain(l) === d)) return ALLOW;
  return entry ? ALLOW : refuse('DOMAIN_NOT_WHITELISTED', { role, domain: d });
}

/**
 * May this peer operator deliver to us? Its domain must be on the liste blanche; with
 * requireDn, its certificate subject must also be the DN the list records for it (when the
 * list records one).
 */
export function decidePeer(peer: PeerPrincipal, entry: TrustSpaceEntry | null, requireDn: boolean): Verdict {
  if (!entry) return refuse('DOMAIN_NOT_WHITELISTED', { role: 'peer ', domain: normaliseDomain(peer.domain) });
  if (requireDn && entry.operatorDn && !dnEquals(entry.operatorDn, peer.subject)) {
    return refuse('PEER_CERT_MISMATCH', { domain: normaliseDomain(peer.domain), subject: peer.subject.replace(/\n/g, ', ') });
  }
  return ALLOW;
}

/**
 * May this peer operator deliver a message whose header From is in `domain`? The domain must
 * be in the espace de confiance and be one of the peer's: an operator may serve several
 * domains of the liste blanche, so "its" domains are those its certificate names and those
 * whose liste blanche entry records its certificate's subject (DNCertificatOperateur, the
 * national list's own link between domains and operators). One of our own domains is never a
 * peer's: a message claiming to come from one of our boxes arrives through submission.
 */
export function decidePeerFrom(peer: PeerPrincipal, certNames: readonly string[], domain: string, entry: TrustSpaceEntry | null, localDomains: readonly string[]): Verdict {
  const d = normaliseDomain(domain);
  const ascii = (n: string) => domainToASCII(normaliseDomain(n)) || normaliseDomain(n);
  const notPeers = refuse('FROM_NOT_PEER_DOMAIN', { domain: d, peer: normaliseDomain(peer.domain) });
  if (localDomains.some((l) => normaliseDomain(l) === d)) return notPeers;
  if (!entry) return refuse('DOMAIN_NOT_WHITELISTED', { role: 'From header ', domain: d || '(empty)' });
  if (certNames.some((n) => ascii(n) === ascii(d))) return ALLOW;
  if (entry.operatorDn && dnEquals(entry.operatorDn, peer.subject)) return ALLOW;
  return notPeers;
}

/**
 * Compares two distinguished names written in different usual forms: RFC 4514
 * ("CN=x,O=y,C=FR"), openssl's one-per-line (Node's X509Certificate.subject) or in reverse
 * order. Equal when they hold the same attribute/value pairs, types and values compared
 * case-insensitively (X.520 caseIgnoreMatch).
 */
export function dnEquals(a: string, b: string): boolean {
  const x = dnPairs(a);
  const y = dnPairs(b);
  return x.length > 0 && x.length === y.length && x.every((v, i) => v === y[i]);
}

function dnPairs(dn: string): string[] {
  // One attribute per line (openssl/Node): commas inside values are literal there.
  const multiline = dn.includes('\n');
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < dn.length; i++) {
    const c = dn[i];
    if (multiline) {
      if (c === '\n') {
        parts.push(cur);
        cur = '';
      } else cur += c;
    } else if (c === '\\' && i + 1 < dn.length) {
      cur += dn[++i];
    } else if (c === ',' || c === '+') {
      parts.push(cur);
      cur = '';
    } else cur += c;
  }
  parts.push(cur);
  return parts
    .map((p) => p.trim())
    .filter(Boolean)
    .map((p) => {
      const eq = p.indexOf('=');
      return eq < 0 ? p.toLowerCase() : `${p.slice(0, eq).trim().toUpperCase()}=${p.slice(eq + 1).trim().replace(/\s+/g, ' ').toLowerCase()}`;
    })
    .sort();
}

/**
 * May this principal set the DMP rule of this mailbox ("every clinical document arriving here
 * goes to the patient's DMP, with this visibility")? Only an organisational box has one, and
 * only a member who is a health professional (a national id, RPPS or ADELI) sets it: putting
 * documents in a patient's record is a professional's act, which a member without a national
 * id (a secretary) may not decide for the whole box. Reading the rule is open to every member.
 */
export function decideDmpRule(p: Principal, address: string, bal: MailboxFacts | null, now: Date): Verdict {
  const principal = principalLabel(p);
  if (!bal) return refuse('BAL_UNKNOWN', { address });
  if (bal.status !== 'active') return refuse('BAL_CLOSED', { address: bal.address });
  if (bal.type !== 'ORG') return refuse('DMP_RULE_FORBIDDEN', { principal, address: bal.address, why: 'only an organisational mailbox has a DMP rule' });
  const why = whyNot(p, bal, now);
  if (why !== null) return refuse('DMP_RULE_FORBIDDEN', { principal, address: bal.address, why });
  if (p.kind !== 'person' || !p.idnps) return refuse('DMP_RULE_FORBIDDEN', { principal, address: bal.address, why: 'only a health professional (RPPS or ADELI id) among its members may set it' });
  return ALLOW;
}

/** A client of the directory's FHIR API, as its TLS handshake showed it. */
export interface DirectoryClient {
  /** The certificate it presented: verified = chains to the trust bundle, in its validity, not revoked (TLS and the CRLs said so). */
  certificate: { fingerprint: string; subject: string; verified: boolean; error?: string } | null;
}

/**
 * May this client read the directory over its FHIR API? Its clients are software of the
 * espace de confiance — a DPI, a lab system, another operator's server — which authenticate
 * with an IGC-Santé certificate (CONF.27), as they do on SMTP; a personal (CPS) certificate
 * counts too. What the API serves is public inside that space: no further scope.
 */
export function decideDirectoryRead(c: DirectoryClient): Verdict {
  if (!c.certificate) return refuse('DIRECTORY_READ_FORBIDDEN', { why: 'no client certificate was presented during the TLS handshake' });
  if (!c.certificate.verified) return refuse('DIRECTORY_READ_FORBIDDEN', { why: `the certificate presented (${c.certificate.subject || 'no subject'}) is not accepted in the trust space${c.certificate.error ? ` (${c.certificate.error})` : ''}` });
  return ALLOW;
}
