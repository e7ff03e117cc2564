//! `GET /messages/:platform` and `POST /messages/:platform`.

use serde_json::{Value, json};

use crate::support::{assert_update_times, small, spawn, time};

fn received(body: &Value) -> Vec<Value> {
    body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["action"] == "received")
        .cloned()
        .collect()
}

#[tokio::test]
async fn messages_list_received_and_sent_with_the_documented_fields() {
    let t = spawn(small()).await;
    for platform in ["facebook", "instagram", "twitter"] {
        let a = t.api_get(&format!("/messages/{platform}")).await;
        assert_eq!(a.status, 200, "{platform}: {}", a.body);
        assert_eq!(a.body["status"], "success");
        assert_update_times(&a.body, 10);
        let messages = a.body["messages"].as_array().expect("messages");
        assert_eq!(messages.len(), 12, "3 conversations of 4 messages");
        for m in messages {
            for field in ["id", "conversationId", "senderId", "recipientId", "message"] {
                assert!(m[field].is_string(), "{platform} message has {field}: {m}");
            }
            assert_eq!(m["platform"], platform);
            assert!(
                m["created"].as_str().expect("created").contains('.'),
                "milliseconds"
            );
            time(&m["created"]);
            match m["action"].as_str() {
                Some("received") => {
                    assert!(m["senderDetails"]["name"].is_string());
                    assert!(m["senderDetails"]["profileImage"].is_string());
                }
                Some("sent") => assert!(m.get("senderDetails").is_none()),
                other => panic!("unexpected action {other:?}"),
            }
        }
        let conversations: std::collections::BTreeSet<&str> = messages
            .iter()
            .map(|m| m["conversationId"].as_str().expect("id"))
            .collect();
        assert_eq!(conversations.len(), 3);
    }
}

#[tokio::test]
async fn a_sent_message_is_answered_as_documented_and_joins_its_conversation() {
    let t = spawn(small()).await;
    let before = t.api_get("/messages/instagram").await;
    let customer = received(&before.body)[0].clone();
    let recipient = customer["senderId"].as_str().expect("senderId");
    let a = t
        .api_post(
            "/messages/instagram",
            &json!({"recipientId": recipient, "message": "Howdy!",
                    "mediaUrls": ["https://img.example/a.png"]}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["status"], "success");
    assert_eq!(a.body["recipientId"], recipient);
    assert_eq!(a.body["message"], "Howdy!");
    let message_id = a.body["messageId"].as_str().expect("messageId");

    let after = t.api_get("/messages/instagram").await;
    let sent = after.body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["id"] == message_id)
        .expect("sent message listed")
        .clone();
    assert_eq!(sent["action"], "sent");
    assert_eq!(sent["recipientId"], recipient);
    assert_eq!(sent["conversationId"], customer["conversationId"]);
    assert_eq!(sent["attachments"][0]["url"], "https://img.example/a.png");

    let ledger = t.ledger().await;
    let entry = &ledger["messages"][0];
    assert_eq!(entry["platform"], "instagram");
    assert_eq!(entry["recipientId"], recipient);
    assert_eq!(entry["messageId"], message_id);
    assert_eq!(entry["message"], "Howdy!");
    time(&entry["at"]);
}

#[tokio::test]
async fn disabled_messaging_answers_403_with_code_361() {
    let t = spawn(small()).await;
    t.set_faults(json!({"messagingDisabled": ["instagram"]}))
        .await;
    let a = t.api_get("/messages/instagram").await;
    a.assert_error(403);
    assert_eq!(a.body["code"], 361);
    let send = t
        .api_post(
            "/messages/instagram",
            &json!({"recipientId": "1", "message": "hi"}),
        )
        .await;
    send.assert_error(403);
    assert_eq!(send.body["code"], 361);
    assert_eq!(t.api_get("/messages/facebook").await.status, 200);
}

#[tokio::test]
async fn messages_exist_only_for_facebook_instagram_and_twitter() {
    let t = spawn(small()).await;
    t.api_get("/messages/linkedin").await.assert_error(400);
    t.api_get("/messages/myspace").await.assert_error(400);
    t.api_post(
        "/messages/youtube",
        &json!({"recipientId": "1", "message": "hi"}),
    )
    .await
    .assert_error(400);
}

