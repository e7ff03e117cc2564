//! The provider's request budget as a schedule, shared by every process through the database:
//! at most `limit` requests per profile in any sliding window of `window`, spent by class.
//!
//! A take is one call of the database function `take_budget_slot`, which grants one slot
//! for one request and logs it (with its class) in `rate_budget_grants` under the profile's
//! row lock. The caller spends it on a request or gives it back ([`RateBudget::give_back`]:
//! the request never reached the provider): no slot is granted and dropped unused.
//!
//! - **Classes.** [`BudgetClass::Reply`] may use the whole window; polling
//!   ([`BudgetClass::Discover`], [`BudgetClass::Refresh`]) never the last
//!   `BUDGET_RESERVE_PERCENT` of it, so a reply requested while polling saturates the budget
//!   still finds a slot.
//! - **Pacing.** Polling also takes a token of a bucket refilled at its share per window
//!   (holding at most [`burst`]), so reads are spread over the window instead of spending it
//!   in a burst and then falling silent.
//! - **The provider's word.** When an answer carries `x-ratelimit-*` headers saying less is
//!   left than the local view thinks, [`RateBudget::observe`] records it and takes grant no
//!   more than that; a 429 whose headers say the provider's window is full stops grants until
//!   its reset (or the oldest local grant leaving the window).
//!
//! The log covers `window + SEND_MARGIN`: any `limit + 1` grants span more than that, so if
//! every request arrives within [`SEND_MARGIN`] of its grant, at most `limit` requests reach
//! the provider in any sliding window, as the provider (and the simulator) measure it.

use chrono::{DateTime, Utc};
use rand::Rng;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use std::time::Duration;

/// Allowance between a grant and the request's arrival at the provider (which counts
/// arrivals): the window enforced is this much longer than the configured one.
pub const SEND_MARGIN: Duration = Duration::from_secs(1);

/// Counter of slots granted, labelled by profile (budget key) and class.
pub const GRANTED_METRIC: &str = "provider_budget_granted_total";
/// Counter of granted slots spent on a request that reached (or may have reached) the
/// provider, labelled by profile and class.
pub const USED_METRIC: &str = "provider_budget_used_total";
/// Counter of granted slots given back because their request never left, by profile and class.
pub const RETURNED_METRIC: &str = "provider_budget_returned_total";
/// Counter of takes refused because the class's budget was spent, by profile and class.
pub const SPENT_METRIC: &str = "provider_budget_spent_total";

/// Longest random delay added to a wake-up, so that waiters do not all return at once.
const WAKE_JITTER_MS: u64 = 25;

/// What a request is for, in the order the budget serves them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BudgetClass {
    /// Reply and message sends, and the read-backs that decide an unknown reply: may use the
    /// reserve.
    Reply,
    /// History reads, the first read of a post never read, direct message reads.
    Discover,
    /// Re-reads of known posts.
    Refresh,
}

impl BudgetClass {
    /// Every class, in priority order.
    pub const ALL: [BudgetClass; 3] = [
        BudgetClass::Reply,
        BudgetClass::Discover,
        BudgetClass::Refresh,
    ];

    /// The name in the database, metrics and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetClass::Reply => "reply",
            BudgetClass::Discover => "discover",
            BudgetClass::Refresh => "refresh",
        }
    }
}

/// Why no slot was granted.
#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    /// Spent for this class: a slot frees at `retry_at` (database time).
    #[error("request budget spent until {retry_at}")]
    Spent {
        /// When a slot frees.
        retry_at: DateTime<Utc>,
    },
    /// The database could not be used.
    #[error("request budget unavailable: {0}")]
    Database(#[from] DbErr),
}

/// One granted slot: spend it on one request ([`RateBudget::used`]) or give it back.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a slot is either used or given back"]
pub struct Slot {
    grant: i64,
    class: BudgetClass,
    /// What the whole budget had left after this grant, as far as the database knew.
    pub left: u32,
}

/// The answer to one take.
#[derive(Debug, PartialEq, Eq)]
pub enum Take {
    /// A slot is ours: spend it now.
    Granted(Slot),
    /// Spent for this class: a slot frees at `retry_at` (database time), `wait` from now.
    Spent {
        /// When a slot frees.
        retry_at: DateTime<Utc>,
        /// How long that is from now.
        wait: Duration,
    },
}

/// The most polling tokens the bucket holds, for a polling share of `share` per window: a
/// thirtieth of it (one window's thirtieth of reads may go at once), 1 to 10.
pub fn burst(share: u32) -> u32 {
    (share / 30).clamp(1, 10)
}

/// Slots of a budget of `limit` kept for replies: `percent` of it, rounded up, and always
/// leaving polling at least one.
pub fn reserved(limit: u32, percent: u32) -> u32 {
    (limit * percent).div_ceil(100).min(limit.saturating_sub(1))
}

/// Polling's pace under `settings`: the reads per second its share of the budget pays for.
pub fn polling_pace(settings: &crate::config::ResilienceSettings) -> f64 {
    let limit = settings.rate_budget_requests;
    let share = limit - reserved(limit, settings.budget_reserve_percent);
    f64::from(share) / settings.rate_budget_window.as_secs_f64()
}

// $1 key, $2 limit, $3 window + margin in seconds, $4 class, $5 reserve, $6 burst.
const TAKE: &str = "SELECT grant_id, free_at, now, slots_left \
                    FROM take_budget_slot($1, $2, make_interval(secs => $3), $4, $5, $6)";

/// One profile's request budget.
#[derive(Debug, Clone)]
pub struct RateBudget {
    key: String,
    limit: u32,
    window: Duration,
    reserve: u32,
    db: DatabaseConnection,
}

fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl RateBudget {
    /// The budget stored under `key`: `limit` requests in any sliding `window`, of which
    /// `reserve_percent` only for replies.
    pub fn new(
        key: String,
        limit: u32,
        window: Duration,
        reserve_percent: u32,
        db: DatabaseConnection,
    ) -> Self {
        RateBudget {
            key,
            limit,
            window,
            reserve: reserved(limit, reserve_percent),
            db,
        }
    }

    /// The database key (and the `profile` label of the metrics).
    pub fn key(&self) -> &str {
        &self.key
    }

    fn counter(&self, name: &'static str, class: BudgetClass) -> metrics::Counter {
        metrics::counter!(name, "profile" => self.key.clone(), "class" => class.as_str())
    }

    fn statement(&self, sql: &str, values: Vec<sea_orm::Value>) -> Statement {
        Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
    }

    /// One atomic attempt to take a slot for `class`, straight from the database.
    pub async fn try_take(&self, class: BudgetClass) -> Result<Take, DbErr> {
        let window = (self.window + SEND_MARGIN).as_secs_f64();
        let row = self
            .db
            .query_one_raw(self.statement(
                TAKE,
                vec![
                    self.key.clone().into(),
                    to_i32(self.limit).into(),
                    window.into(),
                    class.as_str().into(),
                    to_i32(self.reserve).into(),
                    to_i32(burst(self.limit - self.reserve)).into(),
                ],
            ))
            .await?
            .ok_or_else(|| DbErr::RecordNotFound("the budget function returned no row".into()))?;
        let left: i32 = row.try_get("", "slots_left")?;
        if let Some(grant) = row.try_get::<Option<i64>>("", "grant_id")? {
            self.counter(GRANTED_METRIC, class).increment(1);
            return Ok(Take::Granted(Slot {
                grant,
                class,
                left: left.max(0).unsigned_abs(),
            }));
        }
        let now: DateTime<Utc> = row.try_get("", "now")?;
        let free_at: Option<DateTime<Utc>> = row.try_get("", "free_at")?;
        let retry_at = free_at.unwrap_or(now).max(now);
        self.counter(SPENT_METRIC, class).increment(1);
        Ok(Take::Spent {
            retry_at,
            wait: (retry_at - now).to_std().unwrap_or(Duration::ZERO),
        })
    }

    /// Takes a slot for `class`, waiting for one while it frees within `max_wait`.
    pub async fn take(&self, class: BudgetClass, max_wait: Duration) -> Result<Slot, BudgetError> {
        let give_up = tokio::time::Instant::now() + max_wait;
        loop {
            match self.try_take(class).await? {
                Take::Granted(slot) => return Ok(slot),
                Take::Spent { retry_at, wait } => {
                    let wake =
                        wait + Duration::from_millis(rand::rng().random_range(0..=WAKE_JITTER_MS));
                    if tokio::time::Instant::now() + wake > give_up {
                        return Err(BudgetError::Spent { retry_at });
                    }
                    tracing::debug!(
                        budget = %self.key, class = class.as_str(),
                        wait_ms = wake.as_millis() as u64,
                        "request budget spent; waiting for a free slot"
                    );
                    tokio::time::sleep(wake).await;
                }
            }
        }
    }

    /// Records that `slot` was spent on a request that reached, or may have reached, the
    /// provider.
    pub fn used(&self, slot: Slot) {
        self.counter(USED_METRIC, slot.class).increment(1);
    }

    /// Gives `slot` back: its request never reached the provider. Returns whether it was
    /// still in the log (a slot older than the window has nothing left to give back).
    pub async fn give_back(&self, slot: Slot) -> Result<bool, DbErr> {
        let row = self
            .db
            .query_one_raw(self.statement(
                "SELECT return_budget_slot($1) AS returned",
                vec![slot.grant.into()],
            ))
            .await?;
        let returned = match row {
            Some(row) => row.try_get::<bool>("", "returned")?,
            None => false,
        };
        if returned {
            self.counter(RETURNED_METRIC, slot.class).increment(1);
        }
        Ok(returned)
    }

    /// Records what the provider said it has left (`remaining`; 0 after a 429, with
    /// `free_in` when it said when it frees). Nothing is granted beyond it.
    pub async fn observe(&self, remaining: u64, free_in: Option<Duration>) -> Result<(), DbErr> {
        let free_at = free_in
            .and_then(|d| chrono::TimeDelta::from_std(d).ok())
            .map(|d| Utc::now() + d);
        let window = (self.window + SEND_MARGIN).as_secs_f64();
        self.db
            .execute_raw(self.statement(
                "SELECT observe_provider_budget($1, $2, $3, make_interval(secs => $4))",
                vec![
                    self.key.clone().into(),
                    i32::try_from(remaining).unwrap_or(i32::MAX).into(),
                    free_at.into(),
                    window.into(),
                ],
            ))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{burst, reserved};

    #[test]
    fn the_reserve_rounds_up_and_always_leaves_polling_a_slot() {
        let cases: Vec<u32> = [(300, 20), (30, 20), (7, 20), (1, 20), (300, 0), (10, 90)]
            .into_iter()
            .map(|(limit, percent)| reserved(limit, percent))
            .collect();
        assert_eq!(cases, [60, 6, 2, 0, 0, 9]);
    }

    #[test]
    fn the_polling_burst_is_a_thirtieth_of_the_share_between_one_and_ten() {
        let sizes: Vec<u32> = [1, 24, 240, 3_000].into_iter().map(burst).collect();
        assert_eq!(sizes, [1, 1, 8, 10]);
    }
}
