//! Newest-first lists read by keyset: the page a request asks for (`limit` and `cursor`), and
//! the page cut from a query that read one row more than it shows, which tells whether another
//! page follows.

use crate::error::ApiError;
use crate::extract::parse_limit;

/// The page a list request asks for: its size and the position it starts after.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest<C> {
    /// Rows on the page.
    pub limit: u64,
    /// The position of the previous page's last row; `None` for the first page.
    pub after: Option<C>,
}

impl<C> PageRequest<C> {
    /// The first page, of `limit` rows (1 to `max`, `default` when absent); 422 naming `limit`
    /// when out of range.
    pub fn first(limit: Option<&str>, default: u64, max: u64) -> Result<Self, ApiError> {
        Ok(PageRequest {
            limit: parse_limit(limit, default, max)?,
            after: None,
        })
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

    /// Cuts `rows` (read with [`Self::fetch`]) to the page, and gives the cursor of the next
    /// page from its last row, `None` on the last page.
    pub fn cut<T>(
        &self,
        mut rows: Vec<T>,
        cursor_of: impl FnOnce(&T) -> String,
    ) -> (Vec<T>, Option<String>) {
        let more = rows.len() as u64 > self.limit;
        rows.truncate(usize::try_from(self.limit).unwrap_or(usize::MAX));
        let next_cursor = more.then(|| rows.last()).flatten().map(cursor_of);
        (rows, next_cursor)
    }
}
