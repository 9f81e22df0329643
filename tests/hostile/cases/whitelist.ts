// The national liste blanche (listeblanchemssante.xml): the list of domains that make the
// MSSanté trust space. A list is refused whole (XML attacks, what it is, its date) or
// entry by entry (a <Domaine> whose name is not a usable domain name: rejected, the rest
// applied). Entries a hostile list adds are all named "pirate…": none may reach the table.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import iconv from 'iconv-lite';
import { readWhitelistSource } from '../../../annuaire/whitelist/index.js';
import { thrownOutcome } from '../files.js';
import type { Case } from '../harness.js';
import { domaine, type WhitelistCtx } from '../whitelist.js';

const invalid = (reason: RegExp) => ({ code: 'WHITELIST_INVALID', enhanced: '422', text: new RegExp(`^the liste blanche from hostile corpus cannot be used: ${reason.source}; nothing changed$`) }) as const;
/** The list applied without this one entry, rejected for this reason. */
const entryRejected = (name: string, reason = 'not a domain name') => ({ code: 'accepted', text: new RegExp(`^added nothing; rejected ${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ${reason}$`) }) as const;
const DTD = /it contains a DTD \(<!DOCTYPE> \/ <!ENTITY>\), which the liste blanche never has and which is refused \(XML entity attacks\)/;
const withEntry = (x: WhitelistCtx, nom: string) => x.run(x.xml({ extra: [domaine(nom)] }));

