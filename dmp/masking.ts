// The DMP's visibility choices as confidentiality codes (REFERENCE.md "IHE XDM package"):
// the HL7 code N always, plus one code of TRE_A07-StatutVisibiliteDocument per restriction.
import type { Coded, Masking } from './types.js';

export const HL7_CONFIDENTIALITY_OID = '2.16.840.1.113883.5.25';
export const DMP_VISIBILITY_OID = '1.2.250.1.213.1.1.4.13';

export const NORMAL: Coded = { code: 'N', scheme: HL7_CONFIDENTIALITY_OID, display: 'Normal' };

const VISIBILITY: Record<Exclude<Masking, 'normal'>, Coded> = {
  'masque-ps': { code: 'MASQUE_PS', scheme: DMP_VISIBILITY_OID, display: 'Masqué aux professionnels de santé' },
  'invisible-patient': { code: 'INVISIBLE_PATIENT', scheme: DMP_VISIBILITY_OID, display: 'Non visible par le patient' },
  'invisible-representants-legaux': {
    code: 'INVISIBLE_REPRESENTANTS_LEGAUX',
    scheme: DMP_VISIBILITY_OID,
    display: 'Non visible par les représentants légaux du patient',
  },
};

export const MASKINGS: readonly Masking[] = ['normal', 'masque-ps', 'invisible-patient', 'invisible-representants-legaux'];

/** Confidentiality codes for one choice or a combination (the DMP accepts several restrictions). */
export function maskingCodes(m: Masking | readonly Masking[]): Coded[] {
  const wanted = new Set(typeof m === 'string' ? [m] : m);
  const out: Coded[] = [{ ...NORMAL }];
  for (const k of MASKINGS) if (k !== 'normal' && wanted.has(k)) out.push({ ...VISIBILITY[k] });
  return out;
}

/** The restrictions a list of confidentiality codes carries (['normal'] when none). */
export function maskingOf(codes: readonly Coded[]): Masking[] {
  const out = MASKINGS.filter((k) => k !== 'normal' && codes.some((c) => c.scheme === DMP_VISIBILITY_OID && c.code === VISIBILITY[k].code));
  return out.length ? out : ['normal'];
}

/**
 * A document's confidentiality codes with its DMP visibility replaced by `m`: the codes of
 * other systems (the author's HL7 level: N, R, V) are kept; N is added when there is none.
 */
export function withMasking(codes: readonly Coded[], m: Masking | readonly Masking[]): Coded[] {
  const kept = codes.filter((c) => c.scheme !== DMP_VISIBILITY_OID).map((c) => ({ ...c }));
  const [normal, ...restrictions] = maskingCodes(m);
  return [...(kept.some((c) => c.scheme === HL7_CONFIDENTIALITY_OID) ? kept : [normal!, ...kept]), ...restrictions];
}
