//! The simulated provider's state of one profile: posts, comment threads, conversations, and
//! the ledger of every write the simulator applied to them.
//!
//! Objects live in arenas (`posts`, `comments`, `conversations`) and refer to each other by
//! index; lookups by id go through hash maps, so no request scans the world. Every comment
//! and message carries `visible_at`: the provider's read cache hides it from GET requests until
//! then (`cacheDelaySeconds`), while `/_sim/comments` and the ledger always see it. A deleted
//! comment keeps its arena slot (indexes stay valid) but leaves its thread and the id maps, with
//! every reply below it, so no lookup or traversal finds it again.

mod generate;
pub(crate) mod text;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::ids;
use crate::platform::Platform;
use crate::time::iso_millis;

pub(crate) use generate::generate;

/// An account on a network: a customer, or the brand's own account (see [`our_account`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    /// The network's id for the account (`from.id`, `userId`, `authorId`, … in comments).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Handle or user name; on Bluesky an email-like value, as the provider returns it.
    pub handle: String,
}

/// The brand's own account on `platform`: the author of every comment and reply posted through
/// the API, and the account `GET /user` lists.
pub fn our_account(platform: Platform) -> Account {
    let handle = match platform {
        Platform::Twitter => "AcmeOutdoors",
        Platform::Youtube => "@AcmeOutdoors",
        Platform::Tiktok => "acmeoutdoors",
        Platform::Bluesky => "social@acme-outdoors.example",
        Platform::Instagram | Platform::Threads => "acme_outdoors",
        _ => "acme-outdoors",
    };
    Account {
        id: ids::account_id(platform, ids::OUR_ACCOUNT_N),
        name: "Acme Outdoors".to_owned(),
        handle: handle.to_owned(),
    }
}

/// A post published through Ayrshare on one network.
#[derive(Debug, Clone)]
pub(crate) struct Post {
    pub ayr_id: String,
    pub platform: Platform,
    pub social_id: String,
    pub url: String,
    pub text: String,
    pub created: DateTime<Utc>,
    pub like_count: u32,
    /// Top-level comments, oldest first.
    pub comments: Vec<usize>,
}

/// A comment or a reply (at any depth) on a post.
#[derive(Debug, Clone)]
pub(crate) struct Comment {
    pub platform: Platform,
    pub post: usize,
    pub parent: Option<usize>,
    pub social_id: String,
    /// Set for comments made through Ayrshare (our comments and replies).
    pub ayr_id: Option<String>,
    pub text: String,
    pub author: Arc<Account>,
    pub created: DateTime<Utc>,
    pub visible_at: DateTime<Utc>,
    pub from_us: bool,
    pub like_count: u32,
    /// Direct replies, oldest first.
    pub replies: Vec<usize>,
    /// X only: a top-level tweet that names the post in `referencedTweets`.
    pub refs_post: bool,
    /// Removed by `DELETE /comments` (itself or an ancestor); see the module documentation.
    pub deleted: bool,
}

/// A direct-message conversation between a customer and us.
#[derive(Debug, Clone)]
pub(crate) struct Conversation {
    pub platform: Platform,
    pub id: String,
    pub customer: Arc<Account>,
    pub messages: Vec<Message>,
}

/// One direct message, received from the customer or sent by us.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    pub id: String,
    pub sent: bool,
    pub text: String,
    pub created: DateTime<Utc>,
    pub visible_at: DateTime<Utc>,
    pub attachments: Vec<String>,
}

/// A reply the simulator applied (`GET /_sim/ledger`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LedgerReply {
    pub platform: Platform,
    pub parent_id: String,
    pub comment_id: String,
    pub content: String,
    pub at: String,
}

/// A direct message the simulator applied (`GET /_sim/ledger`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LedgerMessage {
    pub platform: Platform,
    pub recipient_id: String,
    pub message_id: String,
    pub message: String,
    pub at: String,
}

