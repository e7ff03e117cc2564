//! Webhook registrations (`/hook/webhook`), kept per profile: at most one URL per action,
//! registering again replaces it. The signing secret is the profile's (as on Ayrshare: one
//! per profile, for every action); a registration that gives one sets it. Deliveries are
//! [`crate::delivery`]'s. `POST /_sim/reset` forgets every registration.

use std::collections::{BTreeMap, HashMap};
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

/// One profile's registrations, and when they last changed.
#[derive(Debug, Default, Clone)]
pub(crate) struct ProfileHooks {
    pub urls: BTreeMap<Action, String>,
    pub updated: Option<DateTime<Utc>>,
    pub secret: Option<String>,
}

/// Registrations of every profile (`""`: the primary profile).
#[derive(Debug, Default)]
pub(crate) struct Webhooks(Mutex<HashMap<String, ProfileHooks>>);

impl Webhooks {
    fn profiles(&self) -> MutexGuard<'_, HashMap<String, ProfileHooks>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers `url` for `action`, replacing an earlier registration of that action; a
    /// `secret` becomes the profile's signing secret.
    pub fn register(
        &self,
        profile: &str,
        action: Action,
        url: String,
        secret: Option<String>,
        now: DateTime<Utc>,
    ) {
        let mut profiles = self.profiles();
        let hooks = profiles.entry(profile.to_owned()).or_default();
        hooks.urls.insert(action, url);
        hooks.updated = Some(now);
        if secret.is_some() {
            hooks.secret = secret;
        }
    }

    /// Every profile registered for `action`: its key, the URL and its signing secret.
    pub fn registered(&self, action: Action) -> Vec<(String, String, Option<String>)> {
        self.profiles()
            .iter()
            .filter_map(|(profile, hooks)| {
                let url = hooks.urls.get(&action)?;
                Some((profile.clone(), url.clone(), hooks.secret.clone()))
            })
            .collect()
    }

    /// Removes the registration of `action`; false when there was none.
    pub fn remove(&self, profile: &str, action: Action, now: DateTime<Utc>) -> bool {
        let mut profiles = self.profiles();
        let Some(hooks) = profiles.get_mut(profile) else {
            return false;
        };
        let removed = hooks.urls.remove(&action).is_some();
        if removed {
            hooks.updated = Some(now);
        }
        removed
    }

    /// A profile's registrations (none if it never registered one).
    pub fn of(&self, profile: &str) -> ProfileHooks {
        self.profiles().get(profile).cloned().unwrap_or_default()
    }

    /// Forgets every registration.
    pub fn reset(&self) {
        self.profiles().clear();
    }
}
