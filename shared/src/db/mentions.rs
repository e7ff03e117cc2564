//! Queries on `mentions` for the triage inbox: the filtered, newest-first list with keyset
//! pagination, one mention with its replies, and the locked read-modify-write of a triage
//! change (assignee, state, disposition) that bumps `version`.
//!
//! The list is ordered by (`created_at` DESC, `id` DESC) and continues after a
//! [`MentionCursor`] with a row comparison, which the `mentions_*_created_at_id_idx` indexes
//! serve directly: a page costs the same on page 1 and page 10,000, whatever the table size.

use crate::db::entities::{mentions, replies};
use crate::domain::{
    BrandId, Disposition, MentionId, MentionState, MentionType, Platform, ReplyId, ReplyStatus,
    UserId,
};
use chrono::{DateTime, FixedOffset, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect, Set, Statement, Value,
};
use std::fmt::Write as _;

/// What to show of the inbox. Empty lists mean "any"; the conditions are combined with AND,
/// the values inside one list with OR.
#[derive(Debug, Clone, Default)]
pub struct MentionFilter {
    /// Brands asked for.
    pub brands: Vec<BrandId>,
    /// The brands the reader may see (`None`: all); mentions of others never match.
    pub visible: Option<Vec<BrandId>>,
    pub platforms: Vec<Platform>,
    /// Mention types.
    pub types: Vec<MentionType>,
    /// States; `None` matches new mentions (no state).
    pub states: Vec<Option<MentionState>>,
    /// Dispositions; `None` matches mentions without one.
    pub dispositions: Vec<Option<Disposition>>,
    /// Assigned to one of these users…
    pub assignees: Vec<UserId>,
    /// …or (when set) to nobody.
    pub unassigned: bool,
    /// Full-text query over content, author name and handle (web search syntax).
    pub text: Option<String>,
    /// Stored at or after this time.
    pub since: Option<DateTime<FixedOffset>>,
    /// Stored before this time.
    pub until: Option<DateTime<FixedOffset>>,
}

/// Position after the last mention of a page: its (`created_at`, `id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MentionCursor {
    /// `created_at` of the last mention shown.
    pub created_at: DateTime<FixedOffset>,
    /// `id` of the last mention shown.
    pub id: MentionId,
}

impl MentionCursor {
    /// The cursor after `mention`.
    pub fn after(mention: &mentions::Model) -> Self {
        MentionCursor {
            created_at: mention.created_at,
            id: mention.id,
        }
    }
}

/// The latest reply requested for a mention, in brief.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplySummary {
    /// The reply.
    pub id: ReplyId,
    /// Where it is in the exactly-once protocol.
    pub status: ReplyStatus,
    /// When the provider accepted it.
    pub sent_at: Option<DateTime<FixedOffset>>,
    /// Its last change.
    pub updated_at: DateTime<FixedOffset>,
}

/// A mention of the list with its latest reply, if any.
#[derive(Debug, Clone)]
pub struct ListedMention {
    pub mention: mentions::Model,
    pub latest_reply: Option<ReplySummary>,
}

const COLUMNS: &str = "m.id, m.brand_id, m.type, m.platform, m.content, m.platform_ref, \
    m.provider_post_ref, m.parent_id, m.author_id, m.author_name, m.author_handle, m.posted_at, \
    m.state, m.disposition, m.assignee_id, m.raw, m.version, m.created_at, m.updated_at";

fn some<T: Copy>(values: &[T]) -> Vec<Option<T>> {
    values.iter().copied().map(Some).collect()
}

/// SQL conditions with their positional parameters.
#[derive(Default)]
struct Conditions {
    sql: Vec<String>,
    values: Vec<Value>,
}

impl Conditions {
    /// `$n` for a new parameter.
    fn param(&mut self, value: impl Into<Value>) -> String {
        self.values.push(value.into());
        format!("${}", self.values.len())
    }

