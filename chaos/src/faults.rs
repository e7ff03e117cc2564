//! The provider faults of the run, as fault sets of the simulator (`POST /_sim/faults`).
//!
//! All the time: 2% of requests hang past the 3 s provider timeout, 10% answer 503, 5% 429,
//! 10% are 200 ms slower; 5% of replies and DM requests are applied but their answer is lost;
//! 5% of replies are refused with a definite 400 (so replies end `failed`); new comments and
//! messages stay hidden from reads for 30 s. During the read outage, every comments and
//! messages request of [`OUTAGE_PLATFORM`] answers 503 and half of its replies are applied
//! with the answer lost: their read-backs fail past the undecided limit, so the protocol
//! must give up on them (`undecided`) rather than send them again.

use crate::stack::Endpoints;
use serde_json::{Value, json};

/// The platform whose reads fail during the outage.
pub const OUTAGE_PLATFORM: &str = "twitter";

/// The faults in force for the whole chaos phase.
pub fn chaos() -> Value {
    fault_set(Vec::new())
}

/// [`chaos`] plus the read outage of [`OUTAGE_PLATFORM`].
pub fn read_outage() -> Value {
    fault_set(vec![
        json!({"endpoint": "reply", "platform": OUTAGE_PLATFORM, "fault": "lost_response",
               "probability": 0.5}),
        json!({"endpoint": "comments", "platform": OUTAGE_PLATFORM, "fault": "status",
               "status": 503}),
        json!({"endpoint": "messages", "platform": OUTAGE_PLATFORM, "fault": "status",
               "status": 503}),
    ])
}

/// `first` rules (drawn first: the first terminal fault wins), then the standing ones.
fn fault_set(first: Vec<Value>) -> Value {
    let standing = [
        json!({"endpoint": "*", "fault": "timeout", "ms": 5000, "probability": 0.02}),
        json!({"endpoint": "*", "fault": "status", "status": 503, "probability": 0.10}),
        json!({"endpoint": "*", "fault": "status", "status": 429, "probability": 0.05}),
        json!({"endpoint": "reply", "fault": "lost_response", "probability": 0.05}),
        json!({"endpoint": "messages", "fault": "lost_response", "probability": 0.05}),
        json!({"endpoint": "reply", "fault": "status", "status": 400, "probability": 0.05}),
        json!({"endpoint": "*", "fault": "latency", "ms": 200, "probability": 0.10}),
    ];
    let rules: Vec<Value> = first.into_iter().chain(standing).collect();
    json!({"rules": rules, "cacheDelaySeconds": 30})
}

/// Replaces the simulator's fault set; panics if it is refused (a bug in this file).
pub async fn inject(endpoints: &Endpoints, set: Value) {
    let answer = endpoints
        .http
        .post(format!("{}/_sim/faults", endpoints.sim_base))
        .json(&set)
        .send()
        .await
        .expect("simulator reachable");
    let status = answer.status();
    assert!(
        status.is_success(),
        "fault set refused: {status} {}",
        answer.text().await.unwrap_or_default()
    );
}

/// No faults, no read cache.
pub async fn clear(endpoints: &Endpoints) {
    endpoints
        .http
        .delete(format!("{}/_sim/faults", endpoints.sim_base))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .expect("simulator clears its faults");
}
