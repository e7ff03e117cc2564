//! Scratch databases: a unique name on the test server, dropped when the value is dropped.
//! (`shared::testing::TestDb` hands out migrated databases; these tests need empty or missing
//! ones.)

use migrations::quote_ident;
use sea_orm_migration::sea_orm::sqlx::{self, Connection as _, PgConnection};
use sea_orm_migration::sea_orm::{ConnectOptions, Database, DatabaseConnection};

fn maintenance_url() -> url::Url {
    let text = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let mut url = url::Url::parse(&text).expect("TEST_DATABASE_URL is a URL");
    if url.path().trim_start_matches('/').is_empty() {
        url.set_path("/postgres");
    }
    url
}

/// A database name reserved for one test; the database may or may not exist yet.
pub struct Scratch {
    pub name: String,
    pub url: String,
}

impl Scratch {
    /// A name only, nothing created.
    pub fn missing() -> Scratch {
        let name = format!("sm_scratch_{}", uuid::Uuid::new_v4().simple());
        let mut url = maintenance_url();
        url.set_path(&format!("/{name}"));
        Scratch {
            name,
            url: url.to_string(),
        }
    }

    /// An empty database.
    pub async fn empty() -> Scratch {
        let scratch = Scratch::missing();
        let mut admin = PgConnection::connect(maintenance_url().as_str())
            .await
            .expect("connect to the test server");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE {}",
            quote_ident(&scratch.name)
        )))
        .execute(&mut admin)
        .await
        .expect("create scratch database");
        admin.close().await.expect("close");
        scratch
    }

    /// Whether the database exists.
    pub async fn exists(&self) -> bool {
        let mut admin = PgConnection::connect(maintenance_url().as_str())
            .await
            .expect("connect to the test server");
        let exists = sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
        )
        .bind(&self.name)
        .fetch_one(&mut admin)
        .await
        .expect("query pg_database");
        admin.close().await.expect("close");
        exists
    }

    /// A connection pool to it.
    pub async fn connect(&self) -> DatabaseConnection {
        let mut options = ConnectOptions::new(&self.url);
        options.max_connections(8).sqlx_logging(false);
        Database::connect(options)
            .await
            .expect("connect to scratch")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let sql = format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(&self.name)
        );
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async move {
                let mut admin = PgConnection::connect(maintenance_url().as_str())
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut admin)
                    .await
                    .map_err(|e| e.to_string())?;
                admin.close().await.map_err(|e| e.to_string())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: cannot drop scratch database {}", self.name);
        }
    }
}
