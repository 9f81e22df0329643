// The systems, code systems and profile URLs of the ANS "Annuaire Santé" FHIR IG
// (ansforge/IG-fhir-annuaire) and FR Core that our resources use. Data only: the mapping
// (resources.ts), the CapabilityStatement and the tests' profile checks all read these.

const NOS = (tre: string) => `https://mos.esante.gouv.fr/NOS/${tre}/FHIR/${tre.replace('_', '-')}`;

/** Identifier systems. */
export const ID_SYSTEM = {
  /** National id of a professional (IDNPS: "8" + RPPS, "0" + ADELI). */
  idnps: 'urn:oid:1.2.250.1.71.4.2.1',
  rpps: 'https://rpps.esante.gouv.fr',
  /** National id of a structure (IDNST: "1" + FINESS, "3" + SIRET…). */
  idnst: 'urn:oid:1.2.250.1.71.4.2.2',
  finess: 'https://finess.esante.gouv.fr',
  siret: 'https://sirene.fr',
} as const;

/** FR Core's identifier-type code system (v2-0203 and its French additions). */
export const ID_TYPE_SYSTEM = 'https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203';

/** Terminologies of the national nomenclatures (MOS/NOS). */
export const CODE_SYSTEM = {
  profession: NOS('TRE_G15-ProfessionSante'),
  categorie: NOS('TRE_R09-CategorieProfessionnelle'),
  /** Savoir-faire of type S (spécialité ordinale). */
  specialite: NOS('TRE_R38-SpecialiteOrdinale'),
  modeExercice: NOS('TRE_R23-ModeExercice'),
  fonction: NOS('TRE_R21-Fonction'),
  genreActivite: NOS('TRE_R22-GenreActivite'),
  secteur: NOS('TRE_R02-SecteurActivite'),
  typeBal: NOS('TRE_R257-TypeBAL'),
  typeMessagerie: NOS('TRE_R256-TypeMessagerie'),
} as const;

export const EXTENSION = {
  /** FR Core: which messaging an e-mail ContactPoint belongs to (MSSANTE). */
  emailType: 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-contact-point-email-type',
  /** ANS: the MSSanté mailbox metadata (type, description, service, listeRouge…). */
  mailboxMetadata: 'https://interop.esante.gouv.fr/ig/fhir/annuaire/StructureDefinition/as-ext-mailbox-mss-metadata',
} as const;

const AS = 'https://interop.esante.gouv.fr/ig/fhir/annuaire/StructureDefinition/';
export const PROFILE = {
  Practitioner: `${AS}as-practitioner`,
  PractitionerRole: `${AS}as-practitionerrole`,
  Organization: `${AS}as-organization`,
} as const;

export const BAL_TYPES = ['PER', 'CAB', 'ORG', 'APP'] as const;
export type BalType = (typeof BAL_TYPES)[number];
export const PERSONAL_BAL_TYPES: readonly BalType[] = ['PER', 'CAB'];
export const STRUCTURE_BAL_TYPES: readonly BalType[] = ['ORG', 'APP'];
