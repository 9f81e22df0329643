import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { currentWhitelist, importWhitelist, listWhitelist, readWhitelistSource, whitelistEntry } from '../../annuaire/whitelist/index.js';
import { action, withConfigOptions, withDb, withJournal } from '../cli.js';

type Opts = { config?: string; dataDir?: string };


const out = (s: string): void => void process.stdout.write(s);

export function registerWhitelist(program: Command) {
  const wl = program.command('whitelist').description('the national liste blanche: the operator domains of the MSSanté trust space');

  withConfigOptions(
    wl
      .command('import')
      .description('import listeblanchemssante.xml from a file or an http(s) URL; an older list than the one in place is refused; changes are applied at once and journalled')
      .argument('<file-or-url>'),
  ).action(
    action(async (source: string, o: Opts) =>
      withJournal(o, async (db, _c, journal) => {
        const body = await readWhitelistSource(source);
        const r = await importWhitelist(db, journal, body, source, `cli:${userInfo().username}`);
        if (r.unchanged) return out(`the liste blanche of ${r.generatedAt.toISOString()} is already in place; nothing changed\n`);
        out(`liste blanche of ${r.generatedAt.toISOString()} applied: ${r.domains} domains (${r.added.length} added, ${r.removed.length} removed, ${r.changed.length} changed)\n`);
        for (const d of r.added.slice(0, 20)) out(`  + ${d}\n`);
        for (const d of r.removed.slice(0, 20)) out(`  - ${d}\n`);
        for (const d of r.changed.slice(0, 20)) out(`  ~ ${d}\n`);
        if (r.added.length + r.removed.length + r.changed.length > 60) out('  … (every change is in the journal: whitelist.domain.* events)\n');
        for (const x of r.rejected) out(`  ignored entry "${x.name}": ${x.reason}\n`);
      }),
    ),
  );

  withConfigOptions(wl.command('list').description('list the domains on the liste blanche').option('-s, --search <text>', 'domain, description or operator DN containing this text').option('--limit <n>', 'at most n domains', '100')).action(
    action(async (o: Opts & { search?: string; limit: string }) =>
      withDb(o, async (db) => {
        const cur = await currentWhitelist(db);
        if (!cur) return out('no liste blanche imported yet (mss whitelist import FILE|URL)\n');
        out(`liste blanche of ${cur.generatedAt.toISOString()}, ${cur.domains} domains, imported ${cur.importedAt.toISOString()} from ${cur.source}\n`);
        for (const d of await listWhitelist(db, { text: o.search, limit: Number(o.limit) || 100 })) out(`${d.domainUnicode}${d.domainUnicode !== d.domain ? ` (${d.domain})` : ''}  ${d.operatorDn ?? ''}\n`);
      }),
    ),
  );

  withConfigOptions(wl.command('check').description('is this domain on the liste blanche? exit 0 if it is, 1 if not').argument('<domain>')).action(
    action(async (domain: string, o: Opts) =>
      withDb(o, async (db) => {
        const e = await whitelistEntry(db, domain);
        if (!e) {
          out(`${domain} is NOT on the liste blanche\n`);
          return 1;
        }
        out(`${e.domainUnicode} is on the liste blanche${e.domain !== e.domainUnicode ? ` (A-label ${e.domain})` : ''}\n  operator certificate  ${e.operatorDn ?? '-'}\n  description           ${e.description ?? '-'}\n`);
        return 0;
      }),
    ),
  );
}
