//! Which platforms webhooks cover: a confirmed registration and deliveries that keep coming;
//! polling takes over again when they stop, when the provider reports the webhook missing, or
//! when the registration is no longer confirmed.

use sea_orm::ConnectionTrait;
use shared::brands::DEFAULT_BRAND;
use shared::domain::Platform;
use shared::ingest::push::{self, PushPolling};
use shared::testing::TestDb;
use std::time::Duration;

const POLLING: PushPolling = PushPolling {
    safety: Duration::from_secs(3600),
    quiet: Duration::from_secs(1800),
    check: Duration::from_secs(600),
};

async fn covered(db: &TestDb) -> Vec<Platform> {
    push::covered(db.conn(), DEFAULT_BRAND, Platform::ALL, POLLING)
        .await
        .expect("covered")
}

async fn sql(db: &TestDb, sql: &str) {
    db.conn().execute_unprepared(sql).await.expect(sql);
}

#[tokio::test]
async fn only_a_confirmed_webhook_with_recent_deliveries_covers_facebook_and_instagram() {
    let db = TestDb::new().await;
    assert!(covered(&db).await.is_empty(), "nothing registered");

    push::record_confirmed(
        db.conn(),
        DEFAULT_BRAND,
        "comments",
        "https://x.example/hook",
        "h",
        true,
    )
    .await
    .expect("record");
    assert_eq!(
        covered(&db).await,
        vec![Platform::Facebook, Platform::Instagram],
        "a fresh registration covers the platforms with webhooks, not the others"
    );

    // An hour later without a delivery: polled as usual again.
    sql(
        &db,
        "UPDATE webhook_registrations SET registered_at = now() - interval '1 hour'",
    )
    .await;
    assert!(covered(&db).await.is_empty());
    // A delivery for Instagram brings it back, Instagram only.
    sql(
        &db,
        "INSERT INTO webhook_deliveries (id, action, platform, outcome) \
         VALUES ('h1', 'comments', 'instagram', 'stored')",
    )
    .await;
    assert_eq!(covered(&db).await, vec![Platform::Instagram]);

    // The provider no longer lists it: polled at once.
    push::record_missing(db.conn(), DEFAULT_BRAND, "comments")
        .await
        .expect("missing");
    assert!(covered(&db).await.is_empty());
    push::record_confirmed(
        db.conn(),
        DEFAULT_BRAND,
        "comments",
        "https://x.example/hook",
        "h",
        false,
    )
    .await
    .expect("confirmed again");
    assert_eq!(covered(&db).await, vec![Platform::Instagram]);

    // Not confirmed for three checks (the api cannot reach the provider): polled again.
    sql(
        &db,
        "UPDATE webhook_registrations SET confirmed_at = now() - interval '31 minutes'",
    )
    .await;
    assert!(covered(&db).await.is_empty());
}
