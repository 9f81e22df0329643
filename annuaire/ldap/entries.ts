// From a row of the annuaire_ldap_* views to an LDAP entry, and from an entry to LDIF.
// Pure: no I/O. The rebuild (LDIF for slapadd), the online sync (ldapts add/modify) and the
// check (digests) all go through entryFor(), so the three can never disagree.
//
// DN layout under the base (default o=MSSante,c=FR):
//
//   ou=bal,<base>          mail=<address>,ou=bal,<base>        one per published mailbox
//   ou=personnes,<base>    mssIdNps=<idnps>,ou=personnes,<base>  one per professional
//   ou=structures,<base>   mssStructureId=<id>,ou=structures,<base>
//
// Only mailbox entries are inetOrgPerson with cn/sn/givenName/mail: a mail client's
// address book (Thunderbird searches the whole base with (|(cn=*X*)(mail=*X*)(sn=*X*)
// (givenName=*X*))) therefore lists exactly one line per mailbox, showing the holder's name
// (PER/CAB) or the structure and service (ORG/APP). Person and structure entries carry
// the same facts under names mail clients do not search (mssNom, o…), for directory
// consumers that want them; a mailbox points to its holder by mssIdNps / mssStructureId.

import { createHash } from 'node:crypto';

export type EntryKind = 'bal' | 'person' | 'structure' | 'routage';
export const ENTRY_KINDS: readonly EntryKind[] = ['bal', 'person', 'structure', 'routage'];

export interface LdapEntry {
  dn: string;
  /** Attribute name (schema spelling) → values; never empty arrays. */
  attributes: Record<string, string[]>;
}

type Row = Record<string, string | null | undefined>;

/** The OU holding each kind, and the attribute naming its entries. */
export const LAYOUT: Record<EntryKind, { ou: string; rdn: string }> = {
  bal: { ou: 'bal', rdn: 'mail' },
  person: { ou: 'personnes', rdn: 'mssIdNps' },
  structure: { ou: 'structures', rdn: 'mssStructureId' },
  // Private: every local mailbox, liste rouge and closed ones included, for mail routing
  // (the SMTP fronts' recipient lookups). Anonymous clients cannot read it (see files.ts).
  routage: { ou: 'routage', rdn: 'mail' },
};

