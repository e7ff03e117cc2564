//! The provider budget as a schedule (one per Ayrshare profile): every grant is a row of
//! `rate_budget_grants` with its class, so a slot not spent on a request is given back;
//! polling is paced by a token bucket on `rate_budgets` and never takes the reserve; what
//! the provider's rate-limit headers said last caps what is granted. Posts get the comment
//! rate the poll planner ranks them by.

sql_migration! {
    /// Replaces the grant-time array and `take_rate_budget` with classed grants,
    /// `take_budget_slot`, `return_budget_slot` and `observe_provider_budget`.
    down_then: super::m20261202_000010_take_rate_budget::UP
}

// Every function locks the profile's `rate_budgets` row first, so takers, returns and
// observations of one profile are serialized and `now` is read after earlier ones committed.
// A take counts the grants of the last `p_window`; a reply may have all `p_limit` of them,
// polling (`discover`, `refresh`) only `p_limit - p_reserve`, and one token of the bucket
// (refilled at that share per window, holding at most `p_burst`). When the provider said
// within the window how much it has left, grants since then count against that too.
// `slots_left` is what the whole budget has left after the take; `free_at` is when a
// refused take could next succeed. The log is soft state: its commit
// does not wait for the WAL flush (a database crash may forget the last grants, nothing else).
const UP: &str = r#"
DROP FUNCTION take_rate_budget(text, integer, interval, integer);
ALTER TABLE rate_budgets
    DROP COLUMN calls,
    -- Polling tokens at `poll_tokens_at`; NULL: a full bucket.
    ADD COLUMN poll_tokens        double precision,
    ADD COLUMN poll_tokens_at     timestamptz NOT NULL DEFAULT now(),
    -- What the provider's headers said it has left, when, and (after a 429) until when
    -- nothing is to be sent.
    ADD COLUMN provider_remaining integer,
    ADD COLUMN provider_seen_at   timestamptz,
    ADD COLUMN provider_free_at   timestamptz,
    -- Lifetime counts, across every process.
    ADD COLUMN granted_total      bigint NOT NULL DEFAULT 0,
    ADD COLUMN returned_total     bigint NOT NULL DEFAULT 0;

CREATE TABLE rate_budget_grants (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key        text NOT NULL REFERENCES rate_budgets (key) ON DELETE CASCADE,
    class      text NOT NULL CHECK (class IN ('reply', 'discover', 'refresh')),
    granted_at timestamptz NOT NULL
);
CREATE INDEX rate_budget_grants_key_granted_at_idx ON rate_budget_grants (key, granted_at);

CREATE FUNCTION take_budget_slot(
    p_key text, p_limit integer, p_window interval, p_class text, p_reserve integer,
    p_burst integer,
    OUT grant_id bigint, OUT free_at timestamptz, OUT now timestamptz, OUT slots_left integer
)
LANGUAGE plpgsql AS $$
DECLARE
    b rate_budgets%ROWTYPE;
    polling boolean := p_class <> 'reply';
    held_back integer := CASE WHEN p_class = 'reply' THEN 0 ELSE p_reserve END;
    used integer;
    provider_left integer;
    per_second double precision;
    tokens double precision;
