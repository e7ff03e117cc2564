//! Test support (feature `testing`): a fresh, fully migrated PostgreSQL database per test.
//!
//! The first [`TestDb::new`] on a server builds a template database (`sm_template_<hash of the
//! migration sources>`) under an advisory lock, so parallel test processes build it once; every
//! test database is then a `CREATE DATABASE … TEMPLATE` copy, which takes a few tens of
//! milliseconds. Nobody connects to the template after it is built (PostgreSQL refuses to copy
//! a database that has sessions).
//!
//! The server is `postgres://postgres@127.0.0.1:5432`; `TEST_DATABASE_URL` overrides it with
//! the URL of a maintenance database (e.g. `postgres://user:pass@host:5432/postgres`). Its
//! user migrates the template and so owns the schema ([`TestDb::owner_conn`]); tests and the
//! processes they start connect as the services do, as [`migrations::APP_ROLE`] (without a
//! password: the server must let that role in as it lets in the maintenance user).

mod broker;
mod gate;
mod pg_cluster;
mod process;
mod rabbit_node;

pub use broker::{BrokerOutage, TestBroker};
pub use gate::Gate;
pub use pg_cluster::PgCluster;
pub use process::{
    Process, admin_token, bin_path, free_port, set_faults, sim_get, sim_json, wait_http_ok,
};
pub use rabbit_node::RabbitNode;

use migrations::quote_ident;
use sea_orm::sqlx::{self, Connection as _, PgConnection};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use url::Url;

/// Maintenance database used when `TEST_DATABASE_URL` is not set.
const DEFAULT_MAINTENANCE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Advisory lock serializing template builds across test processes.
const TEMPLATE_LOCK_KEY: i64 = 0x534d_5f54_504c; // "SM_TPL"

/// Prefix of test database names; the creation time (unix seconds) follows it.
const TEST_DB_PREFIX: &str = "sm_test_";

/// Test databases older than this are leftovers of killed test runs and are dropped.
const STALE_AFTER: Duration = Duration::from_secs(6 * 3600);

/// Connections in each test database's pool.
const POOL_SIZE: u32 = 16;

/// A fresh, migrated database, dropped when this value is dropped.
pub struct TestDb {
    name: String,
    url: String,
    owner_url: String,
    maintenance_url: String,
    conn: DatabaseConnection,
    owner: DatabaseConnection,
}

