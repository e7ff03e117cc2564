//! Brands: one installation serves several Ayrshare User Profiles, one per brand, each with
//! its own `Profile-Key`, request budget, breakers, posts, mentions and agents.
//!
//! - The Profile-Key is a secret: it is sealed with `BRANDS_KEY` ([`BrandsKey`],
//!   XChaCha20-Poly1305 with the brand's id as associated data, so a sealed key cannot be moved
//!   to another brand's row) and never returned or logged. A keyed hash of it (HMAC-SHA256)
//!   is unique, so two brands can never share a profile (and so a budget).
//! - The default brand ([`DEFAULT_BRAND`], created by the migration) stands for the profile the
//!   environment configures: until a Profile-Key is stored for it, it uses
//!   `SOCIAL_MEDIA_API_PROFILE_KEY` (or none), so an installation from before brands keeps
//!   working unchanged. Its budget and breakers keep their keys (`default`, `twitter`); every
//!   other brand's are keyed by its id ([`provider_key`]).
//! - A brand is disabled, never deleted: its polling stops and its history stays.
//! - A brand watches `platforms` (none given: every platform of `SOCIAL_PLATFORMS`).

use crate::domain::{BrandId, Platform};
use crate::ingest::statement;
use crate::provider::{ProfileId, ProviderKey};
use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sea_orm::{ConnectionTrait, DbErr, FromQueryResult};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use std::fmt;
use uuid::Uuid;

/// The brand of every row written before brands existed, and of the environment's profile.
pub const DEFAULT_BRAND: BrandId = BrandId(Uuid::from_u128(1));

/// Longest Profile-Key accepted.
pub const MAX_PROFILE_KEY_LEN: usize = 200;

/// Longest brand name.
pub const MAX_NAME_LEN: usize = 100;

/// Bytes of the nonce in front of a sealed Profile-Key.
const NONCE_LEN: usize = 24;

/// `BRANDS_KEY`: the key that seals the brands' Profile-Keys (64 hex digits, 32 bytes).
#[derive(Clone)]
pub struct BrandsKey {
    seal: [u8; 32],
    hash: [u8; 32],
}

impl fmt::Debug for BrandsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BrandsKey([redacted])")
    }
}

/// `BRANDS_KEY` is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not 64 hexadecimal digits (32 bytes)")]
pub struct InvalidBrandsKey;

/// A sealed Profile-Key that `BRANDS_KEY` cannot open (another key sealed it, or the row was
/// altered).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the Profile-Key of brand {0} cannot be opened with BRANDS_KEY (was it sealed with another key?)"
)]
pub struct UnsealError(pub BrandId);

