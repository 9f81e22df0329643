-- Failed-login throttling (core/policy/throttle.ts): one row per key — 'account:<realm>:<name>'
-- or 'source:<address>' —, shared by every process and node on this database.
--   failures      failed checks since the count last started again (after `window` without a
--                 failure, at the end of a lockout, or — account keys — at a success)
--   pending       checks reserved and not yet settled: a key's budget is failures + pending,
--                 so parallel guesses cannot all be checked before the first one fails
--   pending_until reservations older than this are deemed abandoned (a process that died
--                 mid-check): pending counts from zero again
--   locked_until  no password check for this key before then
CREATE TABLE login_throttle (
  key           text PRIMARY KEY,
  failures      int NOT NULL DEFAULT 0,
  last_failure  timestamptz,
  pending       int NOT NULL DEFAULT 0,
  pending_until timestamptz,
  locked_until  timestamptz,
  touched_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_throttle_touched ON login_throttle (touched_at);

-- Reserves one check on every key, or on none. The rows are locked in key order (so two
-- logins sharing keys never deadlock) and judged on their latest committed state:
--   'locked'   a key is locked (or already holds its budget of failures): refuse, unchecked;
--   'wait'     every failure still allowed is already being checked: try again when one settles;
--   'reserved' pending + 1 on every key.
-- One row per key: its failures, pending, and the milliseconds left of its lock.
CREATE FUNCTION login_throttle_reserve(p_keys text[], p_budgets int[], p_window_ms bigint, p_lease_ms bigint)
RETURNS TABLE (throttle_key text, verdict text, failure_count int, pending_count int, locked_ms bigint)
LANGUAGE plpgsql AS $$
DECLARE
  t timestamptz := clock_timestamp();
  v text;
BEGIN
  -- Creates the missing rows and locks the others, in key order, forgetting on the way what
  -- has expired: an ended lockout, failures older than the window, reservations past their lease.
  WITH k AS (
    INSERT INTO login_throttle AS l (key, touched_at) SELECT k, t FROM unnest(p_keys) AS k ORDER BY k
    ON CONFLICT (key) DO UPDATE SET
      failures = CASE WHEN l.locked_until > t THEN l.failures
                      WHEN l.locked_until IS NOT NULL OR l.last_failure <= t - p_window_ms * interval '1 millisecond' THEN 0
                      ELSE l.failures END,
      locked_until = CASE WHEN l.locked_until > t THEN l.locked_until END,
      pending = CASE WHEN l.pending_until > t THEN l.pending ELSE 0 END
    RETURNING l.key, l.failures, l.pending, l.locked_until)
  SELECT CASE WHEN bool_or(k.locked_until IS NOT NULL OR k.failures >= b.budget) THEN 'locked'
              WHEN bool_or(k.failures + k.pending >= b.budget) THEN 'wait'
              ELSE 'reserved' END
    INTO v
    FROM k JOIN unnest(p_keys, p_budgets) AS b (key, budget) ON b.key = k.key;
  IF v = 'reserved' THEN
    RETURN QUERY
      UPDATE login_throttle l SET pending = l.pending + 1, pending_until = t + p_lease_ms * interval '1 millisecond', touched_at = t
       WHERE l.key = ANY (p_keys)
      RETURNING l.key, v, l.failures, l.pending, 0::bigint;
  ELSE
    -- Time left measured now: the lock this waited for may have been set after t.
    t := clock_timestamp();
    RETURN QUERY
      SELECT l.key, v, l.failures, l.pending,
             CASE WHEN l.locked_until IS NOT NULL THEN greatest(0, ceil(extract(epoch FROM l.locked_until - t) * 1000))::bigint
                  WHEN l.failures >= b.budget THEN greatest(0, ceil(extract(epoch FROM l.last_failure + p_window_ms * interval '1 millisecond' - t) * 1000))::bigint
                  ELSE 0::bigint END
        FROM login_throttle l JOIN unnest(p_keys, p_budgets) AS b (key, budget) ON b.key = l.key;
  END IF;
END $$;

-- Settles a reservation: pending - 1 on every key; a failure counts on each and locks a key
-- that reaches its budget (locked_now is true for exactly one settlement per lockout);
-- p_clear[i] starts key i's count again (a success on an account: the person proved
-- themselves). p_failed NULL: the check could not be made (database down…), nothing counts.
CREATE FUNCTION login_throttle_settle(p_keys text[], p_budgets int[], p_clear boolean[], p_failed boolean, p_lockout_ms bigint)
RETURNS TABLE (throttle_key text, failure_count int, locked_now boolean, locked_ms bigint)
LANGUAGE plpgsql AS $$
DECLARE
  t timestamptz := clock_timestamp();
  until timestamptz := t + p_lockout_ms * interval '1 millisecond';
BEGIN
  RETURN QUERY
    WITH b AS (SELECT * FROM unnest(p_keys, p_budgets, p_clear) AS b (k, budget, clear)),
    old AS (SELECT l.key, l.failures, l.locked_until FROM login_throttle l JOIN b ON b.k = l.key ORDER BY l.key FOR UPDATE),
    upd AS (
      UPDATE login_throttle l SET
        pending = greatest(l.pending - 1, 0),
        failures = CASE WHEN p_failed THEN old.failures + 1 WHEN p_failed = false AND b.clear THEN 0 ELSE old.failures END,
        last_failure = CASE WHEN p_failed THEN t ELSE l.last_failure END,
        locked_until = CASE WHEN p_failed AND old.failures + 1 >= b.budget AND NOT coalesce(old.locked_until > t, false) THEN until ELSE old.locked_until END,
        touched_at = t
      FROM old JOIN b ON b.k = old.key
      WHERE l.key = old.key
      RETURNING l.key, l.failures, (p_failed AND old.failures + 1 >= b.budget AND NOT coalesce(old.locked_until > t, false)) AS now_locked, l.locked_until)
    SELECT upd.key, upd.failures, coalesce(upd.now_locked, false),
           CASE WHEN upd.locked_until > t THEN ceil(extract(epoch FROM upd.locked_until - t) * 1000)::bigint ELSE 0::bigint END
      FROM upd ORDER BY upd.key;
END $$;