impl TestDb {
    /// Creates a database from the migrated template (building the template first if this
    /// schema has none yet) and connects to it. Panics with the reason if PostgreSQL is not
    /// usable: a test cannot run without it.
    pub async fn new() -> TestDb {
        let maintenance_url = maintenance_url();
        let mut admin = PgConnection::connect(maintenance_url.as_str())
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "cannot connect to the test PostgreSQL at {} (set TEST_DATABASE_URL): {e}",
                    migrations::redact_url(maintenance_url.as_str())
                )
            });
        drop_stale_databases(&mut admin).await;
        let template = ensure_template(&mut admin, &maintenance_url).await;

        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let name = format!("{TEST_DB_PREFIX}{created}_{}", &suffix[..12]);
        execute_retrying_in_use(
            &mut admin,
            &format!(
                "CREATE DATABASE {} TEMPLATE {}",
                quote_ident(&name),
                quote_ident(&template)
            ),
        )
        .await
        .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let _ = admin.close().await;

        let owner_url = database_url(&maintenance_url, &name);
        let mut app_url = Url::parse(&owner_url).expect("test database URL");
        app_url
            .set_username(migrations::APP_ROLE)
            .and_then(|()| app_url.set_password(None))
            .expect("a URL with a host takes a user");
        let url = app_url.to_string();
        let (conn, owner) =
            match tokio::try_join!(connect(&url, POOL_SIZE), connect(&owner_url, POOL_SIZE)) {
                Ok(pools) => pools,
                Err(e) => panic!("cannot connect to test database {name}: {e}"),
            };
        TestDb {
            name,
            url,
            owner_url,
            maintenance_url: maintenance_url.to_string(),
            conn,
            owner,
        }
    }

    /// The database's URL as the services' role (e.g. to pass as `DATABASE_URL` to a spawned
    /// binary).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's URL as the schema's owner (e.g. `MIGRATION_DATABASE_URL`).
    pub fn owner_url(&self) -> &str {
        &self.owner_url
    }

    /// A [`Gate`] in front of the database's server and a small pool (two connections, 1 s
    /// timeouts) through it: shutting the gate makes the database unreachable for that pool
    /// only.
    pub async fn gated(&self) -> (Gate, DatabaseConnection) {
        let mut url = Url::parse(&self.url).expect("test database URL");
        let host = url.host_str().unwrap_or("127.0.0.1").to_owned();
        let port = url.port().unwrap_or(5432);
        let server = tokio::net::lookup_host((host.as_str(), port))
            .await
            .ok()
            .and_then(|mut addrs| addrs.next())
            .expect("the database server's address");
        let gate = Gate::to(server).await;
        url.set_host(Some("127.0.0.1")).expect("host");
        url.set_port(Some(gate.addr().port())).expect("port");
        let mut options = ConnectOptions::new(url.to_string());
        options
            .max_connections(2)
            .connect_timeout(Duration::from_secs(1))
            .acquire_timeout(Duration::from_secs(1))
            .sqlx_logging(false);
        let pool = Database::connect(options)
            .await
            .expect("a pool through the gate");
        (gate, pool)
    }

    /// A connection pool to the database, as the services' role.
    pub fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }

    /// A connection pool to the database as the schema's owner: for what the services may not
    /// do (creating tables, tampering with the audit log, locking its head).
    pub fn owner_conn(&self) -> &DatabaseConnection {
        &self.owner
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Does, as the schema's owner, what only an anchor can expose: sets the payload of audit
    /// row `id` to `{"rewritten": true}` with the triggers disabled, then rehashes it and every
    /// later row and moves the chain head, so that the chain verifies again.
    pub async fn rewrite_audit_row(&self, id: i64) {
        use sea_orm::ConnectionTrait as _;
        self.owner
            .execute_unprepared(&format!(
                r#"ALTER TABLE audit_log DISABLE TRIGGER USER;
                UPDATE audit_log SET payload = '{{"rewritten": true}}' WHERE id = {id};
                DO $$
                DECLARE
                    r record;
                    prev text := coalesce((SELECT hash FROM audit_log WHERE id = {id} - 1),
                        repeat('0', 64));
                BEGIN
                    FOR r IN SELECT * FROM audit_log WHERE id >= {id} ORDER BY id LOOP
                        UPDATE audit_log SET prev_hash = prev, hash = audit_row_hash(prev, r.id,
                            r.occurred_at, r.actor, r.action, r.entity_type, r.entity_id,
                            r.payload)
                        WHERE id = r.id RETURNING hash INTO prev;
                    END LOOP;
                    UPDATE audit_chain_head SET hash = prev;
                END $$;
                ALTER TABLE audit_log ENABLE TRIGGER USER;"#
            ))
            .await
            .unwrap_or_else(|e| panic!("cannot rewrite audit row {id}: {e}"));
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let maintenance_url = self.maintenance_url.clone();
        // Drop may run inside an async runtime, where blocking on another future is not
        // allowed: a helper thread with its own small runtime does the work.
        let outcome = std::thread::spawn(move || -> Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&maintenance_url)
                    .await
                    .map_err(|e| e.to_string())?;
                let dropped = execute(
                    &mut admin,
                    &format!(
                        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                        quote_ident(&name)
                    ),
                )
                .await;
                let _ = admin.close().await;
                dropped.map_err(|e| e.to_string())
            })
        })
        .join();
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: cannot drop test database {}: {e}", self.name),
            Err(_) => eprintln!("warning: dropping test database {} panicked", self.name),
        }
    }
}

fn maintenance_url() -> Url {
    let text =
        std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_MAINTENANCE_URL.to_owned());
    let mut url =
        Url::parse(&text).unwrap_or_else(|e| panic!("TEST_DATABASE_URL is not a valid URL: {e}"));
    if url.path().trim_start_matches('/').is_empty() {
        url.set_path("/postgres");
    }
    url
}

fn database_url(maintenance_url: &Url, name: &str) -> String {
    let mut url = maintenance_url.clone();
    url.set_path(&format!("/{name}"));
    url.to_string()
}

async fn connect(url: &str, pool_size: u32) -> Result<DatabaseConnection, sea_orm::DbErr> {
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(pool_size)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false);
    Database::connect(options).await
}

