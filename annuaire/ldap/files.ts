// What slapd runs from, all under <dataDir>/ldap and all generated: slapd.conf, our schema,
// copies of the TLS files the child user can read, the root secret, and the database.
//
//   ldap/slapd.conf       regenerated at every start from the configuration (ldap.*, tls.*)
//   ldap/mssante.schema   copied from annuaire/ldap/mssante.schema
//   ldap/rootpw           the rootdn's secret in clear, 0600, for the platform's own tools
//   ldap/tls/             server.pem (leaf + chain), server.key (0600), ca.pem — copies,
//                         owned by the daemon user, refreshed at every start
//   ldap/db -> db-<stamp> the live mdb database; a rebuild loads a fresh db-<stamp> and
//                         swaps the symlink, so the old one serves until the new is complete
//   ldap/run/             pid and args files, endpoints.json (where the running slapd listens)

import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import type { Config } from '../../core/config/index.js';
import { fromRoot } from '../../core/paths.js';
import { MssError } from '../../core/errors.js';
import { chownTree, type ChildUser } from '../../core/supervisor.js';
import { readPemFile } from '../../certs/files.js';
import { slapdTlsDirectives, type TlsLibrary } from '../../certs/tls-policy.js';
import { trustBundle } from '../../certs/trust.js';
import { replicationDatabase, replicationModules } from './replication.js';

export interface LdapPaths {
  dir: string;
  conf: string;
  schema: string;
  secret: string;
  tlsDir: string;
  cert: string;
  key: string;
  ca: string;
  runDir: string;
  pidFile: string;
  endpointsFile: string;
  /** The symlink to the live database directory. */
  db: string;
  /** Present while slapd runs: the boot it runs in (see bootMarker). */
  bootFile: string;
}

export function ldapPaths(c: Pick<Config, 'dataDir'>): LdapPaths {
  const dir = join(c.dataDir, 'ldap');
  const tlsDir = join(dir, 'tls');
  const runDir = join(dir, 'run');
  return {
    dir,
    conf: join(dir, 'slapd.conf'),
    schema: join(dir, 'mssante.schema'),
    secret: join(dir, 'rootpw'),
    tlsDir,
    cert: join(tlsDir, 'server.pem'),
    key: join(tlsDir, 'server.key'),
    ca: join(tlsDir, 'ca.pem'),
    runDir,
    pidFile: join(runDir, 'slapd.pid'),
    endpointsFile: join(runDir, 'endpoints.json'),
    db: join(dir, 'db'),
    bootFile: join(runDir, 'running-since-boot'),
  };
}

export const rootDn = (base: string) => `cn=admin,${base}`;

/** The rootdn's secret, made on first use (0600). Only its salted hash goes into slapd.conf. */
export function rootSecret(p: LdapPaths): string {
  if (existsSync(p.secret)) return readFileSync(p.secret, 'utf8').trim();
  mkdirSync(p.dir, { recursive: true, mode: 0o750 });
  const secret = randomBytes(24).toString('base64url');
  writeFileSync(p.secret, secret + '\n', { mode: 0o600, flag: 'wx' });
  return secret;
}

/** {SSHA} as slappasswd writes it: base64(SHA-1(secret ‖ salt) ‖ salt). */
export function sshaHash(secret: string, salt = randomBytes(8)): string {
  const digest = createHash('sha1').update(secret).update(salt).digest();
  return '{SSHA}' + Buffer.concat([digest, salt]).toString('base64');
}

export interface ConfOptions {
  directory: string;
  rootPwHash: string;
  /** The TLS library slapd is linked with; false for slapadd, which does not serve and needs no certificate. */
  tls: false | TlsLibrary;
}

/**
 * Which TLS library slapd uses (ldap.tlsLibrary, or `ldd` of the binary when auto): the
 * TLS policy is written in that library's language, and a policy slapd cannot read must
 * stop the start rather than leave slapd on its library's defaults.
 */
