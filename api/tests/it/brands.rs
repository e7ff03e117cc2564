//! Several brands: an agent sees and acts on the mentions of their brands only; for anything
//! else the answer is 404, as if it did not exist. Admins see every brand.

use crate::app::{MentionSeed, SignedIn, TestApp, assert_problem};
use crate::events::Events;
use reqwest::Method;
use serde_json::{Value, json};
use shared::db::entities::mentions;
use shared::domain::Role;

const ACME: &str = "00000000-0000-0000-0000-0000000000aa";

fn ids(page: &Value) -> Vec<String> {
    page["result"]
        .as_array()
        .expect("result")
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_owned())
        .collect()
}

async fn status_of(app: &TestApp, who: &SignedIn, method: Method, path: &str, body: Value) -> u16 {
    let mut request = app.request(method.clone(), path, Some(&who.token));
    if method != Method::GET {
        request = request.json(&body);
    }
    app.send(request).await.status().as_u16()
}

/// The default brand and Acme, a mention of each, Ann (an agent of the default brand), Bob (an
/// agent of Acme) and an admin.
struct TwoBrands {
    app: TestApp,
    ours: mentions::Model,
    theirs: mentions::Model,
    ann: SignedIn,
    bob: SignedIn,
    admin: SignedIn,
}

impl TwoBrands {
    async fn start() -> TwoBrands {
        let app = TestApp::spawn().await;
        app.sql(&format!(
            "INSERT INTO brands (id, name, profile_key, profile_key_hash) \
             VALUES ('{ACME}', 'Acme', '\\x01', '\\x02')"
        ))
        .await;
        let ours = MentionSeed::comment("for the default brand", 2)
            .insert(&app)
            .await;
        let theirs = MentionSeed::comment("for acme", 1).insert(&app).await;
        app.sql(&format!(
            "UPDATE mentions SET brand_id = '{ACME}' WHERE id = '{}'",
            theirs.id
        ))
        .await;
        // A new user works for the default brand; Bob is moved to Acme.
        let ann = app.user(Role::Agent, "ann@example.com").await;
        let bob = app.user(Role::Agent, "bob@example.com").await;
        app.sql(&format!(
            "DELETE FROM user_brands WHERE user_id = '{0}'; \
             INSERT INTO user_brands (user_id, brand_id) VALUES ('{0}', '{ACME}')",
            bob.user.id
        ))
        .await;
        let admin = app.user(Role::Admin, "root@example.com").await;
        TwoBrands {
            app,
            ours,
            theirs,
            ann,
            bob,
            admin,
        }
    }
}

#[tokio::test]
async fn an_agent_sees_and_acts_on_the_mentions_of_their_brands_only() {
    let TwoBrands {
        app,
        ours,
        theirs,
        ann,
        bob,
        admin,
    } = TwoBrands::start().await;

    let me = app.get_json("/v1/me", &bob.token).await;
    assert_eq!(me["brandIds"], json!([ACME]));
    let default = shared::brands::DEFAULT_BRAND.to_string();
    for (who, own, brand, other) in [
        (&ann, &ours, default.as_str(), &theirs),
        (&bob, &theirs, ACME, &ours),
    ] {
        let page = app.get_json("/v1/mentions", &who.token).await;
        assert_eq!(ids(&page), vec![own.id.to_string()], "{page}");
        let mine = app
            .get_json(&format!("/v1/mentions/{}", own.id), &who.token)
            .await;
        assert_eq!(mine["brandId"], brand, "{mine}");
        let other_path = format!("/v1/mentions/{}", other.id);
        let cases = [
            (Method::GET, other_path.clone(), json!(null)),
            (Method::GET, format!("{other_path}/audit"), json!(null)),
            (
                Method::PUT,
                other_path.clone(),
                json!({"userId": who.user.id}),
            ),
            (
                Method::POST,
                format!("{other_path}/reply"),
                json!({"content": "Hi"}),
            ),
            (
                Method::POST,
                format!("{other_path}/presence"),
                json!({"activity": "viewing"}),
            ),
        ];
        for (method, path, body) in cases {
            assert_eq!(
                status_of(&app, who, method.clone(), &path, body).await,
                404,
                "{method} {path} by {}",
                who.user.email
            );
        }
        let response = app
            .send(app.request(Method::GET, &other_path, Some(&who.token)))
            .await;
        assert_problem(response, 404, "not_found").await;
    }

    // Ann assigns herself; Bob's audit trail does not show it, the admin's does.
    assert_eq!(
        status_of(
            &app,
            &ann,
            Method::PUT,
            &format!("/v1/mentions/{}", ours.id),
            json!({"userId": ann.user.id})
        )
        .await,
        200
    );
    let about = |page: &Value, id: String| {
        page["result"]
            .as_array()
            .expect("result")
            .iter()
            .any(|row| row["entityId"] == json!(id))
    };
    let bobs = app.get_json("/v1/audit", &bob.token).await;
    assert!(!about(&bobs, ours.id.to_string()), "{bobs}");
    let admins = app.get_json("/v1/audit", &admin.token).await;
    assert!(about(&admins, ours.id.to_string()), "{admins}");

    // A mention of Acme cannot be assigned to Ann, who does not work for Acme.
    let response = app
        .send(
            app.request(
                Method::PUT,
                &format!("/v1/mentions/{}", theirs.id),
                Some(&admin.token),
            )
            .json(&json!({"userId": ann.user.id})),
        )
        .await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["field"], "userId", "{problem}");
    // The users Acme's mentions can go to: Bob and the admin.
    let offered = app
        .get_json(&format!("/v1/users?brandId={ACME}"), &admin.token)
        .await;
    let mut names: Vec<&str> = offered
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["email"].as_str().expect("email"))
        .collect();
    names.sort_unstable();
    assert_eq!(names, vec!["bob@example.com", "root@example.com"]);

    // Bob, an agent of Acme, sees Acme's users and the admins, not the default brand's agents.
    let bobs_list = app.get_json("/v1/users", &bob.token).await;
    let mut seen: Vec<&str> = bobs_list
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["email"].as_str().expect("email"))
        .collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        vec!["bob@example.com", "root@example.com"],
        "{bobs_list}"
    );
    let everyone = app.get_json("/v1/users", &admin.token).await;
    assert_eq!(everyone.as_array().expect("users").len(), 3, "{everyone}");

    // The admin sees both brands, and brandId narrows.
    let all = app.get_json("/v1/mentions", &admin.token).await;
    assert_eq!(ids(&all), vec![theirs.id.to_string(), ours.id.to_string()]);
    let acme = app
        .get_json(&format!("/v1/mentions?brandId={ACME}"), &admin.token)
        .await;
    assert_eq!(ids(&acme), vec![theirs.id.to_string()]);
}

