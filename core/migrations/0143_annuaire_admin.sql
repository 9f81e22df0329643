-- Accounts of the admin HTTP API (annuaire/admin): regional operators and national admins.
--   admin_accounts  login unique case-insensitively; role national (acts anywhere) or
--                   regional (acts on mailboxes of its domains, or owned by its structures:
--                   national structure ids "1"+FINESS / "3"+SIRET); password_hash as
--                   bal_persons (scrypt$…).
--   admin_tokens    bearer tokens from POST /api/v1/login: only their SHA-256 is stored, so
--                   a copy of the database opens no session; short-lived, revocable (logout).
CREATE TABLE admin_accounts (
  id             bigserial PRIMARY KEY,
  login          text NOT NULL,
  role           text NOT NULL CHECK (role IN ('national', 'regional')),
  domains        text[] NOT NULL DEFAULT '{}',
  structures     text[] NOT NULL DEFAULT '{}',
  password_hash  text NOT NULL,
  active         boolean NOT NULL DEFAULT true,
  created_at     timestamptz NOT NULL DEFAULT now(),
  created_by     text NOT NULL,
  last_login_at  timestamptz
);
CREATE UNIQUE INDEX admin_accounts_login ON admin_accounts (lower(login));

CREATE TABLE admin_tokens (
  token_hash  text PRIMARY KEY,
  account_id  bigint NOT NULL REFERENCES admin_accounts (id),
  issued_at   timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL,
  revoked_at  timestamptz
);
CREATE INDEX admin_tokens_account ON admin_tokens (account_id);
