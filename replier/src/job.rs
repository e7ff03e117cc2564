//! The reply job (DESIGN §8.2–§8.4): takes one reply to `sent` or `failed`, exactly once.
//!
//! For the claimed task's reply:
//!
//! - `sent` or `failed`: nothing to do;
//! - `sending` (its replier stopped mid-send: it becomes `unknown` now, the latest its send
//!   call can have ended) or `unknown` (an earlier attempt may have reached the provider):
//!   **reconcile** first: read the thread back. Found: record it as sent. Not found: wait (the
//!   task is deferred, not counted as an attempt) until the request timeout plus the
//!   provider's cache window have passed, in the database's clock, since the last send call
//!   ended (an attempt may be applied as late as its request ends), then send. A read-back that keeps failing ends the reply `failed`
//!   (`undecided`) once the undecided limit has passed since the last attempt;
//! - `pending`, or reconciled as not sent: commit `sending` (write-ahead), call the provider,
//!   then record what it said: success → `sent`; definite rejection → `failed`; 5xx, timeout,
//!   dropped connection → `unknown`, reconciled at once (a lost response is usually visible
//!   immediately) and later. An open breaker or spent budget (or a 429 or refused connection
//!   after the retries) reached nobody: the attempt is given back and the task rescheduled.
//!
//! No provider call is ever made inside a database transaction, and no reply is sent again
//! after an unknown outcome before the read-back has shown, past the cache window, that the
//! provider does not have it.

use crate::PROCESS_NAME;
use chrono::{DateTime, Utc};
use sea_orm::TransactionTrait;
use shared::adapters::{self, ReplyAdapter, SentReply};
use shared::audit::Actor;
use shared::config::{ReplySettings, Settings};
use shared::db::entities::{mentions, replies};
use shared::db::mentions as mention_queries;
use shared::domain::JobKind;
use shared::domain::{ReplyStatus, saturating_add};
use shared::ingest::platform_status;
use shared::provider::{Ayrshare, Client, ClientBuildError, PlatformApis, ProviderError};
use shared::reply::protocol::{self, ReplyFailure};
use shared::reply::{self, ReplyTask};
use shared::resilience::BudgetClass;
use shared::worker::{self, Job, JobContext, JobError, Outcome};
use std::time::Duration;

/// Counts replies by how their attempts ended (`sent`, `reconciled`, `failed`, `unknown`,
/// `not_sent`).
pub const REPLIES_METRIC: &str = "replies_total";

/// Histogram of the time from a reply's request to the provider's acceptance (as seen here:
/// its answer, or the read-back that found it).
pub const TIME_TO_PROVIDER_METRIC: &str = "reply_time_to_provider_seconds";

/// How long a send or read-back waits for a budget slot before the task is deferred. Replies
/// may use the budget's reserve, so this is rare: only replies themselves can spend it.
const BUDGET_WAIT: Duration = Duration::from_secs(10);

/// Shortest and longest wait before reading a thread back again after the read failed.
const READ_RETRY_MIN: Duration = Duration::from_secs(1);
const READ_RETRY_MAX: Duration = Duration::from_secs(60);

/// Sends replies; see the module documentation.
pub struct ReplyJob {
    request_timeout: Duration,
    replies: ReplySettings,
    apis: PlatformApis,
    actor: Actor,
}

/// What the reply protocol does next.
enum NextStep {
    /// The job is over with this result.
    Done(Result<Outcome, JobError>),
    /// Send (again): the reply is not at the provider.
    Send(replies::Model),
    /// Read back: the attempt's outcome is unknown.
    Reconcile(replies::Model),
}

fn deferred(until: DateTime<Utc>, reason: impl Into<String>) -> NextStep {
    NextStep::Done(Ok(Outcome::Deferred {
        until,
        reason: reason.into(),
    }))
}

fn in_utc(time: sea_orm::prelude::DateTimeWithTimeZone) -> DateTime<Utc> {
    time.with_timezone(&Utc)
}

fn count_reply(outcome: &'static str) {
    metrics::counter!(REPLIES_METRIC, "outcome" => outcome).increment(1);
}

impl ReplyJob {
    /// The job for `settings` (provider, resilience and reply settings).
    pub fn new(settings: &Settings) -> Result<ReplyJob, ClientBuildError> {
        Ok(ReplyJob {
            request_timeout: settings.resilience.request_timeout,
            replies: settings.replies,
            apis: PlatformApis::new(
                Client::new(&settings.provider, settings.resilience.request_timeout)?,
                &settings.resilience,
                PROCESS_NAME,
                BudgetClass::Reply,
                BUDGET_WAIT,
                settings.brands_key.clone(),
            ),
            actor: Actor::system(PROCESS_NAME),
        })
    }

