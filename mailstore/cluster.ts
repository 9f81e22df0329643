// The node's part of the mail store, by its roles (issue 17). Embedded (the default): the
// one Dovecot on loopback holds every box, exactly as on a single machine. Shared
// (mailstore.cluster): a node with the mailstore role runs one back end — TLS only, its
// replica kept by Dovecot's replicator on its pair — and registers it in PostgreSQL; every
// node with the fronts reaches each box where the map (placement.ts) says it is.
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Config } from '../core/config/index.js';
import type { Db } from '../core/db/index.js';
import type { Logger } from '../core/logger.js';
import { freePort } from '../core/net.js';
import type { Supervisor } from '../core/supervisor.js';
import type { Keyring } from '../core/crypt/keyring.js';
import { startMailstore, type Mailstore } from './dovecot.js';
import { BACKEND_FRESH_SECONDS, heartbeatBackend, Placement, registerBackend } from './placement.js';

export const ROLES = ['fronts', 'mailstore'] as const;

export const nodeName = (config: Config) => config.node.name || hostname();

/** The roles as configured, checked: a clear sentence for a role that does not exist or a combination that cannot work. */
export function nodeRoles(config: Config): { fronts: boolean; mailstore: boolean } {
  const bad = config.node.roles.filter((r) => !(ROLES as readonly string[]).includes(r));
  if (bad.length) throw new Error(`node.roles: unknown role ${bad.map((r) => JSON.stringify(r)).join(', ')} (the roles are ${ROLES.join(', ')})`);
  const roles = { fronts: config.node.roles.includes('fronts'), mailstore: config.node.roles.includes('mailstore') };
  if (!roles.fronts && !roles.mailstore) throw new Error('node.roles is empty: a node runs the fronts, the mailstore, or both');
  if (!config.mailstore.cluster && !(roles.fronts && roles.mailstore)) {
    throw new Error('node.roles: a node with only one of fronts and mailstore shares its store with others: set mailstore.cluster=true (MSS_MAILSTORE_CLUSTER) and start the other roles on other nodes');
  }
  return roles;
}

/**
 * A node without the fronts serves its back end only: the listeners the fronts would open
 * (MX, submission, IMAP, webmail, admin, FHIR, the directory, the stand-ins) are off.
 */
export function withRoles(config: Config): Config {
  if (nodeRoles(config).fronts) return config;
  return {
    ...config,
    imap: { ...config.imap, enabled: false },
    webmail: { ...config.webmail, enabled: false },
    admin: { ...config.admin, enabled: false },
    fhir: { ...config.fhir, enabled: false },
    ldap: { ...config.ldap, enabled: false },
    dmp: { ...config.dmp, standin: false },
    psc: { ...config.psc, standin: false },
  };
}

export async function startMailstoreRole(config: Config, log: Logger, supervisor: Supervisor, db: Db, keyring?: Keyring): Promise<Mailstore> {
  const roles = nodeRoles(config);
  if (!config.mailstore.cluster) return startMailstore(config, log, supervisor, { keyring });

  const m = config.mailstore;
  const name = m.backendName || nodeName(config);
  const partner = parsePartner(m.partner);
  const own = roles.mailstore
    ? await startMailstore(config, log, supervisor, {
        keyring,
        cluster: { listen: m.listen, trustedNetworks: m.trustedNetworks, doveadmPort: m.doveadmPort || (await freePort(m.listen)), ...(partner ? { replica: `${partner.host}:${partner.port}` } : {}) },
      })
    : undefined;
  let beat: NodeJS.Timeout | undefined;
  if (own) {
    await registerBackend(db, { name, host: m.listen, imapPort: own.imap.port, lmtpPort: own.lmtp.port, doveadmPort: own.doveadmPort!, ...(partner ? { partner: partner.name } : {}) });
    beat = setInterval(() => heartbeatBackend(db, name).catch((e) => log.warn({ err: e }, 'could not refresh this back end in mailstore_backends')), (BACKEND_FRESH_SECONDS * 1000) / 3);
    beat.unref();
  }
  const secretFile = m.secretFile || `${config.dataDir}/dovecot/master-secret`;
  if (!own && !existsSync(secretFile)) throw new Error(`mailstore.secretFile (${secretFile}) is missing: a front node of a shared store needs the secret its back ends were started with`);
  const master = own?.master ?? { user: m.masterUser, password: readFileSync(secretFile, 'utf8').trim(), separator: '*' as const };
  const ca = readFileSync(config.tls.caFile, 'utf8');
  const placement = new Placement(db);
  log.info({ node: nodeName(config), roles: config.node.roles, backend: own ? name : undefined, partner: partner?.name }, 'mail store shared by several nodes (mailstore.cluster)');
  return {
    // This node's own back end, or none: every box is reached through the map.
    imap: own?.imap ?? { host: '', port: 0 },
    lmtp: own?.lmtp ?? { host: '', port: 0 },
    master,
    mailDir: own?.mailDir ?? '',
    backendCa: ca,
    lmtpRoute: async (rcpts) => (await placement.group(rcpts)).map((g) => ({ rcpts: g.rcpts, targets: g.backends.map((b) => ({ host: b.host, port: b.lmtp_port, tls: { ca } })) })),
    imapRoute: async (bal) => (await placement.route(bal)).backends.map((b) => ({ name: b.name, host: b.host, port: b.imap_port })),
    health: {
      name: 'mailstore',
      async check() {
        if (own) await own.health.check();
        const { rows } = await db.query<{ n: string }>('SELECT count(*) AS n FROM mailstore_backends WHERE seen_at > now() - make_interval(secs => $1)', [BACKEND_FRESH_SECONDS]);
        if (!Number(rows[0].n)) throw new Error('no back end of the shared store is alive (mailstore_backends)');
        return { ok: true, backend: own ? name : null, backendsAlive: Number(rows[0].n) };
      },
    },
    async stop() {
      if (beat) clearInterval(beat);
      await own?.stop();
    },
  };
}

/** mailstore.partner: name=host:port. */
function parsePartner(s: string): { name: string; host: string; port: number } | undefined {
  if (!s) return undefined;
  const m = /^([A-Za-z0-9._-]{1,64})=([^\s:]+|\[[^\]]+\]):(\d{1,5})$/.exec(s.trim());
  if (!m || Number(m[3]) < 1 || Number(m[3]) > 65535) throw new Error(`mailstore.partner: expected name=host:doveadmPort (e.g. store-b=10.0.0.12:12345), got ${JSON.stringify(s)}`);
  return { name: m[1], host: m[2], port: Number(m[3]) };
}
