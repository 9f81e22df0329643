// multipart/related for MTOM/XOP (W3C XOP 1.0, SOAP MTOM): the SOAP envelope as the root
// part, each document as a binary part named by its Content-ID.
//
// Writing is plain concatenation: we choose every header, the parts are binary (no
// transfer encoding, no line folding) and the boundary is 24 random bytes checked against
// the content, so there is nothing a MIME library would add. Reading what others send is
// left to @remix-run/multipart-parser, with limits on header size, part count and sizes;
// this file only drops the preamble it does not accept (some SOAP stacks start the body
// with CRLF before the first boundary, which RFC 2046 allows) and checks the parts.
import { randomBytes } from 'node:crypto';
import { MultipartParseError, parseMultipart } from '@remix-run/multipart-parser';

export class MimeError extends Error {}

export interface ContentType {
  /** type/subtype, lower-case. */
  type: string;
  /** Parameters by lower-case name, unquoted. */
  params: Record<string, string>;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** RFC 9110 media type with parameters; quoted strings unescaped. Null when malformed. */
export function parseContentType(header: string | undefined): ContentType | null {
  if (!header) return null;
  const s = header.trim();
  const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+)\/([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*/.exec(s);
  if (!m) return null;
  const params: Record<string, string> = {};
  let i = m[0].length;
  while (i < s.length) {
    if (s[i] !== ';') return null;
    i++;
    while (s[i] === ' ' || s[i] === '\t') i++;
    if (i >= s.length) break; // a trailing ";" is tolerated
    const eq = s.indexOf('=', i);
    if (eq < 0) return null;
    const name = s.slice(i, eq).trim().toLowerCase();
    if (!TOKEN.test(name)) return null;
    i = eq + 1;
    let value = '';
    if (s[i] === '"') {
      i++;
      while (i < s.length && s[i] !== '"') {
        if (s[i] === '\\' && i + 1 < s.length) i++;
        value += s[i++];
      }
      if (s[i] !== '"') return null;
      i++;
    } else {
      const end = s.indexOf(';', i);
      value = s.slice(i, end < 0 ? s.length : end).trim();
      if (!TOKEN.test(value) && !/^[^\s";\\]+$/.test(value)) return null;
      i = end < 0 ? s.length : end;
    }
    while (s[i] === ' ' || s[i] === '\t') i++;
    params[name] = value;
  }
  return { type: `${m[1]}/${m[2]}`.toLowerCase(), params };
}

const quote = (v: string) => `"${v.replace(/["\\]/g, '\\$&')}"`;

/** Content-ID value without angle brackets. */
export const bareCid = (v: string) => v.trim().replace(/^<(.*)>$/, '$1');

/** A `cid:` URL (RFC 2392, percent-encoded) to the Content-ID it names; null when not one. */
export function cidOfHref(href: string): string | null {
  const m = /^cid:(.+)$/i.exec(href.trim());
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return null;
  }
}

export interface OutPart {
  contentType: string;
  /** Without angle brackets; only characters safe in a cid: URL and a header (we mint them). */
  contentId: string;
  body: Buffer;
}

export interface Related {
  body: Buffer;
  /** The HTTP Content-Type header value. */
  contentType: string;
}

/** The body and Content-Type of a multipart/related message whose first part is the root. */
export function buildRelated(parts: OutPart[], root: { type: string; startInfo?: string; action?: string }): Related {
  if (!parts.length) throw new MimeError('a multipart/related message needs a root part');
  let boundary: string;
  do boundary = `MIMEBoundary_${randomBytes(24).toString('hex')}`;
  while (parts.some((p) => p.body.includes(boundary)));
  const chunks: Buffer[] = [];
  for (const p of parts) {
    if (!/^[A-Za-z0-9.!#$%&'*+\-/=?^_`{|}~@]+$/.test(p.contentId)) throw new MimeError(`Content-ID "${p.contentId}" has characters this writer does not use`);
    if (/[\r\n]/.test(p.contentType)) throw new MimeError('a part Content-Type cannot span lines');
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: ${p.contentType}\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <${p.contentId}>\r\n\r\n`, 'latin1'), p.body, Buffer.from('\r\n', 'latin1'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`, 'latin1'));
  const params = [`boundary=${quote(boundary)}`, `type=${quote(root.type)}`, `start=${quote(`<${parts[0].contentId}>`)}`];
  if (root.startInfo) params.push(`start-info=${quote(root.startInfo)}`);
  if (root.action) params.push(`action=${quote(root.action)}`);
  return { body: Buffer.concat(chunks), contentType: `multipart/related; ${params.join('; ')}` };
}

export interface InPart {
  contentId: string | null;
  contentType: ContentType | null;
  headers: Record<string, string>;
  body: Buffer;
}

export interface ParsedRelated {
  type: ContentType;
  root: InPart;
  /** Every part but the root, by Content-ID (bare). */
  byCid: Map<string, InPart>;
  /** Parts without a Content-ID (never referable; a sender's mistake worth reporting). */
  anonymous: number;
}

export interface MimeLimits {
  maxHeaderSize: number;
  maxParts: number;
  maxPartSize: number;
  maxTotalSize: number;
}

export const DEFAULT_LIMITS: MimeLimits = { maxHeaderSize: 8 * 1024, maxParts: 200, maxPartSize: 64 * 1024 ** 2, maxTotalSize: 256 * 1024 ** 2 };

/** Reads a multipart/related body whose Content-Type header is `contentType`. */
export function parseRelated(body: Buffer, contentType: string, limits: MimeLimits = DEFAULT_LIMITS): ParsedRelated {
  const type = parseContentType(contentType);
  if (!type || type.type !== 'multipart/related') throw new MimeError(`expected multipart/related, got ${contentType || 'no Content-Type'}`);
  const boundary = type.params.boundary;
  if (!boundary || boundary.length > 70) throw new MimeError('the multipart/related Content-Type has no usable boundary parameter');
  const delimiter = Buffer.from(`--${boundary}`, 'latin1');
  // The first delimiter starts the body or a line: anything before it is preamble.
  let start = body.subarray(0, delimiter.length).equals(delimiter) ? 0 : -1;
  if (start < 0) {
    const at = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]));
    if (at < 0) throw new MimeError('the body does not contain its boundary');
    start = at + 2;
  }
  // Likewise the parser refuses an epilogue longer than a line break: end at the close delimiter.
  const close = body.lastIndexOf(Buffer.concat([Buffer.from('\r\n'), delimiter, Buffer.from('--')]));
  const end = close < start ? body.length : close + delimiter.length + 4;
  const parts: InPart[] = [];
  try {
    for (const p of parseMultipart(body.subarray(start, end), {
      boundary,
      maxHeaderSize: limits.maxHeaderSize,
      maxParts: limits.maxParts,
      maxFileSize: limits.maxPartSize,
      maxTotalSize: limits.maxTotalSize,
    })) {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(p.headers)) headers[k.toLowerCase()] = String(v);
      const bytes = p.bytes; // a getter that copies: read once
      let content = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const cte = (headers['content-transfer-encoding'] ?? 'binary').trim().toLowerCase();
      if (cte === 'base64') content = Buffer.from(content.toString('latin1').replace(/[\r\n\t ]/g, ''), 'base64');
      else if (cte !== 'binary' && cte !== '8bit' && cte !== '7bit') throw new MimeError(`a part uses Content-Transfer-Encoding ${cte}, which MTOM does not use`);
      parts.push({ contentId: headers['content-id'] ? bareCid(headers['content-id']) : null, contentType: parseContentType(headers['content-type']), headers, body: content });
    }
  } catch (e) {
    // The parser decodes part headers strictly: bytes that are not UTF-8 there throw a
    // TypeError (found by fuzzing: the stand-in DMP answered 500 instead of a Sender fault).
    if (e instanceof MultipartParseError || e instanceof TypeError) throw new MimeError(`the multipart body is malformed: ${e.message}`);
    throw e;
  }
  if (!parts.length) throw new MimeError('the multipart body has no part');
  const startCid = type.params.start ? bareCid(type.params.start) : null;
  const root = startCid ? parts.find((p) => p.contentId === startCid) : parts[0];
  if (!root) throw new MimeError(`no part has the Content-ID <${startCid}> named by the start parameter`);
  const byCid = new Map<string, InPart>();
  let anonymous = 0;
  for (const p of parts) {
    if (p === root) continue;
    if (p.contentId === null) {
      anonymous++;
      continue;
    }
    if (byCid.has(p.contentId) || p.contentId === root.contentId) throw new MimeError(`two parts have the Content-ID <${p.contentId}>`);
    byCid.set(p.contentId, p);
  }
  return { type, root, byCid, anonymous };
}
