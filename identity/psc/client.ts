// The platform as a Pro Santé Connect client: discovery, the access-token check every front
// calls (IMAP, submission: SASL OAUTHBEARER / XOAUTH2), and the browser login (authorization
// code + PKCE, state and nonce). Socket-free and database-free: it says which national id
// ("8" + RPPS) a token or a login stands for, with the authentication level; the composition
// root maps that id to the operator's person and core/policy decides on the box.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import * as oidc from 'openid-client';
import { createRemoteJWKSet, customFetch as joseFetch, jwtVerify, type JWTPayload } from 'jose';
import { MssError, type TokenFailure } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { Fetch } from './fetch.js';

export interface PscSettings {
  issuer: string;
  clientId: string;
  clientSecret?: string;
  /** aud an access token must carry (IMAP / submission). */
  audience: string;
  scopes: readonly string[];
  acrValues: string;
  idClaims: readonly string[];
  algorithms: readonly string[];
  introspection: boolean;
  clockToleranceMs: number;
}

/** Who a token or a login stands for, and how strongly they proved it. */
export interface PscIdentity {
  /** "8" + RPPS (or "0" + ADELI). */
  idnps: string;
  subject: string;
  acr?: string;
  amr?: string[];
}
export type PscCheck = ({ ok: true } & PscIdentity) | { ok: false; failure: TokenFailure };

/** The national id in the first of `claims` that carries one, in its national form. */
export function nationalIdOf(payload: Record<string, unknown>, claims: readonly string[]): string | null {
  for (const c of claims) {
    const v = payload[c];
    if (typeof v !== 'string') continue;
    const s = v.trim().toUpperCase();
    if (/^8\d{11}$/.test(s) || /^0[0-9A-Z]{9}$/.test(s)) return s;
    if (/^\d{11}$/.test(s)) return '8' + s;
  }
  return null;
}

const strings = (v: unknown): string[] | undefined => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : undefined);

/** jose's refusal of a token → the journalled failure; null: not a refusal (the provider could not be reached). */
function joseFailure(e: unknown): TokenFailure | null {
  const err = e as { code?: string; claim?: string };
  switch (err?.code) {
    case 'ERR_JWT_EXPIRED':
      return 'expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      return err.claim === 'iss' ? 'wrong-issuer' : err.claim === 'aud' ? 'wrong-audience' : err.claim === 'nbf' || err.claim === 'iat' ? 'not-yet-valid' : 'malformed';
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return 'bad-signature';
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return 'algorithm';
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return 'malformed';
    default:
      return null;
  }
}

/** What travels in the browser's (HttpOnly) cookie between the redirect to PSC and its answer. */
interface Pending {
  state: string;
  nonce: string;
  verifier: string;
  redirectUri: string;
}

export class PscClient {
  private discovered: Promise<oidc.Configuration> | null = null;
  private jwks: ReturnType<typeof createRemoteJWKSet> | null = null;

  constructor(
    readonly settings: PscSettings,
    private readonly fetch: Fetch,
    private readonly log: Logger,
  ) {}

  /** The provider's metadata (/.well-known/openid-configuration), fetched once; a failure is retried at the next use. */
  configuration(): Promise<oidc.Configuration> {
    const s = this.settings;
    this.discovered ??= oidc
      .discovery(new URL(s.issuer), s.clientId, s.clientSecret ? { client_secret: s.clientSecret } : undefined, s.clientSecret ? oidc.ClientSecretBasic(s.clientSecret) : oidc.None(), {
        [oidc.customFetch]: (url: string, o: RequestInit) => this.fetch(url, o),
      } as oidc.DiscoveryRequestOptions)
      .catch((e: unknown) => {
        this.discovered = null;
        this.log.warn({ err: (e as Error).message, issuer: s.issuer }, 'Pro Santé Connect discovery failed');
        throw new MssError('PSC_UNAVAILABLE', { reason: `discovery of ${s.issuer}: ${(e as Error).message}` });
      });
    return this.discovered;
  }

