//! The `ingest` job: the three steps of ingestion (DESIGN §6), told apart by the task's
//! payload ([`IngestStep`]).
//!
//! - **Platform** (the scheduler's `{}` task, or `POST /v1/sync`): reads the post history of
//!   the last `SOCIAL_MEDIA_API_HISTORY_LAST_DAYS` days, upserts `posts` and, in the same
//!   transaction, enqueues the first comments fetch of each post never read (dedup key per
//!   post, so a post is never fetched by two workers at once; re-reads are the planner's,
//!   [`shared::ingest::plan`]) and, on messaging platforms, one direct messages read unless
//!   messaging is disabled and not due for a check. A history 404 (Bluesky) is "no history".
//!   Then, once a day, it asks the provider for our own accounts (`GET /user`: one call for
//!   every platform), so our replies are recognised by author; a failure only waits for the
//!   next ingest.
//! - **Comments**: reads one post's comments through the comment adapter, takes out our own
//!   replies (and anything else our account wrote), and stores the rest with one audit row per new mention; records the post's
//!   comment rate and its next possible read (the provider's `nextUpdate`).
//! - **Messages**: reads the direct messages through the message adapter; a 403 marks the
//!   platform's messaging disabled until the next check (logged once, not an error, and not a
//!   provider failure for the breaker).
//!
//! History, first reads and direct messages spend the budget's `discover` class, re-reads
//! `refresh`; a step waits up to [`BUDGET_WAIT`] for a slot, then is deferred.
//!
//! Every provider call is made outside a transaction; each step then commits its rows and
//! its task's success together ([`JobContext::succeed_in`]).

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, TransactionTrait};
use shared::adapters::{CommentAdapter, MessageAdapter, NewMention, PostRef};
use shared::audit::Actor;
use shared::config::{IngestSettings, Settings};
use shared::domain::JobKind;
use shared::domain::{BrandId, Platform, PostId, saturating_add};
use shared::ingest::platform_status::{self, Messaging};
use shared::ingest::{IngestStep, plan, store};
use shared::outbox::{self, NewTask, new_trace_id};
use shared::provider::{Ayrshare, Client, HistoryQuery, MessagesQuery, PlatformApis};
use shared::resilience::BudgetClass;
use shared::worker::{Job, JobContext, JobError, Outcome, provider_failure};
use std::time::Duration;

/// Mentions stored, by platform and type.
pub const MENTIONS_METRIC: &str = "ingest_mentions_total";

/// Histogram of the time from a mention's `created` at the provider to its commit here, for
/// mentions posted after their post (or inbox) was last read.
pub const TIME_TO_INBOX_METRIC: &str = "mention_time_to_inbox_seconds";

/// How long a step waits for a budget slot before it is deferred.
pub const BUDGET_WAIT: Duration = Duration::from_secs(10);

/// Runs the ingest tasks of any platform, through one [`Ayrshare`] per platform.
pub struct IngestJob {
    history_last_days: u32,
    poll_interval: Duration,
    rate_horizon: Duration,
    ingest: IngestSettings,
    actor: String,
    apis: PlatformApis,
}

impl IngestJob {
    /// The job for `settings`, acting as `process_name` in audit rows and breaker records.
    pub fn new(settings: &Settings, process_name: &str) -> anyhow::Result<IngestJob> {
        let client = Client::new(&settings.provider, settings.resilience.request_timeout)
            .context("cannot build the provider client")?;
        Ok(IngestJob {
            history_last_days: settings.history_last_days,
            poll_interval: settings.poll_interval,
            rate_horizon: settings.poll_rate_horizon,
            ingest: settings.ingest.clone(),
            actor: process_name.to_owned(),
            apis: PlatformApis::new(
                client,
                &settings.resilience,
                process_name,
                BudgetClass::Discover,
                BUDGET_WAIT,
                settings.brands_key.clone(),
            ),
        })
    }

