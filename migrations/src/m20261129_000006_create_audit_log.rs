//! `audit_log`: append-only, hash-chained record of every state change.
//!
//! A `BEFORE INSERT` trigger chains every row, whoever inserts it:
//!
//! 1. The first append of a transaction reads the one-row head table `FOR UPDATE`, taking its
//!    row lock. Concurrent appenders queue on that lock, and under READ COMMITTED the locking
//!    read returns the head version the previous appender committed, so the assigned `id`
//!    order is the chain order and ids have no gaps (a rolled-back append rolls back with it).
//! 2. `id` is the previous row's id + 1, `prev_hash` its hash (64 zeros for the first row),
//!    `hash` is `audit_row_hash(prev_hash, id, occurred_at, actor, action, entity_type,
//!    entity_id, payload)`. Values given by the inserter for `id`, `prev_hash` and `hash` are
//!    overwritten. Later rows of the same transaction continue from a transaction-local setting
//!    (`audit.chain_head`) instead of updating the head row per row, which made large batches
//!    quadratic; an `AFTER INSERT … FOR EACH STATEMENT` trigger moves the head to the last row
//!    once per statement, still under the lock.
//!
//! `audit_row_hash` is the lower-case hex SHA-256 of the UTF-8 text of the jsonb array
//! `[prev_hash, id, occurred_at, actor, action, entity_type, entity_id, payload]`, with
//! `occurred_at` written in UTC as `YYYY-MM-DDTHH:MI:SS.ffffffZ`. jsonb's text form is
//! canonical (keys sorted, fixed spacing), so recomputing the hash from the stored row always
//! gives the same bytes; verification calls the same function.
//!
//! Other triggers reject UPDATE, DELETE and TRUNCATE on `audit_log`, and DELETE and TRUNCATE
//! on `audit_chain_head`.

sql_migration! {
    /// Creates `audit_chain_head`, `audit_log`, the hash function and the triggers.
}

const UP: &str = r#"
CREATE TABLE audit_chain_head (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    seq       bigint NOT NULL,
    hash      text NOT NULL
);
INSERT INTO audit_chain_head (seq, hash) VALUES (0, repeat('0', 64));

CREATE TABLE audit_log (
    id          bigint PRIMARY KEY,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL CHECK (actor ~ '^(user|system):.+$'),
    action      text NOT NULL CHECK (action <> ''),
    entity_type text NOT NULL,
    entity_id   text NOT NULL,
    payload     jsonb NOT NULL DEFAULT '{}',
    prev_hash   text NOT NULL,
    hash        text NOT NULL
);
CREATE INDEX audit_log_entity_idx ON audit_log (entity_type, entity_id, id);

CREATE FUNCTION audit_row_hash(prev_hash text, id bigint, occurred_at timestamptz,
    actor text, action text, entity_type text, entity_id text, payload jsonb)
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
    SELECT encode(sha256(convert_to(jsonb_build_array(
        prev_hash,
        id,
        to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        actor,
        action,
        entity_type,
        entity_id,
        payload
    )::text, 'UTF8')), 'hex')
$fn$;

CREATE FUNCTION audit_log_append() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    next_id   bigint;
    head_hash text;
    -- "<seq>:<hash>" of this transaction's last appended row; '' or NULL before the first.
    cached    text := current_setting('audit.chain_head', true);
BEGIN
    IF cached IS NULL OR cached = '' THEN
        -- The head's row lock serializes appenders until commit, and READ COMMITTED re-reads
        -- the latest committed head: id order is chain order. (REPEATABLE READ or SERIALIZABLE
        -- appenders get a serialization failure instead and must retry.)
        SELECT seq, hash INTO next_id, head_hash FROM audit_chain_head FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'audit_chain_head has no row: the audit chain cannot be extended';
        END IF;
    ELSE
        next_id := split_part(cached, ':', 1)::bigint;
        head_hash := split_part(cached, ':', 2);
    END IF;
    NEW.id := next_id + 1;
    NEW.prev_hash := head_hash;
    NEW.hash := audit_row_hash(NEW.prev_hash, NEW.id, NEW.occurred_at, NEW.actor, NEW.action,
        NEW.entity_type, NEW.entity_id, NEW.payload);
    -- Later rows of this transaction continue from here without touching the head row: updating
    -- one row once per appended row makes a transaction's appends quadratic (every update scans
    -- all the versions the transaction made). A savepoint rollback reverts this setting too.
    PERFORM set_config('audit.chain_head', NEW.id || ':' || NEW.hash, true);
    RETURN NEW;
END
$fn$;

-- Once per statement, the head catches up with the transaction's last appended row (still
-- under the row lock taken by the first append).
CREATE FUNCTION audit_chain_head_advance() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    cached text := current_setting('audit.chain_head', true);
BEGIN
    IF cached IS NOT NULL AND cached <> '' THEN
        UPDATE audit_chain_head
        SET seq = split_part(cached, ':', 1)::bigint, hash = split_part(cached, ':', 2);
    END IF;
    RETURN NULL;
END
$fn$;

CREATE FUNCTION audit_log_reject_change() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    RAISE EXCEPTION '% on % is not allowed: the audit log is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$fn$;

CREATE TRIGGER audit_log_append BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append();
CREATE TRIGGER audit_chain_head_advance AFTER INSERT ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_chain_head_advance();
CREATE TRIGGER audit_log_reject_update_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_reject_change();
CREATE TRIGGER audit_log_reject_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_reject_change();
CREATE TRIGGER audit_chain_head_reject_delete BEFORE DELETE ON audit_chain_head
    FOR EACH ROW EXECUTE FUNCTION audit_log_reject_change();
CREATE TRIGGER audit_chain_head_reject_truncate BEFORE TRUNCATE ON audit_chain_head
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_reject_change();
"#;

const DOWN: &str = r#"
DROP TABLE audit_log;
DROP TABLE audit_chain_head;
DROP FUNCTION audit_log_reject_change();
DROP FUNCTION audit_log_append();
DROP FUNCTION audit_chain_head_advance();
DROP FUNCTION audit_row_hash(text, bigint, timestamptz, text, text, text, text, jsonb);
"#;
