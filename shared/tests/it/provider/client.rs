//! The typed client against the simulator: every operation in each of its forms, the
//! classification of what comes back, and what gets logged and measured.

use super::support::{
    Logs, ayrshare, ayrshare_at, client, control, default_ayrshare, last_30_days, requests,
    resilience, set_faults, sim_config, simulator, some_comment, start,
};
use serde_json::{Value, json};
use shared::domain::Platform;
use shared::provider::Ayrshare;
use shared::provider::{
    CommentsTarget, HistoryQuery, MessageAction, MessagesQuery, OutgoingMessage, ProviderKey,
    REQUEST_DURATION_METRIC, ReplyTarget,
};
use shared::testing::TestDb;
use simulator::SimConfig;

/// Up to 100 posts of the last month.
const LAST_MONTH: HistoryQuery = last_30_days(Some(100));

#[tokio::test]
async fn history_in_both_forms_lists_the_platforms_posts_with_ids_and_dates() {
    let (sim, db) = start().await;
    let twitter = default_ayrshare(&sim, db.conn(), Platform::Twitter);

    let posts = twitter.history(&LAST_MONTH).await.expect("history");
    assert_eq!(posts.len(), 10, "the simulator's 10 twitter posts");
    for post in &posts {
        assert!(post.social_post_id(Platform::Twitter).is_some(), "{post:?}");
        assert!(post.created.is_some(), "{post:?}");
        assert_eq!(post.platforms, ["twitter"]);
    }

    let native = twitter.platform_history().await.expect("platform history");
    let mut native_ids: Vec<&str> = native.posts.iter().map(|p| p.id.as_str()).collect();
    let mut social_ids: Vec<&str> = posts
        .iter()
        .filter_map(|p| p.social_post_id(Platform::Twitter))
        .collect();
    native_ids.sort_unstable();
    social_ids.sort_unstable();
    assert_eq!(native_ids, social_ids);
    assert!(native.next_update > native.last_updated);
}

#[tokio::test]
async fn comments_by_ayrshare_post_id_and_by_social_post_id_are_the_same_thread() {
    let (sim, db) = start().await;
    let settings = resilience(&sim.api_url(), &[]);
    let facebook = ayrshare(&sim, db.conn(), &settings, Platform::Facebook);

    let posts = facebook.history(&LAST_MONTH).await.expect("history");
    // The newest post has no comments (the simulator's default).
    let post = posts.last().expect("an older post");
    let by_ayrshare = facebook
        .comments(&CommentsTarget::AyrsharePost(post.id.clone()))
        .await
        .expect("comments by Ayrshare Post ID");
    let social_id = post.social_post_id(Platform::Facebook).expect("social id");
    let by_social = facebook
        .comments(&CommentsTarget::SocialPost(social_id.to_owned()))
        .await
        .expect("comments by Social Post ID");
    assert_eq!(by_ayrshare.comments, by_social.comments);
    assert_eq!(by_ayrshare.comments.len(), 5);
    let first = &by_ayrshare.comments[0];
    assert_eq!(first.replies.len(), 1, "nested replies are kept");
    assert!(first.author.name.is_some() && first.author.id.is_some());
    assert!(first.created.is_some());
    assert!(by_ayrshare.next_update.is_some());

    let replies = facebook
        .comments(&CommentsTarget::SocialComment(first.comment_id.clone()))
        .await
        .expect("replies below a comment");
    assert!(
        replies
            .comments
            .iter()
            .any(|c| c.comment_id == first.replies[0].comment_id),
        "{replies:?}"
    );

    let twitter = ayrshare(&sim, db.conn(), &settings, Platform::Twitter);
    let tweet_post = twitter.history(&LAST_MONTH).await.expect("history");
    let thread = twitter
        .comments(&CommentsTarget::AyrsharePost(
            tweet_post.last().expect("older post").id.clone(),
        ))
        .await
        .expect("X comments");
    assert!(
        thread
            .comments
            .iter()
            .any(|c| c.referenced_tweets.iter().any(|r| r.kind == "replied_to")),
        "X lists replies flat, pointing at what they answer"
    );
}

