//! Posts, comments fetches and mentions, stored exactly once.

use super::statement;
use crate::adapters::{CLOCK_SKEW, ExpectedReply, NewMention};
use crate::audit::Actor;
use crate::db::entities::posts;
use crate::domain::JobKind;
use crate::domain::{BrandId, MentionId, Platform, PostId, ReplyId};
use crate::provider::HistoryPost;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, FromQueryResult};
use serde_json::{Value, json};

/// Rows per mentions statement: a page of comments (at most 1,000 at the provider) is one.
pub const MENTION_BATCH: usize = 1_000;

/// The audit action of a stored mention.
pub const MENTION_INGESTED: &str = "mention.ingested";

/// Inserts the posts of `history` that landed on `platform` (by their Social Post ID) as
/// `brand`'s, and
/// updates the Ayrshare id, creation time or comment count ([`HistoryPost::comment_count`],
/// and when it was reported) of known ones; returns how many rows were written.
pub async fn upsert_posts(
    conn: &impl ConnectionTrait,
    brand: BrandId,
    platform: Platform,
    history: &[HistoryPost],
) -> Result<u64, DbErr> {
    let rows: Vec<Value> = history
        .iter()
        .filter_map(|post| {
            let social = post.social_post_id(platform)?;
            Some(json!({
                "id": PostId::new(),
                "ayrshare_post_id": post.id,
                "platform_post_id": social,
                "post_created_at": post.created,
                "comments_hint": post.comment_count,
            }))
        })
        .collect();
    if rows.is_empty() {
        return Ok(0);
    }
    let result = conn
        .execute_raw(statement(
            "INSERT INTO posts (id, brand_id, platform, ayrshare_post_id, platform_post_id, \
                                post_created_at, comments_hint, comments_hint_at) \
             SELECT id, $3, $2, ayrshare_post_id, platform_post_id, post_created_at, comments_hint, \
                    CASE WHEN comments_hint IS NULL THEN NULL ELSE now() END \
             FROM jsonb_to_recordset($1::jsonb) AS t(id uuid, ayrshare_post_id text, \
                  platform_post_id text, post_created_at timestamptz, comments_hint integer) \
             ON CONFLICT (brand_id, platform, platform_post_id) DO UPDATE \
             SET ayrshare_post_id = EXCLUDED.ayrshare_post_id, \
                 post_created_at = COALESCE(EXCLUDED.post_created_at, posts.post_created_at), \
                 comments_hint = COALESCE(EXCLUDED.comments_hint, posts.comments_hint), \
                 comments_hint_at = CASE WHEN EXCLUDED.comments_hint IS NULL \
                                         THEN posts.comments_hint_at ELSE now() END, \
                 updated_at = now() \
             WHERE posts.ayrshare_post_id IS DISTINCT FROM EXCLUDED.ayrshare_post_id \
                OR posts.post_created_at IS DISTINCT FROM \
                   COALESCE(EXCLUDED.post_created_at, posts.post_created_at) \
                OR EXCLUDED.comments_hint IS NOT NULL",
            vec![Value::Array(rows).into(), platform.into(), brand.into()],
        ))
        .await?;
    Ok(result.rows_affected())
}

/// Enqueues the first comments fetch of each of `brand`'s posts on `platform` never read yet
/// and created
/// within the last `last_days` days (0: any), unless that post's fetch is already active (the
/// partial unique index on active dedup keys decides). Re-reads are the poll planner's
/// ([`crate::ingest::plan`]). Returns how many tasks were created. One statement, whatever the
/// number of posts.
pub async fn enqueue_first_reads(
    conn: &impl ConnectionTrait,
    brand: BrandId,
    platform: Platform,
    last_days: u32,
    trace_id: &str,
) -> Result<u64, DbErr> {
    let result = conn
        .execute_raw(statement(
            "INSERT INTO tasks (id, brand_id, kind, platform, subject_id, dedup_key, payload, \
                                trace_id) \
             SELECT gen_random_uuid(), brand_id, $2, platform, id, 'comments:' || id::text, \
                    jsonb_build_object('step', 'comments', 'postId', id), $4 \
             FROM posts \
             WHERE brand_id = $5 AND platform = $1 AND last_fetched_at IS NULL \
               AND ($3 = 0 OR post_created_at IS NULL \
                    OR post_created_at >= now() - make_interval(days => $3)) \
             ORDER BY next_fetch_at \
             ON CONFLICT (brand_id, dedup_key) WHERE status IN ('pending', 'published', 'running') \
             DO NOTHING",
            vec![
                platform.into(),
                JobKind::Ingest.as_str().into(),
                i32::try_from(last_days).unwrap_or(i32::MAX).into(),
                trace_id.into(),
                brand.into(),
            ],
        ))
        .await?;
    Ok(result.rows_affected())
}

