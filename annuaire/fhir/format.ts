// Content negotiation: FHIR JSON only. _format (json, application/json, application/fhir+json)
// wins over Accept; an Accept that admits none of the JSON types, or a _format naming
// another, is refused with 406.
import { MssError } from '../../core/errors.js';

export const FHIR_JSON = 'application/fhir+json; charset=utf-8';

const FORMATS = new Set(['json', 'application/json', 'application/fhir+json']);
const ACCEPTED = new Set(['application/fhir+json', 'application/json', 'application/*', '*/*']);

export function negotiate(format: string | null, accept: string | undefined): void {
  if (format !== null) {
    if (!FORMATS.has(format.split(';')[0].trim().toLowerCase())) throw new MssError('FHIR_FORMAT_UNSUPPORTED', { what: `_format=${format.slice(0, 60)}` });
    return;
  }
  if (!accept || !accept.trim()) return;
  const ok = accept.split(',').some((part) => {
    const [type, ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    const q = params.find((p) => p.startsWith('q='));
    return ACCEPTED.has(type) && !(q && Number(q.slice(2)) === 0);
  });
  if (!ok) throw new MssError('FHIR_FORMAT_UNSUPPORTED', { what: `Accept: ${accept.slice(0, 80)}` });
}
