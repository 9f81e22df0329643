// What openPg (pg.ts) needs to follow a PostgreSQL primary across a failover: the list of
// servers to try, and which errors mean "the connection is gone" rather than "the
// statement was refused".

/** database.url, then the same URL pointed at each of database.hosts (host:port, [v6]:port). */
export function serverUrls(url: string, hosts: string[]): string[] {
  const out = [url];
  for (const h of hosts) {
    const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(h.trim());
    if (!m) throw new Error(`database.hosts: "${h}" is not host or host:port`);
    const u = new URL(url);
    u.hostname = m[1];
    u.port = m[2] ?? '5432';
    out.push(u.toString());
  }
  return out;
}

// SQLSTATE classes and codes that say the session is over, not that the statement is wrong:
// 08 connection exception; 57P01-57P03 the server shutting down or not accepting yet;
// 25006 a write on a server that became read-only (a former primary demoted under us).
const LOST_STATES = /^(08...|57P01|57P02|57P03|25006)$/;
const LOST_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTCONN']);

/** True when e (or what it wraps) says the connection to the server was lost or could not be made. */
export function isConnectionError(e: unknown): boolean {
  for (let x = e as { code?: unknown; message?: unknown; cause?: unknown; errors?: unknown[] } | undefined, depth = 0; x && depth < 5; x = x.cause as typeof x, depth++) {
    const code = typeof x.code === 'string' ? x.code : '';
    if (LOST_STATES.test(code) || LOST_ERRNO.has(code)) return true;
    const msg = typeof x.message === 'string' ? x.message : '';
    // node-postgres's own wording when the socket closes under a query or a pool checkout.
    if (/Connection terminated|connection error|Client has encountered a connection error|terminating connection/i.test(msg)) return true;
    if (Array.isArray(x.errors) && x.errors.some(isConnectionError)) return true;
  }
  return false;
}

/** A statement that changes nothing (may be asked again after a lost connection). */
export function isReadOnlyStatement(sql: string): boolean {
  const s = sql.replace(/^(\s|--[^\n]*\n)+/, '');
  return /^(SELECT|SHOW)\b/i.test(s) && !/\b(INSERT|UPDATE|DELETE|nextval|setval|pg_advisory|FOR\s+UPDATE|FOR\s+SHARE)\b/i.test(s);
}
