//! The database side of the shared library: sea-orm entities for every table (see
//! `migrations` for the schema itself), a module of queries per table that has more than
//! entity look-ups, and small helpers for reading database errors.
//!
//! Invariants live in the database (unique and partial unique indexes, the audit triggers);
//! code relies on them instead of checking first, and reads the outcome from the error.

pub mod audit_log;
pub mod entities;
pub mod idempotency;
pub mod mentions;
pub mod tokens;
pub mod users;
mod values;

use sea_orm::{DbErr, RuntimeErr};

/// SQLSTATE of a unique violation.
pub const UNIQUE_VIOLATION: &str = "23505";
/// SQLSTATE raised by the audit log's append-only triggers (`insufficient_privilege`).
pub const APPEND_ONLY_VIOLATION: &str = "42501";
/// SQLSTATE of a serialization failure (retry the transaction).
pub const SERIALIZATION_FAILURE: &str = "40001";
/// SQLSTATE of a foreign key violation (the row referred to does not exist).
pub const FOREIGN_KEY_VIOLATION: &str = "23503";
/// SQLSTATE of a lock that `NOWAIT` could not take.
pub const LOCK_NOT_AVAILABLE: &str = "55P03";
/// SQLSTATE of an object in use (a template database another session is copying).
pub const OBJECT_IN_USE: &str = "55006";

/// The SQLSTATE code of an error the database raised, if it is one.
pub fn sqlstate(err: &DbErr) -> Option<String> {
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            migrations::sqlstate(e)
        }
        _ => None,
    }
}

/// Whether `err` says the database cannot be used right now rather than that the request
/// was wrong: no connection from the pool in time, the server unreachable or restarting, a
/// connection lost mid-query (SQLSTATE classes 08 and 57P, and 53300 too many connections).
/// Such a request can simply be tried again later.
pub fn is_unavailable(err: &DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    let lost = |e: &Sqlx| match e {
        Sqlx::Io(_)
        | Sqlx::Tls(_)
        | Sqlx::PoolTimedOut
        | Sqlx::PoolClosed
        | Sqlx::WorkerCrashed => true,
        Sqlx::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || code.starts_with("57P") || code == "53300"
        }),
        _ => false,
    };
    match err {
        // No connection could be had or made, whatever the reason (refused, reset, a broken
        // handshake).
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => lost(e),
        _ => false,
    }
}

/// Whether `err` is a unique (or partial unique index) violation.
pub fn is_unique_violation(err: &DbErr) -> bool {
    sqlstate(err).as_deref() == Some(UNIQUE_VIOLATION)
}

/// The name of the constraint or index `err` violated, if the database named one (e.g.
/// `replies_one_live_per_mention_key`).
pub fn violated_constraint(err: &DbErr) -> Option<String> {
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => e
            .as_database_error()
            .and_then(|db| db.constraint())
            .map(str::to_owned),
        _ => None,
    }
}
