//! Push ingest end to end, as processes: the api registers its webhook at the simulator, the
//! simulator's signed deliveries reach the inbox at once, copies change nothing, and a
//! dropped delivery still arrives through the safety-net poll, while Facebook is polled only at
//! that rate.

use crate::stack::{Options, Stack};
use serde_json::{Value, json};
use shared::testing::{Process, free_port, set_faults, sim_get, sim_json};
use std::time::{Duration, Instant};

const SECRET: &str = "whsec-end-to-end";
const WAIT: Duration = Duration::from_secs(30);

/// A small world: `posts` posts of two comments (each with a reply) on each of `platforms`,
/// one conversation each, the provider refreshing every `refresh` seconds; then `extra`.
fn world<'a>(
    platforms: &'a str,
    posts: &'a str,
    refresh: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "--platforms",
        platforms,
        "--posts-per-platform",
        posts,
        "--refresh-seconds",
        refresh,
        "--comments-per-post",
        "2",
        "--post-days",
        "3",
        "--conversations-per-platform",
        "1",
    ];
    args.extend(extra);
    args
}

/// Facebook (webhooks) and X (polled), polled every 2 s unless covered.
async fn start(env: &[(&str, &str)]) -> Stack {
    let sim_args = world("facebook,twitter", "2", "1", &[]);
    let mut all = vec![
        ("SOCIAL_PLATFORMS", "facebook,twitter"),
        ("POLL_INTERVAL_SECONDS", "2"),
    ];
    all.extend(env);
    let stack = Stack::start(Options {
        sim_args: &sim_args,
        env: &all,
        webhook_secret: Some(SECRET),
    })
    .await;
    listed(&stack, true).await;
    stack.ingested().await;
    stack
}

/// The simulator's `/hook/webhook`, `method` with `body`.
async fn hooks(stack: &Stack, method: reqwest::Method, body: Option<Value>) -> Value {
    hooks_of(stack, None, method, body).await
}

