-- Opt-in OpenPGP per box (issue 16 §4, annuaire/bal/openpgp.ts): a box with a public key
-- here receives its mail encrypted to that key (PGP/MIME, RFC 3156) before Dovecot stores
-- it (smtp/openpgp.ts). One key per box; the armored text holds only the public key,
-- re-armored after it was checked. Removing a key deletes the row (journalled).
CREATE TABLE bal_openpgp_keys (
  bal_id         bigint PRIMARY KEY REFERENCES bal_mailboxes (id),
  fingerprint    text NOT NULL,
  algorithm      text NOT NULL,
  user_ids       text[] NOT NULL,
  created_at     timestamptz NOT NULL,
  expires_at     timestamptz,
  armored        text NOT NULL,
  registered_at  timestamptz NOT NULL DEFAULT now(),
  registered_by  text NOT NULL
);
