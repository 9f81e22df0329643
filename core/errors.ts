// The one catalogue of refusals and failures. Each entry has a stable code, the wire form
// for every front (SMTP reply + enhanced status, IMAP response code, HTTP status) and a
// sentence a person understands. Fronts never send err.message of an unexpected error.

export interface CatalogueEntry {
  http: number;
  smtp?: { code: number; enhanced: string };
  imap?: { kind: 'NO' | 'BAD' | 'BYE'; code?: string };
  /** Human sentence; {name} placeholders are filled from details. */
  text: string;
}

export const catalogue = {
  CONFIG_INVALID: { http: 500, text: 'the configuration is invalid: {problems}' },
  DATA_DIR_LOCKED: { http: 503, text: 'the embedded database {dir} is in use by process {pid}; stop it first, or set MSS_DATABASE_URL to use PostgreSQL' },
  DB_UNREACHABLE: { http: 503, smtp: { code: 451, enhanced: '4.3.0' }, imap: { kind: 'NO', code: 'UNAVAILABLE' }, text: 'cannot reach the database {target}: {reason}' },
  DB_COMMIT_UNKNOWN: { http: 503, smtp: { code: 451, enhanced: '4.3.0' }, imap: { kind: 'NO', code: 'UNAVAILABLE' }, text: 'the connection to the database {target} was lost while committing; whether the change was saved is unknown, so it is not confirmed: try again' },
  DB_SETTING_INVALID: { http: 500, text: 'the embedded database setting "{setting}" is not name=value (database.pgliteSettings)' },
  DB_MIGRATION_CHANGED: { http: 500, text: 'migration {name} was changed after it was applied (checksum differs); restore it and add a new migration instead' },
  FILE_UNREADABLE: { http: 500, text: 'cannot read {what} {file}: {reason}' },
  // Encryption at rest (core/crypt): the platform's keys and the sealed spool bodies.
  CRYPT_MASTER_KEY_INVALID: { http: 500, text: 'the master key in {source} is not 32 bytes written as 64 hex digits or in base64' },
  CRYPT_MASTER_KEY_MISSING: { http: 500, text: 'the keyring {file} exists but no master key opens it: set MSS_CRYPT_MASTER_KEY (crypt.masterKey) to the key it was made with' },
  CRYPT_MASTER_KEY_WRONG: { http: 500, text: 'the master key does not open the keyring {file} (wrong key, or the keyring was changed): every node of one database must be given the same crypt.masterKey (MSS_CRYPT_MASTER_KEY)' },
  CRYPT_KEYRING_CONFLICT: { http: 500, text: 'the local keyring {file} holds a generation {key} that the database\'s keyring does not (keys made on this node alone): what they encrypted would be lost if it were replaced. Keep this data directory aside, or start this node on the database it was made with' },
  CRYPT_KEYRING_BROKEN: { http: 500, text: 'the keyring {file} is broken: {reason}' },
  CRYPT_NO_KEYRING: { http: 500, text: 'there is no keyring {file} yet: start the platform once to create it' },
  CRYPT_KEY_UNKNOWN: { http: 500, text: 'key {key} that sealed {what} is not in the keyring: restore the keyring that holds it' },
  CRYPT_BODY_CORRUPT: { http: 500, text: '{what} does not open with key {key}: its stored body was changed or belongs to another row' },
  CERT_INVALID: { http: 500, text: '{what} {file} is not a usable certificate: {reason}' },
  TSA_BAD_REQUEST: { http: 400, text: 'the timestamp request is not a valid RFC 3161 TimeStampReq: {reason}' },
  TSA_UNAVAILABLE: { http: 503, text: 'the timestamping authority {target} did not answer: {reason}' },
  TSA_TOKEN_INVALID: { http: 422, text: 'the timestamp token does not verify: {reason}' },
  UNSUPPORTED_MEDIA_TYPE: { http: 415, text: 'expected a body of type {expected}, got {got}' },
  // HTTP input the listeners refuse before any handler runs (core/http.ts).
  HTTP_BODY_TOO_LARGE: { http: 413, text: 'the request body is larger than the {limit} bytes this operation accepts' },
  HTTP_URL_INVALID: { http: 400, text: 'the request URL cannot be read: {reason}' },
  HTTP_URL_TOO_LONG: { http: 414, text: 'a path segment of the URL is longer than the {limit} characters accepted' },
  JOURNAL_EVENT_NOT_FOUND: { http: 404, text: 'journal event {id} does not exist' },
  JOURNAL_EVENT_NOT_SEALED: { http: 409, text: 'journal event {id} is not sealed yet; try again in a few seconds' },
  JOURNAL_PROOF_BROKEN: { http: 500, text: 'journal event {id} cannot be proven: {reason}; run "mss journal verify"' },
  JOURNAL_CANNOT_SEAL: { http: 503, text: 'this command records what it does in the journal and seals it before it exits, but the timestamping authority cannot be used: {reason}; nothing was done (set the MSS_TSA_* files or MSS_TSA_URL)' },
  JOURNAL_SEAL_FAILED: { http: 503, text: '{count} journal event(s) written by this command could not be sealed: {reason}; they stay unsealed (and `mss journal verify` fails) until `mss journal seal` or the next start of the platform seals them' },
  // Backup and restore (core/backup): a set is checked whole before anything is restored from it.
  BACKUP_SET_INVALID: { http: 422, text: 'the backup set {dir} is refused, nothing was restored: {file}: {problem}' },
  BACKUP_TARGET_NOT_EMPTY: { http: 409, text: 'cannot restore into {dir}: it already holds {what}; restore into a new, empty data directory (and database)' },
  BACKUP_TARGET_MISMATCH: { http: 409, text: 'cannot restore into {target}: {why}' },
  BACKUP_STEP_FAILED: { http: 500, text: 'could not {step}: {reason}' },
  NOT_FOUND: { http: 404, text: '{what} not found' },
  BAD_REQUEST: { http: 400, text: '{reason}' },
  ANNUAIRE_UNKNOWN_FILE: { http: 422, text: '{file} is not an extraction this importer reads: {reason}' },
  ANNUAIRE_NO_DATE: { http: 422, text: 'cannot tell the extraction date of {file} from its name (expected …_AAAAMMJJhhmm.txt); pass --date' },
  ANNUAIRE_FUTURE_EXTRACTION: { http: 422, text: '{file} is dated {date}, in the future (it would make every real extraction after it look older); nothing applied: check the name, or give the date with --date' },
  ANNUAIRE_OLDER_EXTRACTION: { http: 409, text: '{file} is an extraction of {date}, older than the {latest} one already imported; nothing applied (use --force to apply it anyway)' },
  ANNUAIRE_ZIP_REFUSED: { http: 422, text: 'archive {file} refused: {reason}' },
  ANNUAIRE_READ_FAILED: { http: 422, text: 'cannot read {file}: {reason}; nothing applied' },
  // Access policy refusals (core/policy) and the annuaire's own mailboxes, whitelist and
  // admin API. A policy verdict carries one of these codes; each front turns it into its wire form.
  AUTH_FAILED: { http: 401, smtp: { code: 535, enhanced: '5.7.8' }, imap: { kind: 'NO', code: 'AUTHENTICATIONFAILED' }, text: 'authentication failed: unknown user name or wrong credential' },
  // A certificate login (SASL EXTERNAL) that fails: the client holds the certificate, so saying why gives nothing away.
  AUTH_EXTERNAL_FAILED: { http: 401, smtp: { code: 535, enhanced: '5.7.8' }, imap: { kind: 'NO', code: 'AUTHENTICATIONFAILED' }, text: 'certificate authentication (SASL EXTERNAL) failed: {why}' },
  // A Pro Santé Connect access token (SASL OAUTHBEARER / XOAUTH2) that is refused: {why} from TOKEN_FAILURE.
  AUTH_TOKEN_FAILED: { http: 401, smtp: { code: 535, enhanced: '5.7.8' }, imap: { kind: 'NO', code: 'AUTHENTICATIONFAILED' }, text: 'Pro Santé Connect token refused: {why}' },
  PSC_UNAVAILABLE: { http: 503, smtp: { code: 454, enhanced: '4.7.0' }, imap: { kind: 'NO', code: 'UNAVAILABLE' }, text: 'Pro Santé Connect cannot be reached to check the login ({reason}); try again in a moment' },
  PSC_LOGIN_FAILED: { http: 401, text: 'the Pro Santé Connect login did not complete: {why}' },
  PSC_NOT_CONFIGURED: { http: 404, text: 'Pro Santé Connect logins are not configured on this platform (psc.issuer)' },
  // The one login throttle (core/policy/throttle.ts), whatever the front: 454 4.7.0 is RFC 4954's temporary authentication failure.
  LOGIN_THROTTLED: { http: 429, smtp: { code: 454, enhanced: '4.7.0' }, imap: { kind: 'NO', code: 'LIMIT' }, text: 'too many failed logins {who}; try again {when}' },
  LOGIN_BUSY: { http: 503, smtp: { code: 454, enhanced: '4.7.0' }, imap: { kind: 'NO', code: 'UNAVAILABLE' }, text: 'too many logins {who} are being checked right now; try again in a moment' },
  DIRECTORY_UNAVAILABLE: { http: 503, smtp: { code: 451, enhanced: '4.4.3' }, imap: { kind: 'NO', code: 'UNAVAILABLE' }, text: 'the directory cannot answer right now; please try again later' },
  BAL_UNKNOWN: { http: 404, smtp: { code: 550, enhanced: '5.1.1' }, imap: { kind: 'NO', code: 'AUTHORIZATIONFAILED' }, text: 'there is no mailbox {address} at this operator' },
  BAL_CLOSED: { http: 410, smtp: { code: 550, enhanced: '5.1.1' }, imap: { kind: 'NO', code: 'AUTHORIZATIONFAILED' }, text: 'the mailbox {address} is closed' },
  BAL_NOT_MEMBER: { http: 403, smtp: { code: 550, enhanced: '5.7.1' }, imap: { kind: 'NO', code: 'AUTHORIZATIONFAILED' }, text: '{principal} may not open the mailbox {address}: {why}' },
  SEND_AS_FORBIDDEN: { http: 403, smtp: { code: 553, enhanced: '5.7.1' }, imap: { kind: 'NO', code: 'NOPERM' }, text: '{principal} may not send as {address}: {why}' },
  DOMAIN_NOT_WHITELISTED: { http: 403, smtp: { code: 550, enhanced: '5.7.1' }, imap: { kind: 'NO', code: 'NOPERM' }, text: '{role}domain {domain} is not in the MSSanté trust space (it is not on the liste blanche)' },
  PEER_CERT_MISMATCH: { http: 403, smtp: { code: 550, enhanced: '5.7.1' }, imap: { kind: 'NO', code: 'AUTHENTICATIONFAILED' }, text: 'the certificate presented for {domain} ({subject}) is not the operator certificate the liste blanche records for it' },
  ADMIN_OUT_OF_SCOPE: { http: 403, text: 'account {admin} may not act on {target}: {why}' },
  // The FHIR annuaire API (annuaire/fhir): who may read it (core/policy decideDirectoryRead), and its search refusals, sent as OperationOutcome.
  DIRECTORY_READ_FORBIDDEN: { http: 403, text: 'the directory API is open to the software of the MSSanté trust space only, authenticated by its certificate: {why}' },
  FHIR_PARAM_UNKNOWN: { http: 400, text: 'unknown search parameter {param} for {type}: {reason}' },
  FHIR_PARAM_INVALID: { http: 400, text: '{reason}' },
  FHIR_NOT_SERVED: { http: 404, text: '{what} is not in the directory' },
  FHIR_FORMAT_UNSUPPORTED: { http: 406, text: 'this server answers in FHIR JSON only (application/fhir+json); {what} was asked for' },
  FHIR_METHOD_UNSUPPORTED: { http: 405, text: 'the directory API is read-only: {method} is not accepted here (use GET)' },
  // An admin login's second factor (annuaire/admin/accounts.ts); told only after a right password, under the login throttle.
  ADMIN_OTP_REQUIRED: { http: 401, text: 'this account logs in with a one-time code as well: give the 6-digit code of its authenticator app' },
  ADMIN_OTP_INVALID: { http: 401, text: 'the one-time code is wrong or expired: give the code the authenticator app shows now' },
  ADMIN_OTP_REPLAYED: { http: 401, text: 'this one-time code was already used: wait for the next code of the authenticator app' },
  ADMIN_TOTP_ENROLMENT_REQUIRED: { http: 403, text: 'account {admin} must enrol a second factor (TOTP, admin.requireTotp) before it can do anything else: POST /api/v1/me/totp, then confirm a first code' },
  // Not 401: the session is good (a page must not take it for a session that ended), the code is not.
  ADMIN_TOTP_NOT_CONFIRMED: { http: 422, text: 'the code does not match the second factor being enrolled, or it expired: give the code the authenticator app shows now' },
  ADMIN_TOTP_NO_ENROLMENT: { http: 409, text: 'there is no second-factor enrolment to confirm for account {admin}: start one first' },
  ADMIN_CSRF_INVALID: { http: 403, text: 'this request was refused because it may have been forged by another site: {reason}; reload the page and try again' },
  MAILSTORE_MOVE_REFUSED: { http: 409, text: '{reason}' },
  BAL_EXISTS: { http: 409, text: 'the address {address} is already taken (addresses are never reused)' },
  BAL_WRONG_TYPE: { http: 409, text: '{operation} applies to {expected} mailboxes; {address} is of type {type}' },
  BAL_STATE_CONFLICT: { http: 409, text: 'the mailbox {address} is already {status}' },
  PERSON_UNKNOWN: { http: 404, text: 'there is no local account {person}' },
  PERSON_EXISTS: { http: 409, text: 'a local account {person} already exists' },
  CERT_ALREADY_REGISTERED: { http: 409, text: 'the certificate {fingerprint} is already registered for {address}' },
  CERT_UNUSABLE: { http: 422, text: 'the application certificate cannot be registered: {reason}' },
  // Why a client certificate cannot be registered on a mailbox (certs/client-cert.ts, annuaire/bal).
  CERT_NOT_YET_VALID: { http: 422, text: 'the certificate {subject} is not valid before {date}: register it once it is' },
  CERT_EXPIRED: { http: 422, text: 'the certificate {subject} expired on {date}' },
  CERT_WRONG_USAGE: { http: 422, text: 'the certificate {subject} cannot authenticate a TLS client: {why}' },
  CERT_UNTRUSTED: { http: 422, text: 'the certificate {subject} is not issued by a certification authority of the MSSanté trust space: {why}' },
  CERT_REVOKED: { http: 422, text: 'the certificate {subject} is revoked (since {date}, by the CRL of its authority)' },
  CERT_REVOCATION_UNKNOWN: { http: 422, text: 'the revocation of the certificate {subject} cannot be checked: {why}; load a current CRL of that authority (tls.crlFile)' },
  CERT_WRONG_ORGANISATION: { http: 422, text: 'the certificate {subject} is issued to organisation {certificate}, not to {structure}, the structure of {address}' },
  CERT_BOUND_ELSEWHERE: { http: 409, text: 'the certificate {fingerprint} is already bound to {others}; to bind it to {address} as well, register it again with allowShared (CLI: --allow-shared): the sharing is journalled' },
  // Why an OpenPGP public key cannot be registered on a mailbox (annuaire/bal/openpgp.ts), and why mail to such a box waits (smtp/openpgp.ts).
  OPENPGP_KEY_INVALID: { http: 422, text: 'the OpenPGP key cannot be registered: {reason}' },
  OPENPGP_KEY_PRIVATE: { http: 422, text: 'this is a private (secret) OpenPGP key: register the public key only (gpg --armor --export), and keep the private key with its holder' },
  OPENPGP_KEY_EXPIRED: { http: 422, text: 'the OpenPGP key {fingerprint} expired on {date}' },
  OPENPGP_KEY_NO_ENCRYPTION: { http: 422, text: 'the OpenPGP key {fingerprint} has no valid key usable for encryption: {reason}' },
  OPENPGP_KEY_NONE: { http: 404, text: 'the mailbox {address} has no OpenPGP key' },
  OPENPGP_ENCRYPT_FAILED: { http: 500, smtp: { code: 451, enhanced: '4.7.0' }, text: 'mail for {address} is kept: it cannot be encrypted to the OpenPGP key {fingerprint} registered on the box ({reason}); register a valid key or remove it' },
  WHITELIST_OLDER: { http: 409, text: 'the liste blanche from {source} was generated on {date}, before the one in place ({current}); nothing changed' },
  WHITELIST_INVALID: { http: 422, text: 'the liste blanche from {source} cannot be used: {reason}; nothing changed' },
  WHITELIST_PREVIEW_MISMATCH: { http: 409, text: 'the liste blanche from {source} is not applied as previewed: {reason}; nothing changed' },
  ADMIN_EXISTS: { http: 409, text: 'an admin account {login} already exists' },
  ADMIN_UNKNOWN: { http: 404, text: 'there is no admin account {login}' },
  ADMIN_SELF_LOCKOUT: { http: 409, text: 'account {login} cannot {what} itself: another admin must do it' },
  // The LDAP directory (annuaire/ldap): slapd run and fed by the platform.
  LDAP_START_FAILED: { http: 503, text: 'the LDAP directory (slapd) did not start: {reason}' },
  LDAP_UNREACHABLE: { http: 503, smtp: { code: 451, enhanced: '4.4.3' }, imap: { kind: 'NO', code: 'UNAVAILABLE' }, text: 'cannot reach the LDAP directory at {url}: {reason}' },
  LDAP_NOT_RUNNING: { http: 503, text: 'the LDAP directory of {dir} is not running; start the platform first (mss start)' },
  LDAP_REBUILD_FAILED: { http: 500, text: 'rebuilding the LDAP directory failed, the previous one stays in place: {reason}' },
  LDAP_SYNC_FAILED: { http: 503, text: 'applying annuaire changes to the LDAP directory failed (they stay queued and are retried): {reason}' },
  // SMTP fronts (smtp/): the MX and the submission servers.
  SMTP_TLS_REQUIRED: { http: 403, smtp: { code: 530, enhanced: '5.7.0' }, text: 'Must issue a STARTTLS command first: the MSSanté trust space accepts mail over TLS only' },
  PEER_NO_CERTIFICATE: { http: 403, smtp: { code: 550, enhanced: '5.7.1' }, text: 'a client certificate is required to deliver into the MSSanté trust space: present your operator certificate' },
  PEER_CERT_EXPIRED: { http: 403, smtp: { code: 550, enhanced: '5.7.5' }, text: 'your client certificate ({subject}) has expired' },
  PEER_CERT_REVOKED: { http: 403, smtp: { code: 550, enhanced: '5.7.5' }, text: 'your client certificate ({subject}) is revoked' },
  PEER_CERT_UNTRUSTED: { http: 403, smtp: { code: 550, enhanced: '5.7.5' }, text: 'your client certificate ({subject}) is not issued by a certification authority of the MSSanté trust space ({why})' },
  RELAY_DENIED: { http: 403, smtp: { code: 550, enhanced: '5.7.1' }, text: 'this server does not relay: {address} is not a mailbox of this operator' },
  MESSAGE_BARE_LINE_ENDING: { http: 400, smtp: { code: 550, enhanced: '5.6.0' }, text: 'message refused: it contains a bare {what} at byte {offset}; every line must end with CRLF (SMTP smuggling protection)' },
  MESSAGE_TOO_BIG: { http: 413, smtp: { code: 552, enhanced: '5.3.4' }, text: 'message too big: the limit is {limit} bytes' },
  SUBMISSION_AUTHZID_REFUSED: { http: 403, smtp: { code: 535, enhanced: '5.7.8' }, text: 'authentication refused: {reason}' },
  SUBMISSION_AUTH_REQUIRED: { http: 401, smtp: { code: 530, enhanced: '5.7.0' }, text: 'authentication required: log in with your MSSanté account or your certificate' },
  FROM_HEADER_INVALID: { http: 400, smtp: { code: 550, enhanced: '5.6.0' }, text: 'the From header {from} must be one mailbox you may send as' },
  RATE_LIMITED: { http: 429, smtp: { code: 451, enhanced: '4.7.0' }, imap: { kind: 'NO', code: 'LIMIT' }, text: 'too many messages from {who}: at most {limit} per {window}; try again later' },
  // Mon Espace Santé patient addresses (smtp/patients.ts), checked by the submission front.
  PATIENT_INS_INVALID: { http: 422, smtp: { code: 550, enhanced: '5.1.3' }, text: '{address} is not a Mon Espace Santé patient address: {why}' },
  PATIENT_MESSAGE_TOO_BIG: { http: 413, smtp: { code: 552, enhanced: '5.3.4' }, text: 'message too big for Mon Espace Santé: a message to a patient may be at most {limit} bytes, and this one {what} {size} bytes' },
  // SMTP abuse limits (smtp/limits.ts): per transaction, per connection, per peer across connections.
  SMTP_TOO_MANY_RECIPIENTS: { http: 429, smtp: { code: 452, enhanced: '4.5.3' }, text: 'too many recipients: at most {limit} per message; send the others in another transaction' },
  SMTP_TOO_MANY_ERRORS: { http: 429, smtp: { code: 421, enhanced: '4.7.0' }, text: 'too many errors on this connection ({count}); closing it' },
  SMTP_UNKNOWN_RECIPIENT_RATE: { http: 429, smtp: { code: 450, enhanced: '4.7.1' }, text: 'too many unknown recipients from {who} (at most {limit} within {window}); recipients are refused for now, try again later' },
  SMTP_8BIT_ADDRESS: { http: 400, smtp: { code: 553, enhanced: '5.6.7' }, text: 'the address {address} has non-ASCII characters: announce SMTPUTF8 in MAIL FROM (RFC 6531)' },
  // Message content rules (smtp/content-rules.ts), checked at the end of DATA on both fronts.
  MESSAGE_NUL_BYTE: { http: 400, smtp: { code: 550, enhanced: '5.6.0' }, text: 'message refused: it contains a NUL byte at byte {offset}' },
  MESSAGE_HEADER_MALFORMED: { http: 400, smtp: { code: 550, enhanced: '5.6.0' }, text: 'message refused: line {line} of the header section is not a header field (name: value)' },
  MESSAGE_HEADER_8BIT: { http: 400, smtp: { code: 550, enhanced: '5.6.7' }, text: 'message refused: the {header} header contains non-ASCII bytes; UTF-8 headers need SMTPUTF8 in MAIL FROM (RFC 6532), otherwise encode them (RFC 2047)' },
  MESSAGE_HEADER_NOT_UTF8: { http: 400, smtp: { code: 550, enhanced: '5.6.0' }, text: 'message refused: the {header} header is not valid UTF-8' },
  MESSAGE_HEADER_MISSING: { http: 400, smtp: { code: 550, enhanced: '5.6.0' }, text: 'message refused: it has no {header} header (RFC 5322 requires one)' },
  MESSAGE_HEADER_REPEATED: { http: 400, smtp: { code: 550, enhanced: '5.6.0' }, text: 'message refused: it has {count} {header} headers (RFC 5322 allows one)' },
  MESSAGE_FROM_INVALID: { http: 400, smtp: { code: 550, enhanced: '5.6.0' }, text: 'message refused: the From header {from} must name exactly one mailbox' },
  FROM_NOT_PEER_DOMAIN: { http: 403, smtp: { code: 550, enhanced: '5.7.1' }, imap: { kind: 'NO', code: 'NOPERM' }, text: 'message refused: the From header domain {domain} is not one of the domains of the operator delivering it ({peer}); an operator delivers the mail of its own domains only' },
  // IMAP proxy (imap-proxy/): answers the proxy gives itself before login, and its limits.
  IMAP_BAD_COMMAND: { http: 400, imap: { kind: 'BAD' }, text: 'invalid command: {reason}' },
  IMAP_UNKNOWN_COMMAND: { http: 400, imap: { kind: 'BAD' }, text: 'unknown command {command}' },
  IMAP_LOGIN_FIRST: { http: 401, imap: { kind: 'BAD' }, text: '{command} is not valid before login: log in first (LOGIN or AUTHENTICATE)' },
  IMAP_PRIVACY_REQUIRED: { http: 403, imap: { kind: 'NO', code: 'PRIVACYREQUIRED' }, text: 'logins travel over TLS only: issue STARTTLS first, or use the implicit-TLS port' },
  IMAP_ALREADY_TLS: { http: 400, imap: { kind: 'BAD' }, text: 'TLS is already active on this connection' },
  IMAP_LITERAL_TOO_BIG: { http: 413, imap: { kind: 'BAD', code: 'TOOBIG' }, text: '{reason}' },
  IMAP_STREAM_REFUSED: { http: 413, imap: { kind: 'BYE', code: 'TOOBIG' }, text: '{reason}; closing the connection' },
  IMAP_PREAUTH_TIMEOUT: { http: 408, imap: { kind: 'BYE', code: 'UNAVAILABLE' }, text: 'no login within {seconds} seconds; closing the connection' },
  IMAP_TOO_MANY_ERRORS: { http: 400, imap: { kind: 'BYE' }, text: 'too many invalid commands; closing the connection' },
  IMAP_AUTH_MECHANISM: { http: 400, imap: { kind: 'NO', code: 'CANNOT' }, text: 'authentication mechanism {mechanism} is not offered: use {offered}' },
  IMAP_AUTH_CANCELLED: { http: 400, imap: { kind: 'BAD' }, text: 'authentication cancelled by the client' },
  IMAP_EXTERNAL_NO_MAILBOX: { http: 400, imap: { kind: 'NO', code: 'AUTHORIZATIONFAILED' }, text: 'name the mailbox to open: AUTHENTICATE EXTERNAL with its address (base64) as the authorisation identity' },
  IMAP_BACKEND_UNAVAILABLE: { http: 503, imap: { kind: 'NO', code: 'UNAVAILABLE' }, text: 'the mail store cannot open {address} right now; please try again in a moment' },
  IMAP_TOO_MANY_CONNECTIONS: { http: 503, imap: { kind: 'BYE', code: 'UNAVAILABLE' }, text: 'too many connections {who}; try again later' },
  IMAP_SHUTTING_DOWN: { http: 503, imap: { kind: 'BYE', code: 'UNAVAILABLE' }, text: 'the server is restarting; reconnect in a moment' },
  IMAP_COMPRESS_REFUSED: { http: 400, imap: { kind: 'BYE' }, text: 'COMPRESS is not offered by this server (every action on a mailbox is traced); reconnect without compression' },
  // Webmail API (webmail-api/): mail over HTTPS as the person, through the platform's own IMAP proxy and submission.
  WEBMAIL_SESSION_INVALID: { http: 401, text: 'the session token is unknown, expired or closed: log in again (POST /api/v1/login)' },
  WEBMAIL_BAL_REFUSED: { http: 403, text: '{reason}' },
  WEBMAIL_CSRF_INVALID: { http: 403, text: 'this request was refused because it may have been forged by another site: {reason}; reload the page and try again' },
  WEBMAIL_IMAP_UNAVAILABLE: { http: 503, text: 'the mailbox service cannot be reached right now ({reason}); please try again in a moment' },
  WEBMAIL_IMAP_REFUSED: { http: 422, text: 'the mail store refused to {action}: {reason}' },
  WEBMAIL_SEND_FORBIDDEN: { http: 403, text: 'the submission server refused to send: {reply}' },
  WEBMAIL_SEND_REFUSED: { http: 422, text: 'the submission server refused the message: {reply}' },
  WEBMAIL_SEND_DEFERRED: { http: 503, text: 'the submission server cannot take the message right now: {reply}' },
  WEBMAIL_NO_MDN_REQUESTED: { http: 409, text: 'message {uid} asks for no read receipt (it has no usable Disposition-Notification-To header)' },
  WEBMAIL_MDN_ALREADY_SENT: { http: 409, text: 'a read receipt for message {uid} was already sent' },
  WEBMAIL_NO_PREVIEW: { http: 415, text: 'an attachment of type {type} is not shown in the page (only images and PDF are); download it instead' },
  WEBMAIL_FEATURE_UNAVAILABLE: { http: 503, text: '{feature} is not available on this platform' },
  // DMP and IHE_XDM (dmp/): documents carried by messages, their metadata, the hand-off.
  XDS_METADATA_INVALID: { http: 422, text: 'the XDS metadata (ebRIM SubmitObjectsRequest) cannot be used: {reason}' },
  XDM_REFUSED: { http: 422, text: 'the IHE_XDM archive is refused: {reason}' },
  CDA_INVALID: { http: 422, text: 'the CDA document cannot be read: {reason}' },
  DMP_RULE_FORBIDDEN: { http: 403, text: '{principal} may not set the DMP rule of {address}: {why}' },
  INTERNAL: { http: 500, smtp: { code: 451, enhanced: '4.3.0' }, imap: { kind: 'NO', code: 'SERVERBUG' }, text: 'internal error, please try again later' },
} satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof catalogue;

