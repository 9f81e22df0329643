// Thunderbird (and clients that read the same format: K-9/Thunderbird Android, Evolution,
// KMail) configure an account from an address alone by fetching a Mozilla autoconfig file:
//   https://autoconfig.<domain>/mail/config-v1.1.xml?emailaddress=<address>
//   https://<domain>/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=<address>
// Both paths are served here, as an encapsulated Fastify plugin on the platform's HTTP
// listener. The user name is the address itself (%EMAILADDRESS%): for a personal box that
// is all the person types; members of an organisational box change it to "box*login".
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { MssError, problem } from '../core/errors.js';

export interface AutoconfigOptions {
  /** Public host name of the IMAP and SMTP servers (operator.hostname). */
  hostname: string;
  /** The mail domains this operator serves. */
  domains: string[];
  displayName: string;
  imap: { port: number; starttlsPort: number };
  smtp: { submissionsPort: number; submissionPort: number };
}

const xml = (s: string) => s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);

/** The clientConfig document (https://wiki.mozilla.org/Thunderbird:Autoconfiguration:ConfigFileFormat). */
export function autoconfigXml(o: AutoconfigOptions): string {
  const server = (kind: 'incomingServer' | 'outgoingServer', type: string, port: number, socket: 'SSL' | 'STARTTLS') => `    <${kind} type="${type}">
      <hostname>${xml(o.hostname)}</hostname>
      <port>${port}</port>
      <socketType>${socket}</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </${kind}>`;
  return `<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="${xml(o.domains[0] ?? o.hostname)}">
${o.domains.map((d) => `    <domain>${xml(d)}</domain>`).join('\n')}
    <displayName>${xml(o.displayName)}</displayName>
    <displayShortName>MSSanté</displayShortName>
${server('incomingServer', 'imap', o.imap.port, 'SSL')}
${server('incomingServer', 'imap', o.imap.starttlsPort, 'STARTTLS')}
${server('outgoingServer', 'smtp', o.smtp.submissionsPort, 'SSL')}
${server('outgoingServer', 'smtp', o.smtp.submissionPort, 'STARTTLS')}
  </emailProvider>
</clientConfig>
`;
}

export const autoconfigRoutes: FastifyPluginAsync<AutoconfigOptions> = async (app, o) => {
  const body = autoconfigXml(o);
  const domains = new Set(o.domains.map((d) => d.toLowerCase()));
  const schema = { querystring: { type: 'object', properties: { emailaddress: { type: 'string', maxLength: 320 } } } } as const;
  const handler = async (req: FastifyRequest<{ Querystring: { emailaddress?: string } }>, reply: FastifyReply) => {
    const address = req.query.emailaddress;
    // An address of another provider: say so, rather than configure it against our servers.
    if (address && !domains.has(address.slice(address.lastIndexOf('@') + 1).trim().toLowerCase())) {
      const p = problem(new MssError('NOT_FOUND', { what: `mail settings for ${address} (not a domain of this operator)` }), req.url);
      return reply.code(404).type('application/problem+json').send(p);
    }
    return reply.type('application/xml; charset=utf-8').header('cache-control', 'public, max-age=3600').send(body);
  };
  app.get<{ Querystring: { emailaddress?: string } }>('/.well-known/autoconfig/mail/config-v1.1.xml', { schema }, handler);
  app.get<{ Querystring: { emailaddress?: string } }>('/mail/config-v1.1.xml', { schema }, handler);
};
