//! The audit log: append-only in the database, one linear hash chain under concurrency, and
//! `verify` naming the first row that was tampered with.

use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, QueryOrder, Statement, TransactionTrait};
use serde_json::json;
use shared::audit::{
    self, Actor, BreakReason, ChainBreak, Entry, GENESIS_HASH, MAX_PAYLOAD_BYTES, REDACTED,
    TRUNCATED_KEY,
};
use shared::db::entities::audit_log;
use shared::domain::{MentionId, UserId};
use shared::testing::TestDb;

fn entry(n: usize) -> Entry<'static> {
    Entry::new(
        Actor::system("ingestor"),
        "mention.ingested",
        "mention",
        MentionId::new(),
    )
    .with_payload(json!({"n": n, "platform": "facebook"}))
}

async fn append_n(db: &TestDb, n: usize) {
    for i in 0..n {
        audit::append(db.conn(), entry(i)).await.expect("append");
    }
}

#[tokio::test]
async fn appended_rows_carry_actor_entity_and_a_linked_hash() {
    let db = TestDb::new().await;
    let user = UserId::new();
    let mention = MentionId::new();
    let first = audit::append(
        db.conn(),
        Entry::new(Actor::User(user), "mention.assigned", "mention", mention)
            .with_payload(json!({"assigneeId": user})),
    )
    .await
    .expect("append");
    let second = audit::append(db.conn(), entry(2)).await.expect("append");

    assert_eq!(first.id, 1);
    assert_eq!(first.actor, format!("user:{user}"));
    assert_eq!(first.action, "mention.assigned");
    assert_eq!(first.entity_type, "mention");
    assert_eq!(first.entity_id, mention.to_string());
    assert_eq!(first.payload, json!({"assigneeId": user}));
    assert_eq!(first.prev_hash, GENESIS_HASH);
    assert_eq!(first.hash.len(), 64);
    assert_eq!(second.id, 2);
    assert_eq!(second.actor, "system:ingestor");
    assert_eq!(second.prev_hash, first.hash);
}

