//! Overhead of the resilience chain (`cargo bench -p shared --bench provider_chain`): one
//! client calling `GET /history` on the simulator in-process (127.0.0.1, no rate limit), one
//! call at a time, through the chain and as a bare reqwest call, interleaved in rounds in the
//! same run. Prints medians and tails, the ratio of medians, and the chain's steps alone: a
//! budget slot from the database (one round trip per call), and budget take + breaker
//! admission + breaker record as a call makes them (the breaker from memory between
//! rechecks). Then the same comparison with 20 ms of provider latency, closer to a real
//! provider. `PROVIDER_BENCH_CALLS` (default
//! 2000) calls per variant; needs the local PostgreSQL (a fresh database, dropped after).
//!
//! The budget keeps its default size (300 per 5 minutes), so its grant log has the size it
//! has in production; calls spend the `reply` class (not paced) and rotate over enough
//! profiles (chains) that none runs out.

use anyhow::Context;
use serde_json::{Value, json};
use shared::domain::Platform;
use shared::provider::{Ayrshare, Client, HistoryQuery, ProviderKey};
use shared::resilience::{
    Admission, BreakerSettings, BudgetClass, CircuitBreaker, Health, RateBudget, Take,
};
use shared::testing::TestDb;
use simulator::SimConfig;
use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

/// Calls per round of each variant; variants alternate round by round.
const ROUND: usize = 100;

/// Calls per variant before measuring.
const WARM_UP: usize = 200;

/// Calls per variant with provider latency.
fn slow_calls(n: usize) -> usize {
    (n / 10).max(50)
}

