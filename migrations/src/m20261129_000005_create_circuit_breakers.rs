//! `circuit_breakers`: the distributed breaker state shared by every instance.

sql_migration! {
    /// Creates `circuit_breakers`.
}

const UP: &str = r#"
CREATE TABLE circuit_breakers (
    -- Today a platform name; later "<profile>:<platform>", hence free text.
    key                      text PRIMARY KEY CHECK (key <> ''),
    state                    text NOT NULL DEFAULT 'closed' CHECK (state IN ('closed', 'open',
                                 'half_open')),
    window_started_at        timestamptz NOT NULL DEFAULT now(),
    calls                    integer NOT NULL DEFAULT 0 CHECK (calls >= 0),
    failures                 integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
    opened_at                timestamptz,
    open_until               timestamptz,
    reopen_count             integer NOT NULL DEFAULT 0 CHECK (reopen_count >= 0),
    half_open_permits_in_use integer NOT NULL DEFAULT 0 CHECK (half_open_permits_in_use >= 0),
    updated_at               timestamptz NOT NULL DEFAULT now()
);
"#;

const DOWN: &str = r#"
DROP TABLE circuit_breakers;
"#;
