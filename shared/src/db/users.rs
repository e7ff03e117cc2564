//! Queries on `users`: look-ups by id and (case-insensitive) email, the list, and creation.
//!
//! Emails are unique whatever their case (unique index on `lower(email)`): creating a second
//! user with the same address fails with a unique violation, which callers map to a conflict.
//!
//! Login attempts are counted in `login_throttle`, shared by every API instance, under two
//! keys: the client's address and the account (its lowercased email). [`begin_login`] counts
//! an attempt under both before the password is checked, under the rows' locks, so a parallel
//! burst cannot slip past the count; past a key's free failures within the window, each
//! further attempt blocks that key for twice as long as the previous one, up to a ceiling, and
//! while a key is blocked attempts are refused without a password check. [`login_succeeded`]
//! takes the attempt back: it forgets the account's failures, and removes only this one
//! attempt from the address's (a success on one's own account does not clear an address
//! that was guessing others).

use crate::db::entities::users;
use crate::domain::{Role, UserId};
use chrono::{DateTime, FixedOffset};
use sea_orm::ColumnTrait;
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    QueryFilter, QueryOrder, Set, Statement, TransactionTrait,
};
use std::time::Duration;

/// A user to create; the password is already hashed.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    /// Login address (kept as given; compared case-insensitively).
    pub email: &'a str,
    /// Display name.
    pub name: &'a str,
    /// What the user may do.
    pub role: Role,
    /// Argon2 hash in PHC string format.
    pub password_hash: String,
}

/// The user with this email, whatever its case.
pub async fn find_by_email(
    conn: &impl ConnectionTrait,
    email: &str,
) -> Result<Option<users::Model>, DbErr> {
    users::Entity::find()
        .filter(
            Expr::expr(Func::lower(Expr::col(users::Column::Email)))
                .eq(Func::lower(Expr::val(email))),
        )
        .one(conn)
        .await
}

/// The user with this id.
pub async fn find(conn: &impl ConnectionTrait, id: UserId) -> Result<Option<users::Model>, DbErr> {
    users::Entity::find_by_id(id).one(conn).await
}

/// Every user, oldest first.
pub async fn list(conn: &impl ConnectionTrait) -> Result<Vec<users::Model>, DbErr> {
    users::Entity::find()
        .order_by_asc(users::Column::CreatedAt)
        .order_by_asc(users::Column::Id)
        .all(conn)
        .await
}

/// Inserts a user; a duplicate email is a unique violation (`users_email_lower_key`).
pub async fn insert(conn: &impl ConnectionTrait, user: NewUser<'_>) -> Result<users::Model, DbErr> {
    users::ActiveModel {
        id: Set(UserId::new()),
        email: Set(user.email.to_owned()),
        name: Set(user.name.to_owned()),
        role: Set(user.role),
        password_hash: Set(user.password_hash),
        ..Default::default()
    }
    .insert(conn)
    .await
}

/// What to change about a user (`None`: leave as it is).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserChange {
    /// Disable (`true`, which revokes every token of theirs) or enable again.
    pub disabled: Option<bool>,
    /// A new role.
    pub role: Option<Role>,
    /// A new password, hashed.
    pub password_hash: Option<String>,
}

/// Applies `change` to the user: the row after, or `None` if there is no such user. Demoting
/// or disabling the last enabled admin fails with a check violation of
/// [`KEEP_AN_ADMIN`].
pub async fn update(
    conn: &impl ConnectionTrait,
    id: UserId,
    change: UserChange,
) -> Result<Option<users::Model>, DbErr> {
    let mut update = users::Entity::update_many()
        .col_expr(users::Column::UpdatedAt, Expr::cust("now()"))
        .filter(users::Column::Id.eq(id));
    if let Some(disabled) = change.disabled {
        // Disabling an already disabled user keeps the first instant.
        let at = if disabled {
            Expr::cust("COALESCE(disabled_at, now())")
        } else {
            Expr::cust("NULL::timestamptz")
        };
        update = update.col_expr(users::Column::DisabledAt, at);
    }
    if let Some(role) = change.role {
        update = update.col_expr(users::Column::Role, Expr::value(role.as_str()));
    }
    if let Some(hash) = change.password_hash {
        update = update.col_expr(users::Column::PasswordHash, Expr::value(hash));
    }
    Ok(update.exec_with_returning(conn).await?.into_iter().next())
}

/// The check (a trigger) that keeps one enabled admin.
pub const KEEP_AN_ADMIN: &str = "users_keep_an_admin";

/// How failed logins slow an account and an address down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginThrottle {
    /// Failed attempts on one account allowed within the window before blocking starts.
    pub free_failures: u32,
    /// Failed attempts from one address allowed within the window (several people may share
    /// one, behind a NAT).
    pub address_free_failures: u32,
    /// Failures older than this are forgotten.
    pub window: Duration,
    /// The first block; each further failure doubles it.
    pub first_block: Duration,
    /// The longest block.
    pub max_block: Duration,
}

