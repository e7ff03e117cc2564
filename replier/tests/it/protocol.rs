//! The reply job in-process against the simulator: sent once whatever the provider does.

use crate::support::{
    Harness, audit_actions, ledger_messages, ledger_replies, mention, reply, request,
};
use sea_orm::ConnectionTrait;
use serde_json::json;
use shared::db::entities::{audit_log, mentions, replies};
use shared::domain::{MentionState, Platform, ReplyId, ReplyStatus};
use shared::outbox::TaskPayload;
use shared::outbox::sweeper::{self, SweeperConfig};
use shared::reply::ReplyTask;
use std::time::Duration;

const DRAIN: Duration = Duration::from_secs(30);

/// Asserts that `id` ended `failed`, its mention `m` is `provider_error` and a `reply.failed`
/// with `reason` is in the mention's audit trail; returns the reply and that audit row.
async fn assert_failed(
    h: &Harness,
    m: &mentions::Model,
    id: ReplyId,
    reason: &str,
) -> (replies::Model, audit_log::Model) {
    let failed = reply(&h.db, id).await;
    assert_eq!(failed.status, ReplyStatus::Failed, "{failed:?}");
    assert_eq!(
        mention(&h.db, m.id).await.state,
        Some(MentionState::ProviderError)
    );
    let audit = audit_actions(&h.db, m.id).await;
    let row = audit
        .into_iter()
        .find(|a| a.action == "reply.failed")
        .expect("reply.failed audited");
    assert_eq!(row.payload["reason"], reason, "{row:?}");
    (failed, row)
}

#[tokio::test]
async fn a_requested_reply_is_sent_once_and_the_mention_is_replied() {
    let h = Harness::new(&[]).await;
    let agent = h.agent().await;
    let m = &h.comment_mentions(Platform::Facebook, 1).await[0];
    let id = request(&h.db, agent, m.id, "Thanks, we are on it!").await;

    h.drain(DRAIN).await;

    let sent = reply(&h.db, id).await;
    assert_eq!(sent.status, ReplyStatus::Sent);
    assert_eq!(sent.attempts, 1);
    assert!(sent.provider_comment_id.is_some());
    assert_eq!(
        mention(&h.db, m.id).await.state,
        Some(MentionState::Replied)
    );
    let ledger = h.sim_get("ledger").await;
    assert_eq!(
        ledger_replies(&ledger, &m.platform_ref, "Thanks, we are on it!"),
        1
    );
    let actions: Vec<String> = audit_actions(&h.db, m.id)
        .await
        .into_iter()
        .map(|a| a.action)
        .collect();
    assert_eq!(
        actions,
        ["reply.requested", "reply.attempt_started", "reply.sent"]
    );
}

#[tokio::test]
async fn lost_responses_on_every_first_attempt_still_send_each_reply_exactly_once() {
    let h = Harness::new(&[]).await;
    let agent = h.agent().await;
    let mut mentions = h.comment_mentions(Platform::Twitter, 4).await;
    mentions.extend(h.comment_mentions(Platform::Instagram, 4).await);
    let n = mentions.len();
    // Exactly the next n reply requests, i.e. every first attempt, are applied and lost.
    h.faults(json!({"rules": [{"endpoint": "reply", "platform": "*",
        "fault": "lost_response", "count": n}]}))
        .await;
    let mut requested = Vec::new();
    for (i, m) in mentions.iter().enumerate() {
        let content = format!("Reply number {i}");
        requested.push((m, request(&h.db, agent, m.id, &content).await, content));
    }

    h.drain(DRAIN).await;

    let ledger = h.sim_get("ledger").await;
    for (m, id, content) in &requested {
        let r = reply(&h.db, *id).await;
        assert_eq!(r.status, ReplyStatus::Sent, "{content}");
        assert_eq!(r.attempts, 1, "found by reading back, not sent again");
        assert_eq!(
            ledger_replies(&ledger, &m.platform_ref, content),
            1,
            "{content}"
        );
    }
    assert_eq!(ledger["replies"].as_array().expect("replies").len(), n);
}

