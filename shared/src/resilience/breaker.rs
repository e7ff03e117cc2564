//! The circuit breaker, shared by every process through its `circuit_breakers` row.
//!
//! - **Closed**: calls pass; each outcome is counted in a sliding window (`window`, ten
//!   slots in `circuit_breaker_slots`; a slot leaves once it is a window old). Only provider
//!   failures count as failures
//!   ([`ProviderError::is_provider_failure`](crate::provider::ProviderError::is_provider_failure):
//!   429, 5xx, timeouts, connection errors); a 400 or a 403 for disabled messaging is a
//!   healthy provider saying no. When the window holds at least `min_calls` calls with a
//!   failure rate at or above the threshold, the trip is *pending*; it is decided a settling
//!   time later ([`BreakerSettings::settle`]), by the first count that still finds the rate at
//!   the threshold, once every process has counted the healthy calls it held in memory.
//! - **Open** until `open_until`: calls are refused without a request, with that time, so the
//!   caller reschedules. A process that has seen the breaker open refuses from memory until
//!   then (the time cannot move earlier: only a probe can close it, after that time).
//! - **Half-open** once the open period is over: at most `probe_permits` calls, across all
//!   processes, get a probe permit (an atomic `UPDATE … RETURNING`). The first probe outcome
//!   decides: success closes the breaker; failure reopens it for longer (the open period times
//!   `open_growth` per consecutive reopening, at most `open_max`). Permits not reported within
//!   `probe_lease` (their process died) are handed out again.
//!
//! A process that has seen the breaker closed lets calls through from memory for
//! `closed_recheck` (`BREAKER_RECHECK_MS`), and holds their healthy outcomes in memory; it
//! adds them to the window when it next asks the database, with its next failure, or
//! `closed_recheck` after the first of them ended, whichever comes first. Failures are counted
//! at once, and a failure that finds the breaker no longer closed makes this process ask the
//! database before its next call. Opening, half-opening and probe permits are decided by the
//! row alone. So a breaker opened by one process stops another's calls within
//! `closed_recheck`, or at its first failure, whichever comes first.
//!
//! Every transition happens in one transaction with its audit row (actor `system:<process>`)
//! and is logged; the state is exported as the gauge [`STATE_METRIC`] (0 closed, 1 half-open,
//! 2 open). Outcomes that arrive after the state changed (a call let through while closed that
//! ends after the breaker opened) are ignored.

use crate::audit::{self, Actor, Entry, entity};
use crate::config::ResilienceSettings;
use crate::db::entities::circuit_breakers;
use crate::domain::saturating_add;
use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryOrder, QueryResult,
    Statement, TransactionTrait, Value,
};
use serde_json::json;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The gauge of each breaker's state (label `breaker`): 0 closed, 1 half-open, 2 open.
pub const STATE_METRIC: &str = "circuit_breaker_state";

/// A breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls pass.
    Closed,
    /// Calls are refused until the open period ends.
    Open,
    /// A few probe calls decide whether to close or reopen.
    HalfOpen,
}

impl BreakerState {
    /// The spelling in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    /// The value of [`STATE_METRIC`].
    pub fn gauge_value(self) -> f64 {
        match self {
            BreakerState::Closed => 0.0,
            BreakerState::HalfOpen => 1.0,
            BreakerState::Open => 2.0,
        }
    }

    fn parse(text: &str) -> Result<Self, DbErr> {
        match text {
            "closed" => Ok(BreakerState::Closed),
            "open" => Ok(BreakerState::Open),
            "half_open" => Ok(BreakerState::HalfOpen),
            other => Err(DbErr::Type(format!("unknown breaker state {other:?}"))),
        }
    }
}

/// When a breaker opens and how it recovers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerSettings {
    /// Window in which calls and failures are counted.
    pub window: Duration,
    /// Calls the window needs before the breaker may open.
    pub min_calls: u32,
    /// Failure rate (percent) that opens it.
    pub failure_rate_percent: u32,
    /// First open period.
    pub open: Duration,
    /// Growth factor of the open period per consecutive reopening.
    pub open_growth: u32,
    /// Longest open period.
    pub open_max: Duration,
    /// Probe permits handed out while half-open, across all processes.
    pub probe_permits: u32,
    /// After this long without an outcome, handed-out probe permits count as lost.
    pub probe_lease: Duration,
    /// How long calls pass on having seen the breaker closed, before asking again.
    pub closed_recheck: Duration,
}

