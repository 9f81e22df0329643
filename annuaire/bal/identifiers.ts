// The identifiers a BAL is bound to, in the one national form the annuaire and IGC-Santé
// certificates use, so that "81234567890" from a form, "8" + RPPS in a certificate CN and
// the IDNPS column of an extraction compare equal.
import { domainToASCII } from 'node:url';
import { MssError } from '../../core/errors.js';

/**
 * A professional's national id (IDNPS): "8" + 11-digit RPPS, or "0" + ADELI (9 characters).
 * A bare RPPS (11 digits) or ADELI (9 digits) is prefixed.
 */
export function normaliseIdnps(raw: string): string {
  const s = raw.trim().toUpperCase();
  if (/^8\d{11}$/.test(s) || /^0[0-9A-Z]{9}$/.test(s)) return s;
  if (/^\d{11}$/.test(s)) return '8' + s;
  if (/^\d{9}$/.test(s)) return '0' + s;
  throw new MssError('BAD_REQUEST', { reason: `"${raw}" is not a professional's id (RPPS: 11 digits; ADELI: 9; or the national id "8"+RPPS / "0"+ADELI)` });
}

/** A structure's national id: "1" + FINESS (9 characters, 2A/2B in Corsica) or "3" + SIRET (14 digits). */
export function normaliseStructureId(raw: string): string {
  const s = raw.trim().toUpperCase();
  if (/^3\d{14}$/.test(s) || /^1(\d{2}|2A|2B)\d{7}$/.test(s)) return s;
  if (/^\d{14}$/.test(s)) return '3' + s;
  if (/^(\d{2}|2A|2B)\d{7}$/.test(s)) return '1' + s;
  throw new MssError('BAD_REQUEST', { reason: `"${raw}" is not a structure id (FINESS: 9 characters; SIRET: 14 digits; or "1"+FINESS / "3"+SIRET)` });
}

/** What the FINESS / SIRET prefix says about a structure id, for the publication payload. */
export function structureIdKind(id: string): 'FINESS' | 'SIRET' {
  return id.startsWith('3') ? 'SIRET' : 'FINESS';
}

/**
 * A mailbox address as stored: lower-case, the domain in its ASCII (A-label) form. The local
 * part is kept to the characters every MTA and directory handles the same way.
 */
export function normaliseBalAddress(raw: string): { address: string; local: string; domain: string } {
  const s = raw.trim();
  const at = s.lastIndexOf('@');
  const local = at > 0 ? s.slice(0, at).toLowerCase() : '';
  const domain = at > 0 ? domainToASCII(s.slice(at + 1).toLowerCase()) : '';
  if (!local || !/^[a-z0-9](?:[a-z0-9._+-]{0,62}[a-z0-9])?$/.test(local) || local.includes('..')) {
    throw new MssError('BAD_REQUEST', { reason: `"${raw}" is not a mailbox address this operator creates (letters, digits, . _ + - before the @)` });
  }
  if (!domain || !domain.includes('.') && domain !== 'localhost') {
    throw new MssError('BAD_REQUEST', { reason: `"${raw}" has no valid domain after the @` });
  }
  return { address: `${local}@${domain}`, local, domain };
}
