// Pro Santé Connect tokens checked by the platform's client (identity/psc) against the
// stand-in provider over HTTPS: a real access token from a code flow, and tokens signed with
// the provider's own key but wrong in one way each (expired, audience, issuer, tampered…).
import { generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, silentLogger } from '../../core/logger.js';
import { httpsFetch, PscClient, startStandinPsc, type PscSettings, type StandinPsc } from '../../identity/psc/index.js';
import { parseOAuthMessage } from '../../identity/sasl-oauth.js';
import { CookieBrowser, standinLogin } from '../helpers/psc.js';
import { testPki, type TestPki } from '../helpers/pki.js';

const RPPS = '899999999901';
const CALLBACK = 'https://127.0.0.1:9/psc/callback';
const isCallback = (u: URL) => u.href.startsWith(CALLBACK);

describe('PSC tokens (identity/psc against the stand-in)', () => {
  let pki: TestPki;
  let standin: StandinPsc;
  let settings: PscSettings;
  let client: PscClient;
  let ca: string;

  beforeAll(async () => {
    pki = await testPki();
    ca = pki.read('chain.pem');
    standin = await startStandinPsc({
      host: '127.0.0.1',
      port: 0,
      tls: { cert: pki.read('server.pem') + pki.read('intermediate.pem'), key: pki.read('server.key') },
      clientId: 'mss-test',
      clientSecret: 'secret-de-test',
      audience: 'mss-test',
      professionals: async () => [{ idnps: RPPS, nom: 'MARTIN', prenom: 'Jeanne' }],
      log: silentLogger,
    });
    standin.register([CALLBACK]);
    settings = { issuer: standin.issuer, clientId: 'mss-test', clientSecret: 'secret-de-test', audience: 'mss-test', scopes: ['openid', 'scope_all'], acrValues: 'eidas1', idClaims: ['SubjectNameID', 'preferred_username'], algorithms: ['RS256'], introspection: false, clockToleranceMs: 0 };
    client = new PscClient(settings, httpsFetch([ca]), silentLogger);
  });
  afterAll(async () => {
    await standin?.stop();
  });

  /** A whole browser login at the stand-in: the callback's query and the cookie value. */
  async function codeFlow(c: PscClient, o: Parameters<typeof standinLogin>[2]) {
    const { url, pending } = await c.startLogin(CALLBACK);
    const u = new URL(url);
    expect(u.searchParams.get('code_challenge_method')).toBe('S256');
    expect(u.searchParams.get('scope')).toBe('openid scope_all');
    expect(u.searchParams.get('acr_values')).toBe('eidas1');
    const back = await standinLogin(new CookieBrowser(ca), url, o, isCallback);
    return { query: new URL(back).searchParams, pending };
  }

  it('discovers the provider from its /.well-known/openid-configuration', async () => {
    const meta = (await client.configuration()).serverMetadata();
    expect(meta.issuer).toBe(standin.issuer);
    expect(meta.jwks_uri).toMatch(/^https:\/\/127\.0\.0\.1:\d+\//);
    expect(meta.introspection_endpoint).toBeTruthy();
  });

  it('a browser login (code + PKCE) gives the national id, acr and the means', async () => {
    const { query, pending } = await codeFlow(client, { idnps: RPPS, means: 'cps' });
    expect(query.get('code')).toBeTruthy();
    expect(await client.finishLogin(query, pending)).toEqual({ ok: true, idnps: RPPS, subject: RPPS, acr: 'eidas1', amr: ['cps'] });
  });

  it('refuses an answer without the browser\'s state, with another state, or a denial', async () => {
    const { query, pending } = await codeFlow(client, { idnps: RPPS });
    expect(await client.finishLogin(query, null)).toEqual({ ok: false, failure: 'state' });
    const other = await client.startLogin(CALLBACK);
    expect(await client.finishLogin(query, other.pending)).toEqual({ ok: false, failure: 'state' });
    // The code is single-use at the provider, whichever way it is refused here: the right one still works once.
    expect(await client.finishLogin(query, pending)).toMatchObject({ ok: true, idnps: RPPS });
    expect(await client.finishLogin(query, pending)).toEqual({ ok: false, failure: 'bad-id-token' });
    const denied = await codeFlow(client, { idnps: RPPS, deny: true });
    expect(denied.query.get('error')).toBe('access_denied');
    expect(await client.finishLogin(denied.query, denied.pending)).toEqual({ ok: false, failure: 'denied' });
  });

  it('an access token from the provider is accepted, locally and by introspection', async () => {
    // The token endpoint's access token, as a mail client would get it.
    const { query, pending } = await codeFlow(client, { idnps: RPPS, means: 'e-cps' });
    const config = await client.configuration();
    const oidc = await import('openid-client');
    const kept = JSON.parse(Buffer.from(pending, 'base64url').toString()) as { verifier: string; nonce: string };
    const tokens = await oidc.authorizationCodeGrant(config, new URL(`${CALLBACK}?${query}`), { pkceCodeVerifier: kept.verifier, expectedNonce: kept.nonce, expectedState: query.get('state')! });
    const at = tokens.access_token;
    expect(at.split('.')).toHaveLength(3);
    expect(await client.verifyAccessToken(at)).toEqual({ ok: true, idnps: RPPS, subject: RPPS, acr: 'eidas1', amr: ['e-cps'] });
    const introspecting = new PscClient({ ...settings, introspection: true }, httpsFetch([ca]), silentLogger);
    expect(await introspecting.verifyAccessToken(at)).toMatchObject({ ok: true, idnps: RPPS });
    // The provider's word decides: an expired one is not active for it; another audience is refused here.
    expect(await introspecting.verifyAccessToken(await standin.mint({ preferred_username: RPPS }, { expiresIn: -3600 }))).toEqual({ ok: false, failure: 'inactive' });
    expect(await introspecting.verifyAccessToken(await standin.mint({ preferred_username: RPPS, aud: 'un-autre-service' }))).toEqual({ ok: false, failure: 'wrong-audience' });
  });

  it('refuses expired, wrong-audience, wrong-issuer, tampered, unsigned and foreign tokens, each with its reason', async () => {
    const good = await standin.mint({ sub: 'x', preferred_username: RPPS });
    expect(await client.verifyAccessToken(good)).toMatchObject({ ok: true, idnps: RPPS, acr: 'eidas1' });
    const refused = async (t: string) => ((await client.verifyAccessToken(t)) as { failure?: string }).failure;
    expect(await refused(await standin.mint({ preferred_username: RPPS }, { expiresIn: -3600 }))).toBe('expired');
    expect(await refused(await standin.mint({ preferred_username: RPPS, aud: 'un-autre-service' }))).toBe('wrong-audience');
    expect(await refused(await standin.mint({ preferred_username: RPPS, iss: 'https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet' }))).toBe('wrong-issuer');
    expect(await refused(await standin.mint({ preferred_username: RPPS, nbf: Math.floor(Date.now() / 1000) + 3600 }))).toBe('not-yet-valid');
    expect(await refused(await standin.mint({ sub: 'x' }))).toBe('no-national-id');
    // Tampered: another professional's id put in the payload, the signature kept.
    const [h, p, s] = good.split('.');
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString());
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...payload, preferred_username: '810101010101' })).toString('base64url')}.${s}`;
    expect(await refused(forged)).toBe('bad-signature');
    // Unsigned (alg none), HMAC with a guessable key, and a key that is not the provider's under its kid.
    expect(await refused(`${Buffer.from('{"alg":"none"}').toString('base64url')}.${p}.`)).toBe('algorithm');
    const hs = await new SignJWT(payload).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode('mss-test'));
    expect(await refused(hs)).toBe('algorithm');
    const kid = JSON.parse(Buffer.from(h, 'base64url').toString()).kid;
    const { privateKey } = await generateKeyPair('RS256');
    expect(await refused(await new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid }).sign(privateKey))).toBe('bad-signature');
    expect(await refused('pas.un.jwt')).toBe('malformed');
  });

  it('parses OAUTHBEARER and XOAUTH2 messages, and refuses malformed ones', () => {
    const b = (s: string) => Buffer.from(s);
    expect(parseOAuthMessage('OAUTHBEARER', b('n,a=jeanne.martin@mssante.localhost,\x01host=x\x01port=993\x01auth=Bearer abc.def-ghi\x01\x01'))).toEqual({ mechanism: 'OAUTHBEARER', user: 'jeanne.martin@mssante.localhost', token: 'abc.def-ghi' });
    expect(parseOAuthMessage('OAUTHBEARER', b('n,a=a=2Cb,\x01auth=Bearer t\x01\x01'))).toMatchObject({ user: 'a,b' });
    expect(parseOAuthMessage('xoauth2', b('user=box@d\x01auth=Bearer t0k\x01\x01'))).toEqual({ mechanism: 'XOAUTH2', user: 'box@d', token: 't0k' });
    for (const [m, s] of [
      ['OAUTHBEARER', 'n,a=x,\x01auth=Bearer t\x01'],
      ['OAUTHBEARER', 'p=tls-unique,,\x01auth=Bearer t\x01\x01'],
      ['OAUTHBEARER', 'n,a=x,\x01auth=Basic dXNlcg==\x01\x01'],
      ['XOAUTH2', 'user=x\x01\x01'],
      ['XOAUTH2', 'user=x\x01auth=Bearer a b\x01\x01'],
      ['PLAIN', 'user=x\x01auth=Bearer t\x01\x01'],
    ] as const) expect(parseOAuthMessage(m, b(s))).toBeNull();
  });

  it('the logger never writes a token or the client secret', () => {
    const lines: string[] = [];
    const log = createLogger({ log: { level: 'info', format: 'json' } }, { write: (l: string) => void lines.push(l) });
    log.info({ token: 'eyJ.secret.jwt', accessToken: 'eyJ.at', auth: { accessToken: 'eyJ.nested' }, psc: { clientSecret: 's3cr3t' } }, 'login');
    expect(lines.join('')).not.toMatch(/eyJ|s3cr3t/);
    expect(lines.join('')).toContain('"token":"***"');
  });
});
