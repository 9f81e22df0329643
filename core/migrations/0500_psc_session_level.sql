-- Pro Santé Connect logins (identity/psc): a web session opened by PSC keeps the level the
-- provider asserted, for the session and the journal.
--   acr  the authentication context class (PSC: eidas1)
--   amr  the means, space-separated (the stand-in: e-cps or cps)
ALTER TABLE bal_web_sessions ADD COLUMN acr text;
ALTER TABLE bal_web_sessions ADD COLUMN amr text;
