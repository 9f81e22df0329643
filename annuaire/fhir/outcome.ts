// Errors as FHIR OperationOutcome: the catalogue's code (core/errors.ts) and sentence, the
// FHIR issue type matching its HTTP status. Unexpected errors never show their message.
import { isMssError, MssError } from '../../core/errors.js';

const ISSUE_TYPE: Record<number, string> = { 400: 'invalid', 403: 'forbidden', 404: 'not-found', 405: 'not-supported', 406: 'not-supported', 413: 'too-costly', 414: 'too-long', 503: 'transient' };

export interface OperationOutcome {
  resourceType: 'OperationOutcome';
  issue: Array<{ severity: 'error' | 'fatal'; code: string; details: { coding: Array<{ system: string; code: string }>; text: string } }>;
}

export function operationOutcome(e: unknown): { status: number; body: OperationOutcome } {
  const m = isMssError(e) ? e : new MssError('INTERNAL');
  return {
    status: m.status,
    body: {
      resourceType: 'OperationOutcome',
      issue: [{ severity: m.status >= 500 ? 'fatal' : 'error', code: ISSUE_TYPE[m.status] ?? (m.status >= 500 ? 'exception' : 'processing'), details: { coding: [{ system: 'urn:mss:error', code: m.code }], text: m.message } }],
    },
  };
}
