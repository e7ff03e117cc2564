//! `platform_status`: what ingestion knows about each platform: whether direct messages are
//! available (a platform without the messaging add-on answers 403, and is checked again only
//! rarely) and when its last ingest succeeded.

sql_migration! {
    /// Creates `platform_status`.
}

const UP: &str = r#"
CREATE TABLE platform_status (
    platform                text PRIMARY KEY CHECK (platform IN ('bluesky', 'facebook',
                                'instagram', 'linkedin', 'threads', 'tiktok', 'twitter',
                                'youtube')),
    -- NULL: not checked yet (or the platform has no direct messages).
    messaging_enabled       boolean,
    messaging_checked_at    timestamptz,
    -- While messaging is disabled, direct messages are not read again before this.
    messaging_next_check_at timestamptz,
    -- The provider's reason when it said messaging is not available.
    messaging_error         text,
    last_ingest_at          timestamptz,
    updated_at              timestamptz NOT NULL DEFAULT now()
);
"#;

const DOWN: &str = r#"
DROP TABLE platform_status;
"#;
