//! `TestApp`: the API router served in-process on `127.0.0.1:0` over a fresh database, with
//! helpers to create users and tokens without going through argon2 for each one.

use api::rate_limit::RateLimit;
use api::{AppState, auth};
use reqwest::{Method, RequestBuilder, Response};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use shared::db::entities::users;
use shared::db::users::LoginThrottle;
use shared::db::{tokens, users as user_queries};
use shared::domain::Role;
use shared::testing::{Gate, TestDb};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::OnceLock;
use tokio::net::TcpListener;

/// The password of every user made by [`TestApp::user`].
pub const PASSWORD: &str = "correct horse battery staple";

/// One argon2 hash of [`PASSWORD`] per test process (hashing is slow in debug builds).
fn password_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| auth::hash_password(PASSWORD).expect("hash"))
}

/// Settings for a state over a test database (the provider is never called here).
pub fn settings() -> shared::config::Settings {
    let env: HashMap<String, String> = [
        ("SOCIAL_MEDIA_API_URL", "http://127.0.0.1:9/api"),
        ("SOCIAL_PLATFORMS", "facebook,twitter,youtube"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    shared::config::load_from(env).expect("test settings")
}

/// A per-token rate limit no test reaches unless it means to.
const GENEROUS: RateLimit = RateLimit {
    per_second: 1000,
    burst: 1000,
};

/// A running API over its own database.
pub struct TestApp {
    /// The database.
    pub db: TestDb,
    addr: SocketAddr,
    client: reqwest::Client,
}

/// A user and one of its tokens.
pub struct SignedIn {
    /// The user.
    pub user: users::Model,
    /// A bearer token.
    pub token: String,
}

impl TestApp {
    /// With the default rate limit.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(GENEROUS).await
    }

    /// With this per-token rate limit.
    pub async fn spawn_with(limit: RateLimit) -> TestApp {
        let db = TestDb::new().await;
        let pool = db.conn().clone();
        Self::serve(db, pool, limit).await
    }

    /// With a pool of only `connections` database connections (as a process has), to see
    /// what happens when they are all busy.
    pub async fn spawn_with_pool(connections: u32) -> TestApp {
        let db = TestDb::new().await;
        let mut settings = settings();
        settings.database_url = db.url().to_owned().into();
        settings.database_max_connections = connections;
        let pool = shared::process::database_pool(&settings)
            .await
            .expect("pool");
        Self::serve(db, pool, GENEROUS).await
    }

    /// Over a pool that reaches the database through a [`Gate`] (the test database itself
    /// stays reachable through `db`).
    pub async fn spawn_gated() -> (TestApp, Gate) {
        let db = TestDb::new().await;
        let (gate, pool) = db.gated().await;
        (Self::serve(db, pool, GENEROUS).await, gate)
    }

    /// With these settings (they are [`settings`] with changes).
    pub async fn spawn_with_settings(settings: &shared::config::Settings) -> TestApp {
        let db = TestDb::new().await;
        let state = AppState::new(db.conn().clone(), settings).with_rate_limit(GENEROUS);
        Self::serve_state(db, state).await
    }

    /// With this login throttle.
    pub async fn spawn_with_login_throttle(throttle: LoginThrottle) -> TestApp {
        let db = TestDb::new().await;
        let pool = db.conn().clone();
        let state = AppState::new(pool.clone(), &settings())
            .with_rate_limit(GENEROUS)
            .with_login_throttle(throttle);
        Self::serve_state(db, state).await
    }

    async fn serve(db: TestDb, pool: DatabaseConnection, limit: RateLimit) -> TestApp {
        let state = AppState::new(pool, &settings()).with_rate_limit(limit);
        Self::serve_state(db, state).await
    }

    async fn serve_state(db: TestDb, state: AppState) -> TestApp {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        state.spawn_event_feed();
        let app = api::router(state).into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await });
        TestApp {
            db,
            addr,
            client: reqwest::Client::new(),
        }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A request with `token` as bearer (none when `None`).
    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let builder = self.client.request(method, self.url(path));
        match token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    /// `GET path` with a token, expecting 200 and JSON.
    pub async fn get_json(&self, path: &str, token: &str) -> serde_json::Value {
        let response = self
            .send(self.request(Method::GET, path, Some(token)))
            .await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("json body")
    }

    /// Sends a request (panics if the server cannot be reached).
    pub async fn send(&self, request: RequestBuilder) -> Response {
        request.send().await.expect("request reaches the api")
    }

    /// Inserts a user with [`PASSWORD`] and issues it a token.
    pub async fn user(&self, role: Role, email: &str) -> SignedIn {
        let user = user_queries::insert(
            self.db.conn(),
            user_queries::NewUser {
                email,
                name: email.split('@').next().unwrap_or(email),
                role,
                password_hash: password_hash().to_owned(),
            },
        )
        .await
        .expect("insert user");
        let token = self.token_for(&user).await;
        SignedIn { user, token }
    }

    /// A new token for `user`.
    pub async fn token_for(&self, user: &users::Model) -> String {
        let (token, hash) = auth::new_token();
        let expires = chrono::Utc::now() + chrono::Duration::days(1);
        tokens::insert(self.db.conn(), user.id, &hash, expires)
            .await
            .expect("insert token");
        token
    }

    /// The number the one row of `sql` holds (a count, say).
    pub async fn count(&self, sql: &str) -> i64 {
        count(self.db.conn(), sql).await
    }

    /// Runs SQL on the test database.
    pub async fn sql(&self, sql: &str) {
        self.db
            .conn()
            .execute_unprepared(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

/// Asserts the response is problem+json with `status` and `code`; returns the body.
pub async fn assert_problem(response: Response, status: u16, code: &str) -> serde_json::Value {
    let actual = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: serde_json::Value = response.json().await.expect("problem body");
    assert_eq!(actual, status, "{body}");
    assert_eq!(content_type, "application/problem+json", "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status, "{body}");
    body
}

/// A mention to insert; [`MentionSeed::insert`] stores it.
pub struct MentionSeed {
    /// Where.
    pub platform: shared::domain::Platform,
    /// What kind.
    pub mention_type: shared::domain::MentionType,
    /// The text.
    pub content: &'static str,
    /// The author's display name.
    pub author: &'static str,
    /// Minutes before now that it was stored.
    pub minutes_ago: i64,
}

impl MentionSeed {
    /// A facebook comment stored `minutes_ago`.
    pub fn comment(content: &'static str, minutes_ago: i64) -> Self {
        MentionSeed {
            platform: shared::domain::Platform::Facebook,
            mention_type: shared::domain::MentionType::Comment,
            content,
            author: "Jane Doe",
            minutes_ago,
        }
    }

    /// Stores it.
    pub async fn insert(self, app: &TestApp) -> shared::db::entities::mentions::Model {
        use sea_orm::{ActiveModelTrait, Set};
        use shared::db::entities::mentions;
        let id = shared::domain::MentionId::new();
        let at = (chrono::Utc::now() - chrono::Duration::minutes(self.minutes_ago)).fixed_offset();
        mentions::ActiveModel {
            id: Set(id),
            mention_type: Set(self.mention_type),
            platform: Set(self.platform),
            content: Set(self.content.to_owned()),
            platform_ref: Set(format!("ref-{id}")),
            provider_post_ref: Set(Some("ayr-post-1".to_owned())),
            author_name: Set(Some(self.author.to_owned())),
            author_handle: Set(Some("@someone".to_owned())),
            raw: Set(serde_json::json!({ "comment": self.content })),
            created_at: Set(at),
            updated_at: Set(at),
            ..Default::default()
        }
        .insert(app.db.conn())
        .await
        .expect("insert mention")
    }
}

/// The number the one row of `sql` holds in `conn` (a count, say).
pub async fn count(conn: &DatabaseConnection, sql: &str) -> i64 {
    let row = conn
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            sql.to_owned(),
        ))
        .await
        .expect("query")
        .expect("row");
    row.try_get_by_index(0).expect("a number")
}
