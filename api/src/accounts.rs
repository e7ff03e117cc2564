//! Creating a user, as `POST /v1/users` and the `create-admin` command both do it: the
//! address, name and password checked, the password hashed (through
//! [`auth::password_work`]), the row inserted and audited as `user.created` in one
//! transaction. Errors say which field is wrong; the route turns them into problems, the
//! command into its message.

use crate::auth::{self, HashError, PasswordWorkError};
use crate::error::ApiError;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, TransactionTrait};
use shared::audit::{self, Actor, Entry, entity};
use shared::brands;
use shared::db::entities::users;
use shared::db::users as user_queries;
use shared::domain::{BrandId, Role, UserId};

/// Longest accepted email (RFC 5321).
pub const MAX_EMAIL_CHARS: usize = 254;
/// Longest accepted name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Accepted password lengths, in characters.
pub const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 8..=1024;

/// A user to create, as given.
#[derive(Debug)]
pub struct NewAccount<'a> {
    pub email: &'a str,
    /// Surrounding white space is removed.
    pub name: &'a str,
    pub password: String,
    pub role: Role,
    /// The brands the user works for.
    pub brands: &'a [BrandId],
}

/// Why a user could not be created (or a password set).
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// A field is unusable; `message` starts with its name.
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("a user with this email already exists")]
    EmailTaken,
    #[error(transparent)]
    PasswordWork(#[from] PasswordWorkError),
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Database(#[from] DbErr),
}

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::Invalid { field, message } => ApiError::invalid(field, message),
            AccountError::EmailTaken => {
                ApiError::conflict("email_taken", error.to_string()).with_field("email")
            }
            AccountError::PasswordWork(e) => e.into(),
            AccountError::Hash(e) => ApiError::internal(&e),
            AccountError::Database(e) => e.into(),
        }
    }
}

fn invalid(field: &'static str, message: String) -> AccountError {
    AccountError::Invalid { field, message }
}

/// Checks the shape of an email address, naming `field`.
fn check_email(field: &'static str, email: &str) -> Result<(), AccountError> {
    let valid = email.chars().count() <= MAX_EMAIL_CHARS
        && !email.chars().any(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if valid {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("{field}: not a valid email address"),
        ))
    }
}

/// Makes `brands` the brands of `user`; an unknown brand is the field `brandIds`' fault.
pub async fn set_brands(
    conn: &impl ConnectionTrait,
    user: UserId,
    brands: &[BrandId],
) -> Result<(), AccountError> {
    brands::set_user_brands(conn, user, brands)
        .await
        .map_err(|e| match shared::db::sqlstate(&e).as_deref() {
            Some(shared::db::FOREIGN_KEY_VIOLATION) => invalid(
                "brandIds",
                "brandIds: no brand has one of these ids".to_owned(),
            ),
            _ => e.into(),
        })
}

/// Checks a new password's length (naming `field`) and hashes it on the blocking pool.
pub async fn hash_new_password(
    field: &'static str,
    password: String,
) -> Result<String, AccountError> {
    if !PASSWORD_CHARS.contains(&password.chars().count()) {
        return Err(invalid(
            field,
            format!(
                "{field}: between {} and {} characters",
                PASSWORD_CHARS.start(),
                PASSWORD_CHARS.end()
            ),
        ));
    }
    Ok(auth::password_work(move || auth::hash_password(&password)).await??)
}

/// Checks `account`, hashes its password, inserts the user and audits it as done by `actor`.
pub async fn create(
    db: &DatabaseConnection,
    account: NewAccount<'_>,
    actor: Actor,
) -> Result<users::Model, AccountError> {
    check_email("email", account.email)?;
    // Counted as given, like the document's `maxLength`.
    if account.name.chars().count() > MAX_NAME_CHARS {
        return Err(invalid(
            "name",
            format!("name: at most {MAX_NAME_CHARS} characters"),
        ));
    }
    let name = account.name.trim();
    if name.is_empty() {
        return Err(invalid("name", "name: must not be blank".to_owned()));
    }
    let password_hash = hash_new_password("password", account.password).await?;
    let txn = db.begin().await?;
    let user = user_queries::insert(
        &txn,
        user_queries::NewUser {
            email: account.email,
            name,
            role: account.role,
            password_hash,
        },
    )
    .await
    .map_err(|e| {
        if shared::db::is_unique_violation(&e) {
            AccountError::EmailTaken
        } else {
            e.into()
        }
    })?;
    set_brands(&txn, user.id, account.brands).await?;
    audit::append(
        &txn,
        Entry::new(actor, "user.created", entity::USER, user.id).with_payload(serde_json::json!({
            "email": user.email,
            "name": user.name,
            "role": user.role.as_str(),
            "brandIds": account.brands,
        })),
    )
    .await?;
    txn.commit().await?;
    Ok(user)
}
