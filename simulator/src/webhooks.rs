//! Webhook registrations (`/hook/webhook`), kept per profile: at most one URL per action,
//! registering again replaces it. The signing secret is the profile's (as on Ayrshare: one
//! per profile, for every action); a registration that gives one sets it. Deliveries are
//! [`crate::delivery`]'s. A reset of the profile forgets its registrations.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};

/// A webhook action, spelled as Ayrshare's `action` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Action {
    AccountActivity,
    Automations,
    Batch,
    Comments,
    Feed,
    Mentions,
    Messages,
    Scheduled,
    Social,
}

impl Action {
    const ALL: [Action; 9] = [
        Action::AccountActivity,
        Action::Automations,
        Action::Batch,
        Action::Comments,
        Action::Feed,
        Action::Mentions,
        Action::Messages,
        Action::Scheduled,
        Action::Social,
    ];

    /// The name used in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::AccountActivity => "accountActivity",
            Action::Automations => "automations",
            Action::Batch => "batch",
            Action::Comments => "comments",
            Action::Feed => "feed",
            Action::Mentions => "mentions",
            Action::Messages => "messages",
            Action::Scheduled => "scheduled",
            Action::Social => "social",
        }
    }

    /// The action named `name` (exact spelling), if Ayrshare has it.
    pub fn parse(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// Every action name, for error messages.
    pub fn names() -> String {
        Action::ALL.map(Action::as_str).join(", ")
    }
}

/// A profile's registrations, and when they last changed.
#[derive(Debug, Default, Clone)]
pub(crate) struct Registrations {
    pub urls: BTreeMap<Action, String>,
    pub updated: Option<DateTime<Utc>>,
    pub secret: Option<String>,
}

/// The registrations of one profile ([`crate::profile`]).
#[derive(Debug, Default)]
pub(crate) struct Webhooks(Mutex<Registrations>);

impl Webhooks {
    fn lock(&self) -> MutexGuard<'_, Registrations> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers `url` for `action`, replacing an earlier registration of that action; a
    /// `secret` becomes the profile's signing secret.
    pub fn register(
        &self,
        action: Action,
        url: String,
        secret: Option<String>,
        now: DateTime<Utc>,
    ) {
        let mut hooks = self.lock();
        hooks.urls.insert(action, url);
        hooks.updated = Some(now);
        if secret.is_some() {
            hooks.secret = secret;
        }
    }

    /// The URL registered for `action`, with the signing secret; none if not registered.
    pub fn registered(&self, action: Action) -> Option<(String, Option<String>)> {
        let hooks = self.lock();
        let url = hooks.urls.get(&action)?;
        Some((url.clone(), hooks.secret.clone()))
    }

    /// Removes the registration of `action`; false when there was none.
    pub fn remove(&self, action: Action, now: DateTime<Utc>) -> bool {
        let mut hooks = self.lock();
        let removed = hooks.urls.remove(&action).is_some();
        if removed {
            hooks.updated = Some(now);
        }
        removed
    }

    /// Every registration (none if the profile never registered one).
    pub fn snapshot(&self) -> Registrations {
        self.lock().clone()
    }
}
