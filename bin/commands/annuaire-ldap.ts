import { Command } from 'commander';
import { copyFileSync, mkdirSync } from 'node:fs';
import { userInfo } from 'node:os';
import { checkDirectory, ldapPaths, rebuildDirectory, startDirectory, type CheckReport } from '../../annuaire/ldap/index.js';
import { connect, feederConnection } from '../../annuaire/ldap/client.js';
import { ping, runningSlapd } from '../../annuaire/ldap/slapd.js';
import { feedsDirectory } from '../../annuaire/ldap/replication.js';
import { MssError } from '../../core/errors.js';
import { commandLogger } from '../../core/logger.js';
import { fromRoot } from '../../core/paths.js';
import { childUser, chownTree } from '../../core/supervisor.js';
import { action, configFrom, withConfigOptions, withJournal } from '../cli.js';

interface Opts {
  config?: string;
  dataDir?: string;
  json?: boolean;
}

/** `mss annuaire …` is shared with the import commands: join the group if it exists. */
function annuaireGroup(program: Command): Command {
  return program.commands.find((c) => c.name() === 'annuaire') ?? program.command('annuaire').description("the national directory and the operator's mailboxes");
}

const n = (x: number) => x.toLocaleString('en-US');

/** Waits until slapd runs again with another pid (the platform's supervisor restarts it) and answers. */
async function waitRestarted(p: ReturnType<typeof ldapPaths>, oldPid: number, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const r = runningSlapd(p);
    if (r && r.pid !== oldPid) {
      try {
        await ping(r.ldap);
        return;
      } catch {
        /* not yet */
      }
    }
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new MssError('LDAP_REBUILD_FAILED', { reason: `the new database is in place but slapd did not come back within ${timeoutMs / 1000} s; check the platform's log` });
}

function printCheck(r: CheckReport, json: boolean) {
  if (json) return void process.stdout.write(JSON.stringify(r, null, 2) + '\n');
  const total = r.missing + r.extra + r.different;
  process.stdout.write(`database ${n(r.database)} entries, directory ${n(r.directory)} entries\n`);
  if (!total) process.stdout.write('no difference\n');
  else {
    process.stdout.write(`${n(total)} difference(s): ${n(r.missing)} missing from the directory, ${n(r.extra)} extra in it, ${n(r.different)} different\n`);
    for (const s of r.samples) process.stdout.write(`  ${s.problem.padEnd(9)} ${s.kind.padEnd(10)} ${s.key}${s.attributes?.length ? ` (${s.attributes.join(', ')})` : ''}\n`);
    if (total > r.samples.length) process.stdout.write(`  … and ${n(total - r.samples.length)} more\n`);
    process.stdout.write('repair: mss annuaire rebuild-ldap\n');
  }
  if (r.pending) process.stdout.write(`note: ${n(r.pending)} change(s) were still queued for the directory; differences may be those\n`);
}

export function registerAnnuaireLdap(program: Command) {
  const group = annuaireGroup(program);

  withConfigOptions(
    group
      .command('rebuild-ldap')
      .description(
        'recreate the LDAP directory from the database: stream it into slapadd in a fresh database, then swap it in atomically. ' +
          'If the platform is running, its slapd keeps serving the old one until the new one is complete, then restarts on it.',
      ),
  ).action(
    action(async (opts: Opts) => {
      // A consumer's directory is the provider's copy: loading the database into it would
      // make it a second, unreplicated directory. Said before the database is opened.
      const settings = configFrom(opts);
      if (!feedsDirectory(settings)) throw new MssError('LDAP_REBUILD_FAILED', { reason: `this node is an LDAP consumer (ldap.role = consumer): its directory is replicated from ${settings.ldap.providerUrl ?? 'the provider'}; rebuild on the provider's node` });
      await withJournal(opts, async (db, c, journal) => {
        const p = ldapPaths(c);
        const user = childUser();
        mkdirSync(p.runDir, { recursive: true });
        copyFileSync(fromRoot('annuaire', 'ldap', 'mssante.schema'), p.schema);
        chownTree(p.schema, user);
        const running = runningSlapd(p);
        const report = await rebuildDirectory(c, db, {
          user,
          restart: running
            ? async () => {
                // The platform's supervisor restarts it at once, on the new database.
                process.kill(running.pid, 'SIGTERM');
                await waitRestarted(p, running.pid);
              }
            : undefined,
        });
        await journal.append({ type: 'annuaire.ldap.rebuilt', actor: `cli:${userInfo().username}`, details: { entries: report.entries, ms: report.ms } });
        process.stdout.write(
          `directory rebuilt from ${db.target}: ${n(report.entries)} entries in ${(report.ms / 1000).toFixed(1)} s\n` +
            (running ? `slapd (pid ${running.pid}) restarted on the new database: ${running.ldap}\n` : 'slapd is not running: the platform serves the new database at its next start\n'),
        );
      });
    }),
  );

  withConfigOptions(
    group
      .command('check-ldap')
      .description(
        'compare the database and the LDAP directory entry by entry (missing, extra, different) and print the differences; exit code 1 when there is any. ' +
          "Uses the platform's running slapd, or starts one on the data directory for the check.",
      )
      .option('--json', 'print the report as JSON'),
  ).action(
    action(async (opts: Opts) =>
      // On free ports: the platform may hold the configured ones.
      withJournal(
        opts,
        async (db, c, journal) => {
          const p = ldapPaths(c);
          const running = runningSlapd(p);
          let report: CheckReport;
          if (running) {
            const client = await connect(feederConnection(p, running.ldaps, c.ldap.baseDn));
            try {
              report = await checkDirectory(db, client, c.ldap.baseDn);
            } finally {
              await client.unbind().catch(() => {});
            }
          } else {
            // Nobody serves it (with the embedded database, the platform and this command
            // cannot run at once): start slapd on free ports for the time of the check.
            const dir = await startDirectory(c, commandLogger(), db, journal);
            try {
              await dir.sync();
              report = await dir.check();
            } finally {
              await dir.stop();
            }
          }
          printCheck(report, !!opts.json);
          return report.missing + report.extra + report.different ? 1 : 0;
        },
        { ldap: { port: 0, ldapsPort: 0 } },
      ),
    ),
  );
}
