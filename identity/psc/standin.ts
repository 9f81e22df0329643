// A stand-in Pro Santé Connect: an OpenID provider (oidc-provider, the certified library) on
// loopback over HTTPS with the platform's certificate, so that the platform's logins by PSC —
// OIDC code + PKCE in the webmail and console, access tokens on IMAP and submission — run
// end to end where the national service cannot be reached. What it mimics of PSC (Keycloak):
// the discovery document and its endpoints, scopes `openid scope_all`, acr `eidas1`, the
// national id ("8" + RPPS) in SubjectNameID (id token, userinfo) and preferred_username (the
// access token, a JWT for the audience asked), introspection. Its login page lists the
// professionals it is given and asks for the means (e-CPS or CPS card), recorded as amr;
// "Refuser" answers access_denied. The real PSC is one setting away (psc.issuer).
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { exportJWK, generateKeyPair, jwtVerify, SignJWT, type JWK } from 'jose';
import type Provider from 'oidc-provider';
import { nodeTlsPolicy } from '../../certs/tls-policy.js';
import type { Logger } from '../../core/logger.js';

export interface StandinProfessional {
  idnps: string;
  nom: string | null;
  prenom: string | null;
}

export interface StandinOptions {
  host: string;
  port: number;
  tls: { cert: string; key: string };
  clientId: string;
  clientSecret: string;
  /** The aud of the access tokens it issues (psc.audience). */
  audience: string;
  /** The professionals its login page offers (any national id can also be typed in). */
  professionals(): Promise<StandinProfessional[]>;
  log: Logger;
}

export interface StandinPsc {
  issuer: string;
  /** Lets a client's redirect URIs in (the fronts' callbacks, known once they listen). Until then every request gets 503. */
  register(redirectUris: string[]): void;
  /**
   * A token signed with the stand-in's own key, with the given claims over sane defaults
   * (tests: expired, wrong audience or issuer, no national id). The same key as real ones.
   */
  mint(claims: Record<string, unknown>, o?: { expiresIn?: number }): Promise<string>;
  stop(): Promise<void>;
}

export const STANDIN_ACR = 'eidas1';
/** The means the login page offers, and the amr each puts in the tokens. */
export const STANDIN_MEANS = { 'e-cps': { label: 'e-CPS (application mobile)', amr: ['e-cps'] }, cps: { label: 'Carte CPS', amr: ['cps'] } } as const;

/** The one resource server the stand-in issues access tokens for: the operator's mail fronts. */
const RESOURCE = 'urn:mss:operateur:mail';
const INTROSPECT = '/protocol/openid-connect/token/introspect';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function readForm(req: IncomingMessage, limit = 16 * 1024): Promise<URLSearchParams> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > limit) return void req.destroy(new Error('form too large'));
      chunks.push(c);
    });
    req.on('end', () => resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', reject);
  });
}

async function makeKeys() {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true, modulusLength: 2048 });
  const jwk: JWK = { ...(await exportJWK(privateKey)), kid: randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig' };
  return { privateKey, publicKey, jwk };
}

