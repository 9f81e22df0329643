-- The node that feeds the LDAP directory from the database (issue 17): one at a time. Two
-- feeding nodes on one database would each drain part of the change queue into their own
-- slapd, and both directories would miss changes. Each feeder refreshes its row while it
-- runs (annuaire/ldap/feeders.ts); a start finding another node's fresh row is refused.
CREATE TABLE annuaire_ldap_feeders (
  node    text PRIMARY KEY,
  seen_at timestamptz NOT NULL
);
