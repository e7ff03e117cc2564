//! The provider's request budget, shared by every process through the database: at most
//! `limit` requests per profile in any sliding window of `window`.
//!
//! Each profile has one `rate_budgets` row holding the grant times of its latest requests. A
//! take is one call of the database function `take_rate_budget`: under the row lock it grants
//! as many of the slots asked for as the window has left (`limit` minus the grants of the
//! last `window + SEND_MARGIN`), and logs them at the current time. So any `limit + 1` grants
//! span more than that long: in any sliding window of that length at most `limit` grants
//! exist, whichever process asked. A fixed-window counter would not do: it lets
//! `2 × limit` through across a window boundary.
//!
//! A process spends the slots it was granted for [`SLOT_LEASE`] at most, counted from before
//! it asked (so before the grant time); slots left after that are dropped, never spent late.
//! The provider counts arrival times: if every request arrives within [`SEND_MARGIN`] of its
//! grant (spent within `SLOT_LEASE`, then sent at once), `limit + 1` arrivals inside one
//! window of `window` would need `limit + 1` grants inside `window + SEND_MARGIN`, which the
//! take refuses: at most `limit` requests reach the provider in any sliding window, as the
//! provider (and the simulator) measure it.
//!
//! How many slots to ask for follows demand: one at first, twice as many when the last
//! batch ran out within its lease (up to a tenth of the budget, and [`MAX_BATCH`]: every slot
//! is a timestamp in the row's log, which a take reads whole), back to what was used when
//! slots were dropped. A busy caller makes one round trip per batch; an idle one wastes at
//! most one batch.
//!
//! When the budget is spent, [`RateBudget::take`] either waits for the next free slot
//! ([`BudgetMode::Wait`], for reads) or answers when it frees ([`BudgetMode::Reschedule`], for
//! jobs that prefer to reschedule).

use chrono::{DateTime, Utc};
use rand::Rng;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Allowance between a grant and the request's arrival at the provider (which counts
/// arrivals): the window enforced is this much longer than the configured one.
pub const SEND_MARGIN: Duration = Duration::from_secs(1);

/// How long granted slots may be spent, from before they were asked for: half the
/// [`SEND_MARGIN`], leaving the other half for the request to reach the provider.
pub const SLOT_LEASE: Duration = Duration::from_millis(500);

/// The most slots one take asks for, whatever the budget's size.
pub const MAX_BATCH: u32 = 32;

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
    /// This many slots (at least one) are ours: spend them now.
    Granted(u32),
    /// Spent: a slot frees at `retry_at` (database time), `wait` from now.
    Spent {
        /// When a slot frees.
        retry_at: DateTime<Utc>,
        /// How long that is from now.
        wait: Duration,
    },
}

/// One profile's request budget, as one caller sees it: the slots it holds, and how many it
/// asks for at a time. Share it (the chain does) rather than building one per request.
#[derive(Debug)]
pub struct RateBudget {
    key: String,
    limit: u32,
    window: Duration,
    db: DatabaseConnection,
    held: Mutex<Held>,
}

/// Slots granted to this caller and not spent yet.
#[derive(Debug)]
struct Held {
    /// Left to spend.
    slots: u32,
    /// Granted for the current lease (by one take, or by takes that ran at once).
    granted: u32,
    /// When the slots left stop being valid.
    use_by: Instant,
    /// Slots to ask for next time.
    batch: u32,
}

impl Held {
    /// Spends a slot if one is left and still valid.
    fn spend(&mut self, now: Instant) -> bool {
        if self.slots > 0 && now < self.use_by {
            self.slots -= 1;
            true
        } else {
            false
        }
    }

    /// How many slots to ask for, given how the last batch went; drops what is left of it.
    fn next_batch(&mut self, now: Instant, most: u32) -> u32 {
        if self.slots > 0 {
            // Slots were dropped: ask for what was used.
            self.batch = self.granted.saturating_sub(self.slots).clamp(1, most);
        } else if now < self.use_by {
            // The batch ran out within its lease: demand is higher.
            self.batch = self.batch.saturating_mul(2).min(most);
        }
        self.slots = 0;
        self.batch
    }

    /// Holds `granted` slots, one of which is being spent, valid until `use_by`.
    fn hold(&mut self, granted: u32, use_by: Instant) {
        if self.slots > 0 && Instant::now() < self.use_by {
            // Another take of this caller was granted meanwhile: keep both, the sooner limit.
            self.use_by = self.use_by.min(use_by);
            self.granted += granted;
        } else {
            self.slots = 0;
            self.use_by = use_by;
            self.granted = granted;
        }
        self.slots += granted - 1;
    }
}

/// The most slots asked for at once from a budget of `limit`: a tenth of it, at most
/// [`MAX_BATCH`], at least one.
fn largest_batch(limit: u32) -> u32 {
    (limit / 10).clamp(1, MAX_BATCH)
}

// $1 key, $2 limit, $3 window + margin in seconds, $4 slots wanted.
const TAKE: &str = "SELECT granted, free_at, now \
                    FROM take_rate_budget($1, $2, make_interval(secs => $3), $4)";

