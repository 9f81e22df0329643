// The operator console's dashboard figures (GET /api/v1/dashboard), read through the admin's
// scope: its boxes by type, its mail of the day and what of it waits, the last national
// imports, and what needs looking at (certificates expiring, mail put off, failed DMP
// hand-offs). What other modules hold — the spool and queue (smtp/), the DMP hand-offs (dmp/)
// — comes through their own readers, wired by the platform (DashboardSources): this module
// reads no table of theirs.
import type { Queryable } from '../../core/db/index.js';
import type { AdminScope } from '../../core/policy/index.js';
import { balAddressesInScope, countBals, expiringAppCertificates } from '../bal/index.js';
import { lastImports } from '../import/history.js';
import type { DashboardOf } from './json-types.js';

export interface DashboardSources {
  /** smtp/figures.ts trafficFigures. */
  traffic(f: { since: Date; addresses: readonly string[] | null }): Promise<{ received: number; sent: number; queued: number; oldest: Date | null; deferred: number; oldestDeferred: Date | null }>;
  /** dmp/figures.ts dmpFailures. */
  dmpFailures(f: { since: Date; bals: readonly string[] | null }): Promise<{ count: number; latest: { bal: string; at: Date; error: string | null } | null }>;
  /** The platform's own server certificate. */
  serverCertificate(): { subject: string; notAfter: Date } | null;
}

/** Failed DMP hand-offs are shown for this long: a day's failures stay in sight across midnight. */
export const DMP_ALERT_WINDOW_MS = 86_400_000;

export async function dashboard(q: Queryable, scope: AdminScope, o: { since: Date; now: Date; certificateWarningMs: number; sources?: DashboardSources }): Promise<DashboardOf<Date>> {
  const addresses = await balAddressesInScope(q, scope);
  const warnBefore = new Date(o.now.getTime() + o.certificateWarningMs);
  const [boxes, imports, certificates, traffic, dmp] = await Promise.all([
    countBals(q, scope),
    lastImports(q),
    expiringAppCertificates(q, scope, warnBefore),
    o.sources ? o.sources.traffic({ since: o.since, addresses }) : null,
    o.sources ? o.sources.dmpFailures({ since: new Date(o.now.getTime() - DMP_ALERT_WINDOW_MS), bals: addresses }) : null,
  ]);
  // The platform's own certificate is everyone's concern but only a national admin's to act on.
  const server = scope.kind === 'everywhere' ? o.sources?.serverCertificate() : null;
  return {
    since: o.since,
    scope: scope.kind === 'everywhere' ? 'national' : 'regional',
    boxes,
    traffic,
    imports,
    alerts: {
      certificates,
      serverCertificate: server && server.notAfter < warnBefore ? server : null,
      deferred: traffic && traffic.deferred ? { count: traffic.deferred, oldest: traffic.oldestDeferred } : null,
      dmp: dmp && dmp.count ? { ...dmp, since: new Date(o.now.getTime() - DMP_ALERT_WINDOW_MS) } : null,
    },
  };
}