    /// `column IN (…)` over `values`, OR `column IS NULL` when one of them is `None`.
    fn any_of<T: Into<Value> + Copy>(&mut self, column: &str, values: &[Option<T>]) {
        if values.is_empty() {
            return;
        }
        let mut alternatives = Vec::new();
        let present: Vec<String> = values.iter().flatten().map(|v| self.param(*v)).collect();
        if !present.is_empty() {
            alternatives.push(format!("{column} IN ({})", present.join(", ")));
        }
        if values.iter().any(Option::is_none) {
            alternatives.push(format!("{column} IS NULL"));
        }
        self.sql.push(format!("({})", alternatives.join(" OR ")));
    }
}

/// One page of the inbox, newest first, after `after` (from the start without it).
pub async fn list(
    conn: &impl ConnectionTrait,
    filter: &MentionFilter,
    after: Option<MentionCursor>,
    limit: u64,
) -> Result<Vec<ListedMention>, DbErr> {
    let mut c = Conditions::default();
    match &filter.visible {
        Some(visible) if visible.is_empty() => c.sql.push("false".to_owned()),
        Some(visible) => c.any_of("m.brand_id", &some(visible)),
        None => {}
    }
    c.any_of("m.brand_id", &some(&filter.brands));
    c.any_of("m.platform", &some(&filter.platforms));
    c.any_of("m.type", &some(&filter.types));
    c.any_of("m.state", &filter.states);
    c.any_of("m.disposition", &filter.dispositions);
    let mut assignees: Vec<Option<UserId>> = some(&filter.assignees);
    if filter.unassigned {
        assignees.push(None);
    }
    c.any_of("m.assignee_id", &assignees);
    if let Some(text) = &filter.text {
        let p = c.param(text.clone());
        c.sql
            .push(format!("m.search @@ websearch_to_tsquery('simple', {p})"));
    }
    if let Some(since) = filter.since {
        let p = c.param(since);
        c.sql.push(format!("m.created_at >= {p}"));
    }
    if let Some(until) = filter.until {
        let p = c.param(until);
        c.sql.push(format!("m.created_at < {p}"));
    }
    if let Some(cursor) = after {
        let (t, i) = (c.param(cursor.created_at), c.param(cursor.id));
        c.sql.push(format!("(m.created_at, m.id) < ({t}, {i})"));
    }
    let limit = c.param(i64::try_from(limit).unwrap_or(i64::MAX));

    let mut sql = format!(
        "SELECT {COLUMNS}, lr.id AS reply_id, lr.status AS reply_status, \
         lr.sent_at AS reply_sent_at, lr.updated_at AS reply_updated_at FROM mentions m"
    );
    // The lateral join runs once per row of the page, after the LIMIT.
    sql.push_str(
        " LEFT JOIN LATERAL (SELECT r.id, r.status, r.sent_at, r.updated_at FROM replies r \
         WHERE r.mention_id = m.id ORDER BY r.created_at DESC, r.id DESC LIMIT 1) lr ON true",
    );
    if !c.sql.is_empty() {
        let _ = write!(sql, " WHERE {}", c.sql.join(" AND "));
    }
    let _ = write!(sql, " ORDER BY m.created_at DESC, m.id DESC LIMIT {limit}");

    let rows = conn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            c.values,
        ))
        .await?;
    rows.iter()
        .map(|row| {
            let mention = mentions::Model::from_query_result(row, "")?;
            let reply_id: Option<ReplyId> = row.try_get("", "reply_id")?;
            let latest_reply = match reply_id {
                Some(id) => Some(ReplySummary {
                    id,
                    status: row.try_get("", "reply_status")?,
                    sent_at: row.try_get("", "reply_sent_at")?,
                    updated_at: row.try_get("", "reply_updated_at")?,
                }),
                None => None,
            };
            Ok(ListedMention {
                mention,
                latest_reply,
            })
        })
        .collect()
}

