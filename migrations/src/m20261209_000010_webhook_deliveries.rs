//! `webhook_deliveries`: the provider's webhook deliveries taken in (`POST
//! /v1/webhooks/ayrshare`), one row per delivery id. The receiver inserts the id first, in the
//! transaction that stores what the delivery brought, so a delivery sent again (the provider
//! delivers at least once) finds its id taken and changes nothing. Rows are kept 48 hours (the
//! sweeper deletes older ones), past the provider's retries of about an hour.

sql_migration! {
    /// Creates `webhook_deliveries`.
}

const UP: &str = r#"
CREATE TABLE webhook_deliveries (
    id text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 200),
    profile text NOT NULL,
    action text NOT NULL CHECK (action IN ('comments', 'messages')),
    platform text NOT NULL,
    outcome text NOT NULL CHECK (outcome IN ('received', 'stored', 'known', 'fetch', 'ignored')),
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_received_at ON webhook_deliveries (received_at);
CREATE INDEX webhook_deliveries_by_platform ON webhook_deliveries (profile, platform, received_at);
COMMENT ON COLUMN webhook_deliveries.id IS 'the provider''s delivery id (hookId)';
COMMENT ON COLUMN webhook_deliveries.outcome IS
    'stored: a new mention from the payload; known: already stored; fetch: a targeted read was enqueued; ignored: nothing to do';
GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_deliveries TO social_messages_app;
"#;

const DOWN: &str = r#"
DROP TABLE webhook_deliveries;
"#;
