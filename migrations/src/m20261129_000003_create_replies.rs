//! `replies` (outbound replies, sent once and only once) and `idempotency_keys`.

sql_migration! {
    /// Creates `replies` and `idempotency_keys`.
}

const UP: &str = r#"
CREATE TABLE replies (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    mention_id          uuid NOT NULL REFERENCES mentions (id),
    content             text NOT NULL,
    content_hash        text NOT NULL,
    requested_by        uuid REFERENCES users (id) ON DELETE SET NULL,
    idempotency_key     text,
    status              text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending',
                            'unknown', 'sent', 'failed')),
    attempts            integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- Our reply's ids at the provider, once it is known to be there.
    provider_post_id    text,
    provider_comment_id text,
    last_error          text,
    last_attempt_at     timestamptz,
    sent_at             timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
-- The exactly-once guarantee starts here: at most one live (not failed) reply per mention.
CREATE UNIQUE INDEX replies_one_live_per_mention_key ON replies (mention_id)
    WHERE status <> 'failed';
CREATE INDEX replies_mention_id_created_at_idx ON replies (mention_id, created_at);

CREATE TABLE idempotency_keys (
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key             text NOT NULL,
    request_hash    text NOT NULL,
    -- Null while the first request is still in flight.
    response_status integer,
    response_body   jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
"#;

const DOWN: &str = r#"
DROP TABLE idempotency_keys;
DROP TABLE replies;
"#;
