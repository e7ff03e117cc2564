//! What a client, a circuit breaker and a rate budget are kept per: today a platform of the
//! one Ayrshare profile, later (profile, platform) when several brands are served.

use crate::domain::Platform;
use std::fmt;
use std::str::FromStr;

/// Longest profile name.
const MAX_PROFILE_LEN: usize = 64;

/// Our name for an Ayrshare profile (a brand), e.g. `acme`. Not the secret `Profile-Key`:
/// this is a label that may appear in logs, metrics and database keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProfileId(String);

/// A profile name that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a profile name: use 1 to 64 of a-z, A-Z, 0-9, '_' and '-'")]
pub struct InvalidProfileId(pub String);

impl FromStr for ProfileId {
    type Err = InvalidProfileId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let valid = !s.is_empty()
            && s.len() <= MAX_PROFILE_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if valid {
            Ok(ProfileId(s.to_owned()))
        } else {
            Err(InvalidProfileId(s.to_owned()))
        }
    }
}

impl ProfileId {
    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProfileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The unit a resilience guard is kept per: one client, breaker and budget slot each.
///
/// Breakers are per (profile, platform): one network failing does not stop the others. The
/// request budget is per profile, because the provider counts requests per profile whatever
/// the platform.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProviderKey {
    /// The Ayrshare profile; `None` is the primary profile (the only one today).
    pub profile: Option<ProfileId>,
    /// The social network.
    pub platform: Platform,
}

impl ProviderKey {
    /// The key of `platform` on the primary profile.
    pub fn platform(platform: Platform) -> Self {
        ProviderKey {
            profile: None,
            platform,
        }
    }

    /// The `circuit_breakers.key`: `twitter`, or `<profile>:twitter` for a named profile.
    pub fn breaker_key(&self) -> String {
        match &self.profile {
            None => self.platform.as_str().to_owned(),
            Some(profile) => format!("{profile}:{}", self.platform),
        }
    }

    /// The `rate_budgets.key`: `default` for the primary profile, `profile:<name>` otherwise
    /// (`:` cannot occur in a profile name, so the two never collide).
    pub fn budget_key(&self) -> String {
        match &self.profile {
            None => "default".to_owned(),
            Some(profile) => format!("profile:{profile}"),
        }
    }
}

impl fmt::Display for ProviderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.breaker_key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_primary_profile_keys_by_platform_and_named_profiles_prefix_it() {
        let primary = ProviderKey::platform(Platform::Twitter);
        assert_eq!(primary.breaker_key(), "twitter");
        assert_eq!(primary.budget_key(), "default");
        let acme = ProviderKey {
            profile: Some("acme".parse().expect("valid name")),
            platform: Platform::Twitter,
        };
        assert_eq!(acme.breaker_key(), "acme:twitter");
        assert_eq!(acme.budget_key(), "profile:acme");
    }

    #[test]
    fn profile_names_that_would_make_keys_ambiguous_are_refused() {
        for bad in ["", "a:b", "with space", &"x".repeat(65)] {
            assert!(bad.parse::<ProfileId>().is_err(), "{bad:?}");
        }
    }
}
