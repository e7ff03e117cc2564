//! Applying and rolling back the migrations through the library functions.

use crate::all_migrations;
use crate::scratch::Scratch;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

/// Every table column, index, constraint, trigger and function of the schema, one line each.
async fn schema_of(db: &DatabaseConnection) -> Vec<String> {
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            r#"
            SELECT line FROM (
                SELECT format('column %s.%s %s null=%s default=%s generated=%s', table_name,
                    column_name, data_type, is_nullable, column_default, generation_expression)
                    AS line, table_name::text AS tbl
                FROM information_schema.columns WHERE table_schema = 'public'
                UNION ALL
                SELECT 'index ' || indexdef, tablename::text FROM pg_indexes
                WHERE schemaname = 'public'
                UNION ALL
                SELECT format('constraint %s %s %s', conrelid::regclass, conname,
                    pg_get_constraintdef(oid)), conrelid::regclass::text
                FROM pg_constraint WHERE connamespace = 'public'::regnamespace
                UNION ALL
                SELECT format('trigger %s %s', tgrelid::regclass, tgname), tgrelid::regclass::text
                FROM pg_trigger WHERE NOT tgisinternal
                UNION ALL
                SELECT 'function ' || oid::regprocedure, '' FROM pg_proc
                WHERE pronamespace = 'public'::regnamespace
            ) s
            WHERE tbl <> 'seaql_migrations'
            ORDER BY line
            "#,
        ))
        .await
        .expect("read the schema");
    rows.iter()
        .map(|row| row.try_get::<String>("", "line").expect("text"))
        .collect()
}

fn tables(schema: &[String]) -> Vec<String> {
    let mut tables: Vec<String> = schema
        .iter()
        .filter_map(|line| line.strip_prefix("column "))
        .filter_map(|rest| rest.split('.').next())
        .map(str::to_owned)
        .collect();
    tables.dedup();
    tables
}

#[tokio::test]
async fn up_down_and_up_again_on_an_empty_database_leave_the_same_schema() {
    let scratch = Scratch::empty().await;
    let db = scratch.connect().await;

    let applied = migrations::migrate_up(&db).await.expect("up");
    assert_eq!(applied, all_migrations());
    let first = schema_of(&db).await;
    let tables = tables(&first);
    for table in [
        "api_tokens",
        "audit_chain_head",
        "audit_log",
        "circuit_breakers",
        "idempotency_keys",
        "mentions",
        "posts",
        "replies",
        "tasks",
        "users",
        "webhook_deliveries",
        "webhook_registrations",
    ] {
        assert!(tables.iter().any(|t| t == table), "{table} in {tables:?}");
    }
    assert!(
        first
            .iter()
            .any(|l| l.contains("replies_one_live_per_mention_key"))
    );
    assert!(first.iter().any(|l| l.contains("tasks_active_dedup_key")));
    assert!(
        first
            .iter()
            .any(|l| l == "trigger audit_log audit_log_append")
    );

    let rolled_back = migrations::migrate_down(&db, None).await.expect("down");
    let mut newest_first = all_migrations();
    newest_first.reverse();
    assert_eq!(rolled_back, newest_first);
    assert_eq!(
        schema_of(&db).await,
        Vec::<String>::new(),
        "down removes everything"
    );
    assert!(
        migrations::status(&db)
            .await
            .expect("status")
            .iter()
            .all(|m| !m.applied)
    );

    migrations::migrate_up(&db).await.expect("up again");
    assert_eq!(schema_of(&db).await, first);
    assert!(
        migrations::migrate_up(&db)
            .await
            .expect("up once more")
            .is_empty(),
        "nothing left to apply"
    );
    db.close().await.expect("close");
}

#[tokio::test]
async fn down_rolls_back_one_step_at_a_time() {
    let scratch = Scratch::empty().await;
    let db = scratch.connect().await;
    migrations::migrate_up(&db).await.expect("up");
    let rolled_back = migrations::migrate_down(&db, Some(1))
        .await
        .expect("down 1");
    let all = all_migrations();
    assert_eq!(rolled_back.as_slice(), &all[all.len() - 1..]);
    let status = migrations::status(&db).await.expect("status");
    assert_eq!(status.len(), all.len());
    assert!(status[..all.len() - 1].iter().all(|m| m.applied));
    assert!(!status[all.len() - 1].applied);
    db.close().await.expect("close");
}

#[tokio::test]
async fn concurrent_migrate_up_applies_each_migration_once() {
    let scratch = Scratch::empty().await;
    let runs = (0..4).map(|_| {
        let url = scratch.url.clone();
        tokio::spawn(async move {
            let scratch_db = sea_orm_migration::sea_orm::Database::connect(url)
                .await
                .expect("connect");
            let applied = migrations::migrate_up(&scratch_db).await.expect("up");
            scratch_db.close().await.expect("close");
            applied
        })
    });
    let mut applied = Vec::new();
    for run in runs.collect::<Vec<_>>() {
        applied.extend(run.await.expect("task"));
    }
    applied.sort();
    let mut expected = all_migrations();
    expected.sort();
    assert_eq!(
        applied, expected,
        "each migration applied by exactly one caller"
    );
}

