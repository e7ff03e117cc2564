//! The circuit breaker counts over a sliding window, and decides a trip only once every
//! process has counted the healthy calls it held in memory.
//!
//! - `circuit_breaker_slots`: the window's calls and failures in ten slots (a ring: a slot
//!   leaves when it is a window old), instead of one tumbling window that forgot everything
//!   at its end.
//! - `circuit_breakers.trip_pending_since`: when the counted rate first reached the
//!   threshold. Processes hold healthy outcomes in memory for up to `BREAKER_RECHECK_MS`, so
//!   the trip is decided a settling time later, on counts that include them.
//! - `count_breaker_calls(...)`: adds a process's outcomes and returns the window's totals
//!   with the verdict, under the breaker row's lock (concurrent counters serialise on it).

sql_migration! {
    /// Creates `circuit_breaker_slots` and `count_breaker_calls`; replaces the tumbling window.
}

// Under the row lock, `t_now` is read after every earlier counter committed, so each statement
// of the function sees their slots. Counts are soft state: their commit does not wait for
// the WAL flush (a database crash forgets the last counts, nothing else).
const UP: &str = r#"
CREATE TABLE circuit_breaker_slots (
    key        text NOT NULL REFERENCES circuit_breakers (key) ON DELETE CASCADE,
    slot_start timestamptz NOT NULL,
    calls      integer NOT NULL CHECK (calls >= 0),
    failures   integer NOT NULL CHECK (failures BETWEEN 0 AND calls),
    PRIMARY KEY (key, slot_start)
);

ALTER TABLE circuit_breakers
    DROP COLUMN window_started_at,
    -- While closed: when the counted failure rate reached the threshold (NULL: it has not).
    ADD COLUMN trip_pending_since timestamptz;

-- verdict: 'not_closed' (nothing counted), 'ok', 'pending' (at the threshold, settling) or
-- 'trip' (at the threshold for at least p_settle).
CREATE FUNCTION count_breaker_calls(
    p_key text, p_calls integer, p_failures integer, p_window interval, p_slots integer,
    p_min_calls integer, p_rate_percent integer, p_settle interval,
    OUT window_calls integer, OUT window_failures integer, OUT verdict text
)
LANGUAGE plpgsql AS $$
DECLARE
    t_now   timestamptz;
    pending timestamptz;
BEGIN
    IF p_calls < 0 OR p_failures < 0 OR p_failures > p_calls OR p_slots < 1
       OR p_window <= interval '0' THEN
        RAISE EXCEPTION 'count_breaker_calls: invalid counts or window'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM set_config('synchronous_commit', 'off', true);
    INSERT INTO circuit_breakers (key) VALUES (p_key) ON CONFLICT (key) DO NOTHING;
    SELECT c.trip_pending_since INTO pending
    FROM circuit_breakers c WHERE c.key = p_key AND c.state = 'closed' FOR UPDATE;
    IF NOT FOUND THEN
        verdict := 'not_closed';
        RETURN;
    END IF;
    t_now := clock_timestamp();
    IF p_calls > 0 THEN
        INSERT INTO circuit_breaker_slots AS s (key, slot_start, calls, failures)
        VALUES (p_key, date_bin(p_window / p_slots, t_now, timestamptz '2000-01-01 00:00+00'),
                p_calls, p_failures)
        ON CONFLICT (key, slot_start) DO UPDATE
        SET calls = s.calls + excluded.calls, failures = s.failures + excluded.failures;
    END IF;
    DELETE FROM circuit_breaker_slots s WHERE s.key = p_key AND s.slot_start <= t_now - p_window;
    SELECT coalesce(sum(s.calls), 0), coalesce(sum(s.failures), 0)
    INTO window_calls, window_failures
    FROM circuit_breaker_slots s WHERE s.key = p_key;
    IF window_calls >= p_min_calls AND window_failures * 100 >= p_rate_percent * window_calls THEN
        pending := coalesce(pending, t_now);
        verdict := CASE WHEN pending <= t_now - p_settle THEN 'trip' ELSE 'pending' END;
    ELSE
        pending := NULL;
        verdict := 'ok';
    END IF;
    UPDATE circuit_breakers c
    SET calls = window_calls, failures = window_failures, trip_pending_since = pending,
        updated_at = t_now
    WHERE c.key = p_key;
END
$$;
"#;

const DOWN: &str = r#"
DROP FUNCTION count_breaker_calls(text, integer, integer, interval, integer, integer, integer,
                                  interval);
DROP TABLE circuit_breaker_slots;
ALTER TABLE circuit_breakers
    DROP COLUMN trip_pending_since,
    ADD COLUMN window_started_at timestamptz NOT NULL DEFAULT now();
"#;
