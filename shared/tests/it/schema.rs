//! The invariants the schema enforces, and the typed entities reading them back.

use crate::support::{comment, insert_comment, insert_user};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait, QueryFilter, Set,
    Statement, TryInsertResult,
};
use serde_json::json;
use shared::db::entities::{mentions, replies, tasks};
use shared::db::{is_unique_violation, violated_constraint};
use shared::domain::{
    Disposition, MentionState, MentionType, Platform, ReplyId, ReplyStatus, Role, TaskId,
    TaskStatus,
};
use shared::testing::TestDb;

async fn count(db: &impl ConnectionTrait, sql: &str) -> i64 {
    db.query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .expect("count query")
        .expect("one row")
        .try_get_by_index(0)
        .expect("a bigint")
}

#[tokio::test]
async fn the_same_mention_fetched_twice_is_stored_once() {
    let db = TestDb::new().await;
    let first = insert_comment(db.conn(), "fb-c-1").await;

    let again = mentions::Entity::insert(comment("fb-c-1"))
        .on_conflict_do_nothing_on([
            mentions::Column::BrandId,
            mentions::Column::Platform,
            mentions::Column::MentionType,
            mentions::Column::PlatformRef,
        ])
        .exec(db.conn())
        .await
        .expect("ON CONFLICT DO NOTHING succeeds");
    assert!(matches!(again, TryInsertResult::Conflicted), "{again:?}");

    let err = comment("fb-c-1")
        .insert(db.conn())
        .await
        .expect_err("a plain second insert is refused");
    assert!(is_unique_violation(&err), "{err}");
    assert_eq!(
        violated_constraint(&err).as_deref(),
        Some("mentions_brand_platform_type_ref_key")
    );

    assert_eq!(count(db.conn(), "SELECT count(*) FROM mentions").await, 1);
    let stored = mentions::Entity::find_by_id(first.id)
        .one(db.conn())
        .await
        .expect("select")
        .expect("the first insert is kept");
    assert_eq!(stored, first);
    assert_eq!(stored.version, 1);
    assert_eq!(stored.state, None);
}

#[tokio::test]
async fn the_same_platform_ref_with_another_type_or_platform_is_another_mention() {
    let db = TestDb::new().await;
    insert_comment(db.conn(), "shared-ref").await;
    let mut as_message = comment("shared-ref");
    as_message.mention_type = Set(MentionType::Message);
    as_message.insert(db.conn()).await.expect("other type");
    let mut on_instagram = comment("shared-ref");
    on_instagram.platform = Set(Platform::Instagram);
    on_instagram
        .insert(db.conn())
        .await
        .expect("other platform");
    assert_eq!(count(db.conn(), "SELECT count(*) FROM mentions").await, 3);
}

