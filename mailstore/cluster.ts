// The node's part of the mail store, by its roles (issue 17). Embedded (the default): the
// one Dovecot on loopback holds every box, exactly as on a single machine. Shared
// (mailstore.cluster): a node with the mailstore role runs one back end — TLS only, its
// replica kept by Dovecot's replicator on its pair — and registers it in PostgreSQL; every
// node with the fronts reaches each box where the map (placement.ts) says it is.
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../core/config/index.js';
import type { Db } from '../core/db/index.js';
import type { Logger } from '../core/logger.js';
import { freePort } from '../core/net.js';
import type { Supervisor } from '../core/supervisor.js';
import type { Keyring } from '../core/crypt/keyring.js';
import { run } from '../core/backup/database.js';
import { eachLimit } from '../core/each.js';
import { mailCryptEnv, startMailstore, type Mailstore } from './dovecot.js';
import { BACKEND_FRESH_SECONDS, heartbeatBackend, MAP_CACHE_MS, markCatchingUp, markCaughtUp, pairBoxes, Placement, registerBackend } from './placement.js';

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
  // A back end of a pair that was away (node down, Dovecot crashed) may lack what its pair
  // took meanwhile: marked before its Dovecot listens, so the fronts put the pair first,
  // and waiting out their copy of the map, until the catch-up below has synced every box.
  const beforeServing = async () => {
    if (await markCatchingUp(db, name)) await new Promise((r) => setTimeout(r, MAP_CACHE_MS));
  };
  if (roles.mailstore && partner) await beforeServing();
  const own = roles.mailstore
    ? await startMailstore(config, log, supervisor, {
        keyring,
        ...(partner ? { beforeRestart: beforeServing } : {}),
        cluster: { listen: m.listen, trustedNetworks: m.trustedNetworks, doveadmPort: m.doveadmPort || (await freePort(m.listen)), ...(partner ? { replica: `${partner.host}:${partner.port}` } : {}) },
      })
    : undefined;
  let beat: NodeJS.Timeout | undefined;
  let safetyNet: NodeJS.Timeout | undefined;
  let catchUp: CatchUp | undefined;
  if (own) {
    await registerBackend(db, { name, host: m.listen, imapPort: own.imap.port, lmtpPort: own.lmtp.port, doveadmPort: own.doveadmPort!, ...(partner ? { partner: partner.name } : {}) });
    if (partner) {
      // doveadm loads mail_crypt like Dovecot: it needs the keys' passwords, not the master key.
      // Built for each run: a rotation adds a generation and its password (keyring.reload).
      const env = () => mailCryptEnv(keyring);
      const ids = supervisor.user.dropped ? { uid: supervisor.user.uid, gid: supervisor.user.gid } : {};
      const confFile = join(config.dataDir, 'dovecot', 'dovecot.conf');
      catchUp = new CatchUp(db, log, name, partner.name, (box) => run(config.mailstore.doveadm, ['-c', confFile, 'sync', '-u', box, '-d', '-N', '-f', '-l', '30'], { env: env(), ...ids }).then(() => {}), () => supervisor.status('dovecot')[0]?.state === 'running');
      void catchUp.run(false);
      if (m.catchUpInterval > 0) {
        safetyNet = setInterval(() => void catchUp!.run(true), m.catchUpInterval);
        safetyNet.unref();
      }
    }
    // The heartbeat also picks up a catch-up marked by a restart of Dovecot (beforeRestart), or one that failed.
    beat = setInterval(() => {
      heartbeatBackend(db, name).catch((e) => log.warn({ err: e }, 'could not refresh this back end in mailstore_backends'));
      void catchUp?.run(false);
    }, (BACKEND_FRESH_SECONDS * 1000) / 3);
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
    ...(own?.reloadKeys ? { reloadKeys: own.reloadKeys } : {}),
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
      if (safetyNet) clearInterval(safetyNet);
      await catchUp?.stop();
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

/**
 * Catching up after an absence, with Dovecot's own tool: `doveadm sync -d` of each box of
 * the pair (placed on this back end or on its pair), i.e. what the replicator itself runs,
 * two-way, into the pair's doveadm server (mail_replica). The replicator alone does not do
 * it: it learns of a box only when the box changes, and cannot list the users of a static
 * userdb. `doveadm sync` rather than feeding the replicator (`doveadm replicator add` /
 * `replicate`): it ends with an exit status per box, so the platform knows when every box
 * has caught up — the moment the fronts may serve them from this back end first again —
 * where the replicator's queue would have to be polled box by box. `-l 30` takes the box's
 * lock, so a sync the replicator runs at the same time waits instead of racing it.
 */
class CatchUp {
  private running: Promise<void> | null = null;
  private stopped = false;
  private static readonly PARALLEL = 4;
  private static readonly GIVE_UP_AFTER = 10;

  constructor(
    private readonly db: Db,
    private readonly log: Logger,
    private readonly name: string,
    private readonly partner: string,
    private readonly sync: (box: string) => Promise<void>,
    private readonly dovecotUp: () => boolean,
  ) {}

  /** full: every box even when not marked as catching up (the periodic safety net). One run at a time. */
  run(full: boolean): Promise<void> {
    return (this.running ??= this.once(full)
      .catch((e) => this.log.warn({ err: e }, 'mail store catch-up: could not run; tried again at the next heartbeat'))
      .finally(() => (this.running = null)));
  }

  private async once(full: boolean) {
    if (this.stopped || !this.dovecotUp()) return;
    const { rows } = await this.db.query<{ t: Date; catchup_since: Date | null }>('SELECT now() AS t, catchup_since FROM mailstore_backends WHERE name = $1', [this.name]);
    if (!rows[0] || (!full && !rows[0].catchup_since)) return;
    // The pair away too: nothing to catch up from (and one failing doveadm per box every heartbeat for nothing). Its own start syncs both ways.
    const pair = await this.db.query('SELECT 1 FROM mailstore_backends WHERE name = $1 AND seen_at > now() - make_interval(secs => $2)', [this.partner, BACKEND_FRESH_SECONDS]);
    if (!pair.rows.length) return;
    const boxes = await pairBoxes(this.db, this.name, this.partner);
    const failed: Array<{ box: string; err: string }> = [];
    await eachLimit(boxes, CatchUp.PARALLEL, async (box) => {
      // Past a few failures the pair is likely unreachable: the run ends, the next heartbeat tries again.
      if (this.stopped || failed.length >= CatchUp.GIVE_UP_AFTER) return;
      await this.sync(box).catch((e) => failed.push({ box, err: (e as Error).message }));
    });
    if (this.stopped) return;
    if (failed.length) {
      // The pair may be away too: this back end then serves anyway (the fronts fall back to it).
      this.log.warn({ backend: this.name, partner: this.partner, failed: failed.length, of: boxes.length, first: failed.slice(0, 3) }, 'mail store catch-up: boxes could not be synced with the pair; the whole run is tried again at the next heartbeat');
      return;
    }
    await markCaughtUp(this.db, this.name, rows[0].t, this.partner);
    if (rows[0].catchup_since) this.log.info({ backend: this.name, partner: this.partner, boxes: boxes.length }, 'mail store caught up with its pair: its boxes are served here first again');
  }

  async stop() {
    this.stopped = true;
    await this.running;
  }
}
