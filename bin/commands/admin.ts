import { userInfo } from 'node:os';
import { Option, type Command } from 'commander';
import { migrate, openDb } from '../../core/db/index.js';
import { createAdmin, listAdmins } from '../../annuaire/admin/accounts.js';
import { setAdminNationalId } from '../../annuaire/admin/psc.js';
import { action, configFrom, withConfigOptions, withJournal } from '../cli.js';

type Opts = { config?: string; dataDir?: string };
const collect = (v: string, prev: string[]) => [...prev, ...v.split(',').map((x) => x.trim()).filter(Boolean)];

export function registerAdmin(program: Command) {
  const admin = program.command('admin').description('accounts of the admin HTTP API (national and regional operators)');

  withConfigOptions(
    admin
      .command('add')
      .description('create an admin account; its password is generated and printed once')
      .argument('<login>')
      .addOption(new Option('-r, --role <role>', 'national (everything) or regional (its domains and structures)').choices(['national', 'regional']).makeOptionMandatory())
      .option('--domain <domain>', 'regional scope: a mail domain (repeat, or comma-separated)', collect, [])
      .option('--structure <id>', 'regional scope: a FINESS or SIRET (repeat, or comma-separated)', collect, []),
  ).action(
    action(async (login: string, o: Opts & { role: 'national' | 'regional'; domain: string[]; structure: string[] }) =>
      withJournal(o, async (db, _c, journal) => {
        const { account, password } = await createAdmin(db, journal, { login, role: o.role, domains: o.domain, structures: o.structure }, `cli:${userInfo().username}`);
        process.stdout.write(`created ${account.role} admin ${account.login}${account.role === 'regional' ? ` (domains: ${account.domains.join(', ') || '-'}; structures: ${account.structures.join(', ') || '-'})` : ''}\npassword (shown once): ${password}\n`);
      }),
    ),
  );

  withConfigOptions(admin.command('list').description('list admin accounts')).action(
    action(async (o: Opts) => {
      const db = await openDb(configFrom(o));
      try {
        await migrate(db);
        for (const a of await listAdmins(db)) {
          process.stdout.write(`${a.login.padEnd(24)} ${a.role.padEnd(9)} ${a.active ? 'active  ' : 'disabled'} ${a.role === 'regional' ? [...a.domains, ...a.structures].join(', ') : 'all'}${a.lastLoginAt ? `  last login ${a.lastLoginAt.toISOString()}` : ''}\n`);
        }
      } finally {
        await db.close();
      }
    }),
  );

  withConfigOptions(
    admin
      .command('psc')
      .description("bind the account to a professional's RPPS: a Pro Santé Connect login naming it opens this account's console (--none: unbind)")
      .argument('<login>')
      .argument('[rpps]', 'the 11-digit RPPS, or "8" + RPPS')
      .option('--none', 'remove the binding'),
  ).action(
    action(async (login: string, rpps: string | undefined, o: Opts & { none?: boolean }) =>
      withJournal(o, async (db, _c, journal) => {
        if (!rpps && !o.none) throw new Error('give the RPPS, or --none');
        const r = await setAdminNationalId(db, journal, login, o.none ? null : rpps!, `cli:${userInfo().username}`);
        process.stdout.write(r.idnps ? `${r.login}: Pro Santé Connect logins of ${r.idnps} open this account\n` : `${r.login}: no Pro Santé Connect login\n`);
      }),
    ),
  );
}
