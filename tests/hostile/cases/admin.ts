// The admin API (HTTPS, bearer tokens, JSON schemas, regional scope). Each case expects the
// problem+json a client must get: status, title (the catalogue code) and detail. Never a
// 500: an input that produces one is a defect.
import type { Case } from '../harness.js';
import type { AdminCtx } from '../admin.js';
import { https, httpOutcome } from '../http.js';
import { DOMAIN } from '../platform.js';
import { csrfOf } from '../../../core/browser-session.js';
import { totpCode } from '../../../annuaire/bal/credentials.js';

const NO_TOKEN = { code: 401, enhanced: 'AUTH_FAILED', text: /^authentication failed: unknown user name or wrong credential$/ } as const;
const invalid = (text: RegExp) => ({ code: 400, enhanced: 'BAD_REQUEST', text }) as const;
/** 400 with the schema validator's sentence here, or branch admin's sentence for people. */
const unknownField = (field: string) => invalid(new RegExp(`^the body has an unknown field "${field}"$`));
const TOO_LARGE = (limit: number) => ({ code: 413, enhanced: 'HTTP_BODY_TOO_LARGE', text: new RegExp(`^the request body is larger than the ${limit} bytes this operation accepts$`) }) as const;
const OUT_OF_SCOPE = (target: RegExp) => ({ code: 403, enhanced: 'ADMIN_OUT_OF_SCOPE', text: target }) as const;
const bal = (over: Record<string, unknown>) => ({ address: `x${Math.random().toString(36).slice(2, 8)}@${DOMAIN}`, type: 'ORG', owner: '1750000001', ...over });
const enc = encodeURIComponent;