/// A top-level comment of ours the simulator applied (`POST /comments`, `GET /_sim/ledger`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LedgerComment {
    pub platform: Platform,
    /// Ayrshare Post ID of the post commented on (as `postId` in `/_sim/comments`).
    pub post_id: String,
    pub comment_id: String,
    pub content: String,
    pub at: String,
}

/// A comment the simulator deleted (`DELETE /comments`, `GET /_sim/ledger`); the replies
/// below it went with it and have no entry of their own.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LedgerDeletion {
    pub platform: Platform,
    pub comment_id: String,
    pub at: String,
}

/// Every write applied, in order, whether or not its response reached the client.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Ledger {
    pub replies: Vec<LedgerReply>,
    pub messages: Vec<LedgerMessage>,
    pub comments: Vec<LedgerComment>,
    pub deletions: Vec<LedgerDeletion>,
}

/// A comment to add to the world.
pub(crate) struct NewComment {
    pub post: usize,
    pub parent: Option<usize>,
    pub text: String,
    pub author: Arc<Account>,
    pub from_us: bool,
    pub created: DateTime<Utc>,
    pub visible_at: DateTime<Utc>,
    /// The unique number the comment's ids derive from.
    pub n: u64,
}

/// The whole simulated provider state.
#[derive(Debug, Clone, Default)]
pub(crate) struct World {
    pub posts: Vec<Post>,
    /// Post indexes per platform, newest first.
    pub by_platform: HashMap<Platform, Vec<usize>>,
    pub comments: Vec<Comment>,
    pub conversations: Vec<Conversation>,
    /// Customer accounts per platform that comments are drawn from.
    pub authors: HashMap<Platform, Vec<Arc<Account>>>,
    pub ledger: Ledger,
    /// XOR-ed into every number that becomes an Ayrshare id, so seeds give distinct ids.
    pub ayr_salt: u64,
    /// When the profile and our accounts were linked: a month before the oldest post.
    pub linked: DateTime<Utc>,
    our_accounts: HashMap<Platform, Arc<Account>>,
    post_by_ayr: HashMap<String, usize>,
    post_by_social: HashMap<Platform, HashMap<String, usize>>,
    comment_by_social: HashMap<Platform, HashMap<String, usize>>,
    comment_by_ayr: HashMap<String, usize>,
    conversation_by_customer: HashMap<Platform, HashMap<String, usize>>,
}

impl World {
    /// The post with this Ayrshare Post ID.
    pub fn post_by_ayr(&self, id: &str) -> Option<usize> {
        self.post_by_ayr.get(id).copied()
    }

    /// The post with this Social Post ID on `platform`.
    pub fn post_by_social(&self, platform: Platform, id: &str) -> Option<usize> {
        self.post_by_social.get(&platform)?.get(id).copied()
    }

    /// The comment with this Social Comment ID on `platform`.
    pub fn comment_by_social(&self, platform: Platform, id: &str) -> Option<usize> {
        self.comment_by_social.get(&platform)?.get(id).copied()
    }

    /// The comment with this Ayrshare Comment ID.
    pub fn comment_by_ayr(&self, id: &str) -> Option<usize> {
        self.comment_by_ayr.get(id).copied()
    }

    /// The conversation with the customer `customer_id` on `platform`.
    pub fn conversation_by_customer(&self, platform: Platform, customer_id: &str) -> Option<usize> {
        self.conversation_by_customer
            .get(&platform)?
            .get(customer_id)
            .copied()
    }

    /// The brand's account on `platform`, shared by all its comments, replies and sent messages.
    pub fn our_account(&self, platform: Platform) -> Arc<Account> {
        self.our_accounts
            .get(&platform)
            .cloned()
            .unwrap_or_else(|| Arc::new(our_account(platform)))
    }

    /// Every comment of a post, depth first, parents before their replies.
    pub fn thread_of_post(&self, post: usize) -> Vec<usize> {
        let mut out = Vec::new();
        for &c in &self.posts[post].comments {
            self.collect_subtree(c, &mut out);
        }
        out
    }

