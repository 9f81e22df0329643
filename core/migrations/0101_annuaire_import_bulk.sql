-- The national import (annuaire/import) after its bulk rework:
--
-- * hash is no longer written. A changed row is found by comparing its columns with the
--   file's (one row comparison per key, exact — no collision to reason about), and a first
--   import COPYs the file's fields straight into the tables, with nothing to compute per
--   row. Rows inserted by other means may still carry one; the import sets it to NULL on
--   the rows it changes.
-- * last_seen is no longer rewritten on every unchanged row each month (that was a million
--   row versions per file for no information). It is written when a row is inserted,
--   changed, reactivated (the file's extraction date) or deactivated (the date of the last
--   file that still listed it). An active row was, by definition, in the last file of its
--   kind applied: annuaire_last_seen() derives the full answer.
ALTER TABLE annuaire_persons ALTER COLUMN hash DROP NOT NULL;
ALTER TABLE annuaire_structures ALTER COLUMN hash DROP NOT NULL;
ALTER TABLE annuaire_activities ALTER COLUMN hash DROP NOT NULL;
ALTER TABLE annuaire_mss_addresses ALTER COLUMN hash DROP NOT NULL;

-- The extraction date at which a national row was last listed: for an active row, that of
-- the last file of its kind applied ('activity' for persons, structures and activities,
-- 'mssante' for addresses); for a deactivated one, its last_seen.
CREATE FUNCTION annuaire_last_seen(kind text, active boolean, last_seen timestamptz) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN active
    THEN coalesce((SELECT f.extraction_date FROM annuaire_import_files f WHERE f.kind = annuaire_last_seen.kind ORDER BY f.id DESC LIMIT 1), last_seen)
    ELSE last_seen END
$$;
