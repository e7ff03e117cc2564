//! `cargo run --release -p chaos`: the whole system under crashes and faults, then the
//! exactly-once invariants checked (DESIGN §12, issue 19).
//!
//! 1. Builds the real binaries (`api`, `ingestor`, `replier`, `ayrshare-sim`, `migrations`) in
//!    release and starts them from the target directory against a PostgreSQL cluster and a
//!    RabbitMQ node of their own ([`shared::testing::PgCluster`], [`RabbitNode`]), on free
//!    ports of 127.0.0.1: the machine's services are never touched. One simulator, one api,
//!    two ingestors, two repliers.
//! 2. For [`CHAOS`], customers comment and send DMs through the simulator's control API, and
//!    an agent requests replies through the api (with an `Idempotency-Key`, repeated after a
//!    failure) while the simulator answers 5xx, 429, lost responses, timeouts past the
//!    provider timeout, definite 400 rejections of replies, and hides new items behind a
//!    30 s read cache; reads of one platform fail outright for a while, long enough for
//!    `REPLY_UNDECIDED_LIMIT_SECONDS` to be reached ([`faults`]). Meanwhile a random worker is
//!    SIGKILLed every few seconds and started again, the api is SIGKILLed twice, the RabbitMQ
//!    node is killed and restarted twice, the PostgreSQL cluster restarted once and the broker
//!    raises a memory alarm once ([`schedule`]).
//! 3. The faults stop and the system settles, at most [`SETTLE`]; then [`verdict`] compares
//!    the simulator's world and ledger with the database and prints a report and one line
//!    `lost=… dup=… stuck=… unmatched=… sent=… failed=… undecided=…`. The exit code is 0 only
//!    if `lost`, `dup`, `stuck` and `unmatched` are all 0.
//!
//! Everything after the build is bounded by [`DEADLINE`]; every wait in it is bounded too. On
//! any failure, timeout or Ctrl-C, the processes are killed and the cluster and node deleted
//! (their guards drop). `CHAOS_SEED` fixes the random choices (printed at the start).

mod faults;
mod schedule;
mod stack;
mod verdict;
mod workload;

use shared::testing::RabbitNode;
use std::process::ExitCode;
use std::time::Duration;

/// The run after the build: start-up, chaos, settling and the report.
const DEADLINE: Duration = Duration::from_secs(600);
/// How long the workload and the chaos last.
const CHAOS: Duration = Duration::from_secs(240);
/// Longest wait for the system to settle once the faults stop.
const SETTLE: Duration = Duration::from_secs(200);

fn main() -> ExitCode {
    if let Err(e) = stack::build_binaries() {
        eprintln!("chaos: {e}");
        return ExitCode::FAILURE;
    }
    let seed = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        tokio::select! {
            outcome = tokio::time::timeout(DEADLINE, run(seed)) => match outcome {
                Ok(verdict) if verdict.holds() => ExitCode::SUCCESS,
                Ok(_) => ExitCode::FAILURE,
                Err(_) => {
                    eprintln!("chaos: not finished within {DEADLINE:?}; stopped");
                    ExitCode::FAILURE
                }
            },
            _ = tokio::signal::ctrl_c() => {
                eprintln!("chaos: interrupted");
                ExitCode::FAILURE
            }
        }
    })
    // Leaving `block_on` dropped the run's future: processes, cluster and node are gone.
}

async fn run(seed: u64) -> verdict::Verdict {
    println!("chaos: seed {seed} (CHAOS_SEED={seed} repeats the random choices)");
    let mut stack = stack::Stack::start().await;
    let world = workload::World::read(&stack.endpoints).await;
    println!(
        "chaos: started; world of {} posts and {} conversations",
        world.posts.len(),
        world.conversations.len()
    );

    faults::inject(&stack.endpoints, faults::chaos()).await;
    let mut workload = workload::Workload::new(seed, world);
    let events = schedule::plan(seed, CHAOS);
    tokio::join!(
        workload.run(&stack.endpoints, CHAOS),
        schedule::play(
            &events,
            &mut stack.processes,
            &stack.infra,
            &stack.endpoints
        ),
    );
    faults::clear(&stack.endpoints).await;
    stack.processes.restart_exited(&stack.endpoints).await;
    workload.finish(&stack.endpoints).await;
    println!("chaos: faults off; settling (at most {SETTLE:?})");

    let verdict = verdict::settle(&stack.endpoints, SETTLE).await;
    stack.processes.note_exits();
    verdict.report(&workload.summary(), &stack.processes.summary());
    verdict
}

/// The two infrastructure services of a run (dropped last: after the processes).
pub struct Infra {
    pub db: shared::testing::PgCluster,
    pub broker: RabbitNode,
}
