-- The notarised event journal (core/journal). Append-only: the platform never UPDATEs or
-- DELETEs journal_events; `mss journal verify` detects anyone who did.
--   journal_events  one row per event; hash = SHA-256(prev_hash "\n" canonical JSON of the
--                   event), seq contiguous from 1 (a gap is a deleted row).
--   journal_head    single row: last seq and hash; appenders lock it (FOR UPDATE), which
--                   serialises the chain across processes, and it reveals a deleted tail.
--   journal_seals   RFC 3161 timestamp over a batch: the Merkle root of the hashes of
--                   events first_seq..last_seq, chained to the previous seal.
CREATE TABLE journal_events (
  seq        bigint PRIMARY KEY,
  at         timestamptz NOT NULL,
  type       text NOT NULL,
  actor      text NOT NULL,
  subject    text,
  details    jsonb NOT NULL DEFAULT '{}'::jsonb,
  prev_hash  text NOT NULL,
  hash       text NOT NULL
);
CREATE INDEX journal_events_type_at ON journal_events (type, at);
CREATE INDEX journal_events_subject ON journal_events (subject);

CREATE TABLE journal_head (
  id        int PRIMARY KEY CHECK (id = 1),
  seq       bigint NOT NULL,
  hash      text NOT NULL
);
INSERT INTO journal_head (id, seq, hash) VALUES (1, 0, repeat('0', 64));

CREATE TABLE journal_seals (
  id          bigserial PRIMARY KEY,
  first_seq   bigint NOT NULL,
  last_seq    bigint NOT NULL,
  root        text NOT NULL,
  prev_seal   text NOT NULL,
  stamped     bytea NOT NULL,
  token       bytea NOT NULL,
  gen_time    timestamptz NOT NULL,
  UNIQUE (first_seq),
  UNIQUE (last_seq)
);
