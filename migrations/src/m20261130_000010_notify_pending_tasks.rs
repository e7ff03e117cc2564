//! Wakes the outbox relays: a `NOTIFY tasks_pending` whenever a task becomes pending (inserted,
//! handed back by the sweeper, rescheduled after a failure, retried by an admin) or a pending
//! task's `available_at` moves. Relays `LISTEN` on the channel and also poll, so a lost
//! notification only costs the poll interval.

sql_migration! {
    /// Creates the `tasks_notify_pending` triggers.
}

// PostgreSQL folds identical notifications of one transaction into one, so a transaction
// that enqueues ten thousand tasks sends a single wake-up. The payload is empty on purpose:
// a relay claims whatever is due, it does not need to know what changed.
const UP: &str = r#"
CREATE FUNCTION tasks_notify_pending() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tasks_pending', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER tasks_notify_pending_insert
    AFTER INSERT ON tasks
    FOR EACH ROW WHEN (NEW.status = 'pending')
    EXECUTE FUNCTION tasks_notify_pending();
CREATE TRIGGER tasks_notify_pending_update
    AFTER UPDATE OF status, available_at ON tasks
    FOR EACH ROW WHEN (NEW.status = 'pending' AND (OLD.status IS DISTINCT FROM NEW.status
                       OR OLD.available_at IS DISTINCT FROM NEW.available_at))
    EXECUTE FUNCTION tasks_notify_pending();
"#;

const DOWN: &str = r#"
DROP TRIGGER tasks_notify_pending_update ON tasks;
DROP TRIGGER tasks_notify_pending_insert ON tasks;
DROP FUNCTION tasks_notify_pending();
"#;