impl BreakerSettings {
    /// How long a failure rate at the threshold waits before it opens the breaker: twice
    /// `closed_recheck`, the longest a process holds healthy outcomes in memory (plus the
    /// round trip that counts them), so the decision counts every call made until the rate
    /// was reached. Zero when processes hold nothing (`closed_recheck` zero).
    pub fn settle(&self) -> Duration {
        self.closed_recheck * 2
    }
}

impl From<&ResilienceSettings> for BreakerSettings {
    fn from(s: &ResilienceSettings) -> Self {
        BreakerSettings {
            window: s.breaker_window,
            min_calls: s.breaker_min_calls,
            failure_rate_percent: s.breaker_failure_rate_percent,
            open: s.breaker_open,
            open_growth: s.breaker_open_growth,
            open_max: s.breaker_open_max,
            probe_permits: s.breaker_probe_permits,
            // A probe ends within one request timeout; twice that is generous.
            probe_lease: s.request_timeout * 2,
            closed_recheck: s.breaker_recheck,
        }
    }
}

/// How a call was let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// The breaker is closed.
    Call,
    /// One of the half-open breaker's probe permits: its outcome decides.
    Probe,
}

/// The breaker's answer to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead, then [`CircuitBreaker::record`] the outcome with this permit.
    Granted(Permit),
    /// Do not call; try again at `retry_at`.
    Refused {
        /// When the breaker may let calls through.
        retry_at: DateTime<Utc>,
    },
}

/// What a call's outcome says about the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// It answered (success, or a definite rejection).
    Healthy,
    /// 429, 5xx, timeout or connection failure.
    Failed,
}

/// One breaker, as seen from this process. Cheap to clone; clones share the memory.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    key: String,
    settings: BreakerSettings,
    db: DatabaseConnection,
    actor: Actor,
    local: Mutex<LocalView>,
}

/// What this process knows of the breaker without asking the database.
#[derive(Debug, Default)]
struct LocalView {
    known: SeenState,
    /// Healthy outcomes of calls let through while closed, not counted in the row yet.
    healthy: u32,
    /// When the first of them ended.
    healthy_since: Option<Instant>,
}

/// The state last seen, and until when (local clock) it holds.
#[derive(Debug, Default, Clone, Copy)]
enum SeenState {
    /// Ask the database.
    #[default]
    Nothing,
    /// Closed: let calls through.
    Closed { until: Instant },
    /// Open until `at` (database time): refuse.
    Open { until: Instant, at: DateTime<Utc> },
}

impl LocalView {
    /// The healthy outcomes to count now: none if they are older than the window (they
    /// would be counted in a window they were not part of).
    fn take_healthy(&mut self, window: Duration) -> u32 {
        let fresh = self.healthy_since.is_some_and(|t| t.elapsed() < window);
        let healthy = std::mem::take(&mut self.healthy);
        self.healthy_since = None;
        if fresh { healthy } else { 0 }
    }
}

/// The stored state of a breaker, for status pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerStatus {
    /// `twitter`, or `<profile>:twitter`.
    pub key: String,
    pub state: BreakerState,
    /// Calls in the sliding window, as last counted (closed state).
    pub calls: i32,
    /// Failures among them.
    pub failures: i32,
    /// When it last opened.
    pub opened_at: Option<DateTime<Utc>>,
    /// While open: when probes may start.
    pub open_until: Option<DateTime<Utc>>,
    /// Consecutive reopenings.
    pub reopen_count: i32,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Every breaker that has recorded a call, by key (none recorded: closed).
pub async fn statuses(conn: &impl ConnectionTrait) -> Result<Vec<BreakerStatus>, DbErr> {
    circuit_breakers::Entity::find()
        .order_by_asc(circuit_breakers::Column::Key)
        .all(conn)
        .await?
        .into_iter()
        .map(|row| {
            Ok(BreakerStatus {
                state: BreakerState::parse(&row.state)?,
                key: row.key,
                calls: row.calls,
                failures: row.failures,
                opened_at: row.opened_at.map(|t| t.with_timezone(&Utc)),
                open_until: row.open_until.map(|t| t.with_timezone(&Utc)),
                reopen_count: row.reopen_count,
                updated_at: row.updated_at.with_timezone(&Utc),
            })
        })
        .collect()
}

