-- A sync applied in bounded steps (annuaire/import/runs.ts), on the embedded database.
--
-- PGlite runs one statement (or one transaction) at a time for the whole platform: a sync
-- applied in one transaction held it for up to 1.4 s under load, and logins and the MX's
-- 250s waited behind it. There, the difference is computed first (in short transactions
-- over temporary tables), then frozen here — the run and every change it will make, in
-- order, a table per transaction; `changes` is set by the last one — and applied in batches
-- of a few hundred changes, each in its own transaction that also moves next_seq. A crash
-- leaves either a run not yet frozen (changes NULL: nothing was applied; it is deleted and
-- the file is simply imported again) or a frozen run whose changes before next_seq are
-- applied and the rest are not; the platform rolls it forward at its next start (or the
-- next import does, first). The journal, the directory's queue and annuaire_import_files
-- are written by the run's last transaction, which also marks it done: one import,
-- journalled once. Its changes are then deleted in slices, and the run with the last one.
--
--   annuaire_import_runs     one row per file being applied: its kind, how far it got, and
--                            what its last transaction needs (dates, counts, file, actor).
--   annuaire_import_changes  the run's changes, seq 0.. in the order applied and journalled
--                            (table by table; updated, inserted, deactivated, then digest
--                            only; key order within each): the key, the row's digest and,
--                            for an insertion or update, the file's fields (in the run's
--                            column order, as the staging had them: text).
CREATE TABLE annuaire_import_runs (
  id          bigserial PRIMARY KEY,
  kind        text NOT NULL CHECK (kind IN ('activity', 'mssante')),
  next_seq    bigint NOT NULL DEFAULT 0,
  changes     bigint,
  context     jsonb NOT NULL,
  done        boolean NOT NULL DEFAULT false,
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE annuaire_import_changes (
  run_id  bigint NOT NULL REFERENCES annuaire_import_runs (id) ON DELETE CASCADE,
  seq     bigint NOT NULL,
  tbl     text NOT NULL,
  kind    text NOT NULL CHECK (kind IN ('updated', 'inserted', 'deactivated', 'digest')),
  k       text COLLATE "C" NOT NULL,
  digest  bytea,
  fields  text[],
  PRIMARY KEY (run_id, seq)
);
