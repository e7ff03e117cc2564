//! The poll planner in virtual time: a database of posts, a budget of one read every few
//! seconds, comments arriving on a schedule, and the planner choosing what to read.

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use shared::brands::Watch;
use shared::config::PollPolicy;
use shared::db::entities::posts;
use shared::domain::{Platform, PostId};
use shared::ingest::{plan, store};
use shared::provider::{HistoryPost, SocialPostRef};
use shared::testing::TestDb;
use std::collections::HashMap;
use std::time::Duration;

const HORIZON: Duration = Duration::from_secs(3_600);
/// The provider's `nextUpdate`: a post is not read again sooner.
const REFRESH: i64 = 10;

fn settings(policy: PollPolicy) -> plan::PlanSettings {
    plan::PlanSettings {
        policy,
        horizon: HORIZON,
        last_days: 0,
        platforms: vec![Platform::Facebook],
        in_flight: 1,
        push: None,
    }
}

/// Inserts a post created `age` before `now` and read at `now`, and returns its id.
async fn post(db: &TestDb, n: usize, now: DateTime<Utc>, age: TimeDelta) -> PostId {
    let id = PostId::new();
    db.conn()
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO posts (id, platform, ayrshare_post_id, platform_post_id, \
                 post_created_at, next_fetch_at, last_fetched_at) \
             VALUES ($1, 'facebook', $2, $2, $3, $4, $4)",
            [
                id.into(),
                format!("post-{n}").into(),
                (now - age).into(),
                now.into(),
            ],
        ))
        .await
        .expect("insert post");
    id
}

/// Runs ten virtual minutes: one read every `every` seconds, the hot post gets a comment
/// every 10 s, the others none. Returns the reads of the hot post and of the busiest quiet
/// one, and the fewest reads of any quiet post.
async fn reads_in_ten_minutes(policy: PollPolicy) -> (usize, usize, usize) {
    let db = TestDb::new().await;
    let plan = settings(policy);
    let start = Utc::now();
    let hot = post(&db, 0, start, TimeDelta::hours(1)).await;
    let mut quiet = Vec::new();
    for n in 1..=11 {
        quiet.push(post(&db, n, start, TimeDelta::days(2)).await);
    }
    let mut reads: HashMap<PostId, usize> = HashMap::new();
    let mut unread_comments: Vec<DateTime<Utc>> = Vec::new();
    for step in 1..=600 {
        let now = start + TimeDelta::seconds(step);
        if step % 10 == 0 {
            unread_comments.push(now);
        }
        if step % 5 != 0 {
            continue;
        }
        let Some(next) = plan::next_reads(
            db.conn(),
            &plan,
            &Watch::default_brand(&plan.platforms),
            now,
            1,
        )
        .await
        .expect("plan")
        .pop() else {
            continue;
        };
        *reads.entry(next.post_id).or_default() += 1;
        let read: posts::Model = store::find_post(db.conn(), next.post_id)
            .await
            .expect("find")
            .expect("post");
        let found: Vec<Option<DateTime<Utc>>> = if next.post_id == hot {
            unread_comments.drain(..).map(Some).collect()
        } else {
            Vec::new()
        };
        let rate = plan::updated_rate(
            read.comment_rate,
            read.comment_rate_at.map(|t| t.with_timezone(&Utc)),
            now,
            &found,
            HORIZON,
        );
        let next_update = now + TimeDelta::seconds(REFRESH);
        let record = store::FetchRecord {
            at: now,
            next_fetch_at: next_update,
            comment_rate: rate,
            found_new: !found.is_empty(),
            hint: None,
        };
        store::record_fetch(db.conn(), read.id, &record)
            .await
            .expect("record");
    }
    let quiet_reads: Vec<usize> = quiet
        .iter()
        .map(|id| reads.get(id).copied().unwrap_or(0))
        .collect();
    (
        reads.get(&hot).copied().unwrap_or(0),
        quiet_reads.iter().copied().max().unwrap_or(0),
        quiet_reads.iter().copied().min().unwrap_or(0),
    )
}

#[tokio::test]
async fn a_post_with_a_comment_every_10_s_is_read_more_often_than_one_quiet_for_a_day() {
    let (hot, busiest_quiet, least_quiet) = reads_in_ten_minutes(PollPolicy::Adaptive).await;
    assert!(
        hot >= 3 * busiest_quiet,
        "hot post read {hot} times, a quiet one {busiest_quiet}"
    );
    assert!(
        hot <= 600 / REFRESH as usize,
        "never more often than nextUpdate: {hot}"
    );
    assert!(
        least_quiet >= 1,
        "quiet posts are read less often, not never"
    );
}

#[tokio::test]
async fn first_in_first_out_reads_every_post_alike_whatever_its_comments() {
    let (hot, busiest_quiet, least_quiet) = reads_in_ten_minutes(PollPolicy::Fifo).await;
    assert!(
        hot <= busiest_quiet + 1 && least_quiet + 1 >= hot,
        "hot {hot}, quiet {least_quiet}..{busiest_quiet}"
    );
}