#[tokio::test]
async fn conversation_filters_and_unknown_recipients_behave() {
    let t = spawn(small()).await;
    let ids = t.api_get("/messages/twitter?conversationsOnly=true").await;
    assert_eq!(ids.status, 200);
    let ids = ids.body["conversationIds"].as_array().expect("ids").clone();
    assert_eq!(ids.len(), 3);
    let one = t
        .api_get(&format!(
            "/messages/twitter?conversationId={}",
            ids[0].as_str().expect("id")
        ))
        .await;
    let messages = one.body["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 4);
    assert!(messages.iter().all(|m| m["conversationId"] == ids[0]));
    t.api_post(
        "/messages/twitter",
        &json!({"recipientId": "nobody", "message": "hi"}),
    )
    .await
    .assert_error(400);
    t.api_post("/messages/twitter", &json!({"message": "hi"}))
        .await
        .assert_error(400);
    assert_eq!(t.ledger().await["messages"], json!([]));
}

#[tokio::test]
async fn a_sent_message_is_first_in_its_conversation_which_lists_newest_first_with_its_count() {
    let t = spawn(small()).await;
    let before = t.api_get("/messages/facebook").await;
    let customer = received(&before.body)[0].clone();
    let conversation = customer["conversationId"].as_str().expect("conversationId");
    let sent = t
        .api_post(
            "/messages/facebook",
            &json!({"recipientId": customer["senderId"], "message": "Howdy!"}),
        )
        .await;
    assert_eq!(sent.status, 200, "{}", sent.body);

    let a = t
        .api_get(&format!("/messages/facebook?conversationId={conversation}"))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let messages = a.body["messages"].as_array().expect("messages");
    assert_eq!(messages[0]["action"], "sent", "{}", a.body);
    assert_eq!(messages[0]["id"], sent.body["messageId"]);
    assert_eq!(messages[0]["message"], "Howdy!");
    let created: Vec<_> = messages.iter().map(|m| time(&m["created"])).collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "newest first");
    assert_eq!(a.body["messagesCount"], 5, "4 seeded and the one sent");
    assert_eq!(a.body["messagesCount"], messages.len());

    let newest = t
        .api_get(&format!(
            "/messages/facebook?conversationId={conversation}&limit=2"
        ))
        .await;
    assert_eq!(newest.body["messages"], json!(messages[..2]));
    assert_eq!(
        newest.body["messagesCount"], 5,
        "counts the whole conversation"
    );

    let all = t.api_get("/messages/facebook").await;
    assert!(
        all.body.get("messagesCount").is_none(),
        "only for one conversation"
    );
    let all_created: Vec<_> = all.body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| time(&m["created"]))
        .collect();
    assert!(all_created.windows(2).all(|w| w[0] >= w[1]), "newest first");
    let ids = t
        .api_get(&format!(
            "/messages/facebook?conversationId={conversation}&conversationsOnly=true"
        ))
        .await;
    assert_eq!(ids.body["conversationIds"], json!([conversation]));
}

#[tokio::test]
async fn x_pages_its_messages_newest_first_and_the_cursor_covers_every_one() {
    let t = spawn(simulator::SimConfig {
        messages_per_conversation: 25,
        ..small()
    })
    .await;
    let mut seen: Vec<String> = Vec::new();
    let mut path = "/messages/twitter?limit=10".to_owned();
    let mut pages = 0;
    loop {
        let a = t.api_get(&path).await;
        assert_eq!(a.status, 200, "{}", a.body);
        pages += 1;
        let messages = a.body["messages"].as_array().expect("messages");
        assert!(messages.len() <= 10);
        seen.extend(
            messages
                .iter()
                .map(|m| m["id"].as_str().expect("id").to_owned()),
        );
        match a.body["next"].as_str() {
            Some(next) => path = format!("/messages/twitter?limit=10&next={next}"),
            None => break,
        }
    }
    assert_eq!(pages, 8, "3 conversations of 25 messages, 10 a page");
    let all = t.api_get("/messages/twitter?limit=100").await;
    let ids: Vec<String> = all.body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(seen, ids, "the pages, in order, are the whole list");
    assert!(all.body.get("next").is_none());
    let times: Vec<chrono::DateTime<chrono::Utc>> = all.body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| time(&m["created"]))
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");

    let facebook = t.api_get("/messages/facebook").await;
    assert!(facebook.body.get("next").is_none(), "only X pages");
    assert_eq!(t.api_get("/messages/twitter?next=bogus").await.status, 400);
}
