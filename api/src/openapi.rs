//! The OpenAPI 3.1 document (generated from the route annotations by utoipa) and the
//! interactive viewer at `/docs`.
//!
//! The viewer is RapiDoc (MIT, `docs/RAPIDOC-LICENSE.txt`), vendored gzip-compressed and served
//! from this binary, so `/docs` works without internet access. (utoipa-scalar and
//! utoipa-swagger-ui were not used: the first loads its script from a CDN at view time, the
//! second downloads its assets at build time.)

use axum::http::header;
use axum::response::{Html, IntoResponse};
use utoipa::Modify;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};

/// Document-level information; the paths come from the routers.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Social Messages API",
        description = "Triage of social media comments and direct messages. Errors are \
            `application/problem+json` with a stable `code`. Send `Authorization: Bearer \
            <token>` (from `POST /v1/users/login`) on every route but login, status, health, \
            metrics and these docs."
    ),
    modifiers(&BearerAuth),
    components(schemas(crate::error::Problem)),
    tags(
        (name = "users", description = "Sign-in and user management"),
        (name = "mentions", description = "The inbox"),
        (name = "audit", description = "The audit trail"),
        (name = "tasks", description = "Background work"),
        (name = "status", description = "Health of the service and the provider"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

const DOCS_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Social Messages API</title>
<script type="module" src="/docs/rapidoc-min.js"></script>
</head>
<body>
<rapi-doc spec-url="/openapi.json" render-style="read" show-header="false"
  allow-authentication="true" regular-font="system-ui, sans-serif"
  mono-font="ui-monospace, monospace"></rapi-doc>
</body>
</html>
"#;

const RAPIDOC_JS_GZ: &[u8] = include_bytes!("docs/rapidoc-min.js.gz");

/// `GET /docs`: the viewer page.
pub async fn get_docs() -> Html<&'static str> {
    Html(DOCS_PAGE)
}

/// `GET /docs/rapidoc-min.js`: the viewer's script (gzip; every browser accepts it).
pub async fn get_docs_script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CONTENT_ENCODING, "gzip"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        RAPIDOC_JS_GZ,
    )
}