impl RateBudget {
    /// The budget stored under `key`: `limit` requests in any sliding `window`.
    pub fn new(key: String, limit: u32, window: Duration, db: DatabaseConnection) -> Self {
        RateBudget {
            key,
            limit,
            window,
            db,
            held: Mutex::new(Held {
                slots: 0,
                granted: 0,
                use_by: Instant::now(),
                batch: 1,
            }),
        }
    }

    /// The database key.
    pub fn key(&self) -> &str {
        &self.key
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One atomic attempt to take up to `wanted` slots (at least one is asked for), straight
    /// from the database: the slots granted are the caller's to spend within [`SLOT_LEASE`].
    pub async fn try_take(&self, wanted: u32) -> Result<Take, DbErr> {
        let window = (self.window + SEND_MARGIN).as_secs_f64();
        let to_i32 = |n: u32| i32::try_from(n.max(1)).unwrap_or(i32::MAX);
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                TAKE,
                [
                    self.key.clone().into(),
                    to_i32(self.limit).into(),
                    window.into(),
                    to_i32(wanted).into(),
                ],
            ))
            .await?
            .ok_or_else(|| DbErr::RecordNotFound("the budget function returned no row".into()))?;
        let granted: i32 = row.try_get("", "granted")?;
        if granted > 0 {
            return Ok(Take::Granted(granted.unsigned_abs()));
        }
        let now: DateTime<Utc> = row.try_get("", "now")?;
        let free_at: Option<DateTime<Utc>> = row.try_get("", "free_at")?;
        let retry_at = free_at.unwrap_or(now).max(now);
        metrics::counter!(SPENT_METRIC, "budget" => self.key.clone()).increment(1);
        Ok(Take::Spent {
            retry_at,
            wait: (retry_at - now).to_std().unwrap_or(Duration::ZERO),
        })
    }

    /// Takes a slot: one held from an earlier take if any, else a batch from the database,
    /// waiting for one in [`BudgetMode::Wait`] (at most two windows).
    pub async fn take(&self, mode: BudgetMode) -> Result<(), BudgetError> {
        if self.held().spend(Instant::now()) {
            return Ok(());
        }
        let give_up = Instant::now() + 2 * (self.window + SEND_MARGIN);
        loop {
            let asked = Instant::now();
            let wanted = self.held().next_batch(asked, largest_batch(self.limit));
            match self.try_take(wanted).await? {
                Take::Granted(granted) => {
                    self.held().hold(granted, asked + SLOT_LEASE);
                    return Ok(());
                }
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

#[cfg(test)]
mod tests {
    use super::{Held, MAX_BATCH, largest_batch};
    use std::time::{Duration, Instant};

    fn held(now: Instant) -> Held {
        Held {
            slots: 0,
            granted: 0,
            use_by: now,
            batch: 1,
        }
    }

    #[test]
    fn a_batch_is_at_most_a_tenth_of_the_budget_and_never_more_than_the_cap() {
        let sizes: Vec<u32> = [1, 3, 30, 300, 1_000_000]
            .into_iter()
            .map(largest_batch)
            .collect();
        assert_eq!(sizes, [1, 1, 3, 30, MAX_BATCH]);
    }

    #[test]
    fn batches_double_while_they_run_out_within_their_lease_up_to_the_cap() {
        let now = Instant::now();
        let lease = now + Duration::from_millis(500);
        let mut h = held(now);
        assert_eq!(h.next_batch(now, 8), 1, "first take: one slot");
        h.hold(1, lease);
        let mut asked = Vec::new();
        for _ in 0..5 {
            assert!(!h.spend(now), "nothing left");
            let batch = h.next_batch(now, 8);
            asked.push(batch);
            h.hold(batch, lease);
            while h.spend(now) {}
        }
        assert_eq!(asked, [2, 4, 8, 8, 8]);
    }

    #[test]
    fn slots_are_never_spent_after_their_lease_and_the_next_batch_is_what_was_used() {
        let now = Instant::now();
        let mut h = held(now);
        h.batch = 8;
        h.hold(8, now + Duration::from_millis(500));
        assert!(h.spend(now) && h.spend(now), "two of the seven left");
        let late = now + Duration::from_millis(500);
        assert!(!h.spend(late), "expired slots are dropped");
        assert_eq!(
            h.next_batch(late, 8),
            3,
            "the one taken with the grant and two more"
        );
        assert_eq!(h.slots, 0);
    }

    #[test]
    fn grants_that_ran_at_once_are_held_together_until_the_sooner_lease_ends() {
        let now = Instant::now();
        let mut h = held(now);
        let sooner = now + Duration::from_secs(60);
        h.hold(3, sooner);
        h.hold(2, sooner + Duration::from_secs(1));
        assert_eq!((h.slots, h.granted, h.use_by), (3, 5, sooner));
        assert!(h.spend(now));
        assert!(!h.spend(sooner), "dropped at the sooner end");
        assert_eq!(
            h.next_batch(sooner, 8),
            3,
            "two with the grants and one held"
        );
    }

    #[test]
    fn a_partial_grant_holds_only_what_was_granted() {
        let now = Instant::now();
        let mut h = held(now);
        h.hold(2, now + Duration::from_millis(500));
        assert!(h.spend(now));
        assert!(!h.spend(now), "one was spent with the grant, one held");
    }
}