/// Slots the window is counted in.
const WINDOW_SLOTS: i32 = 10;

const READ: &str = "SELECT state, open_until, clock_timestamp() AS now \
                    FROM circuit_breakers WHERE key = $1";

// $1 key, $2 calls, $3 failures among them, $4 window seconds, $5 slots, $6 min calls,
// $7 failure rate percent, $8 settling seconds.
const COUNT: &str = "SELECT window_calls, window_failures, verdict \
                     FROM count_breaker_calls($1, $2, $3, make_interval(secs => $4), $5, $6, $7, \
                                              make_interval(secs => $8))";

// $1 key, $2 open seconds, $3 min calls, $4 failure rate percent. The window starts afresh
// (the delete is undone with the transaction when the breaker is no longer closed).
const TRIP: &str = r#"
WITH cleared AS (DELETE FROM circuit_breaker_slots WHERE key = $1)
UPDATE circuit_breakers
SET state = 'open', opened_at = statement_timestamp(),
    open_until = statement_timestamp() + make_interval(secs => $2),
    reopen_count = 0, half_open_permits_in_use = 0, calls = 0, failures = 0,
    trip_pending_since = NULL, updated_at = statement_timestamp()
WHERE key = $1 AND state = 'closed' AND calls >= $3 AND failures * 100 >= $4 * calls
RETURNING open_until, statement_timestamp() AS now
"#;

// $1 key. The first permit goes to whoever half-opens it.
const HALF_OPEN: &str = r#"
UPDATE circuit_breakers
SET state = 'half_open', half_open_permits_in_use = 1, updated_at = clock_timestamp()
WHERE key = $1 AND state = 'open' AND open_until <= clock_timestamp()
RETURNING reopen_count
"#;

// $1 key, $2 probe permits, $3 lease seconds. `updated_at` is the last grant: once it is a
// lease old, the permits out are presumed lost and counting starts again.
const TAKE_PROBE: &str = r#"
UPDATE circuit_breakers
SET half_open_permits_in_use =
        CASE WHEN updated_at <= clock_timestamp() - make_interval(secs => $3)
             THEN 1 ELSE half_open_permits_in_use + 1 END,
    updated_at = clock_timestamp()
WHERE key = $1 AND state = 'half_open'
  AND (half_open_permits_in_use < $2
       OR updated_at <= clock_timestamp() - make_interval(secs => $3))
RETURNING half_open_permits_in_use
"#;

// $1 key.
const CLOSE: &str = r#"
UPDATE circuit_breakers
SET state = 'closed', calls = 0, failures = 0, trip_pending_since = NULL, opened_at = NULL, open_until = NULL, reopen_count = 0, half_open_permits_in_use = 0,
    updated_at = statement_timestamp()
WHERE key = $1 AND state = 'half_open'
RETURNING state
"#;

// $1 key, $2 first open period (s), $3 growth factor, $4 longest open period (s).
const REOPEN: &str = r#"
UPDATE circuit_breakers
SET state = 'open', opened_at = statement_timestamp(),
    open_until = statement_timestamp()
                 + make_interval(secs => LEAST($4, $2 * power($3, reopen_count + 1))),
    reopen_count = reopen_count + 1, half_open_permits_in_use = 0,
    updated_at = statement_timestamp()
WHERE key = $1 AND state = 'half_open'
RETURNING open_until, reopen_count, statement_timestamp() AS now
"#;

/// What counting outcomes found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// The breaker is not closed: nothing was counted.
    NotClosed,
    /// Under the threshold.
    Below,
    /// At the threshold, for less than the settling time.
    Settling,
    /// At the threshold for the settling time: open it.
    Trip,
}

/// The row as one read saw it.
struct Snapshot {
    state: BreakerState,
    open_until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
}

fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl CircuitBreaker {
    /// The breaker stored under `key`, acting as `system:<process>` in the audit log.
    pub fn new(
        key: String,
        settings: BreakerSettings,
        db: DatabaseConnection,
        process: &str,
    ) -> Self {
        CircuitBreaker {
            inner: Arc::new(Inner {
                key,
                settings,
                db,
                actor: Actor::system(process),
                local: Mutex::new(LocalView::default()),
            }),
        }
    }

    /// The database key.
    pub fn key(&self) -> &str {
        &self.inner.key
    }

    fn local(&self) -> std::sync::MutexGuard<'_, LocalView> {
        self.inner
            .local
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Until when this process already knows the breaker is open: refuse without asking the
    /// database (or the budget).
    pub fn known_open(&self) -> Option<DateTime<Utc>> {
        match self.local().known {
            SeenState::Open { until, at } if Instant::now() < until => Some(at),
            _ => None,
        }
    }

    fn known_closed(&self) -> bool {
        matches!(self.local().known, SeenState::Closed { until } if Instant::now() < until)
    }

    fn remember_open(&self, open_until: DateTime<Utc>, now: DateTime<Utc>) {
        let left = (open_until - now).to_std().unwrap_or(Duration::ZERO);
        self.local().known = SeenState::Open {
            until: Instant::now() + left,
            at: open_until,
        };
    }

    /// Seen closed. Not over a known open period: that cannot end before its time (only a
    /// probe closes a breaker, after it), so the closed state seen is older.
    fn remember_closed(&self) {
        let mut local = self.local();
        let now = Instant::now();
        if !matches!(local.known, SeenState::Open { until, .. } if now < until) {
            local.known = SeenState::Closed {
                until: now + self.inner.settings.closed_recheck,
            };
        }
    }

    /// Something says the breaker may not be closed any more: ask before the next call.
    fn doubt_closed(&self) {
        let mut local = self.local();
        if matches!(local.known, SeenState::Closed { .. }) {
            local.known = SeenState::Nothing;
        }
    }

    fn set_gauge(&self, state: BreakerState) {
        metrics::gauge!(STATE_METRIC, "breaker" => self.inner.key.clone()).set(state.gauge_value());
    }

    fn statement(&self, sql: &str, mut values: Vec<Value>) -> Statement {
        values.insert(0, self.inner.key.clone().into());
        Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
    }

    async fn read(&self) -> Result<Snapshot, DbErr> {
        let row = self
            .inner
            .db
            .query_one_raw(self.statement(READ, vec![]))
            .await?;
        let snapshot = match row {
            Some(row) => Snapshot {
                state: BreakerState::parse(&row.try_get::<String>("", "state")?)?,
                open_until: row.try_get("", "open_until")?,
                now: row.try_get("", "now")?,
            },
            None => Snapshot {
                state: BreakerState::Closed,
                open_until: None,
                now: Utc::now(),
            },
        };
        self.set_gauge(snapshot.state);
        Ok(snapshot)
    }

    /// Whether a call may go ahead now. Half-opening and taking a probe permit are atomic, so
    /// however many processes ask at once, at most `probe_permits` probes are out.
    pub async fn admit(&self) -> Result<Admission, DbErr> {
        if self.known_closed() {
            return Ok(Admission::Granted(Permit::Call));
        }
        if let Some(retry_at) = self.known_open() {
            return Ok(Admission::Refused { retry_at });
        }
        // Counting the healthy outcomes held in memory also tells whether it is closed.
        let healthy = self.local().take_healthy(self.inner.settings.window);
        if healthy > 0
            && matches!(
                self.add_to_window(healthy, 0).await?,
                Verdict::Below | Verdict::Settling
            )
        {
            self.remember_closed();
            return Ok(Admission::Granted(Permit::Call));
        }
        // A state may change under us between the read and the update (someone else
        // half-opens it, a probe decides); a few rounds settle it.
        let mut snapshot = self.read().await?;
        for _ in 0..2 {
            match snapshot.state {
                BreakerState::Closed => {
                    self.remember_closed();
                    return Ok(Admission::Granted(Permit::Call));
                }
                BreakerState::Open => match snapshot.open_until {
                    Some(open_until) if open_until > snapshot.now => {
                        self.remember_open(open_until, snapshot.now);
                        return Ok(Admission::Refused {
                            retry_at: open_until,
                        });
                    }
                    _ => {
                        if self.half_open().await? {
                            return Ok(Admission::Granted(Permit::Probe));
                        }
                    }
                },
                BreakerState::HalfOpen => {
                    let taken = self
                        .inner
                        .db
                        .query_one_raw(self.statement(
                            TAKE_PROBE,
                            vec![
                                to_i32(self.inner.settings.probe_permits).into(),
                                self.inner.settings.probe_lease.as_secs_f64().into(),
                            ],
                        ))
                        .await?;
                    if taken.is_some() {
                        return Ok(Admission::Granted(Permit::Probe));
                    }
                }
            }
            snapshot = self.read().await?;
        }
        // Half-open with every permit out: the probes decide within a request timeout.
        let busy = self
            .inner
            .settings
            .open
            .min(self.inner.settings.probe_lease);
        Ok(Admission::Refused {
            retry_at: saturating_add(snapshot.now, busy),
        })
    }

    /// Records the outcome of a call let through with `permit`: a healthy call while closed
    /// in memory (counted in the window later), anything else at once.
    pub async fn record(&self, permit: Permit, health: Health) -> Result<(), DbErr> {
        let failed = health == Health::Failed;
        match permit {
            Permit::Call if !failed => {
                let first = {
                    let mut local = self.local();
                    local.healthy += 1;
                    let first = local.healthy_since.is_none();
                    local.healthy_since.get_or_insert_with(Instant::now);
                    first
                };
                if first {
                    self.count_held_later();
                }
                Ok(())
            }
            Permit::Call => {
                let healthy = self.local().take_healthy(self.inner.settings.window);
                self.add_to_window(healthy + 1, 1).await.map(|_| ())
            }
            Permit::Probe if failed => self.reopen().await,
            Permit::Probe => self.close().await,
        }
    }

    /// Counts the healthy outcomes held in memory `closed_recheck` from now, even if no call
    /// comes to do it, so that a pending trip decides on them.
    fn count_held_later(&self) {
        let breaker = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(breaker.inner.settings.closed_recheck).await;
            let healthy = breaker.local().take_healthy(breaker.inner.settings.window);
            if healthy > 0
                && let Err(e) = breaker.add_to_window(healthy, 0).await
            {
                tracing::warn!(
                    breaker = %breaker.inner.key, error = %e,
                    "cannot count healthy calls in the circuit breaker"
                );
            }
        });
    }

    /// Adds `calls` outcomes, `failures` of them failed, to the window, and acts on the
    /// verdict: opens the breaker once the rate has been at the threshold for the settling
    /// time; asks the database before the next call if the breaker is no longer closed.
    async fn add_to_window(&self, calls: u32, failures: u32) -> Result<Verdict, DbErr> {
        let settings = &self.inner.settings;
        let row = self
            .inner
            .db
            .query_one_raw(self.statement(
                COUNT,
                vec![
                    to_i32(calls).into(),
                    to_i32(failures).into(),
                    settings.window.as_secs_f64().into(),
                    WINDOW_SLOTS.into(),
                    to_i32(settings.min_calls).into(),
                    to_i32(settings.failure_rate_percent).into(),
                    settings.settle().as_secs_f64().into(),
                ],
            ))
            .await?
            .ok_or_else(|| DbErr::RecordNotFound("count_breaker_calls returned no row".into()))?;
        let verdict = match row.try_get::<String>("", "verdict")?.as_str() {
            "not_closed" => Verdict::NotClosed,
            "ok" => Verdict::Below,
            "pending" => Verdict::Settling,
            "trip" => Verdict::Trip,
            other => return Err(DbErr::Type(format!("unknown breaker verdict {other:?}"))),
        };
        // NULL when not closed.
        let calls: Option<i32> = row.try_get("", "window_calls")?;
        let failures: Option<i32> = row.try_get("", "window_failures")?;
        match verdict {
            // A late outcome: ask before the next call.
            Verdict::NotClosed => self.doubt_closed(),
            Verdict::Below => {}
            Verdict::Settling => tracing::debug!(
                breaker = %self.inner.key, calls, failures,
                settle_ms = settings.settle().as_millis(),
                "failure rate at the threshold: counting the calls held elsewhere first"
            ),
            Verdict::Trip => {
                self.trip(calls.unwrap_or_default(), failures.unwrap_or_default())
                    .await?;
            }
        }
        Ok(verdict)
    }

    /// Runs a transition statement and, if it changed the row, its audit row in the same
    /// transaction; returns the changed row.
    async fn transition(
        &self,
        statement: Statement,
        action: &str,
        payload: impl FnOnce(&QueryResult) -> Result<serde_json::Value, DbErr>,
    ) -> Result<Option<QueryResult>, DbErr> {
        let txn = self.inner.db.begin().await?;
        let Some(row) = txn.query_one_raw(statement).await? else {
            txn.rollback().await?;
            return Ok(None);
        };
        let entry = Entry::new(
            self.inner.actor.clone(),
            action,
            entity::CIRCUIT_BREAKER,
            &self.inner.key,
        )
        .with_payload(payload(&row)?);
        audit::append(&txn, entry).await?;
        txn.commit().await?;
        Ok(Some(row))
    }

    async fn trip(&self, calls: i32, failures: i32) -> Result<(), DbErr> {
        let statement = self.statement(
            TRIP,
            vec![
                self.inner.settings.open.as_secs_f64().into(),
                to_i32(self.inner.settings.min_calls).into(),
                to_i32(self.inner.settings.failure_rate_percent).into(),
            ],
        );
        let changed = self
            .transition(statement, "breaker.opened", |row| {
                let open_until: DateTime<Utc> = row.try_get("", "open_until")?;
                Ok(
                    json!({"from": "closed", "to": "open", "openUntil": open_until,
                          "calls": calls, "failures": failures, "reopenCount": 0}),
                )
            })
            .await?;
        if let Some(row) = changed {
            let open_until: DateTime<Utc> = row.try_get("", "open_until")?;
            self.remember_open(open_until, row.try_get("", "now")?);
            self.set_gauge(BreakerState::Open);
            tracing::warn!(
                breaker = %self.inner.key, from = "closed", to = "open", %open_until, calls, failures,
                "circuit breaker opened"
            );
        }
        Ok(())
    }

    /// Open → half-open, taking the first probe permit; false if someone else got there first.
    async fn half_open(&self) -> Result<bool, DbErr> {
        let changed = self
            .transition(
                self.statement(HALF_OPEN, vec![]),
                "breaker.half_opened",
                |row| {
                    let reopen_count: i32 = row.try_get("", "reopen_count")?;
                    Ok(json!({"from": "open", "to": "half_open",
                              "probePermits": self.inner.settings.probe_permits,
                              "reopenCount": reopen_count}))
                },
            )
            .await?;
        if changed.is_some() {
            self.set_gauge(BreakerState::HalfOpen);
            tracing::info!(
                breaker = %self.inner.key, from = "open", to = "half_open",
                probe_permits = self.inner.settings.probe_permits,
                "circuit breaker half-open: probing"
            );
        }
        Ok(changed.is_some())
    }

    async fn close(&self) -> Result<(), DbErr> {
        let changed = self
            .transition(self.statement(CLOSE, vec![]), "breaker.closed", |_| {
                Ok(json!({"from": "half_open", "to": "closed"}))
            })
            .await?;
        if changed.is_some() {
            self.remember_closed();
            self.set_gauge(BreakerState::Closed);
            tracing::info!(
                breaker = %self.inner.key, from = "half_open", to = "closed",
                "circuit breaker closed: the probe succeeded"
            );
        }
        Ok(())
    }

    async fn reopen(&self) -> Result<(), DbErr> {
        let statement = self.statement(
            REOPEN,
            vec![
                self.inner.settings.open.as_secs_f64().into(),
                f64::from(self.inner.settings.open_growth).into(),
                self.inner.settings.open_max.as_secs_f64().into(),
            ],
        );
        let changed = self
            .transition(statement, "breaker.opened", |row| {
                let open_until: DateTime<Utc> = row.try_get("", "open_until")?;
                let reopen_count: i32 = row.try_get("", "reopen_count")?;
                Ok(
                    json!({"from": "half_open", "to": "open", "openUntil": open_until,
                          "reopenCount": reopen_count}),
                )
            })
            .await?;
        if let Some(row) = changed {
            let open_until: DateTime<Utc> = row.try_get("", "open_until")?;
            let reopen_count: i32 = row.try_get("", "reopen_count")?;
            self.remember_open(open_until, row.try_get("", "now")?);
            self.set_gauge(BreakerState::Open);
            tracing::warn!(
                breaker = %self.inner.key, from = "half_open", to = "open", %open_until, reopen_count,
                "circuit breaker reopened: the probe failed"
            );
        }
        Ok(())
    }
}
