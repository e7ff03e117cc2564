//! Comments: a post's comments and the replies in its threads are read into mentions, and a
//! comment (or a reply in a thread) is answered through the comments reply endpoint by Social
//! Comment ID (`searchPlatformId: true`). A reply is found again by reading the replies below
//! the comment answered (`GET /comments/:id?commentId=true`), recognised with the ingestion's
//! own rule ([`ExpectedReply`]) so both sides always agree.

use super::{ExpectedReply, Fetched, NewMention, ReplyAdapter, SentReply, not_before};
use crate::db::entities::{mentions, replies};
use crate::domain::{MentionType, Platform};
use crate::provider::Ayrshare;
use crate::provider::{Comment, CommentsPage, CommentsTarget, ProviderError, ReplyTarget};

/// The post whose comments are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostRef {
    /// Ayrshare Post ID (what the comments endpoint takes; stored as provider post ref).
    pub ayrshare_post_id: String,
    /// Social Post ID on the platform: an X tweet referencing it is a top-level comment.
    pub social_post_id: Option<String>,
}

/// Comments and replies in a thread: top-level comments are read as
/// [`MentionType::Comment`], replies in a thread as [`MentionType::Reply`] with their
/// parent's ref; both are answered below the comment.
#[derive(Debug, Clone, Copy, Default)]
pub struct CommentAdapter;

impl CommentAdapter {
    /// Reads the comments of `post` through `api` (the platform's operations). A
    /// post without comments may answer 404 (AYRSHARE.md): that is an empty [`Fetched`].
    pub async fn fetch(&self, api: &Ayrshare, post: &PostRef) -> Result<Fetched, ProviderError> {
        let target = CommentsTarget::AyrsharePost(post.ayrshare_post_id.clone());
        match api.comments(&target).await {
            Ok(page) => Ok(map_page(api.key().platform, post, page)),
            Err(e) if e.is_not_found() => Ok(Fetched::default()),
            Err(e) => Err(e),
        }
    }
}

#[async_trait::async_trait]
impl ReplyAdapter for CommentAdapter {
    async fn send(
        &self,
        api: &Ayrshare,
        mention: &mentions::Model,
        content: &str,
    ) -> Result<SentReply, ProviderError> {
        let target = ReplyTarget::SocialComment(mention.platform_ref.clone());
        let receipt = api.reply(&target, content).await?;
        Ok(SentReply {
            provider_post_id: receipt.post_id.or(mention.provider_post_ref.clone()),
            provider_comment_id: receipt.social_comment_id.or(receipt.comment_id),
            raw: receipt.raw,
        })
    }

