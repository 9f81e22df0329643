// imap-proxy — IMAPS in front of Dovecot: TLS (993 and 143 + STARTTLS), the logins of
// people and applications, the BAL authorisation (core/policy), the master-user login to
// Dovecot, and functional traces in the journal. Thunderbird/Outlook autoconfiguration too.
export { startImapProxy, type ImapProxy, type ImapProxyDeps } from './server.js';
export { autoconfigRoutes, type AutoconfigOptions } from './autoconfig.js';
export { CommandParser, type ParseEvent, type Arg, type Command } from './parser.js';