export async function startStandinPsc(o: StandinOptions): Promise<StandinPsc> {
  // The signing key too is made on first use: an RSA-2048 key costs a busy machine seconds at every start.
  let keys: ReturnType<typeof makeKeys> | null = null;
  const signing = () => (keys ??= makeKeys());
  type Handler = (req: IncomingMessage, res: ServerResponse) => void;
  // The provider (oidc-provider, Koa and their dependencies: tens of MiB) is loaded with the
  // first request, not with the platform: an operator whose people never use PSC pays nothing.
  let redirectUris: string[] | null = null;
  let handler: Promise<Handler> | null = null;
  const server: Server = createServer({ cert: o.tls.cert, key: o.tls.key, ...nodeTlsPolicy() }, (req, res) => {
    if (!redirectUris) return void res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' }).end('stand-in PSC starting');
    (handler ??= build(redirectUris)).then(
      (h) => h(req, res),
      (err: unknown) => {
        handler = null;
        log.error({ err }, 'stand-in PSC could not start');
        if (!res.headersSent) res.writeHead(503).end();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: o.host, port: o.port }, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  // Keycloak's path, as PSC's issuer has it; oidc-provider is mounted under it.
  const base = '/auth/realms/esante-wallet';
  const issuer = `https://${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}${base}`;
  const log = o.log.child({ mod: 'psc-standin' });

  async function build(redirectUris: string[]): Promise<Handler> {
    const { default: OidcProvider } = await import('oidc-provider');
    const { jwk } = await signing();
    const provider: Provider = new OidcProvider(issuer, {
      // A code client needs one redirect URI at least: a platform without web fronts registers a name no browser reaches.
      clients: [{ client_id: o.clientId, client_secret: o.clientSecret, redirect_uris: redirectUris.length ? redirectUris : ['https://localhost/no-web-front'], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic' }],
      jwks: { keys: [jwk] },
      cookies: { keys: [randomBytes(32).toString('base64url')] },
      pkce: { methods: ['S256'], required: () => true },
      scopes: ['openid', 'scope_all'],
      claims: { openid: ['sub', 'amr'], scope_all: ['SubjectNameID', 'preferred_username', 'given_name', 'family_name'] },
      // Keycloak's paths, as PSC publishes them.
      routes: {
        authorization: '/protocol/openid-connect/auth',
        token: '/protocol/openid-connect/token',
        introspection: INTROSPECT,
        userinfo: '/protocol/openid-connect/userinfo',
        jwks: '/protocol/openid-connect/certs',
        end_session: '/protocol/openid-connect/logout',
      },
      acrValues: [STANDIN_ACR],
      // The id token carries the claims too (PSC's does), not only userinfo.
      conformIdTokenClaims: false,
      features: {
        devInteractions: { enabled: false },
        introspection: { enabled: true },
        resourceIndicators: {
          enabled: true,
          // A resource indicator must be an absolute URI; the tokens' aud is psc.audience all the same.
          defaultResource: () => RESOURCE,
          useGrantedResource: () => true,
          getResourceServerInfo: () => ({ scope: 'openid scope_all', audience: o.audience, accessTokenFormat: 'jwt', accessTokenTTL: 600, jwt: { sign: { alg: 'RS256' } } }),
        },
      },
      findAccount: async (_ctx: unknown, id: string) => {
        const p = (await o.professionals()).find((x) => x.idnps === id);
        return { accountId: id, claims: () => ({ sub: id, SubjectNameID: id, preferred_username: id, ...(p?.nom ? { family_name: p.nom } : {}), ...(p?.prenom ? { given_name: p.prenom } : {}) }) };
      },
      // PSC's access token names the professional and the level; oidc-provider's JWT access
      // token has neither by itself.
      extraTokenClaims: (ctx: { oidc: { entities: { AuthorizationCode?: { acr?: string; amr?: string[] } } } }, token: { kind: string; accountId?: string }) =>
        token.kind === 'AccessToken' && token.accountId
          ? { preferred_username: token.accountId, SubjectNameID: token.accountId, acr: ctx.oidc.entities.AuthorizationCode?.acr, amr: ctx.oidc.entities.AuthorizationCode?.amr }
          : undefined,
      // No consent screen (PSC shows none to a registered service): the grant is made here.
      loadExistingGrant: async (ctx: { oidc: { client: { clientId: string }; session: { accountId: string } } }) => {
        const grant = new provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
        grant.addOIDCScope('openid scope_all');
        grant.addResourceScope(RESOURCE, 'openid scope_all');
        await grant.save();
        return grant;
      },
      interactions: { url: (_ctx: unknown, i: { uid: string }) => `${base}/interaction/${i.uid}` },
      renderError: (ctx: { type: string; body: string }, out: Record<string, string>) => {
        ctx.type = 'text/html; charset=utf-8';
        ctx.body = `<!doctype html><html lang="fr"><meta charset="utf-8"><title>Erreur</title><h1>Pro Santé Connect (substitut local)</h1><p>${esc(out.error ?? '')} — ${esc(out.error_description ?? '')}</p></html>`;
      },
    });
    provider.on('server_error', (_ctx, err) => log.error({ err }, 'stand-in PSC error'));
    const oidcHandler = provider.callback();
    return (req, res) => {
      const url = req.url ?? '/';
      if (!url.startsWith(`${base}/`)) return void res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found');
      // Mounted under the issuer's path: the provider sees the rest (its own URLs carry the issuer).
      (req as IncomingMessage & { originalUrl?: string }).originalUrl = url;
      req.url = url.slice(base.length);
      if (req.method === 'POST' && req.url === INTROSPECT) return void introspect(req, res).catch(() => res.writeHead(400).end());
      const m = /^\/interaction\/([\w-]+)(\/login)?$/.exec(req.url.split('?')[0]);
      if (!m) return oidcHandler(req, res);
      void interaction(provider, req, res, Boolean(m[2])).catch((err: unknown) => {
        log.warn({ err: (err as Error).message }, 'stand-in PSC interaction failed');
        if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' }).end('interaction inconnue ou expirée');
      });
    };
  }

  /**
   * RFC 7662, as Keycloak answers it for a JWT access token: active when its signature, issuer
   * and expiry hold (oidc-provider keeps no copy of the JWT access tokens it issues, so its own
   * introspection would call every one of them inactive). The caller authenticates as the client.
   */
  async function introspect(req: IncomingMessage, res: ServerResponse) {
    const basic = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const [id, secret] = Buffer.from(basic ?? '', 'base64').toString('utf8').split(':').map((x) => decodeURIComponent(x));
    if (id !== o.clientId || secret !== o.clientSecret) return void res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"invalid_client"}');
    const token = (await readForm(req)).get('token') ?? '';
    let answer: Record<string, unknown> = { active: false };
    try {
      const { payload } = await jwtVerify(token, (await signing()).publicKey, { issuer, algorithms: ['RS256'] });
      answer = { ...payload, active: true, token_type: 'Bearer' };
    } catch {
      /* inactive */
    }
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(answer));
  }

  async function interaction(provider: Provider, req: IncomingMessage, res: ServerResponse, submitted: boolean) {
    const details = await provider.interactionDetails(req, res);
    if (!submitted) {
      const people = await o.professionals();
      const options = people.map((p, i) => `<label><input type="radio" name="idnps" value="${esc(p.idnps)}"${i === 0 ? ' checked' : ''}> ${esc([p.prenom, p.nom].filter(Boolean).join(' ') || p.idnps)} (${esc(p.idnps)})</label><br>`).join('');
      const means = Object.entries(STANDIN_MEANS).map(([k, v], i) => `<label><input type="radio" name="means" value="${k}"${i === 0 ? ' checked' : ''}> ${esc(v.label)}</label>`).join(' ');
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(`<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>Pro Santé Connect (substitut local)</title></head><body>
<main><h1>Pro Santé Connect — substitut local</h1><p>Ce fournisseur d'identité remplace Pro Santé Connect pour le développement et les tests.</p>
<form method="post" action="${base}/interaction/${esc(details.uid)}/login"><fieldset><legend>Professionnel</legend>${options}
<label>ou identifiant national (8 + RPPS) <input name="other" inputmode="numeric" autocomplete="off"></label></fieldset>
<fieldset><legend>Moyen d'authentification</legend>${means}</fieldset>
<button name="action" value="login">Se connecter</button> <button name="action" value="deny">Refuser</button></form></main></body></html>`);
      return;
    }
    const form = await readForm(req);
    if (form.get('action') === 'deny') {
      await provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'le professionnel a refusé la connexion' }, { mergeWithLastSubmission: false });
      return;
    }
    const idnps = (form.get('other') || form.get('idnps') || '').trim();
    const means = STANDIN_MEANS[(form.get('means') ?? 'e-cps') as keyof typeof STANDIN_MEANS] ?? STANDIN_MEANS['e-cps'];
    if (!/^8\d{11}$/.test(idnps)) {
      res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' }).end('identifiant national attendu : 8 suivi des 11 chiffres du RPPS');
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: idnps, acr: STANDIN_ACR, amr: [...means.amr] } }, { mergeWithLastSubmission: false });
  }

  return {
    issuer,
    register(uris) {
      redirectUris = uris;
      handler = null;
    },
    async mint(claims, m = {}) {
      const now = Math.floor(Date.now() / 1000);
      const body = { iss: issuer, aud: o.audience, sub: 'standin', iat: now, exp: now + (m.expiresIn ?? 600), client_id: o.clientId, scope: 'openid scope_all', acr: STANDIN_ACR, ...claims };
      const { jwk, privateKey } = await signing();
      return new SignJWT(body).setProtectedHeader({ alg: 'RS256', kid: jwk.kid, typ: 'at+jwt' }).sign(privateKey);
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
