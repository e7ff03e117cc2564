//! Running the outbox loops of a process in the background.

use crate::config::Settings;
use crate::ingest::plan::{self, PlanSettings};
use crate::outbox::sweeper::SweeperConfig;
use crate::outbox::{Relay, RelayConfig, dead_letters, monitor, scheduler, sweeper};
use sea_orm::DatabaseConnection;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Which outbox loops a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loops {
    /// The relay (pending rows → broker).
    pub relay: bool,
    /// The sweeper (expired leases, lost messages) and the dead-letter recorder.
    pub sweeper: bool,
    /// The poll scheduler (one ingest per platform and interval) and planner (comments
    /// re-reads within the budget).
    pub scheduler: bool,
    /// The gauges (tasks by kind and status, relay lag, queue depth) and the audit chain
    /// head's periodic log line (`crate::audit::log_head`).
    pub monitor: bool,
}

impl Loops {
    /// `api`: everything; the relay unless `RELAY_ENABLED=false`.
    pub fn api(settings: &Settings) -> Loops {
        Loops {
            relay: settings.tasks.relay_enabled.unwrap_or(true),
            sweeper: true,
            scheduler: true,
            monitor: true,
        }
    }

    /// A worker process: only the relay, and only with `RELAY_ENABLED=true`.
    pub fn worker(settings: &Settings) -> Loops {
        Loops {
            relay: settings.tasks.relay_enabled.unwrap_or(false),
            sweeper: false,
            scheduler: false,
            monitor: false,
        }
    }
}

/// The running loops; they stop when the token given to [`Background::spawn`] fires.
pub struct Background {
    loops: JoinSet<()>,
}

impl Background {
    /// Starts `loops` on `db` with the process's settings.
    pub fn spawn(
        db: DatabaseConnection,
        settings: &Settings,
        process_name: &str,
        loops: Loops,
        cancel: CancellationToken,
    ) -> Background {
        // Installs the metrics recorder before anything records.
        crate::telemetry::metrics_handle();
        let mut set = JoinSet::new();
        if loops.relay {
            let relay = Arc::new(Relay::new(
                db.clone(),
                RelayConfig::from_settings(settings, process_name),
            ));
            let cancel = cancel.clone();
            set.spawn(async move { relay.run(&cancel).await });
            tracing::info!(process = process_name, "outbox relay started");
        }
        if loops.sweeper {
            let config = SweeperConfig {
                interval: settings.tasks.sweeper_interval,
                published_timeout: settings.tasks.published_timeout,
                max_attempts: settings.tasks.max_attempts,
                process_name: process_name.to_owned(),
                idempotency_key_ttl: settings.replies.idempotency_key_ttl,
            };
            let (sweeper_db, amqp_url, sweeper_cancel) =
                (db.clone(), settings.amqp_url.clone(), cancel.clone());
            set.spawn(async move {
                sweeper::run(&sweeper_db, &config, &amqp_url, &sweeper_cancel).await
            });
            let (db, amqp_url, cancel) = (db.clone(), settings.amqp_url.clone(), cancel.clone());
            let process_name = process_name.to_owned();
            set.spawn(
                async move { dead_letters::run(&db, &amqp_url, &process_name, &cancel).await },
            );
        }
        if loops.scheduler {
            let platforms = settings.platforms.clone();
            let interval = scheduler::history_interval(settings);
            tracing::info!(
                interval_s = interval.as_secs_f64(),
                "poll scheduler started: one history read per platform and interval"
            );
            let plan = PlanSettings::from_settings(settings);
            let push = plan.push;
            let (scheduler_db, scheduler_cancel) = (db.clone(), cancel.clone());
            set.spawn(async move {
                scheduler::run(&scheduler_db, &platforms, interval, push, &scheduler_cancel).await
            });
            let (db, cancel) = (db.clone(), cancel.clone());
            set.spawn(async move { plan::run(&db, &plan, &cancel).await });
        }
        if loops.monitor {
            let interval = settings.audit_head_log_interval;
            let (audit_db, audit_cancel) = (db.clone(), cancel.clone());
            set.spawn(
                async move { crate::audit::log_head(&audit_db, interval, &audit_cancel).await },
            );
            let platforms = settings.platforms.clone();
            let amqp_url = settings.amqp_url.clone();
            let (db, cancel) = (db.clone(), cancel.clone());
            set.spawn(async move { monitor::run(&db, &amqp_url, &platforms, &cancel).await });
        }
        Background { loops: set }
    }

    /// Waits for the loops to stop (after the token fired), at most `limit`; a loop still
    /// running then (a relay batch waiting for confirmations) is aborted, which rolls its
    /// transaction back: its rows simply stay pending.
    pub async fn join(mut self, limit: Duration) {
        let all = async { while self.loops.join_next().await.is_some() {} };
        if tokio::time::timeout(limit, all).await.is_err() {
            tracing::warn!(?limit, "outbox loops still busy; aborting them");
            self.loops.shutdown().await;
        }
    }
}
