//! The simulator's settings: command-line flags of `ayrshare-sim` (each also read from an
//! `AYRSHARE_SIM_*` environment variable) and the fields of [`SimConfig`] for in-process use.

use std::net::{Ipv4Addr, SocketAddr};

use crate::faults::FaultSet;
use crate::platform::Platform;

/// Default listen address.
pub const DEFAULT_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 3100);
/// Default API key clients must send as `Authorization: Bearer <key>`.
pub const DEFAULT_API_KEY: &str = "sim-key";
/// Default platforms of the seeded world.
pub const DEFAULT_PLATFORMS: [Platform; 8] = [
    Platform::Bluesky,
    Platform::Facebook,
    Platform::Instagram,
    Platform::Linkedin,
    Platform::Threads,
    Platform::Tiktok,
    Platform::Twitter,
    Platform::Youtube,
];

/// Everything the simulator can be configured with.
///
/// `SimConfig::default()` equals the command line without flags; [`SimConfig::on_free_port`]
/// is the same on `127.0.0.1:0`, for tests.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct SimConfig {
    /// Address to listen on (port 0: any free port).
    #[arg(long, env = "AYRSHARE_SIM_ADDR", default_value_t = DEFAULT_ADDR)]
    pub addr: SocketAddr,

    /// API key clients must send as `Authorization: Bearer <key>`.
    #[arg(long, env = "AYRSHARE_SIM_API_KEY", default_value = DEFAULT_API_KEY)]
    pub api_key: String,

    /// Seconds between `lastUpdated` and the `nextUpdate` reported with comments, history and
    /// messages (the real provider: about 600).
    #[arg(long, env = "AYRSHARE_SIM_REFRESH_SECONDS", default_value_t = 10)]
    pub refresh_seconds: u64,

    /// Requests allowed per profile in each rate window; 0 turns the limit off.
    #[arg(long, env = "AYRSHARE_SIM_RATE_LIMIT", default_value_t = 300)]
    pub rate_limit: u32,

    /// Length of the sliding rate window, in seconds.
    #[arg(long, env = "AYRSHARE_SIM_RATE_WINDOW_SECONDS", default_value_t = 300)]
    pub rate_window_seconds: u64,

    /// Seed of the generated worlds: the same seed and sizes give the same posts, comments,
    /// ids and conversations. The primary profile's world uses it as is, a named profile's
    /// mixes in its `Profile-Key`.
    #[arg(long, env = "AYRSHARE_SIM_SEED", default_value_t = 42)]
    pub seed: u64,

    /// Platforms of the generated worlds (comma list).
    #[arg(
        long,
        env = "AYRSHARE_SIM_PLATFORMS",
        value_enum,
        value_delimiter = ',',
        default_values_t = DEFAULT_PLATFORMS
    )]
    pub platforms: Vec<Platform>,

    #[arg(long, env = "AYRSHARE_SIM_POSTS_PER_PLATFORM", default_value_t = 10)]
    pub posts_per_platform: usize,

    /// The posts of each platform are spread over this many past days.
    #[arg(long, env = "AYRSHARE_SIM_POST_DAYS", default_value_t = 14)]
    pub post_days: u32,

    /// Top-level comments on each post (except the empty ones).
    #[arg(long, env = "AYRSHARE_SIM_COMMENTS_PER_POST", default_value_t = 5)]
    pub comments_per_post: usize,

    /// Replies under each top-level comment (on X: a flat list with `referencedTweets`).
    #[arg(long, env = "AYRSHARE_SIM_REPLIES_PER_COMMENT", default_value_t = 1)]
    pub replies_per_comment: usize,

    /// The newest posts of each platform that have no comments yet (GET comments: 404).
    #[arg(
        long,
        env = "AYRSHARE_SIM_EMPTY_POSTS_PER_PLATFORM",
        default_value_t = 1
    )]
    pub empty_posts_per_platform: usize,

    /// Direct-message conversations per messaging platform (facebook, instagram, twitter).
    #[arg(
        long,
        env = "AYRSHARE_SIM_CONVERSATIONS_PER_PLATFORM",
        default_value_t = 3
    )]
    pub conversations_per_platform: usize,

    /// Messages in each conversation, alternating received and sent.
    #[arg(
        long,
        env = "AYRSHARE_SIM_MESSAGES_PER_CONVERSATION",
        default_value_t = 4
    )]
    pub messages_per_conversation: usize,

    /// New customer comments (and replies) arriving per minute in each world; 0 = none.
    #[arg(long, env = "AYRSHARE_SIM_COMMENTS_PER_MINUTE", default_value_t = 0.0)]
    pub comments_per_minute: f64,

    /// New customer direct messages arriving per minute in each world; 0 = none.
    #[arg(long, env = "AYRSHARE_SIM_MESSAGES_PER_MINUTE", default_value_t = 0.0)]
    pub messages_per_minute: f64,

    /// Faults in force from the start in every world: the JSON of `POST /_sim/faults`, e.g.
    /// '{"rules":[{"endpoint":"reply","platform":"*","fault":"status","status":503,"probability":0.1}]}'.
    #[arg(long, env = "AYRSHARE_SIM_FAULTS", default_value = "{}")]
    pub faults: FaultSet,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            addr: DEFAULT_ADDR,
            api_key: DEFAULT_API_KEY.to_owned(),
            refresh_seconds: 10,
            rate_limit: 300,
            rate_window_seconds: 300,
            seed: 42,
            platforms: DEFAULT_PLATFORMS.to_vec(),
            posts_per_platform: 10,
            post_days: 14,
            comments_per_post: 5,
            replies_per_comment: 1,
            empty_posts_per_platform: 1,
            conversations_per_platform: 3,
            messages_per_conversation: 4,
            comments_per_minute: 0.0,
            messages_per_minute: 0.0,
            faults: FaultSet::default(),
        }
    }
}