BEGIN
    IF p_limit < 1 OR p_window <= interval '0' OR p_reserve < 0 OR p_reserve >= p_limit
       OR p_burst < 1 OR p_class NOT IN ('reply', 'discover', 'refresh') THEN
        RAISE EXCEPTION 'take_budget_slot: invalid arguments'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM set_config('synchronous_commit', 'off', true);
    INSERT INTO rate_budgets (key) VALUES (p_key) ON CONFLICT (key) DO NOTHING;
    SELECT * INTO b FROM rate_budgets WHERE key = p_key FOR UPDATE;
    now := clock_timestamp();
    DELETE FROM rate_budget_grants WHERE key = p_key AND granted_at <= now - p_window;
    SELECT count(*) INTO used FROM rate_budget_grants WHERE key = p_key;
    slots_left := p_limit - used;
    IF b.provider_seen_at > now - p_window
       AND (b.provider_free_at IS NULL OR b.provider_free_at > now) THEN
        SELECT b.provider_remaining - count(*) INTO provider_left FROM rate_budget_grants
        WHERE key = p_key AND granted_at > b.provider_seen_at;
        slots_left := least(slots_left, provider_left);
    END IF;
    per_second := (p_limit - p_reserve) / extract(epoch FROM p_window);
    tokens := least(p_burst::double precision,
        coalesce(b.poll_tokens, p_burst)
        + per_second * extract(epoch FROM now - b.poll_tokens_at));
    IF slots_left > held_back AND (NOT polling OR tokens >= 1) THEN
        INSERT INTO rate_budget_grants (key, class, granted_at)
        VALUES (p_key, p_class, now) RETURNING id INTO grant_id;
        slots_left := slots_left - 1;
        UPDATE rate_budgets
        SET granted_total = granted_total + 1, updated_at = now,
            poll_tokens = CASE WHEN polling THEN tokens - 1 ELSE tokens END,
            poll_tokens_at = now
        WHERE key = p_key;
        RETURN;
    END IF;
    -- Refused: the latest of the moments each limit frees a slot for this class.
    free_at := now;
    IF used >= p_limit - held_back THEN
        SELECT g.granted_at + p_window INTO free_at FROM rate_budget_grants g
        WHERE g.key = p_key ORDER BY g.granted_at OFFSET used - (p_limit - held_back) LIMIT 1;
    END IF;
    IF provider_left <= held_back THEN
        free_at := greatest(free_at, coalesce(b.provider_free_at, b.provider_seen_at + p_window));
    END IF;
    IF polling AND tokens < 1 THEN
        free_at := greatest(free_at, now + make_interval(secs => (1 - tokens) / per_second));
    END IF;
    slots_left := greatest(slots_left, 0);
END
$$;

-- A slot whose request never reached the provider: its grant is deleted, and a polling
-- slot's token is given back too. False if it was already given back or has left the log.
CREATE FUNCTION return_budget_slot(p_grant bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    k text;
    c text;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    SELECT key INTO k FROM rate_budget_grants WHERE id = p_grant;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM 1 FROM rate_budgets WHERE key = k FOR UPDATE;
    DELETE FROM rate_budget_grants WHERE id = p_grant RETURNING class INTO c;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE rate_budgets
    SET returned_total = returned_total + 1, updated_at = clock_timestamp(),
        poll_tokens = CASE WHEN c = 'reply' THEN poll_tokens
                           ELSE coalesce(poll_tokens, 0) + 1 END
    WHERE key = k;
    RETURN true;
END
$$;

-- What the provider said it has left (`x-ratelimit-*`), now. After a 429 (`p_remaining` 0)
-- nothing is granted until `p_free_at`, or, when the provider did not say, until the oldest
-- grant of the window leaves it (at least a second).
CREATE FUNCTION observe_provider_budget(
    p_key text, p_remaining integer, p_free_at timestamptz, p_window interval
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    now timestamptz;
    oldest timestamptz;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    INSERT INTO rate_budgets (key) VALUES (p_key) ON CONFLICT (key) DO NOTHING;
    PERFORM 1 FROM rate_budgets WHERE key = p_key FOR UPDATE;
    now := clock_timestamp();
    IF p_remaining <= 0 AND p_free_at IS NULL THEN
        SELECT min(granted_at) INTO oldest FROM rate_budget_grants
        WHERE key = p_key AND granted_at > now - p_window;
        p_free_at := greatest(coalesce(oldest + p_window, now + p_window),
                              now + interval '1 second');
    END IF;
    UPDATE rate_budgets
    SET provider_remaining = greatest(p_remaining, 0), provider_seen_at = now,
        provider_free_at = p_free_at, updated_at = now
    WHERE key = p_key;
END
$$;

ALTER TABLE posts
    -- Comments per second, decayed over the planner's horizon, as of `comment_rate_at`.
    ADD COLUMN comment_rate    double precision NOT NULL DEFAULT 0 CHECK (comment_rate >= 0),
    ADD COLUMN comment_rate_at timestamptz;
"#;

const DOWN: &str = r#"
ALTER TABLE posts DROP COLUMN comment_rate, DROP COLUMN comment_rate_at;
DROP FUNCTION observe_provider_budget(text, integer, timestamptz, interval);
DROP FUNCTION return_budget_slot(bigint);
DROP FUNCTION take_budget_slot(text, integer, interval, text, integer, integer);
DROP TABLE rate_budget_grants;
ALTER TABLE rate_budgets
    DROP COLUMN poll_tokens, DROP COLUMN poll_tokens_at, DROP COLUMN provider_remaining,
    DROP COLUMN provider_seen_at, DROP COLUMN provider_free_at, DROP COLUMN granted_total,
    DROP COLUMN returned_total,
    ADD COLUMN calls timestamptz[] NOT NULL DEFAULT '{}';
"#;
