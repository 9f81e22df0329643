-- Pro Santé Connect logins to the operator console (identity/psc, annuaire/admin/psc.ts): an
-- admin account may carry the national id ("8" + RPPS) of the professional who holds it; a
-- PSC login naming that id opens that account's console session. One account per id.
ALTER TABLE admin_accounts ADD COLUMN idnps text;
CREATE UNIQUE INDEX admin_accounts_idnps ON admin_accounts (idnps) WHERE idnps IS NOT NULL;
