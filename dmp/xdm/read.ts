// Reading an IHE_XDM.zip that arrived by mail: from anyone in the trust space, so hostile
// until checked. Everything happens in memory (nothing is extracted to disk). Refused:
// unsafe names (absolute, `..`, backslashes, drive letters — zip-slip), symbolic links,
// encryption, duplicate names, too many entries, and inflation past the per-entry, total or
// ratio caps — counted on the bytes actually produced, since headers can lie. Then
// IHE_XDM/<subset>/METADATA.XML is read and each document's SHA-1 and size checked.
import { createHash } from 'node:crypto';
import { Readable, Transform, pipeline } from 'node:stream';
import { createInflateRaw } from 'node:zlib';
import yauzl from 'yauzl';
import type { Config } from '../../core/config/index.js';
import { MssError, isMssError } from '../../core/errors.js';
import { readSubmitObjectsRequest } from '../ebrim.js';
import type { Submission } from '../types.js';

export interface XdmLimits {
  /** Most entries (files and folders) in the archive. */
  maxEntries: number;
  /** Largest uncompressed entry, in bytes. */
  maxEntrySize: number;
  /** Largest uncompressed total, in bytes. */
  maxTotalSize: number;
  /** Highest uncompressed/compressed ratio of an entry. */
  maxRatio: number;
}

export function xdmLimits(config: Pick<Config, 'dmp'>): XdmLimits {
  return {
    maxEntries: config.dmp.maxXdmEntries,
    maxEntrySize: config.dmp.maxXdmEntrySize,
    maxTotalSize: config.dmp.maxXdmTotalSize,
    maxRatio: config.dmp.maxXdmRatio,
  };
}

/** Below this many bytes out, the ratio is not judged: tiny files compress by chance. */
const RATIO_FLOOR = 64 * 1024;

function refused(reason: string, problems?: string[]): MssError {
  return new MssError('XDM_REFUSED', problems ? { reason, problems } : { reason });
}

/** Why an entry name is unsafe to use, or null. Names are compared, never used as paths. */
export function unsafeEntryName(name: string): string | null {
  if (name === '') return 'has an empty name';
  if (/[\x00-\x1f\x7f]/.test(name)) return 'has a control character in its name';
  if (name.includes('\\')) return 'has a backslash in its name (zip-slip)';
  if (name.startsWith('/')) return 'has an absolute name (zip-slip)';
  if (/^[A-Za-z]:/.test(name)) return 'has a drive letter in its name (zip-slip)';
  if (name.split('/').some((s) => s === '..')) return 'has a ".." path segment (zip-slip)';
  return null;
}

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;

interface Held {
  name: string;
  bytes: Buffer;
}

function decodeName(entry: yauzl.Entry): string {
  const raw = entry.fileName as unknown as Buffer | string;
  if (typeof raw === 'string') return raw;
  // Bit 11: UTF-8 names; otherwise CP437, of which latin1 is a fair reading for checks.
  return raw.toString(entry.generalPurposeBitFlag & 0x800 ? 'utf8' : 'latin1');
}

/** The entry's bytes as stored (yauzl refuses decompress:false on stored entries). */
function openRaw(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<Readable> {
  return new Promise((resolve, reject) =>
    zip.openReadStream(entry, entry.compressionMethod === 0 ? {} : { decompress: false }, (err, stream) => (err || !stream ? reject(err ?? new Error('unreadable entry')) : resolve(stream))),
  );
}

/**
 * Inflates one entry, counting compressed bytes in and bytes out; stops at the first cap
 * passed. `budget` is what is left of the total.
 */
async function inflate(zip: yauzl.ZipFile, entry: yauzl.Entry, name: string, limits: XdmLimits, budget: number): Promise<Buffer> {
  if (entry.compressionMethod !== 0 && entry.compressionMethod !== 8) throw refused(`entry ${name} uses compression method ${entry.compressionMethod}; only stored and deflate are read`);
  // yauzl checks the local header only here (found by fuzzing: its error escaped as is).
  const raw = await openRaw(zip, entry).catch((e: Error) => {
    throw refused(`entry ${name} cannot be read (${e.message})`);
  });
  let consumed = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      consumed += chunk.length;
      done(null, chunk);
    },
  });
  const out = entry.compressionMethod === 8 ? pipeline(raw, counter, createInflateRaw(), () => {}) : pipeline(raw, counter, () => {});
  const chunks: Buffer[] = [];
  let produced = 0;
  try {
    for await (const chunk of out as AsyncIterable<Buffer>) {
      produced += chunk.length;
      if (produced > limits.maxEntrySize) throw refused(`entry ${name} inflates to more than ${limits.maxEntrySize} bytes (the per-file limit)`);
      if (produced > budget) throw refused(`the archive inflates to more than ${limits.maxTotalSize} bytes in all (the total limit)`);
      if (produced > RATIO_FLOOR && produced > Math.max(consumed, 1) * limits.maxRatio) {
        throw refused(`entry ${name} inflates more than ${limits.maxRatio} times its compressed size (a zip bomb)`);
      }
      chunks.push(chunk);
    }
  } catch (e) {
    if (isMssError(e)) throw e;
    throw refused(`entry ${name} cannot be inflated (${(e as Error).message})`);
  } finally {
    raw.destroy();
    (out as Readable).destroy();
  }
  if (produced !== entry.uncompressedSize) throw refused(`entry ${name} inflates to ${produced} bytes, its header says ${entry.uncompressedSize}`);
  return Buffer.concat(chunks, produced);
}

