-- Per-row digests for the national import's monthly sync (annuaire/import).
--
-- digest: 64 bits (8 bytes) of a hash of the row exactly as the importer COPY'd it — the
-- file's fields of this table, key included, in the file's column order. Written with the
-- row by every import (first load, insertion, update). A sync reads the digests of the
-- active rows first, then reads the file whole: a row whose digest is among them is that
-- very row again (same key, same content) and is neither staged nor written; only the
-- others are staged and compared column by column as before, and the active rows whose
-- digest no line matched are the vanished or changed ones. NULL (rows written by other
-- means, or before this migration) matches nothing: such a row is staged and compared in
-- full the next time, and gets its digest then.
--
-- No index: the sync looks rows up by key, and finds the unmatched digests in one pass
-- over the active rows; an index would cost every first import a sort of a million keys.
ALTER TABLE annuaire_persons ADD COLUMN digest bytea;
ALTER TABLE annuaire_structures ADD COLUMN digest bytea;
ALTER TABLE annuaire_activities ADD COLUMN digest bytea;
ALTER TABLE annuaire_mss_addresses ADD COLUMN digest bytea;
