-- The operator's own mailboxes (annuaire/bal) and the local accounts that open them.
-- Written only by annuaire/bal (CLI, admin API); read by the policy facts, SMTP/IMAP
-- lookups, the LDAP feeder and the publication queue through annuaire/bal's functions.
--
--   bal_persons       local accounts: a professional (idnps = "8"+RPPS / "0"+ADELI, the key
--                     a PER box and a personal certificate are bound to) or staff without a
--                     national id (a secretary, member of ORG boxes). login is unique
--                     case-insensitively. password_hash is "scrypt$N$r$p$salt$hash"
--                     (base64); totp_secret base32 (RFC 6238), totp_last_step refuses the
--                     replay of an accepted code.
--   bal_mailboxes     one row per BAL. address is immutable and unique case-insensitively
--                     (lower(address) index) and never reused, even after closing; type
--                     immutable; owner_id = the holder's idnps (PER/CAB) or the structure's
--                     national id (ORG/APP: "1"+FINESS, "3"+SIRET); structure_id = the
--                     structure it is attached to (ORG/APP: owner_id; PER: optional).
--                     status active/closed with the dates of the last close and reopen.
--                     version counts changes (each publication payload names the version).
--   bal_members       persons who may open an ORG box.
--   bal_app_certificates  certificates of the application behind an APP box: SHA-256
--                     fingerprint of the DER (hex), subject, serial, issuer, validity,
--                     revoked_at (kept after revocation: the audit trail names them).
CREATE TABLE bal_persons (
  id               bigserial PRIMARY KEY,
  login            text NOT NULL,
  idnps            text UNIQUE,
  nom              text,
  prenom           text,
  password_hash    text,
  password_set_at  timestamptz,
  totp_secret      text,
  totp_last_step   bigint,
  active           boolean NOT NULL DEFAULT true,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX bal_persons_login ON bal_persons (lower(login));

CREATE TABLE bal_mailboxes (
  id            bigserial PRIMARY KEY,
  address       text NOT NULL,
  domain        text NOT NULL,
  type          text NOT NULL CHECK (type IN ('PER', 'ORG', 'APP', 'CAB')),
  owner_id      text NOT NULL,
  structure_id  text,
  display_name  text,
  description   text,
  service       text,
  responsible   text,
  liste_rouge   boolean NOT NULL DEFAULT false,
  rank          int CHECK (rank IS NULL OR rank >= 1),
  status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'closed')),
  created_at    timestamptz NOT NULL DEFAULT now(),
  closed_at     timestamptz,
  reopened_at   timestamptz,
  updated_at    timestamptz NOT NULL DEFAULT now(),
  version       int NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX bal_mailboxes_address ON bal_mailboxes (lower(address));
CREATE INDEX bal_mailboxes_owner ON bal_mailboxes (owner_id);
CREATE INDEX bal_mailboxes_domain ON bal_mailboxes (domain);

CREATE TABLE bal_members (
  bal_id     bigint NOT NULL REFERENCES bal_mailboxes (id),
  person_id  bigint NOT NULL REFERENCES bal_persons (id),
  added_at   timestamptz NOT NULL DEFAULT now(),
  added_by   text NOT NULL,
  PRIMARY KEY (bal_id, person_id)
);
CREATE INDEX bal_members_person ON bal_members (person_id);

CREATE TABLE bal_app_certificates (
  id             bigserial PRIMARY KEY,
  bal_id         bigint NOT NULL REFERENCES bal_mailboxes (id),
  fingerprint    text NOT NULL,
  subject        text NOT NULL,
  serial         text NOT NULL,
  issuer         text NOT NULL,
  not_before     timestamptz NOT NULL,
  not_after      timestamptz NOT NULL,
  pem            text NOT NULL,
  registered_at  timestamptz NOT NULL DEFAULT now(),
  registered_by  text NOT NULL,
  revoked_at     timestamptz,
  revoked_by     text,
  UNIQUE (bal_id, fingerprint)
);
CREATE INDEX bal_app_certificates_fingerprint ON bal_app_certificates (fingerprint);
