//! Newest-first lists read by keyset: the page a request asks for (`limit` and `cursor`), and
//! the page cut from a query that read one row more than it shows, which tells whether another
//! page follows. Every list answers the same [`Page`] shape.

use crate::error::ApiError;
use serde::Serialize;
use std::borrow::Cow;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

/// How many rows a list shows when `limit` is absent, and the most it may ask for.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub default: u64,
    pub max: u64,
}

/// The page sizes of the mention and task lists.
pub const LIST_LIMITS: Limits = Limits {
    default: 50,
    max: 500,
};

/// The page sizes of the audit trail, whose rows are small and read in long runs.
pub const AUDIT_LIMITS: Limits = Limits {
    default: 100,
    max: 1000,
};

/// A page of a list, newest first. Its schema is named after the row's (`MentionOut` rows make
/// a `MentionPage`), and refers to the row's schema.
#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub result: Vec<T>,
    pub meta: PageMeta,
}

impl<T: ToSchema> PartialSchema for Page<T> {
    fn schema() -> RefOr<Schema> {
        let rows = ArrayBuilder::new()
            .items(Ref::from_schema_name(T::name()))
            .description(Some("The rows, newest first."));
        ObjectBuilder::new()
            .description(Some("A page of a list, newest first."))
            .property("result", rows)
            .required("result")
            .property("meta", Ref::from_schema_name(PageMeta::name()))
            .required("meta")
            .into()
    }
}

impl<T: ToSchema> ToSchema for Page<T> {
    fn name() -> Cow<'static, str> {
        let row = T::name();
        Cow::Owned(format!("{}Page", row.strip_suffix("Out").unwrap_or(&row)))
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((T::name().into_owned(), T::schema()));
        T::schemas(schemas);
        schemas.push((PageMeta::name().into_owned(), PageMeta::schema()));
    }
}

/// Paging information.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PageMeta {
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    pub next_cursor: Option<String>,
    /// The page size used.
    pub limit: u64,
    /// Rows on this page.
    pub count: usize,
    /// On mention pages only, always `false`: ingestion runs in the background.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub is_syncing: Option<bool>,
}

/// The page a list request asks for: its size and the position it starts after.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest<C> {
    pub limit: u64,
    /// The position of the previous page's last row; `None` for the first page.
    pub after: Option<C>,
}

impl<C> PageRequest<C> {
    /// The first page, of `limit` rows (digits, 1 to `limits.max`, `limits.default` when
    /// absent); 422 naming `limit` when out of range.
    pub fn first(limit: Option<&str>, limits: Limits) -> Result<Self, ApiError> {
        let limit = match limit {
            None => limits.default,
            Some(text) => Some(text)
                .filter(|t| t.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|t| t.parse::<u64>().ok())
                .filter(|n| (1..=limits.max).contains(n))
                .ok_or_else(|| {
                    ApiError::invalid(
                        "limit",
                        format!("limit: a whole number from 1 to {}", limits.max),
                    )
                })?,
        };
        Ok(PageRequest { limit, after: None })
    }

    /// The page after the position in `cursor` (decoded by `decode`, which names `cursor` when
    /// it is invalid); the first page when there is no cursor.
    pub fn after(
        self,
        cursor: Option<&str>,
        decode: impl FnOnce(&str) -> Result<C, ApiError>,
    ) -> Result<Self, ApiError> {
        Ok(PageRequest {
            after: cursor.map(decode).transpose()?,
            ..self
        })
    }

    /// How many rows to read: one more than the page holds.
    pub fn fetch(&self) -> u64 {
        self.limit + 1
    }

    /// The page of `rows` (read with [`Self::fetch`]), each shown as `show` gives it, with
    /// the cursor of the next page taken from its last row (`None` on the last page).
    pub fn cut<R, T>(
        &self,
        mut rows: Vec<R>,
        cursor_of: impl FnOnce(&R) -> String,
        show: impl FnMut(R) -> T,
    ) -> Page<T> {
        let more = rows.len() as u64 > self.limit;
        rows.truncate(usize::try_from(self.limit).unwrap_or(usize::MAX));
        let next_cursor = more.then(|| rows.last()).flatten().map(cursor_of);
        let result: Vec<T> = rows.into_iter().map(show).collect();
        Page {
            meta: PageMeta {
                next_cursor,
                limit: self.limit,
                count: result.len(),
                is_syncing: None,
            },
            result,
        }
    }
}
