// annuaire/whitelist — the national liste blanche: import (file or URL, newer only, diff in
// one transaction, journalled) and the lookups the SMTP layer consults through core/policy.
export { parseWhitelist, parseGenerationDate, domainForms, WHITELIST_NAMESPACE, type WhitelistEntry, type ParsedWhitelist } from './parse.js';
export { importWhitelist, readWhitelistSource, whitelistEntry, isWhitelisted, operatorDnFor, listWhitelist, currentWhitelist, whitelistFactSource, type WhitelistImportResult, type WhitelistedDomain, type WhitelistExpectation } from './store.js';
