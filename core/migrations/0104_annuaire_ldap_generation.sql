-- Does the LDAP directory still say what the database says? Changes made entry by entry
-- are queued (annuaire_ldap_pending) and drained by the platform, at start too. A bulk
-- load (a first import) is not queued: the directory must be rebuilt from the database.
-- `generation` counts such rebuild-requiring changes: the import bumps it in its own
-- transaction; a rebuild writes the generation it was built from beside the slapd
-- database it produced (annuaire/ldap, file `mss-generation` in the database directory).
-- The platform compares the two at start and at every sync — one row read and one small
-- file — and rebuilds when the directory is behind (an import into a stopped instance,
-- or by another process on a shared PostgreSQL), journalling it.
CREATE TABLE annuaire_ldap_state (
  id          int PRIMARY KEY CHECK (id = 1),
  generation  bigint NOT NULL
);
INSERT INTO annuaire_ldap_state (id, generation) VALUES (1, 0);
