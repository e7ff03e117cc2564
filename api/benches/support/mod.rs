//! What the api's benchmarks share: settings, serving a router, request rate and latency
//! percentiles.

use axum::Router;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;

/// Settings with a provider that is never called, and `pairs`.
pub fn settings(pairs: &[(&str, &str)]) -> shared::config::Settings {
    let env: HashMap<String, String> = [("SOCIAL_MEDIA_API_URL", "http://127.0.0.1:9/api")]
        .iter()
        .chain(pairs)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    shared::config::load_from(env).expect("settings")
}

/// The api's state over a pool built as the api binary builds it, with the per-token rate
/// limit out of the way; and the pool.
pub async fn api_state(
    settings: &shared::config::Settings,
) -> (api::AppState, sea_orm::DatabaseConnection) {
    let pool = shared::process::database_pool(settings)
        .await
        .expect("pool");
    let limit = api::rate_limit::RateLimit {
        per_second: 1_000_000,
        burst: 1_000_000,
    };
    let state = api::AppState::new(pool.clone(), settings).with_rate_limit(limit);
    (state, pool)
}

/// The runtime the servers of a benchmark run on, apart from the load's: two worker
/// threads, as the api binary has on this 2-core machine.
pub fn server_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("server")
        .enable_all()
        .build()
        .expect("server runtime")
}

/// Serves `router` on a free port of 127.0.0.1 (on the current runtime); its address.
pub async fn serve(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = router.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Latency figures of a series of requests.
pub struct Figures {
    pub count: usize,
    pub per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  ({} requests)",
            self.per_second,
            ms(self.p50),
            ms(self.p99),
            self.count
        )
    }
}

/// Milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The figures of `latencies` measured over `elapsed`.
pub fn figures(mut latencies: Vec<Duration>, elapsed: Duration) -> Figures {
    latencies.sort();
    let at = |q: f64| {
        let i = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i]
    };
    Figures {
        count: latencies.len(),
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
    }
}