    /// Every reply below a comment (not the comment itself), depth first.
    pub fn replies_below(&self, comment: usize) -> Vec<usize> {
        let mut out = Vec::new();
        for &r in &self.comments[comment].replies {
            self.collect_subtree(r, &mut out);
        }
        out
    }

    /// How many comments of a post (any depth, ours included) GET requests see at `now`: the
    /// count that history reports and that grows as comments arrive.
    pub fn visible_comments(&self, post: usize, now: DateTime<Utc>) -> usize {
        self.thread_of_post(post)
            .into_iter()
            .filter(|&c| self.comments[c].visible_at <= now)
            .count()
    }

    /// Every comment of a post made through Ayrshare (ours, top-level or replies), in thread
    /// order.
    pub fn ours_on_post(&self, post: usize) -> Vec<usize> {
        let mut ours = self.thread_of_post(post);
        ours.retain(|&c| self.comments[c].ayr_id.is_some());
        ours
    }

    fn collect_subtree(&self, root: usize, out: &mut Vec<usize>) {
        let mut stack = vec![root];
        while let Some(c) = stack.pop() {
            out.push(c);
            stack.extend(self.comments[c].replies.iter().rev());
        }
    }

    /// Adds a post; `by_platform` order is fixed by the caller.
    pub(crate) fn insert_post(&mut self, post: Post) -> usize {
        let idx = self.posts.len();
        self.post_by_ayr.insert(post.ayr_id.clone(), idx);
        self.post_by_social
            .entry(post.platform)
            .or_default()
            .insert(post.social_id.clone(), idx);
        self.by_platform.entry(post.platform).or_default().push(idx);
        self.posts.push(post);
        idx
    }

    /// Adds a comment under its post or parent (appended: callers add in time order or sort).
    pub fn insert_comment(&mut self, new: NewComment) -> usize {
        let post = &self.posts[new.post];
        let platform = post.platform;
        let social_id = ids::comment_social_id(platform, new.n, &post.social_id, &new.author.id);
        // About half of the top-level tweets name the post in `referencedTweets`; the others
        // carry no reference. Both forms are top-level comments to a reader.
        let refs_post = new.parent.is_none() && new.n.is_multiple_of(2);
        let idx = self.comments.len();
        self.comment_by_social
            .entry(platform)
            .or_default()
            .insert(social_id.clone(), idx);
        match new.parent {
            Some(parent) => self.comments[parent].replies.push(idx),
            None => self.posts[new.post].comments.push(idx),
        }
        self.comments.push(Comment {
            platform,
            post: new.post,
            parent: new.parent,
            social_id,
            ayr_id: None,
            text: new.text,
            author: new.author,
            created: new.created,
            visible_at: new.visible_at,
            from_us: new.from_us,
            like_count: (new.n % 17) as u32,
            replies: Vec::new(),
            refs_post,
            deleted: false,
        });
        idx
    }

    /// Adds a comment by our account, with an Ayrshare Comment ID (not yet in the ledger).
    fn insert_ours(&mut self, new: NewComment) -> usize {
        let n = new.n;
        let idx = self.insert_comment(new);
        let ayr_id = ids::ayrshare_id(self.ayr_salt ^ n);
        self.comment_by_ayr.insert(ayr_id.clone(), idx);
        self.comments[idx].ayr_id = Some(ayr_id);
        idx
    }

    /// Posts our reply under `parent` and records it in the ledger. On X the thread shows it
    /// with the handle it answers in front (`@handle text`), as the network rewrites it; the
    /// ledger keeps the text as requested.
    pub fn add_reply(
        &mut self,
        parent: usize,
        text: String,
        now: DateTime<Utc>,
        visible_at: DateTime<Utc>,
        n: u64,
    ) -> usize {
        let platform = self.comments[parent].platform;
        // X shows a reply with the handle it answers in front, as the network writes it.
        let shown = match platform {
            Platform::Twitter => {
                let handle = format!("@{}", self.comments[parent].author.handle);
                if text.starts_with(&handle) {
                    text.clone()
                } else {
                    format!("{handle} {text}")
                }
            }
            _ => text.clone(),
        };
        let idx = self.insert_ours(NewComment {
            post: self.comments[parent].post,
            parent: Some(parent),
            text: shown,
            author: self.our_account(platform),
            from_us: true,
            created: now,
            visible_at,
            n,
        });
        let reply = &self.comments[idx];
        self.ledger.replies.push(LedgerReply {
            platform,
            parent_id: self.comments[parent].social_id.clone(),
            comment_id: reply.social_id.clone(),
            content: text,
            at: iso_millis(now),
        });
        idx
    }

