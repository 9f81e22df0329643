/**
 * Mailbox names travel in IMAP's modified UTF-7 (RFC 3501 §5.1.3): "Envoy&AOk-s" is
 * "Envoyés". Traces record the name a person reads; a malformed name is kept as sent.
 */
export function decodeMutf7(name: string): string {
  if (!name.includes('&')) return name;
  let out = '';
  for (let i = 0; i < name.length; i++) {
    const c = name[i];
    if (c !== '&') {
      out += c;
      continue;
    }
    const end = name.indexOf('-', i + 1);
    if (end < 0) return name;
    const b64 = name.slice(i + 1, end);
    if (b64 === '') out += '&';
    else {
      if (!/^[A-Za-z0-9+,]+$/.test(b64)) return name;
      const bytes = Buffer.from(b64.replace(/,/g, '/'), 'base64');
      if (bytes.length % 2) return name;
      for (let j = 0; j < bytes.length; j += 2) out += String.fromCharCode(bytes.readUInt16BE(j));
    }
    i = end;
  }
  return out;
}
