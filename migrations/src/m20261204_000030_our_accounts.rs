//! Our own account on each platform (the provider's `GET /user`, `displayNames[]`): the author
//! of every reply and message we post, so that reading a thread back, and ingesting it,
//! recognise our replies by author and never take a customer's words for ours.

sql_migration! {
    /// Adds `platform_status.our_account_id` and `our_account_checked_at`.
}

const UP: &str = r#"
ALTER TABLE platform_status
    -- The network's id of our connected account; NULL: not known (yet).
    ADD COLUMN our_account_id         text,
    ADD COLUMN our_account_checked_at timestamptz;
"#;

const DOWN: &str = r#"
ALTER TABLE platform_status DROP COLUMN our_account_id, DROP COLUMN our_account_checked_at;
"#;
