//! The circuit breaker, shared by every process through its `circuit_breakers` row.
//!
//! - **Closed**: calls pass; each outcome is counted in the current window (`calls`,
//!   `failures`). When a failure leaves at least `min_calls` calls in the window with a
//!   failure rate at or above the threshold, the breaker opens. Only provider failures count
//!   ([`ProviderError::is_provider_failure`](crate::provider::ProviderError::is_provider_failure):
//!   429, 5xx, timeouts, connection errors); a 400 or a 403 for disabled messaging is a
//!   healthy provider saying no.
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
//! `closed_recheck` (`BREAKER_RECHECK_MS`), and counts their healthy outcomes in memory; it adds them to the row
//! when it next asks the database (at the latest when that time is up, or with the next
//! failure). Failures are counted at once, so the breaker opens on the call that reaches the
//! threshold, and a failure that finds the breaker no longer closed makes this process ask
//! the database before its next call. Opening, half-opening and probe permits are decided by
//! the row alone. So a breaker opened by one process stops another's calls within
//! `closed_recheck`, or at its first failure, whichever comes first.
//!
//! Every transition happens in one transaction with its audit row (actor `system:<process>`)
//! and is logged; the state is exported as the gauge [`STATE_METRIC`] (0 closed, 1 half-open,
//! 2 open). Outcomes that arrive after the state changed (a call let through while closed that
//! ends after the breaker opened) are ignored.

use crate::audit::{self, Actor, Entry};
use crate::config::ResilienceSettings;
use crate::db::entities::circuit_breakers;
use crate::domain::after;
use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryOrder, QueryResult,
    Statement, TransactionTrait, Value,
};
use serde_json::json;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The gauge of each breaker's state (label `breaker`): 0 closed, 1 half-open, 2 open.
pub const STATE_METRIC: &str = "circuit_breaker_state";

/// `entity_type` of the breakers' audit rows.
pub const AUDIT_ENTITY: &str = "circuit_breaker";

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
pub enum Outcome {
    /// It answered (success, or a definite rejection).
    Healthy,
    /// 429, 5xx, timeout or connection failure.
    Failed,
}

/// One breaker, as seen from this process.
#[derive(Debug)]
pub struct CircuitBreaker {
    key: String,
    settings: BreakerSettings,
    db: DatabaseConnection,
    actor: Actor,
    local: Mutex<Local>,
}

/// What this process knows of the breaker without asking the database.
#[derive(Debug, Default)]
struct Local {
    known: Known,
    /// Healthy outcomes of calls let through while closed, not counted in the row yet.
    healthy: u32,
    /// When the first of them ended.
    healthy_since: Option<Instant>,
}

/// The state last seen, and until when (local clock) it holds.
#[derive(Debug, Default, Clone, Copy)]
enum Known {
    /// Ask the database.
    #[default]
    Nothing,
    /// Closed: let calls through.
    Closed { until: Instant },
    /// Open until `at` (database time): refuse.
    Open { until: Instant, at: DateTime<Utc> },
}

