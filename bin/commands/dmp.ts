import { userInfo } from 'node:os';
import { Option, type Command } from 'commander';
import { findBal, normaliseBalAddress } from '../../annuaire/bal/index.js';
import { MssError } from '../../core/errors.js';
import { listDmpRules, MASKINGS, removeDmpRule, setDmpRule, type Masking } from '../../dmp/index.js';
import { action, withConfigOptions, withDb, withJournal } from '../cli.js';

type Opts = { config?: string; dataDir?: string };
const out = (s: string): void => void process.stdout.write(s);

export function registerDmp(program: Command) {
  const dmp = program.command('dmp').description('the DMP hand-off: per-box rules and the outcome of each submission');

  withConfigOptions(
    dmp
      .command('rule-set')
      .description('hand off every message with a clinical document (IHE_XDM.zip or CDA) that arrives in this box to the DMP; the running platform picks it up within dmp.ruleInterval')
      .argument('<bal>', 'address of a local box (typically a lab\'s or a service\'s)')
      .addOption(new Option('--masking <choice>', 'DMP visibility given to every document').choices([...MASKINGS]).default('normal'))
      .option('--disabled', 'keep the rule but do not apply it'),
  ).action(
    action(async (bal: string, o: Opts & { masking: Masking; disabled?: boolean }) =>
      withJournal(o, async (db, _c, journal) => {
        const { address } = normaliseBalAddress(bal);
        const b = await findBal(db, address);
        if (!b) throw new MssError('BAL_UNKNOWN', { address });
        if (b.status !== 'active') throw new MssError('BAL_CLOSED', { address });
        await setDmpRule({ db, journal }, { bal: address, masking: o.masking, enabled: !o.disabled, actor: `cli:${userInfo().username}` });
        out(`rule ${o.disabled ? 'kept, disabled,' : 'set'} for ${address}: documents go to the DMP with masking "${o.masking}"\n`);
      }),
    ),
  );

  withConfigOptions(dmp.command('rule-remove').description('stop handing off the messages of this box').argument('<bal>')).action(
    action(async (bal: string, o: Opts) =>
      withJournal(o, async (db, _c, journal) => {
        const { address } = normaliseBalAddress(bal);
        const removed = await removeDmpRule({ db, journal }, address, `cli:${userInfo().username}`);
        out(removed ? `rule removed for ${address}\n` : `${address} had no rule\n`);
        return removed ? 0 : 1;
      }),
    ),
  );

  withConfigOptions(dmp.command('rules').description('list the per-box DMP rules')).action(
    action(async (o: Opts) =>
      withDb(o, async (db) => {
        const rules = await listDmpRules(db);
        if (!rules.length) return out('no DMP rule (mss dmp rule-set BAL)\n');
        for (const r of rules) out(`${r.bal}  masking ${r.masking}${r.enabled ? '' : '  (disabled)'}  set by ${r.createdBy} on ${r.updatedAt.toISOString()}\n`);
      }),
    ),
  );

  withConfigOptions(dmp.command('submissions').description('the latest hand-offs and their outcome (registry errors included)').option('--bal <address>', 'only this box').option('--limit <n>', 'at most n', '20')).action(
    action(async (o: Opts & { bal?: string; limit: string }) =>
      withDb(o, async (db) => {
        const { rows } = await db.query<{ submitted_at: Date; bal: string; uid: number; actor: string; status: string; document_ids: string[]; errors: Array<{ code: string; context: string }> }>(
          `SELECT submitted_at, bal, uid, actor, status, document_ids, errors FROM dmp_submissions WHERE ($1::text IS NULL OR bal = $1) ORDER BY id DESC LIMIT $2`,
          [o.bal ? normaliseBalAddress(o.bal).address : null, Number(o.limit) || 20],
        );
        if (!rows.length) return out('no hand-off yet\n');
        for (const r of rows) {
          out(`${new Date(r.submitted_at).toISOString()}  ${r.status.padEnd(7)}  ${r.bal} #${r.uid}  by ${r.actor}  documents ${(r.document_ids ?? []).join(', ') || '-'}\n`);
          for (const e of r.errors ?? []) out(`    ${e.code}: ${e.context}\n`);
        }
      }),
    ),
  );
}
