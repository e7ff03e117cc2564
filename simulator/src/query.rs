//! Query strings as Ayrshare's clients send them, including every array encoding of
//! `platforms`: `platforms[0]=a&platforms[1]=b`, `platforms[]=a`, repeated `platforms=a`,
//! comma lists `platforms=a,b`, and the singular `platform=a`.

use std::str::FromStr;

use crate::error::ApiError;
use crate::platform::Platform;

/// Decoded query pairs, in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Self {
        Query {
            pairs: raw
                .map(|q| {
                    url::form_urlencoded::parse(q.as_bytes())
                        .into_owned()
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The last value of `key`, if present and not empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// A boolean flag (`true`/`false`, `1`/`0`); absent means false.
    pub fn flag(&self, key: &str) -> Result<bool, ApiError> {
        match self.get(key) {
            None => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") || v == "0" => Ok(false),
            Some(v) => Err(ApiError::bad_request(format!(
                "{key} must be true or false, not `{v}`"
            ))),
        }
    }

    /// A number, if present.
    pub fn number<T: FromStr>(&self, key: &str) -> Result<Option<T>, ApiError> {
        self.get(key)
            .map(|v| {
                v.trim().parse().map_err(|_| {
                    ApiError::bad_request(format!("{key} must be a number, not `{v}`"))
                })
            })
            .transpose()
    }

    /// Every platform named by `platforms` or `platform` in any encoding, without repeats.
    pub fn platforms(&self) -> Result<Vec<Platform>, ApiError> {
        let mut out = Vec::new();
        for (key, value) in &self.pairs {
            if !is_platforms_key(key) {
                continue;
            }
            for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                let platform = name
                    .parse::<Platform>()
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
                if !out.contains(&platform) {
                    out.push(platform);
                }
            }
        }
        Ok(out)
    }
}

fn is_platforms_key(key: &str) -> bool {
    if key == "platform" || key == "platforms" {
        return true;
    }
    key.strip_prefix("platforms[")
        .and_then(|rest| rest.strip_suffix(']'))
        .is_some_and(|index| index.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_platforms_encoding_is_understood() {
        let expected = [Platform::Twitter, Platform::Facebook];
        for raw in [
            "platforms[0]=twitter&platforms[1]=facebook",
            "platforms%5B0%5D=twitter&platforms%5B1%5D=facebook",
            "platforms[]=twitter&platforms[]=facebook",
            "platforms=twitter&platforms=facebook",
            "platforms=twitter,facebook",
            "platform=twitter&platforms=facebook,twitter",
        ] {
            let q = Query::parse(Some(raw));
            assert_eq!(q.platforms().expect(raw), expected, "{raw}");
        }
        assert!(Query::parse(Some("platforms=myspace")).platforms().is_err());
        assert!(Query::parse(None).platforms().expect("empty").is_empty());
    }
}
