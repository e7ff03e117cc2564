//! The typed Ayrshare operations (AYRSHARE.md): each builds one [`Request`], sends it through
//! the [`Guard`] of its [`ProviderKey`] (budget, breaker, retries) and parses the answer.
//! [`PlatformApis`] holds a job's one [`Ayrshare`] per brand and platform.

use super::ClientBuildError;
use super::model as parse;
use super::{
    Client, CommentsPage, CommentsTarget, ConnectedAccount, HistoryPost, HistoryQuery,
    MessagesPage, MessagesQuery, OutgoingMessage, PlatformHistory, ProviderError, ProviderKey,
    ReplyReceipt, ReplyTarget, Request, SentMessage,
};
use crate::brands::{self, BrandProfile, BrandsKey, ProfileError};
use crate::config::ResilienceSettings;
use crate::domain::{BrandId, Platform};
use crate::resilience::{BudgetClass, Guard, RateBudget};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Ayrshare for one [`ProviderKey`]. Cheap to clone; clones share the breaker's memory.
#[derive(Debug, Clone)]
pub struct Ayrshare {
    guard: Guard,
}

impl Ayrshare {
    /// The operations for `key` through a new [`Guard::new`] (`client` for HTTP, the breaker
    /// and budget in `db`, audit rows written as `system:<process>`).
    pub fn new(
        key: ProviderKey,
        client: Client,
        db: DatabaseConnection,
        settings: &ResilienceSettings,
        process: &str,
    ) -> Self {
        Ayrshare {
            guard: Guard::new(key, client, db, settings, process),
        }
    }

    pub fn key(&self) -> &ProviderKey {
        self.guard.key()
    }

    pub fn budget(&self) -> &RateBudget {
        self.guard.budget()
    }

    /// The same operations, answering a spent budget with [`ProviderError::Deferred`]
    /// ([`Guard::rescheduling`]).
    pub fn rescheduling(&self) -> Self {
        Ayrshare {
            guard: self.guard.rescheduling(),
        }
    }

    /// The same operations, waiting up to `max_wait` for a budget slot
    /// ([`Guard::waiting_at_most`]).
    pub fn waiting_at_most(&self, max_wait: Duration) -> Self {
        Ayrshare {
            guard: self.guard.waiting_at_most(max_wait),
        }
    }

    /// The same operations, spending the budget of `class`.
    pub fn for_class(&self, class: BudgetClass) -> Self {
        Ayrshare {
            guard: self.guard.for_class(class),
        }
    }

    /// Posts made through Ayrshare on this platform (`GET /history`).
    pub async fn history(&self, query: &HistoryQuery) -> Result<Vec<HistoryPost>, ProviderError> {
        let request = Request::history(self.guard.key().platform, query);
        self.guard.call(request, parse::history).await
    }

    /// The network's own posts (`GET /history/:platform`).
    pub async fn platform_history(&self) -> Result<PlatformHistory, ProviderError> {
        let request = Request::platform_history(self.guard.key().platform);
        self.guard.call(request, parse::platform_history).await
    }

    /// The comments of a post, by either id form, or the replies below a comment. A post
    /// without comments may answer 404 ([`ProviderError::is_not_found`]).
    pub async fn comments(&self, target: &CommentsTarget) -> Result<CommentsPage, ProviderError> {
        let request = Request::comments(self.guard.key().platform, target);
        self.guard.call(request, parse::comments).await
    }

    /// Replies to a comment. Never repeated once it may have reached the provider: an
    /// [`ProviderError::OutcomeUnknown`] means "reconcile before sending again".
    pub async fn reply(
        &self,
        target: &ReplyTarget,
        text: &str,
    ) -> Result<ReplyReceipt, ProviderError> {
        let request = Request::reply(self.guard.key().platform, target, text);
        self.guard.call(request, parse::reply_receipt).await
    }

    /// Direct messages (`GET /messages/:platform`).
    pub async fn messages(&self, query: &MessagesQuery) -> Result<MessagesPage, ProviderError> {
        let request = Request::messages(self.guard.key().platform, query);
        self.guard.call(request, parse::messages).await
    }

    /// Sends a direct message; retried only where nothing reached the provider, like
    /// [`Ayrshare::reply`].
    pub async fn send_message(
        &self,
        message: &OutgoingMessage,
    ) -> Result<SentMessage, ProviderError> {
        let request = Request::send_message(self.guard.key().platform, message);
        self.guard.call(request, parse::sent_message).await
    }