impl Default for LoginThrottle {
    /// 5 free failures per account and 20 per address per 15 minutes, then blocks of 1 s,
    /// 2 s, 4 s… up to 15 minutes.
    fn default() -> Self {
        LoginThrottle {
            free_failures: 5,
            address_free_failures: 20,
            window: Duration::from_secs(15 * 60),
            first_block: Duration::from_secs(1),
            max_block: Duration::from_secs(15 * 60),
        }
    }
}

/// The throttle keys of a login attempt: the client's address and the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginKeys {
    address: String,
    account: String,
}

impl LoginKeys {
    /// The keys of an attempt on `email` from `address`.
    pub fn new(address: &str, email: &str) -> Self {
        LoginKeys {
            address: format!("address:{address}"),
            account: format!("account:{}", email.trim().to_lowercase()),
        }
    }
}

/// Counts a login attempt under both keys, as a failure until [`login_succeeded`] says
/// otherwise: `Ok(None)` if the password may be checked, `Ok(Some(until))` if a key is blocked
/// (nothing is counted then).
pub async fn begin_login(
    db: &DatabaseConnection,
    keys: &LoginKeys,
    throttle: LoginThrottle,
) -> Result<Option<DateTime<FixedOffset>>, DbErr> {
    let txn = db.begin().await?;
    let both: Vec<String> = vec![keys.address.clone(), keys.account.clone()];
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "INSERT INTO login_throttle (key, failures) SELECT k, 0 FROM unnest($1::text[]) AS k \
         ORDER BY k ON CONFLICT (key) DO NOTHING",
        [both.clone().into()],
    ))
    .await?;
    // Locked in key order (as every attempt locks them), the decision below is atomic.
    let blocked = txn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT max(blocked_until) FILTER (WHERE blocked_until > now()) AS until \
             FROM (SELECT blocked_until FROM login_throttle WHERE key = ANY($1) \
                   ORDER BY key FOR UPDATE) AS locked",
            [both.into()],
        ))
        .await?
        .map(|row| row.try_get::<Option<DateTime<FixedOffset>>>("", "until"))
        .transpose()?
        .flatten();
    if blocked.is_some() {
        txn.commit().await?;
        return Ok(blocked);
    }
    for (key, free) in [
        (&keys.address, throttle.address_free_failures),
        (&keys.account, throttle.free_failures),
    ] {
        count_failure(&txn, key, free, throttle).await?;
    }
    txn.commit().await?;
    Ok(None)
}

/// Counts one failure under `key` (its row locked), blocking it once past `free` failures.
async fn count_failure(
    conn: &impl ConnectionTrait,
    key: &str,
    free: u32,
    throttle: LoginThrottle,
) -> Result<(), DbErr> {
    let failures = "CASE WHEN window_started_at < now() - make_interval(secs => $2) \
                    THEN 1 ELSE failures + 1 END";
    let sql = format!(
        "UPDATE login_throttle SET failures = {failures}, \
         window_started_at = CASE WHEN window_started_at < now() - make_interval(secs => $2) \
                             THEN now() ELSE window_started_at END, \
         blocked_until = CASE WHEN {failures} > $3 \
             THEN now() + make_interval(secs => least($5::float8, \
                  $4::float8 * power(2::float8, least({failures} - $3 - 1, 30)))) \
             ELSE NULL END, \
         updated_at = now() \
         WHERE key = $1"
    );
    conn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        [
            key.into(),
            throttle.window.as_secs_f64().into(),
            i32::try_from(free).unwrap_or(i32::MAX).into(),
            throttle.first_block.as_secs_f64().into(),
            throttle.max_block.as_secs_f64().into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Takes back the attempt [`begin_login`] counted, which succeeded: the account's failures
/// are forgotten; the address keeps its others (lifting a block only this attempt caused).
pub async fn login_succeeded(
    conn: &impl ConnectionTrait,
    keys: &LoginKeys,
    throttle: LoginThrottle,
) -> Result<(), DbErr> {
    conn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "WITH account AS (DELETE FROM login_throttle WHERE key = $2) \
         UPDATE login_throttle SET failures = greatest(failures - 1, 0), \
             blocked_until = CASE WHEN failures - 1 <= $3 THEN NULL ELSE blocked_until END, \
             updated_at = now() \
         WHERE key = $1",
        [
            keys.address.clone().into(),
            keys.account.clone().into(),
            i32::try_from(throttle.address_free_failures)
                .unwrap_or(i32::MAX)
                .into(),
        ],
    ))
    .await?;
    Ok(())
}
