//! `GET /user`: the profile the request names (`Profile-Key`; absent: the primary profile) and
//! the accounts linked to it, which are our accounts on its world's platforms: the same `id`,
//! `username` and `displayName` as the author of every reply and comment we post, so a client
//! can tell our comments from customers'. Shape in [`crate::render::user`].

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use crate::faults::Endpoint;
use crate::render;
use crate::serve::ConnControl;
use crate::sim::{ApiCall, Sim};
use crate::stats::Method;

pub(super) async fn get_user(
    State(sim): State<Arc<Sim>>,
    Extension(conn): Extension<ConnControl>,
    headers: HeaderMap,
) -> Response {
    let profile = sim.profile_of(&headers);
    let call = ApiCall {
        profile: &profile,
        endpoint: Endpoint::User,
        method: Method::Get,
        platforms: &[],
        headers: &headers,
        conn: &conn,
    };
    sim.serve_api(call, || {
        let mut platforms = sim.cfg.platforms.clone();
        platforms.sort_unstable();
        Ok(render::user(&profile.world(), &platforms, &profile.key))
    })
    .await
}
