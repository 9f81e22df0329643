// The Dovecot configuration the platform generates: a pure function of its inputs, so it
// can be tested and read without starting anything. Facts behind each line are in
// ../shared/REFERENCE.md ("Running Dovecot 2.3 unprivileged").

export interface DovecotParams {
  /** Short directory for sockets: unix socket paths are limited to 107 bytes. */
  baseDir: string;
  stateDir: string;
  mailDir: string;
  /** The unprivileged user (and group) every Dovecot process runs as. */
  user: string;
  group: string;
  imapPort: number;
  lmtpPort: number;
  /** passwd-file with the proxy's master user, SSHA512-hashed. */
  masterUsersFile: string;
  /**
   * Password of the non-master passdb: unknown to everyone, so nobody can log in
   * directly as a BAL; the proxy logs in with the master user instead.
   */
  unusablePassword: string;
  hibernateTimeoutSec: number;
  maxSessions: number;
  maxUserIpConnections: number;
  postmaster: string;
  hostname: string;
  /** Largest message a box takes, however it arrives (IMAP APPEND, LMTP): the MX's limit (smtp.maxSize). */
  maxMailSize: number;
  /**
   * Full-text index with the fts-xapian plugin (Debian dovecot-fts-xapian), when it is
   * installed: SEARCH TEXT/BODY then read an index instead of every message of the folder.
   * False: no index (Dovecot scans, the answers are the same, only slower on big folders).
   */
  fts: boolean;
  /**
   * A back end of a store shared by several nodes (mailstore.cluster): Dovecot listens on
   * `listen`, speaks TLS only (the platform's certificate), trusts the fronts' addresses
   * for their client's address (ID x-originating-ip), and replicates each box to its pair.
   */
  cluster?: DovecotCluster;
  /**
   * Encryption at rest with the mail_crypt plugin (core/crypt/keyring.ts): the global key
   * pairs, the current one first; `encrypt` false keeps the keys to read mail encrypted
   * before but saves new mail in clear (crypt.mailStore turned off). Undefined: no keys.
   */
  mailCrypt?: { keys: MailCryptKey[]; encrypt: boolean };
}

export interface DovecotCluster {
  listen: string;
  /** Addresses of the front nodes (CIDR), besides loopback. */
  trustedNetworks: string[];
  certFile: string;
  keyFile: string;
  /** CA the pair's certificate must chain to (replication connects out with TLS). */
  caFile: string;
  /** doveadm's TCP+TLS port: the pair's replicator syncs into this one through it. */
  doveadmPort: number;
  doveadmPassword: string;
  /** The pair's other back end, host:doveadmPort (the host as its certificate names it); absent: no replica. */
  replica?: string;
}

export interface MailCryptKey {
  publicPemFile: string;
  /** PKCS#8-encrypted private key. */
  privatePemFile: string;
  /** Environment variable of the Dovecot process that holds the private key's password. */
  passwordEnv: string;
}

// Global keys (not per-user folder keys): every message file is encrypted to the current
// public key with a key of its own, and carries the id of the key pair it was made with, so
// the older private keys listed after it keep older mail readable after a rotation. The
// private keys' passwords reach Dovecot only through its environment (imported below),
// never written to a file: %{env:…} is expanded when a mail user is set up.
function mailCryptPlugin({ keys, encrypt }: { keys: MailCryptKey[]; encrypt: boolean }, q: (s: string) => string): string {
  // save_version 0: files are saved in clear, and encrypted ones still read.
  return `  mail_crypt_save_version = ${encrypt ? 2 : 0}\n  mail_crypt_global_public_key = <${q(keys[0].publicPemFile)}\n`;
}

// The private keys only for the processes that read mail: LMTP sets up a mail user (and so
// loads every global key) for each recipient of each message, and saving needs the public
// key alone — loading and decrypting the private keys there was a third of mail_crypt's
// cost per delivered message (bench/encryption). IMAP, doveadm (backup, dsync replication)
// and the full-text indexer read.
const READERS = ['imap', 'doveadm', 'indexer-worker'];
function mailCryptReaders(keys: MailCryptKey[], q: (s: string) => string): string {
  const n = (i: number) => (i === 0 ? '' : String(i + 1));
  const lines = keys.map((k, i) => `    mail_crypt_global_private_key${n(i)} = <${q(k.privatePemFile)}\n    mail_crypt_global_private_key${n(i)}_password = %{env:${q(k.passwordEnv)}}\n`).join('');
  return READERS.map((p) => `protocol ${p} {\n  plugin {\n${lines}  }\n}\n`).join('');
}

