// The one TLS policy of the platform — protocol versions, cipher suites, key-exchange groups —
// and its renderings for each TLS stack that serves a listener: Node's OpenSSL (MX,
// submission, IMAP proxy, admin and webmail APIs, the platform's own clients), and slapd's
// TLSCipherSuite, which takes a GnuTLS priority string on Debian (slapd linked with GnuTLS,
// where TLSProtocolMin is ignored) and an OpenSSL cipher list elsewhere. Change the policy
// here and every listener follows.

import { constants } from 'node:crypto';

/**
 * Référentiel #2 ECO.1.1.2/1.1.3: TLS 1.2 with the four suites MSSanté clients use — all
 * ECDHE (forward secrecy) with RSA certificates —, and TLS 1.3 besides (forward-secret by
 * construction). Static-RSA key exchange (AES256-SHA, AES128-GCM-SHA256…), DHE, CBC with
 * SHA-1 and ChaCha20 are left out: GnuTLS cannot enable ChaCha20 for TLS 1.3 without
 * enabling ECDHE-RSA-CHACHA20-POLY1305 for TLS 1.2, and every listener offers the same list.
 */
export const MSSANTE_TLS12_CIPHERS = ['ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES256-SHA384', 'ECDHE-RSA-AES128-SHA256'] as const;
export const TLS13_CIPHERS = ['TLS_AES_256_GCM_SHA384', 'TLS_AES_128_GCM_SHA256'] as const;

export const TLS_POLICY = {
  minVersion: 'TLSv1.2',
  maxVersion: 'TLSv1.3',
  tls12Suites: MSSANTE_TLS12_CIPHERS,
  tls13Suites: TLS13_CIPHERS,
  /** Key-exchange groups (ECDHE), preferred first; no finite-field DH. */
  groups: ['X25519', 'P-256', 'P-384'],
} as const;

/** OpenSSL's cipher string: TLS 1.3 suites then the TLS 1.2 ones, server's order. */
export const CIPHERS = [...TLS_POLICY.tls13Suites, ...TLS_POLICY.tls12Suites].join(':');

/**
 * What Node's tls.createServer / createSecureContext / connect take from the policy, for
 * servers and for the platform's own clients alike (a server adds honorCipherOrder).
 * Renegotiation is off: nothing here needs it (TLS 1.3 has none), and a client that may
 * renegotiate at will makes the server do a full handshake's work on demand (testssl:
 * secure_client_renego, a denial-of-service lever; Node only caps it at 3 per 10 minutes).
 */
export function nodeTlsPolicy() {
  return {
    minVersion: TLS_POLICY.minVersion,
    maxVersion: TLS_POLICY.maxVersion,
    ciphers: CIPHERS,
    ecdhCurve: TLS_POLICY.groups.join(':'),
    secureOptions: constants.SSL_OP_NO_RENEGOTIATION,
  } as const;
}

// GnuTLS names each part of a suite separately; these are the parts of the suites above.
const GNUTLS_SUITE: Record<string, { kx?: string; cipher: string; mac: string }> = {
  'ECDHE-RSA-AES256-GCM-SHA384': { kx: 'ECDHE-RSA', cipher: 'AES-256-GCM', mac: 'AEAD' },
  'ECDHE-RSA-AES128-GCM-SHA256': { kx: 'ECDHE-RSA', cipher: 'AES-128-GCM', mac: 'AEAD' },
  'ECDHE-RSA-AES256-SHA384': { kx: 'ECDHE-RSA', cipher: 'AES-256-CBC', mac: 'SHA384' },
  'ECDHE-RSA-AES128-SHA256': { kx: 'ECDHE-RSA', cipher: 'AES-128-CBC', mac: 'SHA256' },
  // TLS 1.3 suites have no key-exchange part: the groups below carry it.
  TLS_AES_256_GCM_SHA384: { cipher: 'AES-256-GCM', mac: 'AEAD' },
  TLS_AES_128_GCM_SHA256: { cipher: 'AES-128-GCM', mac: 'AEAD' },
};
const GNUTLS_GROUP: Record<string, string> = { X25519: 'GROUP-X25519', 'P-256': 'GROUP-SECP256R1', 'P-384': 'GROUP-SECP384R1' };
const GNUTLS_VERSION: Record<string, string> = { 'TLSv1.2': 'VERS-TLS1.2', 'TLSv1.3': 'VERS-TLS1.3' };

/**
 * The policy as a GnuTLS priority string. Starting from NORMAL (signature algorithms,
 * certificate types…) every version, key exchange, cipher, MAC and group is removed, then
 * only the policy's are added back. GnuTLS combines the parts into suites, and the parts
 * above combine into exactly the policy's suites (there is no ECDHE-RSA AES-256-CBC-SHA256
 * nor AES-128-CBC-SHA384 suite). %SERVER_PRECEDENCE: our order, like honorCipherOrder.
 */
export function gnutlsPriority(): string {
  const parts = [...TLS_POLICY.tls13Suites, ...TLS_POLICY.tls12Suites].map((s) => {
    const p = GNUTLS_SUITE[s];
    if (!p) throw new Error(`no GnuTLS rendering of suite ${s}`);
    return p;
  });
  const uniq = (xs: Array<string | undefined>) => [...new Set(xs.filter((x): x is string => !!x))].map((x) => `+${x}`);
  const versions = (['TLSv1.3', 'TLSv1.2'] as const).filter((v) => v >= TLS_POLICY.minVersion && v <= TLS_POLICY.maxVersion).map((v) => `+${GNUTLS_VERSION[v]}`);
  return [
    'NORMAL',
    '-VERS-ALL',
    ...versions,
    '-KX-ALL',
    ...uniq(parts.map((p) => p.kx)),
    '-CIPHER-ALL',
    ...uniq(parts.map((p) => p.cipher)),
    '-MAC-ALL',
    ...uniq(parts.map((p) => p.mac)),
    '-GROUP-ALL',
    ...TLS_POLICY.groups.map((g) => `+${GNUTLS_GROUP[g]}`),
    '%SERVER_PRECEDENCE',
  ].join(':');
}

export type TlsLibrary = 'gnutls' | 'openssl';

/**
 * The TLS directives of slapd.conf for the library slapd is linked with. With GnuTLS the
 * priority string is the whole policy (TLSProtocolMin and TLSECName are ignored there);
 * with OpenSSL, slapd 2.5 takes TLS 1.3 suites in the same TLSCipherSuite list.
 */
export function slapdTlsDirectives(lib: TlsLibrary): string[] {
  if (lib === 'gnutls') return [`TLSCipherSuite ${gnutlsPriority()}`];
  return [`TLSCipherSuite ${CIPHERS}`, 'TLSProtocolMin 3.3', `TLSECName ${TLS_POLICY.groups.join(':')}`];
}