#[tokio::test]
async fn a_read_cache_longer_than_the_first_reconcile_still_sends_exactly_once() {
    // The provider hides new replies for 2 s; the cache window (3 s) covers it.
    let h = Harness::new(&[("REPLY_CACHE_WINDOW_SECONDS", "3")]).await;
    let agent = h.agent().await;
    let mentions = h.comment_mentions(Platform::Youtube, 3).await;
    h.faults(json!({"rules": [{"endpoint": "reply", "platform": "*",
        "fault": "lost_response", "status": 502, "count": mentions.len()}],
        "cacheDelaySeconds": 2}))
        .await;
    let mut requested = Vec::new();
    for (i, m) in mentions.iter().enumerate() {
        let content = format!("Cached reply {i}");
        requested.push((m, request(&h.db, agent, m.id, &content).await, content));
    }

    h.drain(DRAIN).await;

    let ledger = h.sim_get("ledger").await;
    for (m, id, content) in &requested {
        let r = reply(&h.db, *id).await;
        assert_eq!(r.status, ReplyStatus::Sent);
        assert_eq!(r.attempts, 1);
        assert_eq!(ledger_replies(&ledger, &m.platform_ref, content), 1);
        let actions: Vec<String> = audit_actions(&h.db, m.id)
            .await
            .into_iter()
            .map(|a| a.action)
            .collect();
        assert!(
            actions.contains(&"reply.outcome_unknown".to_owned()),
            "{actions:?}"
        );
    }
}

#[tokio::test]
async fn a_definite_rejection_ends_failed_with_the_providers_message_and_allows_a_new_reply() {
    let h = Harness::new(&[]).await;
    let agent = h.agent().await;
    let m = &h.comment_mentions(Platform::Linkedin, 1).await[0];
    h.faults(json!({"rules": [{"endpoint": "reply", "platform": "*",
        "fault": "status", "status": 400, "count": 1}]}))
        .await;
    let id = request(&h.db, agent, m.id, "Rejected text").await;

    h.drain(DRAIN).await;

    let (failed, row) = assert_failed(&h, m, id, "rejected").await;
    let message = failed.last_error.clone().expect("the provider's message");
    assert!(!message.is_empty());
    assert_eq!(row.payload["providerStatus"], 400);
    assert_eq!(row.payload["message"], message.as_str());
    assert_eq!(
        ledger_replies(&h.sim_get("ledger").await, &m.platform_ref, "Rejected text"),
        0
    );

    // After a failure, a new reply is allowed and goes out.
    let retry = request(&h.db, agent, m.id, "Second try").await;
    h.drain(DRAIN).await;
    assert_eq!(reply(&h.db, retry).await.status, ReplyStatus::Sent);
    assert_eq!(
        mention(&h.db, m.id).await.state,
        Some(MentionState::Replied)
    );
}

#[tokio::test]
async fn a_direct_message_reply_goes_to_the_sender_once_and_survives_a_lost_response() {
    let h = Harness::new(&[]).await;
    let agent = h.agent().await;
    let m = &h.message_mentions(Platform::Facebook, 1).await[0];
    let sender = m.author_id.clone().expect("sender");
    h.faults(json!({"rules": [{"endpoint": "messages", "platform": "*",
        "fault": "lost_response", "count": 1}]}))
        .await;
    let id = request(&h.db, agent, m.id, "Your parcel left today.").await;

    h.drain(DRAIN).await;

    let sent = reply(&h.db, id).await;
    assert_eq!(sent.status, ReplyStatus::Sent);
    assert_eq!(sent.attempts, 1);
    let ledger = h.sim_get("ledger").await;
    assert_eq!(
        ledger_messages(&ledger, &sender, "Your parcel left today."),
        1
    );
    assert!(ledger["replies"].as_array().expect("replies").is_empty());
}

