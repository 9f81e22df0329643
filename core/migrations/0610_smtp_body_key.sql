-- Encryption at rest of the bodies waiting in the database (issue 16 §3, smtp/body-cipher.ts):
-- body_key names the keyring generation (core/crypt/keyring.ts) whose AES-256-GCM key sealed
-- the body, the row's table and id bound in. NULL: the body is in clear (rows written before
-- encryption was turned on, or with crypt.spool off), read as it is.
ALTER TABLE smtp_spool ADD COLUMN body_key text;
ALTER TABLE smtp_outbound ADD COLUMN body_key text;