#[tokio::test]
async fn each_agents_event_stream_carries_their_brands_changes_only_live_and_replayed() {
    let TwoBrands {
        app,
        ours,
        theirs,
        ann,
        bob,
        admin,
    } = TwoBrands::start().await;
    let mut anns = Events::open(&app, &ann.token, None).await;
    let mut bobs = Events::open(&app, &bob.token, None).await;
    let mut admins = Events::open(&app, &admin.token, None).await;
    let start = anns.next().await.id.expect("ready id");
    bobs.next().await;
    admins.next().await;

    let assign = |id: String, to: String| {
        let app = &app;
        let token = admin.token.clone();
        async move {
            let request = app
                .request(Method::PUT, &format!("/v1/mentions/{id}"), Some(&token))
                .json(&json!({ "userId": to }));
            assert_eq!(app.send(request).await.status(), 200);
        }
    };
    // The default brand's change, then Acme's, then the default brand's again.
    assign(ours.id.to_string(), ann.user.id.to_string()).await;
    assign(theirs.id.to_string(), bob.user.id.to_string()).await;
    assign(ours.id.to_string(), admin.user.id.to_string()).await;

    let default = shared::brands::DEFAULT_BRAND.to_string();
    let our = (ours.id.to_string(), default.clone());
    let their = (theirs.id.to_string(), ACME.to_owned());
    // Ann's two changes are both the default brand's: Acme's, between them, never came.
    assert_eq!(changes(&mut anns, 2).await, vec![our.clone(), our.clone()]);
    assert_eq!(changes(&mut bobs, 1).await, vec![their.clone()]);
    assert_eq!(
        changes(&mut admins, 3).await,
        vec![our.clone(), their.clone(), our.clone()]
    );
    // Bob's presence on Acme's mention reaches the admin, not Ann.
    let presence = app
        .request(
            Method::POST,
            &format!("/v1/mentions/{}/presence", theirs.id),
            Some(&bob.token),
        )
        .json(&json!({"activity": "viewing"}));
    assert_eq!(app.send(presence).await.status().as_u16(), 204);
    let hint = loop {
        let received = admins.next().await;
        if received.event == "presence" {
            break received;
        }
    };
    assert_eq!(hint.data["brandId"], ACME, "{:?}", hint.data);

    // Reconnecting from the start replays the brand's own changes only.
    let mut replayed = Events::open(&app, &bob.token, Some(&start)).await;
    assert_eq!(changes(&mut replayed, 1).await, vec![their.clone()]);
    assign(ours.id.to_string(), ann.user.id.to_string()).await;
    assign(theirs.id.to_string(), admin.user.id.to_string()).await;
    assert_eq!(
        changes(&mut replayed, 1).await,
        vec![their],
        "the replay skipped the default brand's changes, and so does the live stream"
    );
    let mut anns_replayed = Events::open(&app, &ann.token, Some(&start)).await;
    assert_eq!(
        changes(&mut anns_replayed, 3).await,
        vec![our.clone(), our.clone(), our]
    );
}

/// The next `n` mention changes of `events`: (mention id, brand id) each.
async fn changes(events: &mut Events, n: usize) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    for _ in 0..n {
        let change = events.next_change().await;
        seen.push((
            change.data["mentionId"].as_str().expect("id").to_owned(),
            change.data["brandId"].as_str().expect("brand").to_owned(),
        ));
    }
    seen
}
