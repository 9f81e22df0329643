import { defineConfig } from 'vitest/config';

// Tests talk to real servers (PostgreSQL, slapd, Dovecot, TLS listeners): generous
// timeouts are for slow CI machines, never a performance assertion.
export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    globalSetup: ['tests/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
    reporters: ['default'],
  },
});
