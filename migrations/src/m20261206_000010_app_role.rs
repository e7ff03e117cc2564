//! Two roles: whoever runs the migrations owns the schema; the services connect as
//! `social_messages_app`, which owns nothing and holds only the privileges the code uses.
//!
//! - The role is created here unless it exists (roles are cluster-wide: every database of the
//!   server, test databases included, shares it). It can log in, without a password; where
//!   the server asks for one, give it with `ALTER ROLE social_messages_app PASSWORD '…'` (or
//!   create the role with one before migrating). `down` leaves the role, which other
//!   databases may use, and only takes back what `up` granted here.
//! - `audit_log`: SELECT and INSERT only. Owning nothing, the role cannot disable its triggers,
//!   replace `audit_row_hash` or drop anything. `audit_chain_head`: SELECT only (verify and
//!   `GET /v1/audit/head` read it); the chaining triggers move it as the owner
//!   (`SECURITY DEFINER`, with a fixed `search_path` so that no object of the caller's can
//!   stand in for one of ours).
//! - Other tables: what the code does to them (DELETE only where rows are purged); no
//!   TRUNCATE anywhere, nothing on `seaql_migrations`. Functions keep PostgreSQL's default
//!   EXECUTE for everyone. A new table needs its own GRANT in its migration (a test lists
//!   tables the role cannot read).
//! - Nobody but the owner may create objects in the schema (PostgreSQL 15 and later already
//!   withhold CREATE from PUBLIC; `down` does not give it back).
//! - `audit_log.occurred_at` must be a finite instant in the years 1 to 9999, the range in
//!   which the verifier's formatting of it is the trigger's (`to_char(…, 'YYYY-…')`).

sql_migration! {
    /// Creates `social_messages_app` and grants it the services' privileges.
}

const UP: &str = r#"
DO $$
BEGIN
    CREATE ROLE social_messages_app LOGIN;
EXCEPTION
    -- Another database of the cluster created it first, or is creating it right now.
    WHEN duplicate_object OR unique_violation THEN NULL;
END $$;

DO $$
BEGIN
    EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM PUBLIC', current_schema());
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO social_messages_app', current_schema());
    EXECUTE format('ALTER FUNCTION audit_log_append() SECURITY DEFINER SET search_path = %I, pg_temp',
        current_schema());
    EXECUTE format('ALTER FUNCTION audit_chain_head_advance() SECURITY DEFINER SET search_path = %I, pg_temp',
        current_schema());
END $$;

GRANT SELECT, INSERT ON audit_log TO social_messages_app;
GRANT SELECT ON audit_chain_head TO social_messages_app;
GRANT SELECT, INSERT, UPDATE ON users, api_tokens, posts, mentions, replies, tasks,
    circuit_breakers, platform_status, rate_budgets TO social_messages_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON circuit_breaker_slots, idempotency_keys,
    login_throttle, rate_budget_grants TO social_messages_app;
GRANT USAGE, SELECT ON SEQUENCE rate_budget_grants_id_seq TO social_messages_app;

ALTER TABLE audit_log ADD CONSTRAINT audit_log_occurred_at_range
    CHECK (occurred_at >= '0001-01-01 00:00:00+00' AND occurred_at < '10000-01-01 00:00:00+00');
"#;

const DOWN: &str = r#"
ALTER TABLE audit_log DROP CONSTRAINT audit_log_occurred_at_range;
REVOKE ALL ON audit_log, audit_chain_head, users, api_tokens, posts, mentions, replies, tasks,
    circuit_breakers, platform_status, rate_budgets, circuit_breaker_slots, idempotency_keys,
    login_throttle, rate_budget_grants FROM social_messages_app;
REVOKE ALL ON SEQUENCE rate_budget_grants_id_seq FROM social_messages_app;
ALTER FUNCTION audit_log_append() SECURITY INVOKER RESET search_path;
ALTER FUNCTION audit_chain_head_advance() SECURITY INVOKER RESET search_path;
DO $$
BEGIN
    EXECUTE format('REVOKE USAGE ON SCHEMA %I FROM social_messages_app', current_schema());
END $$;
"#;
