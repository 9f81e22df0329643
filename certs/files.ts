// Reading the PEM files named by the configuration, with errors that name the setting's
// file and say what is wrong with it (the operator fixes a path or a file, not our code).

import { readFileSync } from 'node:fs';
import { MssError } from '../core/errors.js';
import { pemBlocks, type PemLabel } from './pem.js';

export function readTextFile(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (e as Error).message;
    throw new MssError('FILE_UNREADABLE', { what, file, reason }, { cause: e });
  }
}

/** The file's text, which must hold at least one PEM block with one of these labels. */
export function readPemFile(file: string, what: string, labels: PemLabel[]): string {
  const text = readTextFile(file, what);
  const found = pemBlocks(text).map((b) => b.label);
  if (!found.some((l) => (labels as string[]).includes(l))) {
    const reason = found.length ? `it holds ${[...new Set(found)].join(', ')} instead of ${labels.join(' or ')}` : `no PEM "${labels[0]}" block found`;
    throw new MssError('CERT_INVALID', { what, file, reason });
  }
  return text;
}
