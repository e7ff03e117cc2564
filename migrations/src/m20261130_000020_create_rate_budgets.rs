//! `rate_budgets`: the provider request budget shared by every process (one row per Ayrshare
//! profile), as a sliding log of the latest send times.

sql_migration! {
    /// Creates `rate_budgets`.
}

// A sliding log rather than a fixed-window counter: a fixed window lets twice the budget
// through across a window boundary, the provider (and the simulator) count a sliding window.
// The array never holds more than the budget's size, so the row stays small; every take
// locks the row, which serializes the takers of one profile.
const UP: &str = r#"
CREATE TABLE rate_budgets (
    -- "default" for the primary profile; "profile:<name>" once several profiles are served.
    key        text PRIMARY KEY CHECK (key <> ''),
    -- When each of the most recent calls was granted, oldest first.
    calls      timestamptz[] NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now()
);
"#;

const DOWN: &str = r#"
DROP TABLE rate_budgets;
"#;
