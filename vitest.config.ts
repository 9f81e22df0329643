import { defineConfig } from 'vitest/config';

// Tests talk to real servers (PostgreSQL, slapd, Dovecot, TLS listeners) and CI runs them
// beside CPU-bound processes (.ci/run): the timeouts are safety nets against a hang, set
// far above what any test takes on a loaded machine — never a performance assertion.
export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    globalSetup: ['tests/global-setup.ts'],
    testTimeout: 600_000,
    hookTimeout: 600_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
    // global.gc for the fuzz tests' memory bounds (tests/fuzz/harness.ts).
    execArgv: ['--expose-gc'],
    reporters: ['default'],
  },
});
