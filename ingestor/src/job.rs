//! The `ingest` job: the three steps of ingestion (DESIGN §6), told apart by the task's
//! payload ([`IngestStep`]).
//!
//! - **Platform** (the scheduler's `{}` task, or `POST /v1/sync`): reads the post history of
//!   the last `SOCIAL_MEDIA_API_HISTORY_LAST_DAYS` days, upserts `posts` and, in the same
//!   transaction, enqueues one comments fetch per due post (dedup key per post, so a post is
//!   never fetched by two workers at once) and, on messaging platforms, one direct messages
//!   read unless messaging is disabled and not due for a check. A history 404 (Bluesky) is
//!   "no history": the posts already known are still fetched.
//! - **Comments**: reads one post's comments through the comment adapter, takes out our own
//!   replies, and stores the rest with one audit row per new mention; sets the post's next
//!   fetch from the provider's `nextUpdate`, and no sooner than the quiet interval for a post
//!   without new comments for long.
//! - **Messages**: reads the direct messages through the message adapter; a 403 marks the
//!   platform's messaging disabled until the next check (logged once, not an error, and not a
//!   provider failure for the breaker).
//!
//! Every provider call is made outside a transaction; each step then commits its rows and
//! its task's success together ([`JobContext::succeed_in`]).

use crate::settings::IngestSettings;
use anyhow::Context as _;
use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::{DatabaseConnection, TransactionTrait};
use serde_json::json;
use shared::audit::Actor;
use shared::bus::JobKind;
use shared::config::{ResilienceSettings, Settings};
use shared::db::entities::posts;
use shared::domain::{Platform, PostId};
use shared::ingest::platform_status::{self, Messaging};
use shared::ingest::{IngestStep, messages_dedup_key, store};
use shared::outbox::{self, NewTask, new_trace_id};
use shared::provider::adapters::comment::{CommentAdapter, PostRef};
use shared::provider::adapters::message::MessageAdapter;
use shared::provider::adapters::{FetchAdapter, NewMention};
use shared::provider::{
    Client, DeferReason, HistoryQuery, MessagesQuery, ProviderError, ProviderKey,
};
use shared::resilience::Chain;
use shared::worker::{Job, JobContext, JobError, Outcome};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Mentions stored, by platform and type.
pub const MENTIONS_METRIC: &str = "ingest_mentions_total";

/// Runs the ingest tasks of any platform; holds one resilience chain per platform, built on
/// first use (clones of a chain share its breaker's memory).
pub struct IngestJob {
    client: Client,
    resilience: ResilienceSettings,
    history_last_days: u32,
    poll_interval: Duration,
    ingest: IngestSettings,
    actor: String,
    chains: Mutex<HashMap<Platform, Chain>>,
}

impl IngestJob {
    /// The job for `settings`, acting as `process_name` in audit rows and breaker records.
    pub fn new(
        settings: &Settings,
        ingest: IngestSettings,
        process_name: &str,
    ) -> anyhow::Result<IngestJob> {
        let client = Client::new(&settings.provider, settings.resilience.request_timeout)
            .context("cannot build the provider client")?;
        Ok(IngestJob {
            client,
            resilience: settings.resilience.clone(),
            history_last_days: settings.history_last_days,
            poll_interval: settings.poll_interval,
            ingest,
            actor: process_name.to_owned(),
            chains: Mutex::new(HashMap::new()),
        })
    }

    fn chain(&self, db: &DatabaseConnection, platform: Platform) -> Chain {
        let mut chains = self
            .chains
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        chains
            .entry(platform)
            .or_insert_with(|| {
                Chain::new(
                    ProviderKey::platform(platform),
                    self.client.clone(),
                    db.clone(),
                    &self.resilience,
                    &self.actor,
                )
                .rescheduling()
            })
            .clone()
    }

    async fn platform(&self, ctx: &JobContext) -> Result<Outcome, JobError> {
        let platform = ctx.platform();
        let chain = self.chain(ctx.db(), platform);
        let query = HistoryQuery {
            last_days: self.history_last_days,
            limit: Some(self.ingest.history_limit),
        };
        let history = match chain.history(&query).await {
            Ok(history) => history,
            Err(e) if e.is_not_found() => {
                tracing::debug!(%platform, "no post history (404): fetching the known posts");
                Vec::new()
            }
            Err(e) => return provider_failure(e),
        };
        let read_messages = platform_status::messaging_due(ctx.db(), platform).await?;
        let trace_id = ctx.trace_id().map_or_else(new_trace_id, str::to_owned);
        let txn = ctx.db().begin().await?;
        store::upsert_posts(&txn, platform, &history).await?;
        let fetches =
            store::enqueue_due_fetches(&txn, platform, self.history_last_days, &trace_id).await?;
        if read_messages {
            let task = NewTask::new(JobKind::Ingest, platform)
                .with_dedup_key(messages_dedup_key(platform))
                .with_payload(json!({"step": "messages"}))
                .with_trace_id(trace_id.clone());
            outbox::enqueue(&txn, task)
                .await
                .map_err(JobError::transient)?;
        }
        platform_status::record_ingest(&txn, platform).await?;
        ctx.succeed_in(&txn).await?;
        txn.commit().await?;
        tracing::debug!(%platform, posts = history.len(), fetches, read_messages, "platform ingest done");
        Ok(Outcome::Succeeded)
    }

