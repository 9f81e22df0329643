-- The platform's encryption keyring (core/crypt/keyring.ts), shared by every node of one
-- database (issue 17): a node writes its local copy under <dataDir>/keys from these rows at
-- start and when a generation appears (`mss crypt rotate` on any node). Everything here is
-- wrapped or encrypted under the master key, which is not in the database: the spool's
-- AES key sealed with AES-256-GCM, Dovecot's private key PKCS#8-encrypted with a password
-- derived from it; the public key is public.
CREATE TABLE crypt_keyring (
  id text PRIMARY KEY CHECK (id ~ '^k[0-9]+$'),
  created_at timestamptz NOT NULL DEFAULT now(),
  current boolean NOT NULL DEFAULT false,
  spool_key text NOT NULL,
  dovecot_public_pem text NOT NULL,
  dovecot_private_pem text NOT NULL
);
-- One generation seals new data.
CREATE UNIQUE INDEX crypt_keyring_current ON crypt_keyring (current) WHERE current;