#[tokio::test]
async fn a_reply_whose_outcome_cannot_be_decided_in_time_fails_and_is_never_sent_again() {
    // The reply is applied but its answer lost, and the thread cannot be read back.
    let h = Harness::new(&[
        ("REPLY_CACHE_WINDOW_SECONDS", "0"),
        ("REPLY_UNDECIDED_LIMIT_SECONDS", "2"),
    ])
    .await;
    let agent = h.agent().await;
    let m = &h.comment_mentions(Platform::Tiktok, 1).await[0];
    h.faults(json!({"rules": [
        {"endpoint": "reply", "platform": "*", "fault": "lost_response", "count": 1},
        {"endpoint": "comments", "platform": "*", "fault": "status", "status": 503}]}))
        .await;
    let id = request(&h.db, agent, m.id, "Undecidable").await;

    h.drain(DRAIN).await;

    let failed = reply(&h.db, id).await;
    assert_eq!(failed.status, ReplyStatus::Failed);
    assert!(
        failed
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("could not be decided")),
        "{failed:?}"
    );
    assert_eq!(
        ledger_replies(&h.sim_get("ledger").await, &m.platform_ref, "Undecidable"),
        1
    );
    let audit = audit_actions(&h.db, m.id).await;
    assert!(
        audit
            .iter()
            .any(|a| a.action == "reply.failed" && a.payload["reason"] == "undecided")
    );
    let task = shared::outbox::find_active(
        h.db.conn(),
        m.brand_id,
        &ReplyTask { reply_id: id }.dedup_key(m.platform),
    )
    .await
    .expect("query");
    assert!(task.is_none(), "no task left for the reply");
}

#[tokio::test]
async fn a_reply_whose_task_runs_out_of_attempts_ends_failed_and_the_mention_provider_error() {
    let mut h = Harness::new(&[("TASK_MAX_ATTEMPTS", "2")]).await;
    let agent = h.agent().await;
    let m = &h.comment_mentions(Platform::Facebook, 1).await[0];
    // Unreachable: every attempt is known not to have reached the provider, and counts.
    h.sim.stop().await;
    let id = request(&h.db, agent, m.id, "Never gets through").await;

    h.drain(DRAIN).await;

    let (failed, _) = assert_failed(&h, m, id, "dead").await;
    assert!(
        failed
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("unreachable") || e.contains("connect")),
        "the last error is kept: {failed:?}"
    );
    let task = shared::outbox::find_active(
        h.db.conn(),
        m.brand_id,
        &ReplyTask { reply_id: id }.dedup_key(m.platform),
    )
    .await
    .expect("query");
    assert!(task.is_none(), "the task is over");
}

#[tokio::test]
async fn a_reply_for_a_brand_whose_profile_key_cannot_be_opened_ends_failed_with_the_reason() {
    // The replier runs without BRANDS_KEY, so the brand's sealed Profile-Key cannot be opened:
    // no retry mends that, and the reply must not stay pending with its task over.
    let h = Harness::new(&[]).await;
    let agent = h.agent().await;
    let m = &h.comment_mentions(Platform::Facebook, 1).await[0];
    h.db.conn()
        .execute_unprepared(&format!(
            "INSERT INTO brands (id, name, profile_key, profile_key_hash) \
             VALUES ('00000000-0000-0000-0000-0000000000b2', 'Sealed', '\\x0102', '\\x0304');
             UPDATE mentions SET brand_id = '00000000-0000-0000-0000-0000000000b2' \
             WHERE id = '{}'",
            m.id
        ))
        .await
        .expect("a brand with a sealed key");
    let id = request(&h.db, agent, m.id, "Never leaves").await;

    h.drain(DRAIN).await;

    let (failed, _) = assert_failed(&h, m, id, "failed").await;
    assert!(
        failed
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("BRANDS_KEY")),
        "the reason is kept: {failed:?}"
    );
    assert_eq!(failed.attempts, 0, "nothing reached the provider");
    let ledger = h.sim_get("ledger").await;
    assert_eq!(ledger_replies(&ledger, &m.platform_ref, "Never leaves"), 0);
}

