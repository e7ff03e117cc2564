//! Push ingest.
//!
//! - `webhook_deliveries`: the provider's webhook deliveries taken in (`POST
//!   /v1/webhooks/ayrshare`), one row per delivery id. The receiver inserts the id first, in
//!   the transaction that stores what the delivery brought, so a delivery sent again (the
//!   provider delivers at least once) finds its id taken and changes nothing. Rows are kept 48
//!   hours (the sweeper deletes older ones), past the provider's retries of about an hour.
//! - `webhook_registrations`: what the api registered at the provider, per profile and action:
//!   the URL, a hash of the secret it was registered with (a new secret registers again), when
//!   the provider last confirmed it and since when it reports it missing. Polling of the
//!   platforms it covers slows down only while it is confirmed and not missing.

sql_migration! {
    /// Creates `webhook_deliveries` and `webhook_registrations`.
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
CREATE TABLE webhook_registrations (
    profile text NOT NULL,
    action text NOT NULL CHECK (action IN ('comments', 'messages')),
    url text NOT NULL,
    secret_hash text NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT now(),
    confirmed_at timestamptz NOT NULL DEFAULT now(),
    missing_since timestamptz,
    PRIMARY KEY (profile, action)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_deliveries, webhook_registrations
    TO social_messages_app;
"#;

const DOWN: &str = r#"
DROP TABLE webhook_registrations;
DROP TABLE webhook_deliveries;
"#;