    /// The operations for the task's brand on `platform`; `None` while the brand is disabled
    /// (its polling stops).
    async fn api(
        &self,
        ctx: &JobContext,
        platform: Platform,
    ) -> Result<Option<Ayrshare>, JobError> {
        let brand = self.apis.brand(ctx.db(), ctx.brand()).await?;
        if brand.disabled {
            return Ok(None);
        }
        self.apis
            .get(ctx.db(), &brand, platform)
            .map(Some)
            .map_err(JobError::permanent)
    }

    /// Ends the task without work (its brand is disabled, or there is nothing to read).
    async fn skip(ctx: &JobContext) -> Result<Outcome, JobError> {
        let txn = ctx.db().begin().await?;
        ctx.succeed_in(&txn).await?;
        txn.commit().await?;
        Ok(Outcome::Succeeded)
    }

    async fn platform(&self, ctx: &JobContext) -> Result<Outcome, JobError> {
        let platform = ctx.platform();
        let brand = ctx.brand();
        let Some(api) = &self.api(ctx, platform).await? else {
            return Self::skip(ctx).await;
        };
        let query = HistoryQuery {
            last_days: self.history_last_days,
            limit: Some(self.ingest.history_limit),
        };
        let history = match api.history(&query).await {
            Ok(history) => history,
            Err(e) if e.is_not_found() => {
                tracing::debug!(%platform, "no post history (404): fetching the known posts");
                Vec::new()
            }
            Err(e) => return provider_failure(e),
        };
        let read_messages = platform_status::messaging_due(ctx.db(), brand, platform).await?;
        let trace_id = ctx.trace_id().map_or_else(new_trace_id, str::to_owned);
        let txn = ctx.db().begin().await?;
        store::upsert_posts(&txn, brand, platform, &history).await?;
        let fetches =
            store::enqueue_first_reads(&txn, brand, platform, self.history_last_days, &trace_id)
                .await?;
        if read_messages {
            let task =
                NewTask::of(brand, platform, &IngestStep::Messages).with_trace_id(trace_id.clone());
            outbox::enqueue(&txn, task)
                .await
                .map_err(JobError::transient)?;
        }
        platform_status::record_ingest(&txn, brand, platform).await?;
        ctx.succeed_in(&txn).await?;
        txn.commit().await?;
        tracing::debug!(%brand, %platform, posts = history.len(), fetches, read_messages, "platform ingest done");
        if platform_status::our_account_due(ctx.db(), brand, platform).await? {
            self.learn_our_accounts(ctx.db(), brand, api).await?;
        }
        Ok(Outcome::Succeeded)
    }

