// Synthetic annuaire rows for the LDAP tests and bench, written straight into the import's
// tables (annuaire_persons, annuaire_mss_addresses) by set-based SQL, so a million rows take
// seconds on PostgreSQL and the same SQL runs on PGlite. Names carry accents (é, è, ï, ç)
// because address-book searches must find them.
//
// For person i (from..from+count-1): one PER mailbox prenom.nom.i@<domain>; every 10th
// person also an ORG mailbox secretariat.<i>@<domain> of structure 1+FINESS; every 50th
// mailbox is on the liste rouge (its holder then has no public mailbox: no person entry).

import type { Queryable } from '../core/db/index.js';

const NOMS = ['MARTIN', 'BERNARD', 'DUBOIS', 'THOMAS', 'ROBERT', 'RICHARD', 'PETIT', 'DURAND', 'LEROY', 'MOREAU', 'LEFÈVRE', 'FRANÇOIS', 'MÉNARD', 'CHÂTEL', 'NOËL'];
const PRENOMS = ['Hélène', 'Zoé', 'Jérôme', 'Anaïs', 'François', 'Cécile', 'Loïc', 'Agnès', 'Benoît', 'Maëlle', 'Jean', 'Marie', 'Paul', 'Léa', 'Noémie'];
const PROFESSIONS: Array<[string, string]> = [['10', 'Médecin'], ['40', 'Chirurgien-Dentiste'], ['50', 'Sage-Femme'], ['60', 'Infirmier'], ['21', 'Pharmacien']];
const VILLES = ['75013 PARIS', '69003 LYON', '13005 MARSEILLE CEDEX 05', '59000 LILLE', '97400 SAINT-DENIS'];

const arr = (xs: string[]) => `ARRAY[${xs.map((x) => `'${x.replace(/'/g, "''")}'`).join(',')}]`;
/** Accents out, for the local part of an address. */
const ascii = (expr: string) => `translate(lower(${expr}), 'éèêëàâäîïôöûüùçœ', 'eeeeaaaiioouuuco')`;

export interface SeedResult {
  persons: number;
  mailboxes: number;
}

/** Inserts `count` persons and their mailboxes; ids start at `from` so that seeds can be added later. */
export async function seedAnnuaire(q: Queryable, opts: { count: number; from?: number; domain?: string }): Promise<SeedResult> {
  const from = opts.from ?? 1;
  const to = from + opts.count - 1;
  const domain = opts.domain ?? 'mssante.localhost';
  const nom = `(${arr(NOMS)})[1 + i % ${NOMS.length}]`;
  const prenom = `(${arr(PRENOMS)})[1 + (i / ${NOMS.length}) % ${PRENOMS.length}]`;
  const prof = (k: 0 | 1) => `(${arr(PROFESSIONS.map((p) => p[k]))})[1 + i % ${PROFESSIONS.length}]`;
  const ville = `(${arr(VILLES)})[1 + i % ${VILLES.length}]`;
  const idnps = `'8' || lpad(i::text, 11, '0')`;
  const finess = `'1' || lpad((750000000 + i)::text, 9, '0')`;
  const common = `true, now(), now(), 'fixture'`;
  const persons = await q.query(
    `INSERT INTO annuaire_persons (idnps, id_type, id_pp, civilite_exercice, nom, prenom, profession_code, profession, savoir_faire_code, savoir_faire, hash, active, first_seen, last_seen, source_file)
     SELECT ${idnps}, '8', lpad(i::text, 11, '0'), CASE WHEN i % 5 = 0 THEN 'Pr' ELSE 'Dr' END, ${nom}, ${prenom}, ${prof(0)}, ${prof(1)},
            CASE WHEN i % 3 = 0 THEN 'SM54' END, CASE WHEN i % 3 = 0 THEN 'Médecine générale' END, md5(i::text), ${common}
     FROM generate_series(${from}, ${to}) AS i`,
  );
  const cols = `address, bal_type, id_type, id_pp, idnps, structure_id_type, structure_id, service, civilite_exercice, nom, prenom, profession_code, profession,
                raison_sociale, numero_voie, type_voie, libelle_voie, ligne_acheminement, code_postal, liste_rouge, hash, active, first_seen, last_seen, source_file`;
  const per = await q.query(
    `INSERT INTO annuaire_mss_addresses (${cols})
     SELECT ${ascii(prenom)} || '.' || ${ascii(nom)} || '.' || i || '@${domain}', 'PER', '8', lpad(i::text, 11, '0'), ${idnps},
            CASE WHEN i % 10 = 0 THEN '1' END, CASE WHEN i % 10 = 0 THEN ${finess} END, NULL,
            CASE WHEN i % 5 = 0 THEN 'Pr' ELSE 'Dr' END, ${nom}, ${prenom}, ${prof(0)}, ${prof(1)},
            CASE WHEN i % 10 = 0 THEN 'Hôpital Saint-Éloi n°' || i ELSE 'Cabinet médical' END, (1 + i % 120)::text, 'RUE', 'de la Santé',
            ${ville}, left(${ville}, 5), i % 50 = 0, md5('p' || i), ${common}
     FROM generate_series(${from}, ${to}) AS i`,
  );
  const org = await q.query(
    `INSERT INTO annuaire_mss_addresses (${cols})
     SELECT 'secretariat.' || i || '@${domain}', 'ORG', NULL, NULL, NULL, '1', ${finess}, 'Secrétariat de cardiologie',
            NULL, NULL, NULL, NULL, NULL, 'Hôpital Saint-Éloi n°' || i, (1 + i % 120)::text, 'AVENUE', 'des Tilleuls',
            ${ville}, left(${ville}, 5), (i / 10) % 50 = 7, md5('o' || i), ${common}
     FROM generate_series(${from}, ${to}) AS i WHERE i % 10 = 0`,
  );
  return { persons: persons.rowCount, mailboxes: per.rowCount + org.rowCount };
}

/** How many entries the directory should hold: the skeleton (4) and the three views. */
/**
 * Entries the directory holds: 'public' what anonymous clients see (base, three OUs and the
 * published entries), 'all' also the private routing branch (ou=routage and its entries).
 */
export async function expectedEntries(q: Queryable, scope: 'public' | 'all' = 'public'): Promise<number> {
  const { rows } = await q.query<{ n: number }>(
    `SELECT ((SELECT count(*) FROM annuaire_ldap_bal) + (SELECT count(*) FROM annuaire_ldap_persons) + (SELECT count(*) FROM annuaire_ldap_structures) + 4
       ${scope === 'all' ? '+ (SELECT count(*) FROM annuaire_ldap_routage) + 1' : ''})::int AS n`,
  );
  return rows[0].n;
}
