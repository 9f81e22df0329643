// Where the bytes of an extraction come from: a plain file, or the entries of a ZIP as the
// Annuaire Santé publishes them (PS_LibreAcces_<AAAAMMJJhhmm>.zip holding several .txt).
// A ZIP is checked as a whole before anything is read from it: an entry escaping the
// extraction directory (zip-slip), an encrypted or oversized entry refuses the archive.
import { createReadStream, statSync } from 'node:fs';
import { basename } from 'node:path';
import type { Readable } from 'node:stream';
import yauzl from 'yauzl';
import { MssError } from '../../core/errors.js';

export interface Source {
  /** For messages and the report: `file.txt`, or `archive.zip!entry.txt`. */
  label: string;
  /** The file's own name (its extraction date is in it). */
  name: string;
  /** The archive's name when in a ZIP: the date may only be there. */
  container?: string;
  /** Bytes it will yield, for the progress bar. */
  size: number;
  open(): Promise<Readable>;
}

export interface Opened {
  sources: Source[];
  /** Entries of a ZIP not read, with why. */
  skipped: string[];
  close(): void;
}

export interface ZipLimits {
  /** Largest uncompressed entry accepted. */
  maxEntrySize: number;
  /** Most entries accepted in one archive. */
  maxEntries: number;
}

export const DEFAULT_ZIP_LIMITS: ZipLimits = { maxEntrySize: 8 * 1024 ** 3, maxEntries: 1000 };

const CHUNK = 1 << 20;

export async function openInput(path: string, limits: ZipLimits = DEFAULT_ZIP_LIMITS): Promise<Opened> {
  let size: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new Error('not a regular file');
    size = st.size;
  } catch (e) {
    throw new MssError('FILE_UNREADABLE', { what: 'extraction file', file: path, reason: (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message });
  }
  if (/\.zip$/i.test(path)) return openZip(path, limits);
  return {
    sources: [{ label: path, name: basename(path), size, open: async () => createReadStream(path, { highWaterMark: CHUNK }) }],
    skipped: [],
    close() {},
  };
}

/** Why a ZIP entry name is unsafe to honour, or undefined. */
export function unsafeEntryName(name: string): string | undefined {
  if (name.includes('\0')) return 'contains a NUL byte';
  if (name.includes('\\')) return 'contains a backslash';
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) return 'is an absolute path';
  if (name.split('/').some((p) => p === '..')) return 'climbs out of the archive (..)';
  return undefined;
}

function openZip(path: string, limits: ZipLimits): Promise<Opened> {
  const refuse = (reason: string) => new MssError('ANNUAIRE_ZIP_REFUSED', { file: path, reason });
  return new Promise((resolve, reject) => {
    // decodeStrings: false, so that an unsafe name reaches our check (and our message)
    // instead of yauzl's own error; lazyEntries to walk the central directory first.
    yauzl.open(path, { lazyEntries: true, autoClose: false, decodeStrings: false, validateEntrySizes: true }, (err, zip) => {
      if (err || !zip) return reject(refuse(err?.message ?? 'unreadable'));
      const entries: yauzl.Entry[] = [];
      const skipped: string[] = [];
      const fail = (e: MssError) => {
        zip.close();
        reject(e);
      };
      zip.on('error', (e: Error) => fail(refuse(e.message)));
      zip.on('entry', (entry: yauzl.Entry) => {
        const name = Buffer.isBuffer(entry.fileName) ? (entry.fileName as Buffer).toString(entry.generalPurposeBitFlag & 0x800 ? 'utf8' : 'latin1') : entry.fileName;
        const unsafe = unsafeEntryName(name);
        if (unsafe) return fail(refuse(`entry "${name}" ${unsafe}`));
        if (entries.length + skipped.length >= limits.maxEntries) return fail(refuse(`more than ${limits.maxEntries} entries`));
        if (entry.generalPurposeBitFlag & 0x1) return fail(refuse(`entry "${name}" is encrypted`));
        if (entry.uncompressedSize > limits.maxEntrySize) return fail(refuse(`entry "${name}" would be ${entry.uncompressedSize} bytes, above the ${limits.maxEntrySize}-byte limit`));
        (entry as yauzl.Entry & { safeName: string }).safeName = name;
        if (name.endsWith('/')) {
          // a directory
        } else if (!/\.txt$/i.test(name)) skipped.push(`${path}!${name}: not a .txt file`);
        else entries.push(entry);
        zip.readEntry();
      });
      zip.on('end', () => {
        const sources: Source[] = entries.map((entry) => {
          const name = (entry as yauzl.Entry & { safeName: string }).safeName;
          return {
            label: `${path}!${name}`,
            name: basename(name),
            container: basename(path),
            size: entry.uncompressedSize,
            open: () =>
              new Promise<Readable>((res, rej) =>
                zip.openReadStream(entry, (e, stream) => (e || !stream ? rej(new MssError('ANNUAIRE_ZIP_REFUSED', { file: path, reason: `entry "${name}": ${e?.message ?? 'unreadable'}` })) : res(stream))),
              ),
          };
        });
        resolve({ sources, skipped, close: () => zip.close() });
      });
      zip.readEntry();
    });
  });
}