/// [`hooks`] of the profile whose Profile-Key is `profile` (`None`: the primary profile).
async fn hooks_of(
    stack: &Stack,
    profile: Option<&str>,
    method: reqwest::Method,
    body: Option<Value>,
) -> Value {
    let url = format!("{}/api/hook/webhook", stack.sim_base);
    let mut request = stack.http.request(method, url).bearer_auth("sim-key");
    if let Some(profile) = profile {
        request = request.header("Profile-Key", profile);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    sim_json(request).await
}

/// Waits until the simulator lists our receiver for both actions (`true`) or for neither.
async fn listed(stack: &Stack, registered: bool) {
    let url = format!("{}/v1/webhooks/ayrshare", stack.api_base);
    let deadline = Instant::now() + WAIT;
    loop {
        let listed = hooks(stack, reqwest::Method::GET, None).await;
        let ours = |action: &str| listed[action] == url.as_str();
        if ours("comments") == registered && ours("messages") == registered {
            return;
        }
        assert!(Instant::now() < deadline, "{listed}\n{}", stack.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads of `platform` the simulator answered (history, comments, messages).
async fn reads(stack: &Stack, platform: &str) -> u64 {
    let stats = sim_get(&stack.http, &stack.sim_base, "stats").await;
    stats["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .filter(|r| r["platform"] == platform && r["method"] == "GET")
        .filter(|r| {
            matches!(
                r["endpoint"].as_str(),
                Some("history" | "comments" | "messages")
            )
        })
        .map(|r| r["count"].as_u64().unwrap_or(0))
        .sum()
}

/// Adds a customer's comment on a Facebook post; its Social Comment ID.
async fn comment(stack: &Stack, text: &str) -> String {
    comment_of(stack, "", text).await
}

/// [`comment`] in the world of the profile whose Profile-Key is `profile` (`""`: the primary).
async fn comment_of(stack: &Stack, profile: &str, text: &str) -> String {
    let query = format!("comments?profile={profile}");
    let world = sim_get(&stack.http, &stack.sim_base, &query).await;
    let post = world["comments"]
        .as_array()
        .expect("comments")
        .iter()
        .find(|c| c["platform"] == "facebook")
        .expect("a facebook comment")["postId"]
        .clone();
    let body = json!({"platform": "facebook", "postId": post, "content": text});
    let request = stack.http.post(format!(
        "{}/_sim/comments?profile={profile}",
        stack.sim_base
    ));
    let added = sim_json(request.json(&body)).await;
    added["commentId"].as_str().expect("comment id").to_owned()
}

/// Waits (bounded by `limit`) until the comment is a mention; how long that took.
async fn stored_within(stack: &Stack, comment_id: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    let sql = format!(
        "SELECT count(*) FROM mentions WHERE platform = 'facebook' AND platform_ref = '{comment_id}'"
    );
    loop {
        if stack.scalar(&sql).await == 1 {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{comment_id} not in the inbox after {limit:?}\n{}",
            stack.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn deliveries(stack: &Stack) -> Vec<Value> {
    sim_get(&stack.http, &stack.sim_base, "webhooks").await["deliveries"]
        .as_array()
        .expect("deliveries")
        .clone()
}

#[tokio::test]
async fn a_facebook_comment_reaches_the_inbox_within_2_s_by_webhook_while_facebook_polling_rests() {
    let stack = start(&[]).await;
    // The first reads of what was there before are done.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (facebook, twitter) = (
        reads(&stack, "facebook").await,
        reads(&stack, "twitter").await,
    );

    let id = comment(&stack, "Is the tent waterproof?").await;
    let took = stored_within(&stack, &id, Duration::from_secs(2)).await;
    let inbox = stack
        .api("GET", "/v1/mentions?platform=facebook&limit=1", None)
        .await;
    assert_eq!(
        inbox["result"][0]["socialMediaPlatformRef"],
        id.as_str(),
        "{inbox}"
    );
    let listed = deliveries(&stack).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["outcome"], "delivered");
    let outcome = stack
        .owner_scalar("SELECT outcome FROM webhook_deliveries")
        .await;
    assert_eq!(outcome, "stored", "taken from the payload, without a read");
    let health = stack.api("GET", "/v1/status/health", None).await;
    let pushed = &health["webhooks"]["profiles"]["default"]["facebook"];
    assert_eq!(pushed["registered"], true, "{health}");
    assert_eq!(pushed["deliveriesToday"], 1, "{health}");
    assert_eq!(pushed["safetyNetPolling"], true, "{health}");
    assert!(pushed["lastDeliveryAt"].is_string(), "{health}");
    assert!(
        health["webhooks"]["profiles"]["default"]["twitter"].is_null(),
        "X has no webhooks: {health}"
    );

    // Three poll intervals: X is read as usual, Facebook not at all (its safety net is an hour).
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        reads(&stack, "facebook").await,
        facebook,
        "no Facebook read after {took:?}"
    );
    assert!(
        reads(&stack, "twitter").await >= twitter + 2,
        "X is still polled"
    );
}

#[tokio::test]
async fn a_delivery_sent_twice_gives_one_mention() {
    let stack = start(&[]).await;
    let fault = json!({"rules": [{"endpoint": "delivery", "platform": "facebook",
        "fault": "duplicate", "count": 1}]});
    set_faults(&stack.http, &stack.sim_base, fault).await;
    let id = comment(&stack, "Said twice").await;
    stored_within(&stack, &id, WAIT).await;
    let deadline = Instant::now() + WAIT;
    while deliveries(&stack).await[0]["attempts"] != 2 {
        assert!(Instant::now() < deadline, "{:?}", deliveries(&stack).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sql = format!("SELECT count(*) FROM mentions WHERE platform_ref = '{id}'");
    assert_eq!(stack.scalar(&sql).await, 1);
    assert_eq!(
        stack
            .scalar("SELECT count(*) FROM webhook_deliveries")
            .await,
        1
    );
}

#[tokio::test]
async fn a_dropped_delivery_still_reaches_the_inbox_through_the_safety_net_poll() {
    let stack = start(&[("WEBHOOK_SAFETY_POLL_SECONDS", "4")]).await;
    let fault = json!({"rules": [{"endpoint": "delivery", "platform": "facebook",
        "fault": "drop"}]});
    set_faults(&stack.http, &stack.sim_base, fault).await;
    let id = comment(&stack, "Nobody told you about me").await;
    stored_within(&stack, &id, WAIT).await;
    assert_eq!(deliveries(&stack).await[0]["outcome"], "dropped");
    assert_eq!(
        stack
            .scalar("SELECT count(*) FROM webhook_deliveries")
            .await,
        0,
        "stored by the poll, not by a delivery"
    );
}

#[tokio::test]
async fn a_webhook_the_provider_lost_is_registered_again_and_facebook_is_read_at_once() {
    let stack = start(&[("WEBHOOK_CHECK_SECONDS", "1")]).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = reads(&stack, "facebook").await;
    hooks(
        &stack,
        reqwest::Method::DELETE,
        Some(json!({"action": "comments"})),
    )
    .await;
    listed(&stack, true).await;
    let deadline = Instant::now() + WAIT;
    while reads(&stack, "facebook").await == before {
        assert!(
            Instant::now() < deadline,
            "no catch-up read\n{}",
            stack.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let missing = stack
        .scalar("SELECT count(*) FROM webhook_registrations WHERE missing_since IS NOT NULL")
        .await;
    assert_eq!(missing, 0, "confirmed again");
}

#[tokio::test]
async fn without_public_base_url_the_registrations_it_made_are_removed() {
    let stack = start(&[]).await;
    let mut env = stack.env.clone();
    env.remove("PUBLIC_BASE_URL");
    env.insert("API_ADDR".into(), format!("127.0.0.1:{}", free_port()));
    let _disabled = Process::spawn("api", &[], &env);
    listed(&stack, false).await;
    let deadline = Instant::now() + WAIT;
    while stack
        .scalar("SELECT count(*) FROM webhook_registrations")
        .await
        > 0
    {
        assert!(
            Instant::now() < deadline,
            "still recorded\n{}",
            stack.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_second_brand_gets_webhooks_at_its_own_url_and_its_comment_reaches_its_inbox_by_them() {
    const BRANDS_KEY: &str = "8f3c1e2a9b7d4c6e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f70";
    const PROFILE: &str = "pk-brand-b";
    let stack = start(&[("BRANDS_KEY", BRANDS_KEY), ("WEBHOOK_CHECK_SECONDS", "1")]).await;
    let key = shared::brands::BrandsKey::from_hex(BRANDS_KEY).expect("key");
    let new = shared::brands::NewBrand {
        name: "Brand B".to_owned(),
        profile_key: Some(PROFILE.to_owned().into()),
        platforms: None,
    };
    let brand = shared::brands::create(stack.db.conn(), Some(&key), &new)
        .await
        .expect("brand B");

    // Brand B's profile lists brand B's URL; the primary profile keeps the default brand's.
    let url = format!(
        "{}/v1/webhooks/ayrshare?brandId={}",
        stack.api_base, brand.id
    );
    let deadline = Instant::now() + WAIT;
    loop {
        let listed = hooks_of(&stack, Some(PROFILE), reqwest::Method::GET, None).await;
        if listed["comments"] == url.as_str() && listed["messages"] == url.as_str() {
            break;
        }
        assert!(Instant::now() < deadline, "{listed}\n{}", stack.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    listed(&stack, true).await;
    let posts = format!(
        "SELECT count(*) FROM posts WHERE brand_id = '{}' AND platform = 'facebook'",
        brand.id
    );
    while stack.scalar(&posts).await == 0 {
        assert!(
            Instant::now() < deadline,
            "brand B's posts\n{}",
            stack.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let id = comment_of(&stack, PROFILE, "Brand B, do you ship abroad?").await;
    let theirs = format!(
        "SELECT count(*) FROM webhook_deliveries WHERE brand_id = '{}'",
        brand.id
    );
    while stack.scalar(&theirs).await == 0 {
        assert!(
            Instant::now() < deadline,
            "no delivery for B\n{}",
            stack.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stored = format!(
        "SELECT count(*) FROM mentions WHERE brand_id = '{}' AND platform_ref = '{id}'",
        brand.id
    );
    assert_eq!(stack.scalar(&stored).await, 1, "{}", stack.logs());
    let everywhere = format!("SELECT count(*) FROM mentions WHERE platform_ref = '{id}'");
    assert_eq!(stack.scalar(&everywhere).await, 1, "brand B's only");
    assert_eq!(
        stack
            .scalar("SELECT count(*) FROM webhook_deliveries")
            .await,
        1,
        "nothing delivered to the default brand"
    );
    let health = stack.api("GET", "/v1/status/health", None).await;
    let pushed = &health["webhooks"]["profiles"][brand.id.to_string()]["facebook"];
    assert_eq!(pushed["registered"], true, "{health}");
    assert_eq!(pushed["deliveriesToday"], 1, "{health}");
    assert_eq!(
        health["webhooks"]["profiles"]["default"]["facebook"]["deliveriesToday"], 0,
        "{health}"
    );
}

/// Facebook and Instagram reads of a simulator, and all its reads.
async fn pushed_reads(stack: &Stack) -> (u64, u64) {
    let mut pushed = 0;
    for platform in ["facebook", "instagram"] {
        pushed += reads(stack, platform).await;
    }
    let mut all = pushed;
    for platform in ["twitter", "linkedin"] {
        all += reads(stack, platform).await;
    }
    (pushed, all)
}

/// Waits until every comment and message of the stack's world from a customer is stored.
async fn caught_up(stack: &Stack, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let comments = sim_get(&stack.http, &stack.sim_base, "comments").await;
        let messages = sim_get(&stack.http, &stack.sim_base, "messages").await;
        let theirs = |list: &Value, key: &str| {
            list[key]
                .as_array()
                .expect("items")
                .iter()
                .filter(|i| i["fromUs"] != true)
                .count() as i64
        };
        let world = theirs(&comments, "comments") + theirs(&messages, "messages");
        let stored = stack.scalar("SELECT count(*) FROM mentions").await;
        if stored >= world {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{stored} of {world} stored\n{}",
            stack.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn over_five_minutes_of_mixed_traffic_webhooks_cut_the_facebook_and_instagram_reads_by_80_percent()
 {
    // The same seeded world and arrivals in both, under the provider's real budget.
    let arrivals = [
        "--rate-limit",
        "300",
        "--comments-per-minute",
        "12",
        "--messages-per-minute",
        "3",
    ];
    let sim_args = world("facebook,instagram,twitter,linkedin", "3", "10", &arrivals);
    let env = [
        ("SOCIAL_PLATFORMS", "facebook,instagram,twitter,linkedin"),
        ("POLL_INTERVAL_SECONDS", "10"),
        ("RATE_BUDGET_REQUESTS", "300"),
    ];
    let options = |webhook_secret| Options {
        sim_args: &sim_args,
        env: &env,
        webhook_secret,
    };
    let (pushed, polled) = tokio::join!(
        Stack::start(options(Some(SECRET))),
        Stack::start(options(None))
    );
    listed(&pushed, true).await;
    tokio::join!(pushed.ingested(), polled.ingested());
    let (push_before, polled_before) = tokio::join!(pushed_reads(&pushed), pushed_reads(&polled));

    tokio::time::sleep(Duration::from_secs(300)).await;

    let (push_after, polled_after) = tokio::join!(pushed_reads(&pushed), pushed_reads(&polled));
    let with_webhooks = push_after.0 - push_before.0;
    let polling_alone = polled_after.0 - polled_before.0;
    eprintln!(
        "Facebook and Instagram reads in 5 minutes: {with_webhooks} with webhooks, \
         {polling_alone} polling alone ({:.0}% fewer); all reads {} vs {}",
        100.0 * (1.0 - with_webhooks as f64 / polling_alone.max(1) as f64),
        push_after.1 - push_before.1,
        polled_after.1 - polled_before.1,
    );
    assert!(
        polling_alone >= 20,
        "polling alone read them {polling_alone} times"
    );
    assert!(
        with_webhooks * 5 <= polling_alone,
        "{with_webhooks} reads with webhooks vs {polling_alone} polling alone"
    );
    // With webhooks nothing is left behind (polling alone runs out of budget at this rate).
    caught_up(&pushed, Duration::from_secs(60)).await;
    let delivered = pushed
        .scalar("SELECT count(*) FROM webhook_deliveries WHERE outcome = 'stored'")
        .await;
    assert!(delivered > 0, "comments came by webhook");
}
