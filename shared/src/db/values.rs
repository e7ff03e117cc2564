//! Lets entity columns hold the domain types directly: typed ids (`MentionId`, …) are stored
//! as `uuid`, and the closed value sets (`Platform`, `MentionState`, …) as their text spelling,
//! which the database's CHECK constraints restrict to the same values.
//!
//! These are the impls `DeriveValueType` would generate; they live here because the domain
//! types stay free of database concerns.

use crate::domain::{
    BrandId, Disposition, MentionId, MentionState, MentionType, Platform, PostId, ReplyId,
    ReplyStatus, Role, TaskId, TaskStatus, TokenId, UserId,
};
use sea_orm::sea_query::{ArrayType, ColumnType, Nullable, StringLen, ValueType, ValueTypeErr};
use sea_orm::{ActiveValue, ColIdx, DbErr, IntoActiveValue, QueryResult, TryFromU64, TryGetError};
use sea_orm::{TryGetable, Value};
use std::str::FromStr;
use std::sync::Arc;
use uuid::Uuid;

macro_rules! uuid_value {
    ($($name:ident),+ $(,)?) => {$(
        impl From<$name> for Value {
            fn from(id: $name) -> Self {
                id.0.into()
            }
        }

        impl TryGetable for $name {
            fn try_get_by<I: ColIdx>(res: &QueryResult, idx: I) -> Result<Self, TryGetError> {
                Uuid::try_get_by(res, idx).map($name)
            }
        }

        impl ValueType for $name {
            fn try_from(v: Value) -> Result<Self, ValueTypeErr> {
                <Uuid as ValueType>::try_from(v).map($name)
            }

            fn type_name() -> String {
                stringify!($name).to_owned()
            }

            fn array_type() -> ArrayType {
                ArrayType::Uuid
            }

            fn column_type() -> ColumnType {
                ColumnType::Uuid
            }
        }

        impl Nullable for $name {
            fn null() -> Value {
                <Uuid as Nullable>::null()
            }
        }

        impl IntoActiveValue<$name> for $name {
            fn into_active_value(self) -> ActiveValue<$name> {
                ActiveValue::Set(self)
            }
        }

        impl TryFromU64 for $name {
            fn try_from_u64(_: u64) -> Result<Self, DbErr> {
                Err(DbErr::ConvertFromU64(stringify!($name)))
            }
        }
    )+};
}

macro_rules! text_value {
    ($($name:ident),+ $(,)?) => {$(
        impl From<$name> for Value {
            fn from(value: $name) -> Self {
                value.as_str().into()
            }
        }

        impl TryGetable for $name {
            fn try_get_by<I: ColIdx>(res: &QueryResult, idx: I) -> Result<Self, TryGetError> {
                let text = String::try_get_by(res, idx)?;
                $name::from_str(&text).map_err(|err| {
                    TryGetError::DbErr(DbErr::TryIntoErr {
                        from: "String",
                        into: stringify!($name),
                        source: Arc::new(err),
                    })
                })
            }
        }

        impl ValueType for $name {
            fn try_from(v: Value) -> Result<Self, ValueTypeErr> {
                let text = <String as ValueType>::try_from(v)?;
                $name::from_str(&text).map_err(|_| ValueTypeErr)
            }

            fn type_name() -> String {
                stringify!($name).to_owned()
            }

            fn array_type() -> ArrayType {
                ArrayType::String
            }

            fn column_type() -> ColumnType {
                ColumnType::String(StringLen::None)
            }
        }

        impl Nullable for $name {
            fn null() -> Value {
                Value::String(None)
            }
        }

        impl IntoActiveValue<$name> for $name {
            fn into_active_value(self) -> ActiveValue<$name> {
                ActiveValue::Set(self)
            }
        }
    )+};
}

uuid_value!(BrandId, MentionId, ReplyId, UserId, PostId, TaskId, TokenId);
text_value!(
    Platform,
    MentionType,
    MentionState,
    Disposition,
    ReplyStatus,
    TaskStatus,
    Role
);
