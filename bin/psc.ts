// Pro Santé Connect for the platform (identity/psc): the configured provider, or the local
// stand-in started here when psc.issuer is empty; the token check every front calls (IMAP,
// submission) and the browser login (webmail, console), both mapping the national id to the
// annuaire's person. Absent when neither an issuer nor the stand-in is configured.
import type { TlsMaterial } from '../certs/tls.js';
import type { Config } from '../core/config/index.js';
import type { Db } from '../core/db/index.js';
import type { Logger } from '../core/logger.js';
import { principalForNationalId, professionals } from '../annuaire/bal/index.js';
import { oauthErrorChallenge } from '../identity/sasl-oauth.js';
import { httpsFetch, personOf, PscClient, pscSettings, randomSecret, startStandinPsc, type PscLogin, type StandinPsc } from '../identity/psc/index.js';

export interface PlatformPsc {
  client: PscClient;
  issuer: string;
  standin?: StandinPsc;
  /** An access token (SASL OAUTHBEARER / XOAUTH2) → the person; throws PSC_UNAVAILABLE when the provider cannot be asked. */
  checkToken(token: string): Promise<PscLogin>;
  /** PSC's answer at a browser callback (query + the browser's cookie) → the person. */
  finishLogin(query: URLSearchParams, pending: string | null): Promise<PscLogin>;
  /** The browser's way to PSC: the authorisation URL and the cookie value to keep until it answers. */
  startLogin(redirectUri: string): Promise<{ url: string; pending: string }>;
  /** RFC 7628's error challenge (base64) a refused OAUTHBEARER / XOAUTH2 login gets: where the provider is, which scope. */
  challenge: string;
  /** The fronts' callback URLs, once they listen (the stand-in lets only registered ones in). */
  register(redirectUris: string[]): void;
  stop(): Promise<void>;
}

export async function startPsc(config: Config, tls: TlsMaterial, db: Db, log: Logger): Promise<PlatformPsc | undefined> {
  let issuer = config.psc.issuer;
  let standin: StandinPsc | undefined;
  let secret = config.psc.clientSecret;
  if (!issuer) {
    if (!config.psc.standin) return undefined;
    secret ||= randomSecret();
    standin = await startStandinPsc({
      host: config.psc.standinHost,
      port: config.psc.standinPort,
      tls: { cert: tls.certChainPem, key: tls.keyPem },
      clientId: config.psc.clientId,
      clientSecret: secret,
      audience: config.psc.audience || config.psc.clientId,
      professionals: () => professionals(db),
      log,
    });
    issuer = standin.issuer;
  }
  // The stand-in's certificate is the platform's own: trust its CA besides the public roots.
  const client = new PscClient(pscSettings(config, issuer, secret), httpsFetch(standin ? [tls.caPem] : []), log.child({ mod: 'psc' }));
  const personFor = (idnps: string, level: { acr?: string; amr?: string[] }) => principalForNationalId(db, idnps, level);
  return {
    client,
    issuer,
    standin,
    checkToken: async (token) => personOf(await client.verifyAccessToken(token), personFor),
    finishLogin: async (query, pending) => personOf(await client.finishLogin(query, pending), personFor),
    startLogin: (redirectUri) => client.startLogin(redirectUri),
    challenge: oauthErrorChallenge({ status: 'invalid_token', scope: config.psc.scopes.join(' '), openidConfiguration: `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration` }),
    register: (uris) => standin?.register(uris),
    stop: async () => standin?.stop(),
  };
}

/** A front's PSC callback at every name the browser may reach it by (the stand-in checks them exactly). */
export function callbackUris(base: string, path: string, hostname: string): string[] {
  const u = new URL(base);
  const port = u.port ? `:${u.port}` : '';
  return [...new Set([u.hostname, '127.0.0.1', 'localhost', hostname])].map((h) => `https://${h.includes(':') ? `[${h}]` : h}${port}${path}`);
}
