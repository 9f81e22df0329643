// FHIR logical ids ([A-Za-z0-9\-.]{1,64}) from the annuaire's keys, and back.
//
//   Practitioner      the idnps ("8" + RPPS, "0" + ADELI) as it is.
//   Organization      the structure id as it is when it fits the id alphabet (FINESS,
//                     SIRET and technical ids do); otherwise "x-" + the key's UTF-8 in hex
//                     (site keys "site:<hex>"). A key that fits in neither form has no id
//                     and is not served (none does in the national files).
//   PractitionerRole  "<idnps>-<12 hex>": the first 48 bits of SHA-256 of the activity key,
//                     stable from month to month while the activity is the same; read back
//                     by hashing the keys of that one professional's activities.
import { createHash } from 'node:crypto';

const PLAIN = /^[A-Za-z0-9.]{1,64}$/;
const HEXED = /^x-((?:[0-9a-f]{2}){1,31})$/;
const ROLE = /^([A-Za-z0-9]{1,40})-([0-9a-f]{12})$/;

/** True when the text is a FHIR id at all (the R4 id datatype). */
export const isFhirId = (s: string) => /^[A-Za-z0-9\-.]{1,64}$/.test(s);

export function organizationId(key: string): string | null {
  if (PLAIN.test(key)) return key;
  const hex = Buffer.from(key, 'utf8').toString('hex');
  return hex.length <= 62 ? `x-${hex}` : null;
}

export function organizationKey(id: string): string | null {
  if (PLAIN.test(id)) return id;
  const m = HEXED.exec(id);
  return m ? Buffer.from(m[1], 'hex').toString('utf8') : null;
}

export const practitionerKey = (id: string): string | null => (/^[A-Za-z0-9]{1,40}$/.test(id) ? id : null);

export const roleHash = (activityKey: string) => createHash('sha256').update(activityKey).digest('hex').slice(0, 12);

export const roleId = (idnps: string, activityKey: string) => `${idnps}-${roleHash(activityKey)}`;

/** The professional and the hash a role id names, or null when it is not a role id. */
export function parseRoleId(id: string): { idnps: string; hash: string } | null {
  const m = ROLE.exec(id);
  return m ? { idnps: m[1], hash: m[2] } : null;
}
