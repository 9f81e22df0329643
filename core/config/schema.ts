// One declaration per setting: its type, default, documentation and (derived) environment
// variable. Everything else — validation, `mss config`, the README table — reads this.

export type Kind = 'string' | 'port' | 'int' | 'bool' | 'list' | 'size' | 'duration' | 'enum' | 'path' | 'url';

export interface Setting<T> {
  readonly kind: Kind;
  readonly default: T;
  readonly doc: string;
  readonly min?: number;
  readonly max?: number;
  readonly values?: readonly string[];
  readonly optional?: boolean;
  /** Never printed in clear (passwords, secrets). */
  readonly secret?: boolean;
}

const mk = <T>(kind: Kind, def: T, doc: string, extra: Partial<Setting<T>> = {}): Setting<T> => ({ kind, default: def, doc, ...extra });

export const str = (def: string, doc: string, extra: Partial<Setting<string>> = {}) => mk('string', def, doc, extra);
export const optStr = (doc: string, extra: Partial<Setting<string | undefined>> = {}) =>
  mk<string | undefined>('string', undefined, doc, { optional: true, ...extra });
export const url = (doc: string, extra: Partial<Setting<string | undefined>> = {}) =>
  mk<string | undefined>('url', undefined, doc, { optional: true, ...extra });