/** RFC 4514 escaping of an attribute value inside a DN. */
export function escapeDnValue(v: string): string {
  let out = v.replace(/[\\,+"<>;=]/g, (c) => '\\' + c);
  if (/^[ #]/.test(out)) out = '\\' + out;
  if (/ $/.test(out)) out = out.slice(0, -1) + '\\ ';
  return out.replace(/[\u0000-\u001f]/g, (c) => '\\' + c.charCodeAt(0).toString(16).padStart(2, '0'));
}

/** The value of the first RDN of a DN (un-escaped), or undefined when it is not `attr=…`. */
export function firstRdnValue(dn: string, attr: string): string | undefined {
  const eq = dn.indexOf('=');
  if (eq < 0 || dn.slice(0, eq).trim().toLowerCase() !== attr.toLowerCase()) return undefined;
  const bytes: number[] = [];
  const enc = new TextEncoder();
  for (let i = eq + 1; i < dn.length; i++) {
    const c = dn[i];
    if (c === ',' || c === '+') break;
    if (c === '\\') {
      const hex = dn.slice(i + 1, i + 3);
      if (/^[0-9a-fA-F]{2}$/.test(hex)) {
        bytes.push(parseInt(hex, 16));
        i += 2;
      } else {
        bytes.push(...enc.encode(dn[i + 1]));
        i++;
      }
    } else bytes.push(...enc.encode(c));
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

export function dnFor(kind: EntryKind, key: string, base: string): string {
  const { ou, rdn } = LAYOUT[kind];
  return `${rdn}=${escapeDnValue(key)},ou=${ou},${base}`;
}

/** The base entry and the three OUs, parents of everything else (slapadd wants them first). */
export function skeleton(base: string): LdapEntry[] {
  const top = /^o=([^,]+),/i.exec(base)?.[1] ?? 'MSSante';
  const rootClass = /^o=/i.test(base) ? { objectClass: ['top', 'organization'], o: [top] } : { objectClass: ['top', 'dcObject', 'organization'], o: ['MSSante'] };
  return [
    { dn: base, attributes: { ...rootClass, description: ['Annuaire MSSante (public part): one entry per published mailbox under ou=bal'] } },
    ...(['bal', 'personnes', 'structures', 'routage'] as const).map((ou) => ({ dn: `ou=${ou},${base}`, attributes: { objectClass: ['top', 'organizationalUnit'], ou: [ou] } })),
  ];
}

/** Needs cleaning: leading/trailing or repeated white space, tabs, line breaks. */
const MESSY = /^\s|\s$|\s\s|[\t\n\r\f\v]/;
// Called for every value of a million rows: no allocation when there is nothing to clean.
const clean = (v: string | null | undefined): string | undefined => {
  if (!v) return undefined;
  if (!MESSY.test(v)) return v;
  const t = v.replace(/\s+/g, ' ').trim();
  return t ? t : undefined;
};
const join = (...parts: Array<string | null | undefined>) => clean(parts.map(clean).filter(Boolean).join(' '));

/** RFC 4517 PostalAddress: lines separated by `$`; `\` and `$` inside a line escaped. */
function postalAddress(lines: Array<string | undefined>): string | undefined {
  const kept = lines.filter((l): l is string => !!l).map((l) => l.replace(/\\/g, '\\5C').replace(/\$/g, '\\24'));
  return kept.length ? kept.join('$') : undefined;
}

/** French postal lines (L2…L6) of the MSSante extraction, plus what mail clients split out. */
function address(r: Row) {
  const street = join(r.numero_voie, r.complement_numero_voie, r.type_voie, r.libelle_voie);
  const line6 = clean(r.ligne_acheminement);
  const postalCode = clean(r.code_postal) ?? (line6 ? /^(\d{5})\b/.exec(line6)?.[1] : undefined);
  // "75013 PARIS CEDEX 13" → "PARIS": the city is what follows the postal code.
  const city = line6 ? clean(line6.replace(/^\d{5}\s*/, '').replace(/\s+CEDEX(\s+\d+)?$/i, '')) : undefined;
  return {
    postalAddress: postalAddress([clean(r.complement_localisation), clean(r.complement_distribution), street, clean(r.lieu_dit_mention), line6, clean(r.pays)]),
    street,
    l: city,
    postalCode,
  };
}

/** FINESS / SIRET out of a structure id published as type digit + id. */
function structureIds(r: Row) {
  const id = clean(r.structure_id);
  const type = clean(r.structure_id_type);
  if (!id) return {};
  // "1" + 9-character FINESS, "3" + 14-digit SIRET; an id published without its prefix is kept whole.
  const strip = (len: number) => (id.length === len + 1 && id.startsWith(type!) ? id.slice(1) : id);
  const bare = type === '1' ? strip(9) : type === '3' ? strip(14) : id;
  return {
    mssStructureId: id,
    mssStructureIdType: type,
    mssFiness: type === '1' ? bare : undefined,
    mssSiret: type === '3' ? bare : undefined,
  };
}

function attrs(o: Record<string, string | string[] | undefined>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const k in o) {
    const v = o[k];
    if (v === undefined) continue;
    if (typeof v === 'string') {
      const c = clean(v);
      if (c) out[k] = [c];
      continue;
    }
    const vals: string[] = [];
    for (const x of v) {
      const c = clean(x);
      if (c && !vals.includes(c)) vals.push(c);
    }
    if (vals.length) out[k] = vals;
  }
  return out;
}

function balEntry(r: Row, base: string): LdapEntry {
  const type = clean(r.bal_type) ?? 'PER';
  const personal = type === 'PER' || type === 'CAB';
  const org = clean(r.raison_sociale) ?? clean(r.enseigne);
  const service = clean(r.service);
  const local = String(r.address).split('@')[0];
  // What the address book shows: the holder's name, or the structure and its service.
  const cn = personal ? (join(r.prenom, r.nom) ?? local) : (join(org, service ? `- ${service}` : undefined) ?? service ?? local);
  const sn = personal ? (clean(r.nom) ?? cn) : (org ?? service ?? cn);
  return {
    dn: dnFor('bal', String(r.key), base),
    attributes: attrs({
      objectClass: ['top', 'person', 'organizationalPerson', 'inetOrgPerson', 'mssBoite'],
      mail: String(r.address),
      cn,
      sn,
      givenName: personal ? r.prenom ?? undefined : undefined,
      displayName: personal ? join(r.civilite_exercice, r.prenom, r.nom) ?? cn : cn,
      title: personal ? r.profession ?? undefined : undefined,
      o: org,
      ou: service,
      ...address(r),
      mssBalType: type,
      mssIdNps: r.idnps ?? undefined,
      mssCivilite: personal ? r.civilite_exercice ?? undefined : undefined,
      mssProfessionCode: r.profession_code ?? undefined,
      mssProfession: r.profession ?? undefined,
      mssSavoirFaireCode: r.savoir_faire_code ?? undefined,
      mssSavoirFaire: r.savoir_faire ?? undefined,
      ...structureIds(r),
    }),
  };
}

function personEntry(r: Row, base: string): LdapEntry {
  return {
    dn: dnFor('person', String(r.key), base),
    attributes: attrs({
      objectClass: ['top', 'mssPersonne'],
      mssIdNps: String(r.idnps),
      mssCivilite: r.civilite_exercice ?? undefined,
      mssNom: r.nom ?? undefined,
      mssPrenom: r.prenom ?? undefined,
      displayName: join(r.civilite_exercice, r.prenom, r.nom),
      mssProfessionCode: r.profession_code ?? undefined,
      mssProfession: r.profession ?? undefined,
      mssSavoirFaireCode: r.savoir_faire_code ?? undefined,
      mssSavoirFaire: r.savoir_faire ?? undefined,
    }),
  };
}

function structureEntry(r: Row, base: string): LdapEntry {
  return {
    dn: dnFor('structure', String(r.key), base),
    attributes: attrs({
      objectClass: ['top', 'organization', 'mssStructure'],
      o: clean(r.raison_sociale) ?? clean(r.enseigne) ?? String(r.key),
      // The trade name, when the structure has one besides its legal name.
      description: clean(r.raison_sociale) && clean(r.enseigne) !== clean(r.raison_sociale) ? r.enseigne ?? undefined : undefined,
      ...address(r),
      ...structureIds(r),
    }),
  };
}

/** A routing entry: is this address one of ours, of which type, open or closed. */
function routageEntry(r: Row, base: string): LdapEntry {
  return {
    dn: dnFor('routage', String(r.key), base),
    attributes: attrs({ objectClass: ['top', 'mssRoutage'], mail: String(r.address), mssBalType: r.bal_type ?? undefined, mssStatus: r.status ?? undefined }),
  };
}

export function entryFor(kind: EntryKind, row: Row, base: string): LdapEntry {
  switch (kind) {
    case 'bal':
      return balEntry(row, base);
    case 'person':
      return personEntry(row, base);
    case 'structure':
      return structureEntry(row, base);
    case 'routage':
      return routageEntry(row, base);
  }
}

// ---- LDIF (RFC 2849) ----

/** A value that may be written as-is after `attr: `; anything else is base64 (`attr:: `). */
const SAFE = /^[\x01-\x09\x0b\x0c\x0e-\x1f\x21-\x39\x3b\x3d-\x7f][\x01-\x09\x0b\x0c\x0e-\x7f]*$/;

function ldifLine(name: string, value: string): string {
  return SAFE.test(value) && value.charCodeAt(value.length - 1) !== 32 ? `${name}: ${value}\n` : `${name}:: ${Buffer.from(value, 'utf8').toString('base64')}\n`;
}

/** One entry as an LDIF record, blank line included. Lines are not folded (slapadd does not need it). */
export function toLdif(e: LdapEntry): string {
  let s = ldifLine('dn', e.dn);
  const a = e.attributes;
  for (const name in a) for (const v of a[name]) s += ldifLine(name, v);
  return s + '\n';
}

// ---- Comparison ----

/** Attribute names compared case-insensitively, objectClass values too (schema names); other values exactly. */
export function normalise(attributes: Record<string, string[]>): Array<[string, string[]]> {
  return Object.entries(attributes)
    .map(([k, v]): [string, string[]] => {
      const name = k.toLowerCase();
      const vals = name === 'objectclass' ? v.map((x) => x.toLowerCase()) : [...v];
      return [name, [...new Set(vals)].sort()];
    })
    .filter(([, v]) => v.length)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** A short fingerprint of an entry's content, equal on both sides when they agree. */
export function digest(attributes: Record<string, string[]>): string {
  return createHash('sha256').update(JSON.stringify(normalise(attributes))).digest('base64url').slice(0, 22);
}

/** What differs between two attribute sets: the names of attributes added, removed or changed. */
export function attributeDiff(want: Record<string, string[]>, have: Record<string, string[]>): string[] {
  const a = new Map(normalise(want));
  const b = new Map(normalise(have));
  const out: string[] = [];
  for (const name of new Set([...a.keys(), ...b.keys()])) {
    const x = a.get(name);
    const y = b.get(name);
    if (JSON.stringify(x) !== JSON.stringify(y)) out.push(name);
  }
  return out.sort();
}
