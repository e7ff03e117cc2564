//! Feeds the live event stream (`GET /v1/events`): a `NOTIFY audit_appended` after every
//! statement that appends to the audit trail. The api's event feeds `LISTEN` on the channel
//! and read the new rows; the rows are the events, so the notification carries nothing.

sql_migration! {
    /// Creates the `audit_notify_appended` trigger.
}

// One notification per statement, and PostgreSQL folds identical notifications of one
// transaction into one: a batch of ten thousand ingested mentions wakes each feed once.
const UP: &str = r#"
CREATE FUNCTION audit_notify_appended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('audit_appended', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER audit_notify_appended
    AFTER INSERT ON audit_log
    FOR EACH STATEMENT
    EXECUTE FUNCTION audit_notify_appended();
"#;

const DOWN: &str = r#"
DROP TRIGGER audit_notify_appended ON audit_log;
DROP FUNCTION audit_notify_appended();
"#;