export function slapdTlsLibrary(c: Pick<Config, 'ldap'>): TlsLibrary {
  if (c.ldap.tlsLibrary !== 'auto') return c.ldap.tlsLibrary;
  // A missing program is the problem to name, not the TLS library ldd cannot read from it.
  if (c.ldap.slapd.includes('/') && !existsSync(c.ldap.slapd)) throw new MssError('LDAP_START_FAILED', { reason: `slapd could not be started: ${c.ldap.slapd}: no such program` });
  const r = spawnSync('ldd', [c.ldap.slapd], { encoding: 'utf8' });
  const out = r.stdout ?? '';
  const gnutls = /libgnutls/.test(out);
  const openssl = /libssl\./.test(out);
  if (gnutls !== openssl) return gnutls ? 'gnutls' : 'openssl';
  const why = r.error ? r.error.message : gnutls ? 'it links both GnuTLS and OpenSSL' : 'ldd shows neither GnuTLS nor OpenSSL';
  throw new MssError('LDAP_START_FAILED', { reason: `cannot tell which TLS library ${c.ldap.slapd} uses (${why}); set ldap.tlsLibrary (MSS_LDAP_TLS_LIBRARY) to gnutls or openssl` });
}

/** slapd.conf (static format: simplest to generate, and what slapadd reads too). */
export function slapdConf(c: Config, p: LdapPaths, o: ConfOptions): string {
  const base = c.ldap.baseDn;
  const q = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  return `# Generated by the MSSante platform at each start from its configuration (ldap.*, tls.*).
# Edit the configuration, not this file.
include ${q(join(c.ldap.schemaDir, 'core.schema'))}
include ${q(join(c.ldap.schemaDir, 'cosine.schema'))}
include ${q(join(c.ldap.schemaDir, 'inetorgperson.schema'))}
include ${q(p.schema)}
modulepath ${q(c.ldap.moduleDir)}
moduleload back_mdb
${replicationModules(c)}pidfile ${q(p.pidFile)}
argsfile ${q(join(p.runDir, 'slapd.args'))}
# slapadd -q indexes with this many threads, leaving a core to the process feeding it.
tool-threads ${Math.max(1, Math.min(4, availableParallelism() - 1))}
${
  o.tls
    ? `TLSCertificateFile ${q(p.cert)}
TLSCertificateKeyFile ${q(p.key)}
TLSCACertificateFile ${q(p.ca)}
# The platform's one TLS policy (certs/tls-policy.ts), written for ${o.tls === 'gnutls' ? 'GnuTLS' : 'OpenSSL'}.
${slapdTlsDirectives(o.tls).join('\n')}
`
    : ''
}# A password (the operators', the platform's own) never crosses the wire in clear:
# simple binds need TLS. Anonymous reads need nothing.
security simple_bind=128

database mdb
suffix ${q(base)}
rootdn ${q(rootDn(base))}
rootpw ${o.rootPwHash}
directory ${q(o.directory)}
maxsize ${c.ldap.maxSize}
# PostgreSQL is the store of record and the directory a copy of it: writes are not fsynced
# one by one (a 1 % diff of a million entries would wait on 10,000 fsyncs), pages are
# flushed every 5 minutes or 4 MB. A process crash loses nothing (the page cache
# survives); after a machine crash the platform rebuilds the directory (see bootMarker).
dbnosync
checkpoint 4096 5
# Exact lookups (SMTP recipient checks by mail, by RPPS / structure id) and the substring
# search of mail clients' address books: (|(cn=*X*)(mail=*X*)(sn=*X*)(givenName=*X*)).
index objectClass eq
index mail eq,sub
index cn,sn,givenName eq,sub
index mssIdNps,mssStructureId eq
# Anonymous clients: at most 500 entries in one plain search, but a paged search (RFC 2696,
# what address books and ldapsearch -E pr= use) walks the whole public tree page by page.
# Without size.prtotal=unlimited slapd stops paged anonymous searches at the soft limit too.
limits anonymous size.soft=500 size.hard=500 size.pr=1000 size.prtotal=unlimited
limits users size=unlimited time=unlimited
# The tree is public (liste rouge entries are never loaded): everybody reads, nobody but
# the rootdn (the platform's feeder, which bypasses ACLs) writes.
# Rules are tried in order for every entry and attribute returned: the rule that serves
# nearly every search comes first, right after the exception it must not cover.
# Mail routing entries (every local mailbox, liste rouge and closed ones included): only the
# platform reads them (as the rootdn); for everybody else the subtree does not exist.
access to dn.subtree=${q(`ou=routage,${base}`)} by * none
access to dn.subtree=${q(base)} by * read
access to dn.base="" by * read
access to dn.base="cn=Subschema" by * read
access to * by * none
${replicationDatabase(c, p)}`;
}

/**
 * Copies the platform's TLS files where the daemon user can read them (leaf + chain in one
 * file, as slapd wants). slapd's CA file gets the roots of the trust bundle only: GnuTLS
 * makes every certificate of that file a trust anchor, intermediates included.
 */
