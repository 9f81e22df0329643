// The LDAP directory (slapd, fed by the platform): public reads for address books, writes
// by the platform's feeder only. The cases write anonymously, bind with what they should
// not, peek into the private routing branch, send filters and requests built to hurt, and
// try the TLS the issue says slapd still accepts.
import { Attribute, Ber, BerWriter, Change, Control } from 'ldapts';
import type { Case } from '../harness.js';
import type { LdapCtx } from '../ldap.js';
import { DOMAIN } from '../platform.js';

/** slapd refuses any write before it even looks at the ACL: result 8, strongAuthRequired. */
const NO_WRITE = { code: 8, enhanced: 'StrongAuthRequiredError', text: /^modifications require authentication$/ } as const;
// slapd (GnuTLS) answers an old protocol or a suite outside the policy by closing the
// connection without an alert; Node then reports the drop, not the reason. Either way the
// outcome is 'tls' only when no handshake completed (a completed one gives a search result),
// and serves() after each case shows the same listener still completes a proper one.
const DROPPED = /^Client network socket disconnected before secure TLS connection was established$/;
const REFUSED_VERSION = new RegExp(`${DROPPED.source}|protocol version|unsupported protocol|no protocols available`, 'i');
const REFUSED_SUITE = new RegExp(`${DROPPED.source}|handshake failure|no shared cipher`, 'i');
/**
 * slapd closes the connection past its request size for anonymous clients. Whether the client
 * was still writing the request at that moment (EPIPE, ECONNRESET) or already waiting for the
 * answer is the machine's timing, not the server's behaviour: both are that refusal.
 */
const closedPastSizeLimit = (op: string) => {
  const o = op.replace(/[()]/g, '\\$&');
  return new RegExp(`^(Connection closed before message response was received\\. Message type: ${o}|Socket error\\. Message type: ${o}\\nwrite (EPIPE|ECONNRESET))$`);
};
const entry = (x: LdapCtx) => `mail=${x.h.who.jeanne.address},ou=bal,${x.base}`;
const rootDn = (x: LdapCtx) => `cn=admin,${x.base}`;
/**
 * The paged-results control (RFC 2696) with a cookie slapd never issued. ldapts refuses to
 * send a PagedResultsControl it did not make itself, so this one is a plain Control with
 * the same OID writing the same value with ldapts's BER writer.
 */
class ForgedPagedResults extends Control {
  constructor(private readonly cookie: Buffer) {
    super('1.2.840.113556.1.4.319', { critical: true });
  }
  protected override writeControl(writer: BerWriter): void {
    const value = new BerWriter();
    value.startSequence();
    value.writeInt(10);
    value.writeBuffer(this.cookie, Ber.OctetString);
    value.endSequence();
    writer.writeBuffer(value.buffer, Ber.OctetString);
  }
}