    async fn comments(&self, ctx: &JobContext, post_id: PostId) -> Result<Outcome, JobError> {
        let Some(post) = store::find_post(ctx.db(), post_id).await? else {
            // The post is gone: nothing to fetch.
            let txn = ctx.db().begin().await?;
            ctx.succeed_in(&txn).await?;
            txn.commit().await?;
            return Ok(Outcome::Succeeded);
        };
        let platform = post.platform;
        let chain = self.chain(ctx.db(), platform);
        let source = PostRef {
            ayrshare_post_id: post.ayrshare_post_id.clone(),
            social_post_id: Some(post.platform_post_id.clone()),
        };
        let fetched = match CommentAdapter.fetch(&chain, &source).await {
            Ok(fetched) => fetched,
            Err(e) => return provider_failure(e),
        };
        let mut mentions = fetched.mentions;
        let ours = store::our_replies_on_post(ctx.db(), platform, &post.ayrshare_post_id).await?;
        let linked = store::take_our_replies(&mut mentions, &ours);
        for (reply, comment) in &linked {
            tracing::debug!(%reply, comment, "our own reply seen in the thread");
        }
        let txn = ctx.db().begin().await?;
        let inserted = store::insert_mentions(&txn, &mentions, &Actor::system(&self.actor)).await?;
        let next = self.next_fetch(&post, fetched.next_update, inserted > 0, Utc::now());
        store::record_fetch(&txn, post.id, next, inserted > 0).await?;
        ctx.succeed_in(&txn).await?;
        txn.commit().await?;
        count(platform, &mentions, inserted);
        Ok(Outcome::Succeeded)
    }

    async fn messages(&self, ctx: &JobContext) -> Result<Outcome, JobError> {
        let platform = ctx.platform();
        if !platform.has_messages() {
            let txn = ctx.db().begin().await?;
            ctx.succeed_in(&txn).await?;
            txn.commit().await?;
            return Ok(Outcome::Succeeded);
        }
        let chain = self.chain(ctx.db(), platform);
        let (state, mentions) = match MessageAdapter
            .fetch(&chain, &MessagesQuery::default())
            .await
        {
            Ok(fetched) => (Messaging::Enabled, fetched.mentions),
            Err(e) if e.is_messaging_disabled() => (
                Messaging::Disabled {
                    reason: e.to_string(),
                    recheck_after: self.ingest.messaging_recheck,
                },
                Vec::new(),
            ),
            Err(e) => return provider_failure(e),
        };
        let txn = ctx.db().begin().await?;
        let inserted = store::insert_mentions(&txn, &mentions, &Actor::system(&self.actor)).await?;
        let changed = platform_status::record_messaging(&txn, platform, &state).await?;
        ctx.succeed_in(&txn).await?;
        txn.commit().await?;
        count(platform, &mentions, inserted);
        if changed {
            match &state {
                Messaging::Enabled => tracing::info!(%platform, "direct messages are available"),
                Messaging::Disabled {
                    reason,
                    recheck_after,
                } => tracing::warn!(
                    %platform, reason, recheck_after_s = recheck_after.as_secs(),
                    "direct messages are not enabled for this platform; checking again later"
                ),
            }
        }
        Ok(Outcome::Succeeded)
    }

    /// The provider's `nextUpdate` (or one poll interval), and for a quiet post no sooner
    /// than the quiet interval.
    fn next_fetch(
        &self,
        post: &posts::Model,
        next_update: Option<DateTime<Utc>>,
        found_new: bool,
        now: DateTime<Utc>,
    ) -> DateTime<Utc> {
        let delta = |d: Duration| TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX);
        let next = next_update
            .unwrap_or_else(|| now + delta(self.poll_interval))
            .max(now);
        let last_news = post
            .last_new_comment_at
            .unwrap_or(post.created_at)
            .with_timezone(&Utc);
        let quiet = !found_new && now - last_news > delta(self.ingest.quiet_after);
        if quiet {
            next.max(now + delta(self.ingest.quiet_interval))
        } else {
            next
        }
    }
}

fn count(platform: Platform, mentions: &[NewMention], inserted: u64) {
    if inserted > 0 {
        let kind = mentions
            .first()
            .map_or("comment", |m| m.mention_type.as_str());
        metrics::counter!(MENTIONS_METRIC, "platform" => platform.as_str(), "type" => kind)
            .increment(inserted);
    }
}

/// A provider call that did not succeed, as the job's end: an open breaker or a spent budget
/// reschedules without counting an attempt; a rejection is final; the rest is retried.
fn provider_failure(error: ProviderError) -> Result<Outcome, JobError> {
    match &error {
        ProviderError::Deferred {
            reason: DeferReason::BreakerOpen(_),
            retry_at,
            ..
        } => Err(JobError::BreakerOpen { until: *retry_at }),
        ProviderError::Deferred { retry_at, .. } => Ok(Outcome::Deferred {
            until: *retry_at,
            reason: error.to_string(),
        }),
        _ if error.is_definite_rejection() => Err(JobError::permanent(error)),
        _ => Err(JobError::Transient {
            retry_at: error.retry_at(),
            error: error.into(),
        }),
    }
}

#[async_trait::async_trait]
impl Job for IngestJob {
    fn name(&self) -> &'static str {
        "ingest"
    }

    fn kind(&self) -> JobKind {
        JobKind::Ingest
    }

    #[tracing::instrument(skip_all, fields(task_id = %ctx.task_id(), platform = %ctx.platform()))]
    async fn run(&self, ctx: &JobContext) -> Result<Outcome, JobError> {
        let step = IngestStep::from_payload(&ctx.task().payload)
            .map_err(|e| JobError::permanent(anyhow::anyhow!("invalid ingest payload: {e}")))?;
        match step {
            IngestStep::Platform => self.platform(ctx).await,
            IngestStep::Comments { post_id } => self.comments(ctx, post_id).await,
            IngestStep::Messages => self.messages(ctx).await,
        }
    }
}