    /// The profile's webhook registrations: the URL of each registered action
    /// (`GET /hook/webhook`; counted on this platform's budget and breaker, like the two
    /// below).
    pub async fn webhooks(&self) -> Result<BTreeMap<String, String>, ProviderError> {
        let request = Request::webhooks(self.guard.key().platform);
        self.guard.call(request, parse::webhooks).await
    }

    /// Registers `url` for `action`, deliveries signed with `secret` (`POST /hook/webhook`).
    pub async fn register_webhook(
        &self,
        action: &str,
        url: &str,
        secret: &str,
    ) -> Result<(), ProviderError> {
        let request = Request::register_webhook(self.guard.key().platform, action, url, secret);
        self.guard.call(request, parse::done).await
    }

    /// Removes the registration of `action` (`DELETE /hook/webhook`); none is a 404
    /// ([`ProviderError::is_not_found`]).
    pub async fn delete_webhook(&self, action: &str) -> Result<(), ProviderError> {
        let request = Request::delete_webhook(self.guard.key().platform, action);
        self.guard.call(request, parse::done).await
    }

    /// The profile's connected accounts, one per network (`GET /user`); the call is counted
    /// on this platform's budget and breaker.
    pub async fn connected_accounts(&self) -> Result<Vec<ConnectedAccount>, ProviderError> {
        let request = Request::user(self.guard.key().platform);
        self.guard.call(request, parse::user).await
    }
}

/// A job's [`Ayrshare`] per brand and platform, all spending the budget of one class and
/// waiting for it at most `max_wait`, built on first use over the worker's pool and built again
/// when the brand changes (a new Profile-Key).
#[derive(Debug)]
pub struct PlatformApis {
    client: Client,
    settings: ResilienceSettings,
    process: String,
    class: BudgetClass,
    max_wait: Duration,
    brands_key: Option<BrandsKey>,
    built: Mutex<HashMap<BrandId, BrandApis>>,
}

/// One brand's operations, as of a version of the brand.
#[derive(Debug)]
struct BrandApis {
    updated_at: DateTime<Utc>,
    apis: HashMap<Platform, Ayrshare>,
}

impl PlatformApis {
    /// Operations through `client` for every brand and platform, as `process`, spending
    /// `class`; `brands_key` opens the brands' Profile-Keys.
    pub fn new(
        client: Client,
        settings: &ResilienceSettings,
        process: &str,
        class: BudgetClass,
        max_wait: Duration,
        brands_key: Option<BrandsKey>,
    ) -> Self {
        PlatformApis {
            client,
            settings: settings.clone(),
            process: process.to_owned(),
            class,
            max_wait,
            brands_key,
            built: Mutex::new(HashMap::new()),
        }
    }

    /// Brand `id` as of now, its Profile-Key opened.
    pub async fn brand(
        &self,
        db: &impl ConnectionTrait,
        id: BrandId,
    ) -> Result<BrandProfile, ProfileError> {
        brands::profile(db, self.brands_key.as_ref(), id).await
    }

    /// The operations for `brand` on `platform`, their breaker and budget in `db` (the pool of
    /// the first call is kept), sending the brand's Profile-Key.
    pub fn get(
        &self,
        db: &DatabaseConnection,
        brand: &BrandProfile,
        platform: Platform,
    ) -> Result<Ayrshare, ClientBuildError> {
        let mut built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(apis) = built.get(&brand.id)
            && apis.updated_at == brand.updated_at
        {
            return Ok(apis.apis[&platform].clone());
        }
        let client = self.client.with_profile_key(brand.profile_key.as_ref())?;
        let apis: HashMap<Platform, Ayrshare> = Platform::ALL
            .iter()
            .map(|&p| {
                let api = Ayrshare::new(
                    brands::provider_key(brand.id, p),
                    client.clone(),
                    db.clone(),
                    &self.settings,
                    &self.process,
                );
                (p, api.for_class(self.class).waiting_at_most(self.max_wait))
            })
            .collect();
        let api = apis[&platform].clone();
        built.insert(
            brand.id,
            BrandApis {
                updated_at: brand.updated_at,
                apis,
            },
        );
        Ok(api)
    }
}
