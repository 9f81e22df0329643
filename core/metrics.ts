import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * One Prometheus registry for the process, served at /metrics. Modules declare their
 * metrics here or through `registry` so names stay unique and documented in one place.
 */
export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'mss_process_' });

export const journalEvents = new Counter({ name: 'mss_journal_events_total', help: 'Journal events appended', registers: [registry] });
export const journalSeals = new Counter({ name: 'mss_journal_seals_total', help: 'Journal seals (RFC 3161 timestamps over a batch)', registers: [registry] });
export const authCacheLookups = new Counter({ name: 'mss_auth_cache_lookups_total', help: 'Password checks looked up in the password cache (annuaire/bal/credential-cache.ts), by result (hit: no scrypt)', labelNames: ['result'], registers: [registry] });
export const ldapReplicationLag = new Gauge({ name: 'mss_ldap_replication_lag_seconds', help: "On an LDAP consumer: how much newer the provider's newest change is than the newest this copy holds (0 caught up, -1 holds nothing of a provider's server, not set when the provider cannot be asked)", registers: [registry] });
// What ends while the platform runs: the start warns once (certs/tls.ts), a platform runs
// for months, and an operator's alerting reads these (certs/expiry.ts sets them).
export const certificateNotAfter = new Gauge({ name: 'mss_certificate_not_after_timestamp_seconds', help: 'When a certificate the platform presents ends (Unix time): certificate="tls" (its TLS fronts; peers refuse it after), "tsa" (the journal\'s timestamping)', labelNames: ['certificate'], registers: [registry] });
export const crlNextUpdate = new Gauge({ name: 'mss_crl_next_update_timestamp_seconds', help: 'When a CRL the platform checks client certificates against must be replaced (Unix time): past it, OpenSSL refuses every certificate of that authority', labelNames: ['issuer'], registers: [registry] });
let openPgpKeySource: (() => Promise<Record<'valid' | 'expiring' | 'expired', number>>) | undefined;
/** Where mss_openpgp_keys is read from at each scrape (the platform's database). */
export const setOpenPgpKeySource = (f: typeof openPgpKeySource) => {
  openPgpKeySource = f;
};
export const openPgpKeys = new Gauge({
  name: 'mss_openpgp_keys',
  help: 'Boxes\' registered OpenPGP keys by state: valid, expiring (ends within 30 days), expired (mail to that box waits in the spool until the key is replaced)',
  labelNames: ['state'],
  registers: [registry],
  async collect() {
    if (!openPgpKeySource) return;
    const counts = await openPgpKeySource().catch(() => null);
    if (counts) for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
  },
});
export const journalUnsealed = new Gauge({ name: 'mss_journal_unsealed_events', help: 'Events appended but not yet sealed', registers: [registry] });
export const httpRequests = new Histogram({
  name: 'mss_http_request_duration_seconds',
  help: 'HTTP request duration',
  labelNames: ['method', 'route', 'status'],
  buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
  registers: [registry],
});
