//! `GET /user`: the linked accounts are the authors of our replies.

use serde_json::Value;

use crate::support::{author_id, find_comment, small, spawn, time};

#[tokio::test]
async fn user_lists_the_worlds_accounts_with_the_documented_fields() {
    let t = spawn(small()).await;
    let a = t.api_get("/user").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let mut platforms: Vec<&str> = simulator::DEFAULT_PLATFORMS
        .iter()
        .map(|p| p.as_str())
        .collect();
    platforms.sort_unstable();
    assert_eq!(a.body["activeSocialAccounts"], serde_json::json!(platforms));
    let names = a.body["displayNames"].as_array().expect("displayNames");
    assert_eq!(names.len(), platforms.len());
    for (entry, platform) in names.iter().zip(&platforms) {
        assert_eq!(entry["platform"], *platform);
        for field in ["id", "username", "displayName", "profileUrl", "userImage"] {
            assert!(entry[field].is_string(), "{platform} has {field}: {entry}");
        }
        time(&entry["created"]);
        let ours = simulator::our_account(platform.parse().expect("platform"));
        assert_eq!(entry["id"], ours.id);
        assert_eq!(entry["username"], ours.handle);
        assert_eq!(entry["displayName"], ours.name);
    }
    time(&a.body["created"]);
    assert!(a.body["email"].is_string());
    assert_eq!(a.body["title"], "Primary Profile");
    let ref_id = a.body["refId"].as_str().expect("refId");
    assert_eq!(ref_id.len(), 40);
    assert!(ref_id.chars().all(|c| c.is_ascii_hexdigit()));

    let other = t
        .api(reqwest::Method::GET, "/user", None, Some("brand-b"))
        .await;
    assert_eq!(other.status, 200);
    assert_ne!(
        other.body["refId"], a.body["refId"],
        "each profile has its own"
    );
    assert_eq!(other.body["displayNames"], a.body["displayNames"]);
}

#[tokio::test]
async fn each_display_name_id_is_the_author_id_of_our_replies_on_that_platform() {
    let t = spawn(small()).await;
    let user = t.api_get("/user").await;
    let names = user.body["displayNames"].as_array().expect("displayNames");
    for entry in names {
        let platform = entry["platform"].as_str().expect("platform");
        let parent: Value = t
            .comments_on(platform)
            .await
            .into_iter()
            .find(|c| c["parentId"].is_null())
            .expect("a comment to reply to");
        let reply = t
            .reply(
                platform,
                parent["commentId"].as_str().expect("id"),
                "Thanks!",
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let reply_id = reply.body[platform]["commentId"].as_str().expect("id");
        let comments = t
            .api_get(&format!(
                "/comments/{}",
                parent["postId"].as_str().expect("post")
            ))
            .await;
        let ours = find_comment(&comments.body, reply_id).expect("our reply is listed");
        assert_eq!(
            author_id(platform, ours),
            entry["id"].as_str(),
            "{platform}: {ours}"
        );
    }
}
