// A message's clinical documents as a person reads them: per attachment, each document's
// patient (name, birth date, INS and its kind), type, author, date, confidentiality and DMP
// visibility, and its narrative as HTML (dmp/narrative.ts). Plain JSON, for the webmail.
import { looksLikeCda, readCdaHeader } from './cda.js';
import type { MessageDocument } from './documents.js';
import { maskingOf } from './masking.js';
import { cdaNarrative } from './narrative.js';
import type { Author, Coded, DocumentEntry, Masking, PatientId } from './types.js';

export interface ClinicalPatient {
  family: string | null;
  given: string | null;
  /** YYYY-MM-DD. */
  birthDate: string | null;
  ins: string | null;
  /** INS-NIR, INS-NIA, INS-NIR de test…, or the OID when it is another. */
  insKind: string | null;
}

export interface ClinicalDocumentView {
  title: string | null;
  type: Coded | null;
  patient: ClinicalPatient;
  authors: Array<{ name: string | null; id: string | null; institution: string | null }>;
  /** ISO 8601 (from the XDS DTM or the CDA effectiveTime, UTC). */
  date: string | null;
  confidentiality: Coded[];
  masking: Masking[];
  /** The document's narrative as HTML (escaped text in a few plain elements), null when it has none. */
  narrative: string | null;
  /** Why the narrative cannot be shown, when that is so. */
  narrativeError?: string;
}

export interface ClinicalAttachmentView {
  filename: string;
  kind: 'xdm' | 'cda';
  error?: string;
  documents: ClinicalDocumentView[];
}

const INS_KINDS: Record<string, string> = {
  '1.2.250.1.213.1.4.8': 'INS-NIR',
  '1.2.250.1.213.1.4.9': 'INS-NIA',
  '1.2.250.1.213.1.4.10': 'INS-NIR de test',
  '1.2.250.1.213.1.4.11': 'INS-NIR de démonstration',
};

/** XDS DTM (YYYYMMDD[hhmm[ss]], UTC) → ISO 8601. */
export function dtmToIso(dtm: string | undefined): string | null {
  const m = /^(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})?(\d{2})?)?$/.exec(dtm ?? '');
  if (!m) return null;
  const d = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +(m[4] ?? 0), +(m[5] ?? 0), +(m[6] ?? 0)));
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}
const day = (yyyymmdd: string | undefined) => (yyyymmdd && /^\d{8}$/.test(yyyymmdd) ? `${yyyymmdd.slice(0, 4)}-${yyyymmdd.slice(4, 6)}-${yyyymmdd.slice(6, 8)}` : null);

function authorView(a: Author) {
  const p = (a.person ?? '').split('^');
  const name = [p[2], p[1]].filter(Boolean).join(' ') || null;
  return { name, id: p[0] || null, institution: a.institution?.[0]?.split('^')[0] || null };
}

function patientView(id: PatientId | undefined, info: { family?: string; given?: string; birthDate?: string }): ClinicalPatient {
  return { family: info.family ?? null, given: info.given ?? null, birthDate: day(info.birthDate), ins: id?.id ?? null, insKind: id ? (INS_KINDS[id.oid] ?? id.oid) : null };
}

/** Name and birth date of sourcePatientInfo (PID-5 NOM^Prénom, PID-7). */
function pidInfo(d: Pick<DocumentEntry, 'sourcePatientInfo'>) {
  const info = d.sourcePatientInfo ?? [];
  const pid5 = info.find((l) => l.startsWith('PID-5|'))?.slice(6).split('~')[0]?.split('^');
  const pid7 = info.find((l) => l.startsWith('PID-7|'))?.slice(6).trim().slice(0, 8);
  return { ...(pid5?.[0] ? { family: pid5[0] } : {}), ...(pid5?.[1] ? { given: pid5[1] } : {}), ...(pid7 ? { birthDate: pid7 } : {}) };
}

function narrativeOf(bytes: Buffer | undefined): Pick<ClinicalDocumentView, 'narrative' | 'narrativeError'> {
  if (!bytes || !looksLikeCda(bytes)) return { narrative: null };
  try {
    return { narrative: cdaNarrative(bytes) };
  } catch (e) {
    return { narrative: null, narrativeError: `the narrative cannot be read: ${(e as Error).message}` };
  }
}

function entryView(d: Partial<DocumentEntry>, patient: ClinicalPatient, bytes: Buffer | undefined): ClinicalDocumentView {
  const confidentiality = d.confidentialityCodes ?? [];
  return {
    title: d.title ?? null,
    type: d.typeCode ?? null,
    patient,
    authors: (d.authors ?? []).map(authorView),
    date: dtmToIso(d.creationTime),
    confidentiality,
    masking: maskingOf(confidentiality),
    ...narrativeOf(bytes),
  };
}

/** What the webmail shows of each clinical attachment (the documents' bytes stay here). */
export function clinicalViews(docs: MessageDocument[]): ClinicalAttachmentView[] {
  return docs.map((a) => {
    const base = { filename: a.filename, kind: a.kind };
    if (a.error !== undefined) return { ...base, error: a.error, documents: [] };
    if (a.kind === 'xdm' && a.submission) {
      const s = a.submission;
      return {
        ...base,
        documents: s.documents.map((d) => {
          const bytes = s.contents.get(d.entryUuid);
          // The CDA's own header, when it names the patient, completes sourcePatientInfo.
          let fromCda = {};
          try {
            if (bytes && looksLikeCda(bytes)) fromCda = readCdaHeader(bytes).patient;
          } catch {
            fromCda = {};
          }
          return entryView(d, patientView(d.patientId, { ...fromCda, ...pidInfo(d) }), bytes);
        }),
      };
    }
    const h = a.entries?.[0];
    return { ...base, documents: h ? [entryView(h, patientView(h.patientId, h.patient), a.content)] : [] };
  });
}

/** The documents with what the webmail shows of each (`view`), as the webmail API is given them. */
export function withViews(docs: MessageDocument[]): Array<MessageDocument & { view: ClinicalAttachmentView }> {
  const views = clinicalViews(docs);
  return docs.map((d, i) => ({ ...d, view: views[i]! }));
}