#[tokio::test]
async fn a_reply_whose_worker_died_on_the_last_attempt_ends_failed_when_the_sweeper_finds_it() {
    let h = Harness::new(&[]).await;
    let agent = h.agent().await;
    let m = &h.comment_mentions(Platform::Linkedin, 1).await[0];
    let id = request(&h.db, agent, m.id, "Sent by a replier that then vanished").await;
    // The replier took the task on its last attempt, wrote `sending`, and was killed.
    h.db.conn()
        .execute_unprepared(&format!(
            "UPDATE replies SET status = 'sending', attempts = 1 WHERE id = '{id}';
             UPDATE tasks SET status = 'running', attempts = max_attempts,
                    lease_owner = 'replier-gone', lease_until = now() - interval '1 second'
             WHERE subject_id = '{id}'"
        ))
        .await
        .expect("a vanished replier");
    let config = SweeperConfig {
        interval: Duration::from_secs(1),
        published_timeout: Duration::from_secs(60),
        max_attempts: 20,
        process_name: "api".to_owned(),
        idempotency_key_ttl: Duration::from_secs(3_600),
    };
    let report = sweeper::sweep(h.db.conn(), &config, &mut h.broker.link())
        .await
        .expect("sweep");
    assert_eq!(report.dead, 1);

    let (failed, entry) = assert_failed(&h, m, id, "dead").await;
    assert!(
        failed
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("lease of replier-gone expired")),
        "{failed:?}"
    );
    assert_eq!(entry.actor, "system:replier-gone");
    let chain = shared::audit::verify(h.db.conn(), None)
        .await
        .expect("verify");
    assert!(chain.is_valid(), "the audit chain is intact: {chain:?}");
}

#[tokio::test]
async fn a_customer_writing_our_words_under_the_comment_while_our_outcome_is_unknown_is_not_our_reply()
 {
    let h = Harness::new(&[]).await;
    h.learn_our_accounts().await;
    let agent = h.agent().await;
    let m = &h.comment_mentions(Platform::Facebook, 1).await[0];
    // The first attempt hangs past the client's timeout without being applied: unknown.
    h.faults(json!({"rules": [
        {"endpoint": "reply", "platform": "*", "fault": "timeout", "ms": 3000, "count": 1}]}))
        .await;
    let words = "Thanks, it is sorted!";
    let id = request(&h.db, agent, m.id, words).await;
    h.customer_comment(json!({
        "platform": "facebook",
        "postId": m.provider_post_ref,
        "parentId": m.platform_ref,
        "content": words,
    }))
    .await;

    h.drain(DRAIN).await;

    assert_eq!(reply(&h.db, id).await.status, ReplyStatus::Sent);
    assert_eq!(
        ledger_replies(&h.sim_get("ledger").await, &m.platform_ref, words),
        1,
        "sent once, not taken as sent because a customer said the same"
    );
}

#[tokio::test]
async fn three_429s_then_an_applied_but_lost_reply_behind_a_long_cache_is_sent_exactly_once() {
    // The chain waits out each 429's Retry-After (2 s) inside the send, so the request that
    // lands starts about 6 s after the attempt began; its answer is lost, and the provider's
    // read cache hides it for 3 s more. Timed from the attempt's start, the read-back (2 s
    // timeout + 3 s window) would look too early and send again.
    let h = Harness::new(&[
        ("PROVIDER_RETRY_CAP_MS", "3000"),
        ("REPLY_CACHE_WINDOW_SECONDS", "3"),
    ])
    .await;
    let agent = h.agent().await;
    let m = &h.comment_mentions(Platform::Youtube, 1).await[0];
    h.faults(json!({"cacheDelaySeconds": 3, "rules": [
        {"endpoint": "reply", "platform": "*", "fault": "status", "status": 429,
         "retryAfterSeconds": 2, "count": 3},
        {"endpoint": "reply", "platform": "*", "fault": "lost_response", "count": 1}]}))
        .await;
    let words = "Found it, a new one is on its way.";
    let id = request(&h.db, agent, m.id, words).await;

    h.drain(DRAIN).await;

    assert_eq!(reply(&h.db, id).await.status, ReplyStatus::Sent);
    assert_eq!(
        ledger_replies(&h.sim_get("ledger").await, &m.platform_ref, words),
        1,
        "exactly one reply at the provider"
    );
}