/** Why a certificate login failed (AUTH_EXTERNAL_FAILED's {why}), the same on every front; the key is the journalled `failure`. */
export const EXTERNAL_FAILURE = {
  'no-certificate': 'no client certificate was presented during the TLS handshake',
  'certificate-rejected': 'the client certificate presented is not accepted in the MSSanté trust space (untrusted, expired or revoked)',
  'no-account-for-certificate': 'no account or application mailbox is bound to the client certificate presented',
} as const;

/** Why a PSC token or login was refused (AUTH_TOKEN_FAILED's and PSC_LOGIN_FAILED's {why}); the key is the journalled `failure`. */
export const TOKEN_FAILURE = {
  malformed: 'it is not a signed JWT',
  algorithm: 'its signature algorithm is not accepted',
  'bad-signature': 'its signature does not verify against the provider\'s keys (tampered, or not issued by Pro Santé Connect)',
  expired: 'it has expired; get a new one',
  'not-yet-valid': 'it is not valid yet',
  'wrong-issuer': 'it was issued by another provider than the configured Pro Santé Connect',
  'wrong-audience': 'it was issued for another service (audience)',
  inactive: 'the provider says it is not active (revoked or expired)',
  'no-national-id': 'it carries no professional national id (RPPS)',
  'no-account': 'no account of this operator belongs to the professional it names',
  'other-person': 'it belongs to another person than the user name given',
  'no-mailbox-named': 'name the mailbox to open as the SASL authorisation identity or user',
  'bad-payload': 'the SASL message is not an OAUTHBEARER / XOAUTH2 message carrying a bearer token',
  state: 'the answer does not belong to the login started in this browser (state); start again',
  denied: 'the login was refused or cancelled at Pro Santé Connect',
  'bad-id-token': 'the identity token does not verify',
} as const;
export type TokenFailure = keyof typeof TOKEN_FAILURE;

export class MssError extends Error {
  readonly entry: CatalogueEntry;
  constructor(
    readonly code: ErrorCode,
    readonly details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    const entry: CatalogueEntry = catalogue[code];
    super(fill(entry.text, details), options);
    this.name = 'MssError';
    this.entry = entry;
  }
  get status(): number {
    return this.entry.http;
  }
}

function fill(text: string, details: Record<string, unknown>): string {
  return text.replace(/\{(\w+)\}/g, (_, k) => (details[k] === undefined ? `{${k}}` : Array.isArray(details[k]) ? (details[k] as unknown[]).join('; ') : String(details[k])));
}

export const isMssError = (e: unknown): e is MssError => e instanceof MssError;

/** RFC 9457 problem+json body for an error; unexpected errors never leak their message. */
export function problem(e: unknown, instance?: string) {
  const m = isMssError(e) ? e : new MssError('INTERNAL');
  return {
    type: `urn:mss:error:${m.code.toLowerCase().replace(/_/g, '-')}`,
    title: m.code,
    status: m.status,
    detail: m.message,
    ...(instance ? { instance } : {}),
  };
}