export const whitelistCases: Array<Case<WhitelistCtx>> = [
  // --- XML attacks ----------------------------------------------------------------------------------
  {
    name: 'an external entity reading /etc/passwd (XXE)',
    send: (x) => x.run(x.xml({ prolog: '<!DOCTYPE ListeBlanche [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n', extra: [domaine('&xxe;')] })),
    expect: invalid(DTD),
  },
  {
    name: 'a billion laughs (entity expansion bomb)',
    send: (x) => x.run(x.xml({ prolog: `<!DOCTYPE l [<!ENTITY a "pirate">${Array.from({ length: 9 }, (_, i) => `<!ENTITY ${String.fromCharCode(98 + i)} "${`&${String.fromCharCode(97 + i)};`.repeat(10)}">`).join('')}]>\n`, extra: [domaine('&j;.fr')] })),
    expect: invalid(DTD),
  },
  {
    name: 'an external entity fetched over HTTP (SSRF through XXE)',
    send: (x) => x.run(x.xml({ prolog: '<!DOCTYPE ListeBlanche SYSTEM "http://169.254.169.254/latest/meta-data/">\n' })),
    expect: invalid(DTD),
  },
  {
    name: 'an ENTITY declaration without a DOCTYPE',
    send: (x) => x.run(x.xml({ prolog: '<!ENTITY pirate "pirate.fr">\n' })),
    expect: invalid(DTD),
  },
  {
    name: 'a DOCTYPE written in lower case',
    send: (x) => x.run(x.xml({ prolog: '<!doctype ListeBlanche [<!entity x "y">]>\n' })),
    expect: invalid(DTD),
  },
  {
    name: 'an undeclared entity in a name',
    send: (x) => withEntry(x, '&pirate;.fr'),
    expect: entryRejected('&pirate;.fr'),
  },
  {
    name: 'elements nested 20,000 deep',
    send: (x) => x.run(x.xml({ extra: [`${'<a>'.repeat(20_000)}${'</a>'.repeat(20_000)}`] })),
    expect: invalid(/it cannot be parsed \(Maximum nested tags exceeded\)/),
  },
  // --- what the file is ---------------------------------------------------------------------------
  { name: 'an empty body', send: (x) => x.run(''), expect: invalid(/it is not well-formed XML \(line 1: Start tag expected\.\)/) },
  { name: 'JSON instead of XML', send: (x) => x.run('{"domaines": ["pirate.fr"]}'), expect: invalid(/it is not well-formed XML \(line 1: .*\)/) },
  { name: 'a list cut in the middle of an element', send: (x) => x.run(x.xml({ extra: [domaine('pirate-cut.fr')] }).slice(0, -60)), expect: invalid(/it is not well-formed XML \(line \d+: .*\)/) },
  { name: 'another namespace', send: (x) => x.run(x.xml({ ns: 'https://listeblanche.example.org/schema' })), expect: invalid(/its namespace is "https:\/\/listeblanche\.example\.org\/schema", not https:\/\/listeblanche\.mssante\.fr\/schema/) },
  { name: 'no <DateDeGeneration>', send: (x) => x.run(x.xml().replace(/<DateDeGeneration>.*<\/DateDeGeneration>/, '')), expect: invalid(/it has no <DateDeGeneration> \(or an empty one\)/) },
  { name: 'a <DateDeGeneration> that is not a date', send: (x) => x.run(x.xml({ date: 'demain' })), expect: invalid(/its <DateDeGeneration> "demain" is not a date/) },
  { name: 'a French date that does not exist (31/02/2026)', send: (x) => x.run(x.xml({ date: '31/02/2026' })), expect: invalid(/its <DateDeGeneration> "31\/02\/2026" is not a date/) },
  { name: 'no <Domaine> at all', send: (x) => x.run(x.xml().replace(/<Domaine>[\s\S]*<\/Domaine>/, '')), expect: invalid(/it lists no usable <Domaine>/) },
  { name: 'only unusable <Domaine> entries', send: (x) => x.run(x.xml().replace(/<Domaine>[\s\S]*<\/Domaine>/, domaine('pirate dot fr'))), expect: invalid(/it lists no usable <Domaine>/) },
  { name: 'UTF-16 without a byte-order mark', send: (x) => x.run(Buffer.from(x.xml({ extra: [domaine('pirate16.fr')] }), 'utf16le')), expect: invalid(/it is not well-formed XML \(line 1: Tag '\?xml' is an invalid name\.\)/) },
  {
    name: 'a list in ISO-8859-1: its accented names are rejected, never turned into other domains',
    send: (x) => x.run(iconv.encode(x.xml({ extra: [domaine('pirate-hôpital.fr')] }).replace('UTF-8', 'ISO-8859-1'), 'latin1')),
    expect: { code: 'accepted', text: /^added nothing; rejected pirate-h\uFFFDpital\.fr: not a domain name$/ },
  },
  {
    name: 'a list larger than 64 MB (read from a file)',
    send: async (x) => {
      const path = join(mkdtempSync(join(tmpdir(), 'mss-hostile-wl-')), 'listeblanchemssante.xml');
      writeFileSync(path, x.xml().replace('</Domaines>', `<!-- ${'x'.repeat(65 << 20)} --></Domaines>`));
      try {
        await readWhitelistSource(path);
        return { code: 'read', text: 'a 65 MB list was read' };
      } catch (e) {
        return thrownOutcome(e);
      }
    },
    expect: { code: 'WHITELIST_INVALID', enhanced: '422', text: /cannot be used: it is larger than 64 MB; nothing changed$/ },
  },
  // --- its date ------------------------------------------------------------------------------------
  { name: 'a list older than the one in place', send: (x) => x.run(x.xml({ date: '2019-01-01T00:00:00', extra: [domaine('pirate-old.fr')] })), expect: { code: 'WHITELIST_OLDER', enhanced: '409', text: /^the liste blanche from hostile corpus was generated on 2019-01-01T00:00:00, before the one in place \(2026-01-01T\d\d:\d\d:00\); nothing changed$/ } },
  {
    name: 'a list dated in the future (it would refuse every real list after it)',
    send: (x) => x.run(x.xml({ date: '2099-01-01T00:00:00', extra: [domaine('pirate-future.fr')] })),
    expect: invalid(/its <DateDeGeneration> "2099-01-01T00:00:00" is in the future/),
  },
  // --- the names -----------------------------------------------------------------------------------
  { name: 'a name with a space', send: (x) => withEntry(x, 'pirate dot fr'), expect: entryRejected('pirate dot fr') },
  { name: 'a wildcard name (*.mssante.fr)', send: (x) => withEntry(x, '*.pirate.fr'), expect: entryRejected('*.pirate.fr') },
  { name: 'an IP address', send: (x) => withEntry(x, '10.0.0.1'), expect: entryRejected('10.0.0.1') },
  { name: 'a percent-escaped name that decodes to another (pir%61te.fr)', send: (x) => withEntry(x, 'pir%61te.fr'), expect: entryRejected('pir%61te.fr') },
  { name: 'a name hiding a zero-width space', send: (x) => withEntry(x, 'pirate\u200b.fr'), expect: entryRejected('pirate\u200b.fr') },
  { name: 'a name in full-width letters', send: (x) => withEntry(x, 'ｐｉｒａｔｅ.fr'), expect: entryRejected('ｐｉｒａｔｅ.fr') },
  { name: 'an invalid punycode label (xn--pirate-)', send: (x) => withEntry(x, 'xn--pirate-.fr'), expect: entryRejected('xn--pirate-.fr') },
  { name: 'a label starting with a hyphen', send: (x) => withEntry(x, '-pirate.fr'), expect: entryRejected('-pirate.fr') },
  { name: 'an empty label (pirate..fr)', send: (x) => withEntry(x, 'pirate..fr'), expect: entryRejected('pirate..fr') },
  { name: 'a label of 64 characters', send: (x) => withEntry(x, `pirate${'a'.repeat(58)}.fr`), expect: entryRejected(`pirate${'a'.repeat(58)}.fr`) },
  { name: 'an underscore in a name', send: (x) => withEntry(x, 'pirate_mx.fr'), expect: entryRejected('pirate_mx.fr') },
  { name: 'an escaped "<" in a name (pirate&lt;.fr)', send: (x) => withEntry(x, 'pirate&lt;.fr'), expect: entryRejected('pirate<.fr') },
  { name: 'a name that is an address (pirate@mssante.fr)', send: (x) => withEntry(x, 'pirate@mssante.fr'), expect: entryRejected('pirate@mssante.fr') },
  { name: 'a name with a path (pirate.fr/x)', send: (x) => withEntry(x, 'pirate.fr/x'), expect: entryRejected('pirate.fr/x') },
  { name: 'a single-label name (pirate)', send: (x) => withEntry(x, 'pirate'), expect: entryRejected('pirate') },
  { name: 'a <Domaine> without <Nom>', send: (x) => x.run(x.xml({ extra: ['<Domaine><Description>pirate</Description></Domaine>'] })), expect: entryRejected('(no name)', '<Domaine> without <Nom>') },
  { name: 'a <Domaine> with two <Nom>', send: (x) => x.run(x.xml({ extra: ['<Domaine><Nom>pirate-a.fr</Nom><Nom>pirate-b.fr</Nom></Domaine>'] })), expect: entryRejected('(no name)', '<Domaine> without <Nom>') },
  { name: 'a NUL character reference in a name (pirate&#0;.fr)', send: (x) => withEntry(x, 'pirate&#0;.fr'), expect: invalid(/it contains the character reference &#0;, which XML does not allow/) },
  { name: 'a control character reference in hexadecimal (&#x1B;)', send: (x) => withEntry(x, 'pirate&#x1B;.fr'), expect: invalid(/it contains the character reference &#x1B;, which XML does not allow/) },
];
