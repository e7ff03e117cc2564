//! Social network names as Ayrshare spells them, and which provider features each one has.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A social network, spelled as in Ayrshare's `platforms` values.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
#[value(rename_all = "lowercase")]
pub enum Platform {
    Bluesky,
    /// Facebook pages.
    Facebook,
    /// Google Business Profile.
    Gmb,
    Instagram,
    /// LinkedIn.
    Linkedin,
    Pinterest,
    Reddit,
    Snapchat,
    Telegram,
    Threads,
    /// TikTok.
    Tiktok,
    /// X, still called `twitter` by Ayrshare.
    Twitter,
    /// YouTube.
    Youtube,
}

impl Platform {
    /// Every platform name Ayrshare knows.
    pub const ALL: [Platform; 13] = [
        Platform::Bluesky,
        Platform::Facebook,
        Platform::Gmb,
        Platform::Instagram,
        Platform::Linkedin,
        Platform::Pinterest,
        Platform::Reddit,
        Platform::Snapchat,
        Platform::Telegram,
        Platform::Threads,
        Platform::Tiktok,
        Platform::Twitter,
        Platform::Youtube,
    ];

    /// The name as it appears in Ayrshare requests and responses.
    pub const fn as_str(self) -> &'static str {
        match self {
            Platform::Bluesky => "bluesky",
            Platform::Facebook => "facebook",
            Platform::Gmb => "gmb",
            Platform::Instagram => "instagram",
            Platform::Linkedin => "linkedin",
            Platform::Pinterest => "pinterest",
            Platform::Reddit => "reddit",
            Platform::Snapchat => "snapchat",
            Platform::Telegram => "telegram",
            Platform::Threads => "threads",
            Platform::Tiktok => "tiktok",
            Platform::Twitter => "twitter",
            Platform::Youtube => "youtube",
        }
    }

    /// Whether `GET /history/:platform` exists for this network (not for gmb, reddit, telegram).
    pub(crate) fn has_native_history(self) -> bool {
        !matches!(self, Platform::Gmb | Platform::Reddit | Platform::Telegram)
    }

    /// Whether Ayrshare offers direct messages for this network.
    pub(crate) fn has_messaging(self) -> bool {
        matches!(
            self,
            Platform::Facebook | Platform::Instagram | Platform::Twitter
        )
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A platform name that Ayrshare does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown platform `{0}`")]
pub struct UnknownPlatform(pub String);

impl FromStr for Platform {
    type Err = UnknownPlatform;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        Platform::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(trimmed))
            .ok_or_else(|| UnknownPlatform(trimmed.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_platform_parses_back_from_its_name() {
        for p in Platform::ALL {
            assert_eq!(p.as_str().parse::<Platform>(), Ok(p));
            assert_eq!(
                serde_json::to_value(p).expect("serialize"),
                serde_json::json!(p.as_str())
            );
        }
        assert!("myspace".parse::<Platform>().is_err());
    }
}
