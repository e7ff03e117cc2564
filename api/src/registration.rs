//! Keeping the provider's webhooks registered (`/hook/webhook`), from every api replica.
//!
//! With `PUBLIC_BASE_URL`, at start-up and every `WEBHOOK_CHECK_SECONDS` (10 minutes): `GET /hook/webhook`
//! lists the profile's registrations; each action of [`DELIVERY_ACTIONS`] not registered at
//! `<PUBLIC_BASE_URL>/v1/webhooks/ayrshare`, or registered with another secret than
//! `WEBHOOK_SECRET` (its hash is recorded), is registered with `POST /hook/webhook`. Every
//! replica may do it at once: registering the same URL again changes nothing. An action the
//! provider stopped listing is recorded as missing first (the covered platforms are polled as
//! usual from then on), and a read of their history and messages is enqueued once it is back,
//! for what was not delivered meanwhile. Without `PUBLIC_BASE_URL`, the registrations recorded
//! are removed with `DELETE /hook/webhook` (and forgotten). The calls spend the history
//! budget of Facebook (1 to 3 requests a check).

use anyhow::Context as _;
use sea_orm::DatabaseConnection;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use shared::brands::{self, DEFAULT_BRAND};
use shared::config::Settings;
use shared::domain::Platform;
use shared::ingest::{IngestStep, push};
use shared::outbox::{self, NewTask};
use shared::provider::{Ayrshare, Client, DELIVERY_ACTIONS};
use shared::resilience::BudgetClass;
use tokio_util::sync::CancellationToken;

/// The path deliveries are sent to, below `PUBLIC_BASE_URL`.
pub const RECEIVER_PATH: &str = "/v1/webhooks/ayrshare";

/// What the registrations should be: the URL and the secret, or none.
#[derive(Debug, Clone)]
struct Wanted {
    url: String,
    secret: String,
}

/// Checks the registrations now and every `WEBHOOK_CHECK_SECONDS` until `cancel` fires (without
/// `PUBLIC_BASE_URL`: until the recorded ones are removed).
pub async fn run(settings: Settings, db: DatabaseConnection, cancel: CancellationToken) {
    let api = match provider(&settings, &db) {
        Ok(api) => api,
        Err(e) => {
            tracing::error!(error = %e, "webhook registration cannot start");
            return;
        }
    };
    let wanted = wanted(&settings);
    loop {
        match check(&api, &db, wanted.as_ref(), &settings.platforms).await {
            // Disabled and nothing (left) to remove.
            Ok(()) if wanted.is_none() => return,
            Ok(()) => {}
            Err(e) => tracing::warn!(error = %e, retry_in = ?settings.webhooks.check,
                "cannot check the webhook registrations"),
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(settings.webhooks.check) => {}
        }
    }
}

fn provider(settings: &Settings, db: &DatabaseConnection) -> anyhow::Result<Ayrshare> {
    let client = Client::new(&settings.provider, settings.resilience.request_timeout)
        .context("cannot build the provider client")?;
    let key = brands::provider_key(DEFAULT_BRAND, Platform::Facebook);
    let api = Ayrshare::new(key, client, db.clone(), &settings.resilience, "api");
    Ok(api.for_class(BudgetClass::Discover))
}

fn wanted(settings: &Settings) -> Option<Wanted> {
    let base = settings.webhooks.public_base_url.as_ref()?;
    let secret = settings.webhooks.secret.as_ref()?;
    Some(Wanted {
        url: base.join(RECEIVER_PATH).ok()?.to_string(),
        secret: secret.expose_secret().to_owned(),
    })
}

/// A short hash of the secret: tells a new secret without keeping it.
fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))[..16].to_owned()
}

/// One check (see the module documentation).
async fn check(
    api: &Ayrshare,
    db: &DatabaseConnection,
    wanted: Option<&Wanted>,
    platforms: &[Platform],
) -> anyhow::Result<()> {
    let recorded = push::registrations(db, DEFAULT_BRAND).await?;
    let Some(wanted) = wanted else {
        for registration in recorded {
            match api.delete_webhook(&registration.action).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
            push::forget(db, DEFAULT_BRAND, &registration.action).await?;
            tracing::info!(action = %registration.action, "webhook removed at the provider");
        }
        return Ok(());
    };
    let hash = secret_hash(&wanted.secret);
    let listed = api.webhooks().await?;
    for action in DELIVERY_ACTIONS {
        let ours = recorded.iter().find(|r| r.action == action);
        let listed_here = listed.get(action) == Some(&wanted.url);
        let same_secret = ours.is_some_and(|r| r.secret_hash == hash);
        if listed_here && same_secret {
            push::record_confirmed(db, DEFAULT_BRAND, action, &wanted.url, &hash, false).await?;
            continue;
        }
        let was_missing = ours.is_some() && !listed_here;
        if was_missing {
            tracing::warn!(
                action,
                "the provider no longer lists our webhook; registering again"
            );
            push::record_missing(db, DEFAULT_BRAND, action).await?;
        }
        api.register_webhook(action, &wanted.url, &wanted.secret)
            .await?;
        push::record_confirmed(db, DEFAULT_BRAND, action, &wanted.url, &hash, true).await?;
        tracing::info!(action, url = %wanted.url, "webhook registered at the provider");
        if was_missing {
            catch_up(db, platforms).await?;
        }
    }
    Ok(())
}

/// Reads what deliveries may have missed: the history (and so the comments of new posts) and
/// the direct messages of the `platforms` webhooks cover.
async fn catch_up(db: &DatabaseConnection, platforms: &[Platform]) -> anyhow::Result<()> {
    for platform in push::PUSHED.into_iter().filter(|p| platforms.contains(p)) {
        for step in [IngestStep::Platform, IngestStep::Messages] {
            outbox::enqueue(db, NewTask::of(DEFAULT_BRAND, platform, &step)).await?;
        }
    }
    Ok(())
}
