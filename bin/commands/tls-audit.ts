// `mss tls-audit`: Debian's testssl.sh (binary `testssl`) on every TLS listener of a running
// platform — the STARTTLS ones with -t smtp|imap|ldap —, its logs and JSON kept in one
// directory, and a summary of what it flags. For operators: the same check an outside
// tester runs, on their own configuration, before they open the ports.

import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { ldapPaths } from '../../annuaire/ldap/files.js';
import { runningSlapd } from '../../annuaire/ldap/slapd.js';
import type { Config } from '../../core/config/index.js';
import { ExitError, action, configFrom, withConfigOptions } from '../cli.js';

export interface AuditTarget {
  name: string;
  host: string;
  port: number;
  starttls?: 'smtp' | 'imap' | 'ldap';
}

/** Where one reaches a listener bound to `host` from this machine. */
const reach = (host: string) => (host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host);

/**
 * The TLS listeners of the configuration. LDAP's come from the running slapd when there is
 * one (its ports may have been chosen at start); a port 0 elsewhere is unknown here and
 * must be given with --target.
 */
export function auditTargets(c: Config): { targets: AuditTarget[]; unknown: string[] } {
  const slapd = c.ldap.enabled ? runningSlapd(ldapPaths(c)) : undefined;
  const port = (url: string | undefined) => (url ? Number(/:(\d+)\/?$/.exec(url)?.[1]) : undefined);
  const all: Array<AuditTarget & { enabled: boolean }> = [
    { name: 'mx', host: c.smtp.host, port: c.smtp.mxPort, starttls: 'smtp', enabled: true },
    { name: 'submission', host: c.smtp.host, port: c.smtp.submissionPort, starttls: 'smtp', enabled: true },
    { name: 'submissions', host: c.smtp.host, port: c.smtp.submissionsPort, enabled: true },
    { name: 'imap', host: c.imap.host, port: c.imap.starttlsPort, starttls: 'imap', enabled: c.imap.enabled },
    { name: 'imaps', host: c.imap.host, port: c.imap.port, enabled: c.imap.enabled },
    { name: 'ldap', host: c.ldap.host, port: port(slapd?.ldap) ?? c.ldap.port, starttls: 'ldap', enabled: c.ldap.enabled },
    { name: 'ldaps', host: c.ldap.host, port: port(slapd?.ldaps) ?? c.ldap.ldapsPort, enabled: c.ldap.enabled },
    { name: 'admin', host: c.admin.host, port: c.admin.port, enabled: c.admin.enabled },
    { name: 'webmail', host: c.webmail.host, port: c.webmail.port, enabled: c.webmail.enabled },
    { name: 'fhir', host: c.fhir.host, port: c.fhir.port, enabled: c.fhir.enabled },
  ];
  const on = all.filter((t) => t.enabled).map(({ enabled: _e, ...t }) => ({ ...t, host: reach(t.host) }));
  return { targets: on.filter((t) => t.port > 0), unknown: on.filter((t) => !(t.port > 0)).map((t) => t.name) };
}

/** testssl's arguments for one listener: plain text, no prompt, our trust bundle, JSON and log in `out`. */
export function testsslArgs(t: AuditTarget, caFile: string, out: string): string[] {
  const host = t.host.includes(':') ? `[${t.host}]` : t.host;
  return [
    '--quiet',
    '--color',
    '0',
    '--warnings',
    'off',
    '--connect-timeout',
    '10',
    '--openssl-timeout',
    '10',
    '--add-ca',
    caFile,
    '--jsonfile',
    join(out, `${t.name}.json`),
    '--logfile',
    join(out, `${t.name}.log`),
    ...(t.starttls ? ['-t', t.starttls] : []),
    // testssl 3.0 speaks LDAP's StartTLS only through openssl, and only for the protocol
    // checks ("LDAP+STARTTLS over sockets not supported yet" stops the rest): the ciphers,
    // groups and certificate of the same slapd are scanned on its LDAPS port.
    ...(t.starttls === 'ldap' ? ['--ssl-native', '--protocols'] : []),
    `${host}:${t.port}`,
  ];
}

interface Finding {
  id: string;
  severity: string;
  finding: string;
}

const FLAGGED = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL', 'WARN'];

/** What testssl flagged for one listener (its flat JSON file): everything but OK, INFO and DEBUG; undefined without a readable file. */
export function flagged(jsonFile: string): Finding[] | undefined {
  try {
    const rows = JSON.parse(readFileSync(jsonFile, 'utf8')) as Finding[];
    return rows.filter((r) => FLAGGED.includes(r.severity));
  } catch {
    return undefined;
  }
}

