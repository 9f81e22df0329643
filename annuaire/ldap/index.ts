// The LDAP directory the platform serves: OpenLDAP slapd, configured, started and fed from
// PostgreSQL (the store of record) by this module. startDirectory() is what the platform
// calls; queueLdapChanges() is what every writer of the annuaire calls.

import { rmSync } from 'node:fs';
import type { Client } from 'ldapts';
import type { Config } from '../../core/config/index.js';
import type { Db } from '../../core/db/index.js';
import { isMssError, MssError } from '../../core/errors.js';
import type { HealthCheck } from '../../core/http.js';
import type { Journal } from '../../core/journal/index.js';
import type { Logger } from '../../core/logger.js';
import { ldapReplicationLag } from '../../core/metrics.js';
import { chownTree, Supervisor } from '../../core/supervisor.js';
import { checkDirectory, type CheckReport } from './check.js';
import { connect, feederConnection, ldapReason } from './client.js';
import { bootMarker, ldapPaths, liveDbDir, newDbDir, prepareFiles, swapDb } from './files.js';
import { builtGeneration, needsInitialBuild, rebuildDirectory, wantedGeneration, type RebuildReport } from './rebuild.js';
import { ldapsUrl, ldapUrl, ping, resolveListen, slapdService, writeEndpoints } from './slapd.js';
import { drainPending, emptyReport, type DrainReport } from './sync.js';
import { feedsDirectory, replicationState, waitForRefresh } from './replication.js';
import { claimFeeding, feederNode, feedingHeartbeat, releaseFeeding } from './feeders.js';

export { queueLdapChanges, applyLdapChanges, type LdapChanges, type ApplyReport, type DrainReport } from './sync.js';
export { checkDirectory, type CheckReport, type Difference } from './check.js';
export { rebuildDirectory, requireLdapRebuild, type RebuildReport } from './rebuild.js';
export { entryFor, dnFor, LAYOUT, type LdapEntry, type EntryKind } from './entries.js';
export { ldapPaths } from './files.js';

export interface Directory {
  /** What listens where, for people (`mss start` prints them). */
  endpoints: Array<{ name: string; url: string }>;
  /** For /health: slapd answers, and how many changes wait to be applied. */
  health: HealthCheck;
  /** Applies every queued change now; resolves once they are visible over LDAP. A consumer feeds nothing (skipped). */
  sync(): Promise<DrainReport>;
  /** Full rebuild from the database, swapped in atomically (slapd restarts on the new one); journalled with its actor. On a consumer: an empty database that syncrepl refills from the provider. */
  rebuild(actor?: string): Promise<RebuildReport>;
  /** Compares the database and the directory. */
  check(): Promise<CheckReport>;
  stop(): Promise<void>;
}

export interface StartDirectoryOptions {
  /** The platform's supervisor; one is made (and stopped with the directory) when absent. */
  supervisor?: Supervisor;
}

/**
 * Writes slapd's configuration, builds the database from PostgreSQL when there is none,
 * starts slapd under the supervisor, waits until it answers, and starts draining the
 * queue of annuaire changes every ldap.syncInterval.
 */
