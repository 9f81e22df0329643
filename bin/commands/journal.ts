import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { proofFiles } from '../../core/journal/proof-files.js';
import { ExitError, action, configFrom, readJournal, withConfigOptions, withDb, withJournal } from '../cli.js';
import { journalAnchorFile, journalTimestamping } from '../sealing.js';

type Opts = { config?: string; dataDir?: string };

const withReader = <T>(opts: Opts, fn: (j: ReturnType<typeof readJournal>, c: ReturnType<typeof configFrom>) => Promise<T>) => withDb(opts, (db, c) => fn(readJournal(db), c));

export function registerJournal(program: Command) {
  const journal = program.command('journal').description('the notarised event journal: verify its integrity, export proofs');

  withConfigOptions(
    journal
      .command('verify')
      .description(
        're-check the hash chain, every seal and every timestamp token; exits 1 and names the first bad event if anything was changed, deleted or reordered, ' +
          'or if events are left unsealed: on the embedded database any (no platform can be running while this command holds it), ' +
          'on PostgreSQL those older than journal.unsealedGrace (MSS_JOURNAL_UNSEALED_GRACE, 60 s: a running platform seals within seconds)',
      )
      .option('--no-tokens', 'skip the timestamp token signatures (chain and Merkle roots only)')
      .option('--json', 'machine-readable report'),
  ).action(
    action(async (opts: Opts & { tokens: boolean; json?: boolean }) =>
      withReader(opts, async (j, c) => {
        const verifier = opts.tokens ? (await journalTimestamping(c)).verifier : undefined;
        const tty = process.stderr.isTTY;
        // On the embedded database this command holds the data directory's lock: no platform
        // is running to seal what it wrote, and every command seals before it exits, so any
        // unsealed event was left by a crash or written by hand. On PostgreSQL a running
        // platform seals within seconds: only events older than the grace are suspect.
        const report = await j.verify(verifier, {
          onProgress: tty ? (seq) => void process.stderr.write(`\rchecked ${seq} events…`) : undefined,
          unsealedGraceMs: c.journal.unsealedGrace,
          noSealer: !c.database.url,
          anchorFile: journalAnchorFile(c),
        });
        if (tty) process.stderr.write('\r\x1b[K');
        if (opts.json) {
          process.stdout.write(JSON.stringify(report, null, 2) + '\n');
          return report.ok ? 0 : 1;
        }
        const summary =
          `${report.events} events, ${report.seals} seals${report.tokensChecked ? ' (timestamp tokens checked)' : ''}, ${report.unsealed} not yet sealed` +
          (report.ok && report.unsealed ? ` (written in the last ${c.journal.unsealedGrace / 1000} s: the running platform seals them)` : '');
        if (report.ok) {
          process.stdout.write(`journal OK: ${summary}\n`);
          return 0;
        }
        process.stdout.write(`journal FAILED at event ${report.firstBad}: ${report.problems[0].message}\n`);
        for (const p of report.problems.slice(1, 20)) process.stdout.write(`  also: ${p.message}\n`);
        if (report.problems.length > 20) process.stdout.write(`  … and ${report.problems.length - 20} more problems\n`);
        process.stdout.write(`(${summary})\n`);
        return 1;
      }),
    ),
  );

  withConfigOptions(
    journal
      .command('seal')
      .description('seal every event not sealed yet (RFC 3161 timestamp over each batch): what the platform does every few seconds, for a journal whose platform is stopped'),
  ).action(
    action(async (opts: Opts) =>
      withJournal(opts, async (_db, _c, j) => {
        const n = await j.sealNow();
        process.stdout.write(n ? `sealed ${n} event(s)\n` : 'nothing to seal: every event is sealed\n');
      }),
    ),
  );

  withConfigOptions(
    journal
      .command('list')
      .description('the latest events, newest first: who did what to what (an audit trail)')
      .option('--type <type>', 'only this event type (e.g. policy.refused, dmp.submitted)')
      .option('--prefix <prefix>', 'only types starting with this (e.g. smtp.)')
      .option('--subject <subject>', 'only events about this (a box address, a message id…)')
      .option('--actor <actor>', 'only events by this actor')
      .option('--limit <n>', 'at most n events', '50')
      .option('--json', 'one JSON object per line'),
  ).action(
    action(async (opts: Opts & { type?: string; prefix?: string; subject?: string; actor?: string; limit: string; json?: boolean }) =>
      withReader(opts, async (j) => {
        const events = await j.list({ type: opts.type, typePrefix: opts.prefix, subject: opts.subject, actor: opts.actor, limit: Math.max(1, Number(opts.limit) || 50) });
        for (const e of events) {
          if (opts.json) process.stdout.write(JSON.stringify({ seq: e.seq, at: e.at, type: e.type, actor: e.actor, subject: e.subject, details: e.details }) + '\n');
          else process.stdout.write(`#${e.seq}  ${e.at.toISOString()}  ${e.type}  ${e.actor}${e.subject ? ` → ${e.subject}` : ''}  ${JSON.stringify(e.details)}\n`);
        }
        if (!events.length && !opts.json) process.stdout.write('no such event\n');
      }),
    ),
  );

  withConfigOptions(
    journal
      .command('export')
      .description('write the proof of one event: stamped.bin, token.tsr, tsa-chain.pem, proof.json and README.txt, checkable with openssl ts -verify')
      .requiredOption('--event <seq>', 'the event number (seq)')
      .requiredOption('--dir <dir>', 'output directory (created)'),
  ).action(
    action(async (opts: Opts & { event: string; dir: string }) =>
      withReader(opts, async (j, c) => {
        const seq = Number(opts.event);
        if (!Number.isInteger(seq) || seq < 1) throw new ExitError(`--event must be an event number (1, 2, …), got "${opts.event}"`, 2);
        const out = resolve(opts.dir);
        const files = proofFiles(await j.proof(seq), { tsaChainPem: readFileSync(c.tsa.certFile, 'utf8') + readFileSync(c.tsa.chainFile, 'utf8'), caFile: c.tsa.caFile, dir: out });
        mkdirSync(out, { recursive: true });
        for (const f of files) writeFileSync(join(out, f.name), f.data);
        const cmd = `openssl ts -verify -data ${join(out, 'stamped.bin')} -in ${join(out, 'token.tsr')} -CAfile ${c.tsa.caFile} -untrusted ${join(out, 'tsa-chain.pem')}`;
        process.stdout.write(`proof of event ${seq} written to ${out}\ncheck the timestamp with:\n  ${cmd}\n`);
      }),
    ),
  );
}