#[tokio::test]
async fn a_post_without_comments_is_a_definite_not_found_and_is_not_retried() {
    let (sim, db) = start().await;
    let facebook = default_ayrshare(&sim, db.conn(), Platform::Facebook);
    let posts = facebook.history(&LAST_MONTH).await.expect("history");
    let newest = posts.first().expect("newest post");

    let err = facebook
        .comments(&CommentsTarget::AyrsharePost(newest.id.clone()))
        .await
        .expect_err("no comments yet");
    assert!(err.is_not_found(), "{err}");
    assert_eq!(err.provider_code(), Some(181));
    assert_eq!(requests(&sim, "comments", None).await, 1);
}

#[tokio::test]
async fn a_reply_by_social_comment_id_is_applied_once_and_confirmed_with_its_ids() {
    let (sim, db) = start().await;
    let instagram = default_ayrshare(&sim, db.conn(), Platform::Instagram);
    let comment_id = some_comment(&sim, "instagram").await;

    let receipt = instagram
        .reply(
            &ReplyTarget::SocialComment(comment_id.clone()),
            "Thanks, we are on it!",
        )
        .await
        .expect("reply");
    assert_eq!(
        receipt.source_comment_id.as_deref(),
        Some(comment_id.as_str())
    );
    assert!(receipt.social_comment_id.is_some() && receipt.comment_id.is_some());

    let ledger = control(&sim, "ledger").await;
    let replies = ledger["replies"].as_array().expect("replies");
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0]["parentId"], comment_id.as_str());
    assert_eq!(replies[0]["content"], "Thanks, we are on it!");
    assert_eq!(
        replies[0]["commentId"].as_str(),
        receipt.social_comment_id.as_deref()
    );
}

#[tokio::test]
async fn direct_messages_are_listed_and_a_message_to_a_customer_is_sent() {
    let (sim, db) = start().await;
    let facebook = default_ayrshare(&sim, db.conn(), Platform::Facebook);

    let page = facebook
        .messages(&MessagesQuery::default())
        .await
        .expect("messages");
    assert_eq!(page.messages.len(), 12, "3 conversations of 4 messages");
    let received = page
        .messages
        .iter()
        .find(|m| m.action == MessageAction::Received)
        .expect("a customer's message");
    assert!(received.sender_name.is_some() && received.created.is_some());
    assert!(
        page.messages
            .iter()
            .any(|m| m.action == MessageAction::Sent)
    );

    let customer = received.sender_id.clone().expect("sender");
    let sent = facebook
        .send_message(&OutgoingMessage {
            recipient_id: customer.clone(),
            message: "Hello from support".to_owned(),
            media_urls: vec![],
        })
        .await
        .expect("send");
    assert!(sent.message_id.is_some());
    let ledger = control(&sim, "ledger").await;
    assert_eq!(
        ledger["messages"],
        json!([{"platform": "facebook", "recipientId": customer,
                "messageId": sent.message_id, "message": "Hello from support",
                "at": ledger["messages"][0]["at"]}])
    );

    let conversation = facebook
        .messages(&MessagesQuery {
            conversation_id: received.conversation_id.clone(),
            ..MessagesQuery::default()
        })
        .await
        .expect("one conversation");
    assert!(
        conversation
            .messages
            .iter()
            .all(|m| m.conversation_id == received.conversation_id)
    );
}

#[tokio::test]
async fn rejections_are_final_and_never_trip_the_breaker() {
    let (sim, db) = start().await;
    // The breaker would open after 2 failures out of 2 calls.
    let settings = resilience(&sim.api_url(), &[("BREAKER_MIN_CALLS", "2")]);
    set_faults(&sim, json!({"messagingDisabled": ["instagram"]})).await;
    let instagram = ayrshare(&sim, db.conn(), &settings, Platform::Instagram);
    for _ in 0..5 {
        let err = instagram
            .messages(&MessagesQuery::default())
            .await
            .expect_err("messaging disabled");
        assert!(
            err.is_definite_rejection() && err.is_messaging_disabled(),
            "{err}"
        );
    }
    let twitter = ayrshare(&sim, db.conn(), &settings, Platform::Twitter);
    for _ in 0..5 {
        let err = twitter
            .send_message(&OutgoingMessage {
                recipient_id: "nobody".to_owned(),
                message: "hi".to_owned(),
                media_urls: vec![],
            })
            .await
            .expect_err("unknown recipient");
        assert_eq!((err.status(), err.provider_code()), (Some(400), Some(184)));
        assert!(err.is_definite_rejection());
    }
    assert_eq!(
        requests(&sim, "messages", Some(403)).await,
        5,
        "each tried once"
    );
    assert_eq!(
        requests(&sim, "messages", Some(400)).await,
        5,
        "each tried once"
    );
    for key in ["instagram", "twitter"] {
        assert_eq!(
            super::support::breaker_state(db.conn(), key).await,
            "closed"
        );
    }
    instagram
        .history(&LAST_MONTH)
        .await
        .expect("the platform still answers");
}

