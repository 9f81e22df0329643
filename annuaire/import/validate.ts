// Pure checks on the identifiers and addresses of the extraction files. Each returns
// undefined when the value is acceptable, else the reason a line is rejected.

/**
 * A field's value inside a reason: quoted, control characters escaped, and cut at 60
 * characters — a reason is one line of the reject report (found by fuzzing: a CR or a TAB
 * in a field broke the report's lines, and a 1 MB field made a 1 MB reason).
 */
export const shown = (v: string) => JSON.stringify(v.length > 60 ? v.slice(0, 60) + '…' : v);

/** RPPS ids are 11 digits (type 8); ADELI ids 9 characters, digits except a Corsican 2A/2B département (type 0). */
const ID_PATTERN: Record<string, RegExp> = {
  '8': /^\d{11}$/,
  '0': /^(?:\d{2}|2[AB])\d{7}$/,
};

export const ID_TYPE_LABEL: Record<string, string> = { '8': 'RPPS', '0': 'ADELI' };

/**
 * A person's identifiers: the type digit, the identifier, and the national identifier
 * (IDNPS) which must be exactly type + identifier.
 */
export function checkPersonIds(type: string, id: string, idnps: string): string | undefined {
  const pattern = ID_PATTERN[type];
  if (!pattern) return `unknown identifier type ${shown(type)} (expected 8 for RPPS or 0 for ADELI)`;
  if (!pattern.test(id)) return type === '8' ? `RPPS identifier ${shown(id)} is not 11 digits` : `ADELI identifier ${shown(id)} is not 9 characters`;
  if (idnps !== type + id) return `Identification nationale PP ${shown(idnps)} is not the type ${shown(type)} followed by the identifier ${shown(id)}`;
  return undefined;
}

// RFC 5321/5322 dot-atom local part; domain of LDH labels. MSSanté addresses are ASCII.
const LOCAL = /^[A-Za-z0-9!#$%&'*+/=?^_`{}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{}~-]+)*$/;
const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

export function checkAddress(address: string): string | undefined {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return `BAL address ${shown(address)} is not local@domain`;
  if (address.length > 254) return `BAL address ${shown(address)} is longer than 254 characters`;
  const local = address.slice(0, at);
  const domain = address.slice(at + 1);
  if (local.length > 64 || !LOCAL.test(local)) return `BAL address ${shown(address)} has an invalid local part`;
  const labels = domain.split('.');
  if (labels.length < 2 || !labels.every((l) => LABEL.test(l))) return `BAL address ${shown(address)} has an invalid domain`;
  return undefined;
}

export const BAL_TYPES = new Set(['PER', 'ORG', 'APP', 'CAB']);
