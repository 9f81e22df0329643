// Guards shared by every reader of XML from outside — the liste blanche (annuaire/whitelist),
// METADATA.XML and CDA documents (dmp/safe-xml), ITI-41 messages (dmp/iti41/xml). They run
// on the raw text before any parser, so each is one pass over it whatever it holds: a lazy
// regex such as /<!--[\s\S]*?-->/g rescans to the end for every unterminated "<!--", and
// 4 MB of them took hours (found by fuzzing).

/** The text without its comments; an unterminated comment runs to the end (the validator refuses it). */
export function withoutComments(xml: string): string {
  const parts: string[] = [];
  let at = 0;
  for (;;) {
    const open = xml.indexOf('<!--', at);
    if (open < 0) break;
    parts.push(xml.slice(at, open));
    const close = xml.indexOf('-->', open + 4);
    if (close < 0) return parts.join('');
    at = close + 3;
  }
  parts.push(xml.slice(at));
  return parts.join('');
}

/** Which DTD declaration the text makes outside comments (where XXE and entity bombs live), or null. */
export function dtdDeclared(xml: string): 'DOCTYPE' | 'ENTITY' | null {
  const body = withoutComments(xml);
  if (/<!DOCTYPE/i.test(body)) return 'DOCTYPE';
  if (/<!ENTITY/i.test(body)) return 'ENTITY';
  return null;
}

/**
 * A parser's or validator's message, fit for a refusal sentence: one line, at most 200
 * characters (fast-xml-parser names the unclosed tags of a deep document in a message of
 * megabytes), without the control characters it quotes from the file (the NULs of a UTF-16
 * file read as UTF-8 would otherwise end up in logs and replies).
 */
export function parserMessage(msg: string): string {
  const line = msg.replace(/\s+/g, ' ').replace(/[\x00-\x1f\x7f-\x9f]/g, '').trim();
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}
