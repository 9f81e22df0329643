-- A second factor for admin logins (annuaire/admin/accounts.ts): TOTP as for persons
-- (bal_persons.totp_secret / totp_last_step).
--   totp_secret     the enrolled secret (base32); NULL: the account has no second factor.
--   totp_pending    a secret being enrolled: it becomes totp_secret once a first code from
--                   it is given, so an enrolment never locks the account out by a typo.
--   totp_last_step  the last TOTP time step accepted: a code is good once (replay).
ALTER TABLE admin_accounts ADD COLUMN totp_secret text;
ALTER TABLE admin_accounts ADD COLUMN totp_pending text;
ALTER TABLE admin_accounts ADD COLUMN totp_last_step bigint;
