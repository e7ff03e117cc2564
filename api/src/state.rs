//! What every handler can reach: the database pool and the broker connection.

use crate::events::Feed;
use crate::rate_limit::{RateLimit, RateLimiter};
use crate::routes::budget::BudgetConfig;
use crate::webhooks::WebhookKeys;
use sea_orm::DatabaseConnection;
use shared::brands::BrandsKey;
use shared::config::Settings;
use shared::db::users::LoginThrottle;
use shared::domain::{Platform, TokenId};
use shared::ingest::plan::PlanSettings;
use shared::process;
use std::net::IpAddr;
use std::sync::Arc;
use tokio::sync::RwLock;
use tokio_util::sync::CancellationToken;

/// Look-ups of unknown tokens allowed per client address: 20 at once, then 5 a second.
const UNKNOWN_TOKENS_PER_ADDRESS: RateLimit = RateLimit {
    per_second: 5,
    burst: 20,
};

/// Shared state of the API.
#[derive(Clone)]
pub struct AppState {
    /// The (lazy) PostgreSQL pool.
    pub db: DatabaseConnection,
    broker: Arc<RwLock<Option<lapin::Connection>>>,
    /// Per-token request limit.
    pub(crate) limiter: Arc<RateLimiter<TokenId>>,
    /// Token look-ups that found nothing, per client address.
    pub(crate) token_lookups: Arc<RateLimiter<IpAddr>>,
    /// How failed logins slow an address down.
    pub(crate) login_throttle: LoginThrottle,
    /// The configured platforms (`SOCIAL_PLATFORMS`), for the health report.
    pub(crate) platforms: Arc<[Platform]>,
    /// Origins allowed by CORS (`CORS_ALLOWED_ORIGINS`).
    pub(crate) cors_allowed_origins: Arc<[String]>,
    /// The provider budget as configured, for `GET /v1/status/budget`.
    pub(crate) budget: Arc<BudgetConfig>,
    /// The live events this process fans out (`GET /v1/events`).
    pub(crate) events: Feed,
    /// Fires when the process stops: event streams end with it.
    pub(crate) shutdown: CancellationToken,
    /// How webhook deliveries are verified.
    pub(crate) webhook_keys: Arc<WebhookKeys>,
    /// `BRANDS_KEY`, which seals the Profile-Keys that `POST`/`PATCH /v1/brands` store.
    pub(crate) brands_key: Option<BrandsKey>,
}

impl AppState {
    /// Builds the state and starts keeping a broker connection up until `cancel` fires.
    pub async fn start(settings: &Settings, cancel: CancellationToken) -> anyhow::Result<Self> {
        let db = process::database_pool(settings).await?;
        let broker = Arc::new(RwLock::new(None));
        tokio::spawn(keep_broker_connected(
            settings.clone(),
            broker.clone(),
            cancel.clone(),
        ));
        Ok(Self {
            broker,
            shutdown: cancel,
            ..Self::new(db, settings)
        })
    }

    /// State over an existing pool, without a broker connection (tests and benchmarks serve
    /// `crate::router` with it; `/readyz` then reports the broker down).
    pub fn new(db: DatabaseConnection, settings: &Settings) -> Self {
        Self {
            db,
            broker: Arc::new(RwLock::new(None)),
            limiter: Arc::new(RateLimiter::new(RateLimit {
                per_second: settings.api_rate_limit_per_second,
                burst: settings.api_rate_limit_burst,
            })),
            token_lookups: Arc::new(RateLimiter::new(UNKNOWN_TOKENS_PER_ADDRESS)),
            login_throttle: LoginThrottle::default(),
            platforms: settings.platforms.clone().into(),
            cors_allowed_origins: settings.cors_allowed_origins.clone().into(),
            budget: Arc::new(BudgetConfig {
                limit: settings.resilience.rate_budget_requests,
                window: settings.resilience.rate_budget_window,
                reserve_percent: settings.resilience.budget_reserve_percent,
                plan: PlanSettings::from_settings(settings),
            }),
            events: Feed::default(),
            shutdown: CancellationToken::new(),
            webhook_keys: Arc::new(WebhookKeys::from_settings(&settings.webhooks)),
            brands_key: settings.brands_key.clone(),
        }
    }

    /// Starts reading the events `GET /v1/events` streams, until the state's shutdown (the
    /// process's cancellation, or never for a state made by [`AppState::new`]).
    pub fn spawn_event_feed(&self) {
        tokio::spawn(
            self.events
                .clone()
                .run(self.db.clone(), self.shutdown.clone()),
        );
    }

    /// The same state with another per-token rate limit.
    pub fn with_rate_limit(mut self, limit: RateLimit) -> Self {
        self.limiter = Arc::new(RateLimiter::new(limit));
        self
    }

    /// The same state with another login throttle.
    pub fn with_login_throttle(mut self, throttle: LoginThrottle) -> Self {
        self.login_throttle = throttle;
        self
    }

    /// Whether the broker connection is currently up.
    pub async fn broker_connected(&self) -> bool {
        self.broker
            .read()
            .await
            .as_ref()
            .is_some_and(|c| c.status().connected())
    }
}

async fn keep_broker_connected(
    settings: Settings,
    slot: Arc<RwLock<Option<lapin::Connection>>>,
    cancel: CancellationToken,
) {
    loop {
        let Some(conn) = process::wait_for_broker(&settings, "api", &cancel).await else {
            break;
        };
        tracing::info!("broker connected");
        *slot.write().await = Some(conn);
        // Poll the connection's status: lapin reports a lost connection there.
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
            }
            let connected = slot
                .read()
                .await
                .as_ref()
                .is_some_and(|c| c.status().connected());
            if !connected {
                tracing::warn!("broker connection lost; reconnecting");
                break;
            }
        }
        if cancel.is_cancelled() {
            break;
        }
    }
    if let Some(conn) = slot.write().await.take() {
        let _ = conn.close(200, "api stopping".into()).await;
    }
}
