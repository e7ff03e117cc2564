//! The `create-admin` command: creates an admin user directly in the database, audited as done
//! by `system:api-cli`. It is how the first admin comes to exist.

use crate::accounts::{self, NewAccount};
use anyhow::Context;
use shared::audit::Actor;
use shared::brands::DEFAULT_BRAND;
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
    let account = NewAccount {
        email,
        name,
        password,
        role: Role::Admin,
        brands: &[DEFAULT_BRAND],
    };
    let created = accounts::create(&db, account, Actor::system("api-cli"))
        .await
        .context("cannot create the admin");
    let _ = db.close().await;
    created
}
