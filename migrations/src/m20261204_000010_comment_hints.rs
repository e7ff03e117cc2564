//! The network's comment count of a post, as history reads report it (LinkedIn
//! `commentCount`, Bluesky `replyCount`, X `publicMetrics.reply_count`), beside the count as
//! of the post's last comments read: a count above it says the post has comments we have not
//! read, an equal one that it had none when the history was read, so the poll planner reads
//! the first kind next and counts the second one's staleness from that history read.

sql_migration! {
    /// Adds `posts.comments_hint`, `comments_hint_at` and `comments_hint_read`.
}

const UP: &str = r#"
ALTER TABLE posts
    -- The comment count of the post's latest history item, if the network reports one.
    ADD COLUMN comments_hint      integer CHECK (comments_hint >= 0),
    -- When a history read last reported it.
    ADD COLUMN comments_hint_at   timestamptz,
    -- `comments_hint` when the last comments read began. Only hints are compared with hints,
    -- so whatever the network counts (all comments, or direct replies only), only growth
    -- triggers a read.
    ADD COLUMN comments_hint_read integer CHECK (comments_hint_read >= 0);
"#;

const DOWN: &str = r#"
ALTER TABLE posts
    DROP COLUMN comments_hint, DROP COLUMN comments_hint_at, DROP COLUMN comments_hint_read;
"#;
