//! What every handler can reach: the database pool and the broker connection.

use sea_orm::DatabaseConnection;
use shared::config::Settings;
use shared::process;
use std::sync::Arc;
use tokio::sync::RwLock;
use tokio_util::sync::CancellationToken;

/// Shared state of the API.
#[derive(Clone)]
pub struct AppState {
    /// The (lazy) PostgreSQL pool.
    pub db: DatabaseConnection,
    broker: Arc<RwLock<Option<lapin::Connection>>>,
}

impl AppState {
    /// Builds the state and starts keeping a broker connection up until `cancel` fires.
    pub async fn start(settings: &Settings, cancel: CancellationToken) -> anyhow::Result<Self> {
        let db = process::database_pool(settings).await?;
        let broker = Arc::new(RwLock::new(None));
        tokio::spawn(keep_broker_connected(
            settings.clone(),
            broker.clone(),
            cancel,
        ));
        Ok(Self { db, broker })
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