fn calls() -> usize {
    std::env::var("PROVIDER_BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

/// Latencies of one variant, sorted.
struct Sample {
    name: &'static str,
    micros: Vec<f64>,
}

impl Sample {
    fn quantile(&self, q: f64) -> f64 {
        let i = ((self.micros.len() - 1) as f64 * q).round() as usize;
        self.micros[i]
    }

    fn median(&self) -> f64 {
        self.quantile(0.5)
    }

    fn print(&self, baseline: &Sample) {
        println!(
            "  {:<36} median {:>7.1} µs  p90 {:>7.1} µs  p99 {:>7.1} µs  ratio {:.2}×",
            self.name,
            self.median(),
            self.quantile(0.9),
            self.quantile(0.99),
            self.median() / baseline.median()
        );
    }
}

async fn time<F, Fut>(f: &F) -> anyhow::Result<f64>
where
    F: Fn() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let started = Instant::now();
    f().await?;
    Ok(started.elapsed().as_secs_f64() * 1e6)
}

/// Runs `bare` and `chained` alternately, `ROUND` calls at a time, `n` calls each.
async fn compare<B, BF, C, CF>(n: usize, bare: B, chained: C) -> anyhow::Result<(Sample, Sample)>
where
    B: Fn() -> BF,
    BF: Future<Output = anyhow::Result<()>>,
    C: Fn() -> CF,
    CF: Future<Output = anyhow::Result<()>>,
{
    let mut a = Sample {
        name: "bare reqwest call",
        micros: Vec::with_capacity(n),
    };
    let mut b = Sample {
        name: "through the chain",
        micros: Vec::with_capacity(n),
    };
    while a.micros.len() < n {
        for _ in 0..ROUND.min(n - a.micros.len()) {
            a.micros.push(time(&bare).await?);
        }
        for _ in 0..ROUND.min(n - b.micros.len()) {
            b.micros.push(time(&chained).await?);
        }
    }
    a.micros.sort_by(f64::total_cmp);
    b.micros.sort_by(f64::total_cmp);
    Ok((a, b))
}

async fn measure<F, Fut>(name: &'static str, n: usize, f: F) -> anyhow::Result<Sample>
where
    F: Fn() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut sample = Sample {
        name,
        micros: Vec::with_capacity(n),
    };
    for _ in 0..n {
        sample.micros.push(time(&f).await?);
    }
    sample.micros.sort_by(f64::total_cmp);
    Ok(sample)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n = calls();
    let sim = simulator::spawn(SimConfig {
        rate_limit: 0,
        ..SimConfig::on_free_port()
    })
    .await?;
    let db = TestDb::new().await;
    let api = sim.api_url();
    let env = HashMap::from([("SOCIAL_MEDIA_API_URL".to_owned(), api.clone())]);
    let settings = shared::config::load_from(env).context("settings")?;
    let budget_size = settings.resilience.rate_budget_requests as usize;
    let client = Client::new(&settings.provider, settings.resilience.request_timeout)?;
    // Every call through a ayrshare, warm-up and slow rounds included, inside the budgets.
    let chained_calls = WARM_UP + n + slow_calls(n);
    let chains: Vec<Ayrshare> = (0..chained_calls.div_ceil(budget_size - 10))
        .map(|i| -> anyhow::Result<Ayrshare> {
            let key = ProviderKey {
                profile: Some(format!("bench{i}").parse()?),
                platform: Platform::Twitter,
            };
            Ok(Ayrshare::new(
                key,
                client.clone(),
                db.conn().clone(),
                &settings.resilience,
                "bench",
            )
            .for_class(BudgetClass::Reply))
        })
        .collect::<anyhow::Result<_>>()?;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let query = HistoryQuery {
        last_days: 30,
        limit: Some(5),
    };
    let http = reqwest::Client::new();
    let url = format!("{api}/history?lastDays=30&platform=twitter&limit=5");
    let key = sim.api_key().to_owned();

    let bare = || async {
        let body = http
            .get(&url)
            .bearer_auth(&key)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        anyhow::ensure!(!body.is_empty());
        Ok(())
    };
    let chained = || async {
        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let posts = chains[i % chains.len()].history(&query).await?;
        anyhow::ensure!(posts.len() == 5);
        Ok(())
    };
    // Warm-up: connections, prepared statements, the budget and breaker rows.
    compare(WARM_UP, bare, chained).await?;

    println!(
        "provider chain overhead, {n} sequential calls per variant, GET /history (5 posts), \
         budget {budget_size} per {} s",
        settings.resilience.rate_budget_window.as_secs()
    );
    println!("simulator without added latency:");
    let (base, through) = compare(n, bare, chained).await?;
    base.print(&base);
    through.print(&base);
    let parsed = measure("bare call + JSON parse", n, || async {
        let body: Value = http
            .get(&url)
            .bearer_auth(&key)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        anyhow::ensure!(body["history"].is_array());
        Ok(())
    })
    .await?;
    parsed.print(&base);

    println!("the chain's steps alone:");
    let budgets: Vec<RateBudget> = (0..n.div_ceil(budget_size - 10))
        .map(|i| {
            RateBudget::new(
                format!("bench-budget-{i}"),
                settings.resilience.rate_budget_requests,
                settings.resilience.rate_budget_window,
                0,
                db.conn().clone(),
            )
        })
        .collect();
    let next_budget = std::sync::atomic::AtomicUsize::new(0);
    measure("budget: one slot from the database", n, || async {
        let i = next_budget.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let take = budgets[i % budgets.len()]
            .try_take(BudgetClass::Reply)
            .await?;
        anyhow::ensure!(matches!(take, Take::Granted(_)), "budget spent");
        Ok(())
    })
    .await?
    .print(&base);
    let breaker = CircuitBreaker::new(
        "bench-breaker".into(),
        BreakerSettings::from(&settings.resilience),
        db.conn().clone(),
        "bench",
    );
    let budget = RateBudget::new(
        "bench-budget-steps".into(),
        u32::try_from(n).unwrap_or(u32::MAX).saturating_mul(10),
        settings.resilience.rate_budget_window,
        0,
        db.conn().clone(),
    );
    measure("budget + breaker steps of a call", n, || async {
        let slot = budget.take(BudgetClass::Reply, Duration::ZERO).await?;
        budget.used(slot);
        let Admission::Granted(permit) = breaker.admit().await? else {
            anyhow::bail!("the breaker refused");
        };
        breaker.record(permit, Health::Healthy).await?;
        Ok(())
    })
    .await?
    .print(&base);

    let slow_calls = slow_calls(n);
    let faults = json!({"rules": [{"endpoint": "history", "fault": "latency", "ms": 20}]});
    http.post(format!("{}/_sim/faults", sim.base_url()))
        .json(&faults)
        .send()
        .await?
        .error_for_status()?;
    println!("simulator with 20 ms latency ({slow_calls} calls per variant):");
    let (base, through) = compare(slow_calls, bare, chained).await?;
    base.print(&base);
    through.print(&base);
    Ok(())
}
