//! `ayrshare-sim`: a local stand-in for the parts of Ayrshare this service uses, with fault
//! injection. Tests, the local demo and the benchmarks all talk to it instead of the real
//! provider.
//!
//! - Provider surface under `/api` (Bearer auth, optional `Profile-Key`): post history with
//!   each network's fields and metrics, comments with per-platform shapes, replies, our own
//!   comments and their deletion, direct messages (newest first), the linked accounts
//!   (`/user`), webhook registrations, a rate limit with `x-ratelimit-max` /
//!   `x-ratelimit-count` headers, Ayrshare error bodies. Every JSON answer is
//!   `application/json; charset=utf-8`.
//! - One world per `Profile-Key`, as Ayrshare keeps one per User Profile: each profile has its
//!   own posts, comments, messages, ledger, rate budget, fault set, stats, webhooks and
//!   deliveries. Worlds are generated deterministically from a seed (the primary profile's
//!   from the seed itself, a named profile's from the seed and its key) on first use, plus
//!   comments and messages arriving over time at a configurable rate in each.
//! - Faults on demand ([`FaultSet`]): injected statuses, latency, timeouts, "applied but the
//!   response was lost", a read cache delay, messaging disabled, history 404s.
//! - A control surface under `/_sim` (faults, comments, messages, ledger, stats, webhooks,
//!   profiles, reset; each takes `?profile=`); its shapes are documented in the `control`
//!   module and DESIGN.md §11.
//!
//! In-process use, e.g. from another crate's tests:
//!
//! ```no_run
//! # async fn demo() -> Result<(), simulator::SimError> {
//! let sim = simulator::spawn(simulator::SimConfig {
//!     rate_limit: 0,
//!     ..simulator::SimConfig::on_free_port()
//! })
//! .await?;
//! let api = sim.api_url(); // "http://127.0.0.1:PORT/api", with `sim.api_key()`
//! # let _ = api;
//! sim.shutdown().await; // or just drop it
//! # Ok(())
//! # }
//! ```

mod api;
mod arrivals;
mod config;
mod control;
mod delivery;
mod error;
mod faults;
mod ids;
mod platform;
mod profile;
mod query;
mod rate_limit;
mod render;
mod serve;
mod sim;
mod stats;
mod time;
mod webhooks;
mod world;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::{DEFAULT_ADDR, DEFAULT_API_KEY, DEFAULT_PLATFORMS, SimConfig};
pub use faults::{Endpoint, FaultKind, FaultRule, FaultSet, FaultSetError, Scope};
pub use platform::{Platform, UnknownPlatform};
pub use world::{Account, our_account};

use crate::sim::Sim;

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A setting the simulator cannot honour.
    #[error("invalid simulator configuration: {0}")]
    Config(String),
    /// The listen address is unavailable.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
}

/// A running simulator. Dropping it (or [`Simulator::shutdown`]) stops it: no new
/// connections, and open ones get a second to finish.
#[derive(Debug)]
pub struct Simulator {
    addr: SocketAddr,
    api_key: String,
    shutdown: CancellationToken,
    server: Option<JoinHandle<()>>,
}

impl Simulator {
    /// The address it listens on (with the real port when started on port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`: the root, where `/_sim` lives.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://<addr>/api`: what the service's `SOCIAL_MEDIA_API_URL` points to.
    pub fn api_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    /// The API key clients must send as `Authorization: Bearer <key>`.
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// Stops accepting connections and waits for the accept loop to end.
    pub async fn shutdown(mut self) {
        self.stop().await;
    }

    /// Like [`Simulator::shutdown`], but keeps the handle: from then on its address refuses
    /// connections, as an unreachable provider does.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take()
            && let Err(error) = server.await
        {
            tracing::warn!(%error, "simulator server task failed");
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Starts a simulator on `config.addr` in the current tokio runtime.
pub async fn spawn(mut config: SimConfig) -> Result<Simulator, SimError> {
    let mut seen = Vec::with_capacity(config.platforms.len());
    config.platforms.retain(|p| {
        let first = !seen.contains(p);
        seen.push(*p);
        first
    });
    config.validate().map_err(SimError::Config)?;
    let requested = config.addr;
    let bind_error = |source| SimError::Bind {
        addr: requested,
        source,
    };
    let listener = TcpListener::bind(requested).await.map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    let api_key = config.api_key.clone();

    let sim = Arc::new(Sim::new(config));
    let shutdown = CancellationToken::new();
    let router = Router::new()
        .nest("/api", api::router())
        .nest("/_sim", control::router())
        .layer(axum::middleware::map_response(serve::json_utf8))
        .with_state(sim.clone());
    tokio::spawn(arrivals::run(sim, shutdown.clone()));
    let server = tokio::spawn(serve::serve(listener, router, shutdown.clone()));
    tracing::info!(%addr, "ayrshare-sim started");
    Ok(Simulator {
        addr,
        api_key,
        shutdown,
        server: Some(server),
    })
}
