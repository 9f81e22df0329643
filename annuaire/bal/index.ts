// annuaire/bal — the operator's own mailboxes (PER / ORG / APP / CAB), their members and
// application certificates, and the local accounts with their credentials.
export * from './model.js';
export { findBal, balsFor, balsForApplication, listBals, findPerson, listPersons, subjectsInScope, countBals, balAddressesInScope, expiringAppCertificates, type BalFilter, type PersonRef } from './lookups.js';
export { createBal, updateBal, closeBal, reopenBal, addMember, removeMember, registerAppCertificate, revokeAppCertificate, type NewBal, type BalChanges } from './mailboxes.js';
export {
  createPerson,
  setPassword,
  resetCredentials,
  enableTotp,
  setPersonActive,
  authenticate,
  checkCredentials,
  accountLogin,
  principalForCertificate,
  principalForNationalId,
  professionals,
  MIN_PASSWORD_LENGTH,
  type NewPerson,
  type CredentialCheck,
  type CredentialFailure,
} from './persons.js';
export { balFactSource, mailboxFacts } from './facts.js';
export { readCertificate, fingerprintOf, type CertificateInfo } from './certificates.js';
export { normaliseIdnps, normaliseStructureId, normaliseBalAddress } from './identifiers.js';
export { totpCode } from './credentials.js';
export { CredentialCache } from './credential-cache.js';
export { openSession, sessionPerson, closeSession, closeSessionsOf, isSessionToken, SESSION_TOKEN_PREFIX, type SessionLifetime } from './sessions.js';
export { readOpenPgpPublicKey, openPgpKeyOf, openPgpKeysFor, registerOpenPgpKey, removeOpenPgpKey, type OpenPgpKeyInfo, type RegisteredOpenPgpKey } from './openpgp.js';
