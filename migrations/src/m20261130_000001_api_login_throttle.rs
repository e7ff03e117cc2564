//! What the HTTP API needs beyond the core schema: `login_throttle` (failed logins per client
//! address, to slow down password guessing across every API instance) and an index for the
//! health route's "last successful ingest per platform".

sql_migration! {
    /// Creates `login_throttle` and `tasks_succeeded_kind_platform_finished_at_idx`.
}

const UP: &str = r#"
CREATE TABLE login_throttle (
    -- The client's IP address as text.
    address           text PRIMARY KEY,
    -- Failed logins since window_started_at.
    failures          integer NOT NULL CHECK (failures > 0),
    window_started_at timestamptz NOT NULL DEFAULT now(),
    -- While in the future, logins from this address are refused with 429.
    blocked_until     timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_throttle_updated_at_idx ON login_throttle (updated_at);

-- max(finished_at) of succeeded tasks per (kind, platform) without scanning finished work.
CREATE INDEX tasks_succeeded_kind_platform_finished_at_idx
    ON tasks (kind, platform, finished_at DESC) WHERE status = 'succeeded';
"#;

const DOWN: &str = r#"
DROP INDEX tasks_succeeded_kind_platform_finished_at_idx;
DROP TABLE login_throttle;
"#;
