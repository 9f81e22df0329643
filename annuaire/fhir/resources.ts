// From rows of the annuaire_fhir_* views (migration 0510) to FHIR R4 resources shaped by the
// ANS Annuaire Santé profiles. Pure: no I/O. Empty values are left out (FHIR forbids empty
// strings and empty arrays).
import { BAL_TYPES, CODE_SYSTEM, EXTENSION, ID_SYSTEM, ID_TYPE_SYSTEM, PROFILE } from './codes.js';
import { organizationId, roleId } from './ids.js';

export type Row = Record<string, string | null | undefined | Date>;
export type Resource = { resourceType: string; id: string } & Record<string, unknown>;

const text = (v: Row[string]): string | undefined => {
  if (v === null || v === undefined || v instanceof Date) return undefined;
  const t = v.replace(/\s+/g, ' ').trim();
  return t || undefined;
};

/** Drops undefined members and empty arrays, so the JSON never carries them. */
function compact<T extends Record<string, unknown>>(o: T): T {
  for (const k of Object.keys(o)) {
    const v = o[k];
    if (v === undefined || (Array.isArray(v) && !v.length)) delete o[k];
  }
  return o;
}

const coding = (system: string, code: Row[string], display?: Row[string]) => {
  const c = text(code);
  return c ? compact({ system, code: c, display: text(display) }) : undefined;
};

const concept = (...codings: Array<ReturnType<typeof coding>>) => {
  const list = codings.filter((c): c is NonNullable<typeof c> => !!c);
  return list.length ? { coding: list } : undefined;
};

const meta = (type: keyof typeof PROFILE, lastSeen: Row[string]) =>
  compact({ profile: [PROFILE[type]], lastUpdated: lastSeen instanceof Date ? lastSeen.toISOString() : undefined });

const identifier = (system: string, typeCode: string, value: Row[string]) => {
  const v = text(value);
  return v ? { use: 'official', type: { coding: [{ system: ID_TYPE_SYSTEM, code: typeCode }] }, system, value: v } : undefined;
};

/** A published MSSanté mailbox as a ContactPoint (FR Core email type + ANS mailbox metadata). */
export function mailboxTelecom(box: Row): Record<string, unknown> {
  const type = text(box.bal_type);
  const metadata = [
    type && (BAL_TYPES as readonly string[]).includes(type) ? { url: 'type', valueCodeableConcept: { coding: [{ system: CODE_SYSTEM.typeBal, code: type }] } } : undefined,
    text(box.service) ? { url: 'service', valueString: text(box.service) } : undefined,
    // Only published boxes reach this function (annuaire_ldap_bal): none is on the liste rouge.
    { url: 'listeRouge', valueBoolean: false },
  ].filter(Boolean);
  return {
    extension: [
      { url: EXTENSION.emailType, valueCoding: { system: CODE_SYSTEM.typeMessagerie, code: 'MSSANTE' } },
      { url: EXTENSION.mailboxMetadata, extension: metadata },
    ],
    system: 'email',
    value: String(box.address),
    use: 'work',
  };
}

/** Distinct postal addresses of some rows (line, postal_code, city, country columns). */
function addresses(rows: Row[]): Array<Record<string, unknown>> {
  const seen = new Set<string>();
  const out: Array<Record<string, unknown>> = [];
  for (const r of rows) {
    const a = compact({ use: 'work', line: text(r.line) ? [text(r.line)!] : undefined, city: text(r.city), postalCode: text(r.postal_code), country: text(r.country) });
    if (Object.keys(a).length === 1) continue;
    const k = JSON.stringify(a);
    if (!seen.has(k)) out.push(a), seen.add(k);
  }
  return out;
}

export function practitioner(p: Row, boxes: Row[]): Resource {
  const idnps = String(p.key);
  const rpps = text(p.id_type) === '8' ? text(p.id_pp) : undefined;
  const prefix = text(p.civilite_exercice_code) ?? text(p.civilite_code);
  const name = compact({ use: 'official', family: text(p.nom), given: text(p.prenom) ? [text(p.prenom)!] : undefined, prefix: prefix ? [prefix] : undefined });
  const qualification = concept(coding(CODE_SYSTEM.profession, p.profession_code, p.profession), coding(CODE_SYSTEM.categorie, p.categorie_code, p.categorie));
  return compact({
    resourceType: 'Practitioner',
    id: idnps,
    meta: meta('Practitioner', p.last_seen),
    identifier: [identifier(ID_SYSTEM.idnps, 'IDNPS', idnps), rpps ? identifier(ID_SYSTEM.rpps, 'RPPS', rpps) : undefined].filter(Boolean),
    active: true,
    name: Object.keys(name).length > 1 ? [name] : undefined,
    telecom: boxes.map(mailboxTelecom),
    address: addresses(boxes),
    qualification: qualification ? [{ code: qualification }] : undefined,
  });
}

export function practitionerRole(r: Row): Resource {
  const idnps = String(r.idnps);
  const org = text(r.organization_key);
  const orgId = org ? organizationId(org) : null;
  // The savoir-faire is coded in TRE_R38 when it is a spécialité ordinale (type S); other
  // types (compétences, DESC…) have other tables: their label is given as text.
  const sf = text(r.savoir_faire_code);
  const specialty = sf ? (text(r.savoir_faire_type_code) === 'S' ? concept(coding(CODE_SYSTEM.specialite, sf, r.savoir_faire)) : { text: text(r.savoir_faire) ?? sf }) : undefined;
  return compact({
    resourceType: 'PractitionerRole',
    id: roleId(idnps, String(r.key)),
    meta: meta('PractitionerRole', r.last_seen),
    active: true,
    practitioner: { reference: `Practitioner/${idnps}` },
    organization: orgId ? { reference: `Organization/${orgId}` } : undefined,
    code: [
      concept(coding(CODE_SYSTEM.profession, r.profession_code, r.profession), coding(CODE_SYSTEM.categorie, r.categorie_code, r.categorie)),
      concept(coding(CODE_SYSTEM.modeExercice, r.mode_exercice_code, r.mode_exercice)),
      concept(coding(CODE_SYSTEM.fonction, r.role_code, r.role)),
      concept(coding(CODE_SYSTEM.genreActivite, r.genre_code, r.genre)),
    ].filter(Boolean),
    specialty: specialty ? [specialty] : undefined,
  });
}

export function organization(o: Row, boxes: Row[]): Resource {
  const key = String(o.key);
  const phones = [text(o.phone) ? { system: 'phone', value: text(o.phone), use: 'work' } : undefined, text(o.fax) ? { system: 'fax', value: text(o.fax), use: 'work' } : undefined].filter(Boolean);
  return compact({
    resourceType: 'Organization',
    id: organizationId(key)!,
    meta: meta('Organization', o.last_seen),
    identifier: [
      identifier(ID_SYSTEM.idnst, 'IDNST', o.idnst),
      identifier(ID_SYSTEM.finess, 'FINEG', o.finess),
      identifier(ID_SYSTEM.finess, 'FINEJ', o.finess_ej),
      identifier(ID_SYSTEM.siret, 'SIRET', o.siret),
    ].filter(Boolean),
    active: true,
    type: [concept(coding(CODE_SYSTEM.secteur, o.secteur_code, o.secteur))].filter(Boolean),
    name: text(o.name) ?? key,
    alias: text(o.enseigne) && text(o.enseigne) !== text(o.name) ? [text(o.enseigne)!] : undefined,
    telecom: [...phones, ...boxes.map(mailboxTelecom)],
    address: addresses([o]),
  });
}