export async function startDirectory(config: Config, log: Logger, interactiveDb: Db, journal: Journal, opts: StartDirectoryOptions = {}): Promise<Directory> {
  // Feeding and rebuilding the directory can wait: on the embedded database, logins and the
  // MX's statements go first (core/db/pglite-turns.ts).
  const db = interactiveDb.background();
  const dlog = log.child({ mod: 'ldap' });
  const ownSupervisor = !opts.supervisor;
  const supervisor = opts.supervisor ?? new Supervisor(log);
  const user = supervisor.user;
  const p = ldapPaths(config);
  const base = config.ldap.baseDn;
  let client: Client | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let lastError: string | undefined;
  // One feeder at a time in this process: drains, rebuilds and checks take turns.
  let turn: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = turn.then(fn, fn);
    turn = run.catch(() => {});
    return run;
  };

  /** Why the directory is behind the database, or undefined when it is not (one row read, one small file). */
  const directoryBehind = async (): Promise<string | undefined> => {
    const want = await wantedGeneration(db);
    const built = builtGeneration(config);
    if (built === undefined) return `the directory's generation is unknown (built by an earlier version); the database is at generation ${want}`;
    return built < want ? `the database is at generation ${want}, the directory was built from generation ${built} (a bulk import it did not follow)` : undefined;
  };
  const journalReconciled = (reason: string, r: RebuildReport) => {
    dlog.warn({ reason, entries: r.entries, ms: r.ms }, 'LDAP directory rebuilt to match the database');
    return journal.append({ type: 'annuaire.ldap.reconciled', actor: 'system', details: { reason, generation: r.generation, entries: r.entries, ms: r.ms } });
  };

  const feeds = feedsDirectory(config);
  /** A consumer's fresh, empty database (slapd restarted on it when it runs): syncrepl fills it from the provider. */
  const emptyDatabase = async (restart?: () => Promise<void>): Promise<RebuildReport> => {
    const started = Date.now();
    const d = newDbDir(p);
    chownTree(d, user);
    const previous = swapDb(p, d);
    await restart?.();
    if (previous && previous !== d) rmSync(previous, { recursive: true, force: true });
    return { entries: 0, generation: 0, pendingCleared: 0, ms: Date.now() - started, dir: d };
  };

  const node = feederNode(config.dataDir);
  let claimed = false;
  try {
    // Before anything is built or drained: one feeding node per database.
    if (feeds) {
      await claimFeeding(db, node);
      claimed = true;
    }
    prepareFiles(config, p, user, { tls: true });
    const listen = await resolveListen(config);
    // Build from the database before serving: on a first start (or after a build that
    // never completed: logged only, nothing was served yet), after the machine went down
    // under a running slapd, or when the database changed in a way the queue does not
    // carry (a bulk import while the platform was stopped) — those two change what the
    // directory serves, so they are journalled (annuaire.ldap.reconciled) with the reason.
    const crashed = bootMarker.crashedMachine(p);
    if (crashed) dlog.warn(`the machine stopped while slapd was running: ${feeds ? 'rebuilding the directory from the database' : 'replicating the directory again from the provider'}`);
    const initial = needsInitialBuild(config);
    // A consumer's copy comes from the provider, never from the database: one that may have
    // lost writes starts empty and syncrepl refreshes it whole.
    if (!feeds && (crashed || initial)) await emptyDatabase();
    const behind = initial || !feeds ? undefined : await directoryBehind();
    if (feeds && (crashed || initial || behind)) {
      const r = await rebuildDirectory(config, db, { user, log: dlog });
      if (!initial) await journalReconciled(crashed ? 'the machine stopped while slapd was running' : behind!, r);
    }
    bootMarker.clear(p);
    // The database may have been built by another user (a non-root run, an older version).
    const live = liveDbDir(p);
    if (live) chownTree(live, user);
    try {
      await supervisor.start(slapdService(config, p, listen));
    } catch (e) {
      throw new MssError('LDAP_START_FAILED', { reason: (e as Error).message }, { cause: e });
    }
    writeEndpoints(p, listen);
    bootMarker.set(p);
    const conn = feederConnection(p, ldapsUrl(listen), base);
    const feeder = async () => (client ??= await connect(conn));
    if (!feeds) {
      // Serve only once the first refresh is in: an empty or stale copy would answer
      // "unknown recipient" (5xx) for boxes that exist. A provider out of reach: a copy
      // from an earlier run serves (and catches up when it can); an empty one cannot.
      const fresh = initial || crashed;
      if (!(await waitForRefresh(config, () => connect(conn), 300_000, conn.ca))) {
        if (fresh) throw new MssError('LDAP_START_FAILED', { reason: `the provider ${config.ldap.providerUrl} cannot be reached and this consumer has no copy of the directory yet` });
        dlog.warn({ provider: config.ldap.providerUrl }, 'the LDAP provider cannot be reached: serving the copy of the directory from the last run until it can');
      }
    }
    const dropClient = async () => {
      const c = client;
      client = undefined;
      await c?.unbind().catch(() => {});
    };

    const heartbeat = feedingHeartbeat(db, node);
    const sync = () =>
      exclusive(async () => {
        try {
          await heartbeat();
          // Another process changed the database in bulk (a shared PostgreSQL): catch up.
          const late = await directoryBehind();
          if (late) {
            await dropClient();
            await journalReconciled(late, await rebuildDirectory(config, db, { user, log: dlog, restart: () => supervisor.restart('slapd') }));
          }
          const r = await drainPending(db, await feeder(), base);
          if (r.queued) dlog.info({ ...r }, 'annuaire changes applied to the directory');
          lastError = undefined;
          return r;
        } catch (e) {
          // The connection may be what broke (slapd restarted): a new one next time.
          await dropClient();
          lastError = isMssError(e) ? e.message : ldapReason(e);
          throw isMssError(e) ? e : new MssError('LDAP_SYNC_FAILED', { reason: lastError }, { cause: e });
        }
      });

    // Every syncInterval; after a failure (slapd restarting, database away) the wait
    // doubles up to 30 s, so a long outage is one log line every 30 s, not five a second.
    let failures = 0;
    const tick = () => {
      if (stopped) return;
      sync()
        .then(() => (failures = 0))
        .catch((e) => {
          failures++;
          dlog.warn({ err: (e as Error).message, failures }, 'directory sync failed; the changes stay queued and are retried');
        })
        .finally(() => {
          if (!stopped) timer = setTimeout(tick, Math.min(config.ldap.syncInterval * 2 ** failures, 30_000));
        });
    };
    // Only a node that feeds its slapd drains the queue; a consumer's changes come by syncrepl.
    if (feeds) tick();

    const endpoints = [
      { name: 'LDAP (StartTLS)', url: `${ldapUrl(listen)}/${encodeURIComponent(base).replace(/%3D/g, '=').replace(/%2C/g, ',')}` },
      { name: 'LDAPS', url: `${ldapsUrl(listen)}/${encodeURIComponent(base).replace(/%3D/g, '=').replace(/%2C/g, ',')}` },
    ];
    dlog.info({ ldap: ldapUrl(listen), ldaps: ldapsUrl(listen), base, role: config.ldap.role, ...(feeds ? {} : { provider: config.ldap.providerUrl }) }, 'LDAP directory serving');
    const consumerSync = async (): Promise<DrainReport> => ({ ...emptyReport(), queued: 0, skipped: true });

    return {
      endpoints,
      health: {
        name: 'ldap',
        async check() {
          await ping(ldapUrl(listen));
          if (!feeds) {
            const replication = await replicationState(config, () => connect(conn), conn.ca);
            if (replication.reachable) ldapReplicationLag.set(replication.lagSeconds ?? -1);
            return { url: ldapUrl(listen), role: 'consumer', replication };
          }
          const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM annuaire_ldap_pending');
          if (lastError) throw new Error(`sync failing: ${lastError}`);
          return { url: ldapUrl(listen), role: config.ldap.role, pending: rows[0].n };
        },
      },
      sync: feeds ? sync : consumerSync,
      rebuild: (actor = 'system') =>
        exclusive(async () => {
          await dropClient();
          const r = feeds ? await rebuildDirectory(config, db, { user, log: dlog, restart: () => supervisor.restart('slapd') }) : await emptyDatabase(() => supervisor.restart('slapd'));
          await journal.append({ type: 'annuaire.ldap.rebuilt', actor, details: { entries: r.entries, ms: r.ms } });
          return r;
        }),
      check: () => exclusive(async () => checkDirectory(db, await feeder(), base)),
      async stop() {
        stopped = true;
        clearTimeout(timer);
        await turn;
        await dropClient();
        if (ownSupervisor) await supervisor.stopAll();
        else await supervisor.stop('slapd');
        rmSync(p.endpointsFile, { force: true });
        bootMarker.clear(p);
        if (claimed) await releaseFeeding(db, node).catch(() => {});
      },
    };
  } catch (e) {
    stopped = true;
    clearTimeout(timer);
    if (claimed) await releaseFeeding(db, node).catch(() => {});
    await client?.unbind().catch(() => {});
    await (ownSupervisor ? supervisor.stopAll() : supervisor.stop('slapd')).catch(() => {});
    throw e;
  }
}
