import { cpSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import { devPkiPaths, initDevPki, type DevPkiPaths } from '../../certs/pki.js';
import { TEST_PKI } from './templates.js';

export interface TestPki {
  dir: string;
  paths: DevPkiPaths;
  /** Path of a file of the PKI: file('tsa.pem'). */
  file(name: string): string;
  /** Contents of a file of the PKI. */
  read(name: string): string;
  domain: string;
}

let cached: Promise<TestPki> | undefined;

/**
 * A development PKI in a temporary directory of its own, one per test file (vitest runs each
 * file in its own process), with 2048-bit keys. Domain: mssante.localhost. The run's global
 * setup made one already: it is copied (a file may revoke or add certificates in its copy).
 */
export function testPki(): Promise<TestPki> {
  cached ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mss-pki-'));
    const { domain } = TEST_PKI;
    const template = inject('testPkiTemplate');
    let paths: DevPkiPaths;
    if (template) {
      cpSync(template, dir, { recursive: true });
      paths = devPkiPaths(dir);
    } else paths = (await initDevPki({ dir, ...TEST_PKI })).paths;
    return { dir, paths, domain, file: (name: string) => join(dir, name), read: (name: string) => readFileSync(join(dir, name), 'utf8') };
  })();
  return cached;
}

/**
 * Environment pointing a child `mss` at this PKI's timestamping authority: every command
 * that journals seals before it exits, so it needs one (without creating a whole PKI).
 */
export function tsaEnv(pki: TestPki): Record<string, string> {
  return { MSS_TSA_CERT_FILE: pki.file('tsa.pem'), MSS_TSA_KEY_FILE: pki.file('tsa.key'), MSS_TSA_CHAIN_FILE: pki.file('intermediate.pem'), MSS_TSA_CA_FILE: pki.file('ca.pem') };
}