export const ldapCases: Array<Case<LdapCtx>> = [
  // --- anonymous writes ------------------------------------------------------------------------------
  {
    name: 'an anonymous add of a mailbox entry',
    send: (x) =>
      x.op((c) => c.add(`mail=pirate@${DOMAIN},ou=bal,${x.base}`, { objectClass: ['inetOrgPerson'], cn: 'Pirate', sn: 'Pirate', mail: `pirate@${DOMAIN}` })),
    expect: NO_WRITE,
  },
  {
    name: "an anonymous change of a published mailbox's address",
    send: (x) => x.op((c) => c.modify(entry(x), new Change({ operation: 'replace', modification: new Attribute({ type: 'mail', values: [`pirate@${DOMAIN}`] }) }))),
    expect: NO_WRITE,
  },
  {
    name: 'an anonymous delete of a published mailbox',
    send: (x) => x.op((c) => c.del(entry(x))),
    expect: NO_WRITE,
  },
  {
    name: 'an anonymous rename of a published mailbox',
    send: (x) => x.op((c) => c.modifyDN(entry(x), `mail=pirate@${DOMAIN}`)),
    expect: NO_WRITE,
  },
  {
    name: 'an anonymous change of the base entry',
    send: (x) => x.op((c) => c.modify(x.base, new Change({ operation: 'add', modification: new Attribute({ type: 'description', values: ['owned'] }) }))),
    expect: NO_WRITE,
  },
  {
    name: 'an anonymous add of a routing entry (to redirect mail)',
    send: (x) => x.op((c) => c.add(`mail=pirate@${DOMAIN},ou=routage,${x.base}`, { objectClass: ['inetOrgPerson'], cn: 'x', sn: 'x', mail: `pirate@${DOMAIN}` })),
    expect: NO_WRITE,
  },
  {
    name: 'an anonymous add over StartTLS',
    send: (x) => x.op((c) => c.add(`mail=pirate2@${DOMAIN},ou=bal,${x.base}`, { objectClass: ['inetOrgPerson'], cn: 'P', sn: 'P' }), { via: 'starttls' }),
    expect: NO_WRITE,
  },
  {
    name: 'a write after a failed bind as the platform',
    send: (x) =>
      x.op(async (c) => {
        await c.bind(rootDn(x), 'not the secret').catch(() => {});
        return c.del(entry(x));
      }),
    expect: NO_WRITE,
  },
  // --- binds ------------------------------------------------------------------------------------------
  {
    name: 'a simple bind with a password in clear (no TLS on 389)',
    send: (x) => x.op((c) => c.bind(rootDn(x), 'any password'), { via: 'plain' }),
    expect: { code: 13, enhanced: 'ConfidentialityRequiredError', text: /^confidentiality required$/ },
  },
  {
    name: "the platform's DN with a wrong password",
    send: (x) => x.op((c) => c.bind(rootDn(x), 'not the secret')),
    expect: { code: 49, enhanced: 'InvalidCredentialsError', text: /^$/ },
  },
  {
    name: 'an unknown DN with a password',
    send: (x) => x.op((c) => c.bind(`cn=nobody,${x.base}`, 'x')),
    expect: { code: 49, enhanced: 'InvalidCredentialsError', text: /^$/ },
  },
  {
    name: "a published mailbox's DN with a password (entries carry none)",
    send: (x) => x.op((c) => c.bind(entry(x), x.h.who.jeanne.password)),
    expect: { code: 49, enhanced: 'InvalidCredentialsError', text: /^$/ },
  },
  {
    name: 'a bind DN with filter syntax in it',
    send: (x) => x.op((c) => c.bind(`cn=admin)(objectClass=*),${x.base}`, 'x')),
    expect: { code: 49, enhanced: 'InvalidCredentialsError', text: /^$/ },
  },
  {
    name: 'a bind with a DN and an empty password (unauthenticated bind)',
    send: (x) => x.op((c) => c.bind(rootDn(x), '')),
    expect: { code: 53, enhanced: 'UnwillingToPerformError', text: /^unauthenticated bind \(DN with no password\) disallowed$/ },
  },
  {
    name: 'SASL EXTERNAL without a client certificate',
    send: (x) => x.op((c) => c.bind('EXTERNAL')),
    expect: { code: 7, enhanced: 'AuthMethodNotSupportedError', text: /^SASL\(-4\): no mechanism available: / },
  },
  {
    name: 'SASL PLAIN as the platform with a guessed password',
    send: (x) => x.op((c) => c.bindSASL('PLAIN', `\0admin\0not the secret`)),
    expect: { code: 49, enhanced: 'InvalidCredentialsError', text: /^SASL\(-13\): user not found: Password verification failed$/ },
  },
  {
    name: 'SASL CRAM-MD5 with a forged initial response',
    send: (x) => x.op((c) => c.bindSASL('CRAM-MD5', 'admin 0123456789abcdef')),
    expect: { code: 80, text: /^SASL\(-5\): bad protocol \/ cancel: Remote sent first but mech does not allow it\.$/ },
  },
  {
    name: 'the password-modify extended operation, anonymously',
    send: (x) => x.op((c) => c.exop('1.3.6.1.4.1.4203.1.11.1')),
    expect: { code: 8, enhanced: 'StrongAuthRequiredError', text: /^only authenticated users may change passwords$/ },
  },
  // --- reading what is not public --------------------------------------------------------------------
  {
    name: 'the routing branch (every local box, liste rouge and closed ones) is invisible',
    send: (x) => x.op((c) => c.search(`ou=routage,${x.base}`, { filter: '(objectClass=*)' })),
    expect: { code: 32, enhanced: 'NoSuchObjectError', text: /^$/ },
  },
  {
    name: 'a routing entry searched by its exact DN',
    send: (x) => x.op((c) => c.search(`mail=${x.h.who.jeanne.address},ou=routage,${x.base}`, { scope: 'base', filter: '(objectClass=*)' })),
    expect: { code: 32, enhanced: 'NoSuchObjectError', text: /^$/ },
  },
  {
    name: 'a liste rouge mailbox is not found',
    send: (x) => x.op((c) => c.search(x.base, { filter: `(mail=${x.h.listeRouge})` })),
    expect: { code: 0, enhanced: 'success', text: /^0 entries$/ },
  },
  {
    name: 'a closed mailbox is not found',
    send: (x) => x.op((c) => c.search(x.base, { filter: `(mail=${x.h.closedOrg})` })),
    expect: { code: 0, enhanced: 'success', text: /^0 entries$/ },
  },
  {
    name: 'the routing status attribute is not searchable in the public tree',
    send: (x) => x.op((c) => c.search(x.base, { filter: '(mssStatus=closed)' })),
    expect: { code: 0, enhanced: 'success', text: /^0 entries$/ },
  },
  {
    name: 'userPassword asked for on every entry: none is returned',
    send: (x) =>
      x.op(async (c) => {
        const r = await c.search(x.base, { filter: '(objectClass=*)', attributes: ['userPassword'] });
        return { searchEntries: r.searchEntries.filter((e) => [e.userPassword ?? []].flat().length > 0) };
      }),
    expect: { code: 0, enhanced: 'success', text: /^0 entries$/ },
  },
  {
    name: 'the configuration backend (cn=config)',
    send: (x) => x.op((c) => c.search('cn=config', { scope: 'base', filter: '(objectClass=*)' })),
    expect: { code: 32, enhanced: 'NoSuchObjectError', text: /^$/ },
  },
  {
    name: 'the monitor backend (cn=monitor)',
    send: (x) => x.op((c) => c.search('cn=monitor', { scope: 'base', filter: '(objectClass=*)' })),
    expect: { code: 32, enhanced: 'NoSuchObjectError', text: /^$/ },
  },
  {
    name: 'a base outside the directory',
    send: (x) => x.op((c) => c.search('o=Autre,c=FR', { filter: '(objectClass=*)' })),
    expect: { code: 32, enhanced: 'NoSuchObjectError', text: /^$/ },
  },
  {
    name: 'a compare on a routing entry',
    send: (x) => x.op((c) => c.compare(`mail=${x.h.who.jeanne.address},ou=routage,${x.base}`, 'mssStatus', 'active')),
    expect: { code: 32, enhanced: 'NoSuchObjectError', text: /^$/ },
  },
  // --- filters and requests built to hurt ------------------------------------------------------------
  {
    name: 'filter injection through ldapsearch: two filters glued together',
    send: (x) => x.search(['-b', x.base, `(mail=${x.h.who.jeanne.address})(objectClass=*)`]),
    expect: { code: 249, text: /^Bad search filter \(-7\)$/ },
  },
  {
    name: 'a substring filter of 2,000 parts',
    send: (x) => x.op((c) => c.search(x.base, { filter: `(cn=${'a*'.repeat(2000)})` })),
    expect: { code: 0, enhanced: 'success', text: /^0 entries$/ },
  },
  {
    name: 'a filter nested 300 levels deep',
    send: (x) => x.op((c) => c.search(x.base, { filter: `${'(&'.repeat(300)}(mail=nobody@${DOMAIN})${')'.repeat(300)}` })),
    expect: { code: 0, enhanced: 'success', text: /^0 entries$/ },
  },
  {
    name: 'an OR of 20,000 terms (a request of ~700 KB, above slapd\'s limit for anonymous clients)',
    send: (x) => x.op((c) => c.search(x.base, { filter: `(|${Array.from({ length: 20_000 }, (_, i) => `(mail=n${i}@${DOMAIN})`).join('')})` })),
    expect: { code: 'error', text: closedPastSizeLimit('SearchRequest (0x63)') },
  },
  {
    name: 'an escaped NUL in a filter value',
    send: (x) => x.op((c) => c.search(x.base, { filter: '(mail=\\00)' })),
    expect: { code: 0, enhanced: 'success', text: /^0 entries$/ },
  },
  {
    name: 'an extensible match on DN components that would list the routing branch',
    send: (x) => x.op((c) => c.search(x.base, { filter: '(ou:dn:=routage)' })),
    expect: { code: 0, enhanced: 'success', text: /^0 entries$/ },
  },
  {
    name: 'an unknown critical control',
    send: (x) => x.op((c) => c.search(x.base, { filter: '(objectClass=*)' }, new Control('1.2.3.4.5.6.7.8', { critical: true }))),
    expect: { code: 12, enhanced: 'UnavailableCriticalExtensionError', text: /^critical extension is not recognized$/ },
  },
  {
    name: 'a paged search with a forged cookie',
    send: (x) => x.op((c) => c.search(x.base, { filter: '(objectClass=*)' }, new ForgedPagedResults(Buffer.from('forged-cookie')))),
    expect: { code: 2, enhanced: 'ProtocolError', text: /^paged results cookie is invalid$/ },
  },
  {
    name: 'a 2 MB anonymous add (over the size of request slapd reads from anyone anonymous)',
    send: (x) => x.op((c) => c.add(`mail=gros@${DOMAIN},ou=bal,${x.base}`, { objectClass: ['inetOrgPerson'], cn: 'x', sn: 'x', description: 'd'.repeat(2 * 1024 * 1024) })),
    expect: { code: 'error', text: closedPastSizeLimit('AddRequest (0x68)') },
  },
  {
    name: 'StartTLS twice',
    send: (x) => x.op((c) => c.startTLS({ ca: [x.h.ca], servername: 'localhost' }), { via: 'starttls' }),
    expect: { code: 1, enhanced: 'OperationsError', text: /TLS already started/ },
  },
  // --- TLS posture -----------------------------------------------------------------------------------
  {
    name: 'LDAPS with TLS 1.0',
    send: (x) => x.op((c) => c.search(x.base, { scope: 'base', filter: '(objectClass=*)' }), { tls: { minVersion: 'TLSv1', maxVersion: 'TLSv1', ciphers: 'DEFAULT:@SECLEVEL=0' } }),
    expect: { code: 'tls', text: REFUSED_VERSION },
  },
  {
    name: 'LDAPS with TLS 1.1',
    send: (x) => x.op((c) => c.search(x.base, { scope: 'base', filter: '(objectClass=*)' }), { tls: { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' } }),
    expect: { code: 'tls', text: REFUSED_VERSION },
  },
  {
    name: 'LDAPS with a suite without forward secrecy (AES256-SHA)',
    send: (x) => x.op((c) => c.search(x.base, { scope: 'base', filter: '(objectClass=*)' }), { tls: { maxVersion: 'TLSv1.2', ciphers: 'AES256-SHA' } }),
    expect: { code: 'tls', text: REFUSED_SUITE },
  },
  {
    name: 'StartTLS on 389 with a suite without forward secrecy (AES128-GCM-SHA256)',
    send: (x) => x.op((c) => c.search(x.base, { scope: 'base', filter: '(objectClass=*)' }), { via: 'starttls', tls: { maxVersion: 'TLSv1.2', ciphers: 'AES128-GCM-SHA256' } }),
    expect: { code: 'tls', text: REFUSED_SUITE },
  },
  {
    name: 'StartTLS on 389 with TLS 1.1',
    send: (x) => x.op((c) => c.search(x.base, { scope: 'base', filter: '(objectClass=*)' }), { via: 'starttls', tls: { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' } }),
    expect: { code: 'tls', text: REFUSED_VERSION },
  },
];
