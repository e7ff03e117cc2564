//! Keeping the provider's webhooks registered (`/hook/webhook`), from every api replica, for
//! every brand's profile (with the brand's Profile-Key).
//!
//! With `PUBLIC_BASE_URL`, at start-up and every `WEBHOOK_CHECK_SECONDS` (10 minutes), for each
//! enabled brand: `GET /hook/webhook` lists the profile's registrations; each action of
//! [`DELIVERY_ACTIONS`] not registered at the brand's URL (`<PUBLIC_BASE_URL>/v1/webhooks/ayrshare`
//! for the default brand, with `?brandId=<id>` for the others), or registered with another
//! secret than the brand's ([`brand_secret`] of `WEBHOOK_SECRET`; its hash is recorded), is
//! registered with `POST /hook/webhook`. Every replica may do it at once: registering the same
//! URL again changes nothing. An action the provider stopped listing is recorded as missing
//! first (the covered platforms are polled as usual from then on), and a read of their history
//! and messages is enqueued once it is back, for what was not delivered meanwhile. Without
//! `PUBLIC_BASE_URL`, and for a disabled brand, the registrations recorded are removed with
//! `DELETE /hook/webhook` (and forgotten). One brand failing does not stop the others' checks.
//! The calls spend the brand's history budget of Facebook (1 to 3 requests a check).

use crate::webhooks::brand_secret;
use anyhow::Context as _;
use sea_orm::DatabaseConnection;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use shared::brands::{self, Brand, DEFAULT_BRAND};
use shared::config::Settings;
use shared::domain::{BrandId, Platform};
use shared::ingest::{IngestStep, push};
use shared::outbox::{self, NewTask};
use shared::provider::{Ayrshare, Client, DELIVERY_ACTIONS, PlatformApis};
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
    let apis = match provider(&settings) {
        Ok(apis) => apis,
        Err(e) => {
            tracing::error!(error = %e, "webhook registration cannot start");
            return;
        }
    };
    let enabled = settings.webhooks.public_base_url.is_some() && settings.webhooks.secret.is_some();
    loop {
        match check_all(&apis, &db, &settings).await {
            // Disabled and nothing (left) to remove.
            Ok(()) if !enabled => return,
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

fn provider(settings: &Settings) -> anyhow::Result<PlatformApis> {
    let client = Client::new(&settings.provider, settings.resilience.request_timeout)
        .context("cannot build the provider client")?;
    Ok(PlatformApis::new(
        client,
        &settings.resilience,
        "api",
        BudgetClass::Discover,
        2 * settings.resilience.rate_budget_window,
        settings.brands_key.clone(),
    ))
}

/// One check of every brand; the brands that could not be checked are named in the error.
async fn check_all(
    apis: &PlatformApis,
    db: &DatabaseConnection,
    settings: &Settings,
) -> anyhow::Result<()> {
    let mut failed = Vec::new();
    for brand in brands::list(db).await? {
        let wanted = wanted(settings, &brand);
        let platforms = brand.watched(&settings.platforms);
        let checked = async {
            let profile = apis.brand(db, brand.id).await?;
            let api = apis.get(db, &profile, Platform::Facebook)?;
            check(&api, db, brand.id, wanted.as_ref(), &platforms).await
        };
        if let Err(e) = checked.await {
            tracing::warn!(brand_id = %brand.id, error = %e,
                "cannot check the brand's webhook registrations");
            failed.push(brand.id.to_string());
        }
    }
    match failed.is_empty() {
        true => Ok(()),
        false => anyhow::bail!("brands not checked: {}", failed.join(", ")),
    }
}

/// What `brand`'s registrations should be (none without `PUBLIC_BASE_URL` or
/// `WEBHOOK_SECRET`, or while it is disabled).
fn wanted(settings: &Settings, brand: &Brand) -> Option<Wanted> {
    if brand.disabled_at.is_some() {
        return None;
    }
    let base = settings.webhooks.public_base_url.as_ref()?;
    let secret = settings.webhooks.secret.as_ref()?;
    let mut url = base.join(RECEIVER_PATH).ok()?;
    if brand.id != DEFAULT_BRAND {
        url.query_pairs_mut()
            .append_pair("brandId", &brand.id.to_string());
    }
    Some(Wanted {
        url: url.to_string(),
        secret: brand_secret(secret.expose_secret(), brand.id),
    })
}

/// A short hash of the secret: tells a new secret without keeping it.
fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))[..16].to_owned()
}

/// One check of `brand` (see the module documentation).
async fn check(
    api: &Ayrshare,
    db: &DatabaseConnection,
    brand: BrandId,
    wanted: Option<&Wanted>,
    platforms: &[Platform],
) -> anyhow::Result<()> {
    let recorded = push::registrations(db, brand).await?;
    let Some(wanted) = wanted else {
        for registration in recorded {
            match api.delete_webhook(&registration.action).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
            push::forget(db, brand, &registration.action).await?;
            tracing::info!(brand_id = %brand, action = %registration.action, "webhook removed at the provider");
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
            push::record_confirmed(db, brand, action, &wanted.url, &hash, false).await?;
            continue;
        }
        let was_missing = ours.is_some() && !listed_here;
        if was_missing {
            tracing::warn!(
                action,
                "the provider no longer lists our webhook; registering again"
            );
            push::record_missing(db, brand, action).await?;
        }
        api.register_webhook(action, &wanted.url, &wanted.secret)
            .await?;
        push::record_confirmed(db, brand, action, &wanted.url, &hash, true).await?;
        tracing::info!(brand_id = %brand, action, url = %wanted.url, "webhook registered at the provider");
        if was_missing {
            catch_up(db, brand, platforms).await?;
        }
    }
    Ok(())
}

/// Reads what deliveries may have missed: the history (and so the comments of new posts) and
/// the direct messages of the `platforms` webhooks cover.
async fn catch_up(
    db: &DatabaseConnection,
    brand: BrandId,
    platforms: &[Platform],
) -> anyhow::Result<()> {
    for platform in push::PUSHED.into_iter().filter(|p| platforms.contains(p)) {
        for step in [IngestStep::Platform, IngestStep::Messages] {
            outbox::enqueue(db, NewTask::of(brand, platform, &step)).await?;
        }
    }
    Ok(())
}
