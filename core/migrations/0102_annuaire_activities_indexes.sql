-- annuaire_activities keeps only its primary key. Nothing reads the table by idnps or by
-- structure_id (the LDAP feeder and the recipient lookups read persons, structures and
-- addresses), and every first import rebuilt both indexes from a million rows — a
-- quarter of its index work, and their pages written twice (table files and WAL).
-- A person's activities stay one index range: activity_key begins with the idnps and
-- "|", and the key is COLLATE "C", so `activity_key LIKE '810000000000|%'` (or
-- `>= idnps || '|' AND < idnps || '}'`) reads the primary key. If a query ever needs the
-- activities of a structure, its index comes back with that query.
DROP INDEX IF EXISTS annuaire_activities_idnps;
DROP INDEX IF EXISTS annuaire_activities_structure;