#[tokio::test]
async fn update_delete_and_truncate_on_the_audit_log_fail_even_for_its_owner() {
    let db = TestDb::new().await;
    append_n(&db, 3).await;
    for sql in [
        "UPDATE audit_log SET payload = '{}' WHERE id = 2",
        "UPDATE audit_log SET hash = hash",
        "DELETE FROM audit_log WHERE id = 3",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
        "DELETE FROM audit_chain_head",
        "TRUNCATE audit_chain_head",
    ] {
        let err = db
            .owner_conn()
            .execute_unprepared(sql)
            .await
            .expect_err("the audit log is append-only");
        assert_eq!(
            shared::db::sqlstate(&err).as_deref(),
            Some(shared::db::APPEND_ONLY_VIOLATION),
            "{sql}: {err}"
        );
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_three_rows_intact(&db).await;
}

/// The three rows appended by the test are all there and the chain verifies.
async fn assert_three_rows_intact(db: &TestDb) {
    let rows = audit_log::Entity::find()
        .all(db.conn())
        .await
        .expect("select");
    assert_eq!(rows.len(), 3);
    assert!(
        audit::verify(db.conn(), None)
            .await
            .expect("verify")
            .is_valid()
    );
}

#[tokio::test]
async fn the_services_role_can_neither_change_the_audit_log_nor_its_triggers_and_functions() {
    let db = TestDb::new().await;
    append_n(&db, 3).await;
    for sql in [
        "UPDATE audit_log SET payload = '{}' WHERE id = 2",
        "DELETE FROM audit_log WHERE id = 3",
        "TRUNCATE audit_log",
        "ALTER TABLE audit_log DISABLE TRIGGER ALL",
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_reject_update_delete",
        "DROP TRIGGER audit_log_append ON audit_log",
        "CREATE OR REPLACE FUNCTION audit_row_hash(prev_hash text, id bigint, \
             occurred_at timestamptz, actor text, action text, entity_type text, \
             entity_id text, payload jsonb) RETURNS text LANGUAGE sql AS $$ SELECT 'x' $$",
        "ALTER FUNCTION audit_log_append() SECURITY INVOKER",
        "UPDATE audit_chain_head SET seq = 1",
        "SELECT * FROM audit_chain_head FOR UPDATE",
        "DROP TABLE audit_log",
        "CREATE FUNCTION sha256(bytea) RETURNS bytea LANGUAGE sql AS $$ SELECT $1 $$",
        "SET session_replication_role = replica",
    ] {
        let err = db
            .conn()
            .execute_unprepared(sql)
            .await
            .expect_err("refused to the services' role");
        assert_eq!(
            shared::db::sqlstate(&err).as_deref(),
            Some("42501"),
            "{sql}: {err}"
        );
    }
    assert_three_rows_intact(&db).await;
}

#[tokio::test]
async fn verify_recomputes_the_triggers_hash_for_any_text_time_and_json() {
    let db = TestDb::new().await;
    // Escapes, control characters, non-ASCII text, jsonb's key order and number forms, and
    // instants from the year 1 to 9999 (the range a row may have).
    db.conn()
        .execute_unprepared(
            r#"INSERT INTO audit_log (occurred_at, actor, action, entity_type, entity_id, payload)
            VALUES
            ('2026-12-06 10:11:12.000001+02', 'system:"quoted" \ back', 'a' || chr(1) || chr(8)
                || chr(9) || chr(10) || chr(12) || chr(13) || chr(31) || chr(127), 'ünïcødé ✓',
                '😀 / </script>', '{"bb": 1.50, "a": [1e2, -0, 0.000, 12345678901234567890],
                "ccc": {"z": null, "y": true, "x": "\u0001\"\\\/"}, "": "é"}'),
            ('0001-01-01 00:00:00+00', 'user:x', 'b', 'c', 'd', '[]'),
            ('9999-12-31 23:59:59.999999+00', 'user:x', 'b', 'c', 'd', '"text"'),
            (DEFAULT, 'user:x', 'b', 'c', 'd', '12.5e-3')"#,
        )
        .await
        .expect("insert");
    let report = audit::verify(db.conn(), None).await.expect("verify");
    assert!(report.is_valid(), "{report:?}");
    assert_eq!(report.rows_checked, 4);

    for at in [
        "infinity",
        "0001-01-01 00:00:00+00 BC",
        "10000-01-01 00:00:00+00",
    ] {
        let err = db
            .conn()
            .execute_unprepared(&format!(
                "INSERT INTO audit_log (occurred_at, actor, action, entity_type, entity_id) \
                 VALUES ('{at}', 'user:x', 'b', 'c', 'd')"
            ))
            .await
            .expect_err("outside the years 1 to 9999");
        assert!(
            err.to_string().contains("audit_log_occurred_at_range"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn a_chain_rewritten_by_its_owner_is_reported_through_an_anchor_taken_before() {
    let db = TestDb::new().await;
    append_n(&db, 6).await;
    let early = audit::head(db.conn()).await.expect("head");
    append_n(&db, 4).await;
    let anchor = audit::head(db.conn()).await.expect("head");
    assert_eq!((early.seq, anchor.seq), (6, 10));
    let report = audit::verify(db.conn(), Some(&early))
        .await
        .expect("verify");
    assert!(
        report.is_valid(),
        "an anchor stays valid as the chain grows: {report:?}"
    );

    db.rewrite_audit_row(4).await;
    let rewritten = audit::verify(db.conn(), None).await.expect("verify");
    assert!(rewritten.is_valid(), "without an anchor it looks intact");
    for (anchor, at) in [(&anchor, 10), (&early, 6)] {
        let report = audit::verify(db.conn(), Some(anchor))
            .await
            .expect("verify");
        assert_eq!(
            report.first_broken,
            Some(ChainBreak {
                id: at,
                reason: BreakReason::AnchorMismatch
            })
        );
    }

    // Cutting the chain back below the anchor is caught too.
    tamper(
        &db,
        "DELETE FROM audit_log WHERE id > 8; \
         UPDATE audit_chain_head SET seq = 8, hash = (SELECT hash FROM audit_log WHERE id = 8)",
    )
    .await;
    let report = audit::verify(db.conn(), Some(&anchor))
        .await
        .expect("verify");
    assert_eq!(
        report.first_broken,
        Some(ChainBreak {
            id: 10,
            reason: BreakReason::AnchorMismatch
        })
    );
}

#[tokio::test]
async fn verify_passes_on_an_empty_log() {
    let db = TestDb::new().await;
    let report = audit::verify(db.conn(), None).await.expect("verify");
    assert_eq!(report.rows_checked, 0);
    assert_eq!(report.head_id, 0);
    assert!(report.is_valid());
}

#[tokio::test]
async fn concurrent_transactions_append_one_valid_chain() {
    let db = TestDb::new().await;
    // 25 transactions appending 2 rows each, all at once, some of them slow to commit.
    let writers = (0..25).map(|t| {
        let conn = db.conn().clone();
        tokio::spawn(async move {
            let txn = conn.begin().await.expect("begin");
            for i in 0..2 {
                audit::append(&txn, entry(t * 2 + i)).await.expect("append");
            }
            if t % 3 == 0 {
                txn.execute_unprepared("SELECT pg_sleep(0.02)")
                    .await
                    .expect("sleep");
            }
            txn.commit().await.expect("commit");
        })
    });
    for writer in writers.collect::<Vec<_>>() {
        writer.await.expect("writer task");
    }

    let report = audit::verify(db.conn(), None).await.expect("verify");
    assert_eq!(report.first_broken, None);
    assert_eq!(report.rows_checked, 50);
    assert_eq!(report.head_id, 50);

    let rows = audit_log::Entity::find()
        .order_by_asc(audit_log::Column::Id)
        .all(db.conn())
        .await
        .expect("select");
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    assert_eq!(ids, (1..=50).collect::<Vec<_>>());
    for pair in rows.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
    }
}

#[tokio::test]
async fn a_rolled_back_append_leaves_no_trace_in_the_chain() {
    let db = TestDb::new().await;
    append_n(&db, 2).await;
    let txn = db.conn().begin().await.expect("begin");
    audit::append(&txn, entry(99)).await.expect("append");
    txn.rollback().await.expect("rollback");
    let next = audit::append(db.conn(), entry(3)).await.expect("append");
    assert_eq!(next.id, 3);
    let report = audit::verify(db.conn(), None).await.expect("verify");
    assert!(report.is_valid(), "{report:?}");
    assert_eq!(report.rows_checked, 3);
}

#[tokio::test]
async fn rows_inserted_with_plain_sql_are_chained_too() {
    let db = TestDb::new().await;
    append_n(&db, 1).await;
    db.conn()
        .execute_unprepared(
            "INSERT INTO audit_log (id, actor, action, entity_type, entity_id, prev_hash, hash) \
             VALUES (42, 'system:psql', 'manual.fix', 'task', 't1', 'forged', 'forged')",
        )
        .await
        .expect("raw insert");
    let rows = audit_log::Entity::find()
        .order_by_asc(audit_log::Column::Id)
        .all(db.conn())
        .await
        .expect("select");
    assert_eq!(
        rows[1].id, 2,
        "the id given is replaced by the chain position"
    );
    assert_eq!(rows[1].prev_hash, rows[0].hash);
    assert!(
        audit::verify(db.conn(), None)
            .await
            .expect("verify")
            .is_valid()
    );
}

async fn tamper(db: &TestDb, sql: &str) {
    // As the schema's owner, disabling the protecting triggers is possible: verify must notice.
    db.owner_conn()
        .execute_unprepared(&format!(
            "ALTER TABLE audit_log DISABLE TRIGGER USER; {sql}; \
             ALTER TABLE audit_log ENABLE TRIGGER USER;"
        ))
        .await
        .expect("tamper with triggers disabled");
}

#[tokio::test]
async fn verify_names_the_row_altered_with_triggers_disabled() {
    let db = TestDb::new().await;
    append_n(&db, 30).await;
    tamper(
        &db,
        r#"UPDATE audit_log SET payload = '{"n": 1000}' WHERE id = 17"#,
    )
    .await;

    let report = audit::verify(db.conn(), None).await.expect("verify");
    assert_eq!(
        report.first_broken,
        Some(ChainBreak {
            id: 17,
            reason: BreakReason::HashMismatch
        })
    );
    assert_eq!(report.rows_checked, 16);
    assert!(!report.is_valid());
    assert_eq!(
        report.first_broken.expect("broken").to_string(),
        "audit row 17: content does not match its hash (altered)"
    );
}

#[tokio::test]
async fn verify_names_a_row_rehashed_to_hide_a_change() {
    let db = TestDb::new().await;
    append_n(&db, 5).await;
    tamper(
        &db,
        "UPDATE audit_log SET actor = 'system:nobody', hash = audit_row_hash(prev_hash, id, \
         occurred_at, 'system:nobody', action, entity_type, entity_id, payload) WHERE id = 3",
    )
    .await;
    let report = audit::verify(db.conn(), None).await.expect("verify");
    assert_eq!(
        report.first_broken,
        Some(ChainBreak {
            id: 4,
            reason: BreakReason::PrevHashMismatch
        })
    );
}

#[tokio::test]
async fn verify_names_rows_deleted_with_triggers_disabled() {
    let db = TestDb::new().await;
    append_n(&db, 8).await;
    tamper(&db, "DELETE FROM audit_log WHERE id = 5").await;
    let report = audit::verify(db.conn(), None).await.expect("verify");
    assert_eq!(
        report.first_broken,
        Some(ChainBreak {
            id: 5,
            reason: BreakReason::Missing
        })
    );

    let db = TestDb::new().await;
    append_n(&db, 8).await;
    tamper(&db, "DELETE FROM audit_log WHERE id >= 7").await;
    let report = audit::verify(db.conn(), None).await.expect("verify");
    assert_eq!(
        report.first_broken,
        Some(ChainBreak {
            id: 7,
            reason: BreakReason::Missing
        })
    );
}

#[tokio::test]
async fn verify_walks_chains_longer_than_one_batch() {
    let db = TestDb::new().await;
    db.conn()
        .execute_unprepared(
            "INSERT INTO audit_log (actor, action, entity_type, entity_id, payload) \
             SELECT 'system:bulk', 'task.dead', 'task', g::text, jsonb_build_object('n', g) \
             FROM generate_series(1, 2500) g",
        )
        .await
        .expect("bulk insert");
    let report = audit::verify(db.conn(), None).await.expect("verify");
    assert!(report.is_valid(), "{report:?}");
    assert_eq!(report.rows_checked, 2500);

    tamper(&db, "UPDATE audit_log SET entity_id = 'x' WHERE id = 2222").await;
    let report = audit::verify(db.conn(), None).await.expect("verify");
    assert_eq!(
        report.first_broken,
        Some(ChainBreak {
            id: 2222,
            reason: BreakReason::HashMismatch
        })
    );
}

#[tokio::test]
async fn stored_payloads_are_redacted_and_bounded() {
    let db = TestDb::new().await;
    let row = audit::append(
        db.conn(),
        Entry::new(Actor::system("replier"), "reply.sent", "reply", "r1").with_payload(json!({
            "content": "x".repeat(100_000),
            "request": {"headers": {"Authorization": "Bearer abc", "Profile-Key": "pk"}},
            "apiKey": "sk-live",
            "password": "hunter2",
            "note": "NUL \u{0} inside",
            "items": (0..10_000).collect::<Vec<_>>(),
        })),
    )
    .await
    .expect("append");
    let stored = audit_log::Entity::find_by_id(row.id)
        .one(db.conn())
        .await
        .expect("select")
        .expect("row");
    let text = stored.payload.to_string();
    assert!(text.len() <= MAX_PAYLOAD_BYTES, "{} bytes", text.len());
    assert_eq!(stored.payload[TRUNCATED_KEY], json!(true));
    assert_eq!(stored.payload["apiKey"], json!(REDACTED));
    assert_eq!(stored.payload["password"], json!(REDACTED));
    assert_eq!(
        stored.payload["request"]["headers"],
        json!({"Authorization": REDACTED, "Profile-Key": REDACTED})
    );
    for secret in ["abc", "pk\"", "sk-live", "hunter2"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    assert!(
        audit::verify(db.conn(), None)
            .await
            .expect("verify")
            .is_valid()
    );
}

#[tokio::test]
async fn the_chain_hash_is_sha256_over_the_documented_serialization() {
    let db = TestDb::new().await;
    let row = audit::append(db.conn(), entry(1)).await.expect("append");
    let canonical: String = db
        .conn()
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT jsonb_build_array(prev_hash, id, to_char(occurred_at AT TIME ZONE 'UTC', \
             'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), actor, action, entity_type, entity_id, \
             payload)::text AS canonical FROM audit_log WHERE id = $1",
            [row.id.into()],
        ))
        .await
        .expect("select")
        .expect("row")
        .try_get("", "canonical")
        .expect("text");
    use sha2::Digest;
    assert_eq!(
        hex::encode(sha2::Sha256::digest(canonical.as_bytes())),
        row.hash
    );
    assert!(canonical.starts_with(&format!("[\"{GENESIS_HASH}\", 1, \"")));
}
