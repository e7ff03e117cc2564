//! `take_rate_budget(key, limit, window, wanted)`: takes up to `wanted` slots of a request
//! budget in one call, so that a process can hold a few slots and spend them without a round
//! trip each.

sql_migration! {
    /// Creates the `take_rate_budget` function.
}

// Under the row lock, `now` is read after every earlier taker committed, so the log stays in
// grant order. The grants kept are those inside the window (at most `limit`); the slots
// granted are what the window has left, at most `wanted`. When none is left, `free_at` is
// when the oldest grant of the window leaves it. The log is soft state: its commit does not
// wait for the WAL flush (a database crash may forget the last grants, nothing else).
pub(crate) const UP: &str = r#"
CREATE FUNCTION take_rate_budget(
    p_key text, p_limit integer, p_window interval, p_wanted integer,
    OUT granted integer, OUT free_at timestamptz, OUT now timestamptz
)
LANGUAGE plpgsql AS $$
DECLARE
    recent timestamptz[];
BEGIN
    IF p_limit < 1 OR p_wanted < 1 OR p_window <= interval '0' THEN
        RAISE EXCEPTION 'take_rate_budget: limit, wanted and window must be positive'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM set_config('synchronous_commit', 'off', true);
    INSERT INTO rate_budgets (key) VALUES (p_key) ON CONFLICT (key) DO NOTHING;
    SELECT calls INTO recent FROM rate_budgets WHERE key = p_key FOR UPDATE;
    now := clock_timestamp();
    recent := ARRAY(SELECT t FROM unnest(recent) AS t WHERE t > now - p_window ORDER BY t);
    granted := greatest(0, least(p_wanted, p_limit - cardinality(recent)));
    IF granted > 0 THEN
        UPDATE rate_budgets
        SET calls = recent || array_fill(now, ARRAY[granted]), updated_at = now
        WHERE key = p_key;
    ELSE
        free_at := recent[cardinality(recent) - p_limit + 1] + p_window;
    END IF;
END
$$;
"#;

const DOWN: &str = r#"
DROP FUNCTION take_rate_budget(text, integer, interval, integer);
"#;
