//! The `api` process: the HTTP API of Social Messages.
//!
//! [`run`] serves until the cancellation token fires, then drains in-flight requests for at most
//! the configured grace period. The database pool is lazy and the broker connection is kept up
//! in the background, so the API answers `/healthz` even while its dependencies are down and
//! `/readyz` says which one is.

pub mod accounts;
pub mod admin;
pub mod auth;
mod cursor;
pub mod error;
mod events;
mod extract;
mod http_metrics;
mod openapi;
mod page;
pub mod rate_limit;
mod registration;
pub mod routes;
mod state;
mod web;
pub mod webhooks;

pub use state::AppState;

use anyhow::Context;
use shared::config::Settings;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The whole HTTP surface (see [`routes`]).
pub fn router(state: AppState) -> axum::Router {
    routes::router(state)
}

/// Binds `settings.api_addr`, then serves until `cancel` fires.
pub async fn run(settings: Settings, cancel: CancellationToken) -> anyhow::Result<()> {
    let listener = TcpListener::bind(settings.api_addr)
        .await
        .with_context(|| format!("cannot listen on {} (API_ADDR)", settings.api_addr))?;
    serve(listener, settings, cancel).await
}

/// Serves on an already bound listener (tests bind port 0).
pub async fn serve(
    listener: TcpListener,
    settings: Settings,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let addr: SocketAddr = listener.local_addr()?;
    let state = AppState::start(&settings, cancel.clone()).await?;
    // The outbox relay, sweeper, poll scheduler and gauges; they stop with `cancel`.
    let background = shared::outbox::Background::spawn(
        state.db.clone(),
        &settings,
        "api",
        shared::outbox::Loops::api(&settings),
        cancel.clone(),
    );
    state.spawn_event_feed();
    tokio::spawn(registration::run(
        settings.clone(),
        state.db.clone(),
        cancel.clone(),
    ));
    tracing::info!(%addr, "api listening");
    // Peer addresses feed the login throttle.
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(cancel.clone().cancelled_owned())
        .into_future();
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => result.context("http server failed")?,
        () = async {
            cancel.cancelled().await;
            tokio::time::sleep(settings.shutdown_grace).await;
        } => tracing::warn!(grace = ?settings.shutdown_grace, "requests still open after the grace period; closing them"),
    }
    background.join(settings.shutdown_grace).await;
    tracing::info!("api stopped");
    Ok(())
}
