-- The mail store across nodes (issue 17, mailstore/placement.ts owns these tables).
--
--   mailstore_backends   the Dovecot back ends of a shared store, each registered (and kept
--                        fresh: seen_at) by the node that runs it. partner: the pair's other
--                        back end, which holds the replica of its boxes.
--   mailstore_placement  which back end holds a box now (one at a time); every node's LMTP
--                        delivery and IMAP proxy read it. A box without a row is placed on
--                        its first delivery or login.
CREATE TABLE mailstore_backends (
  name text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9._-]{1,64}$'),
  host text NOT NULL,
  imap_port integer NOT NULL CHECK (imap_port BETWEEN 1 AND 65535),
  lmtp_port integer NOT NULL CHECK (lmtp_port BETWEEN 1 AND 65535),
  doveadm_port integer NOT NULL CHECK (doveadm_port BETWEEN 1 AND 65535),
  partner text,
  seen_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE mailstore_placement (
  address text PRIMARY KEY CHECK (address = lower(address)),
  backend text NOT NULL REFERENCES mailstore_backends (name),
  placed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mailstore_placement_backend ON mailstore_placement (backend);