    /// When to read back again after a failed read.
    fn read_retry(&self, error: &ProviderError) -> DateTime<Utc> {
        error.retry_at().unwrap_or_else(|| {
            let wait = (self.replies.cache_window / 4).clamp(READ_RETRY_MIN, READ_RETRY_MAX);
            saturating_add(Utc::now(), wait)
        })
    }

    /// Reads the thread back for `reply` (`sending` or `unknown`). With `may_send`, a reply
    /// not found past the cache window is to be sent again.
    async fn reconcile(
        &self,
        ctx: &JobContext,
        api: &Ayrshare,
        adapter: &dyn ReplyAdapter,
        mention: &mentions::Model,
        reply: replies::Model,
        may_send: bool,
    ) -> Result<NextStep, JobError> {
        // In the database's time, from the end of the last send call (`record_unknown`).
        let now = protocol::database_now(ctx.db()).await?;
        let last_attempt = in_utc(reply.last_attempt_at.unwrap_or(reply.created_at));
        let since = (now - last_attempt).to_std().unwrap_or_default();
        // An attempt may be applied as late as the end of its request, and then hidden by the
        // provider's cache for the window: only past both is "not found" conclusive.
        let settle = self.request_timeout + self.replies.cache_window;
        let ours =
            platform_status::our_account(ctx.db(), mention.brand_id, mention.platform).await?;
        match adapter
            .find_sent(api, mention, &reply, ours.as_deref())
            .await
        {
            Ok(Some(found)) => self.finish_sent(ctx, &reply, &found, true).await,
            Ok(None) if since < settle => Ok(deferred(
                saturating_add(last_attempt, settle),
                "the reply is not visible at the provider yet; waiting out its read cache",
            )),
            Ok(None) if may_send => {
                tracing::info!(reply_id = %reply.id, "reply not at the provider after the cache window; sending it again");
                Ok(NextStep::Send(reply))
            }
            Ok(None) => Ok(deferred(Utc::now(), "the reply is not at the provider")),
            Err(e) if since >= self.replies.undecided_limit => {
                let failure = ReplyFailure {
                    reason: "undecided",
                    message: format!(
                        "whether the provider has the reply could not be decided within {}s \
                         of the last attempt (reading it back failed: {e})",
                        self.replies.undecided_limit.as_secs()
                    ),
                    provider_status: e.status(),
                    provider_code: e.provider_code(),
                };
                self.finish_failed(ctx, &reply, failure).await
            }
            Err(e) => Ok(deferred(
                self.read_retry(&e),
                format!("cannot read the thread back: {e}"),
            )),
        }
    }

    /// One attempt at sending `seen` (`pending`, or reconciled as not sent).
    async fn attempt(
        &self,
        ctx: &JobContext,
        api: &Ayrshare,
        adapter: &dyn ReplyAdapter,
        mention: &mentions::Model,
        seen: replies::Model,
    ) -> Result<NextStep, JobError> {
        let db = ctx.db();
        let Some(attempt) = protocol::begin_attempt(db, &seen, &self.actor).await? else {
            return Ok(deferred(
                Utc::now(),
                "the reply changed meanwhile; looking again",
            ));
        };
        let error = match adapter.send(api, mention, &attempt.content).await {
            Ok(sent) => return self.finish_sent(ctx, &attempt, &sent, false).await,
            Err(e) => e,
        };
        if error.is_deferred() || error.is_transient() {
            // Nothing reached the provider: the attempt is given back.
            count_reply("not_sent");
            protocol::abandon_attempt(db, &attempt, &seen, &error.to_string(), &self.actor).await?;
            return Ok(NextStep::Done(worker::provider_failure(error)));
        }
        if error.is_definite_rejection() {
            let message = match error.failure() {
                Some(shared::provider::Failure::Status { message, .. }) => message.clone(),
                _ => error.to_string(),
            };
            let failure = ReplyFailure {
                reason: "rejected",
                message,
                provider_status: error.status(),
                provider_code: error.provider_code(),
            };
            return self.finish_failed(ctx, &attempt, failure).await;
        }
        count_reply("unknown");
        match protocol::record_unknown(db, &attempt, &error.to_string(), &self.actor).await? {
            Some(unknown) => Ok(NextStep::Reconcile(unknown)),
            None => Ok(deferred(
                Utc::now(),
                "the reply changed meanwhile; looking again",
            )),
        }
    }

