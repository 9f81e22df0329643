-- How an admin session was opened (annuaire/admin/accounts.ts, psc.ts): 'password' (with the
-- account's TOTP when it has one) or 'psc' (Pro Santé Connect: a CPS card or e-CPS, already
-- two factors). admin.requireTotp asks a national account for an enrolled TOTP only on
-- password sessions.
ALTER TABLE admin_tokens ADD COLUMN auth text NOT NULL DEFAULT 'password' CHECK (auth IN ('password', 'psc'));
