//! The invariants, checked against what the simulator holds (`/_sim/comments`,
//! `/_sim/messages`, `/_sim/ledger`) and what the database says:
//!
//! - `lost`: customer comments and DMs at the provider that never became a mention;
//! - `dup`: replies that reached the provider more than once (ledger entries with the same
//!   request marker, replies and DMs alike);
//! - `stuck`: tasks created before the settling began that are still not finished
//!   (`pending`, `published`, `running`), and replies `pending`, `sending` or `unknown` with
//!   no active task;
//! - `unmatched`: a reply at the provider whose request has no `sent` reply (one that ended
//!   `undecided` excepted: the protocol gave up knowing, by design, DESIGN §8.4; these are
//!   counted in the report), a `sent` reply the provider does not have, or a provider reply
//!   that no request asked for;
//! - `sent`, `failed` (every `failed` reply, the `undecided` ones included) and `undecided`
//!   (failed with reason `undecided` in the audit log).

use crate::stack::{Endpoints, ProcessSummary};
use crate::workload::{REPLY_MARKER, Summary, str_of};
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

/// Details listed per kind of finding, at most.
const DETAILS: usize = 10;

pub struct Verdict {
    lost: usize,
    dup: usize,
    stuck: usize,
    unmatched: usize,
    sent: usize,
    failed: usize,
    undecided: usize,
    /// Undecided replies that the provider does have.
    undecided_applied: usize,
    /// `reply.failed` audit rows by reason.
    failures: BTreeMap<String, i64>,
    /// Dead tasks by kind.
    dead: BTreeMap<String, i64>,
    /// One line per finding (ids, states, errors), at most [`DETAILS`] per kind.
    details: Vec<String>,
    settled_in: Duration,
    requests_by_status: BTreeMap<String, u64>,
}

impl Verdict {
    /// Whether the invariants hold: nothing lost, duplicated, stuck or unmatched.
    pub fn holds(&self) -> bool {
        self.lost == 0 && self.dup == 0 && self.stuck == 0 && self.unmatched == 0
    }

    /// The readable report, then the one line.
    pub fn report(&self, workload: &Summary, processes: &ProcessSummary) {
        println!("chaos: report");
        println!(
            "  traffic: {} comments and {} DMs arrived ({} refused), reply requests by answer \
             {:?} ({} repeated after a failure)",
            workload.comments,
            workload.messages,
            workload.arrival_errors.len(),
            workload.requests,
            workload.repeated
        );
        for e in workload.arrival_errors.iter().take(DETAILS) {
            println!("    refused arrival: {e}");
        }
        println!(
            "  chaos: {} worker and {} api SIGKILLs, {} processes exited on their own",
            processes.worker_kills,
            processes.api_kills,
            processes.unexpected.len()
        );
        for exit in &processes.unexpected {
            println!("    {exit}");
        }
        println!(
            "  provider requests by status: {:?}",
            self.requests_by_status
        );
        println!(
            "  replies: {} sent, {} failed by reason {:?}; {} undecided replies are at the \
             provider",
            self.sent, self.failed, self.failures, self.undecided_applied
        );
        println!("  dead tasks by kind: {:?}", self.dead);
        println!("  settled in {:.0} s", self.settled_in.as_secs_f64());
        for d in &self.details {
            println!("  {d}");
        }
        println!(
            "lost={} dup={} stuck={} unmatched={} sent={} failed={} undecided={}",
            self.lost, self.dup, self.stuck, self.unmatched, self.sent, self.failed, self.undecided
        );
    }
}