/** Dovecot's default import_environment, plus the private keys' passwords. */
const importEnvironment = (keys: MailCryptKey[]) => ['TZ', 'CORE_OUTOFMEM', 'CORE_ERROR', 'LISTEN_PID', 'LISTEN_FDS', ...keys.map((k) => k.passwordEnv)].join(' ');

// Full-text search (issue 13: a webmail search must not read every message of the folder).
// Messages are indexed as they are saved (LMTP delivery, APPEND, COPY) by the indexer
// processes, so a first search finds the index ready. fts-xapian indexes header fields by
// their substrings of 2 to 20 characters and body text by words of 2 characters or more:
// the plugin's default of 3 dropped what professionals do search for (a result or room
// number, "12"). One-character words are never indexed. Not enforced: a search
// whose index is missing or broken falls back to Dovecot's scan rather than failing.
const FTS_PLUGIN = `  fts = xapian
  fts_xapian = partial=2 full=20 verbose=0
  fts_autoindex = yes
  fts_autoindex_exclude = \\Trash
  fts_autoindex_exclude2 = \\Junk
  fts_enforced = no
`;
const FTS_SERVICES = `service indexer-worker {
  # Xapian's writer holds up to 250 MB before it commits (the plugin's lowmemory default).
  vsz_limit = 1G
}
`;

