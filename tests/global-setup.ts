import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

// End-to-end tests run the compiled `mss` exactly as users do; `npm test` builds first
// (scripts/setup.mjs), this keeps `npx vitest run` on its own honest too.
export default function setup() {
  const root = join(import.meta.dirname, '..');
  execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', join(root, 'tsconfig.json')], { cwd: root, stdio: 'inherit' });
  execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', join(root, 'webui', 'tsconfig.json')], { cwd: root, stdio: 'inherit' });
}