/// Checks every few seconds until the invariants hold or `max` has passed; the last check.
/// Tasks count as stuck only if created before this call.
pub async fn settle(endpoints: &Endpoints, max: Duration) -> Verdict {
    let started = Instant::now();
    let since = loop {
        match rows(endpoints, "SELECT now()::text").await {
            Ok(r) => break text(&r[0], 0),
            Err(e) if started.elapsed() < max => {
                eprintln!("chaos: database not reachable yet: {e}");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => panic!("the run's database is unreachable: {e}"),
        }
    };
    loop {
        match check(endpoints, &since, started.elapsed()).await {
            Ok(v) if v.holds() || started.elapsed() >= max => return v,
            Ok(_) => {}
            Err(e) if started.elapsed() >= max => panic!("cannot check the invariants: {e}"),
            Err(e) => eprintln!("chaos: check failed, again shortly: {e}"),
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
}

async fn check(endpoints: &Endpoints, since: &str, elapsed: Duration) -> Result<Verdict, String> {
    let comments = sim_get(endpoints, "comments").await?;
    let messages = sim_get(endpoints, "messages").await?;
    let ledger = sim_get(endpoints, "ledger").await?;
    let stats = sim_get(endpoints, "stats").await?;
    let mut details = Vec::new();

    let stored: HashSet<(String, bool, String)> = rows(
        endpoints,
        "SELECT platform, type = 'message', platform_ref FROM mentions",
    )
    .await?
    .iter()
    .map(|r| {
        (
            text(r, 0),
            r.try_get_by_index(1).unwrap_or_default(),
            text(r, 2),
        )
    })
    .collect();
    let customer = |list: &Value, key: &str| -> Vec<Value> {
        list[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["fromUs"] == false)
            .cloned()
            .collect()
    };
    let mut lost = 0;
    for (item, is_message, id_field) in customer(&comments, "comments")
        .into_iter()
        .map(|c| (c, false, "commentId"))
        .chain(
            customer(&messages, "messages")
                .into_iter()
                .map(|m| (m, true, "messageId")),
        )
    {
        let key = (
            str_of(&item["platform"]),
            is_message,
            str_of(&item[id_field]),
        );
        if !stored.contains(&key) {
            lost += 1;
            if lost <= DETAILS {
                details.push(format!("lost: {item}"));
            }
        }
    }

    // Replies by their request marker; what the provider applied, by marker.
    let replies = rows(
        endpoints,
        "SELECT id::text, mention_id::text, status, content, coalesce(last_error, '') \
         FROM replies",
    )
    .await?;
    let undecided_ids: HashSet<String> = rows(
        endpoints,
        "SELECT payload->>'replyId' FROM audit_log WHERE action = 'reply.failed' \
         AND payload->>'reason' = 'undecided'",
    )
    .await?
    .iter()
    .map(|r| text(r, 0))
    .collect();
    let mut by_marker: HashMap<String, Vec<&QueryResult>> = HashMap::new();
    for r in &replies {
        if let Some(m) = marker(&text(r, 3)) {
            by_marker.entry(m).or_default().push(r);
        }
    }
    let mut applied: HashMap<String, usize> = HashMap::new();
    let mut unmatched = 0;
    let writes = ledger["replies"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| (r, "content"))
        .chain(
            ledger["messages"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| (m, "message")),
        );
    for (write, field) in writes {
        match marker(&str_of(&write[field])) {
            Some(m) => *applied.entry(m).or_default() += 1,
            None => {
                unmatched += 1;
                details.push(format!(
                    "unmatched: a provider write nobody asked for: {write}"
                ));
            }
        }
    }
    let mut dup = 0;
    let mut undecided_applied = 0;
    for (m, &count) in &applied {
        if count > 1 {
            dup += count - 1;
            if dup <= DETAILS {
                details.push(format!(
                    "dup: {m} reached the provider {count} times; replies {}",
                    describe(by_marker.get(m))
                ));
            }
        }
        let rows = by_marker.get(m).map(Vec::as_slice).unwrap_or_default();
        if rows.iter().any(|r| text(r, 2) == "sent") {
            continue;
        }
        if rows.iter().any(|r| undecided_ids.contains(&text(r, 0))) {
            undecided_applied += 1;
        } else {
            unmatched += 1;
            details.push(format!(
                "unmatched: {m} is at the provider, no sent reply; replies {}",
                describe(by_marker.get(m))
            ));
        }
    }
    for r in replies.iter().filter(|r| text(r, 2) == "sent") {
        let m = marker(&text(r, 3)).unwrap_or_default();
        if !applied.contains_key(&m) {
            unmatched += 1;
            details.push(format!(
                "unmatched: reply {} ({m}) is sent, the provider does not have it",
                text(r, 0)
            ));
        }
    }

    let unfinished = rows(
        endpoints,
        &format!(
            "SELECT id::text, kind, status, coalesce(dedup_key, ''), attempts::text, \
             available_at::text, coalesce(last_error, '') FROM tasks \
             WHERE status IN ('pending', 'published', 'running') \
             AND created_at < '{since}'::timestamptz ORDER BY created_at"
        ),
    )
    .await?;
    let orphans = rows(
        endpoints,
        "SELECT r.id::text, r.status, r.attempts::text, coalesce(r.last_error, '') \
         FROM replies r WHERE r.status IN ('pending', 'sending', 'unknown') \
         AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.dedup_key = 'reply:' || r.id::text \
         AND t.status IN ('pending', 'published', 'running'))",
    )
    .await?;
    for t in unfinished.iter().take(DETAILS) {
        details.push(format!(
            "stuck: task {} {} {} key {} attempts {} available {} error {:?}",
            text(t, 0),
            text(t, 1),
            text(t, 2),
            text(t, 3),
            text(t, 4),
            text(t, 5),
            text(t, 6)
        ));
    }
    for r in orphans.iter().take(DETAILS) {
        details.push(format!(
            "stuck: reply {} {} after {} attempts with no active task, error {:?}",
            text(r, 0),
            text(r, 1),
            text(r, 2),
            text(r, 3)
        ));
    }

    let count_of = |status: &str| replies.iter().filter(|r| text(r, 2) == status).count();
    let grouped = |sql: &'static str| async move {
        rows(endpoints, sql).await.map(|rows| {
            rows.iter()
                .map(|r| (text(r, 0), r.try_get_by_index::<i64>(1).unwrap_or_default()))
                .collect::<BTreeMap<_, _>>()
        })
    };
    let mut requests_by_status = BTreeMap::new();
    for r in stats["requests"].as_array().into_iter().flatten() {
        *requests_by_status
            .entry(r["status"].to_string())
            .or_default() += r["count"].as_u64().unwrap_or_default();
    }
    Ok(Verdict {
        lost,
        dup,
        stuck: unfinished.len() + orphans.len(),
        unmatched,
        sent: count_of("sent"),
        failed: count_of("failed"),
        undecided: undecided_ids.len(),
        undecided_applied,
        failures: grouped(
            "SELECT coalesce(payload->>'reason', '?'), count(*) FROM audit_log \
             WHERE action = 'reply.failed' GROUP BY 1",
        )
        .await?,
        dead: grouped("SELECT kind, count(*) FROM tasks WHERE status = 'dead' GROUP BY 1").await?,
        details,
        settled_in: elapsed,
        requests_by_status,
    })
}

/// `id status (error)` of each reply row.
fn describe(rows: Option<&Vec<&QueryResult>>) -> String {
    let rows = rows.map(Vec::as_slice).unwrap_or_default();
    if rows.is_empty() {
        return "none".to_owned();
    }
    rows.iter()
        .map(|r| {
            format!(
                "{} {} of mention {} ({})",
                text(r, 0),
                text(r, 2),
                text(r, 1),
                text(r, 4)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The request marker in a reply's text (`chaos-r17`).
fn marker(content: &str) -> Option<String> {
    let rest = &content[content.find(REPLY_MARKER)? + REPLY_MARKER.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    (!digits.is_empty()).then(|| format!("{REPLY_MARKER}{digits}"))
}

async fn rows(endpoints: &Endpoints, sql: &str) -> Result<Vec<QueryResult>, String> {
    endpoints
        .db
        .query_all_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .map_err(|e| format!("{sql}: {e}"))
}

async fn sim_get(endpoints: &Endpoints, path: &str) -> Result<Value, String> {
    let answer = endpoints
        .http
        .get(format!("{}/_sim/{path}", endpoints.sim_base))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| format!("GET /_sim/{path}: {e}"))?;
    answer
        .json()
        .await
        .map_err(|e| format!("GET /_sim/{path}: {e}"))
}

fn text(row: &QueryResult, index: usize) -> String {
    row.try_get_by_index::<String>(index).unwrap_or_default()
}
