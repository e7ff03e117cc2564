//! `GET /user`: the profile the request names (`Profile-Key`; absent: the primary profile) and
//! the accounts linked to it, which are our accounts on the world's platforms: the same `id`,
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
use crate::sim::{self, ApiCall, Sim};
use crate::stats::Method;

pub(super) async fn get_user(
    State(sim): State<Arc<Sim>>,
    Extension(conn): Extension<ConnControl>,
    headers: HeaderMap,
) -> Response {
    let call = ApiCall {
        endpoint: Endpoint::User,
        method: Method::Get,
        platforms: &[],
        headers: &headers,
        conn: &conn,
    };
    let profile = sim::profile(&headers);
    sim.serve_api(call, |sim| {
        let mut platforms = sim.cfg.platforms.clone();
        platforms.sort_unstable();
        Ok(render::user(&sim.world(), &platforms, profile))
    })
    .await
}
