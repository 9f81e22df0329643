-- Who holds a spool row's delivery lease (smtp/spool.ts). A delivery worker claims a row by
-- writing its id in leased_by, and clears it when it records the outcome. A lease counts
-- only while its worker is alive — its smtp_workers row refreshed within the last half
-- minute — so the rows a crashed process was delivering are taken over as soon as it stops
-- refreshing (at once on PGlite, where no other process can share the database), instead
-- of after a fixed lease that outlives the restart.
ALTER TABLE smtp_spool ADD COLUMN leased_by text;

CREATE TABLE smtp_workers (
  id         text PRIMARY KEY,
  started_at timestamptz NOT NULL DEFAULT now(),
  seen_at    timestamptz NOT NULL DEFAULT now()
);
