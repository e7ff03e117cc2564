//! `posts` (the social posts being watched) and `mentions` (the inbox).

sql_migration! {
    /// Creates `posts` and `mentions`.
}

const UP: &str = r#"
CREATE TABLE posts (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    platform            text NOT NULL CHECK (platform IN ('bluesky', 'facebook', 'instagram',
                            'linkedin', 'threads', 'tiktok', 'twitter', 'youtube')),
    ayrshare_post_id    text NOT NULL,
    platform_post_id    text NOT NULL,
    post_created_at     timestamptz,
    next_fetch_at       timestamptz NOT NULL DEFAULT now(),
    last_fetched_at     timestamptz,
    -- When a fetch last found a new comment: quiet posts can be polled less often.
    last_new_comment_at timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT posts_platform_post_key UNIQUE (platform, platform_post_id)
);
CREATE INDEX posts_platform_next_fetch_at_idx ON posts (platform, next_fetch_at);
CREATE INDEX posts_ayrshare_post_id_idx ON posts (ayrshare_post_id);

CREATE TABLE mentions (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    type              text NOT NULL CHECK (type IN ('comment', 'message', 'reply')),
    platform          text NOT NULL CHECK (platform IN ('bluesky', 'facebook', 'instagram',
                          'linkedin', 'threads', 'tiktok', 'twitter', 'youtube')),
    content           text NOT NULL DEFAULT '',
    platform_ref      text NOT NULL,
    provider_post_ref text,
    parent_id         uuid REFERENCES mentions (id) ON DELETE SET NULL,
    author_id         text,
    author_name       text,
    author_handle     text,
    posted_at         timestamptz,
    state             text CHECK (state IN ('assignment', 'reply_attempt', 'provider_error',
                          'replied')),
    disposition       text CHECK (disposition IN ('reply', 'ignore', 'escalate')),
    assignee_id       uuid REFERENCES users (id) ON DELETE SET NULL,
    raw               jsonb NOT NULL DEFAULT '{}',
    version           integer NOT NULL DEFAULT 1 CHECK (version > 0),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    -- Full-text search over the text and the author. 'simple': comments come in any
    -- language, so no stemming; query with websearch_to_tsquery('simple', $1).
    search            tsvector GENERATED ALWAYS AS (to_tsvector('simple'::regconfig,
                          content || ' ' || coalesce(author_name, '') || ' '
                          || coalesce(author_handle, ''))) STORED,
    CONSTRAINT mentions_platform_type_ref_key UNIQUE (platform, type, platform_ref)
);
-- Newest-first keyset pagination, alone and under each common filter.
CREATE INDEX mentions_created_at_id_idx ON mentions (created_at DESC, id DESC);
CREATE INDEX mentions_platform_created_at_id_idx ON mentions (platform, created_at DESC, id DESC);
CREATE INDEX mentions_state_created_at_id_idx ON mentions (state, created_at DESC, id DESC);
CREATE INDEX mentions_assignee_created_at_id_idx ON mentions (assignee_id, created_at DESC, id DESC);
CREATE INDEX mentions_parent_id_idx ON mentions (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX mentions_provider_post_ref_idx ON mentions (platform, provider_post_ref);
CREATE INDEX mentions_search_idx ON mentions USING gin (search);
"#;

const DOWN: &str = r#"
DROP TABLE mentions;
DROP TABLE posts;
"#;
