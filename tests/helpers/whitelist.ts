// Generates liste blanche files in the national format (listeblanchemssante.xml): ~320
// operators, ~8,600 domains by default, some with non-ASCII (IDN) names, deterministic for a
// given seed so that a "next" list can add, drop and change known entries.

export interface WhitelistSpec {
  /** Number of <Domaine> entries (default 8,600). */
  count?: number;
  /** DateDeGeneration, written as the national file does (ISO, no zone). */
  generatedAt?: string;
  /** Indexes of generated entries to leave out (to make a list that removed them). */
  drop?: number[];
  /** Indexes whose description changes (to make a list that changed them). */
  change?: number[];
  /** Extra entries appended as they are. */
  extra?: Array<{ nom: string; dn?: string; description?: string }>;
  /** Raw XML put right after the XML declaration (DTD tests). */
  prolog?: string;
}

const ACCENTED = ['hôpital', 'clinique-été', 'santé', 'pôle-médical', 'maternité', 'ehpad-les-chênes', 'centre-dentaire-égalité', 'pharmacie-à-domicile'];
const REGIONS = ['Paris (75)', 'Rhône (69)', 'Gironde (33)', 'Nord (59)', 'Bouches-du-Rhône (13)', 'Ille-et-Vilaine (35)'];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The Nom of entry i: every 50th is an IDN name. */
export function generatedName(i: number): string {
  const op = i % 320;
  if (i % 50 === 7) return `${ACCENTED[i % ACCENTED.length]}-${i}.op${op}.mssante.fr`;
  return `etab-${i}.op${op}.mssante.fr`;
}

export function operatorDn(i: number): string {
  const op = i % 320;
  return `CN=mx.op${op}.mssante.fr,OU=${String(30000000000000 + op * 7919)},O=Opérateur & Fils ${op},ST=${REGIONS[op % REGIONS.length]},C=FR`;
}

export function makeWhitelistXml(spec: WhitelistSpec = {}): string {
  const count = spec.count ?? 8600;
  const drop = new Set(spec.drop ?? []);
  const change = new Set(spec.change ?? []);
  const parts: string[] = ['<?xml version="1.0" encoding="UTF-8"?>\n'];
  if (spec.prolog) parts.push(spec.prolog, '\n');
  parts.push('<ListeBlanche xmlns="https://listeblanche.mssante.fr/schema">\n');
  parts.push(`  <DateDeGeneration>${spec.generatedAt ?? '2026-02-01T03:00:00'}</DateDeGeneration>\n  <Domaines>\n`);
  const entry = (nom: string, description: string, dn: string, op: number) =>
    `    <Domaine>\n      <Nom>${esc(nom)}</Nom>\n      <Description>${esc(description)}</Description>\n      <DNCertificatOperateur>${esc(dn)}</DNCertificatOperateur>\n` +
    `      <ResponsableContact>responsable@op${op}.fr</ResponsableContact>\n      <SupportContact>support@op${op}.fr</SupportContact>\n      <DateMAJ>2025-${String((op % 12) + 1).padStart(2, '0')}-15</DateMAJ>\n    </Domaine>\n`;
  for (let i = 0; i < count; i++) {
    if (drop.has(i)) continue;
    parts.push(entry(generatedName(i), `Établissement ${i} — opérateur ${i % 320}${change.has(i) ? ' (modifié)' : ''}`, operatorDn(i), i % 320));
  }
  for (const e of spec.extra ?? []) parts.push(entry(e.nom, e.description ?? 'extra', e.dn ?? 'CN=mx.extra.fr,OU=1,O=Extra,ST=Paris (75),C=FR', 0));
  parts.push('  </Domaines>\n</ListeBlanche>\n');
  return parts.join('');
}