#[tokio::test]
async fn a_post_never_read_comes_first_and_a_post_before_its_next_update_not_at_all() {
    let db = TestDb::new().await;
    let plan = settings(PollPolicy::Adaptive);
    let now = Utc::now();
    let known = post(&db, 0, now - TimeDelta::minutes(5), TimeDelta::hours(1)).await;
    let waiting = post(&db, 1, now, TimeDelta::hours(1)).await;
    let record = store::FetchRecord {
        at: now,
        next_fetch_at: now + TimeDelta::minutes(1),
        comment_rate: 1.0,
        found_new: true,
        hint: None,
    };
    store::record_fetch(db.conn(), waiting, &record)
        .await
        .expect("record");
    let fresh = PostId::new();
    db.conn()
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO posts (id, platform, ayrshare_post_id, platform_post_id) \
             VALUES ($1, 'facebook', 'new', 'new')",
            [fresh.into()],
        ))
        .await
        .expect("insert a new post");
    // A moment later, so the new post's default `next_fetch_at` (the database's now) is due.
    let later = now + TimeDelta::seconds(1);
    let order: Vec<(PostId, bool)> = plan::next_reads(
        db.conn(),
        &plan,
        &Watch::default_brand(&plan.platforms),
        later,
        10,
    )
    .await
    .expect("plan")
    .into_iter()
    .map(|r| (r.post_id, r.first_read))
    .collect();
    assert_eq!(order, vec![(fresh, true), (known, false)]);
}

/// A history item of `post-{n}` on facebook whose network counts `comments` comments.
fn history_item(n: usize, comments: u32) -> HistoryPost {
    let id = format!("post-{n}");
    HistoryPost {
        id: id.clone(),
        status: Some("success".to_owned()),
        text: None,
        platforms: vec!["facebook".to_owned()],
        post_ids: vec![SocialPostRef {
            platform: "facebook".to_owned(),
            id: Some(id),
            status: None,
            post_url: None,
        }],
        created: None,
        schedule_date: None,
        comment_count: Some(comments),
        raw: serde_json::json!({}),
    }
}

#[tokio::test]
async fn a_post_whose_history_count_grew_is_read_first_and_one_whose_count_stood_still_last() {
    let db = TestDb::new().await;
    let plan = settings(PollPolicy::Adaptive);
    let now = Utc::now();
    let busy = post(&db, 0, now, TimeDelta::hours(1)).await;
    let counted = post(&db, 1, now, TimeDelta::days(3)).await;
    let uncounted = post(&db, 2, now, TimeDelta::days(3)).await;
    // Read five minutes ago; due since four minutes (the counted post since three, so the
    // FIFO baseline, which orders by due time, puts it last).
    let read = |hint: Option<i32>, rate: f64| store::FetchRecord {
        at: now - TimeDelta::minutes(5),
        next_fetch_at: now - TimeDelta::minutes(if hint.is_some() { 3 } else { 4 }),
        comment_rate: rate,
        found_new: false,
        hint,
    };
    let history = |comments: u32| {
        let db = &db;
        async move {
            store::upsert_posts(
                db.conn(),
                shared::brands::DEFAULT_BRAND,
                Platform::Facebook,
                &[history_item(1, comments)],
            )
            .await
            .expect("history");
        }
    };
    let order = |policy: PollPolicy| {
        let plan = plan::PlanSettings {
            policy,
            ..plan.clone()
        };
        let db = &db;
        async move {
            plan::next_reads(
                db.conn(),
                &plan,
                &Watch::default_brand(&plan.platforms),
                now,
                3,
            )
            .await
            .expect("plan")
            .into_iter()
            .map(|r| (r.post_id, r.hinted))
            .collect::<Vec<_>>()
        }
    };
    history(3).await;
    store::record_fetch(db.conn(), busy, &read(None, 0.01))
        .await
        .expect("record");
    store::record_fetch(db.conn(), counted, &read(Some(3), 0.0))
        .await
        .expect("record");
    store::record_fetch(db.conn(), uncounted, &read(None, 0.0))
        .await
        .expect("record");
    let ids = |o: Vec<(PostId, bool)>| o.into_iter().map(|(id, _)| id).collect::<Vec<_>>();
    assert_eq!(
        ids(order(PollPolicy::Adaptive).await),
        vec![busy, uncounted, counted],
        "a count that stood still is unknown only since the history said so"
    );

    history(4).await;
    assert_eq!(
        order(PollPolicy::Adaptive).await[0],
        (counted, true),
        "one comment more than when its last read began"
    );
    assert_eq!(
        order(PollPolicy::Fifo).await[2].0,
        counted,
        "the FIFO baseline ignores hints"
    );

    store::record_fetch(db.conn(), counted, &read(Some(4), 0.0))
        .await
        .expect("record");
    assert_eq!(
        ids(order(PollPolicy::Adaptive).await),
        vec![busy, uncounted, counted]
    );
}