#[tokio::test]
async fn the_api_key_and_profile_key_never_reach_logs_errors_or_debug_output() {
    const API_KEY: &str = "sk-live-SECRET-API-KEY-1234";
    const PROFILE_KEY: &str = "pk-SECRET-PROFILE-KEY-9876";
    const WRONG_KEY: &str = "sk-WRONG-SECRET-KEY-5555";
    let sim = simulator(SimConfig {
        api_key: API_KEY.to_owned(),
        ..sim_config()
    })
    .await;
    let db = TestDb::new().await;
    let settings = resilience(&sim.api_url(), &[]);
    let (logs, _guard) = Logs::capture();
    let secret_client = client(&sim.api_url(), API_KEY, Some(PROFILE_KEY), 2000);
    let twitter = Ayrshare::new(
        ProviderKey::platform(Platform::Twitter),
        secret_client.clone(),
        db.conn().clone(),
        &settings,
        "provider-test",
    );
    twitter.history(&LAST_MONTH).await.expect("history");
    let fault = super::support::status_fault("history", 503, 1);
    super::support::set_profile_faults(&sim, PROFILE_KEY, fault).await;
    twitter
        .history(&LAST_MONTH)
        .await
        .expect("history after a retry");
    let wrong = ayrshare_at(
        &sim.api_url(),
        WRONG_KEY,
        db.conn(),
        &settings,
        Platform::Twitter,
    );
    let unauthorized = wrong.history(&LAST_MONTH).await.expect_err("wrong key");
    assert_eq!(unauthorized.status(), Some(401));

    let attempts = logs.events("provider request");
    assert!(attempts.len() >= 2, "{}", logs.text());
    for event in &attempts {
        for field in ["platform", "endpoint", "status", "duration_ms", "attempt"] {
            assert!(event.get(field).is_some(), "{field} missing in {event}");
        }
    }
    assert_eq!(logs.events("provider request failed")[0]["status"], "503");
    let everything = format!(
        "{}\n{unauthorized}\n{unauthorized:?}\n{secret_client:?}\n{twitter:?}",
        logs.text()
    );
    for secret in [API_KEY, PROFILE_KEY, WRONG_KEY, "SECRET"] {
        assert!(
            !everything.contains(secret),
            "{secret} leaked:\n{everything}"
        );
    }
}

#[tokio::test]
async fn every_request_records_its_duration_by_platform_endpoint_and_status() {
    let handle = shared::telemetry::metrics_handle();
    let (sim, db) = start().await;
    let youtube = default_ayrshare(&sim, db.conn(), Platform::Youtube);
    set_faults(&sim, super::support::status_fault("history", 500, 1)).await;
    youtube.history(&LAST_MONTH).await.expect("history");

    let rendered = handle.render();
    let lines: Vec<&str> = rendered
        .lines()
        .filter(|l| l.starts_with(REQUEST_DURATION_METRIC) && l.contains("platform=\"youtube\""))
        .collect();
    let count = |status: &str| -> Value {
        lines
            .iter()
            .find(|l| {
                l.starts_with(&format!("{REQUEST_DURATION_METRIC}_count"))
                    && l.contains(&format!("status=\"{status}\""))
            })
            .and_then(|l| l.rsplit(' ').next())
            .map_or(Value::Null, |n| json!(n))
    };
    assert_eq!(count("500"), json!("1"), "{rendered}");
    assert_eq!(count("200"), json!("1"), "{rendered}");
}
