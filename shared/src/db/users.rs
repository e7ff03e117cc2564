//! Queries on `users`: look-ups by id and (case-insensitive) email, the list, and creation.
//!
//! Emails are unique whatever their case (unique index on `lower(email)`): creating a second
//! user with the same address fails with a unique violation, which callers map to a conflict.
//!
//! Failed logins are counted per client address in `login_throttle`, shared by every API
//! instance: after [`LoginThrottle::free_failures`] failures within the window, each further
//! failure blocks the address for twice as long as the previous one, up to a ceiling.

use crate::db::entities::users;
use crate::domain::{Role, UserId};
use chrono::{DateTime, FixedOffset};
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder, Set,
    Statement,
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

/// How failed logins slow an address down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginThrottle {
    /// Failures allowed within the window before blocking starts.
    pub free_failures: u32,
    /// Failures older than this are forgotten.
    pub window: Duration,
    /// The first block; each further failure doubles it.
    pub first_block: Duration,
    /// The longest block.
    pub max_block: Duration,
}

impl Default for LoginThrottle {
    /// 5 free failures per 15 minutes, then blocks of 1 s, 2 s, 4 s… up to 15 minutes.
    fn default() -> Self {
        LoginThrottle {
            free_failures: 5,
            window: Duration::from_secs(15 * 60),
            first_block: Duration::from_secs(1),
            max_block: Duration::from_secs(15 * 60),
        }
    }
}

/// Until when logins from `address` are refused, if they are now.
pub async fn login_blocked_until(
    conn: &impl ConnectionTrait,
    address: &str,
) -> Result<Option<DateTime<FixedOffset>>, DbErr> {
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT blocked_until FROM login_throttle WHERE address = $1 AND blocked_until > now()",
            [address.into()],
        ))
        .await?;
    row.map(|r| r.try_get("", "blocked_until")).transpose()
}

/// Counts a failed login from `address`; returns until when the address is now blocked, if
/// it is.
pub async fn record_login_failure(
    conn: &impl ConnectionTrait,
    address: &str,
    throttle: LoginThrottle,
) -> Result<Option<DateTime<FixedOffset>>, DbErr> {
    // One statement, so concurrent failures from the same address all count.
    let failures = "CASE WHEN t.window_started_at < now() - make_interval(secs => $2) \
                    THEN 1 ELSE t.failures + 1 END";
    let block = |n: &str| {
        format!(
            "CASE WHEN {n} > $3 THEN now() + make_interval(secs => least($5::float8, \
             $4::float8 * power(2::float8, least({n} - $3 - 1, 30)))) ELSE NULL END"
        )
    };
    let sql = format!(
        "INSERT INTO login_throttle AS t (address, failures, blocked_until) \
         VALUES ($1, 1, {first}) \
         ON CONFLICT (address) DO UPDATE SET failures = {failures}, \
         window_started_at = CASE WHEN t.window_started_at < now() - make_interval(secs => $2) \
         THEN now() ELSE t.window_started_at END, \
         blocked_until = {next}, updated_at = now() \
         RETURNING t.blocked_until",
        first = block("1"),
        next = block(&format!("({failures})")),
    );
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            [
                address.into(),
                throttle.window.as_secs_f64().into(),
                i32::try_from(throttle.free_failures)
                    .unwrap_or(i32::MAX)
                    .into(),
                throttle.first_block.as_secs_f64().into(),
                throttle.max_block.as_secs_f64().into(),
            ],
        ))
        .await?;
    Ok(row
        .map(|r| r.try_get::<Option<DateTime<FixedOffset>>>("", "blocked_until"))
        .transpose()?
        .flatten())
}

/// Forgets the failures of `address` (after a successful login).
pub async fn clear_login_failures(conn: &impl ConnectionTrait, address: &str) -> Result<(), DbErr> {
    conn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "DELETE FROM login_throttle WHERE address = $1",
        [address.into()],
    ))
    .await?;
    Ok(())
}
