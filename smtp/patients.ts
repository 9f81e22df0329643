// Mon Espace Santé: patients' boxes, `<INS>@patient.mssante.fr`. A pure module — the INS
// rule and the size rule — that the submission front calls at RCPT and at the end of DATA;
// the messages themselves leave through the outbound queue like mail to any operator.
import type { ErrorCode } from '../core/errors.js';

/** The Mon Espace Santé side of the submission front (smtp.patientDomain, smtp.patientMaxSize). */
export interface PatientRules {
  /** Domain of the patients' boxes (normalised, lower case). */
  domain: string;
  /** Largest message the Mon Espace Santé operator takes, in bytes. */
  maxSize: number;
}

export type PatientProblem = { code: ErrorCode; details: Record<string, unknown> };

/** Whether `address` (normalised) is a patient's box under the rules' domain. */
export const isPatientAddress = (rules: PatientRules | undefined, address: string): boolean =>
  !!rules && address.slice(address.lastIndexOf('@') + 1).toLowerCase() === rules.domain.toLowerCase();

/**
 * Why an INS (the local part of a patient address) is not one, or null when it is.
 *
 * An INS of NIR origin is 15 characters: the 13 of the NIR — sex (1, 2; 7, 8 for a
 * temporary number), year, month, department, commune, order — then a 2-digit key equal to
 * 97 − (NIR mod 97). Corsica's departments are written 2A and 2B; for the key they count
 * as 19 and 18 (INSEE's rule, see ../shared/REFERENCE.md).
 */
export function insProblem(ins: string): string | null {
  if (ins.length !== 15) return `an INS has 15 characters (the 13 of the NIR and its 2-digit key); this one has ${ins.length}`;
  const up = ins.toUpperCase();
  if (!/^\d{5}(\d\d|2A|2B)\d{8}$/.test(up)) return 'an INS is made of digits only (with 2A or 2B as the department of a person born in Corsica)';
  if (!/^[1278]/.test(up)) return `an INS starts with 1 or 2 (or 7 or 8 for a temporary number), not ${up[0]}`;
  const nir = up.slice(0, 13).replace(/^(\d{5})2A/, '$119').replace(/^(\d{5})2B/, '$118');
  const expected = 97n - (BigInt(nir) % 97n);
  const key = up.slice(13);
  if (BigInt(key) !== expected) return `its key ${key} does not match the NIR ${up.slice(0, 13)} (the key would be ${String(expected).padStart(2, '0')})`;
  return null;
}

/** RCPT of a patient address: its INS, and the size the client declared with MAIL FROM SIZE=. */
export function patientRecipientProblem(rules: PatientRules, address: string, declaredSize: number | undefined): PatientProblem | null {
  const why = insProblem(address.slice(0, address.lastIndexOf('@')));
  if (why) return { code: 'PATIENT_INS_INVALID', details: { address, why } };
  if (declaredSize !== undefined && declaredSize > rules.maxSize) return { code: 'PATIENT_MESSAGE_TOO_BIG', details: { limit: rules.maxSize, size: declaredSize, what: 'declares' } };
  return null;
}

/** End of DATA: a message for at least one patient must fit Mon Espace Santé's limit. */
export function patientSizeProblem(rules: PatientRules | undefined, recipients: readonly string[], size: number): PatientProblem | null {
  if (!rules || size <= rules.maxSize || !recipients.some((r) => isPatientAddress(rules, r))) return null;
  return { code: 'PATIENT_MESSAGE_TOO_BIG', details: { limit: rules.maxSize, size, what: 'is' } };
}
