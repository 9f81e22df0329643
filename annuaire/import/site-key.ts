// The key of a practice site whose "Identifiant technique de la structure" is empty. The
// national activity file has such lines — a site with its name, FINESS or SIRET and
// address, but no technical id — and without a key the site would be stored nowhere and
// its activities would point at nothing. The key must name the same site next month (a
// monthly sync then updates it instead of deleting and re-creating it), so it is made from
// what identifies a site, most stable first:
//
//   1<FINESS site>   the site's FINESS (établissement géographique)
//   3<SIRET site>    else its SIRET
//   site:<24 hex>    else SHA-256 of its normalised name and address (first 96 bits)
//
// The first two are the national structure identifiers (IDNST: type digit + id), the form
// the MSSanté extraction uses in "Identification Structure": an organisational box that
// names the site by its FINESS finds it in annuaire_structures under the same key (the
// LDAP structure entry takes its name and address from there, migration 0155). The third
// changes when the name or the address does: that site is then a new one, as it would be
// for anyone reading the file. Normalised: accents and case dropped, punctuation and runs
// of spaces made one space, so a re-typed "Rue de l'Église" is still the same site.

import { createHash } from 'node:crypto';

export interface SiteFields {
  finessSite: string;
  siret: string;
  raisonSociale: string;
  enseigne: string;
  numeroVoie: string;
  indiceRepetition: string;
  typeVoie: string;
  voie: string;
  codePostal: string;
  commune: string;
}

/** The file columns siteKey reads, by field of SiteFields. */
export const SITE_COLUMNS: Record<keyof SiteFields, string> = {
  finessSite: 'Numéro FINESS site',
  siret: 'Numéro SIRET site',
  raisonSociale: 'Raison sociale site',
  enseigne: 'Enseigne commerciale site',
  numeroVoie: 'Numéro Voie (coord. structure)',
  indiceRepetition: 'Indice répétition voie (coord. structure)',
  typeVoie: 'Libellé type de voie (coord. structure)',
  voie: 'Libellé Voie (coord. structure)',
  codePostal: 'Code postal (coord. structure)',
  commune: 'Libellé commune (coord. structure)',
};

/** The columns whose presence makes a line describe a site (a line without any has no place of practice). */
export const SITE_PRESENCE: Array<keyof SiteFields> = ['finessSite', 'siret', 'raisonSociale', 'enseigne', 'voie', 'codePostal', 'commune'];

const normalise = (v: string) =>
  v
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .toUpperCase()
    .replace(/[^0-9A-Z]+/g, ' ')
    .trim();

/** The site's key, or undefined when the line describes no site at all. */
export function siteKey(f: SiteFields): string | undefined {
  const finess = f.finessSite.trim();
  if (finess) return `1${finess}`;
  const siret = f.siret.trim();
  if (siret) return `3${siret}`;
  if (!SITE_PRESENCE.some((k) => f[k].trim() !== '')) return undefined;
  const name = normalise(f.raisonSociale) || normalise(f.enseigne);
  const address = [f.numeroVoie, f.indiceRepetition, f.typeVoie, f.voie, f.codePostal, f.commune].map(normalise).join('|');
  return `site:${createHash('sha256').update(`${name}\n${address}`).digest('hex').slice(0, 24)}`;
}
