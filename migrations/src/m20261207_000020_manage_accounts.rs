//! Accounts can be managed: a user can be disabled (and enabled again), and the database keeps
//! the two rules that go with it.
//!
//! - `users.disabled_at`: while set, the user cannot sign in. Setting it revokes every token
//!   of the user in the same statement (trigger `users_disabled_revoke_tokens`), so a disabled
//!   user's next request is refused by every API instance.
//! - At least one enabled admin remains: demoting or disabling the last one fails with a
//!   check violation of `users_keep_an_admin` (trigger of the same name). Concurrent changes
//!   take turns on a transaction lock, so two admins demoting each other cannot both succeed.

sql_migration! {
    /// Adds `users.disabled_at` and its triggers.
}

const UP: &str = r#"
ALTER TABLE users ADD COLUMN disabled_at timestamptz;

CREATE FUNCTION users_disabled_revoke_tokens() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE api_tokens SET revoked_at = now() WHERE user_id = NEW.id AND revoked_at IS NULL;
    RETURN NULL;
END
$$;
CREATE TRIGGER users_disabled_revoke_tokens
    AFTER UPDATE OF disabled_at ON users
    FOR EACH ROW WHEN (OLD.disabled_at IS NULL AND NEW.disabled_at IS NOT NULL)
    EXECUTE FUNCTION users_disabled_revoke_tokens();

CREATE FUNCTION users_keep_an_admin() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- One change of admins at a time; the check below then sees every earlier one.
    PERFORM pg_advisory_xact_lock(hashtext('users_keep_an_admin'));
    IF NOT EXISTS (SELECT 1 FROM users WHERE role = 'admin' AND disabled_at IS NULL) THEN
        RAISE EXCEPTION 'the last enabled admin cannot be demoted or disabled'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'users_keep_an_admin';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER users_keep_an_admin
    AFTER UPDATE OF role, disabled_at ON users
    FOR EACH ROW WHEN (OLD.role = 'admin' AND OLD.disabled_at IS NULL
                       AND (NEW.role <> 'admin' OR NEW.disabled_at IS NOT NULL))
    EXECUTE FUNCTION users_keep_an_admin();
"#;

const DOWN: &str = r#"
DROP TRIGGER users_keep_an_admin ON users;
DROP FUNCTION users_keep_an_admin();
DROP TRIGGER users_disabled_revoke_tokens ON users;
DROP FUNCTION users_disabled_revoke_tokens();
ALTER TABLE users DROP COLUMN disabled_at;
"#;
