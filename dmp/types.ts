// The XDS metadata the dmp/ folder reads (METADATA.XML of an IHE_XDM package, a CDA R2
// header), writes (METADATA.XML when sending, the ITI-41 SubmitObjectsRequest) and checks.
// One shape for all of them, so a document read from a lab's XDM goes to the DMP unchanged.

/** A coded value (an ebRIM Classification): code, code system OID, display name. */
export interface Coded {
  code: string;
  /** Code system OID (the `codingScheme` slot), e.g. LOINC 2.16.840.1.113883.6.1. */
  scheme: string;
  display?: string;
}

/** The author of a document: a professional (RPPS national id) and/or a structure. */
export interface Author {
  /** XCN form: `8<RPPS>^<NOM>^<Prénom>^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS`. */
  person?: string;
  /** XON form of the structure. */
  institution?: string[];
  role?: string[];
  specialty?: string[];
}

/** The patient: INS (matricule) and the OID of its kind (INS-NIR 1.2.250.1.213.1.4.8, test …4.10). */
export interface PatientId {
  id: string;
  oid: string;
}

export interface DocumentEntry {
  /** Local ebRIM id (urn:uuid:… or Document01). */
  entryUuid: string;
  /** Globally unique document id (an OID, or OID^extension). */
  uniqueId: string;
  patientId: PatientId;
  classCode: Coded;
  typeCode: Coded;
  formatCode: Coded;
  /** At least one; DMP masking adds 1.2.250.1.213.1.1.4.13 codes to the HL7 one (N…). */
  confidentialityCodes: Coded[];
  practiceSettingCode?: Coded;
  healthcareFacilityTypeCode?: Coded;
  eventCodes?: Coded[];
  authors: Author[];
  /** XDS DTM: YYYYMMDDhhmmss (UTC), shorter forms allowed. */
  creationTime: string;
  serviceStartTime?: string;
  serviceStopTime?: string;
  title?: string;
  mimeType: string;
  languageCode: string;
  /** SHA-1 of the document, lower-case hex. */
  hash: string;
  size: number;
  /** XDM: the document's file name in the subset (relative to it, as written). */
  uri?: string;
  /** Patient's name etc. as sourcePatientInfo PID-x lines, kept as read. */
  sourcePatientInfo?: string[];
}

export interface SubmissionSet {
  entryUuid: string;
  uniqueId: string;
  sourceId: string;
  patientId: PatientId;
  contentTypeCode: Coded;
  /** XDS DTM. */
  submissionTime: string;
  authors: Author[];
  title?: string;
  intendedRecipients?: string[];
}

/** A submission: one set, its documents, and their bytes (by entryUuid). */
export interface Submission {
  set: SubmissionSet;
  documents: DocumentEntry[];
  contents: Map<string, Buffer>;
}

/** DMP masking choices (the seeds' "masqué / invisible patient / invisible représentants légaux"). */
export type Masking = 'normal' | 'masque-ps' | 'invisible-patient' | 'invisible-representants-legaux';
