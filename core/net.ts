import { createConnection, createServer } from 'node:net';

/**
 * A TCP port free on host right now (the OS picks it). For daemons we configure by file
 * (Dovecot, slapd) that cannot report the port they bound to.
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen({ host, port: 0 }, () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Connects, reads the first line the server sends (a banner), and checks it. */
export function expectBanner(host: string, port: number, pattern: RegExp, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createConnection({ host, port });
    let buf = '';
    const done = (err?: Error) => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(buf.split('\r\n')[0]);
    };
    const timer = setTimeout(() => done(new Error(`no banner from ${host}:${port} within ${timeoutMs} ms`)), timeoutMs);
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      if (buf.includes('\n')) done(pattern.test(buf) ? undefined : new Error(`unexpected banner from ${host}:${port}: ${buf.trim()}`));
    });
    sock.on('error', (e) => done(e));
  });
}
