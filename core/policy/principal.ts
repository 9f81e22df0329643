// Who is asking. Each front authenticates in its own way (password, TOTP, client
// certificate, bearer token, mutual TLS) and hands the policy one of these shapes; the
// policy never sees a credential, only what the authentication established.

/** How a person proved who they are; kept for the journal (CONF.17: who, how). */
/** `token`: a webmail session token, itself issued after a password[+TOTP] or PSC login. */
/** `psc`: a Pro Santé Connect login (OIDC in the browser, or an access token over SASL OAUTHBEARER / XOAUTH2). */
export type PersonAuth = 'password' | 'password+totp' | 'certificate' | 'token' | 'psc';

export interface PersonPrincipal {
  kind: 'person';
  /** The local account's id (annuaire/bal persons). */
  id: string;
  login: string;
  /** National id ("8" + RPPS, "0" + ADELI) when the person has one: what a PER box is bound to. */
  idnps?: string | null;
  auth: PersonAuth;
  /** PSC logins: the authentication level the provider asserted (acr) and its means (amr: CPS card, e-CPS…), for the journal. */
  acr?: string;
  amr?: string[];
}

export interface ApplicationPrincipal {
  kind: 'application';
  /** SHA-256 of the presented certificate's DER, lower-case hex without colons. */
  fingerprint: string;
  subject?: string;
}

export type AdminRole = 'national' | 'regional';

export interface AdminPrincipal {
  kind: 'admin';
  login: string;
  role: AdminRole;
  /** Regional scope: mail domains and structure ids (national ids, "1"+FINESS / "3"+SIRET). */
  domains: readonly string[];
  structures: readonly string[];
  /** The account must enrol a second factor (admin.requireTotp) and has not: its session may do nothing else. */
  mustEnrolSecondFactor?: boolean;
}

export interface PeerPrincipal {
  kind: 'peer';
  /** The domain the peer claims (certificate CN / SAN, or MAIL FROM's domain). */
  domain: string;
  /** Certificate subject DN as presented, in any usual form (RFC 4514 or openssl lines). */
  subject: string;
}

export type Principal = PersonPrincipal | ApplicationPrincipal | AdminPrincipal | PeerPrincipal;

/** A short, stable name for journal events and refusal sentences. */
export function principalLabel(p: Principal): string {
  switch (p.kind) {
    case 'person':
      return `person ${p.login}`;
    case 'application':
      return `application certificate ${p.fingerprint.slice(0, 16)}…`;
    case 'admin':
      return `admin ${p.login}`;
    case 'peer':
      return `operator ${p.domain}`;
  }
}

/** The journal's `actor` field for a principal. */
export function principalActor(p: Principal): string {
  switch (p.kind) {
    case 'person':
      return `person:${p.login}`;
    case 'application':
      return `app:${p.fingerprint}`;
    case 'admin':
      return `admin:${p.login}`;
    case 'peer':
      return `peer:${p.domain}`;
  }
}
