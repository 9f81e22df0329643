// What the run's global setup (tests/global-setup.ts) makes once for every test file to copy:
// a test PKI (ten RSA keys) and a created, migrated embedded database (PGlite's initdb and the
// migrations: many seconds of CPU each time on a loaded machine).
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { inject } from 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A test PKI's directory (tests/helpers/pki.ts copies it). */
    testPkiTemplate: string;
    /** A PGlite data directory, created and migrated, never opened since. */
    pgliteTemplate: string;
  }
}

/** How the test PKI is made: once per run, or by tests/helpers/pki.ts outside one. */
export const TEST_PKI = { domain: 'mssante.localhost', keyBits: 2048, validityDays: 30 } as const;

/**
 * Gives a new data directory the run's created and migrated embedded database, as if its
 * first start had made it (the platform still runs its migrations at start: none left to
 * apply). Outside a run with the template, nothing: the platform creates its own.
 */
export function seedPglite(dataDir: string): void {
  const template = inject('pgliteTemplate');
  if (template) cpSync(template, join(dataDir, 'db'), { recursive: true });
}
