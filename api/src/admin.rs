//! The `create-admin` command: creates an admin user directly in the database, audited as done
//! by `system:api-cli`. It is how the first admin comes to exist.

use crate::routes::users::{self, CreateUserIn};
use anyhow::Context;
use shared::audit::Actor;
use shared::config::Settings;
use shared::db::entities::users as user_rows;
use shared::domain::Role;

/// Creates an admin with these details; the error says which field is wrong or that the email
/// is taken.
pub async fn create_admin(
    settings: &Settings,
    email: &str,
    name: &str,
    password: String,
) -> anyhow::Result<user_rows::Model> {
    let db = shared::process::database_pool(settings).await?;
    let input = CreateUserIn {
        email: email.to_owned(),
        name: name.to_owned(),
        password,
        role: Role::Admin,
    };
    let created = users::create(&db, input, Actor::system("api-cli"))
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.detail()))
        .context("cannot create the admin");
    let _ = db.close().await;
    created
}
