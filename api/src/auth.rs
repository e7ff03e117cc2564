//! Authentication and authorization: passwords (argon2), opaque bearer tokens stored as
//! SHA-256 hashes, the middleware that admits a request and rate-limits its token, and the
//! [`Principal`] handlers receive.
//!
//! Tokens are 32 random bytes, hex encoded with the prefix `smt_`. Only their SHA-256 is
//! stored (`api_tokens.token_hash`, unique): a stolen database does not yield usable tokens,
//! and a fast hash is enough because the token itself has 256 bits of entropy. Revoking is one
//! UPDATE, effective on the next request of every instance.

use crate::AppState;
use crate::error::ApiError;
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use rand::RngCore;
use sha2::{Digest, Sha256};
use shared::brands;
use shared::db::tokens;
use shared::domain::{BrandId, Role, TokenId, UserId};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Prefix of every token (helps secret scanners and people recognise one).
pub const TOKEN_PREFIX: &str = "smt_";

/// How long a token issued at login is valid.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// `last_used_at` is written at most this often per token.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// The signed-in user a request acts for.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The user.
    pub user_id: UserId,
    /// What the user may do.
    pub role: Role,
    /// The token presented.
    pub token_id: TokenId,
    /// The brands whose mentions the user sees and acts on; `None`: every brand (admins).
    pub brands: Option<Vec<BrandId>>,
}

impl Principal {
    /// The audit actor for this user.
    pub fn actor(&self) -> shared::audit::Actor {
        shared::audit::Actor::User(self.user_id)
    }

    /// Whether the user sees the mentions of `brand`.
    pub fn sees(&self, brand: BrandId) -> bool {
        self.brands.as_ref().is_none_or(|own| own.contains(&brand))
    }

    /// 404 unless the user sees `brand`'s mentions: a mention of another brand is answered as
    /// if it did not exist.
    pub fn check_sees(&self, brand: BrandId, what: &str) -> Result<(), ApiError> {
        match self.sees(brand) {
            true => Ok(()),
            false => Err(ApiError::not_found(format!("no {what} with this id"))),
        }
    }
}

/// The signed-in user, when an admin. Extracting it answers anyone else 403 before the
/// handler reads its body, so authorization comes before validation.
#[derive(Debug, Clone)]
pub struct Admin(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let principal = Principal::from_request_parts(parts, state).await?;
        match principal.role {
            Role::Admin => Ok(Admin(principal)),
            Role::Agent => Err(ApiError::forbidden("only admins may do this")),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("a bearer token is required"))
    }
}

/// A new random token (to give to the client once) and its hash (to store).
pub fn new_token() -> (String, String) {
    let mut bytes = [0_u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("{TOKEN_PREFIX}{}", hex::encode(bytes));
    let hash = token_hash(&token);
    (token, hash)
}

/// Whether `token` can be one of ours (`smt_` and 64 hex digits): anything else is refused
/// without a database query.
fn is_token_shaped(token: &str) -> bool {
    token
        .strip_prefix(TOKEN_PREFIX)
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The stored form of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
#[error("cannot hash the password: {0}")]
pub struct HashError(String);

/// Password hashes and checks running at once in this process: each takes 19 MiB and a core
/// for a moment, so a burst of logins queues here instead of filling memory.
const PASSWORD_SLOTS: usize = 4;

/// How long a request waits for a password slot before it answers 503 `busy`.
const PASSWORD_QUEUE_WAIT: Duration = Duration::from_secs(10);

static PASSWORD_WORK: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(PASSWORD_SLOTS);

/// Why password work did not run.
#[derive(Debug, thiserror::Error)]
pub enum PasswordWorkError {
    /// No slot freed up within [`PASSWORD_QUEUE_WAIT`]: 503 `busy` with `Retry-After`.
    #[error("too many sign-ins at once; try again shortly")]
    Busy,
    #[error("the password work stopped: {0}")]
    Stopped(#[from] tokio::task::JoinError),
}

impl From<PasswordWorkError> for ApiError {
    fn from(error: PasswordWorkError) -> Self {
        match error {
            PasswordWorkError::Busy => ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                error.to_string(),
            )
            .with_retry_after(Duration::from_secs(1)),
            PasswordWorkError::Stopped(e) => ApiError::internal(&e),
        }
    }
}

/// Runs `work` (a password hash or check) on the blocking pool, at most [`PASSWORD_SLOTS`] at
/// once.
pub async fn password_work<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, PasswordWorkError> {
    let _slot = tokio::time::timeout(PASSWORD_QUEUE_WAIT, PASSWORD_WORK.acquire())
        .await
        .map_err(|_| PasswordWorkError::Busy)?
        .map_err(|_| PasswordWorkError::Busy)?;
    Ok(tokio::task::spawn_blocking(work).await?)
}

/// Hashes a password with argon2id at the crate's recommended parameters (PHC string).
/// CPU-heavy: run it through [`password_work`].
pub fn hash_password(password: &str) -> Result<String, HashError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Whether `password` matches the PHC string `hash` (false for a malformed hash).
/// CPU-heavy: run it through [`password_work`].
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash that matches no password: verified against when the email is unknown, so that an
/// unknown email takes as long to refuse as a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let mut bytes = [0_u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        hash_password(&hex::encode(bytes)).unwrap_or_default()
    })
}

/// Middleware of every protected route: admits the request if it carries a valid bearer
/// token (401 otherwise) within its rate limit (429 with `Retry-After` otherwise), and
/// attaches its [`Principal`].
pub async fn require_token(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("a bearer token is required"))?;
    let invalid = || ApiError::unauthorized("the token is invalid, expired or revoked");
    if !is_token_shaped(token) {
        return Err(invalid());
    }
    // A look-up that finds nothing counts against the client's address, and an address over
    // its allowance is refused before the query: guessing tokens costs the database a bounded
    // number of queries per address, while valid tokens cost nothing.
    let address = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip());
    let guessing = |wait| {
        ApiError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many unknown tokens from this address; slow down",
        )
        .with_retry_after(wait)
    };
    if let Some(address) = address {
        state
            .token_lookups
            .peek(address, Instant::now())
            .map_err(guessing)?;
    }
    let Some(found) = tokens::find_valid(&state.db, &token_hash(token)).await? else {
        if let Some(address) = address {
            // Over the allowance now: this miss is refused like the next ones.
            state
                .token_lookups
                .check(address, Instant::now())
                .map_err(guessing)?;
        }
        return Err(invalid());
    };
    let brands = match found.user.role {
        Role::Admin => None,
        Role::Agent => Some(brands::of_user(&state.db, found.user.id).await?),
    };
    let principal = Principal {
        user_id: found.user.id,
        role: found.user.role,
        token_id: found.token.id,
        brands,
    };
    state
        .limiter
        .check(principal.token_id, Instant::now())
        .map_err(|wait| {
            ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests with this token; slow down",
            )
            .with_retry_after(wait)
        })?;
    let stale = found.token.last_used_at.is_none_or(|at| {
        chrono::Utc::now()
            .signed_duration_since(at)
            .to_std()
            .unwrap_or_default()
            > TOUCH_EVERY
    });
    if stale {
        let db = state.db.clone();
        let token_id = found.token.id;
        // Bookkeeping only: the request does not wait for it.
        tokio::spawn(async move {
            if let Err(e) = tokens::touch(&db, token_id).await {
                tracing::debug!(error = %e, "cannot record token use");
            }
        });
    }
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}
