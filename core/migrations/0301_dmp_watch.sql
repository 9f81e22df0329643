-- Where the DMP rule watcher (dmp/watcher.ts) got to in each ruled box: the highest UID whose
-- hand-off outcome is recorded, valid for that UIDVALIDITY only (a recreated box starts over).
CREATE TABLE dmp_watch (
  bal          text PRIMARY KEY,
  uidvalidity  text NOT NULL,
  last_uid     bigint NOT NULL,
  updated_at   timestamptz NOT NULL DEFAULT now()
);