    /// Records our account on every platform from one `GET /user` (after the history, which
    /// matters more; a failure only waits for the next ingest).
    async fn learn_our_accounts(
        &self,
        db: &DatabaseConnection,
        brand: BrandId,
        api: &Ayrshare,
    ) -> Result<(), JobError> {
        match api.connected_accounts().await {
            Ok(accounts) => {
                for platform in Platform::ALL {
                    let id = accounts
                        .iter()
                        .find(|a| a.platform == platform.as_str())
                        .and_then(|a| a.id.as_deref());
                    platform_status::record_our_account(db, brand, *platform, id).await?;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read our accounts (GET /user); asking again at the next ingest")
            }
        }
        Ok(())
    }

    async fn comments(&self, ctx: &JobContext, post_id: PostId) -> Result<Outcome, JobError> {
        let Some(post) = store::find_post(ctx.db(), post_id).await? else {
            // The post is gone: nothing to fetch.
            return Self::skip(ctx).await;
        };
        let platform = post.platform;
        let brand = post.brand_id;
        let class = match post.last_fetched_at {
            None => BudgetClass::Discover,
            Some(_) => BudgetClass::Refresh,
        };
        let Some(api) = self.api(ctx, platform).await? else {
            return Self::skip(ctx).await;
        };
        let api = &api.for_class(class);
        let source = PostRef {
            ayrshare_post_id: post.ayrshare_post_id.clone(),
            social_post_id: Some(post.platform_post_id.clone()),
        };
        let fetched = match CommentAdapter.fetch(api, &source).await {
            Ok(fetched) => fetched,
            Err(e) => return provider_failure(e),
        };
        let mut mentions = fetched.mentions;
        let ours =
            store::our_replies_on_post(ctx.db(), brand, platform, &post.ayrshare_post_id).await?;
        let account = platform_status::our_account(ctx.db(), brand, platform).await?;
        let linked = store::take_our_replies(&mut mentions, &ours, account.as_deref());
        for (reply, comment) in &linked {
            tracing::debug!(%reply, comment, "our own reply seen in the thread");
        }
        let txn = ctx.db().begin().await?;
        let inserted =
            store::insert_mentions(&txn, brand, &mentions, &Actor::system(&self.actor)).await?;
        let now = Utc::now();
        let rate = plan::updated_rate(
            post.comment_rate,
            post.comment_rate_at.map(|t| t.with_timezone(&Utc)),
            now,
            &inserted.posted_at,
            self.rate_horizon,
        );
        let next = fetched
            .next_update
            .unwrap_or_else(|| saturating_add(now, self.poll_interval));
        let read = store::FetchRecord {
            at: now,
            next_fetch_at: next.max(now),
            comment_rate: rate,
            found_new: inserted.count() > 0,
            hint: post.comments_hint,
        };
        store::record_fetch(&txn, post.id, &read).await?;
        ctx.succeed_in(&txn).await?;
        txn.commit().await?;
        count_stored(platform, &mentions, &inserted);
        let last_read = post.last_fetched_at.map(|t| t.with_timezone(&Utc));
        observe_time_to_inbox(platform, &inserted, last_read);
        Ok(Outcome::Succeeded)
    }

    async fn messages(&self, ctx: &JobContext) -> Result<Outcome, JobError> {
        let platform = ctx.platform();
        let brand = ctx.brand();
        if !platform.has_messages() {
            return Self::skip(ctx).await;
        }
        let Some(api) = &self.api(ctx, platform).await? else {
            return Self::skip(ctx).await;
        };
        let (state, mentions) = match MessageAdapter.fetch(api, &MessagesQuery::default()).await {
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
        let last_read = platform_status::list(ctx.db(), brand)
            .await?
            .into_iter()
            .find(|s| s.platform == platform)
            .and_then(|s| s.messaging_checked_at);
        let txn = ctx.db().begin().await?;
        let inserted =
            store::insert_mentions(&txn, brand, &mentions, &Actor::system(&self.actor)).await?;
        let changed = platform_status::record_messaging(&txn, brand, platform, &state).await?;
        ctx.succeed_in(&txn).await?;
        txn.commit().await?;
        count_stored(platform, &mentions, &inserted);
        observe_time_to_inbox(platform, &inserted, last_read);
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
}

fn count_stored(platform: Platform, mentions: &[NewMention], inserted: &store::Inserted) {
    if inserted.count() > 0 {
        let kind = mentions
            .first()
            .map_or("comment", |m| m.mention_type.as_str());
        metrics::counter!(MENTIONS_METRIC, "platform" => platform.as_str(), "type" => kind)
            .increment(inserted.count());
    }
}

/// Records the time to inbox of the mentions just committed that were posted after the
/// source's previous read (`last_read`; none: a first read, whose backlog says nothing of
/// freshness).
fn observe_time_to_inbox(
    platform: Platform,
    inserted: &store::Inserted,
    last_read: Option<DateTime<Utc>>,
) {
    let Some(last_read) = last_read else {
        return;
    };
    let now = Utc::now();
    let histogram = metrics::histogram!(TIME_TO_INBOX_METRIC, "platform" => platform.as_str());
    for posted in inserted.posted_at.iter().flatten() {
        if *posted >= last_read {
            histogram.record((now - *posted).to_std().unwrap_or_default().as_secs_f64());
        }
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