#[tokio::test]
async fn fresh_drops_everything_and_applies_every_migration() {
    let scratch = Scratch::empty().await;
    let db = scratch.connect().await;
    migrations::migrate_up(&db).await.expect("up");
    let before = schema_of(&db).await;
    db.execute_unprepared(
        "INSERT INTO users (email, name, role, password_hash) VALUES ('a@b.c', 'A', 'admin', 'h');
         INSERT INTO audit_log (actor, action, entity_type, entity_id) VALUES ('system:t', 'a', 'b', 'c');
         CREATE FUNCTION leftover() RETURNS int LANGUAGE sql AS 'SELECT 1';",
    )
    .await
    .expect("data");

    let applied = migrations::fresh(&db).await.expect("fresh");
    assert_eq!(applied, all_migrations());
    assert_eq!(schema_of(&db).await, before);
    let users = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM users",
        ))
        .await
        .expect("count")
        .expect("row")
        .try_get::<i64>("", "n")
        .expect("bigint");
    assert_eq!(users, 0);
    db.close().await.expect("close");
}

#[tokio::test]
async fn the_app_role_reads_every_table_and_may_only_append_to_the_audit_log() {
    let scratch = Scratch::empty().await;
    let db = scratch.connect().await;
    migrations::migrate_up(&db).await.expect("up");
    // One line per table and privilege the app role holds (or, for tables it cannot read at
    // all, a line saying so): a new table without a GRANT shows up here.
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            r#"
            SELECT c.relname || ' ' || coalesce(string_agg(p.privilege, ',' ORDER BY p.privilege),
                'nothing') AS line
            FROM pg_class c
            LEFT JOIN LATERAL (
                SELECT privilege FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE',
                    'TRUNCATE', 'REFERENCES', 'TRIGGER']) AS privilege
                WHERE has_table_privilege($1, c.oid, privilege)
            ) p ON true
            WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
              AND (c.relname IN ('audit_log', 'audit_chain_head')
                   OR NOT has_table_privilege($1, c.oid, 'SELECT'))
            GROUP BY c.relname
            ORDER BY c.relname
            "#,
            [migrations::APP_ROLE.into()],
        ))
        .await
        .expect("privileges");
    let lines: Vec<String> = rows
        .iter()
        .map(|row| row.try_get::<String>("", "line").expect("text"))
        .collect();
    assert_eq!(
        lines,
        [
            "audit_chain_head SELECT",
            "audit_log INSERT,SELECT",
            "seaql_migrations nothing"
        ],
        "no table but seaql_migrations is unreadable, and the audit tables are append-only"
    );
    let owned = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT (SELECT count(*) FROM pg_class WHERE relowner = r.oid)
                  + (SELECT count(*) FROM pg_proc WHERE proowner = r.oid)
                  + (SELECT count(*) FROM pg_namespace WHERE nspowner = r.oid) AS n,
                    has_database_privilege(r.oid, current_database(), 'CREATE') AS create_db,
                    has_schema_privilege(r.oid, 'public', 'CREATE') AS create_schema,
                    r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolbypassrls AS powers
             FROM pg_roles r WHERE r.rolname = $1",
            [migrations::APP_ROLE.into()],
        ))
        .await
        .expect("ownership")
        .expect("the app role exists");
    assert_eq!(owned.try_get::<i64>("", "n").expect("n"), 0, "owns nothing");
    for flag in ["create_db", "create_schema", "powers"] {
        assert!(!owned.try_get::<bool>("", flag).expect(flag), "{flag}");
    }
    db.close().await.expect("close");
}

#[tokio::test]
async fn an_installation_from_before_brands_keeps_its_rows_as_the_default_brands() {
    let scratch = Scratch::empty().await;
    let db = scratch.connect().await;
    migrations::migrate_up(&db).await.expect("up");
    let rolled_back = migrations::migrate_down(&db, Some(2))
        .await
        .expect("down to the single-profile schema");
    assert_eq!(
        rolled_back,
        [
            "m20261211_000010_failed_reply_tasks",
            "m20261210_000010_brands"
        ]
    );
    db.execute_unprepared(
        "INSERT INTO users (id, email, name, role, password_hash) \
             VALUES ('00000000-0000-0000-0000-0000000000a1', 'ann@example.com', 'Ann', 'agent', 'x'); \
         INSERT INTO posts (platform, ayrshare_post_id, platform_post_id) \
             VALUES ('twitter', 'ayr-1', 'tw-1'); \
         INSERT INTO mentions (type, platform, content, platform_ref) \
             VALUES ('comment', 'twitter', 'Hello', 'c-1'); \
         INSERT INTO tasks (kind, platform, dedup_key) VALUES ('ingest', 'twitter', 'ingest:twitter');",
    )
    .await
    .expect("single-profile rows");
    migrations::migrate_up(&db).await.expect("up again");
    let default = "00000000-0000-0000-0000-000000000001";
    for table in ["posts", "mentions", "tasks"] {
        let row = db
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                format!("SELECT count(*) AS n FROM {table} WHERE brand_id = '{default}'"),
            ))
            .await
            .expect("count")
            .expect("row");
        assert_eq!(row.try_get::<i64>("", "n").expect("n"), 1, "{table}");
    }
    let member = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "SELECT count(*) AS n FROM user_brands \
                 WHERE user_id = '00000000-0000-0000-0000-0000000000a1' AND brand_id = '{default}'"
            ),
        ))
        .await
        .expect("count")
        .expect("row");
    assert_eq!(
        member.try_get::<i64>("", "n").expect("n"),
        1,
        "Ann works for the default brand"
    );
    db.close().await.expect("close");
}