/// The post with this id, if it exists.
pub async fn find_post(
    conn: &impl ConnectionTrait,
    id: PostId,
) -> Result<Option<posts::Model>, DbErr> {
    posts::Entity::find_by_id(id).one(conn).await
}

/// What a comments read of a post found, for [`record_fetch`].
#[derive(Debug, Clone, PartialEq)]
pub struct FetchRecord {
    /// When the read was made.
    pub at: DateTime<Utc>,
    /// Not to be read again before (the provider's `nextUpdate`).
    pub next_fetch_at: DateTime<Utc>,
    /// The post's comment rate now.
    pub comment_rate: f64,
    /// Whether it found new comments.
    pub found_new: bool,
    /// The post's `comments_hint` when the read began (a hint that arrives during the read
    /// may count a comment the read missed, so it is compared with this one).
    pub hint: Option<i32>,
}

/// Records a comments read of `post`.
pub async fn record_fetch(
    conn: &impl ConnectionTrait,
    post: PostId,
    read: &FetchRecord,
) -> Result<(), DbErr> {
    conn.execute_raw(statement(
        "UPDATE posts SET next_fetch_at = $2, last_fetched_at = $5, \
             comment_rate = $3, comment_rate_at = $5, \
             last_new_comment_at = CASE WHEN $4 THEN $5 ELSE last_new_comment_at END, \
             comments_hint_read = $6, \
             updated_at = now() \
         WHERE id = $1",
        vec![
            post.into(),
            read.next_fetch_at.into(),
            read.comment_rate.into(),
            read.found_new.into(),
            read.at.into(),
            read.hint.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// The mentions [`insert_mentions`] stored new.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inserted {
    /// When each new mention was posted, as the provider said (`None`: it did not).
    pub posted_at: Vec<Option<DateTime<Utc>>>,
}

impl Inserted {
    /// How many were new.
    pub fn count(&self) -> u64 {
        self.posted_at.len() as u64
    }
}

/// Stores `mentions` in `brand`'s inbox once each: new ones are inserted (in batches of
/// [`MENTION_BATCH`], with `ON CONFLICT DO NOTHING` on (brand, platform, type, platform ref)),
/// linked to their thread parent
/// when it is stored, and audited (`mention.ingested`, one row per new mention, by `actor`),
/// all through `conn` (the caller's transaction). Returns the new ones; mentions already
/// stored are left as they are.
pub async fn insert_mentions(
    conn: &impl ConnectionTrait,
    brand: BrandId,
    mentions: &[NewMention],
    actor: &Actor,
) -> Result<Inserted, DbErr> {
    let mut inserted = Inserted::default();
    let mut new_ids: Vec<MentionId> = Vec::new();
    for chunk in mentions.chunks(MENTION_BATCH) {
        new_ids.clear();
        let rows: Vec<Value> = chunk
            .iter()
            .map(|m| {
                json!({
                    "id": MentionId::new(),
                    "type": m.mention_type,
                    "platform": m.platform,
                    "content": m.content,
                    "platform_ref": m.platform_ref,
                    "provider_post_ref": m.provider_post_ref,
                    "parent_ref": m.parent_ref,
                    "author_id": m.author.id,
                    "author_name": m.author.name,
                    "author_handle": m.author.handle,
                    "posted_at": m.posted_at,
                    "raw": m.raw,
                })
            })
            .collect();
        let rows = Value::Array(rows);
        // Parents are resolved against stored rows only, so a reply and its parent in the
        // same batch need the second statement; replies whose parent is not stored (yet)
        // keep no parent.
        let returned = conn
            .query_all_raw(statement(
                "WITH input AS ( \
                     SELECT t.*, p.id AS parent_id \
                     FROM jsonb_to_recordset($1::jsonb) AS t(id uuid, type text, \
                          platform text, content text, platform_ref text, \
                          provider_post_ref text, parent_ref text, author_id text, \
                          author_name text, author_handle text, posted_at timestamptz, \
                          raw jsonb) \
                     LEFT JOIN mentions p ON p.brand_id = $2 AND p.platform = t.platform \
                          AND p.type IN ('comment', 'reply') AND p.platform_ref = t.parent_ref) \
                 INSERT INTO mentions (id, brand_id, type, platform, content, platform_ref, \
                     provider_post_ref, parent_id, author_id, author_name, author_handle, \
                     posted_at, raw) \
                 SELECT id, $2, type, platform, content, platform_ref, provider_post_ref, \
                     parent_id, author_id, author_name, author_handle, posted_at, raw \
                 FROM input \
                 ON CONFLICT (brand_id, platform, type, platform_ref) DO NOTHING \
                 RETURNING id, posted_at",
                vec![rows.clone().into(), brand.into()],
            ))
            .await?;
        for row in &returned {
            new_ids.push(MentionId(row.try_get("", "id")?));
            inserted.posted_at.push(row.try_get("", "posted_at")?);
        }
        if new_ids.is_empty() {
            continue;
        }
        if chunk.iter().any(|m| m.parent_ref.is_some()) {
            conn.execute_raw(statement(
                "UPDATE mentions c SET parent_id = p.id \
                 FROM jsonb_to_recordset($1::jsonb) AS t(platform text, type text, \
                      platform_ref text, parent_ref text), mentions p \
                 WHERE t.parent_ref IS NOT NULL AND c.parent_id IS NULL \
                   AND c.brand_id = $2 AND c.platform = t.platform AND c.type = t.type \
                   AND c.platform_ref = t.platform_ref \
                   AND p.brand_id = $2 AND p.platform = t.platform \
                   AND p.type IN ('comment', 'reply') AND p.platform_ref = t.parent_ref",
                vec![rows.into(), brand.into()],
            ))
            .await?;
        }
        // Last write of the batch: the audit chain's head stays locked until commit.
        let ids: Vec<Value> = new_ids.iter().map(|id| json!(id)).collect();
        conn.execute_raw(statement(
            "INSERT INTO audit_log (actor, action, entity_type, entity_id, payload) \
             SELECT $2, $3, 'mention', m.id::text, \
                    jsonb_build_object('type', m.type, 'platform', m.platform, \
                        'platformRef', m.platform_ref, 'providerPostRef', m.provider_post_ref, \
                        'parentId', m.parent_id) \
             FROM jsonb_array_elements_text($1::jsonb) WITH ORDINALITY AS n(id, ord) \
             JOIN mentions m ON m.id = n.id::uuid \
             ORDER BY n.ord",
            vec![
                Value::Array(ids).into(),
                actor.to_string().into(),
                MENTION_INGESTED.into(),
            ],
        ))
        .await?;
    }
    Ok(inserted)
}

/// A reply of ours on a thread, as the replier recorded it.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct OurReply {
    /// The `replies` row.
    pub id: ReplyId,
    /// What we said.
    pub content: String,
    /// Our reply's Social Comment ID, once the provider told us.
    pub provider_comment_id: Option<String>,
    /// The `platform_ref` of the mention we answered.
    pub parent_ref: String,
    /// When it was requested.
    pub created_at: sea_orm::prelude::DateTimeWithTimeZone,
}

/// Our replies to `brand`'s mentions of the post `ayrshare_post_id` on `platform` that may be
/// at the
/// provider: `sending`, `unknown` or `sent` (a `pending` one was never attempted; a `failed`
/// one is over, and whatever of ours the thread shows is skipped by author).
pub async fn our_replies_on_post(
    conn: &impl ConnectionTrait,
    brand: BrandId,
    platform: Platform,
    ayrshare_post_id: &str,
) -> Result<Vec<OurReply>, DbErr> {
    OurReply::find_by_statement(statement(
        "SELECT r.id, r.content, r.provider_comment_id, r.created_at, \
                m.platform_ref AS parent_ref \
         FROM replies r JOIN mentions m ON m.id = r.mention_id \
         WHERE m.brand_id = $3 AND m.platform = $1 AND m.provider_post_ref = $2 \
           AND r.status IN ('sending', 'unknown', 'sent')",
        vec![platform.into(), ayrshare_post_id.into(), brand.into()],
    ))
    .all(conn)
    .await
}

/// Takes our own writing out of `mentions`: it is never stored as an inbound mention. Each of
/// `ours` matches at most one comment, by its known provider comment id or else by the rule of
/// [`ExpectedReply`] (parent, text, our account `our_account` as author, not before it was
/// requested); a comment our account wrote that matches none of them (a reply posted
/// elsewhere, or one that ended `failed` yet landed) is dropped too. Returns the matches:
/// (reply, its Social Comment ID).
pub fn take_our_replies(
    mentions: &mut Vec<NewMention>,
    ours: &[OurReply],
    our_account: Option<&str>,
) -> Vec<(ReplyId, String)> {
    let mut found = Vec::new();
    let mut matched = vec![false; ours.len()];
    mentions.retain(|m| {
        let hit = ours.iter().enumerate().position(|(i, r)| {
            let expected = ExpectedReply {
                parent_ref: &r.parent_ref,
                content: &r.content,
                author_id: our_account,
                not_before: Some(r.created_at.with_timezone(&Utc) - CLOCK_SKEW),
            };
            let by_id = r.provider_comment_id.as_deref() == Some(m.platform_ref.as_str());
            !matched[i] && (by_id || expected.matches(m))
        });
        match hit {
            Some(i) => {
                matched[i] = true;
                found.push((ours[i].id, m.platform_ref.clone()));
                false
            }
            None => our_account.is_none_or(|ours| m.author.id.as_deref() != Some(ours)),
        }
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::MentionType;
    use crate::provider::Author;
    use chrono::TimeDelta;

    const US: &str = "acct-us";

    fn reply_mention(platform_ref: &str, parent_ref: &str, content: &str, by: &str) -> NewMention {
        NewMention {
            mention_type: MentionType::Reply,
            platform: Platform::Facebook,
            content: content.to_owned(),
            platform_ref: platform_ref.to_owned(),
            provider_post_ref: Some("post-1".to_owned()),
            parent_ref: Some(parent_ref.to_owned()),
            author: Author {
                id: Some(by.to_owned()),
                ..Author::default()
            },
            posted_at: Some(Utc::now()),
            raw: Value::Null,
        }
    }

    fn ours(provider_comment_id: Option<&str>, parent_ref: &str, content: &str) -> OurReply {
        OurReply {
            id: ReplyId::new(),
            content: content.to_owned(),
            provider_comment_id: provider_comment_id.map(str::to_owned),
            parent_ref: parent_ref.to_owned(),
            created_at: (Utc::now() - TimeDelta::minutes(1)).fixed_offset(),
        }
    }

    #[test]
    fn our_replies_are_taken_out_by_provider_id_or_by_parent_content_and_author_each_once() {
        let by_id = ours(Some("c-10"), "c-1", "Thanks!");
        let by_text = ours(None, "c-2", "We are on it.");
        let on_x = ours(None, "c-4", "Sorted, sorry!");
        let mut fetched = vec![
            // A customer saying our words under the same comment, before ours shows: theirs.
            reply_mention("c-9", "c-2", "We are on it.", "customer-1"),
            reply_mention("c-10", "c-1", "Thanks!", US),
            reply_mention("c-11", "c-2", "We are  on it.", US),
            // Our same words again under the same comment: not that reply, but ours all the same.
            reply_mention("c-12", "c-2", "We are on it.", US),
            // The same words under another comment are somebody else's.
            reply_mention("c-13", "c-3", "Thanks!", "customer-2"),
            // X puts the handle answered in front.
            reply_mention("c-14", "c-4", "@ann_lee Sorted, sorry!", US),
        ];
        let found = take_our_replies(
            &mut fetched,
            &[by_id.clone(), by_text.clone(), on_x.clone()],
            Some(US),
        );
        assert_eq!(
            found,
            vec![
                (by_id.id, "c-10".to_owned()),
                (by_text.id, "c-11".to_owned()),
                (on_x.id, "c-14".to_owned()),
            ]
        );
        let left: Vec<&str> = fetched.iter().map(|m| m.platform_ref.as_str()).collect();
        assert_eq!(
            left,
            vec!["c-9", "c-13"],
            "only the customers' comments stay"
        );
    }

    #[test]
    fn an_earlier_comment_with_our_words_is_not_the_reply_requested_later() {
        let mut old = reply_mention("c-20", "c-1", "Thanks!", US);
        old.posted_at = Some(Utc::now() - TimeDelta::hours(2));
        let reply = ours(None, "c-1", "Thanks!");
        let mut fetched = vec![old];
        assert!(take_our_replies(&mut fetched, &[reply], Some(US)).is_empty());
        assert!(fetched.is_empty(), "still ours, so not a mention");
    }

    #[test]
    fn without_our_account_known_the_parent_and_text_decide() {
        let mut fetched = vec![
            reply_mention("c-10", "c-1", "Thanks!", "whoever"),
            reply_mention("c-11", "c-2", "Hello", "whoever"),
        ];
        let reply = ours(None, "c-1", "Thanks!");
        let found = take_our_replies(&mut fetched, std::slice::from_ref(&reply), None);
        assert_eq!(found, vec![(reply.id, "c-10".to_owned())]);
        assert_eq!(fetched.len(), 1);
    }
}
