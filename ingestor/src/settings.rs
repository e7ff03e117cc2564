//! The ingestor's own settings, beside the shared [`shared::config::Settings`]; each has a
//! default and an environment variable.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `INGEST_HISTORY_LIMIT` | posts asked per history read (the provider's maximum is 1000) | `1000` |
//! | `INGEST_MESSAGING_RECHECK_SECONDS` | while a platform's messaging is disabled (403), how long until it is checked again | `3600` |

use std::time::Duration;

/// How ingestion paces itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestSettings {
    /// Posts asked per history read.
    pub history_limit: u32,
    /// While messaging is disabled, the time until the next check.
    pub messaging_recheck: Duration,
}

impl Default for IngestSettings {
    fn default() -> Self {
        IngestSettings {
            history_limit: 1_000,
            messaging_recheck: Duration::from_secs(3_600),
        }
    }
}

/// A variable with a value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}={value:?} is not usable: expected {expected}")]
pub struct InvalidSetting {
    /// The variable.
    pub variable: &'static str,
    /// Its value.
    pub value: String,
    /// What would be.
    pub expected: &'static str,
}

impl IngestSettings {
    /// The settings from `lookup` (e.g. `|k| std::env::var(k).ok()`), defaults for the
    /// variables it does not have.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<IngestSettings, InvalidSetting> {
        let number =
            |variable: &'static str, default: u64, min: u64, max: u64| match lookup(variable)
                .filter(|v| !v.is_empty())
            {
                None => Ok(default),
                Some(value) => value
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| (min..=max).contains(n))
                    .ok_or(InvalidSetting {
                        variable,
                        value,
                        expected: "a whole number in the documented range",
                    }),
            };
        let defaults = IngestSettings::default();
        let seconds = |variable, default: Duration| {
            number(variable, default.as_secs(), 1, 30 * 86_400).map(Duration::from_secs)
        };
        Ok(IngestSettings {
            history_limit: u32::try_from(number(
                "INGEST_HISTORY_LIMIT",
                u64::from(defaults.history_limit),
                1,
                1_000,
            )?)
            .unwrap_or(1_000),
            messaging_recheck: seconds(
                "INGEST_MESSAGING_RECHECK_SECONDS",
                defaults.messaging_recheck,
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_variables_keep_the_defaults_and_bad_ones_are_named() {
        assert_eq!(
            IngestSettings::from_lookup(|_| None),
            Ok(IngestSettings::default())
        );
        let custom = IngestSettings::from_lookup(|k| {
            (k == "INGEST_MESSAGING_RECHECK_SECONDS").then(|| "5".to_owned())
        })
        .expect("valid");
        assert_eq!(custom.messaging_recheck, Duration::from_secs(5));
        let bad = IngestSettings::from_lookup(|k| {
            (k == "INGEST_HISTORY_LIMIT").then(|| "5000".to_owned())
        })
        .expect_err("over the provider's maximum");
        assert_eq!(bad.variable, "INGEST_HISTORY_LIMIT");
    }
}
