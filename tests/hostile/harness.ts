// The hostile corpus (issue 12): cases are data — one array per front in cases/*.ts — and
// this runner plays them against one server started once per front. After every case it
// checks, on the same server: the specific refusal (code, enhanced code or response code,
// and the sentence), that a normal request is still served, and that the serving
// process's RSS stayed within RSS_BOUND of what it was after start. Once all cases ran, it
// checks that nothing the server acknowledged (a 250, an OK, a 201) was lost.
import { appendFileSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** What a server answered, in one shape for every protocol. */
export interface Outcome {
  /** SMTP reply code, IMAP status (NO/BAD/BYE/OK), LDAP result code, HTTP status, catalogue code of a refusal thrown by a reader. */
  code: string;
  /** SMTP enhanced status code, IMAP response code, LDAP result name, problem+json title, HTTP status of the catalogue entry. */
  enhanced?: string;
  /** The human sentence. */
  text: string;
}

export interface Expect {
  /** A RegExp only where two answers are both right. */
  code: string | number | RegExp;
  /** Checked when given (smtp-server's own syntax replies carry none: left out there). */
  enhanced?: string | RegExp;
  text: RegExp;
}

export interface Case<C> {
  name: string;
  /** Plays the hostile input; resolves with the server's answer to it. May assert more on the way. */
  send(ctx: C): Promise<Outcome>;
  expect: Expect;
  /** A safety net for cases that must wait out the server's own delays (login throttling); never a performance bound. */
  timeout?: number;
}

export interface Server<C> {
  ctx: C;
  /** A normal request on the same server; throws if it is not served as usual. */
  serves(): Promise<void>;
  /** Every acknowledged request is still in effect (messages in Dovecot, rows in the database…). */
  nothingLost(): Promise<void>;
  /** Resident set size, in bytes, of the process(es) serving the front. */
  rss(): number;
  stop(): Promise<void>;
}

/** How much the serving process may grow over a whole front's corpus: generous, but a leak or an unbounded buffer shows. */
export const RSS_BOUND = 200 * 1024 * 1024;

/** RSS (or its high-water mark, VmHWM) of another process (slapd, a CLI run), from /proc; 0 if it is gone. */
export function procRss(pid: number | undefined, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number {
  if (!pid) return 0;
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** A TLS handshake that failed: code "tls", the OpenSSL reason as the sentence. */
export function tlsOutcome(e: unknown): Outcome {
  const err = e as NodeJS.ErrnoException & { reason?: string };
  return { code: 'tls', enhanced: err.code, text: `${err.reason ?? ''} ${err.message}`.trim() };
}

export function check(o: Outcome, e: Expect): void {
  const shown = `${o.code}${o.enhanced ? ` [${o.enhanced}]` : ''} ${o.text}`;
  if (e.code instanceof RegExp) expect(o.code, shown).toMatch(e.code);
  else expect(o.code, shown).toBe(String(e.code));
  if (e.enhanced instanceof RegExp) expect(o.enhanced, shown).toMatch(e.enhanced);
  else if (e.enhanced !== undefined) expect(o.enhanced, shown).toBe(e.enhanced);
  expect(o.text, shown).toMatch(e.text);
}

/**
 * One describe block per front: the server starts once, each case is an `it` (so a
 * failing case is named), then the final check that nothing acknowledged was lost.
 */
export function runCorpus<C>(front: string, cases: Array<Case<C>>, start: () => Promise<Server<C>>): void {
  describe(`hostile corpus: ${front} (${cases.length} cases)`, () => {
    let s: Server<C>;
    let baseline = 0;
    let peak = 0;
    beforeAll(async () => {
      s = await start();
      // The baseline is taken once the server has served a normal request (caches, pools warm).
      await s.serves();
      baseline = s.rss();
      console.log(`hostile corpus: ${front}: ${cases.length} cases; RSS after start ${mib(baseline)} MiB, bound +${mib(RSS_BOUND)} MiB`);
    }, 300_000);
    afterAll(async () => {
      if (s) console.log(`hostile corpus: ${front}: RSS peak ${mib(peak)} MiB (+${mib(peak - baseline)} MiB)`);
      await s?.stop();
    }, 120_000);

    for (const c of cases) {
      it(c.name, async () => {
        // The server must keep serving whatever the case's own verdict: checked either way.
        let refusal: unknown;
        try {
          const o = await c.send(s.ctx);
          // HOSTILE_RECORD=<file>: every answer as one JSON line, to write or review expectations from.
          if (process.env.HOSTILE_RECORD) appendFileSync(process.env.HOSTILE_RECORD, JSON.stringify({ front, name: c.name, ...o }) + '\n');
          check(o, c.expect);
        } catch (e) {
          refusal = e;
        }
        await s.serves();
        const rss = s.rss();
        peak = Math.max(peak, rss);
        expect(rss - baseline, `RSS grew from ${mib(baseline)} to ${mib(rss)} MiB`).toBeLessThan(RSS_BOUND);
        if (refusal) throw refusal;
      }, c.timeout);
    }

    it('lost nothing it acknowledged, and its RSS stayed bounded', async () => {
      await s.nothingLost();
      expect(s.rss() - baseline).toBeLessThan(RSS_BOUND);
    }, 300_000);
  });
}


const mib = (n: number) => Math.round(n / 1024 / 1024);
