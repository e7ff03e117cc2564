//! Reading the audit trail (writing goes through `crate::audit::append`): filtered lists,
//! newest first, continued below a chain position.

use crate::db::entities::audit_log;
use crate::domain::BrandId;
use chrono::{DateTime, FixedOffset};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

/// Which audit rows to read; every field set narrows the result.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Kind of entity, e.g. `mention`.
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    /// Who, e.g. `user:<uuid>` or `system:ingestor`.
    pub actor: Option<String>,
    /// What, e.g. `mention.assigned`.
    pub action: Option<String>,
    /// At or after this time.
    pub since: Option<DateTime<FixedOffset>>,
    /// Only rows about mentions of these brands (`None`: every row).
    pub brands: Option<Vec<BrandId>>,
}

/// Up to `limit` rows matching `filter`, newest first, with ids below `before` when given.
pub async fn list(
    conn: &impl ConnectionTrait,
    filter: &AuditFilter,
    before: Option<i64>,
    limit: u64,
) -> Result<Vec<audit_log::Model>, DbErr> {
    let mut query = audit_log::Entity::find();
    if let Some(entity_type) = &filter.entity_type {
        query = query.filter(audit_log::Column::EntityType.eq(entity_type.as_str()));
    }
    if let Some(entity_id) = &filter.entity_id {
        query = query.filter(audit_log::Column::EntityId.eq(entity_id.as_str()));
    }
    if let Some(actor) = &filter.actor {
        query = query.filter(audit_log::Column::Actor.eq(actor.as_str()));
    }
    if let Some(action) = &filter.action {
        query = query.filter(audit_log::Column::Action.eq(action.as_str()));
    }
    if let Some(since) = filter.since {
        query = query.filter(audit_log::Column::OccurredAt.gte(since));
    }
    if let Some(before) = before {
        query = query.filter(audit_log::Column::Id.lt(before));
    }
    if let Some(list) = crate::brands::id_list(filter.brands.as_deref()) {
        query = query.filter(Expr::cust_with_values(
            "audit_log.entity_type = 'mention' AND EXISTS (SELECT 1 FROM mentions m \
             WHERE m.id = CASE WHEN audit_log.entity_type = 'mention' \
                               THEN audit_log.entity_id::uuid END \
               AND m.brand_id = ANY(string_to_array($1, ',')::uuid[]))",
            [list],
        ));
    }
    query
        .order_by_desc(audit_log::Column::Id)
        .limit(limit)
        .all(conn)
        .await
}