export const adminCases: Array<Case<AdminCtx>> = [
  // --- who is asking --------------------------------------------------------------------------------
  { name: 'no Authorization header', send: (x) => x.api('GET', '/bals', { as: 'none' }), expect: NO_TOKEN },
  { name: 'Basic authentication instead of a bearer token', send: (x) => x.api('GET', '/bals', { as: 'none', headers: { authorization: `Basic ${Buffer.from(`${x.h.admin.national.login}:${x.h.admin.national.password}`).toString('base64')}` } }), expect: NO_TOKEN },
  { name: 'a made-up bearer token', send: (x) => x.api('GET', '/bals', { as: 'none', token: 'mssadm_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }), expect: NO_TOKEN },
  { name: 'a 10 KB bearer token', send: (x) => x.api('GET', '/bals', { as: 'none', token: `mssadm_${'A'.repeat(10_000)}` }), expect: NO_TOKEN },
  { name: 'a webmail session token on the admin API', send: (x) => x.api('GET', '/bals', { as: 'webmail' }), expect: NO_TOKEN },
  { name: 'a valid token followed by a second one', send: (x) => x.api('GET', '/bals', { as: 'none', headers: { authorization: `Bearer ${x.tokens.national} ${x.tokens.regional}` } }), expect: NO_TOKEN },
  {
    name: 'a token used after logout',
    send: async (x) => {
      const login = await fetchToken(x);
      await x.api('POST', '/logout', { token: login });
      return x.api('GET', '/bals', { token: login });
    },
    expect: NO_TOKEN,
  },
  { name: 'a wrong password', send: (x) => x.api('POST', '/login', { as: 'none', json: { login: x.h.admin.regional.login, password: 'not the password 2026' } }), expect: NO_TOKEN },
  // --- the operator console's browser session: the token in its cookie, CSRF on what changes anything (webui/console/) ---
  ...consoleSessionCases(),
  { name: 'an unknown login', send: (x) => x.api('POST', '/login', { as: 'none', json: { login: 'personne', password: 'whatever password' } }), expect: NO_TOKEN },
  {
    name: 'a password sent as a number is refused, not turned into a string',
    send: (x) => x.api('POST', '/login', { as: 'none', json: { login: x.h.admin.regional.login, password: 123456789012 } }),
    expect: invalid(/^the field password must be a string, not number 123456789012$/),
  },
  { name: 'login with an extra property', send: (x) => x.api('POST', '/login', { as: 'none', json: { ...x.h.admin.national, admin: true } }), expect: unknownField('admin') },
  { name: 'login with a 2,000-character password', send: (x) => x.api('POST', '/login', { as: 'none', json: { login: 'x', password: 'p'.repeat(2000) } }), expect: invalid(/password must NOT have more than 1024 characters/) },
  { name: 'login as a form instead of JSON', send: (x) => x.api('POST', '/login', { as: 'none', body: 'login=admin&password=x', type: 'application/x-www-form-urlencoded' }), expect: { code: 415, enhanced: 'UNSUPPORTED_MEDIA_TYPE', text: /^expected a body of type application\/json, got application\/x-www-form-urlencoded$/ } },
  // --- bodies --------------------------------------------------------------------------------------------
  { name: 'malformed JSON', send: (x) => x.api('POST', '/bals', { body: '{"address": "a@b", "type": ' }), expect: invalid(/^Body is not valid JSON but content-type is set to 'application\/json'$/) },
  // fastify's JSON parser refuses prototype keys outright (secure-json-parse), as it refuses malformed JSON.
  { name: 'JSON carrying __proto__ (prototype pollution)', send: (x) => x.api('POST', '/bals', { body: `{"address":"p@${DOMAIN}","type":"ORG","owner":"1750000001","__proto__":{"role":"national"}}` }), expect: invalid(/^Body is not valid JSON but content-type is set to 'application\/json'$/) },
  { name: 'JSON carrying constructor.prototype', send: (x) => x.api('POST', '/bals', { body: `{"address":"p@${DOMAIN}","type":"ORG","owner":"1750000001","constructor":{"prototype":{"role":"national"}}}` }), expect: invalid(/^Body is not valid JSON but content-type is set to 'application\/json'$/) },
  { name: 'a body over 1 MB', send: (x) => x.api('POST', '/bals', { json: bal({ description: 'd'.repeat(1_100_000) }) }), expect: TOO_LARGE(1048576) },
  { name: 'an array instead of an object', send: (x) => x.api('POST', '/bals', { json: [bal({})] }), expect: invalid(/^the body must be an object, not an array$/) },
  { name: 'a mailbox of an unknown type', send: (x) => x.api('POST', '/bals', { json: bal({ type: 'ROOT' }) }), expect: invalid(/^the field type must be one of "PER", "ORG", "APP", "CAB"$/) },
  { name: 'a mailbox with an unknown property', send: (x) => x.api('POST', '/bals', { json: bal({ status: 'closed' }) }), expect: unknownField('status') },
  { name: 'a mailbox address of 300 characters', send: (x) => x.api('POST', '/bals', { json: bal({ address: `${'a'.repeat(290)}@${DOMAIN}` }) }), expect: invalid(/address must NOT have more than 254 characters/) },
  { name: 'a mailbox address without a domain', send: (x) => x.api('POST', '/bals', { json: bal({ address: 'nodomain' }) }), expect: invalid(/is not a mailbox address this operator creates/) },
  { name: 'a mailbox address with CRLF in it', send: (x) => x.api('POST', '/bals', { json: bal({ address: `a\r\nBcc: x@${DOMAIN}` }) }), expect: invalid(/is not a mailbox address this operator creates/) },
  { name: 'a mailbox address with LDAP filter characters', send: (x) => x.api('POST', '/bals', { json: bal({ address: `a*)(mail=*@${DOMAIN}` }) }), expect: invalid(/is not a mailbox address this operator creates/) },
  { name: "a mailbox in another operator's domain", send: (x) => x.api('POST', '/bals', { json: bal({ address: 'vol@peer.mssante.localhost' }) }), expect: invalid(/^peer\.mssante\.localhost is not a domain of this operator/) },
  { name: 'an address already taken', send: (x) => x.api('POST', '/bals', { json: bal({ address: x.h.org }) }), expect: { code: 409, enhanced: 'BAL_EXISTS', text: /^the address secretariat\.cardio@mssante\.localhost is already taken \(addresses are never reused\)$/ } },
  {
    name: 'an owner sent as a number is refused, not turned into a string',
    send: (x) => x.api('POST', '/bals', { json: bal({ owner: 1750000001 }) }),
    expect: invalid(/^the field owner must be a string, not number 1750000001$/),
  },
  {
    name: 'listeRouge sent as the string "true" is refused, not turned into a boolean',
    send: (x) => x.api('POST', '/bals', { json: bal({ listeRouge: 'true' }) }),
    expect: invalid(/^the field listeRouge must be true or false, not the string "true"$/),
  },
  {
    name: 'rank sent as the string "7" is refused, not turned into a number',
    send: (x) => x.api('POST', '/bals', { json: bal({ rank: '7' }) }),
    expect: invalid(/^the field rank must be a whole number, not the string "7"$/),
  },
  { name: 'rank 0', send: (x) => x.api('POST', '/bals', { json: bal({ rank: 0 }) }), expect: invalid(/rank must be >= 1/) },
  { name: 'rank 2.5', send: (x) => x.api('POST', '/bals', { json: bal({ rank: 2.5 }) }), expect: invalid(/^the field rank must be a whole number, not number 2\.5$/) },
  {
    name: 'rank 1e300 is a 400, never a 500',
    send: (x) => x.api('POST', '/bals', { body: JSON.stringify(bal({})).replace(/}$/, ',"rank":1e300}') }),
    expect: invalid(/^the field rank must be <= 1000$/),
  },
  {
    name: 'PATCH listeRouge as the string "false" is refused',
    send: (x) => x.api('PATCH', `/bals/${enc(x.h.org)}`, { json: { listeRouge: 'false' } }),
    expect: invalid(/^the field listeRouge must be true or false, not the string "false"$/),
  },
  { name: 'PATCH with an empty body', send: (x) => x.api('PATCH', `/bals/${enc(x.h.org)}`, { json: {} }), expect: invalid(/body must NOT have fewer than 1 properties/) },
  { name: 'PATCH trying to change the address', send: (x) => x.api('PATCH', `/bals/${enc(x.h.org)}`, { json: { address: `autre@${DOMAIN}` } }), expect: unknownField('address') },
  { name: 'PATCH trying to change the type', send: (x) => x.api('PATCH', `/bals/${enc(x.h.org)}`, { json: { type: 'PER' } }), expect: unknownField('type') },
  { name: 'a member given by login and national id at once', send: (x) => x.api('POST', `/bals/${enc(x.h.org)}/members`, { json: { login: 'intrus', idnps: '899999999904' } }), expect: invalid(/body must NOT have more than 1 properties/) },
  { name: 'a member added to a personal box', send: (x) => x.api('POST', `/bals/${enc(x.h.who.paul.address)}/members`, { json: { login: 'intrus' } }), expect: { code: 409, enhanced: 'BAL_WRONG_TYPE', text: /^adding a member applies to ORG mailboxes; paul\.durand@mssante\.localhost is of type PER$/ } },
  { name: 'a member who does not exist', send: (x) => x.api('POST', `/bals/${enc(x.h.org)}/members`, { json: { login: 'fantome' } }), expect: { code: 404, enhanced: 'PERSON_UNKNOWN', text: /^there is no local account fantome$/ } },
  // --- query strings ---------------------------------------------------------------------------------
  { name: 'limit=0', send: (x) => x.api('GET', '/bals?limit=0'), expect: invalid(/limit must be >= 1/) },
  { name: 'limit=abc', send: (x) => x.api('GET', '/bals?limit=abc'), expect: invalid(/^the query parameter limit must be a number written in decimal digits, got "abc"$/) },
  { name: 'offset=-1', send: (x) => x.api('GET', '/bals?offset=-1'), expect: invalid(/offset must be >= 0/) },
  {
    name: 'offset=99999999999999999999 is a 400, never a 500',
    send: (x) => x.api('GET', '/bals?offset=99999999999999999999'),
    expect: invalid(/^the query parameter offset must be <= 10000000$/),
  },
  { name: 'an unknown query parameter', send: (x) => x.api('GET', '/bals?admin=true'), expect: invalid(/^the query string has an unknown parameter "admin"$/) },
  { name: 'a type filter outside the list', send: (x) => x.api('GET', "/bals?type=PER'%20OR%201=1--"), expect: invalid(/^the query parameter type must be one of "PER", "ORG", "APP", "CAB"$/) },
  {
    name: 'journal beforeSeq=9223372036854775808 (2^63) is a 400, never a 500',
    send: (x) => x.api('GET', '/journal?beforeSeq=9223372036854775808'),
    expect: invalid(/^the query parameter beforeSeq must be <= 9007199254740991$/),
  },
  {
    name: 'journal beforeSeq=1e30 is a 400, never a 500',
    send: (x) => x.api('GET', '/journal?beforeSeq=1e30'),
    expect: invalid(/^the query parameter beforeSeq must be a number written in decimal digits, got "1e30"$/),
  },
  { name: 'journal since=yesterday', send: (x) => x.api('GET', '/journal?since=yesterday'), expect: invalid(/^the query parameter since must be a date and time with its time zone \(RFC 3339, e\.g\. 2026-03-01T08:00:00Z\), not the string "yesterday"$/) },
  { name: 'search with an 11-letter rpps', send: (x) => x.api('GET', '/search?rpps=abcdefghijk'), expect: invalid(/rpps must match pattern/) },
  { name: 'search with one letter', send: (x) => x.api('GET', '/search?q=a'), expect: invalid(/q must NOT have fewer than 2 characters/) },
  // --- paths -----------------------------------------------------------------------------------------
  { name: 'a mailbox path with ../ (traversal)', send: (x) => x.api('GET', `/bals/${enc('../../../etc/passwd')}`), expect: { code: 404, enhanced: 'BAL_UNKNOWN', text: /^there is no mailbox \.\.\/\.\.\/\.\.\/etc\/passwd at this operator$/ } },
  {
    name: 'a mailbox path with a NUL byte is a 4xx, never a 500',
    send: (x) => x.api('GET', `/bals/${enc(`${x.h.org}\0`)}`),
    expect: invalid(/^the path parameter address contains a NUL character$/),
  },
  { name: 'a certificate fingerprint that is not hexadecimal', send: (x) => x.api('DELETE', `/bals/${enc(x.h.app)}/certificates/${'zz'.repeat(32)}`), expect: invalid(/fingerprint must match pattern/) },
  { name: 'revoking a certificate of a mailbox that does not exist', send: (x) => x.api('DELETE', `/bals/${enc(`nulle.part@${DOMAIN}`)}/certificates/${'ab'.repeat(32)}`), expect: { code: 404, enhanced: 'BAL_UNKNOWN', text: /^there is no mailbox nulle\.part@mssante\.localhost at this operator$/ } },
  { name: 'a method the route does not have', send: (x) => x.api('PUT', `/bals/${enc(x.h.org)}`, { json: {} }), expect: { code: 404, enhanced: 'NOT_FOUND', text: /^PUT \/api\/v1\/bals\/.* not found$/ } },
  { name: 'a route that does not exist', send: (x) => x.api('GET', '/debug/vars'), expect: { code: 404, enhanced: 'NOT_FOUND', text: /^GET \/api\/v1\/debug\/vars not found$/ } },
  // --- certificates ------------------------------------------------------------------------------------
  { name: 'a certificate that is not PEM', send: (x) => x.api('POST', `/bals/${enc(x.apps.sameOrg)}/certificates`, { json: { pem: '-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n' } }), expect: { code: 422, enhanced: 'CERT_UNUSABLE', text: /^the application certificate cannot be registered: / } },
  { name: 'an expired certificate', send: (x) => x.api('POST', `/bals/${enc(x.apps.sameOrg)}/certificates`, { json: { pem: x.pem.expired } }), expect: { code: 422, enhanced: 'CERT_EXPIRED', text: /^the certificate C=FR, O=Opérateur expiré \(test\), OU=399999999900001, CN=expired\.mssante\.localhost expired on \d{4}-\d\d-\d\dT[\d:.]+Z$/ } },
  { name: 'a certificate on a personal box', send: (x) => x.api('POST', `/bals/${enc(x.h.who.paul.address)}/certificates`, { json: { pem: x.pem.stray } }), expect: { code: 409, enhanced: 'BAL_WRONG_TYPE', text: /^registering an application certificate applies to APP mailboxes; paul\.durand@mssante\.localhost is of type PER$/ } },
  {
    name: 'a revoked application certificate',
    send: (x) => x.api('POST', `/bals/${enc(x.apps.sameOrg)}/certificates`, { json: { pem: x.pem.revoked } }),
    expect: { code: 422, enhanced: 'CERT_REVOKED', text: /^the certificate C=FR, O=Labo, OU=399999999900001, CN=logiciel-revoque is revoked \(since \d{4}-\d\d-\d\dT[\d:.]+Z, by the CRL of its authority\)$/ },
  },
  {
    name: 'a certificate from a root outside the trust space',
    send: (x) => x.api('POST', `/bals/${enc(x.apps.sameOrg)}/certificates`, { json: { pem: x.pem.foreign } }),
    expect: { code: 422, enhanced: 'CERT_UNTRUSTED', text: /^the certificate C=FR, O=Hors espace de confiance, OU=399999999900001, CN=foreign\.mssante\.localhost is not issued by a certification authority of the MSSanté trust space: no chain leads from its issuer \(C=FR, O=Hors espace de confiance, OU=IGC-SANTE DEV, CN=AC RACINE ETRANGERE \(test\)\) to a root of the trust bundle$/ },
  },
  {
    name: "another operator's server certificate as an application certificate (wrong key usage)",
    send: (x) => x.api('POST', `/bals/${enc(x.apps.sameOrg)}/certificates`, { json: { pem: x.pem.server } }),
    expect: { code: 422, enhanced: 'CERT_WRONG_USAGE', text: /^the certificate C=FR, O=Opérateur pair \(test\), OU=399999999900001, CN=peer\.mssante\.localhost cannot authenticate a TLS client: its extendedKeyUsage includes TLS server authentication \(serverAuth\): it is the certificate of a server \(an operator's MX presents such a certificate on every connection\), not of an application; register a client certificate \(clientAuth only\)$/ },
  },
  {
    name: "a certificate of one organisation on another organisation's box",
    send: (x) => x.api('POST', `/bals/${enc(x.apps.otherOrg)}/certificates`, { json: { pem: x.pem.stray } }),
    expect: { code: 422, enhanced: 'CERT_WRONG_ORGANISATION', text: /^the certificate C=FR, O=Autre structure, OU=399999999900001, CN=autre-logiciel is issued to organisation 399999999900001, not to 1750000001, the structure of autre-labo@mssante\.localhost$/ },
  },
  {
    name: 'a certificate already bound to another box, without the explicit flag',
    send: (x) => x.api('POST', `/bals/${enc(x.apps.sameOrg)}/certificates`, { json: { pem: x.pem.bound } }),
    expect: { code: 409, enhanced: 'CERT_BOUND_ELSEWHERE', text: /^the certificate [0-9a-f]{64} is already bound to labo-resultats@mssante\.localhost; to bind it to labo-bis@mssante\.localhost as well, register it again with allowShared \(CLI: --allow-shared\): the sharing is journalled$/ },
  },
  // --- a regional account out of its scope ----------------------------------------------------------
  {
    name: 'regional: the list of persons shows no one outside the scope',
    send: async (x) => {
      const r = await https(x.url, x.h.ca, 'GET', '/api/v1/persons', { token: x.tokens.regional });
      if (r.status !== 200) return httpOutcome(r);
      return { code: '200', text: (r.json() as Array<{ login: string }>).map((p) => p.login).join(',') };
    },
    expect: { code: 200, text: /^secretaire$/ },
  },
  {
    name: 'regional: the admin accounts list only the regional accounts inside its scope',
    send: async (x) => {
      const r = await https(x.url, x.h.ca, 'GET', '/api/v1/admins', { token: x.tokens.regional });
      if (r.status !== 200) return httpOutcome(r);
      return { code: '200', text: (r.json() as Array<{ login: string }>).map((a) => a.login).join(',') };
    },
    expect: { code: 200, text: /^regional\.hostile$/ },
  },
  { name: 'regional: creating a national account', send: (x) => x.api('POST', '/admins', { as: 'regional', json: { login: 'mon.ami', role: 'national' } }), expect: OUT_OF_SCOPE(/^account regional\.hostile may not act on admin account mon\.ami: a national account is a national matter$/) },
  { name: 'regional: widening its own scope', send: (x) => x.api('PATCH', '/admins/regional.hostile', { as: 'regional', json: { role: 'regional', domains: ['ailleurs.localhost'], structures: ['1750000099'] } }), expect: OUT_OF_SCOPE(/^account regional\.hostile may not act on admin account regional\.hostile: its scope would reach beyond /) },
  { name: 'regional: making itself national', send: (x) => x.api('PATCH', '/admins/regional.hostile', { as: 'regional', json: { role: 'national' } }), expect: OUT_OF_SCOPE(/^account regional\.hostile may not act on admin account regional\.hostile: a national account is a national matter$/) },
  { name: 'regional: disabling the national account', send: (x) => x.api('POST', `/admins/${enc(x.h.admin.national.login)}/disable`, { as: 'regional' }), expect: OUT_OF_SCOPE(/may not act on admin account .*: a national account is a national matter$/) },
  ...secondFactorCases(),
  { name: 'regional: creating a box of another structure', send: (x) => x.api('POST', '/bals', { as: 'regional', json: bal({ owner: '1750000099' }) }), expect: OUT_OF_SCOPE(/^account regional\.hostile may not act on x\w+@mssante\.localhost: /) },
  { name: "regional: reading a box of another structure", send: (x) => x.api('GET', `/bals/${enc(x.h.app)}`, { as: 'regional' }), expect: OUT_OF_SCOPE(/^account regional\.hostile may not act on labo-resultats@mssante\.localhost: /) },
  { name: "regional: closing a person's box outside the scope", send: (x) => x.api('POST', `/bals/${enc(x.h.who.paul.address)}/close`, { as: 'regional', json: {} }), expect: OUT_OF_SCOPE(/^account regional\.hostile may not act on paul\.durand@mssante\.localhost: /) },
  { name: 'regional: registering a certificate on a box outside the scope', send: (x) => x.api('POST', `/bals/${enc(x.apps.sameOrg)}/certificates`, { as: 'regional', json: { pem: x.pem.stray } }), expect: OUT_OF_SCOPE(/^account regional\.hostile may not act on labo-bis@mssante\.localhost: /) },
  { name: 'regional: resetting the credentials of someone with boxes outside the scope', send: (x) => x.api('POST', '/persons/paul.durand/reset-credentials', { as: 'regional', json: {} }), expect: OUT_OF_SCOPE(/^account regional\.hostile may not act on paul\.(durand|ancien)@mssante\.localhost: /) },
  { name: 'regional: importing a liste blanche', send: (x) => x.api('POST', '/imports/whitelist', { as: 'regional', body: '<ListeBlanche/>', type: 'application/xml' }), expect: OUT_OF_SCOPE(/^account regional\.hostile may not act on the liste blanche: /) },
  {
    name: 'regional: the whole audit trail shows nothing outside the scope',
    // Scoped to the account's boxes (scope by construction): its own account's events (subject admin:regional.hostile) are its to see.
    send: (x) => auditTrail(x, '/journal'),
    expect: { code: 200, text: /^(?![\s\S]*\b(jeanne\.martin|paul\.durand|intrus|labo-resultats|labo-bis|admin:(?!regional\.hostile\b)))/ },
  },
  {
    name: 'regional: the audit trail of a box outside the scope shows nothing of it',
    send: (x) => auditTrail(x, `/journal?subject=${enc(x.h.who.jeanne.address)}`),
    expect: { code: 200, text: /^$/ },
  },
  // --- imports -------------------------------------------------------------------------------------------
  {
    name: 'a liste blanche with a DOCTYPE (XXE)',
    send: (x) => x.api('POST', '/imports/whitelist', { body: '<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n<ListeBlanche xmlns="https://listeblanche.mssante.fr/schema"><DateDeGeneration>2099-01-01T00:00:00</DateDeGeneration><Domaines><Domaine><Nom>&e;</Nom></Domaine></Domaines></ListeBlanche>', type: 'application/xml' }),
    expect: { code: 422, enhanced: 'WHITELIST_INVALID', text: /^the liste blanche from upload via admin API cannot be used: .*DOCTYPE.*; nothing changed$/ },
  },
  { name: 'a liste blanche URL with file://', send: (x) => x.api('POST', '/imports/whitelist', { json: { url: 'file:///etc/passwd' } }), expect: invalid(/^the field url must match pattern /) },
  { name: 'a liste blanche request with an extra field', send: (x) => x.api('POST', '/imports/whitelist', { json: { url: 'https://listeblanche.mssante.fr/x.xml', force: true } }), expect: invalid(/^the body has an unknown field "force"$/) },
  { name: 'an extraction name with a path', send: (x) => x.api('POST', `/imports/extractions?name=${enc('../../etc/cron.d/x.txt')}`, { body: 'x', type: 'application/octet-stream' }), expect: invalid(/name must match pattern/) },
  { name: 'an extraction without a name', send: (x) => x.api('POST', '/imports/extractions', { body: 'x', type: 'application/octet-stream' }), expect: invalid(/^the query string lacks the required parameter name$/) },
  { name: 'an extraction sent as JSON', send: (x) => x.api('POST', '/imports/extractions?name=Extraction_Correspondance_MSSante_202601010000.txt', { json: { rows: [] } }), expect: { code: 415, enhanced: 'UNSUPPORTED_MEDIA_TYPE', text: /^expected a body of type application\/octet-stream or application\/zip or text\/plain, got application\/json$/ } },
  // --- HTTP itself -----------------------------------------------------------------------------------
  { name: 'a 40 KB header', send: (x) => x.raw(`GET /api/v1/me HTTP/1.1\r\nHost: localhost\r\nX-Filler: ${'f'.repeat(40_000)}\r\n\r\n`), expect: { code: 431, text: /^$/ } },
  {
    name: 'request smuggling: Content-Length and Transfer-Encoding together',
    send: (x) => x.raw(`POST /api/v1/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /api/v1/admins HTTP/1.1\r\nHost: localhost\r\n\r\n`),
    // Node's own HTTP parser refuses it before fastify: a bare 400, and the smuggled GET is never read.
    expect: { code: 400, text: /^$/ },
  },
];

/** The regional account's audit trail: the refusal, or the subjects of the events it was shown. */
async function auditTrail(x: AdminCtx, path: string) {
  const r = await https(x.url, x.h.ca, 'GET', `/api/v1${path}`, { token: x.tokens.regional });
  if (r.status !== 200) return httpOutcome(r);
  return { code: '200', text: (r.json() as Array<{ subject: string | null }>).map((e) => e.subject ?? '').join(',') };
}

async function fetchToken(x: AdminCtx): Promise<string> {
  return (await https(x.url, x.h.ca, 'POST', '/api/v1/login', { json: x.h.admin.national })).json().token as string;
}

/** The console's session (core/browser-session.ts, as the webmail's): forged requests refused with ADMIN_CSRF_INVALID, journalled. */
function consoleSessionCases(): Array<Case<AdminCtx>> {
  const forged = (text: RegExp) => ({ code: 403, enhanced: 'ADMIN_CSRF_INVALID', text }) as const;
  const cookie = (token: string) => `__Host-mss-admin-session=${token}`;
  const change = (x: AdminCtx, headers: Record<string, string>) => x.api('PATCH', `/bals/${enc(x.h.org)}`, { as: 'none', json: { description: 'changé par un faussaire' }, headers });
  // From an address of its own: the corpus's other failed logins are counted per address too.
  const webLogin = (x: AdminCtx, headers: Record<string, string>) => x.api('POST', '/web/login', { as: 'none', json: { login: 'personne', password: 'not the password 2026' }, headers, from: '127.0.0.10' });
  return [
    { name: 'a console cookie session changing a box without the CSRF header', send: (x) => change(x, { cookie: cookie(x.tokens.national) }), expect: forged(/the x-csrf-token header is missing; reload the page/) },
    { name: 'a console cookie session with a made-up CSRF header', send: (x) => change(x, { cookie: cookie(x.tokens.national), 'x-csrf-token': 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }), expect: forged(/the x-csrf-token header does not match the session/) },
    { name: "a console cookie session with another session's CSRF value", send: (x) => change(x, { cookie: cookie(x.tokens.national), 'x-csrf-token': csrfOf(x.tokens.regional) }), expect: forged(/does not match the session/) },
    { name: 'a console cookie session with the right CSRF value from another site', send: (x) => change(x, { cookie: cookie(x.tokens.national), 'x-csrf-token': csrfOf(x.tokens.national), origin: 'https://evil.example' }), expect: forged(/it comes from another site \(https:\/\/evil\.example\)/) },
    { name: 'a console cookie session from a sandboxed frame (Origin: null)', send: (x) => change(x, { cookie: cookie(x.tokens.national), 'x-csrf-token': csrfOf(x.tokens.national), origin: 'null' }), expect: forged(/it comes from another site \(null\)/) },
    { name: 'a made-up console cookie token with its own CSRF value', send: (x) => change(x, { cookie: cookie('mssadm_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'), 'x-csrf-token': csrfOf('mssadm_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA') }), expect: NO_TOKEN },
    { name: 'the console login posted by another site', send: (x) => webLogin(x, { origin: 'https://evil.example' }), expect: forged(/it comes from another site/) },
    { name: 'the console login with a wrong password', send: (x) => webLogin(x, {}), expect: NO_TOKEN },
  ];
}

/**
 * The second factor of an admin login: an account enrolled by the case itself (through the
 * API, with a code from its secret), then codes missing, wrong, replayed, raced. Each failure
 * is told with its own code only after a right password.
 */
function secondFactorCases(): Array<Case<AdminCtx>> {
  const OTP = (code: string, text: RegExp) => ({ code: 401, enhanced: code, text }) as const;
  let n = 0;
  /** A fresh regional account with TOTP enrolled: its login, password and secret. */
  const enrolled = async (x: AdminCtx) => {
    const login = `totp.hostile.${++n}`;
    const made = await https(x.url, x.h.ca, 'POST', '/api/v1/admins', { token: x.tokens.national, json: { login, role: 'regional', domains: [DOMAIN] } });
    const password = made.json().password as string;
    const token = (await https(x.url, x.h.ca, 'POST', '/api/v1/login', { json: { login, password } })).json().token as string;
    const secret = (await https(x.url, x.h.ca, 'POST', '/api/v1/me/totp', { token })).json().secret as string;
    const now = Date.now();
    const done = await https(x.url, x.h.ca, 'POST', '/api/v1/me/totp/confirm', { token, json: { code: totpCode(secret, now) } });
    if (done.status !== 200) throw new Error(`enrolment refused: ${done.body.toString()}`);
    // The enrolment used this step's code: the next step's is the first a login may use.
    return { login, password, next: totpCode(secret, now + 30_000) };
  };
  const login = (x: AdminCtx, json: Record<string, unknown>) => x.api('POST', '/login', { as: 'none', json });
  return [
    { name: 'a second-factor account logging in without its code', send: async (x) => login(x, { ...(await enrolled(x)), next: undefined }), expect: OTP('ADMIN_OTP_REQUIRED', /^this account logs in with a one-time code as well/) },
    { name: 'a second-factor account with a code of letters', send: async (x) => { const a = await enrolled(x); return login(x, { login: a.login, password: a.password, otp: 'abcdef' }); }, expect: OTP('ADMIN_OTP_INVALID', /^the one-time code is wrong or expired/) },
    { name: 'a second-factor account with a 16-digit code', send: async (x) => { const a = await enrolled(x); return login(x, { login: a.login, password: a.password, otp: `${a.next}${a.next}0000` }); }, expect: OTP('ADMIN_OTP_INVALID', /^the one-time code is wrong or expired/) },
    { name: 'a code longer than the field allows', send: (x) => login(x, { login: 'x', password: 'y', otp: '1'.repeat(17) }), expect: invalid(/otp must NOT have more than 16 characters/) },
    { name: 'a right code with a wrong password: the password is refused, the code not even looked at', send: async (x) => { const a = await enrolled(x); return login(x, { login: a.login, password: 'not the password 2026', otp: a.next }); }, expect: NO_TOKEN },
    {
      name: 'a code replayed after a login it opened',
      send: async (x) => {
        const a = await enrolled(x);
        const first = await https(x.url, x.h.ca, 'POST', '/api/v1/login', { json: { login: a.login, password: a.password, otp: a.next } });
        if (first.status !== 200) return httpOutcome(first);
        return login(x, { login: a.login, password: a.password, otp: a.next });
      },
      expect: OTP('ADMIN_OTP_REPLAYED', /^this one-time code was already used/),
    },
    {
      name: 'two logins racing with one code: exactly one opens a session',
      send: async (x) => {
        const a = await enrolled(x);
        const both = await Promise.all([0, 1].map(() => https(x.url, x.h.ca, 'POST', '/api/v1/login', { json: { login: a.login, password: a.password, otp: a.next } })));
        const won = both.filter((r) => r.status === 200);
        return won.length === 1 ? httpOutcome(both.find((r) => r.status !== 200)!) : { code: String(won.length), text: `${won.length} sessions opened` };
      },
      expect: OTP('ADMIN_OTP_REPLAYED', /^this one-time code was already used/),
    },
    { name: 'confirming a second factor never started', send: (x) => x.api('POST', '/me/totp/confirm', { as: 'regional', json: { code: '123456' } }), expect: { code: 409, enhanced: 'ADMIN_TOTP_NO_ENROLMENT', text: /^there is no second-factor enrolment to confirm for account regional\.hostile/ } },
  ];
}