impl SimConfig {
    /// The defaults, listening on `127.0.0.1:0` (a free port): the usual start for tests.
    pub fn on_free_port() -> Self {
        SimConfig {
            addr: SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            ..SimConfig::default()
        }
    }

    /// Refuses settings the simulator cannot honour, naming the setting.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.api_key.is_empty() {
            return Err("api_key must not be empty".into());
        }
        if self.rate_limit > 0 && self.rate_window_seconds == 0 {
            return Err("rate_window_seconds must be positive when rate_limit is set".into());
        }
        if self.refresh_seconds > 86_400 * 365 {
            return Err("refresh_seconds must be at most a year".into());
        }
        if self.post_days == 0 || self.post_days > 3_650 {
            return Err("post_days must be between 1 and 3650".into());
        }
        if self.platforms.is_empty() {
            return Err("platforms must name at least one platform".into());
        }
        for (name, rate) in [
            ("comments_per_minute", self.comments_per_minute),
            ("messages_per_minute", self.messages_per_minute),
        ] {
            if !(0.0..=600_000.0).contains(&rate) {
                return Err(format!("{name} must be between 0 and 600000"));
            }
        }
        let comments = self
            .platforms
            .len()
            .saturating_mul(self.posts_per_platform)
            .saturating_mul(self.comments_per_post)
            .saturating_mul(self.replies_per_comment.saturating_add(1));
        if comments > 10_000_000 {
            return Err("the world would hold more than 10 million comments".into());
        }
        self.faults.validate().map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sim: SimConfig,
    }

    #[test]
    fn the_default_config_equals_the_command_line_without_flags() {
        let parsed = Cli::try_parse_from(["ayrshare-sim"]).expect("no flags parse");
        assert_eq!(parsed.sim, SimConfig::default());
        assert!(SimConfig::default().validate().is_ok());
    }

    #[test]
    fn flags_override_defaults() {
        let parsed = Cli::try_parse_from([
            "ayrshare-sim",
            "--platforms",
            "twitter,facebook",
            "--rate-limit",
            "0",
            "--faults",
            r#"{"messagingDisabled":["instagram"]}"#,
        ])
        .expect("flags parse");
        assert_eq!(
            parsed.sim.platforms,
            [Platform::Twitter, Platform::Facebook]
        );
        assert_eq!(parsed.sim.rate_limit, 0);
        assert_eq!(parsed.sim.faults.messaging_disabled, [Platform::Instagram]);
    }
}
