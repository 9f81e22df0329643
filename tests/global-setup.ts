import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { initDevPki } from '../certs/pki.js';
import { createPgliteInChild } from '../core/db/pglite-create.js';
import { TEST_PKI } from './helpers/templates.js';

// End-to-end tests run the compiled `mss` exactly as users do; `npm test` builds first
// (scripts/setup.mjs), this keeps `npx vitest run` on its own honest too. Then what many
// files would each make again is made once here (tests/helpers/templates.ts).
export default async function setup(project: TestProject) {
  const root = join(import.meta.dirname, '..');
  execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', join(root, 'tsconfig.json')], { cwd: root, stdio: 'inherit' });
  execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', join(root, 'webui', 'tsconfig.json')], { cwd: root, stdio: 'inherit' });
  const dir = mkdtempSync(join(tmpdir(), 'mss-test-templates-'));
  const pgliteDir = join(dir, 'db');
  await Promise.all([initDevPki({ dir: join(dir, 'pki'), ...TEST_PKI }), createPgliteInChild(pgliteDir)]);
  project.provide('testPkiTemplate', join(dir, 'pki'));
  project.provide('pgliteTemplate', pgliteDir);
  return () => rmSync(dir, { recursive: true, force: true });
}
