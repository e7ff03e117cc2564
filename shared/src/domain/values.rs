//! Closed sets of values with their wire/database spelling.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A value that is not one of an enum's allowed spellings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not one of: {allowed}")]
pub struct UnknownValue {
    /// The value as given.
    pub value: String,
    /// The allowed spellings, comma separated.
    pub allowed: String,
}

macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire and database spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The allowed spellings, comma separated (for error messages).
            pub fn allowed() -> String {
                Self::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownValue { value: s.to_owned(), allowed: Self::allowed() }),
                }
            }
        }
    };
}

string_enum!(
    /// The kinds of job, one queue per kind and platform; also the `kind` column of `tasks`.
    JobKind {
        /// Reading from the provider: history, comments, messages.
        Ingest = "ingest",
        /// Sending a reply.
        Reply = "reply",
    }
);

string_enum!(
    /// A social network the service reads comments from (the platforms with comments in
    /// Ayrshare's API).
    Platform {
        /// Bluesky.
        Bluesky = "bluesky",
        /// Facebook (comments and direct messages).
        Facebook = "facebook",
        /// Instagram (comments and direct messages).
        Instagram = "instagram",
        /// LinkedIn.
        Linkedin = "linkedin",
        /// Threads.
        Threads = "threads",
        /// TikTok.
        Tiktok = "tiktok",
        /// X/Twitter (comments and direct messages).
        Twitter = "twitter",
        /// YouTube.
        Youtube = "youtube",
    }
);

impl Platform {
    /// Whether Ayrshare offers direct messages on this platform.
    pub fn has_messages(self) -> bool {
        matches!(
            self,
            Platform::Facebook | Platform::Instagram | Platform::Twitter
        )
    }
}

string_enum!(
    /// What kind of inbound item a mention is.
    MentionType {
        /// A comment on one of our posts.
        Comment = "comment",
        /// A direct message.
        Message = "message",
        /// A reply within a comment thread.
        Reply = "reply",
    }
);

string_enum!(
    /// Where a mention is in the triage flow; `None` (null) means new.
    MentionState {
        /// Assigned to an agent.
        Assignment = "assignment",
        /// A reply has been requested and is on its way.
        ReplyAttempt = "reply_attempt",
        /// The provider definitely rejected the reply.
        ProviderError = "provider_error",
        /// The reply was sent.
        Replied = "replied",
    }
);

string_enum!(
    /// The agent's decision about a mention.
    Disposition {
        /// Needs a reply.
        Reply = "reply",
        /// Needs nothing.
        Ignore = "ignore",
        /// Needs someone else.
        Escalate = "escalate",
    }
);

string_enum!(
    /// Where an outbound reply is in the exactly-once protocol.
    ReplyStatus {
        /// Accepted, not yet attempted.
        Pending = "pending",
        /// Write-ahead: an attempt is (or was) in progress.
        Sending = "sending",
        /// An attempt may or may not have reached the provider; reconcile before sending.
        Unknown = "unknown",
        /// The provider has it.
        Sent = "sent",
        /// Definitely not sent.
        Failed = "failed",
    }
);

string_enum!(
    /// Status of a background task (an outbox row).
    TaskStatus {
        /// Waiting to be published (when `available_at` is due).
        Pending = "pending",
        /// Published to the broker, not yet claimed.
        Published = "published",
        /// Claimed by a worker under a lease.
        Running = "running",
        /// Done.
        Succeeded = "succeeded",
        /// Failed permanently.
        Failed = "failed",
        /// Gave up after the maximum attempts.
        Dead = "dead",
    }
);

impl TaskStatus {
    /// Pending, published and running tasks are active: one per dedup key at most.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            TaskStatus::Pending | TaskStatus::Published | TaskStatus::Running
        )
    }
}

string_enum!(
    /// What a user may do.
    Role {
        /// Everything, including user management and task retries.
        Admin = "admin",
        /// Triage and reply.
        Agent = "agent",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_round_trips_through_its_spelling() {
        for p in Platform::ALL {
            assert_eq!(p.as_str().parse::<Platform>(), Ok(*p));
        }
        for s in ReplyStatus::ALL {
            assert_eq!(s.as_str().parse::<ReplyStatus>(), Ok(*s));
        }
    }

    #[test]
    fn unknown_value_names_the_allowed_ones() {
        let err = "myspace".parse::<Platform>().expect_err("not a platform");
        assert_eq!(err.value, "myspace");
        assert!(err.allowed.starts_with("bluesky, facebook"));
    }
}