export function dovecotConfig(p: DovecotParams): string {
  const q = (s: string) => {
    if (/[\s"#{}\\]/.test(s)) throw new Error(`unsafe value for the Dovecot configuration: ${JSON.stringify(s)}`);
    return s;
  };
  return `# Generated by the MSSanté platform (mailstore/dovecot-config.ts). Do not edit:
# it is rewritten at every start. Change the platform's settings instead.
protocols = imap lmtp
listen = ${p.cluster ? q(p.cluster.listen) : '127.0.0.1'}
base_dir = ${q(p.baseDir)}
state_dir = ${q(p.stateDir)}
instance_name = mss
hostname = ${q(p.hostname)}
postmaster_address = ${q(p.postmaster)}
log_path = /dev/stderr
info_log_path = /dev/stderr
log_timestamp =
${p.mailCrypt ? `import_environment = ${importEnvironment(p.mailCrypt.keys)}\n` : ''}
${p.cluster ? clusterTls(p.cluster, q) : `# The IMAP proxy in front terminates TLS; Dovecot only listens on loopback.
ssl = no
disable_plaintext_auth = no
# The proxy passes the real client address with ID x-originating-ip.
login_trusted_networks = 127.0.0.1/32 ::1/128
`}# The proxy throttles failed logins itself; everyone reaches Dovecot from 127.0.0.1.
auth_failure_delay = 0
mail_max_userip_connections = ${p.maxUserIpConnections}

default_internal_user = ${q(p.user)}
default_internal_group = ${q(p.group)}
default_login_user = ${q(p.user)}

mail_location = maildir:${q(p.mailDir)}/%Ld/%Ln/Maildir
mail_fsync = always
namespace inbox {
  inbox = yes
  separator = /
  mailbox Drafts {
    special_use = \\Drafts
    auto = subscribe
  }
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
  mailbox Trash {
    special_use = \\Trash
    auto = subscribe
  }
  mailbox Junk {
    special_use = \\Junk
    auto = create
  }
}

# One message is at most maxMailSize, however it arrives: without this an IMAP APPEND (by a
# person, or by anyone holding a webmail token) took any size the client announced. There
# is no storage quota (rule 0 = unlimited); the quota plugin only carries the size limit,
# checked against the announced literal size before a byte of it is read.
mail_plugins = $mail_plugins quota${p.fts ? ' fts fts_xapian' : ''}${p.mailCrypt ? ' mail_crypt' : ''}${p.cluster?.replica ? ' notify replication' : ''}
plugin {
  quota = count:User quota
  quota_vsizes = yes
  quota_rule = *:storage=0
  quota_max_mail_size = ${p.maxMailSize}
${p.fts ? FTS_PLUGIN : ''}${p.mailCrypt ? mailCryptPlugin(p.mailCrypt, q) : ''}${p.cluster?.replica ? `  mail_replica = tcps:${q(p.cluster.replica)}\n` : ''}}
${p.fts ? FTS_SERVICES : ''}${p.cluster ? clusterServices(p.cluster, p.user, q) : ''}
auth_master_user_separator = *
passdb {
  driver = passwd-file
  args = scheme=SSHA512 ${q(p.masterUsersFile)}
  master = yes
  result_success = continue
}
passdb {
  driver = static
  args = password=${q(p.unusablePassword)}
}
userdb {
  driver = static
  args = home=${q(p.mailDir)}/%Ld/%Ln
}

# Many idle clients (IDLE) through the proxy: hibernate them after a while so each does
# not hold an imap process.
imap_hibernate_timeout = ${p.hibernateTimeoutSec}s
default_client_limit = ${p.maxSessions + 100}
default_process_limit = ${p.maxSessions + 100}

service imap-login {
  chroot =
  # High-performance mode: a few long-lived login processes, each taking many logins at
  # once (the IMAP proxy's); once logged in, a session belongs to its imap process.
  service_count = 0
  process_min_avail = 1
  process_limit = 4
  client_limit = ${p.maxSessions}
  inet_listener imap {
    address = ${p.cluster ? q(p.cluster.listen) : '127.0.0.1'}
    port = ${p.imapPort}${p.cluster ? '\n    ssl = yes' : ''}
  }
  inet_listener imaps {
    port = 0
  }
}
service imap {
  process_limit = ${p.maxSessions}
  # A few imap processes started ahead: a login is handed to one already running instead of
  # waiting for a fork and exec (most of a master login's time; issue 13, logins).
  process_min_avail = 4
  unix_listener imap-master {
    user = ${q(p.user)}
  }
}
service imap-hibernate {
  client_limit = ${p.maxSessions}
  unix_listener imap-hibernate {
    mode = 0600
    user = ${q(p.user)}
  }
}
service imap-urlauth-login {
  # Not used (no imap_urlauth_host); kept small so it does not inflate auth and anvil's needs.
  process_limit = 1
}
service lmtp {
  # The SMTP front delivers with at most smtp.deliveryConcurrency (≤ 256) connections.
  process_limit = 256
  inet_listener lmtp {
    address = ${p.cluster ? q(p.cluster.listen) : '127.0.0.1'}
    port = ${p.lmtpPort}${p.cluster ? '\n    ssl = yes' : ''}
  }
  unix_listener lmtp {
    mode = 0
  }
}
service anvil {
  chroot =
}
protocol lmtp {
  # Recipients are validated by the SMTP front against the annuaire before LMTP.
  lmtp_save_to_detail_mailbox = no
}
${p.mailCrypt ? mailCryptReaders(p.mailCrypt.keys, q) : ''}`;
}

// A back end other nodes reach over the network: TLS only, with the platform's certificate
// (its PKI issues it), and TLS 1.2+ with forward secrecy as everywhere else.
function clusterTls(c: DovecotCluster, q: (s: string) => string): string {
  const nets = ['127.0.0.1/32', '::1/128', ...c.trustedNetworks.map(q)];
  return `# A back end of a shared store (mailstore.cluster): the fronts of every node reach it
# over TLS (implicit, on the IMAP and LMTP listeners), never in clear.
ssl = required
ssl_cert = <${q(c.certFile)}
ssl_key = <${q(c.keyFile)}
ssl_client_ca_file = ${q(c.caFile)}
ssl_min_protocol = TLSv1.2
ssl_cipher_list = ECDHE+AESGCM:ECDHE+AES256:ECDHE+AES128:!aNULL:!SHA1
ssl_prefer_server_ciphers = yes
disable_plaintext_auth = yes
# The fronts pass their client's real address with ID x-originating-ip.
login_trusted_networks = ${nets.join(' ')}
`;
}

// Dovecot's own replication (dsync): the aggregator hears of every change to a box (notify
// + replication plugins), the replicator syncs that box into the pair's doveadm server over
// TCP+TLS; the pair does the same the other way, so either copy can serve the box.
function clusterServices(c: DovecotCluster, user: string, q: (s: string) => string): string {
  return `doveadm_password = ${q(c.doveadmPassword)}
doveadm_port = ${c.doveadmPort}
service doveadm {
  inet_listener {
    address = ${q(c.listen)}
    port = ${c.doveadmPort}
    ssl = yes
  }
}
${
  c.replica
    ? `replication_full_sync_interval = 1h
replication_max_conns = 10
service replicator {
  # Unprivileged: no chroot (Dovecot's default for these is base_dir).
  chroot =
  process_min_avail = 1
  unix_listener replicator-doveadm {
    mode = 0600
    user = ${q(user)}
  }
}
service aggregator {
  chroot =
  fifo_listener replication-notify-fifo {
    user = ${q(user)}
  }
  unix_listener replication-notify {
    user = ${q(user)}
  }
}
`
    : ''
}`;
}
