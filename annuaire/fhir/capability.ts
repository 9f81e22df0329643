// The CapabilityStatement (GET /metadata): what this server reads and searches, built from
// the same definitions the search engine runs on, so it cannot drift from them.
import { SPECS } from './search.js';
import { CONTROL_PARAMS, DEFAULT_COUNT, MAX_COUNT } from './params.js';
import { PROFILE } from './codes.js';

export function capabilityStatement(base: string, software: { name: string; version: string }, date: string) {
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date,
    kind: 'instance',
    software,
    implementation: { description: 'MSSanté operator — the annuaire as FHIR R4 (read-only)', url: base },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    rest: [
      {
        mode: 'server',
        documentation: `Read-only. Clients authenticate with a certificate of the MSSanté trust space (mutual TLS). Unknown parameters are refused (handling=strict). Paging: _count (default ${DEFAULT_COUNT}, at most ${MAX_COUNT}) and the Bundle's next/previous links. Also taken by every search: ${CONTROL_PARAMS.join(', ')}.`,
        security: { cors: false, description: 'Mutual TLS: a client certificate chaining to the trust bundle (IGC-Santé), not revoked.' },
        resource: Object.values(SPECS).map((s) => ({
          type: s.type,
          profile: PROFILE[s.type],
          interaction: [{ code: 'read' }, { code: 'search-type' }],
          ...(s.include.length ? { searchInclude: [...s.include] } : {}),
          ...(s.revinclude.length ? { searchRevInclude: [...s.revinclude] } : {}),
          searchParam: Object.entries(s.params).map(([name, p]) => ({ name, type: p.type, documentation: p.doc + (p.modifiers?.length ? ` (modifiers: ${p.modifiers.map((m) => ':' + m).join(', ')})` : '') })),
        })),
      },
    ],
  };
}
