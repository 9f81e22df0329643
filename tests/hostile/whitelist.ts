// The liste blanche corpus's context: importWhitelist (what `mss whitelist import`, the
// admin API and the platform's start run) on a database of its own. Lists are dated one
// minute apart in the order they are imported; each carries every domain the normal
// imports added (a list is the whole trust space: one without them would remove them).
import { expect } from 'vitest';
import { importWhitelist, isWhitelisted } from '../../annuaire/whitelist/index.js';
import type { Outcome } from './harness.js';
import { scratchDb, thrownOutcome } from './files.js';

export interface WhitelistCtx {
  /** The next generation date, ISO without zone as the national file writes it. */
  next(): string;
  /** A list with the normal domains, these extra <Domaine> bodies (raw XML) and `date` (the next one by default). */
  xml(o?: { extra?: string[]; date?: string; prolog?: string; ns?: string }): string;
  /** Imports the bytes: `accepted` (what was added, rejected, duplicated) or the refusal. */
  run(body: Buffer | string): Promise<Outcome>;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
/** One <Domaine> as the national list writes it. */
export const domaine = (nom: string, dn = 'CN=mx.example.fr,OU=1,O=Opérateur,ST=Paris (75),C=FR') =>
  `<Domaine><Nom>${nom}</Nom><Description>test</Description><DNCertificatOperateur>${esc(dn)}</DNCertificatOperateur><ResponsableContact>r@example.fr</ResponsableContact><SupportContact>s@example.fr</SupportContact><DateMAJ>2025-01-01</DateMAJ></Domaine>`;

export async function whitelistCtx(): Promise<WhitelistCtx & { serves(): Promise<void>; nothingLost(): Promise<void>; close(): Promise<void> }> {
  const { db, journal, close } = await scratchDb();
  const normal: string[] = [];
  let minute = 0;
  const next = () => new Date(Date.UTC(2026, 0, 1, 0, ++minute)).toISOString().slice(0, 19);
  const ctx: WhitelistCtx = {
    next,
    xml: (o = {}) =>
      `<?xml version="1.0" encoding="UTF-8"?>\n${o.prolog ?? ''}<ListeBlanche xmlns="${o.ns ?? 'https://listeblanche.mssante.fr/schema'}">\n<DateDeGeneration>${o.date ?? next()}</DateDeGeneration>\n<Domaines>\n${[...normal.map((d) => domaine(d)), ...(o.extra ?? [])].join('\n')}\n</Domaines>\n</ListeBlanche>\n`,
    async run(body) {
      try {
        const r = await importWhitelist(db, journal, Buffer.isBuffer(body) ? body : Buffer.from(body), 'hostile corpus', 'test');
        const parts = [`added ${r.added.join(',') || 'nothing'}`, ...(r.rejected.length ? [`rejected ${r.rejected.map((x) => `${x.name}: ${x.reason}`).join('; ')}`] : []), ...(r.duplicates.length ? [`duplicates ${r.duplicates.join(',')}`] : [])];
        return { code: 'accepted', text: parts.join('; ') };
      } catch (e) {
        return thrownOutcome(e);
      }
    },
  };
  let n = 0;
  return {
    ...ctx,
    /** A newer list with one more domain: accepted, that domain added. */
    async serves() {
      const d = `normal-${++n}.mssante.fr`;
      normal.push(d);
      const o = await ctx.run(ctx.xml());
      expect(`${o.code} ${o.text}`).toBe(`accepted added ${d}`);
    },
    async nothingLost() {
      for (const d of normal) expect(await isWhitelisted(db, d), d).toBe(true);
      const { rows } = await db.query<{ domain: string }>("SELECT domain FROM whitelist_domains WHERE domain LIKE '%pirate%'");
      expect(rows).toEqual([]);
    },
    close,
  };
}
