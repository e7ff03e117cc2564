//! Request rate of the simulator (`cargo bench -p simulator`): starts it in-process without a
//! rate limit, drives each endpoint with concurrent clients for a fixed time and prints
//! requests per second. Tune with `SIM_BENCH_CLIENTS` (default 32) and `SIM_BENCH_SECONDS`
//! (default 3).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};
use simulator::SimConfig;

/// Builds the n-th request of a client.
type MakeRequest = Arc<dyn Fn(&reqwest::Client, u64) -> reqwest::RequestBuilder + Send + Sync>;

struct Target {
    name: &'static str,
    request: MakeRequest,
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let clients = env_or("SIM_BENCH_CLIENTS", 32);
    let seconds = env_or("SIM_BENCH_SECONDS", 3);
    let sim = simulator::spawn(SimConfig {
        rate_limit: 0,
        posts_per_platform: 20,
        comments_per_post: 25,
        ..SimConfig::on_free_port()
    })
    .await?;
    let api = sim.api_url();
    let key = sim.api_key().to_owned();

    let comments: Value = reqwest::get(format!("{}/_sim/comments", sim.base_url()))
        .await?
        .json()
        .await?;
    let comments = comments["comments"]
        .as_array()
        .context("comments list")?
        .clone();
    let pick = |platform: &str| -> Vec<(String, String)> {
        comments
            .iter()
            .filter(|c| c["platform"] == platform && c["parentId"].is_null())
            .map(|c| {
                (
                    c["postId"].as_str().unwrap_or_default().to_owned(),
                    c["commentId"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    };
    let facebook = Arc::new(pick("facebook"));
    anyhow::ensure!(!facebook.is_empty(), "the world has facebook comments");

    let targets = vec![
        Target {
            name: "history",
            request: {
                let (api, key) = (api.clone(), key.clone());
                Arc::new(move |client, _| {
                    client
                        .get(format!("{api}/history?lastDays=7&platforms[0]=twitter"))
                        .bearer_auth(&key)
                })
            },
        },
        Target {
            name: "comments",
            request: {
                let (api, key, posts) = (api.clone(), key.clone(), facebook.clone());
                Arc::new(move |client, n| {
                    let (post, _) = &posts[n as usize % posts.len()];
                    client
                        .get(format!("{api}/comments/{post}"))
                        .bearer_auth(&key)
                })
            },
        },
        Target {
            name: "reply",
            request: {
                let (api, key, comments) = (api.clone(), key.clone(), facebook.clone());
                Arc::new(move |client, n| {
                    let (_, comment) = &comments[n as usize % comments.len()];
                    client
                        .post(format!("{api}/comments/reply/{comment}"))
                        .bearer_auth(&key)
                        .json(&json!({
                            "comment": format!("Thanks! ({n})"),
                            "platforms": ["facebook"],
                            "searchPlatformId": true,
                        }))
                })
            },
        },
    ];

    // Built once: creating a client loads the system's root certificates, which would
    // otherwise dominate a short run.
    let pool: Vec<reqwest::Client> = (0..clients)
        .map(|_| reqwest::Client::builder().build())
        .collect::<Result<_, _>>()?;
    println!("ayrshare-sim request rate: {clients} clients, {seconds} s per endpoint");
    for target in targets {
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let deadline = started + Duration::from_secs(seconds);
        let mut tasks = Vec::new();
        for (c, client) in pool.iter().enumerate() {
            let (ok, failed, request) = (ok.clone(), failed.clone(), target.request.clone());
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                let mut n = c as u64 * 1_000_000;
                while Instant::now() < deadline {
                    n += 1;
                    match request(&client, n).send().await {
                        Ok(response) if response.status().is_success() => {
                            // Read the body: a client pays for it too.
                            let _ = response.bytes().await;
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
        for task in tasks {
            task.await?;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let ok = ok.load(Ordering::Relaxed);
        println!(
            "{:>9}: {:>8.0} req/s  ({ok} ok, {} failed in {elapsed:.1} s)",
            target.name,
            ok as f64 / elapsed,
            failed.load(Ordering::Relaxed),
        );
    }
    sim.shutdown().await;
    Ok(())
}
