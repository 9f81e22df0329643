// What the webmail API is given by the composition root (bin/platform.ts): the protocol
// folders never import each other, so the annuaire's credential and session functions, the
// fronts' addresses and the DMP hand-off arrive here as functions and endpoints.
import type { TlsMaterial } from '../certs/tls.js';
import type { Journal } from '../core/journal/index.js';
import type { Logger } from '../core/logger.js';
import type { LoginThrottle, PersonPrincipal } from '../core/policy/index.js';
import type { PscLogin } from '../identity/psc/login.js';
import type { LdapTarget } from './annuaire.js';
import type { ImapTarget } from './imap-pool.js';
import type { DmpRuleAnswer } from './json-types.js';
import type { SubmissionTarget } from './submit.js';

export type { DmpRuleAnswer };

export interface WebmailDeps {
  log: Logger;
  journal: Pick<Journal, 'append'>;
  /** The platform's server certificate: the API's own HTTPS listener. */
  tls: TlsMaterial;
  /** password[+TOTP] → the person, or why not (annuaire/bal checkCredentials). */
  checkPassword(user: string, secret: string): Promise<{ ok: true; principal: PersonPrincipal } | { ok: false; failure: string }>;
  /** core/policy's login throttle, the same for every front (the API checks the password itself at login). */
  throttle: Pick<LoginThrottle, 'guard'>;
  /** Session tokens (annuaire/bal sessions): issued at login, the IMAP and SMTP secret afterwards. */
  openSession(principal: PersonPrincipal): Promise<{ token: string; expiresAt: Date }>;
  /** The person behind a live token, or null; each use extends its life. */
  verifySession(token: string): Promise<PersonPrincipal | null>;
  closeSession(token: string): Promise<void>;
  /** Pro Santé Connect (identity/psc through the composition root): the browser's login by OIDC code + PKCE; absent: not offered. */
  psc?: {
    startLogin(redirectUri: string): Promise<{ url: string; pending: string }>;
    finishLogin(query: URLSearchParams, pending: string | null): Promise<PscLogin>;
  };
  /** The boxes the person may open (annuaire/bal balsFor, through core/policy). */
  balsFor(principal: PersonPrincipal): Promise<Array<{ address: string; type: 'PER' | 'ORG' | 'APP' | 'CAB'; description?: string | null }>>;
  /** The platform's IMAP proxy (IMAPS). */
  imap: ImapTarget;
  /** The platform's submission server, implicit TLS (465-like). */
  submission: SubmissionTarget;
  /** The public LDAP tree (anonymous read, StartTLS) for recipient search; absent: 503. */
  ldap?: LdapTarget;
  /** DMP hand-off of one message (dmp/); absent: 503. */
  dmpHandoff?(req: { principal: PersonPrincipal; bal: string; folder: string; uid: number; raw: Buffer; masking?: string }): Promise<unknown>;
  /** XDS metadata of a message's documents (dmp/), shown with the message; absent: not shown. */
  documentsOf?(raw: Buffer): Promise<unknown>;
  /** The DMP hand-off attempts recorded for a message of a box, newest first (dmp/ dmpStatus). */
  dmpOutcomes?(bal: string, messageId: string): Promise<unknown[]>;
  /** CDA documents packed as an IHE_XDM.zip with the X-MSS headers (dmp/), for sending. */
  packageXdm?(req: XdmPackageRequest): Promise<XdmPackage>;
  /** The per-box DMP rule, read and set as the person (core/policy decides, dmp/ keeps it, journalled). */
  dmpRule?: {
    get(principal: PersonPrincipal, bal: string): Promise<DmpRuleAnswer>;
    set(principal: PersonPrincipal, bal: string, rule: { masking: string; enabled: boolean }): Promise<DmpRuleAnswer>;
    remove(principal: PersonPrincipal, bal: string): Promise<DmpRuleAnswer>;
  };
}

export interface XdmPackageRequest {
  from: string;
  to: string[];
  cdas: Array<{ filename: string; content: Buffer }>;
}
export interface XdmPackage {
  attachment: { filename: string; contentType: string; content: Buffer };
  /** X-MSS-INS, X-MSS-CODECDA. */
  headers: Record<string, string>;
  /** The XDM subject (XDM/1.0/DDM+…), for a message sent without one. */
  subject: string;
}

/** What the routes use: the login's parts (password check, throttle, token issue) stay with the login (login.ts). */
export type ApiDeps = Omit<WebmailDeps, 'checkPassword' | 'throttle' | 'openSession' | 'psc'>;
