//! A reply whose task ends `failed` (an error no retry can mend: its brand's Profile-Key cannot
//! be opened, its client cannot be built) ends `failed` too, as it already did for `dead`: no
//! reply is left `pending`, `sending` or `unknown` without a task to finish it. The reason is
//! the task's end (`dead` or `failed`).

sql_migration! {
    /// Replaces `tasks_dead_reply_fails` with `tasks_ended_reply_fails`.
}

// Lock order as in the reply protocol: the mention, then the reply, then the audit chain head
// (the insert into `audit_log` takes it). For a `dead` task the function does what
// `fail_reply_of_dead_task` did (same error text, reason `dead`), so rolling back only puts the
// old name and trigger back.
const UP: &str = r#"
CREATE OR REPLACE FUNCTION fail_reply_of_dead_task() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    r replies%ROWTYPE;
    m mentions%ROWTYPE;
BEGIN
    SELECT * INTO r FROM replies WHERE id = NEW.subject_id;
    IF NOT FOUND OR r.status NOT IN ('pending', 'sending', 'unknown') THEN
        RETURN NULL;
    END IF;
    SELECT * INTO m FROM mentions WHERE id = r.mention_id FOR UPDATE;
    UPDATE replies
    SET status = 'failed',
        last_error = coalesce(NEW.last_error, 'its task ended ' || NEW.status::text),
        updated_at = now()
    WHERE id = r.id AND status IN ('pending', 'sending', 'unknown')
    RETURNING * INTO r;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF m.state = 'reply_attempt' THEN
        UPDATE mentions
        SET state = 'provider_error', version = version + 1, updated_at = now()
        WHERE id = m.id;
    END IF;
    INSERT INTO audit_log (actor, action, entity_type, entity_id, payload)
    VALUES ('system:' || coalesce(OLD.lease_owner, 'sweeper'), 'reply.failed', 'mention',
            r.mention_id::text,
            jsonb_build_object('replyId', r.id, 'reason', NEW.status::text,
                               'message', r.last_error, 'attempts', r.attempts,
                               'taskId', NEW.id));
    RETURN NULL;
END
$$;
ALTER FUNCTION fail_reply_of_dead_task() RENAME TO fail_reply_of_ended_task;

DROP TRIGGER tasks_dead_reply_fails ON tasks;
CREATE TRIGGER tasks_ended_reply_fails
AFTER UPDATE OF status ON tasks
FOR EACH ROW
WHEN (NEW.status IN ('dead', 'failed') AND OLD.status NOT IN ('dead', 'failed')
      AND NEW.kind = 'reply' AND NEW.subject_id IS NOT NULL)
EXECUTE FUNCTION fail_reply_of_ended_task();
"#;

const DOWN: &str = r#"
DROP TRIGGER tasks_ended_reply_fails ON tasks;
ALTER FUNCTION fail_reply_of_ended_task() RENAME TO fail_reply_of_dead_task;
CREATE TRIGGER tasks_dead_reply_fails
AFTER UPDATE OF status ON tasks
FOR EACH ROW
WHEN (NEW.status = 'dead' AND OLD.status <> 'dead' AND NEW.kind = 'reply'
      AND NEW.subject_id IS NOT NULL)
EXECUTE FUNCTION fail_reply_of_dead_task();
"#;