/** A file or directory; relative paths are taken from the data directory (see resolvePaths). */
export const path = (def: string, doc: string) => mk('path', def, doc);
export const port = (def: number, doc: string) => mk('port', def, doc, { min: 0, max: 65535 });
export const int = (def: number, doc: string, min = 0, max = Number.MAX_SAFE_INTEGER) => mk('int', def, doc, { min, max });
export const bool = (def: boolean, doc: string) => mk('bool', def, doc);
export const list = (def: string[], doc: string) => mk('list', def, doc);
/** Bytes; accepts 25MB, 512k, 1GiB, or a plain number. */
export const size = (def: number, doc: string) => mk('size', def, doc, { min: 0 });
/** Milliseconds; accepts 500ms, 30s, 5m, 2h, 7d, or a plain number of ms. */
export const duration = (def: number, doc: string) => mk('duration', def, doc, { min: 0 });
export const oneOf = <V extends string>(values: readonly V[], def: V, doc: string) => mk<V>('enum', def, doc, { values });

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const schema = {
  portOffset: int(
    process.getuid?.() === 0 ? 0 : 10000,
    'Added to every standard port below 1024 left at its default (25→10025, 993→10993…), so a non-root start works. Default: 0 as root, 10000 otherwise.',
    0,
    64000,
  ),
  dataDir: path('./data', 'Where the platform keeps its state: embedded database, PKI, generated daemon configs, mail.'),
  operator: {
    domain: str('mssante.localhost', 'The operator\'s main mail domain (addresses are BAL@domain).'),
    domains: list([], 'Extra mail domains this operator serves, besides operator.domain.'),
    name: str('Opérateur MSSanté de développement', 'Organisation name, used in certificate subjects and the web pages.'),
    hostname: str('', 'Public host name of this operator\'s servers (HELO/EHLO, banners, Received headers, certificate CN). Empty: operator.domain. An IDN name goes on the wire in its ASCII (xn--) form.'),
  },
  node: {
    name: str('', 'This node\'s name among several sharing one PostgreSQL (logs, the back end it registers). Empty: the machine\'s host name.'),
    roles: list(['fronts', 'mailstore'], 'What this node runs: fronts (MX, submission, IMAP proxy, webmail, admin, directory) and/or mailstore (a Dovecot back end). A node without mailstore reaches the back ends of a shared store (mailstore.cluster); one without fronts serves only its back end. The default: both, on one machine.'),
  },
  database: {
    url: url('PostgreSQL URL (postgres://user:pass@host:5432/db). Empty: the embedded PGlite database under <dataDir>/db.', { secret: true }),
    poolSize: int(10, 'Connections in the PostgreSQL pool.', 1, 1000),
    hosts: list([], 'Further PostgreSQL servers of the same cluster (host:port), e.g. the streaming replica that may be promoted. With database.url\'s host they are tried in order, and only a server that accepts writes is used (libpq\'s target_session_attrs=read-write): after a lost connection the platform finds the new primary by itself.'),
    failoverTimeout: duration(60_000, 'How long, after losing its PostgreSQL connection, the platform keeps looking for a primary that accepts writes (database.url, then database.hosts) before the waiting work fails. Meanwhile work waits for the new primary (an SMTP client gets its reply late); past it, the MX answers 4xx.'),
    connectTimeout: duration(10_000, 'How long to wait for PostgreSQL before giving up at start.'),
    vacuumInterval: duration(600_000, 'Embedded PGlite only: how often the platform vacuums it (a PostgreSQL server has autovacuum). 0: never.'),
    pgliteSharedBuffers: {
      ...size(16 * 1024 ** 2, 'Embedded PGlite only: its PostgreSQL shared_buffers (the page cache). PGlite touches all of it at start and its memory never shrinks, so it is resident for the life of the process: PostgreSQL\'s default of 128 MB costs ~115 MB of RSS more than 16 MB. The price of 16 MB is paid under load: on PGlite the MX used ~10 % more CPU per message (bench/smtp-inbound) and a 100,000-line annuaire sync ~14 % more. Raise it (e.g. 128MiB) on a busy PGlite platform with memory to spare; production runs on PostgreSQL.'),
      min: 128 * 1024,
    },
    pgliteThread: bool(true, 'Embedded PGlite only: run it on a thread of its own (core/db/pglite-thread.ts), so its statements — an import\'s slices, VACUUM — do not hold the event loop the MX, the admin API and the IMAP logins share. Off: in the platform\'s thread, as before.'),
    pgliteSettings: list([], 'Embedded PGlite only: further PostgreSQL settings as name=value (e.g. work_mem=8MB), given at its start after the platform\'s own (PGlite\'s defaults, then pgliteSharedBuffers).'),
  },
  log: {
    level: oneOf(LOG_LEVELS, 'info', 'How much to log, from fatal (least) to trace (most), or silent.'),
    format: oneOf(['auto', 'json', 'pretty'] as const, 'auto', 'Log format: JSON lines, human-readable, or pretty only on a terminal (auto).'),
  },
  http: {
    host: str('127.0.0.1', 'Address of the HTTP listener (health, metrics, TSA, admin API).'),
    port: port(8080, 'Port of the HTTP listener (0 = any free port).'),
    healthInterval: duration(5000, 'How often each /health check (database, Dovecot, slapd, SMTP, IMAP, journal) runs in the background; /health answers from the latest results, with their age.'),
    healthTimeout: duration(5000, 'A /health check not answered within this is reported failed.'),
    healthPriority: int(-5, 'Niceness of the thread answering /health relative to the platform (-20–0): below 0, a saturated machine still wakes it first, so the monitoring is answered in milliseconds. Needs CAP_SYS_NICE (root, or AmbientCapabilities=CAP_SYS_NICE in a systemd unit); without it the thread runs at the platform\'s niceness and the start logs why. 0: as the platform.', -20, 0),
    healthStale: duration(20_000, 'A /health result older than this is reported stale (503): the platform could not complete the check for that long.'),
  },
  pki: {
    dir: path('pki', 'Directory of the development PKI created on first start (relative to dataDir).'),
    autoInit: bool(true, 'Create a development PKI on first start when the TLS files below are left at their defaults.'),
    keyBits: int(3072, 'RSA key size for certificates minted by the development PKI.', 2048, 8192),
    validityDays: int(825, 'Validity of leaf certificates minted by the development PKI.', 1, 3650),
  },
  tls: {
    certFile: path('', 'Server certificate (PEM, leaf first, chain may follow). Default: <pki.dir>/server.pem.'),
    keyFile: path('', 'Server private key (PEM). Default: <pki.dir>/server.key.'),
    chainFile: path('', 'Intermediate certificates sent after the leaf (PEM). Default: <pki.dir>/intermediate.pem.'),
    caFile: path('', 'Trust bundle for client and peer certificates (PEM): the roots (self-signed: the only trust anchors) and the intermediate authorities, which complete the chain of a peer that sends its certificate alone — for IGC-Santé, `openssl pkcs7 -print_certs` of its published bundle. Default: <pki.dir>/chain.pem (intermediate + root).'),
    crlFile: path('', 'Certificate revocation list(s) (PEM). Default: <pki.dir>/crl.pem.'),
  },
  tsa: {
    certFile: path('', 'Timestamping authority certificate (extendedKeyUsage timeStamping). Default: <pki.dir>/tsa.pem.'),
    keyFile: path('', 'Timestamping authority private key. Default: <pki.dir>/tsa.key.'),
    chainFile: path('', 'Certificates between the TSA certificate and the root. Default: <pki.dir>/intermediate.pem.'),
    caFile: path('', 'Trust anchors that timestamp tokens must chain to (journal verification). Default: <pki.dir>/ca.pem.'),
    policyOid: str('1.2.250.1.999.1.1', 'TSA policy OID put in each timestamp token (a private arc for the dev PKI).'),
    url: url('External RFC 3161 TSA to seal the journal with, instead of the built-in one.'),
  },
  annuaire: {
    import: {
      reportDir: path('reports', 'Where `mss annuaire import` writes its reject reports (relative to dataDir).'),
      journalBatch: int(1000, 'Keys listed per `annuaire.changes` journal event when an import applies changes.', 1, 100_000),
      maxZipEntrySize: size(8 * 1024 ** 3, 'Largest uncompressed file accepted inside an extraction ZIP.'),
      maxUploadSize: size(4 * 1024 ** 3, 'Largest extraction (.txt or .zip) the admin API and the operator console accept as an upload; a larger one is refused (413) as it arrives, nothing of it kept. The activity file is ~800 MB.'),
      dryRunSample: int(10, 'Changes listed per table and kind of change by `mss annuaire import --dry-run`.', 0, 1_000_000),
    },
  },
  ldap: {
    enabled: bool(true, 'Run the LDAP directory (OpenLDAP slapd, fed from the annuaire) with the platform.'),
    host: str('127.0.0.1', 'Address slapd listens on. Loopback by default; the directory is public data, but exposing it is a decision.'),
    port: port(389, 'LDAP port (StartTLS available, anonymous read of the public tree). 0 = any free port.'),
    ldapsPort: port(636, 'LDAPS port (implicit TLS). 0 = any free port.'),
    baseDn: str('o=MSSante,c=FR', 'Base DN of the directory tree (mailboxes under ou=bal, persons under ou=personnes, structures under ou=structures).'),
    slapd: str('/usr/sbin/slapd', 'The slapd program.'),
    slapadd: str('/usr/sbin/slapadd', 'The slapadd program (offline bulk load used by rebuilds).'),
    schemaDir: str('/etc/ldap/schema', 'Directory of the standard OpenLDAP schemas (core, cosine, inetorgperson).'),
    moduleDir: str('/usr/lib/ldap', 'Directory of the slapd modules (back_mdb).'),
    maxSize: size(8 * 1024 ** 3, 'Largest size the directory database may grow to (mdb maxsize); 1 M entries take about 1 GB.'),
    syncInterval: duration(200, 'How often pending annuaire changes are looked for and applied to the directory.'),
    debugLevel: str('0', 'slapd -d level for its log lines (0: errors only; "stats" logs every operation).'),
    tlsLibrary: oneOf(['auto', 'gnutls', 'openssl'] as const, 'auto', 'The TLS library slapd is linked with, which decides how the TLS policy is written into slapd.conf (a GnuTLS priority string or an OpenSSL cipher list). auto: read from `ldd <ldap.slapd>` (Debian\'s slapd uses GnuTLS).'),
    role: oneOf(['standalone', 'provider', 'consumer'] as const, 'standalone', 'This node\'s part in a directory spread over several nodes (issue 17). standalone: one slapd fed from the database, no replication (the single-machine default). provider: the same, and it serves its changes to consumers (syncprov overlay); run it on the one node that feeds the directory. consumer: a local read-only replica (syncrepl refreshAndPersist over LDAPS) that recipient resolution and LDAP clients of this node read; it never feeds the directory itself.'),
    providerUrl: url('consumer only: the provider\'s LDAPS URL (ldaps://host:port). Its certificate must chain to tls.caFile and name that host.'),
    providerSecretFile: optStr('consumer only: a file holding the provider\'s directory secret (its <dataDir>/ldap/rootpw), with which the consumer binds to replicate; it is sent over TLS only. Keep it 0600.'),
  },
  auth: {
    failureDelay: duration(2000, 'Delay before answering a failed login (like Dovecot\'s auth_failure_delay); it doubles with each further recent failure of the same account, up to maxFailureDelay. Every login path (IMAP, submission, webmail, admin API) applies it.'),
    maxFailureDelay: duration(15_000, 'Longest delay before answering a failed login.'),
    failureWindow: duration(15 * 60_000, 'How long failed logins are remembered: an account\'s or address\'s count starts again after this long without a failure (old name: imap.failureWindow).'),
    maxFailuresPerAccount: int(10, 'Failed password logins on one account (any address, any front) that lock it for lockout; only this many guesses are ever checked, even sent in parallel. Certificate logins are never locked (old name: imap.maxFailuresPerAccount).', 1, 1_000_000),
    maxFailuresPerSource: int(100, 'Failed password logins from one address (any account, any front) that lock its password logins for lockout. A hospital behind one NAT address counts as one source: keep it generous (old name: imap.maxFailuresPerSource).', 1, 1_000_000),
    lockout: duration(15 * 60_000, 'How long an account or address stays locked once it reaches its limit; each lockout is journalled (auth.locked).'),
    cacheTtl: duration(15 * 60_000, 'How long a verified password is recognised without a new scrypt (like Dovecot\'s auth_cache_ttl): reconnecting clients log in at once. A changed password misses at once (the entry covers the stored hash), a disabled account is refused first, a locked one is refused by the throttle. 0 turns the cache off.'),
    cacheSize: int(50_000, 'Most people the password cache remembers at once (the oldest entries go first); about 150 bytes each.', 1, 10_000_000),
    attemptTimeout: duration(60_000, 'Longest a login waits for its turn when that many checks of its account or address are already running, and longest a check holds its place (a process that died mid-check frees it after this).'),
  },
  smtp: {
    host: str('127.0.0.1', 'Address the SMTP servers listen on (0.0.0.0 or :: to face the network).'),
    mxPort: port(25, 'MX port: mail from other operators, STARTTLS and a client certificate required (0 = any free port).'),
    submissionPort: port(587, 'Submission port with STARTTLS (RFC 6409) for people and applications (0 = any free port).'),
    submissionsPort: port(465, 'Submission port with implicit TLS (RFC 8314) (0 = any free port).'),
    maxSize: size(25_000_000, 'Largest message accepted (announced with SIZE); 25 MB is the Mon Espace Santé limit.'),
    ratePerHour: int(600, 'Messages per hour one person or application may submit (0 = no limit).', 0, 1_000_000),
    maxRecipients: int(100, 'Recipients accepted in one mail transaction (MX and submission); the next ones get 452 4.5.3 and the client sends them in another transaction. RFC 5321 asks for at least 100.', 100, 100_000),
    maxErrors: int(20, 'Refused commands (4xx/5xx replies) one connection may collect before it is answered 421 4.7.0 and closed; an accepted message starts the count again. Failed logins are left to the login throttle.', 1, 10_000),
    unknownRecipientLimit: int(100, 'Unknown or closed local recipients one peer (its liste blanche domain, or the submitting person) and one client address may ask for within unknownRecipientWindow, across connections; beyond it every recipient from them gets 450 4.7.1 until the window slides (address harvesting).', 1, 1_000_000),
    unknownRecipientWindow: duration(3_600_000, 'Window over which unknown recipients are counted per peer and per client address.'),
    deliveryConcurrency: int(8, 'Messages delivered to Dovecot over LMTP at once.', 1, 256),
    routes: list([], 'Static routes to other operators, domain=host:port (e.g. peer.mssante.fr=mx.peer.fr:25); other domains use DNS MX records.'),
    outboundConcurrency: int(8, 'Messages sent to other operators at once.', 1, 256),
    outboundMaxAge: duration(5 * 86_400_000, 'How long a message to another operator is retried before it is bounced (DSN).'),
    retryBase: duration(60_000, 'First retry delay after a temporary failure; doubles each time, up to an hour.'),
    patientDomain: str('patient.mssante.fr', 'Domain of the patients\' boxes in Mon Espace Santé (<INS>@domain): at submission the INS is checked (15 characters, the NIR and its key) and the message leaves through the outbound queue like mail to any operator on the liste blanche.'),
    patientMaxSize: size(25_000_000, 'Largest message to a patient\'s Mon Espace Santé box (its operator\'s limit); a bigger one is refused at RCPT (from MAIL FROM SIZE=) or at the end of DATA with 552 5.3.4.'),
  },
  imap: {
    enabled: bool(true, 'Run the IMAP proxy (imap-proxy/) in front of Dovecot: TLS, logins, BAL authorisation, traces.'),
    host: str('127.0.0.1', 'Address the IMAP proxy listens on (0.0.0.0 or :: to face the network).'),
    port: port(993, 'IMAPS port, implicit TLS (RFC 8314) (0 = any free port).'),
    starttlsPort: port(143, 'IMAP port with STARTTLS; logins are refused (LOGINDISABLED) until TLS is on (0 = any free port).'),
    requestClientCertificate: bool(true, 'Ask clients for a certificate during the TLS handshake (optional for them): personal (CPS-like) and application certificates then log in with AUTHENTICATE EXTERNAL.'),
    preAuthTimeout: duration(60_000, 'How long a connection may stay without logging in before it is closed (slow clients, slow-loris).'),
    maxLineLength: size(8192, 'Longest command line accepted before login; a longer one closes the connection.'),
    maxLiteralSize: size(8192, 'Largest literal ({n}) accepted before login (a user name or password).'),
    maxConnections: int(20_000, 'IMAP connections the proxy holds at once (each also holds one to Dovecot).', 1, 10_000_000),
    maxPreAuthPerSource: int(1000, 'Connections from one address that may be waiting to log in at once: 5 % of maxConnections, so one address cannot hold the server with idle connections (slow-loris) while a hospital\'s clients behind one NAT address all log in at once.', 1, 1_000_000),
    workers: int(1, 'Processes holding the IMAP connections. 1: the platform\'s own. More: that many worker processes, connections dealt in turn, each under its own open-file limit (a session holds two descriptors); logins (and the auth throttle\'s database calls) and the journal stay in the platform\'s process; maxConnections and maxPreAuthPerSource are shared out between them.', 1, 64),
    backendTimeout: duration(15_000, 'How long connecting and logging in to Dovecot may take before the login is answered NO [UNAVAILABLE].'),
    traceFlushInterval: duration(2000, 'Traces of one session (reads, deletions, moves…) are gathered and journalled at least this often.'),
  },
  mailstore: {
    dovecot: str('/usr/sbin/dovecot', 'The Dovecot program (Debian packages dovecot-imapd and dovecot-lmtpd).'),
    doveadm: str('/usr/bin/doveadm', 'Dovecot\'s admin tool, which `mss backup` and `mss restore` copy the mail with (doveadm backup, i.e. dsync).'),
    mailDir: path('mail', 'Where Dovecot keeps the mail (Maildir per BAL), relative to dataDir.'),
    imapPort: port(0, 'Dovecot\'s IMAP port on 127.0.0.1, reached only by the IMAP proxy (0 = any free port).'),
    lmtpPort: port(0, 'Dovecot\'s LMTP port on 127.0.0.1, used by the SMTP front to deliver (0 = any free port).'),
    masterUser: str('mss-proxy', 'Dovecot master user the IMAP proxy and webmail log in as (BAL*master).'),
    maxSessions: int(12000, 'IMAP sessions Dovecot accepts at once (idle clients are hibernated).', 10, 1_000_000),
    hibernateTimeout: duration(30_000, 'How long an IDLE session stays in its own imap process before it is hibernated.'),
    maxUserIpConnections: int(200, 'IMAP sessions per BAL from one address: everyone arrives through the proxy from 127.0.0.1.', 1, 100_000),
    fullTextSearch: bool(true, 'Give Dovecot a full-text index (Debian package dovecot-fts-xapian), updated as mail is delivered, so a search of message text (IMAP SEARCH TEXT/BODY, the webmail\'s q=) reads the index instead of every message. Without the plugin the platform warns at start and searches by scanning. The index matches words of 3 characters or more (header fields also by any 3 to 20 of their characters): a query of shorter words, or a phrase, may find more messages than a scan would (every word of a query must be in the message, in any order).'),
    pluginDir: str('/usr/lib/dovecot/modules', 'Dovecot\'s plugin directory (its mail_plugin_dir), where the platform looks for the full-text search plugin.'),
    cluster: bool(false, 'Several nodes share the mail store (issue 17): each box lives on one Dovecot back end at a time, named in PostgreSQL (mailstore_placement), and every node\'s LMTP delivery and IMAP proxy reach it there over TLS with the master user. A node with the mailstore role runs one back end and registers it (mailstore_backends). false: the embedded single-machine store, on loopback, as ever.'),
    backendName: str('', 'Name of this node\'s back end in the shared store (mailstore.cluster, mailstore role). Empty: node.name.'),
    listen: str('127.0.0.1', 'Address this node\'s Dovecot back end listens on and is reached at by the other nodes (mailstore.cluster): a private network address; its certificate must name it (IP or DNS subject alternative name).'),
    doveadmPort: port(0, 'Port of this back end\'s doveadm server (TCP+TLS), into which its pair replicates (mailstore.cluster; 0 = any free port).'),
    partner: str('', 'The pair\'s other back end, name=host:doveadmPort (mailstore.cluster): Dovecot\'s replicator keeps a copy of every box there (dsync), and the fronts fall back to it when this back end cannot be reached. Empty: no replica.'),
    catchUpInterval: duration(3_600_000, 'How often a back end of a pair (mailstore.cluster, mailstore role) runs `doveadm sync` for every box of the pair as a safety net, besides after each start or restart of its Dovecot (when it catches up on what its pair took meanwhile). 0: only after a start.'),
    trustedNetworks: list([], 'Addresses (CIDR) of the front nodes, whose ID x-originating-ip this back end believes (mailstore.cluster); loopback always.'),
    secretFile: path('', 'File holding the secret every node of a shared store has in common (mailstore.cluster): the master user\'s password and doveadm\'s are derived from it. Empty: <dataDir>/dovecot/master-secret (one node only).'),
  },
  crypt: {
    masterKey: optStr('The key that protects the platform\'s encryption keys (kept wrapped in the database, table crypt_keyring, and copied to <dataDir>/keys for Dovecot): the same on every node of one database. 32 bytes as 64 hex digits or base64 (e.g. openssl rand -hex 32). Keep it outside the data directory and its backups. Empty: <dataDir>/keys/master.key, generated by the first start: for development only, since whoever holds the data directory then holds the key.', { secret: true }),
    mailStore: bool(false, 'Encrypt the mail Dovecot stores (its mail_crypt plugin, global RSA keys from the keyring, copied to <dataDir>/keys): each message file is encrypted as it is saved and decrypted as it is read. Messages saved before stay readable either way; mss backup/restore keep encrypted mail encrypted. Off by default, a trade-off the operator makes: the full-text index would hold the words of messages in clear, so it is not kept while this is on (searches then read every message of the folder), and inbound mail costs more CPU (bench/encryption; figures in the README).'),
    spool: bool(true, 'Encrypt the bodies of messages waiting in the database (spool and outbound queue) with AES-256-GCM under the platform\'s key, the row bound in; decrypted only to deliver them. Rows written before stay readable.'),
    keyringPoll: duration(30_000, 'PostgreSQL only: how often a node reads the keyring from the database (table crypt_keyring), so that a `mss crypt rotate` run on any node reaches its Dovecot (restarted with the new key pair) within this delay. A spool row sealed with a generation the node does not hold yet makes it read the keyring at once. 0: only then, and at start.'),
  },
  admin: {
    enabled: bool(true, 'Serve the admin HTTP API (mailboxes, members, certificates, imports, audit trail) on its own HTTPS listener.'),
    host: str('127.0.0.1', 'Address of the admin API listener. Loopback by default: it carries credentials; reach it through a VPN or an SSH tunnel.'),
    port: port(8443, 'HTTPS port of the admin API (0 = any free port).'),
    tokenTtl: duration(15 * 60_000, 'How long a bearer token from POST /api/v1/login stays valid.'),
    bootstrapLogin: str('admin', 'Login of the national admin account created on the first start; its generated password is printed once and written to <dataDir>/admin-bootstrap.txt (mode 0600).'),
    requireTotp: bool(true, 'National admin accounts must have a second factor (TOTP): one without it may log in only to enrol it (the console shows the enrolment first; POST /api/v1/me/totp then a first code), nothing else. Regional accounts may enrol one; once enrolled, every login of the account needs its code. false: a second factor is optional for every account.'),
    certificateWarning: duration(30 * 86_400_000, 'The operator console\'s dashboard warns of a certificate (a technical box\'s, the platform\'s own) that expires within this time.'),
  },
  fhir: {
    enabled: bool(true, 'Serve the annuaire as FHIR R4 (annuaire/fhir: Practitioner, PractitionerRole, Organization; read and search, liste rouge never served) on its own HTTPS listener, base /fhir/r4. Its clients authenticate with a certificate of the trust space (mutual TLS).'),
    host: str('127.0.0.1', 'Address of the FHIR API listener (0.0.0.0 or :: to face the network).'),
    port: port(8444, 'HTTPS port of the FHIR API (0 = any free port).'),
    publicUrl: url('The FHIR base URL clients reach (e.g. https://annuaire.example.fr/fhir/r4), used in Bundle links and fullUrls when a proxy stands in front. Empty: https://<fhir.host>:<port>/fhir/r4.'),
  },
  publication: {
    url: url('Endpoint of the national annuaire that BAL publications (FHIR Patch in a transaction Bundle) are POSTed to. Empty: they are queued, not sent.'),
    token: optStr('Bearer token sent with each publication request.', { secret: true }),
    interval: duration(5_000, 'How often the publication queue is looked at.'),
    maxAttempts: int(8, 'Attempts before a publication is left failed; retries back off exponentially from publication.retryBase.', 1, 1000),
    retryBase: duration(30_000, 'Delay before the first retry of a failed publication (doubling each time, at most an hour).'),
    timeout: duration(15_000, 'How long one publication request may take.'),
  },
  webmail: {
    enabled: bool(true, 'Serve the webmail API (webmail-api/): mail over HTTPS/JSON for web pages and hospital software (DPI), as the person, through the platform\'s own IMAP and submission.'),
    host: str('127.0.0.1', 'Address of the webmail API listener (0.0.0.0 or :: to face the network).'),
    port: port(9443, 'HTTPS port of the webmail API (0 = any free port).'),
    tokenTtl: duration(30 * 60_000, 'How long a session token from POST /api/v1/login stays valid without use (each request extends it).'),
    maxTokenAge: duration(12 * 3_600_000, 'Longest life of a session token, however often it is used.'),
    imapIdle: duration(60_000, 'How long an unused IMAP connection kept for a session stays open.'),
    workers: int(1, 'Processes serving the webmail API. 1 or more: that many worker processes, started with the first webmail connection (an idle platform holds none), HTTPS connections dealt in turn — the API parses and sanitises mail and speaks IMAP to the proxy, off the event loop of the platform\'s process, which keeps what needs the database (logins, session checks, the boxes of a person, the journal) and answers the workers. 0: in the platform\'s own process.', 0, 64),
    nice: int(5, 'Niceness of the webmail worker processes above the platform\'s (0–19; 0: the same). Above 0, a saturated webmail yields the cores to what has latency promises — /health, the MX\'s 250s, IMAP logins — and takes them back when they are idle (Linux shares the CPU by weight: nice 5 weighs a third of nice 0). Only with webmail.workers ≥ 1.', 0, 19),
    sessionCacheTtl: duration(5_000, 'How long a verified session token is taken without asking the database again (a logout drops it at once; a session closed elsewhere — password change, account disabled — stops working within this time). 0: every request asks.'),
    maxUpload: size(25_000_000, 'Largest message (with its attachments) that may be sent through the API.'),
    renderCache: size(32 * 1024 * 1024, 'Messages already read (parsed, HTML sanitised) kept by each webmail worker, in bytes of their JSON: a message read again — by the same person or by another member of the box — is not parsed again (a message never changes under its UID). A read answered from it still asks IMAP for the message (its flags and first byte), so the proxy\'s decision and read trace apply as for a first read. 0: none kept.'),
    readWhole: size(65_536, 'A message up to this size is read whole in one IMAP FETCH; a bigger one by its header, text parts and attachment sizes only (BODYSTRUCTURE), so reading it never downloads its attachments beyond this many bytes.'),
  },
  dmp: {
    url: url('ITI-41 endpoint of the DMP (Provide and Register Document Set-b). Empty: the local stand-in DMP (dmp.standin) when it runs, else no hand-off.'),
    standin: bool(true, 'Run the local stand-in DMP (an ITI-41 SOAP server that checks the metadata) on dmp.standinPort: the real DMP is out of reach here.'),
    standinHost: str('127.0.0.1', 'Address of the stand-in DMP.'),
    standinPort: port(0, 'Port of the stand-in DMP (0 = any free port).'),
    timeout: duration(30_000, 'How long one ITI-41 submission may take.'),
    ruleInterval: duration(5_000, 'How often mailboxes with a DMP rule are looked at for new documents.'),
    maxXdmEntries: int(100, 'Most files accepted in an IHE_XDM.zip.', 1, 100_000),
    maxXdmEntrySize: size(20 * 1024 ** 2, 'Largest uncompressed file accepted in an IHE_XDM.zip.'),
    maxXdmTotalSize: size(50 * 1024 ** 2, 'Largest uncompressed total accepted for an IHE_XDM.zip.'),
    maxXdmRatio: int(100, 'Highest compression ratio accepted for a file of an IHE_XDM.zip (zip bombs compress far better).', 1, 100_000),
  },
  psc: {
    issuer: url('Pro Santé Connect\'s issuer (its discovery document is <issuer>/.well-known/openid-configuration), e.g. https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet. Empty: the local stand-in PSC (psc.standin) when it runs, else no PSC login.'),
    clientId: str('mss-operateur', 'This platform\'s client id at PSC (given when the service is registered with the ANS).'),
    clientSecret: optStr('This platform\'s client secret at PSC (client_secret_basic). The stand-in uses its own when empty.', { secret: true }),
    audience: str('', 'The audience (aud) an access token presented on IMAP or submission must carry. Empty: psc.clientId.'),
    scopes: list(['openid', 'scope_all'], 'Scopes asked for at the authorisation endpoint (PSC: openid scope_all).'),
    acrValues: str('eidas1', 'acr_values asked for at the authorisation endpoint (PSC: eidas1, for CPS card and e-CPS alike).'),
    idClaims: list(['SubjectNameID', 'preferred_username'], 'Claims that may carry the professional\'s national id ("8" + RPPS), looked at in this order (PSC: SubjectNameID in userinfo and the id token; the access token\'s preferred_username).'),
    algorithms: list(['RS256', 'PS256', 'ES256'], 'Signature algorithms accepted on tokens (never "none", never HMAC).'),
    introspection: bool(false, 'Check access tokens presented on IMAP or submission with PSC\'s introspection endpoint (RFC 7662) instead of locally against its JWKS.'),
    clockTolerance: duration(30_000, 'Clock difference tolerated on a token\'s exp / nbf / iat.'),
    standin: bool(true, 'Run the local stand-in PSC (an OpenID provider, oidc-provider, with the demo professionals) when psc.issuer is empty: the real PSC is out of reach here.'),
    standinHost: str('127.0.0.1', 'Address of the stand-in PSC.'),
    standinPort: port(0, 'Port of the stand-in PSC (HTTPS with the platform\'s certificate; 0 = any free port).'),
  },
  demo: {
    enabled: bool(true, 'On a first `mss start` with no local account yet, create demo data — a small annuaire, a personal box, an organisational box with two members, a lab\'s technical box with its certificate, a few messages (one carrying an IHE_XDM result) — and print the logins. Set MSS_DEMO_ENABLED=false for a real deployment.'),
  },
  journal: {
    sealBatch: int(1000, 'Seal the journal at the latest every N events (one timestamp token per batch, Merkle root).', 1, 1_000_000),
    sealInterval: duration(2_000, 'Seal pending journal events at least this often.'),
    unsealedGrace: duration(60_000, '`mss journal verify` fails on an event left unsealed longer than this. A running platform seals within sealInterval (and every `mss` command before it exits), so only a stopped or failing sealer leaves older ones.'),
  },
} as const;

export type Schema = typeof schema;
type ValueOf<S> = S extends Setting<infer T> ? T : { -readonly [K in keyof S]: ValueOf<S[K]> };
export type Config = ValueOf<Schema>;