function run(bin: string, args: string[]): Promise<number | null> {
  return new Promise((done, fail) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', fail);
    child.on('exit', (code) => done(code));
  });
}

export function registerTlsAudit(program: Command) {
  withConfigOptions(
    program
      .command('tls-audit')
      .description(
        'run testssl.sh (Debian package testssl.sh) on every TLS listener of the running platform — MX, submission 587/465, IMAP 143/993, LDAP 389/636, admin and webmail HTTPS — and summarise what it flags; exits 1 when something is MEDIUM or worse, 2 when a scan could not be completed',
      )
      .option('--host <host>', 'audit this host name or address instead of each listener\'s configured address (e.g. the public name, from outside)')
      .option('--only <names>', 'comma-separated subset of: mx, submission, submissions, imap, imaps, ldap, ldaps, admin, webmail')
      .option('--target <name=host:port[/smtp|imap|ldap]>', 'add or replace a listener (e.g. one started on port 0)', (v: string, acc: string[]) => [...acc, v], [] as string[])
      .option('--out <dir>', 'where testssl writes its log and JSON per listener', 'tls-audit')
      .option('--testssl <path>', 'the testssl program', 'testssl')
      .option('--dry-run', 'print the testssl commands without running them'),
  ).action(
    action(async (o: { config?: string; dataDir?: string; host?: string; only?: string; target: string[]; out: string; testssl: string; dryRun?: boolean }) => {
      const c = configFrom(o);
      const extra = o.target.map((spec): AuditTarget => {
        const m = /^([a-z0-9-]+)=(\[[^\]]+\]|[^:/\s]+):(\d+)(?:\/(smtp|imap|ldap))?$/.exec(spec);
        if (!m) throw new ExitError(`--target ${spec}: expected name=host:port or name=host:port/smtp|imap|ldap`);
        return { name: m[1], host: m[2].replace(/^\[|\]$/g, ''), port: Number(m[3]), ...(m[4] ? { starttls: m[4] as AuditTarget['starttls'] } : {}) };
      });
      const given = (name: string) => extra.some((e) => e.name === name);
      const found = auditTargets(c);
      const wanted = (name: string) => !o.only || o.only.split(',').map((s) => s.trim()).includes(name);
      const chosen = [...found.targets.filter((t) => !given(t.name)), ...extra].filter((t) => wanted(t.name)).map((t) => (o.host ? { ...t, host: o.host } : t));
      for (const u of found.unknown.filter((n) => !given(n) && wanted(n))) process.stderr.write(`mss: ${u} listens on a port chosen at start (0 in the configuration): give it with --target ${u}=host:port\n`);
      if (!chosen.length) throw new ExitError('no listener to audit');
      const out = resolve(o.out);
      if (o.dryRun) {
        for (const t of chosen) process.stdout.write(`${[o.testssl, ...testsslArgs(t, c.tls.caFile, out)].join(' ')}\n`);
        return;
      }
      mkdirSync(out, { recursive: true });
      let worst = 0;
      for (const t of chosen) {
        process.stdout.write(`${t.name} ${t.host}:${t.port}${t.starttls ? ` (STARTTLS ${t.starttls})` : ''}: testssl running…\n`);
        // testssl refuses to overwrite a report: a new audit replaces the old one.
        for (const ext of ['json', 'log']) rmSync(join(out, `${t.name}.${ext}`), { force: true });
        let code: number | null;
        try {
          code = await run(o.testssl, testsslArgs(t, c.tls.caFile, out));
        } catch (e) {
          throw new ExitError(`cannot run ${o.testssl} (${(e as Error).message}); install it: apt-get install testssl.sh`);
        }
        const flags = flagged(join(out, `${t.name}.json`));
        if (!flags) {
          process.stdout.write(`  testssl ended with code ${code} without a readable report; see ${join(out, `${t.name}.log`)}\n`);
          worst = Math.max(worst, 2);
          continue;
        }
        // testssl reports a scan it could not finish as a finding of its own, not by its exit code.
        if (flags.some((f) => f.id === 'scanProblem' || (f.id === 'scanTime' && /interrupted/i.test(f.finding)))) worst = Math.max(worst, 2);
        process.stdout.write(`  ${flags.length ? `${flags.length} flagged` : 'nothing flagged'} (log ${join(out, `${t.name}.log`)})\n`);
        for (const f of flags) {
          process.stdout.write(`  ${f.severity.padEnd(8)} ${f.id}: ${f.finding}\n`);
          if (['MEDIUM', 'HIGH', 'CRITICAL'].includes(f.severity)) worst = Math.max(worst, 1);
        }
      }
      return worst;
    }),
  );
}