async fn execute(conn: &mut PgConnection, sql: &str) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(conn)
        .await
        .map(|_| ())
}

/// Runs `sql`, retrying for a little while when the database it touches still has sessions
/// (`object_in_use`): a closed pool's server processes can take a moment to exit.
async fn execute_retrying_in_use(conn: &mut PgConnection, sql: &str) -> Result<(), sqlx::Error> {
    let mut attempt = 0;
    loop {
        match execute(conn, sql).await {
            Err(e)
                if attempt < 50
                    && migrations::sqlstate(&e).as_deref() == Some(crate::db::OBJECT_IN_USE) =>
            {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => return other,
        }
    }
}

async fn database_exists(conn: &mut PgConnection, name: &str) -> bool {
    sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(name)
        .fetch_one(conn)
        .await
        .unwrap_or_else(|e| panic!("cannot list databases: {e}"))
}

/// The name of the migrated template for this schema, building it if needed. Race-safe
/// across processes: builders take an advisory lock, and a template only appears (by rename)
/// once it is complete.
async fn ensure_template(admin: &mut PgConnection, maintenance_url: &Url) -> String {
    let template = format!("sm_template_{}", migrations::schema_fingerprint());
    if database_exists(admin, &template).await {
        return template;
    }
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(TEMPLATE_LOCK_KEY)
        .execute(&mut *admin)
        .await
        .unwrap_or_else(|e| panic!("cannot take the template lock: {e}"));
    if !database_exists(admin, &template).await {
        build_template(admin, maintenance_url, &template).await;
    }
    // Session-level lock on this connection: released explicitly, or when it closes.
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(TEMPLATE_LOCK_KEY)
        .execute(&mut *admin)
        .await;
    template
}

async fn build_template(admin: &mut PgConnection, maintenance_url: &Url, template: &str) {
    let building = format!("{template}_building");
    let fail = |what: &str, e: &dyn std::fmt::Display| -> ! {
        panic!("cannot build the test template database {template}: {what}: {e}")
    };
    // A leftover from a build that was killed half-way.
    execute(
        admin,
        &format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(&building)
        ),
    )
    .await
    .unwrap_or_else(|e| fail("dropping a leftover build", &e));
    execute(
        admin,
        &format!("CREATE DATABASE {}", quote_ident(&building)),
    )
    .await
    .unwrap_or_else(|e| fail("creating it", &e));

    let db = connect(&database_url(maintenance_url, &building), 1)
        .await
        .unwrap_or_else(|e| fail("connecting to it", &e));
    migrations::migrate_up(&db)
        .await
        .unwrap_or_else(|e| fail("migrating it", &e));
    let _ = db.close().await;

    execute_retrying_in_use(
        admin,
        &format!(
            "ALTER DATABASE {} RENAME TO {}",
            quote_ident(&building),
            quote_ident(template)
        ),
    )
    .await
    .unwrap_or_else(|e| fail("renaming it into place", &e));
}

/// Drops test databases left behind by test processes that were killed before their `Drop`
/// ran. Best effort: a failure here never fails a test.
async fn drop_stale_databases(admin: &mut PgConnection) {
    let Ok(names) = sqlx::query_scalar::<_, String>(
        "SELECT datname FROM pg_database WHERE starts_with(datname, $1)",
    )
    .bind(TEST_DB_PREFIX)
    .fetch_all(&mut *admin)
    .await
    else {
        return;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    for name in names {
        let created = name
            .strip_prefix(TEST_DB_PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse::<u64>().ok());
        if created.is_some_and(|created| now.saturating_sub(created) > STALE_AFTER.as_secs()) {
            let _ = execute(
                admin,
                &format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    quote_ident(&name)
                ),
            )
            .await;
        }
    }
}

/// Inserts an agent called "Test Agent" with `email`, who cannot sign in (no password hash
/// matches): for tests and benchmarks that need a user to act as.
pub async fn insert_agent(
    conn: &DatabaseConnection,
    email: &str,
) -> Result<crate::db::entities::users::Model, sea_orm::DbErr> {
    crate::db::users::insert(
        conn,
        crate::db::users::NewUser {
            email,
            name: "Test Agent",
            role: crate::domain::Role::Agent,
            password_hash: "no password".to_owned(),
        },
    )
    .await
}