impl BrandsKey {
    /// Reads 64 hex digits (e.g. from `openssl rand -hex 32`).
    pub fn from_hex(text: &str) -> Result<BrandsKey, InvalidBrandsKey> {
        let mut master = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut master).map_err(|_| InvalidBrandsKey)?;
        // Two keys from one: one seals, one hashes.
        let derive = |purpose: &[u8]| -> [u8; 32] {
            let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&master)
                .expect("HMAC takes a key of any length");
            mac.update(purpose);
            mac.finalize().into_bytes().into()
        };
        Ok(BrandsKey {
            seal: derive(b"social-messages/brands/seal"),
            hash: derive(b"social-messages/brands/hash"),
        })
    }

    /// `profile_key` sealed for `brand`: nonce followed by ciphertext and tag.
    pub fn seal(&self, brand: BrandId, profile_key: &str) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new(&self.seal.into());
        let nonce = XNonce::generate();
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: profile_key.as_bytes(),
                    aad: brand.0.as_bytes(),
                },
            )
            .expect("sealing a short key cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        out
    }

    /// The Profile-Key that [`BrandsKey::seal`] sealed for `brand`.
    pub fn open(&self, brand: BrandId, sealed: &[u8]) -> Result<SecretString, UnsealError> {
        if sealed.len() <= NONCE_LEN {
            return Err(UnsealError(brand));
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).map_err(|_| UnsealError(brand))?;
        let cipher = XChaCha20Poly1305::new(&self.seal.into());
        let plain = cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: brand.0.as_bytes(),
                },
            )
            .map_err(|_| UnsealError(brand))?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| UnsealError(brand))
    }

    /// The keyed hash that makes a Profile-Key unique among brands.
    pub fn fingerprint(&self, profile_key: &str) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.hash)
            .expect("HMAC takes a key of any length");
        mac.update(profile_key.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

/// A brand as people see it (never its Profile-Key).
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct Brand {
    pub id: BrandId,
    pub name: String,
    /// Comma list of the platforms it watches; `None`: every configured platform.
    platforms: Option<String>,
    /// Whether a Profile-Key is stored (the default brand may use the environment's instead).
    pub has_profile_key: bool,
    pub disabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Brand {
    /// The platforms it watches as set (`None`: every configured platform).
    pub fn platforms(&self) -> Option<Vec<Platform>> {
        self.platforms.as_deref().map(parse_platforms)
    }

    /// The platforms of `configured` it watches.
    pub fn watched(&self, configured: &[Platform]) -> Vec<Platform> {
        match self.platforms() {
            None => configured.to_vec(),
            Some(own) => configured
                .iter()
                .copied()
                .filter(|p| own.contains(p))
                .collect(),
        }
    }
}

fn parse_platforms(list: &str) -> Vec<Platform> {
    list.split(',').filter_map(|p| p.parse().ok()).collect()
}

fn platforms_text(platforms: &[Platform]) -> String {
    platforms
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

const COLUMNS: &str = "id, name, array_to_string(platforms, ',') AS platforms, \
     profile_key IS NOT NULL AS has_profile_key, disabled_at, created_at, updated_at";

/// `brands` as one comma list, the parameter of `brand_id = ANY(string_to_array($n,
/// ',')::uuid[])` (`None`: every brand, for `$n::text IS NULL OR ...`).
pub fn id_list(brands: Option<&[BrandId]>) -> Option<String> {
    brands.map(|own| {
        own.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// Every brand, by name.
pub async fn list(conn: &impl ConnectionTrait) -> Result<Vec<Brand>, DbErr> {
    Brand::find_by_statement(statement(
        &format!("SELECT {COLUMNS} FROM brands ORDER BY lower(name), id"),
        vec![],
    ))
    .all(conn)
    .await
}

/// The brands that are not disabled.
pub async fn enabled(conn: &impl ConnectionTrait) -> Result<Vec<Brand>, DbErr> {
    Brand::find_by_statement(statement(
        &format!("SELECT {COLUMNS} FROM brands WHERE disabled_at IS NULL ORDER BY id"),
        vec![],
    ))
    .all(conn)
    .await
}

/// One brand.
pub async fn get(conn: &impl ConnectionTrait, id: BrandId) -> Result<Option<Brand>, DbErr> {
    Brand::find_by_statement(statement(
        &format!("SELECT {COLUMNS} FROM brands WHERE id = $1"),
        vec![id.into()],
    ))
    .one(conn)
    .await
}

/// A brand to create.
#[derive(Debug, Clone)]
pub struct NewBrand {
    pub name: String,
    pub profile_key: Option<SecretString>,
    pub platforms: Option<Vec<Platform>>,
}

/// A change to a brand (`None`: unchanged).
#[derive(Debug, Clone, Default)]
pub struct BrandChange {
    pub name: Option<String>,
    pub profile_key: Option<SecretString>,
    /// `Some(None)`: back to every configured platform.
    pub platforms: Option<Option<Vec<Platform>>>,
    pub disabled: Option<bool>,
}

/// Why a brand cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum BrandWriteError {
    /// A Profile-Key was given but `BRANDS_KEY` is not set.
    #[error("BRANDS_KEY is not set: a Profile-Key cannot be stored")]
    NoBrandsKey,
    /// Another brand has this name.
    #[error("another brand is named so")]
    NameTaken,
    /// Another brand has this Profile-Key.
    #[error("another brand has this Profile-Key")]
    ProfileKeyTaken,
    /// Another brand already uses the primary profile (no Profile-Key).
    #[error("another brand already uses the primary profile; give a Profile-Key")]
    PrimaryTaken,
    #[error(transparent)]
    Db(#[from] DbErr),
}

fn write_error(e: DbErr) -> BrandWriteError {
    if crate::db::sqlstate(&e).as_deref() == Some(crate::db::UNIQUE_VIOLATION) {
        match crate::db::violated_constraint(&e).as_deref() {
            Some("brands_name_key") => return BrandWriteError::NameTaken,
            Some("brands_profile_key_hash_key") => return BrandWriteError::ProfileKeyTaken,
            Some("brands_one_primary_profile") => return BrandWriteError::PrimaryTaken,
            _ => {}
        }
    }
    BrandWriteError::Db(e)
}

/// A sealed Profile-Key and its fingerprint (both `None` without one).
type SealedKey = (Option<Vec<u8>>, Option<Vec<u8>>);

fn sealed(
    key: Option<&BrandsKey>,
    id: BrandId,
    profile_key: Option<&SecretString>,
) -> Result<SealedKey, BrandWriteError> {
    match profile_key {
        None => Ok((None, None)),
        Some(profile_key) => {
            let key = key.ok_or(BrandWriteError::NoBrandsKey)?;
            let plain = profile_key.expose_secret();
            Ok((Some(key.seal(id, plain)), Some(key.fingerprint(plain))))
        }
    }
}

/// Creates a brand.
pub async fn create(
    conn: &impl ConnectionTrait,
    key: Option<&BrandsKey>,
    new: &NewBrand,
) -> Result<Brand, BrandWriteError> {
    let id = BrandId::new();
    let (profile_key, hash) = sealed(key, id, new.profile_key.as_ref())?;
    Brand::find_by_statement(statement(
        &format!(
            "INSERT INTO brands (id, name, profile_key, profile_key_hash, platforms) \
             VALUES ($1, $2, $3, $4, string_to_array($5, ',')) RETURNING {COLUMNS}"
        ),
        vec![
            id.into(),
            new.name.trim().into(),
            profile_key.into(),
            hash.into(),
            new.platforms.as_deref().map(platforms_text).into(),
        ],
    ))
    .one(conn)
    .await
    .map_err(write_error)?
    .ok_or(BrandWriteError::Db(DbErr::RecordNotInserted))
}

/// Applies `change` to brand `id`; `None` if there is no such brand.
pub async fn update(
    conn: &impl ConnectionTrait,
    key: Option<&BrandsKey>,
    id: BrandId,
    change: &BrandChange,
) -> Result<Option<Brand>, BrandWriteError> {
    let (profile_key, hash) = sealed(key, id, change.profile_key.as_ref())?;
    let platforms = change
        .platforms
        .as_ref()
        .map(|p| p.as_deref().map(platforms_text));
    Brand::find_by_statement(statement(
        &format!(
            "UPDATE brands SET \
                 name = COALESCE($2, name), \
                 profile_key = COALESCE($3, profile_key), \
                 profile_key_hash = COALESCE($4, profile_key_hash), \
                 platforms = CASE WHEN $5 THEN string_to_array($6, ',') ELSE platforms END, \
                 disabled_at = CASE WHEN $7 IS NULL THEN disabled_at \
                                    WHEN $7 THEN COALESCE(disabled_at, now()) ELSE NULL END, \
                 updated_at = now() \
             WHERE id = $1 RETURNING {COLUMNS}"
        ),
        vec![
            id.into(),
            change.name.as_deref().map(str::trim).into(),
            profile_key.into(),
            hash.into(),
            platforms.is_some().into(),
            platforms.flatten().into(),
            change.disabled.into(),
        ],
    ))
    .one(conn)
    .await
    .map_err(write_error)
}

/// A brand being polled, and the platforms it watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watch {
    pub brand: BrandId,
    pub platforms: Vec<Platform>,
}

impl Watch {
    /// The default brand watching `platforms` (a single-profile installation).
    pub fn default_brand(platforms: &[Platform]) -> Watch {
        Watch {
            brand: DEFAULT_BRAND,
            platforms: platforms.to_vec(),
        }
    }
}

/// The enabled brands and the platforms of `configured` each watches (brands that watch none of
/// them are left out), in a fair order: by id.
pub async fn watching(
    conn: &impl ConnectionTrait,
    configured: &[Platform],
) -> Result<Vec<Watch>, DbErr> {
    Ok(enabled(conn)
        .await?
        .into_iter()
        .map(|b| Watch {
            brand: b.id,
            platforms: b.watched(configured),
        })
        .filter(|w| !w.platforms.is_empty())
        .collect())
}

/// What a worker needs to call the provider for a brand.
#[derive(Clone)]
pub struct BrandProfile {
    pub id: BrandId,
    /// The `Profile-Key` header to send; `None`: the client's own (the environment's).
    pub profile_key: Option<SecretString>,
    /// Changes whenever the brand does (a new Profile-Key rebuilds the brand's clients).
    pub updated_at: DateTime<Utc>,
    pub disabled: bool,
}

impl fmt::Debug for BrandProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrandProfile")
            .field("id", &self.id)
            .field(
                "profile_key",
                &self.profile_key.as_ref().map(|_| "[redacted]"),
            )
            .field("updated_at", &self.updated_at)
            .field("disabled", &self.disabled)
            .finish()
    }
}

/// Why a brand's profile cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("brand {0} does not exist")]
    NoSuchBrand(BrandId),
    #[error("brand {0} has a Profile-Key but BRANDS_KEY is not set")]
    NoBrandsKey(BrandId),
    #[error(transparent)]
    Unseal(#[from] UnsealError),
    #[error(transparent)]
    Db(#[from] DbErr),
}

#[derive(FromQueryResult)]
struct ProfileRow {
    profile_key: Option<Vec<u8>>,
    updated_at: DateTime<Utc>,
    disabled: bool,
}

/// The profile of brand `id`, its Profile-Key opened with `key`.
pub async fn profile(
    conn: &impl ConnectionTrait,
    key: Option<&BrandsKey>,
    id: BrandId,
) -> Result<BrandProfile, ProfileError> {
    let row = ProfileRow::find_by_statement(statement(
        "SELECT profile_key, updated_at, disabled_at IS NOT NULL AS disabled \
         FROM brands WHERE id = $1",
        vec![id.into()],
    ))
    .one(conn)
    .await?
    .ok_or(ProfileError::NoSuchBrand(id))?;
    let profile_key = match row.profile_key {
        None => None,
        Some(sealed) => {
            let key = key.ok_or(ProfileError::NoBrandsKey(id))?;
            Some(key.open(id, &sealed)?)
        }
    };
    Ok(BrandProfile {
        id,
        profile_key,
        updated_at: row.updated_at,
        disabled: row.disabled,
    })
}

/// The unit of `brand`'s budget and breakers on `platform`: the default brand keeps the keys
/// of the single-profile installation; another brand's carry its id.
pub fn provider_key(brand: BrandId, platform: Platform) -> ProviderKey {
    let profile = (brand != DEFAULT_BRAND).then(|| {
        brand
            .to_string()
            .parse::<ProfileId>()
            .expect("a uuid is a valid profile name")
    });
    ProviderKey { profile, platform }
}

/// The brands user `user` works for.
pub async fn of_user(
    conn: &impl ConnectionTrait,
    user: crate::domain::UserId,
) -> Result<Vec<BrandId>, DbErr> {
    let rows = conn
        .query_all_raw(statement(
            "SELECT brand_id FROM user_brands WHERE user_id = $1 ORDER BY brand_id",
            vec![user.into()],
        ))
        .await?;
    rows.iter()
        .map(|row| row.try_get::<Uuid>("", "brand_id").map(BrandId))
        .collect()
}

/// Every user's brands.
pub async fn memberships(
    conn: &impl ConnectionTrait,
) -> Result<std::collections::HashMap<crate::domain::UserId, Vec<BrandId>>, DbErr> {
    let rows = conn
        .query_all_raw(statement(
            "SELECT user_id, brand_id FROM user_brands ORDER BY user_id, brand_id",
            vec![],
        ))
        .await?;
    let mut map: std::collections::HashMap<_, Vec<BrandId>> = std::collections::HashMap::new();
    for row in &rows {
        let user = crate::domain::UserId(row.try_get("", "user_id")?);
        map.entry(user)
            .or_default()
            .push(BrandId(row.try_get("", "brand_id")?));
    }
    Ok(map)
}

/// Makes `brands` the brands of `user` (replacing its memberships); fails with a foreign key
/// violation if one does not exist.
pub async fn set_user_brands(
    conn: &impl ConnectionTrait,
    user: crate::domain::UserId,
    brands: &[BrandId],
) -> Result<(), DbErr> {
    let ids: Vec<String> = brands.iter().map(ToString::to_string).collect();
    conn.execute_raw(statement(
        "DELETE FROM user_brands WHERE user_id = $1",
        vec![user.into()],
    ))
    .await?;
    conn.execute_raw(statement(
        "INSERT INTO user_brands (user_id, brand_id) \
         SELECT $1, b::uuid FROM unnest(string_to_array($2, ',')) AS b \
         ON CONFLICT DO NOTHING",
        vec![user.into(), ids.join(",").into()],
    ))
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn a_sealed_profile_key_opens_only_for_its_brand_and_its_key() {
        let key = BrandsKey::from_hex(KEY).expect("64 hex digits");
        let brand = BrandId::new();
        let sealed = key.seal(brand, "pk-secret");
        assert!(
            !sealed.windows(9).any(|w| w == b"pk-secret"),
            "not in clear"
        );
        let opened = key.open(brand, &sealed).expect("opens");
        assert_eq!(opened.expose_secret(), "pk-secret");
        assert!(
            key.open(BrandId::new(), &sealed).is_err(),
            "bound to its brand"
        );
        let other = BrandsKey::from_hex(&KEY.replace('0', "f")).expect("64 hex digits");
        assert!(other.open(brand, &sealed).is_err(), "bound to its key");
        assert_ne!(
            key.seal(brand, "pk-secret"),
            sealed,
            "a new nonce each time"
        );
        assert_eq!(key.fingerprint("pk-secret"), key.fingerprint("pk-secret"));
        assert_ne!(key.fingerprint("pk-secret"), other.fingerprint("pk-secret"));
    }

    #[test]
    fn brands_key_must_be_64_hex_digits() {
        assert!(BrandsKey::from_hex(KEY).is_ok());
        assert_eq!(BrandsKey::from_hex(&KEY[2..]).err(), Some(InvalidBrandsKey));
        assert_eq!(
            BrandsKey::from_hex(&KEY.replace('a', "z")).err(),
            Some(InvalidBrandsKey)
        );
    }

    #[test]
    fn the_default_brand_keeps_the_single_profile_keys() {
        let default = provider_key(DEFAULT_BRAND, Platform::Twitter);
        assert_eq!(default.breaker_key(), "twitter");
        assert_eq!(default.budget_key(), "default");
        let other = BrandId::new();
        let key = provider_key(other, Platform::Twitter);
        assert_eq!(key.breaker_key(), format!("{other}:twitter"));
        assert_eq!(key.budget_key(), format!("profile:{other}"));
    }
}
