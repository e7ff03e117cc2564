//! What the chaos does and when: a plan of timed events, then playing it.
//!
//! From 5 s on, a random worker (of the two ingestors and two repliers) is SIGKILLed every
//! 5–9 s and started again 1–3 s later; the api is SIGKILLed at 45 s and 165 s (3 s down);
//! the RabbitMQ node is killed and started again at 70 s and 190 s; a memory alarm blocks
//! publishers from 105 s to 115 s; the PostgreSQL cluster is stopped at 130 s for 5 s; the
//! read outage of [`crate::faults::OUTAGE_PLATFORM`] lasts from 140 s to 210 s. Events late
//! behind a slow one (a node restart takes seconds) run as soon as it ends.

use crate::Infra;
use crate::faults;
use crate::stack::{Endpoints, Processes};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub enum Action {
    KillWorker(usize),
    StartWorker(usize),
    KillApi,
    StartApi,
    RestartBroker,
    StopDatabase,
    StartDatabase,
    MemoryAlarm(bool),
    ReadOutage(bool),
}

pub struct Event {
    at: Duration,
    action: Action,
}

/// The events of a chaos phase of length `length` (at least 215 s for every fixed event),
/// sorted by time; the worker kills drawn from `seed`.
pub fn plan(seed: u64, length: Duration) -> Vec<Event> {
    let secs = Duration::from_secs;
    let mut events: Vec<Event> = [
        (45, Action::KillApi),
        (48, Action::StartApi),
        (70, Action::RestartBroker),
        (105, Action::MemoryAlarm(true)),
        (115, Action::MemoryAlarm(false)),
        (130, Action::StopDatabase),
        (135, Action::StartDatabase),
        (140, Action::ReadOutage(true)),
        (165, Action::KillApi),
        (168, Action::StartApi),
        (190, Action::RestartBroker),
        (210, Action::ReadOutage(false)),
    ]
    .into_iter()
    .map(|(at, action)| Event {
        at: secs(at),
        action,
    })
    .collect();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut at = secs(5);
    while at + secs(5) < length {
        let worker = rng.random_range(0..4);
        events.push(Event {
            at,
            action: Action::KillWorker(worker),
        });
        events.push(Event {
            at: at + Duration::from_millis(rng.random_range(1000..3000)),
            action: Action::StartWorker(worker),
        });
        at += Duration::from_millis(rng.random_range(5000..9000));
    }
    events.sort_by_key(|e| e.at);
    events
}

/// Plays `events` from now; after each one, a process that exited on its own is recorded
/// and started again.
pub async fn play(
    events: &[Event],
    processes: &mut Processes,
    infra: &Infra,
    endpoints: &Endpoints,
) {
    let t0 = tokio::time::Instant::now();
    for event in events {
        tokio::time::sleep_until(t0 + event.at).await;
        let env = processes.env.clone();
        match event.action {
            Action::KillWorker(i) => processes.workers[i].kill(),
            Action::StartWorker(i) => processes.workers[i].ensure_started(&env),
            Action::KillApi => processes.api.kill(),
            Action::StartApi => processes.api.ensure_started(&env),
            Action::RestartBroker => infra.broker.restart().await,
            Action::StopDatabase => infra.db.stop().await,
            Action::StartDatabase => infra.db.start_again().await,
            Action::MemoryAlarm(on) => infra.broker.set_memory_alarm(on).await,
            Action::ReadOutage(true) => faults::inject(endpoints, faults::read_outage()).await,
            Action::ReadOutage(false) => faults::inject(endpoints, faults::chaos()).await,
        }
        if !matches!(event.action, Action::KillWorker(_) | Action::StartWorker(_)) {
            println!(
                "chaos: {:>5.1} s {:?}",
                t0.elapsed().as_secs_f64(),
                event.action
            );
        }
        processes.revive();
    }
}
