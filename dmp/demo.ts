// A lab result as a lab's software would send it over MSSanté: a CDA R2 document packed in
// IHE_XDM.zip with the X-MSS-* headers. Used by the demo data of `mss start`, the end-to-end
// tests and bench/webmail; the patient is a test INS (OID …4.10), never a real person.
import type { SendMailOptions } from 'nodemailer';
import { buildCdaDocument, INS_OIDS } from './cda.js';
import { composeXdmMessage, submissionFromCda } from './documents.js';
import type { Masking } from './types.js';

export const DEMO_PATIENT = { ins: '279035121518989', oid: INS_OIDS[2], family: 'DUPONT', given: 'Jeanne', birthDate: '19790312', gender: 'F' as const };
/** The sending system of the demo lab (the submission set's sourceId): a private arc. */
export const DEMO_LAB_OID = '1.2.250.1.999.2.1';

export async function demoResultMessage(o: { from: string; to: string[]; rpps: string; masking?: Masking; nil?: string }): Promise<SendMailOptions> {
  const cda = buildCdaDocument({
    patient: DEMO_PATIENT,
    author: { rpps: o.rpps, family: 'MARTIN', given: 'Jeanne', organization: { name: 'Laboratoire de biologie médicale de démonstration' } },
    code: { code: '11502-2', scheme: '2.16.840.1.113883.6.1', display: "CR d'examens biologiques" },
    title: "Compte rendu d'examens biologiques",
    text: 'Glycémie à jeun : 0,92 g/L (0,70 – 1,10)\nHbA1c : 5,6 % (< 6,0)\nConclusion : résultats dans les valeurs de référence.',
  });
  const submission = submissionFromCda(cda, {
    sourceId: DEMO_LAB_OID,
    formatCode: { code: 'urn:ihe:lab:xd-lab:2008', scheme: '1.3.6.1.4.1.19376.1.2.3', display: "CR d'examens biologiques" },
    healthcareFacilityTypeCode: { code: 'SA25', scheme: '1.2.250.1.71.4.2.4', display: 'Laboratoire de biologie médicale' },
    practiceSettingCode: { code: 'AMBULATOIRE', scheme: '1.2.250.1.213.1.1.4.9', display: 'Ambulatoire' },
    masking: o.masking,
    intendedRecipients: o.to,
  });
  return composeXdmMessage({
    from: o.from,
    to: o.to,
    text: "Bonjour,\n\nVeuillez trouver ci-joint le compte rendu d'examens biologiques de votre patiente (IHE_XDM.zip, CDA R2).\n\nLe laboratoire",
    submission,
    nil: o.nil ?? 'mss-demo-lab',
  });
}