/** Walks the central directory, checking every entry before anything is inflated. */
function listEntries(zip: yauzl.ZipFile, limits: XdmLimits): Promise<Array<{ entry: yauzl.Entry; name: string }>> {
  return new Promise((resolve, reject) => {
    const out: Array<{ entry: yauzl.Entry; name: string }> = [];
    const seen = new Set<string>();
    let done = false;
    const fail = (e: MssError) => {
      if (done) return;
      done = true;
      reject(e);
    };
    zip.on('error', (e: Error) => fail(refused(`it is not a readable ZIP archive (${e.message})`)));
    zip.on('entry', (entry: yauzl.Entry) => {
      if (done) return;
      const name = decodeName(entry);
      if (out.length + 1 > limits.maxEntries) return fail(refused(`it has more than ${limits.maxEntries} entries`));
      const unsafe = unsafeEntryName(name);
      if (unsafe) return fail(refused(`entry "${name}" ${unsafe}`));
      const madeByUnix = entry.versionMadeBy >> 8 === 3;
      if (madeByUnix && ((entry.externalFileAttributes >>> 16) & S_IFMT) === S_IFLNK) return fail(refused(`entry "${name}" is a symbolic link`));
      if (entry.generalPurposeBitFlag & 0x1) return fail(refused(`entry "${name}" is encrypted`));
      const key = name.replace(/\/+$/, '').toUpperCase();
      if (seen.has(key)) return fail(refused(`entry "${name}" appears twice`));
      seen.add(key);
      if (!name.endsWith('/') && entry.uncompressedSize > limits.maxEntrySize) {
        return fail(refused(`entry ${name} is ${entry.uncompressedSize} bytes uncompressed, above the ${limits.maxEntrySize}-byte limit`));
      }
      out.push({ entry, name });
      zip.readEntry();
    });
    zip.on('end', () => {
      if (done) return;
      done = true;
      resolve(out);
    });
    zip.readEntry();
  });
}

function openZip(bytes: Buffer): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) =>
    yauzl.fromBuffer(bytes, { lazyEntries: true, autoClose: false, decodeStrings: false, validateEntrySizes: false, strictFileNames: false }, (err, zip) =>
      err || !zip ? reject(refused(`it is not a readable ZIP archive (${err?.message ?? 'unreadable'})`)) : resolve(zip),
    ),
  );
}

const METADATA = /^IHE_XDM\/([^/]+)\/METADATA\.XML$/i;

/** A document's URI as a path inside the archive: relative to the subset, or including it. */
function locate(uri: string, subset: string, files: Map<string, Held>): Held | undefined {
  const u = uri.replace(/^\.\//, '');
  const candidates = [`IHE_XDM/${subset}/${u}`, `IHE_XDM/${u}`, u];
  for (const c of candidates) {
    const hit = files.get(c) ?? files.get(c.toUpperCase());
    if (hit) return hit;
  }
  return undefined;
}

/**
 * Reads an IHE_XDM.zip: its one submission set and documents, checked against their
 * hash and size. Throws XDM_REFUSED with the reason(s).
 */
export async function readXdm(bytes: Buffer, limits: XdmLimits): Promise<Submission> {
  const zip = await openZip(bytes);
  try {
    if (zip.entryCount > limits.maxEntries) throw refused(`it has ${zip.entryCount} entries, more than ${limits.maxEntries}`);
    const entries = await listEntries(zip, limits);
    // Every file is inflated (and counted) even if unused, so a lying header is caught anywhere.
    const files = new Map<string, Held>();
    let total = 0;
    for (const { entry, name } of entries) {
      if (name.endsWith('/')) continue;
      const data = await inflate(zip, entry, name, limits, limits.maxTotalSize - total);
      total += data.length;
      if (/^IHE_XDM\//i.test(name)) {
        const held = { name, bytes: data };
        files.set(name, held);
        files.set(name.toUpperCase(), held);
      }
    }
    const metadata = entries.filter((e) => METADATA.test(e.name));
    if (!metadata.length) throw refused('it has no IHE_XDM/<subset>/METADATA.XML');
    if (metadata.length > 1) throw refused(`it holds ${metadata.length} submission sets (${metadata.map((m) => m.name).join(', ')}); one is expected`);
    const metaName = metadata[0]!.name;
    const subset = METADATA.exec(metaName)![1]!;
    let read;
    try {
      read = readSubmitObjectsRequest(files.get(metaName)!.bytes, { xdm: true });
    } catch (e) {
      if (isMssError(e) && e.code === 'XDS_METADATA_INVALID') {
        const problems = ((e.details.problems as string[] | undefined) ?? [String(e.details.reason)]).map((p) => `${metaName}: ${p}`);
        throw refused(problems.join('; '), problems);
      }
      throw e;
    }
    const problems: string[] = [];
    const contents = new Map<string, Buffer>();
    for (const d of read.documents) {
      const uri = d.uri!;
      const unsafe = unsafeEntryName(uri);
      if (unsafe) {
        problems.push(`document ${d.entryUuid}: its URI "${uri}" is refused: it ${unsafe}`);
        continue;
      }
      const file = locate(uri, subset, files);
      if (!file) {
        problems.push(`document ${d.entryUuid}: its URI "${uri}" names no file of the archive`);
        continue;
      }
      const label = file.name.split('/').pop();
      if (file.bytes.length !== d.size) problems.push(`document ${label}: size is ${file.bytes.length} bytes, METADATA.XML says ${d.size}`);
      const sha1 = createHash('sha1').update(file.bytes).digest('hex');
      if (sha1 !== d.hash) problems.push(`document ${label}: SHA-1 is ${sha1}, METADATA.XML says ${d.hash}`);
      contents.set(d.entryUuid, file.bytes);
    }
    if (problems.length) throw refused(problems.join('; '), problems);
    return { set: read.set, documents: read.documents, contents };
  } finally {
    zip.close();
  }
}