  /**
   * An access token presented on IMAP or submission: checked locally (signature against the
   * provider's JWKS, algorithm, issuer, audience, expiry, not-before) or by introspection.
   * Throws PSC_UNAVAILABLE when the provider cannot be asked (a temporary failure).
   */
  async verifyAccessToken(token: string): Promise<PscCheck> {
    const s = this.settings;
    const config = await this.configuration();
    let payload: Record<string, unknown>;
    if (s.introspection) {
      let r: oidc.IntrospectionResponse;
      try {
        r = await oidc.tokenIntrospection(config, token);
      } catch (e) {
        throw new MssError('PSC_UNAVAILABLE', { reason: `introspection: ${(e as Error).message}` });
      }
      if (!r.active) return { ok: false, failure: 'inactive' };
      if (r.iss !== undefined && r.iss !== config.serverMetadata().issuer) return { ok: false, failure: 'wrong-issuer' };
      const aud = r.aud === undefined ? undefined : Array.isArray(r.aud) ? r.aud : [r.aud];
      if (aud && !aud.includes(s.audience)) return { ok: false, failure: 'wrong-audience' };
      if (typeof r.exp === 'number' && r.exp * 1000 + s.clockToleranceMs < Date.now()) return { ok: false, failure: 'expired' };
      payload = r as Record<string, unknown>;
    } else {
      const uri = config.serverMetadata().jwks_uri;
      if (!uri) throw new MssError('PSC_UNAVAILABLE', { reason: 'the provider publishes no jwks_uri' });
      this.jwks ??= createRemoteJWKSet(new URL(uri), { [joseFetch]: (url: string, o: RequestInit) => this.fetch(url, o) });
      try {
        ({ payload } = (await jwtVerify(token, this.jwks, {
          issuer: config.serverMetadata().issuer,
          audience: s.audience,
          algorithms: [...s.algorithms],
          clockTolerance: Math.round(s.clockToleranceMs / 1000),
          requiredClaims: ['exp', 'sub'],
        })) as { payload: JWTPayload & Record<string, unknown> });
      } catch (e) {
        const failure = joseFailure(e);
        if (!failure) throw new MssError('PSC_UNAVAILABLE', { reason: `keys of ${uri}: ${(e as Error).message}` });
        return { ok: false, failure };
      }
    }
    const idnps = nationalIdOf(payload, s.idClaims);
    if (!idnps) return { ok: false, failure: 'no-national-id' };
    return { ok: true, idnps, subject: String(payload.sub ?? ''), acr: typeof payload.acr === 'string' ? payload.acr : undefined, amr: strings(payload.amr) };
  }

  /** The URL to send the browser to, and what to keep in its cookie until PSC answers. */
  async startLogin(redirectUri: string): Promise<{ url: string; pending: string }> {
    const config = await this.configuration();
    const p: Pending = { state: oidc.randomState(), nonce: oidc.randomNonce(), verifier: oidc.randomPKCECodeVerifier(), redirectUri };
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: this.settings.scopes.join(' '),
      response_type: 'code',
      code_challenge: await oidc.calculatePKCECodeChallenge(p.verifier),
      code_challenge_method: 'S256',
      state: p.state,
      nonce: p.nonce,
      ...(this.settings.acrValues ? { acr_values: this.settings.acrValues } : {}),
    });
    return { url: url.href, pending: Buffer.from(JSON.stringify(p)).toString('base64url') };
  }

  /**
   * PSC's answer at the callback (its query string) and the browser's cookie: the code
   * exchanged (PKCE), the ID token checked (signature, issuer, audience, nonce), userinfo read.
   */
  async finishLogin(query: URLSearchParams, pendingCookie: string | null): Promise<PscCheck> {
    let p: Pending;
    try {
      p = JSON.parse(Buffer.from(pendingCookie ?? '', 'base64url').toString('utf8')) as Pending;
      if (typeof p.state !== 'string' || typeof p.nonce !== 'string' || typeof p.verifier !== 'string' || typeof p.redirectUri !== 'string') throw new Error('incomplete');
    } catch {
      return { ok: false, failure: 'state' };
    }
    const state = query.get('state') ?? '';
    if (state.length !== p.state.length || !timingSafeEqual(Buffer.from(state), Buffer.from(p.state))) return { ok: false, failure: 'state' };
    if (query.get('error')) return { ok: false, failure: 'denied' };
    const config = await this.configuration();
    const current = new URL(p.redirectUri);
    current.search = query.toString();
    let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
    try {
      tokens = await oidc.authorizationCodeGrant(config, current, { pkceCodeVerifier: p.verifier, expectedState: p.state, expectedNonce: p.nonce, idTokenExpected: true });
    } catch (e) {
      const err = e as { code?: string; name?: string; message: string };
      this.log.warn({ code: err.code, err: err.message }, 'Pro Santé Connect code exchange refused');
      // A network failure is a temporary one; anything the library refuses is the answer's fault.
      if (err.name === 'TypeError' || /fetch|ECONN|socket|timeout/i.test(err.message)) throw new MssError('PSC_UNAVAILABLE', { reason: err.message });
      return { ok: false, failure: 'bad-id-token' };
    }
    const id = tokens.claims();
    if (!id) return { ok: false, failure: 'bad-id-token' };
    // The national id from the ID token, or else from userinfo (where PSC documents it).
    let idnps = nationalIdOf(id, this.settings.idClaims);
    if (!idnps && config.serverMetadata().userinfo_endpoint) {
      try {
        idnps = nationalIdOf((await oidc.fetchUserInfo(config, tokens.access_token, id.sub)) as Record<string, unknown>, this.settings.idClaims);
      } catch (e) {
        throw new MssError('PSC_UNAVAILABLE', { reason: `userinfo: ${(e as Error).message}` });
      }
    }
    if (!idnps) return { ok: false, failure: 'no-national-id' };
    return { ok: true, idnps, subject: id.sub, acr: typeof id.acr === 'string' ? id.acr : undefined, amr: strings(id.amr) };
  }
}

/** A random value for the stand-in's client secret when none is configured. */
export const randomSecret = () => randomBytes(32).toString('base64url');
