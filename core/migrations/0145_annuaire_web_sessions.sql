-- Sessions of people using the webmail API (webmail-api/). The session token is the
-- person's credential for the platform's own IMAP proxy and submission server while it
-- lives, so the webmail never keeps a password and core/policy sees the same person.
--   token_hash   SHA-256 of the token (a copy of the database opens no session)
--   expires_at   sliding: pushed forward on use, never past issued_at + the maximum age
--   auth         how the person logged in (password, password+totp), kept for the journal
CREATE TABLE bal_web_sessions (
  token_hash  text PRIMARY KEY,
  person_id   bigint NOT NULL REFERENCES bal_persons (id),
  auth        text NOT NULL,
  issued_at   timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL,
  max_until   timestamptz NOT NULL,
  revoked_at  timestamptz
);
CREATE INDEX bal_web_sessions_person ON bal_web_sessions (person_id);