impl Local {
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
    /// Its state.
    pub state: BreakerState,
    /// Calls counted in the current window (closed state).
    pub calls: i32,
    /// Failures counted in the current window (closed state).
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

const READ: &str = "SELECT state, open_until, clock_timestamp() AS now \
                    FROM circuit_breakers WHERE key = $1";

// $1 key, $2 calls, $3 failures among them, $4 window seconds; a row only while closed. The
// counts are soft state: their commit does not wait for the WAL flush (transitions, with
// their audit rows, do).
const RECORD: &str = r#"
WITH async_commit AS (SELECT set_config('synchronous_commit', 'off', true))
INSERT INTO circuit_breakers AS c (key, state, window_started_at, calls, failures, updated_at)
SELECT $1, 'closed', statement_timestamp(), $2, $3, statement_timestamp() FROM async_commit
ON CONFLICT (key) DO UPDATE
SET window_started_at = CASE WHEN c.window_started_at
                                  <= statement_timestamp() - make_interval(secs => $4)
                             THEN statement_timestamp() ELSE c.window_started_at END,
    calls = CASE WHEN c.window_started_at <= statement_timestamp() - make_interval(secs => $4)
                 THEN $2 ELSE c.calls + $2 END,
    failures = CASE WHEN c.window_started_at <= statement_timestamp() - make_interval(secs => $4)
                    THEN $3 ELSE c.failures + $3 END,
    updated_at = statement_timestamp()
WHERE c.state = 'closed'
RETURNING calls, failures
"#;

// $1 key, $2 open seconds, $3 min calls, $4 failure rate percent.
const TRIP: &str = r#"
UPDATE circuit_breakers
SET state = 'open', opened_at = statement_timestamp(),
    open_until = statement_timestamp() + make_interval(secs => $2),
    reopen_count = 0, half_open_permits_in_use = 0, calls = 0, failures = 0,
    window_started_at = statement_timestamp(), updated_at = statement_timestamp()
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
SET state = 'closed', window_started_at = statement_timestamp(), calls = 0, failures = 0,
    opened_at = NULL, open_until = NULL, reopen_count = 0, half_open_permits_in_use = 0,
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
            key,
            settings,
            db,
            actor: Actor::system(process),
            local: Mutex::new(Local::default()),
        }
    }

    /// The database key.
    pub fn key(&self) -> &str {
        &self.key
    }

    fn local(&self) -> std::sync::MutexGuard<'_, Local> {
        self.local.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Until when this process already knows the breaker is open: refuse without asking the
    /// database (or the budget).
    pub fn known_open(&self) -> Option<DateTime<Utc>> {
        match self.local().known {
            Known::Open { until, at } if Instant::now() < until => Some(at),
            _ => None,
        }
    }

    fn known_closed(&self) -> bool {
        matches!(self.local().known, Known::Closed { until } if Instant::now() < until)
    }

    fn remember_open(&self, open_until: DateTime<Utc>, now: DateTime<Utc>) {
        let left = (open_until - now).to_std().unwrap_or(Duration::ZERO);
        self.local().known = Known::Open {
            until: Instant::now() + left,
            at: open_until,
        };
    }

    /// Seen closed. Not over a known open period: that cannot end before its time (only a
    /// probe closes a breaker, after it), so the closed state seen is older.
    fn remember_closed(&self) {
        let mut local = self.local();
        let now = Instant::now();
        if !matches!(local.known, Known::Open { until, .. } if now < until) {
            local.known = Known::Closed {
                until: now + self.settings.closed_recheck,
            };
        }
    }

    /// Something says the breaker may not be closed any more: ask before the next call.
    fn doubt_closed(&self) {
        let mut local = self.local();
        if matches!(local.known, Known::Closed { .. }) {
            local.known = Known::Nothing;
        }
    }

    fn set_gauge(&self, state: BreakerState) {
        metrics::gauge!(STATE_METRIC, "breaker" => self.key.clone()).set(state.gauge_value());
    }

    fn statement(&self, sql: &str, mut values: Vec<Value>) -> Statement {
        values.insert(0, self.key.clone().into());
        Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
    }

    async fn read(&self) -> Result<Snapshot, DbErr> {
        let row = self.db.query_one_raw(self.statement(READ, vec![])).await?;
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
        let healthy = self.local().take_healthy(self.settings.window);
        if healthy > 0 && self.count(healthy, 0).await?.is_some() {
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
                        .db
                        .query_one_raw(self.statement(
                            TAKE_PROBE,
                            vec![
                                to_i32(self.settings.probe_permits).into(),
                                self.settings.probe_lease.as_secs_f64().into(),
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
        let busy = self.settings.open.min(self.settings.probe_lease);
        Ok(Admission::Refused {
            retry_at: after(snapshot.now, busy),
        })
    }

    /// Records the outcome of a call let through with `permit`: a healthy call while closed
    /// in memory (counted in the row later), anything else at once.
    pub async fn record(&self, permit: Permit, outcome: Outcome) -> Result<(), DbErr> {
        let failed = outcome == Outcome::Failed;
        match permit {
            Permit::Call if !failed => {
                let mut local = self.local();
                local.healthy += 1;
                local.healthy_since.get_or_insert_with(Instant::now);
                Ok(())
            }
            Permit::Call => {
                let healthy = self.local().take_healthy(self.settings.window);
                // No row: not closed any more (a late outcome); ask before the next call.
                let Some((calls, failures)) = self.count(healthy + 1, 1).await? else {
                    self.doubt_closed();
                    return Ok(());
                };
                let threshold = i64::from(self.settings.failure_rate_percent) * i64::from(calls);
                if calls >= to_i32(self.settings.min_calls)
                    && i64::from(failures) * 100 >= threshold
                {
                    self.trip(calls, failures).await?;
                }
                Ok(())
            }
            Permit::Probe if failed => self.reopen().await,
            Permit::Probe => self.close().await,
        }
    }

    /// Adds `calls` outcomes, `failures` of them failed, to the window's counts: the counts
    /// after, or `None` if the breaker is not closed.
    async fn count(&self, calls: u32, failures: u32) -> Result<Option<(i32, i32)>, DbErr> {
        let counted = self
            .db
            .query_one_raw(self.statement(
                RECORD,
                vec![
                    to_i32(calls).into(),
                    to_i32(failures).into(),
                    self.settings.window.as_secs_f64().into(),
                ],
            ))
            .await?;
        counted
            .map(|row| Ok((row.try_get("", "calls")?, row.try_get("", "failures")?)))
            .transpose()
    }

    /// Runs a transition statement and, if it changed the row, its audit row in the same
    /// transaction; returns the changed row.
    async fn transition(
        &self,
        statement: Statement,
        action: &str,
        payload: impl FnOnce(&QueryResult) -> Result<serde_json::Value, DbErr>,
    ) -> Result<Option<QueryResult>, DbErr> {
        let txn = self.db.begin().await?;
        let Some(row) = txn.query_one_raw(statement).await? else {
            txn.rollback().await?;
            return Ok(None);
        };
        let entry = Entry::new(self.actor.clone(), action, AUDIT_ENTITY, &self.key)
            .with_payload(payload(&row)?);
        audit::append(&txn, entry).await?;
        txn.commit().await?;
        Ok(Some(row))
    }

    async fn trip(&self, calls: i32, failures: i32) -> Result<(), DbErr> {
        let statement = self.statement(
            TRIP,
            vec![
                self.settings.open.as_secs_f64().into(),
                to_i32(self.settings.min_calls).into(),
                to_i32(self.settings.failure_rate_percent).into(),
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
                breaker = %self.key, from = "closed", to = "open", %open_until, calls, failures,
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
                              "probePermits": self.settings.probe_permits,
                              "reopenCount": reopen_count}))
                },
            )
            .await?;
        if changed.is_some() {
            self.set_gauge(BreakerState::HalfOpen);
            tracing::info!(
                breaker = %self.key, from = "open", to = "half_open",
                probe_permits = self.settings.probe_permits,
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
                breaker = %self.key, from = "half_open", to = "closed",
                "circuit breaker closed: the probe succeeded"
            );
        }
        Ok(())
    }

    async fn reopen(&self) -> Result<(), DbErr> {
        let statement = self.statement(
            REOPEN,
            vec![
                self.settings.open.as_secs_f64().into(),
                f64::from(self.settings.open_growth).into(),
                self.settings.open_max.as_secs_f64().into(),
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
                breaker = %self.key, from = "half_open", to = "open", %open_until, reopen_count,
                "circuit breaker reopened: the probe failed"
            );
        }
        Ok(())
    }
}