    async fn find_sent(
        &self,
        api: &Ayrshare,
        mention: &mentions::Model,
        reply: &replies::Model,
        our_account: Option<&str>,
    ) -> Result<Option<SentReply>, ProviderError> {
        let parent = mention.platform_ref.as_str();
        let expected = ExpectedReply {
            parent_ref: parent,
            content: &reply.content,
            author_id: our_account,
            not_before: Some(not_before(reply)),
        };
        let target = CommentsTarget::SocialComment(parent.to_owned());
        let page = match api.comments(&target).await {
            Ok(page) => page,
            // Nothing below the comment yet: the documented "404 means no comments".
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let post = PostRef {
            ayrshare_post_id: page
                .post_id
                .clone()
                .or(mention.provider_post_ref.clone())
                .unwrap_or_default(),
            social_post_id: None,
        };
        let fetched = map_page(mention.platform, &post, page);
        Ok(fetched
            .mentions
            .into_iter()
            .map(|mut candidate| {
                // The page lists the replies below `parent` as its top level.
                if candidate.parent_ref.is_none() {
                    candidate.parent_ref = Some(parent.to_owned());
                }
                candidate
            })
            .find(|candidate| expected.matches(candidate))
            .map(|ours| SentReply {
                provider_post_id: ours.provider_post_ref,
                provider_comment_id: Some(ours.platform_ref),
                raw: ours.raw,
            }))
    }
}

/// The mentions of `platform` in `page` (a post may be on several platforms; each platform's
/// list is read by that platform's fetch), parents before their replies.
pub fn map_page(platform: Platform, post: &PostRef, page: CommentsPage) -> Fetched {
    let mut mentions = Vec::new();
    for comment in page.comments.into_iter().filter(|c| c.platform == platform) {
        if platform == Platform::Twitter {
            let parent_ref = tweet_parent(&comment, post);
            push(&mut mentions, post, comment, parent_ref, false);
        } else {
            push(&mut mentions, post, comment, None, true);
        }
    }
    Fetched {
        mentions,
        next_update: page.next_update,
    }
}

/// A comment pushed by a webhook delivery as the mention a read of `post` would give: a reply
/// when it answers `parent_ref`.
pub fn pushed(post: &PostRef, comment: Comment, parent_ref: Option<String>) -> NewMention {
    let mut out = Vec::with_capacity(1);
    push(&mut out, post, comment, parent_ref, false);
    out.remove(0)
}

/// On X every tweet of the conversation comes at the top level: one referencing another
/// tweet than the post (`replied_to` first) is a reply to that tweet.
fn tweet_parent(tweet: &Comment, post: &PostRef) -> Option<String> {
    let post_id = post.social_post_id.as_deref().or(tweet.post_id.as_deref());
    let not_the_post = |id: &str| Some(id) != post_id;
    tweet
        .referenced_tweets
        .iter()
        .find(|r| r.kind == "replied_to" && not_the_post(&r.id))
        .or_else(|| {
            tweet
                .referenced_tweets
                .iter()
                .find(|r| r.kind != "quoted" && not_the_post(&r.id))
        })
        .map(|r| r.id.clone())
}

fn push(
    out: &mut Vec<NewMention>,
    post: &PostRef,
    comment: Comment,
    parent_ref: Option<String>,
    nested: bool,
) {
    let Comment {
        comment_id,
        platform,
        text,
        created,
        author,
        replies,
        raw,
        ..
    } = comment;
    out.push(NewMention {
        mention_type: if parent_ref.is_some() {
            MentionType::Reply
        } else {
            MentionType::Comment
        },
        platform,
        content: text,
        platform_ref: comment_id.clone(),
        provider_post_ref: Some(post.ayrshare_post_id.clone()),
        parent_ref,
        author,
        posted_at: created,
        raw,
    });
    if nested {
        for reply in replies {
            push(out, post, reply, Some(comment_id.clone()), true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{Author, ReferencedTweet};
    use serde_json::json;

    fn comment(platform: Platform, id: &str, replies: Vec<Comment>) -> Comment {
        Comment {
            comment_id: id.to_owned(),
            platform,
            text: format!("text {id}"),
            created: None,
            post_id: Some("social-post".to_owned()),
            author: Author::default(),
            replies,
            referenced_tweets: Vec::new(),
            raw: json!({}),
        }
    }

    fn page(comments: Vec<Comment>) -> CommentsPage {
        CommentsPage {
            post_id: Some("ayr".to_owned()),
            comments,
            last_updated: None,
            next_update: None,
        }
    }

    fn post() -> PostRef {
        PostRef {
            ayrshare_post_id: "ayr".to_owned(),
            social_post_id: Some("social-post".to_owned()),
        }
    }

    fn summary(fetched: &Fetched) -> Vec<(String, MentionType, Option<String>)> {
        fetched
            .mentions
            .iter()
            .map(|m| (m.platform_ref.clone(), m.mention_type, m.parent_ref.clone()))
            .collect()
    }

    #[test]
    fn nested_replies_are_flattened_after_their_parent_at_any_depth() {
        let deep = comment(Platform::Facebook, "c3", vec![]);
        let reply = comment(Platform::Facebook, "c2", vec![deep]);
        let top = comment(Platform::Facebook, "c1", vec![reply]);
        let other = comment(Platform::Instagram, "i1", vec![]);
        let fetched = map_page(Platform::Facebook, &post(), page(vec![top, other]));
        assert_eq!(
            summary(&fetched),
            vec![
                ("c1".to_owned(), MentionType::Comment, None),
                ("c2".to_owned(), MentionType::Reply, Some("c1".to_owned())),
                ("c3".to_owned(), MentionType::Reply, Some("c2".to_owned())),
            ]
        );
        assert!(
            fetched
                .mentions
                .iter()
                .all(|m| m.provider_post_ref.as_deref() == Some("ayr"))
        );
    }

    #[test]
    fn tweets_are_split_into_comments_and_replies_by_their_references() {
        let tweet = |id: &str, refs: &[&str]| {
            let mut c = comment(Platform::Twitter, id, vec![]);
            c.referenced_tweets = refs
                .iter()
                .map(|r| ReferencedTweet {
                    kind: "replied_to".to_owned(),
                    id: (*r).to_owned(),
                })
                .collect();
            c
        };
        let comments = vec![
            tweet("t1", &[]),
            tweet("t2", &["social-post"]),
            tweet("t3", &["t1"]),
            tweet("t4", &["t3"]),
        ];
        let fetched = map_page(Platform::Twitter, &post(), page(comments));
        assert_eq!(
            summary(&fetched),
            vec![
                ("t1".to_owned(), MentionType::Comment, None),
                ("t2".to_owned(), MentionType::Comment, None),
                ("t3".to_owned(), MentionType::Reply, Some("t1".to_owned())),
                ("t4".to_owned(), MentionType::Reply, Some("t3".to_owned())),
            ]
        );
    }
}
