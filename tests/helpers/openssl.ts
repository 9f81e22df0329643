import { spawn } from 'node:child_process';

/** Where a TLS listener is and how a client reaches TLS on it. */
export interface TlsTarget {
  port: number;
  /** openssl s_client -starttls protocol, for listeners that begin in clear. */
  starttls?: 'smtp' | 'imap' | 'ldap';
}

export interface SClientResult {
  code: number | null;
  out: string;
}

/**
 * One openssl s_client run against 127.0.0.1: handshake, print the session, close (stdin is
 * empty). The safety timeout only keeps a hung process from hanging the suite.
 */
export function sClient(t: TlsTarget, args: string[], caFile: string): Promise<SClientResult> {
  return new Promise((resolve) => {
    const c = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${t.port}`, ...(t.starttls ? ['-starttls', t.starttls] : []), '-CAfile', caFile, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (out += d));
    c.stdin.end();
    const timer = setTimeout(() => c.kill(), 60_000);
    c.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

/** [protocol, cipher] of the session s_client printed, or null when no session was made. */
export function negotiated(out: string): [string, string] | null {
  const cipher = /Cipher is (\S+)/.exec(out)?.[1];
  const protocol = /Protocol\s*: (\S+)/.exec(out)?.[1] ?? /New, (TLSv[\d.]+)/.exec(out)?.[1];
  return cipher && cipher !== '(NONE)' && protocol ? [protocol, cipher] : null;
}

/**
 * An interactive s_client session: after the handshake, each step waits for its pattern in
 * what the server sent since the previous step, then sends its line (CRLF). Resolves with
 * the whole transcript once the last pattern showed; rejects when the connection ends before.
 */
export function sClientDialog(t: TlsTarget, args: string[], caFile: string, steps: Array<{ expect: RegExp; send?: string }>): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${t.port}`, ...(t.starttls ? ['-starttls', t.starttls] : []), '-CAfile', caFile, '-quiet', '-crlf', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let from = 0;
    let step = 0;
    const timer = setTimeout(() => c.kill(), 60_000);
    const advance = () => {
      while (step < steps.length) {
        const m = steps[step].expect.exec(out.slice(from));
        if (!m) return;
        from += m.index + m[0].length;
        if (steps[step].send !== undefined) c.stdin.write(steps[step].send + '\n');
        step++;
      }
      c.kill(); // -quiet implies -ign_eof: s_client would keep the connection open
    };
    c.stdout.on('data', (d) => {
      out += d;
      advance();
    });
    c.stderr.on('data', (d) => (err += d));
    c.on('close', () => {
      clearTimeout(timer);
      if (step < steps.length) reject(new Error(`s_client ended before ${steps[step].expect} (step ${step + 1}):\n${out}\n${err}`));
      else resolve(out);
    });
    advance();
  });
}

/**
 * Whether the server lets the client renegotiate a TLS 1.2 session: s_client's "R" command
 * once the session is up, then either the verify callback runs again (a second handshake
 * went through) or the connection ends (refused). Decided by events, not by waiting.
 */
export function clientRenegotiation(t: TlsTarget, caFile: string): Promise<'renegotiated' | 'refused' | 'no session'> {
  return new Promise((resolve) => {
    const c = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${t.port}`, ...(t.starttls ? ['-starttls', t.starttls] : []), '-CAfile', caFile, '-tls1_2'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let asked = false;
    let renegotiated = false;
    const timer = setTimeout(() => c.kill(), 60_000);
    const seen = (d: Buffer) => {
      out += d;
      if (!asked && /Verify return code: 0 \(ok\)[\s\S]*---\n/.test(out)) {
        asked = true;
        c.stdin.write('R\n');
      }
      if (!renegotiated && /RENEGOTIATING[\s\S]*verify return:1/.test(out)) {
        renegotiated = true;
        c.kill();
      }
    };
    c.stdout.on('data', seen);
    c.stderr.on('data', seen);
    c.on('close', () => {
      clearTimeout(timer);
      resolve(!asked ? 'no session' : renegotiated ? 'renegotiated' : 'refused');
    });
  });
}
