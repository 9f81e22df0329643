-- What each seal committed to, event by event (core/journal). The stamped text holds only
-- the Merkle root of a batch: enough to tell that some event of the batch changed, not
-- which. `leaves` keeps the batch's event hashes (32 bytes each, in seq order); verify
-- checks them against the timestamped root, then compares every event with its leaf, so
-- a forger who rewrites an event and recomputes every later hash is named at that event.
-- Seals made before this migration have no leaves: they are still checked by their root.
ALTER TABLE journal_seals ADD COLUMN leaves bytea;