fn reply(mention: &mentions::Model, content: &str) -> replies::ActiveModel {
    replies::ActiveModel {
        id: Set(ReplyId::new()),
        mention_id: Set(mention.id),
        content: Set(content.to_owned()),
        content_hash: Set(format!("hash-of-{content}")),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_second_live_reply_is_refused_until_the_first_has_failed() {
    let db = TestDb::new().await;
    let mention = insert_comment(db.conn(), "fb-c-2").await;
    let first = reply(&mention, "Thanks!")
        .insert(db.conn())
        .await
        .expect("first reply");
    assert_eq!(first.status, ReplyStatus::Pending);
    assert_eq!(first.attempts, 0);

    for status in [
        ReplyStatus::Pending,
        ReplyStatus::Sending,
        ReplyStatus::Unknown,
        ReplyStatus::Sent,
    ] {
        let mut live = replies::ActiveModel::from(first.clone());
        live.status = Set(status);
        live.update(db.conn()).await.expect("status change");
        let err = reply(&mention, "Another answer")
            .insert(db.conn())
            .await
            .expect_err("a second live reply is refused");
        assert!(is_unique_violation(&err), "{status}: {err}");
        assert_eq!(
            violated_constraint(&err).as_deref(),
            Some("replies_one_live_per_mention_key")
        );
    }

    let mut failed = replies::ActiveModel::from(first);
    failed.status = Set(ReplyStatus::Failed);
    failed.update(db.conn()).await.expect("mark failed");
    let second = reply(&mention, "Another answer")
        .insert(db.conn())
        .await
        .expect("a new reply once the first failed");
    assert_eq!(second.mention_id, mention.id);

    let other = insert_comment(db.conn(), "fb-c-3").await;
    reply(&other, "Thanks!")
        .insert(db.conn())
        .await
        .expect("other mentions are not affected");
}

fn task(dedup_key: &str) -> tasks::ActiveModel {
    tasks::ActiveModel {
        id: Set(TaskId::new()),
        kind: Set("ingest".to_owned()),
        platform: Set(Platform::Twitter),
        dedup_key: Set(Some(dedup_key.to_owned())),
        payload: Set(json!({"days": 7})),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_second_active_task_with_the_same_dedup_key_is_refused_until_the_first_is_done() {
    let db = TestDb::new().await;
    let first = task("ingest:twitter")
        .insert(db.conn())
        .await
        .expect("first task");
    assert_eq!(first.status, TaskStatus::Pending);
    assert_eq!(first.max_attempts, 10);

    for status in [
        TaskStatus::Pending,
        TaskStatus::Published,
        TaskStatus::Running,
    ] {
        let mut active = tasks::ActiveModel::from(first.clone());
        active.status = Set(status);
        active.update(db.conn()).await.expect("status change");
        let err = task("ingest:twitter")
            .insert(db.conn())
            .await
            .expect_err("a second active task is refused");
        assert!(is_unique_violation(&err), "{status}: {err}");
        assert_eq!(
            violated_constraint(&err).as_deref(),
            Some("tasks_active_dedup_key")
        );
    }

    let mut done = tasks::ActiveModel::from(first);
    done.status = Set(TaskStatus::Succeeded);
    done.update(db.conn()).await.expect("mark succeeded");
    task("ingest:twitter")
        .insert(db.conn())
        .await
        .expect("a new task once the first succeeded");

    let mut no_key = task("unused");
    no_key.dedup_key = Set(None);
    no_key.clone().insert(db.conn()).await.expect("no key");
    no_key.id = Set(TaskId::new());
    no_key
        .insert(db.conn())
        .await
        .expect("tasks without a key never collide");
    let active = tasks::Entity::find()
        .filter(sea_orm::ColumnTrait::eq(
            &tasks::Column::Status,
            TaskStatus::Pending,
        ))
        .count(db.conn())
        .await
        .expect("count");
    assert_eq!(active, 3);
}

#[tokio::test]
async fn every_domain_value_is_accepted_and_others_are_refused() {
    let db = TestDb::new().await;
    let user = insert_user(db.conn(), "agent@example.com").await;
    for (i, platform) in Platform::ALL.iter().enumerate() {
        for mention_type in MentionType::ALL {
            let mut m = comment(&format!("ref-{i}"));
            m.platform = Set(*platform);
            m.mention_type = Set(*mention_type);
            m.state = Set(MentionState::ALL.get(i % MentionState::ALL.len()).copied());
            m.disposition = Set(Disposition::ALL.get(i % Disposition::ALL.len()).copied());
            m.assignee_id = Set(Some(user.id));
            let stored = m.insert(db.conn()).await.expect("every value is allowed");
            assert_eq!(stored.platform, *platform);
            assert_eq!(stored.mention_type, *mention_type);
        }
    }
    for status in TaskStatus::ALL {
        let mut t = task(&format!("k-{status}"));
        t.status = Set(*status);
        t.insert(db.conn()).await.expect("every task status");
    }
    for role in Role::ALL {
        db.conn()
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO users (email, name, role, password_hash) VALUES ($1, 'x', $2, 'h')",
                [
                    format!("role-{role}@example.com").into(),
                    role.as_str().into(),
                ],
            ))
            .await
            .expect("every role");
    }

    for sql in [
        "INSERT INTO mentions (type, platform, platform_ref) VALUES ('comment', 'myspace', 'x')",
        "INSERT INTO mentions (type, platform, platform_ref) VALUES ('tweet', 'twitter', 'x')",
        "INSERT INTO mentions (type, platform, platform_ref, state) \
         VALUES ('comment', 'twitter', 'x', 'done')",
        "INSERT INTO tasks (kind, platform, status) VALUES ('ingest', 'twitter', 'waiting')",
        "INSERT INTO users (email, name, role, password_hash) VALUES ('a@b.c', 'x', 'root', 'h')",
        "INSERT INTO circuit_breakers (key, state) VALUES ('twitter', 'ajar')",
    ] {
        let err = db
            .conn()
            .execute_unprepared(sql)
            .await
            .expect_err("a value outside the domain is refused");
        assert_eq!(
            shared::db::sqlstate(&err).as_deref(),
            Some("23514"),
            "{sql}: {err}"
        );
    }
}

#[tokio::test]
async fn user_emails_are_unique_whatever_their_case() {
    let db = TestDb::new().await;
    insert_user(db.conn(), "Ann@Example.com").await;
    let err = db
        .conn()
        .execute_unprepared(
            "INSERT INTO users (email, name, role, password_hash) \
             VALUES ('ann@example.COM', 'Ann', 'agent', 'h')",
        )
        .await
        .expect_err("same email, other case");
    assert!(is_unique_violation(&err), "{err}");
}

#[tokio::test]
async fn full_text_search_finds_mentions_by_content_and_author() {
    let db = TestDb::new().await;
    insert_comment(db.conn(), "a").await;
    let mut other = comment("b");
    other.content = Set("Great product".to_owned());
    other.author_name = Set(Some("Bob".to_owned()));
    other.author_handle = Set(None);
    other.insert(db.conn()).await.expect("insert");

    let hits = |query: &'static str| {
        let conn = db.conn();
        async move {
            conn.query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT platform_ref FROM mentions \
                 WHERE search @@ websearch_to_tsquery('simple', $1) ORDER BY platform_ref",
                [query.into()],
            ))
            .await
            .expect("search")
            .iter()
            .map(|row| row.try_get::<String>("", "platform_ref").expect("text"))
            .collect::<Vec<_>>()
        }
    };
    assert_eq!(hits("order").await, ["a"]);
    assert_eq!(hits("jane").await, ["a"]);
    assert_eq!(hits("bob product").await, ["b"]);
    assert!(hits("refund").await.is_empty());
}

#[tokio::test]
async fn each_test_database_is_fresh_and_dropped_afterwards() {
    let first = TestDb::new().await;
    insert_comment(first.conn(), "only-here").await;
    let second = TestDb::new().await;
    assert_ne!(first.name(), second.name());
    assert!(second.url().ends_with(second.name()));
    assert_eq!(
        count(second.conn(), "SELECT count(*) FROM mentions").await,
        0
    );
    assert_eq!(
        count(second.owner_conn(), "SELECT count(*) FROM seaql_migrations").await,
        count(first.owner_conn(), "SELECT count(*) FROM seaql_migrations").await
    );

    let name = first.name().to_owned();
    drop(first);
    let exists = count(
        second.conn(),
        &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"),
    )
    .await;
    assert_eq!(exists, 0, "{name} is dropped with its TestDb");
}