    /// Records `reply` as sent and the task as succeeded, in one transaction.
    async fn finish_sent(
        &self,
        ctx: &JobContext,
        reply: &replies::Model,
        sent: &SentReply,
        reconciled: bool,
    ) -> Result<NextStep, JobError> {
        let txn = ctx.db().begin().await?;
        // The reply's outcome is the truth and is recorded even if the lease was lost
        // meanwhile; the worker now holding the task will find the reply sent.
        let task_recorded = ctx.succeed_in(&txn).await;
        let recorded = protocol::record_sent(&txn, reply, sent, reconciled, &self.actor).await?;
        if recorded.is_none() {
            txn.rollback().await?;
            return Ok(deferred(
                Utc::now(),
                "the reply changed meanwhile; looking again",
            ));
        }
        txn.commit().await?;
        count_reply(if reconciled { "reconciled" } else { "sent" });
        let waited = (Utc::now() - in_utc(reply.created_at))
            .to_std()
            .unwrap_or_default();
        metrics::histogram!(TIME_TO_PROVIDER_METRIC).record(waited.as_secs_f64());
        tracing::info!(reply_id = %reply.id, reconciled, provider_comment_id = ?sent.provider_comment_id, "reply sent");
        Ok(NextStep::Done(task_recorded.map(|()| Outcome::Succeeded)))
    }

    /// Records `reply` as failed; the task fails with the same reason.
    async fn finish_failed(
        &self,
        ctx: &JobContext,
        reply: &replies::Model,
        failure: ReplyFailure,
    ) -> Result<NextStep, JobError> {
        if protocol::record_failed(ctx.db(), reply, &failure, &self.actor)
            .await?
            .is_none()
        {
            return Ok(deferred(
                Utc::now(),
                "the reply changed meanwhile; looking again",
            ));
        }
        count_reply("failed");
        tracing::warn!(reply_id = %reply.id, reason = failure.reason, message = %failure.message, "reply failed");
        Ok(NextStep::Done(Err(JobError::permanent(anyhow::anyhow!(
            "reply {} failed ({}): {}",
            reply.id,
            failure.reason,
            failure.message
        )))))
    }
}

#[async_trait::async_trait]
impl Job for ReplyJob {
    fn name(&self) -> &'static str {
        "reply"
    }

    fn kind(&self) -> JobKind {
        JobKind::Reply
    }

    async fn run(&self, ctx: &JobContext) -> Result<Outcome, JobError> {
        let ReplyTask { reply_id } = ctx.payload()?;
        let db = ctx.db();
        let reply = reply::request::find(db, reply_id).await?.ok_or_else(|| {
            JobError::permanent(anyhow::anyhow!("reply {reply_id} does not exist"))
        })?;
        let mention = mention_queries::find(db, reply.mention_id)
            .await?
            .ok_or_else(|| {
                JobError::permanent(anyhow::anyhow!(
                    "mention {} does not exist",
                    reply.mention_id
                ))
            })?;
        // The mention's brand decides the Profile-Key, the budget and the breaker.
        let brand = self.apis.brand(db, mention.brand_id).await?;
        let api = &self
            .apis
            .get(db, &brand, mention.platform)
            .map_err(JobError::permanent)?;
        let adapter = adapters::for_type(mention.mention_type);
        let mut next = match reply.status {
            ReplyStatus::Sent | ReplyStatus::Failed => return Ok(Outcome::Succeeded),
            // Left by a replier that stopped mid-send (this run took its task over): its
            // requests went on at most until then, so that is when its send call ended.
            ReplyStatus::Sending => {
                let why = "the replier sending it stopped before it knew the outcome";
                match protocol::record_unknown(db, &reply, why, &self.actor).await? {
                    Some(unknown) => {
                        self.reconcile(ctx, api, adapter, &mention, unknown, true)
                            .await?
                    }
                    None => deferred(Utc::now(), "the reply changed meanwhile; looking again"),
                }
            }
            ReplyStatus::Unknown => {
                self.reconcile(ctx, api, adapter, &mention, reply, true)
                    .await?
            }
            ReplyStatus::Pending => NextStep::Send(reply),
        };
        // At most one send and one read-back per run: a lost answer is looked for at once,
        // and anything still open is deferred to a later run.
        let mut sent_once = false;
        loop {
            next = match next {
                NextStep::Done(result) => return result,
                NextStep::Send(_) if sent_once => {
                    return Ok(Outcome::Deferred {
                        until: Utc::now(),
                        reason: "sending again".to_owned(),
                    });
                }
                NextStep::Send(seen) => {
                    sent_once = true;
                    self.attempt(ctx, api, adapter, &mention, seen).await?
                }
                NextStep::Reconcile(unknown) => {
                    self.reconcile(ctx, api, adapter, &mention, unknown, false)
                        .await?
                }
            };
        }
    }
}