    /// Posts our top-level comment on `post` and records it in the ledger. On X it answers
    /// the post's tweet, so it names the post in `referencedTweets`.
    pub fn add_comment(
        &mut self,
        post: usize,
        text: String,
        now: DateTime<Utc>,
        visible_at: DateTime<Utc>,
        n: u64,
    ) -> usize {
        let platform = self.posts[post].platform;
        let idx = self.insert_ours(NewComment {
            post,
            parent: None,
            text,
            author: self.our_account(platform),
            from_us: true,
            created: now,
            visible_at,
            n,
        });
        self.comments[idx].refs_post = true;
        let comment = &self.comments[idx];
        self.ledger.comments.push(LedgerComment {
            platform,
            post_id: self.posts[post].ayr_id.clone(),
            comment_id: comment.social_id.clone(),
            content: comment.text.clone(),
            at: iso_millis(now),
        });
        idx
    }

    /// Deletes a comment with every reply below it and records it in the ledger.
    pub fn delete_comment(&mut self, idx: usize, now: DateTime<Utc>) {
        let c = &self.comments[idx];
        let (platform, post, parent) = (c.platform, c.post, c.parent);
        let siblings = match parent {
            Some(parent) => &mut self.comments[parent].replies,
            None => &mut self.posts[post].comments,
        };
        siblings.retain(|&s| s != idx);
        let mut gone = Vec::new();
        self.collect_subtree(idx, &mut gone);
        for g in gone {
            let c = &mut self.comments[g];
            c.deleted = true;
            if let Some(by_social) = self.comment_by_social.get_mut(&platform) {
                by_social.remove(&c.social_id);
            }
            if let Some(ayr_id) = &c.ayr_id {
                self.comment_by_ayr.remove(ayr_id);
            }
        }
        self.ledger.deletions.push(LedgerDeletion {
            platform,
            comment_id: self.comments[idx].social_id.clone(),
            at: iso_millis(now),
        });
    }

    /// Adds a conversation with its customer.
    pub(crate) fn insert_conversation(&mut self, conversation: Conversation) -> usize {
        let idx = self.conversations.len();
        self.conversation_by_customer
            .entry(conversation.platform)
            .or_default()
            .insert(conversation.customer.id.clone(), idx);
        self.conversations.push(conversation);
        idx
    }

    /// Sends our message in a conversation and records it in the ledger; returns its id.
    pub fn send_message(
        &mut self,
        conversation: usize,
        text: String,
        attachments: Vec<String>,
        now: DateTime<Utc>,
        visible_at: DateTime<Utc>,
        n: u64,
    ) -> String {
        let conv = &mut self.conversations[conversation];
        let id = ids::message_id(conv.platform, n);
        conv.messages.push(Message {
            id: id.clone(),
            sent: true,
            text: text.clone(),
            created: now,
            visible_at,
            attachments,
        });
        self.ledger.messages.push(LedgerMessage {
            platform: conv.platform,
            recipient_id: conv.customer.id.clone(),
            message_id: id.clone(),
            message: text,
            at: iso_millis(now),
        });
        id
    }

    /// A customer's message arriving in a conversation.
    pub fn receive_message(
        &mut self,
        conversation: usize,
        text: String,
        now: DateTime<Utc>,
        visible_at: DateTime<Utc>,
        n: u64,
    ) {
        let conv = &mut self.conversations[conversation];
        conv.messages.push(Message {
            id: ids::message_id(conv.platform, n),
            sent: false,
            text,
            created: now,
            visible_at,
            attachments: Vec::new(),
        });
    }
}
