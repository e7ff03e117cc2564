//! Several brands with the real binaries (`ayrshare-sim`, `api`, `replier`): each brand's
//! breakers are its own, so the provider failing one brand's profile never holds up another
//! brand's work on the same platform.

use crate::end_to_end::Stack;
use crate::support::{
    BRANDS_KEY, add_brand, insert_brand_comments, ledger_replies, profile_comments,
    set_profile_faults, sim_profile_get,
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;
use shared::brands::{DEFAULT_BRAND, provider_key};
use shared::db::entities::{circuit_breakers, replies, tasks};
use shared::domain::{BrandId, Platform, ReplyStatus, TaskStatus};
use std::time::{Duration, Instant};

/// Brand B's Profile-Key: its own world in the simulator.
const BRAND_B_PROFILE: &str = "brand-b-profile";

/// A breaker that opens after three calls of which half failed and stays open for two
/// minutes, far longer than the test waits for brand B.
const BREAKER: [(&str, &str); 6] = [
    ("BRANDS_KEY", BRANDS_KEY),
    ("BREAKER_MIN_CALLS", "3"),
    ("BREAKER_FAILURE_RATE_PERCENT", "50"),
    ("BREAKER_WINDOW_SECONDS", "60"),
    ("BREAKER_OPEN_SECONDS", "120"),
    ("BREAKER_OPEN_MAX_SECONDS", "120"),
];

/// The breaker row of `brand` on `platform`, if it was ever used.
async fn breaker(
    stack: &Stack,
    brand: BrandId,
    platform: Platform,
) -> Option<circuit_breakers::Model> {
    circuit_breakers::Entity::find_by_id(provider_key(brand, platform).breaker_key())
        .one(stack.db.conn())
        .await
        .expect("breaker row")
}

#[tokio::test]
async fn twitter_failing_for_brand_a_opens_its_breaker_only_and_brand_b_replies_on_twitter_within_seconds()
 {
    let stack = Stack::start(&[], &BREAKER).await;
    let brand_b = add_brand(&stack.db, "Brand B", BRAND_B_PROFILE).await;
    // Brand A is the default brand (the primary profile, `""`): every X call of its profile
    // fails; brand B's profile is untouched.
    set_profile_faults(
        &stack.http,
        &stack.sim_base,
        "",
        json!({"rules": [{"endpoint": "*", "platform": "twitter", "fault": "status",
                          "status": 503, "probability": 1.0}]}),
    )
    .await;
    let a_items = profile_comments(&stack.http, &stack.sim_base, "", Platform::Twitter, 4).await;
    let b_items = profile_comments(
        &stack.http,
        &stack.sim_base,
        BRAND_B_PROFILE,
        Platform::Twitter,
        4,
    )
    .await;
    let a_mentions = insert_brand_comments(&stack.db, DEFAULT_BRAND, &a_items).await;
    let b_mentions = insert_brand_comments(&stack.db, brand_b, &b_items).await;
    let _replier = stack.replier();

    // Brand A's replies fail until its X breaker opens.
    for (n, mention) in a_mentions.iter().enumerate() {
        let (status, body) = stack
            .post_reply(mention, &format!("Brand A here ({n})"))
            .await;
        assert_eq!(status, 202, "{body}");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let opened = loop {
        if let Some(row) = breaker(&stack, DEFAULT_BRAND, Platform::Twitter).await
            && row.state == "open"
        {
            break row;
        }
        assert!(
            Instant::now() < deadline,
            "brand A's X breaker not open after 30 s: {:?}",
            breaker(&stack, DEFAULT_BRAND, Platform::Twitter).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // Brand B's replies on X go out while brand A's breaker is open.
    let started = Instant::now();
    for (n, mention) in b_mentions.iter().enumerate() {
        let (status, body) = stack
            .post_reply(mention, &format!("Brand B here ({n})"))
            .await;
        assert_eq!(status, 202, "{body}");
    }
    loop {
        let ledger = sim_profile_get(&stack.http, &stack.sim_base, "ledger", BRAND_B_PROFILE).await;
        let sent = b_mentions
            .iter()
            .enumerate()
            .filter(|(n, m)| {
                ledger_replies(&ledger, &m.platform_ref, &format!("Brand B here ({n})")) == 1
            })
            .count();
        if sent == b_mentions.len() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "brand B: {sent} of {} replies at the provider after 10 s, brand A's breaker: \
             {opened:?}, brand B's: {:?}",
            b_mentions.len(),
            breaker(&stack, brand_b, Platform::Twitter).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let b_took = started.elapsed();

    // Brand B's breaker saw only successes; brand A's is still open, nothing of A's was
    // applied, and A's reply work waits for its breaker instead of failing.
    // (A healthy call is counted later, in memory first: the row may not be there yet.)
    let b_breaker = breaker(&stack, brand_b, Platform::Twitter).await;
    assert!(
        b_breaker.as_ref().is_none_or(|b| b.state == "closed"),
        "{b_breaker:?}"
    );
    let a_breaker = breaker(&stack, DEFAULT_BRAND, Platform::Twitter)
        .await
        .expect("brand A's X breaker");
    assert_eq!(a_breaker.state, "open", "{a_breaker:?}");
    let a_ledger = sim_profile_get(&stack.http, &stack.sim_base, "ledger", "").await;
    assert_eq!(
        a_ledger["replies"].as_array().map(Vec::len),
        Some(0),
        "{a_ledger}"
    );
    let a_replies = replies::Entity::find()
        .filter(replies::Column::MentionId.is_in(a_mentions.iter().map(|m| m.id)))
        .all(stack.db.conn())
        .await
        .expect("replies");
    assert!(
        a_replies
            .iter()
            .all(|r| !matches!(r.status, ReplyStatus::Sent | ReplyStatus::Failed)),
        "{a_replies:?}"
    );
    let a_tasks = tasks::Entity::find()
        .filter(tasks::Column::BrandId.eq(DEFAULT_BRAND))
        .filter(tasks::Column::SubjectId.is_in(a_replies.iter().map(|r| r.id.0)))
        .all(stack.db.conn())
        .await
        .expect("tasks");
    assert!(
        a_tasks
            .iter()
            .all(|t| !matches!(t.status, TaskStatus::Failed | TaskStatus::Dead)),
        "{a_tasks:?}"
    );
    println!("brand B's 4 replies on X reached the provider {b_took:?} after the request");
}