export function copyTls(c: Config, p: LdapPaths): void {
  mkdirSync(p.tlsDir, { recursive: true, mode: 0o750 });
  const leaf = readPemFile(c.tls.certFile, 'server certificate (tls.certFile)', ['CERTIFICATE']);
  const key = readPemFile(c.tls.keyFile, 'server private key (tls.keyFile)', ['PRIVATE KEY', 'RSA PRIVATE KEY', 'EC PRIVATE KEY']);
  const ca = trustBundle(c.tls.caFile).anchors.map((x) => x.toString()).join('');
  const chain = existsSync(c.tls.chainFile) ? readPemFile(c.tls.chainFile, 'certificate chain (tls.chainFile)', ['CERTIFICATE']) : '';
  const withNl = (s: string) => (s.endsWith('\n') ? s : s + '\n');
  const certs = chain && !leaf.includes(chain.trim()) ? withNl(leaf) + withNl(chain) : withNl(leaf);
  writeFileSync(p.cert, certs, { mode: 0o644 });
  rmSync(p.key, { force: true });
  writeFileSync(p.key, key, { mode: 0o600 });
  writeFileSync(p.ca, ca, { mode: 0o644 });
}

/** A new, empty database directory next to the live one. */
export function newDbDir(p: LdapPaths): string {
  const d = join(p.dir, `db-${new Date().toISOString().replace(/[-:.]/g, '').replace('T', '-').slice(0, 15)}-${randomBytes(3).toString('hex')}`);
  mkdirSync(d, { mode: 0o700 });
  return d;
}

/** Where the db symlink points, or undefined when there is no database yet. */
export function liveDbDir(p: LdapPaths): string | undefined {
  try {
    return resolve(p.dir, readlinkSync(p.db));
  } catch {
    return undefined;
  }
}

/** Points the db symlink at `target` in one rename (atomic on POSIX); returns the previous target. */
export function swapDb(p: LdapPaths, target: string): string | undefined {
  const previous = liveDbDir(p);
  const tmp = `${p.db}.new`;
  rmSync(tmp, { force: true });
  symlinkSync(target.startsWith(p.dir + '/') ? target.slice(p.dir.length + 1) : target, tmp);
  renameSync(tmp, p.db);
  return previous;
}

/**
 * Writes everything slapd needs except the database, owned by the daemon user. As root,
 * the data directory must let that user through (search permission only, no listing).
 */
export function prepareFiles(c: Config, p: LdapPaths, user: ChildUser, opts: { tls: boolean }): { rootPwHash: string } {
  mkdirSync(p.runDir, { recursive: true, mode: 0o750 });
  copyFileSync(fromRoot('annuaire', 'ldap', 'mssante.schema'), p.schema);
  if (opts.tls) copyTls(c, p);
  const rootPwHash = sshaHash(rootSecret(p));
  writeFileSync(p.conf, slapdConf(c, p, { directory: p.db, rootPwHash, tls: opts.tls && slapdTlsLibrary(c) }), { mode: 0o640 });
  if (user.dropped) {
    // o+x (search, no listing) on our own data directory so the daemon user can reach its
    // files; an ancestor we do not own is the operator's to open.
    chmodSync(c.dataDir, statSync(c.dataDir).mode & 0o7777 | 0o711);
    chownTree(p.schema, user);
    chownTree(p.conf, user);
    chownTree(p.runDir, user);
    if (opts.tls) chownTree(p.tlsDir, user);
    // The ldap directory stays the platform's (the secret lives there); the group may enter.
    chownSync(p.dir, statSync(p.dir).uid, user.gid);
    chmodSync(p.dir, 0o750);
  }
  return { rootPwHash };
}

/** This boot of the machine (Linux); undefined elsewhere. */
function bootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return undefined;
  }
}

/**
 * With dbnosync, the last writes before a machine crash may never reach the disk. slapd's
 * run is marked with the boot it started in; the mark is removed at a clean stop. Found at
 * start from another boot (or where boots cannot be told apart), the database may have
 * lost writes that the change queue no longer holds: it must be rebuilt.
 */
export const bootMarker = {
  set(p: LdapPaths) {
    writeFileSync(p.bootFile, (bootId() ?? 'unknown') + '\n');
  },
  clear(p: LdapPaths) {
    rmSync(p.bootFile, { force: true });
  },
  /** True when slapd was running when the machine went down. */
  crashedMachine(p: LdapPaths): boolean {
    if (!existsSync(p.bootFile)) return false;
    const was = readFileSync(p.bootFile, 'utf8').trim();
    const now = bootId();
    return !now || was !== now;
  },
};
