//! The provider's request budget, shared by every process through the database: at most
//! `limit` requests per profile in any sliding window of `window`.
//!
//! Each profile has one `rate_budgets` row holding the grant times of its latest `limit`
//! requests, oldest first. A take is one atomic statement (`INSERT … ON CONFLICT DO UPDATE …
//! WHERE`): under the row lock it appends the current time only if the `limit`-th most recent
//! grant is older than `window + SEND_MARGIN`. So any `limit + 1` grants span at least that
//! long: in any sliding window of that length at most `limit` grants exist, whichever process
//! asked.
//!
//! The guarantee is about grant times; the provider counts arrival times, a little later. If
//! every request arrives within [`SEND_MARGIN`] of its grant (the chain sends right after
//! taking), `limit + 1` arrivals inside one window of `window` would need `limit + 1` grants
//! inside `window + SEND_MARGIN`, which the take refuses: at most `limit` requests reach the
//! provider in any sliding window, as the provider (and the simulator) measure it. A
//! fixed-window counter would not do: it lets `2 × limit` through across a window boundary.
//!
//! When the budget is spent, [`RateBudget::take`] either waits for the next free slot
//! ([`BudgetMode::Wait`], for reads) or answers when it frees ([`BudgetMode::Reschedule`], for
//! jobs that prefer to reschedule).

use chrono::{DateTime, Utc};
use rand::Rng;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use std::time::{Duration, Instant};

/// Allowance between a grant and the request's arrival at the provider (which counts
/// arrivals): the window enforced is this much longer than the configured one.
pub const SEND_MARGIN: Duration = Duration::from_secs(1);

/// Counter of takes refused because the budget was spent, labelled by budget key.
pub const SPENT_METRIC: &str = "rate_budget_spent_total";

/// Longest random delay added to a wake-up, so that waiters do not all return at once.
const WAKE_JITTER_MS: u64 = 25;

/// What to do when the budget is spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetMode {
    /// Wait for a free slot (up to two windows, then give up as in `Reschedule`).
    Wait,
    /// Return at once with the time a slot frees.
    Reschedule,
}

/// Why no slot was granted.
#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    /// Spent: a slot frees at `retry_at` (database time).
    #[error("request budget spent until {retry_at}")]
    Spent {
        /// When a slot frees.
        retry_at: DateTime<Utc>,
    },
    /// The database could not be used.
    #[error("request budget unavailable: {0}")]
    Database(#[from] DbErr),
}

/// The answer to one take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// A slot is ours: send now.
    Granted,
    /// Spent: a slot frees at `retry_at` (database time), `wait` from now.
    Spent {
        /// When a slot frees.
        retry_at: DateTime<Utc>,
        /// How long that is from now.
        wait: Duration,
    },
}

/// One profile's request budget.
#[derive(Debug, Clone)]
pub struct RateBudget {
    key: String,
    limit: u32,
    window: Duration,
    db: DatabaseConnection,
}

// The statement that takes a slot. $1 key, $2 limit, $3 window + margin in seconds. A slot is
// free when the limit-th most recent grant has left the window; the log then keeps the latest
// limit - 1 grants and the new one, in grant order (the row lock orders them). The outer
// SELECT reads the row as it was when the statement began (a spent budget is unchanged by the
// INSERT), and tells when the limit-th most recent grant leaves the window. The grant log is
// soft state, so its commit does not wait for the WAL flush (`synchronous_commit` off for this
// statement's transaction only): a database crash may forget the last grants, nothing else.
const TAKE: &str = r#"
WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true)),
taken AS (
    INSERT INTO rate_budgets AS b (key, calls, updated_at)
    SELECT $1, ARRAY[clock_timestamp()], clock_timestamp() FROM async_commit
    ON CONFLICT (key) DO UPDATE
    SET calls = b.calls[greatest(1, cardinality(b.calls) - $2 + 2):] || clock_timestamp(),
        updated_at = clock_timestamp()
    WHERE cardinality(b.calls) < $2
       OR b.calls[cardinality(b.calls) - $2 + 1] <= clock_timestamp() - make_interval(secs => $3)
    RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM taken) AS granted,
       (SELECT r.calls[cardinality(r.calls) - $2 + 1] + make_interval(secs => $3)
        FROM rate_budgets r WHERE r.key = $1) AS free_at,
       clock_timestamp() AS now
"#;

impl RateBudget {
    /// The budget stored under `key`: `limit` requests in any sliding `window`.
    pub fn new(key: String, limit: u32, window: Duration, db: DatabaseConnection) -> Self {
        RateBudget {
            key,
            limit,
            window,
            db,
        }
    }

    /// The database key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// One atomic attempt to take a slot.
    pub async fn try_take(&self) -> Result<Take, DbErr> {
        let window = (self.window + SEND_MARGIN).as_secs_f64();
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                TAKE,
                [
                    self.key.clone().into(),
                    i32::try_from(self.limit).unwrap_or(i32::MAX).into(),
                    window.into(),
                ],
            ))
            .await?
            .ok_or_else(|| DbErr::RecordNotFound("the budget statement returned no row".into()))?;
        if row.try_get::<bool>("", "granted")? {
            return Ok(Take::Granted);
        }
        let now: DateTime<Utc> = row.try_get("", "now")?;
        // Missing only if the row vanished meanwhile: then a slot is free now.
        let free_at: Option<DateTime<Utc>> = row.try_get("", "free_at")?;
        let retry_at = free_at.unwrap_or(now).max(now);
        metrics::counter!(SPENT_METRIC, "budget" => self.key.clone()).increment(1);
        Ok(Take::Spent {
            retry_at,
            wait: (retry_at - now).to_std().unwrap_or(Duration::ZERO),
        })
    }

    /// Takes a slot, waiting for one in [`BudgetMode::Wait`] (at most two windows).
    pub async fn take(&self, mode: BudgetMode) -> Result<(), BudgetError> {
        let give_up = Instant::now() + 2 * (self.window + SEND_MARGIN);
        loop {
            match self.try_take().await? {
                Take::Granted => return Ok(()),
                Take::Spent { retry_at, wait } => {
                    if mode == BudgetMode::Reschedule || Instant::now() + wait > give_up {
                        return Err(BudgetError::Spent { retry_at });
                    }
                    let wake =
                        wait + Duration::from_millis(rand::rng().random_range(0..=WAKE_JITTER_MS));
                    tracing::debug!(
                        budget = %self.key,
                        wait_ms = wake.as_millis() as u64,
                        "request budget spent; waiting for a free slot"
                    );
                    tokio::time::sleep(wake).await;
                }
            }
        }
    }
}