/// The mention with this id.
pub async fn find(
    conn: &impl ConnectionTrait,
    id: MentionId,
) -> Result<Option<mentions::Model>, DbErr> {
    mentions::Entity::find_by_id(id).one(conn).await
}

/// The mention with this id, locked (`FOR UPDATE`) until the transaction ends.
pub async fn find_for_update(
    conn: &impl ConnectionTrait,
    id: MentionId,
) -> Result<Option<mentions::Model>, DbErr> {
    mentions::Entity::find_by_id(id)
        .lock_exclusive()
        .one(conn)
        .await
}

/// Every reply requested for the mention, oldest first.
pub async fn replies(
    conn: &impl ConnectionTrait,
    id: MentionId,
) -> Result<Vec<replies::Model>, DbErr> {
    replies::Entity::find()
        .filter(replies::Column::MentionId.eq(id))
        .order_by_asc(replies::Column::CreatedAt)
        .order_by_asc(replies::Column::Id)
        .all(conn)
        .await
}

/// Most mentions of a thread's context.
pub const THREAD_MAX: u64 = 50;

/// What came before `mention` in its thread, oldest first (at most [`THREAD_MAX`]): the
/// chain of parents of a comment's reply, or the earlier messages of a direct-message
/// conversation.
pub async fn thread(
    conn: &impl ConnectionTrait,
    mention: &mentions::Model,
) -> Result<Vec<mentions::Model>, DbErr> {
    let mut earlier = Vec::new();
    let mut parent = mention.parent_id;
    while let Some(id) = parent
        && (earlier.len() as u64) < THREAD_MAX
    {
        let Some(row) = find(conn, id).await? else {
            break;
        };
        // A parent seen already would loop forever.
        if earlier.iter().any(|m: &mentions::Model| m.id == row.id) {
            break;
        }
        parent = row.parent_id;
        earlier.push(row);
    }
    if mention.mention_type == MentionType::Message
        && let Some(conversation) = &mention.provider_post_ref
    {
        let at = mention.posted_at.unwrap_or(mention.created_at);
        let messages = mentions::Entity::find()
            .filter(mentions::Column::BrandId.eq(mention.brand_id))
            .filter(mentions::Column::Platform.eq(mention.platform))
            .filter(mentions::Column::ProviderPostRef.eq(conversation.as_str()))
            .filter(mentions::Column::MentionType.eq(MentionType::Message))
            .filter(mentions::Column::Id.ne(mention.id))
            .filter(Expr::cust("coalesce(posted_at, created_at)").lt(at))
            .order_by_desc(Expr::cust("coalesce(posted_at, created_at)"))
            .limit(THREAD_MAX - earlier.len() as u64)
            .all(conn)
            .await?;
        earlier.extend(messages);
    }
    earlier.sort_by_key(|m| (m.posted_at.unwrap_or(m.created_at), m.created_at));
    Ok(earlier)
}

/// The triage fields of a mention after a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Triage {
    /// The assigned agent.
    pub assignee_id: Option<UserId>,
    pub state: Option<MentionState>,
    pub disposition: Option<Disposition>,
}

/// Writes `triage` over `current` (read with [`find_for_update`] in the same transaction),
/// bumping `version` and `updated_at`. An assignee that is not a user is a foreign key
/// violation (`mentions_assignee_id_fkey`).
pub async fn update_triage(
    conn: &impl ConnectionTrait,
    current: mentions::Model,
    triage: Triage,
) -> Result<mentions::Model, DbErr> {
    let version = current.version.saturating_add(1);
    let mut row: mentions::ActiveModel = current.into();
    row.assignee_id = Set(triage.assignee_id);
    row.state = Set(triage.state);
    row.disposition = Set(triage.disposition);
    row.version = Set(version);
    row.updated_at = Set(Utc::now().fixed_offset());
    row.update(conn).await
}
