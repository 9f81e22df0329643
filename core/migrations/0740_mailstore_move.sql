-- A box moved to a back end of another pair (issue 17, mailstore/move.ts): while the last
-- incremental copy runs, the box is frozen — the fronts hold its deliveries (451, the spool
-- retries) and logins (a temporary refusal), so nothing is written to it meanwhile.
-- frozen_until rather than a flag: a mover that dies mid-way leaves the box where it was
-- and usable again once the time is past, without anyone clearing it.
ALTER TABLE mailstore_placement ADD COLUMN moving_to text REFERENCES mailstore_backends (name);
ALTER TABLE mailstore_placement ADD COLUMN frozen_until timestamptz;
