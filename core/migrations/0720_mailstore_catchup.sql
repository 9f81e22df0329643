-- A back end that was away catches up before it serves its boxes again (issue 17,
-- mailstore/cluster.ts). catchup_since: set by the back end's node before its Dovecot
-- (re)starts, cleared once `doveadm sync` has run for every box of the pair; while it is
-- set the fronts put the pair first for the boxes placed on this back end.
ALTER TABLE mailstore_backends ADD COLUMN catchup_since timestamptz;
ALTER TABLE mailstore_backends ADD COLUMN caught_up_at timestamptz;
