//! The OpenAPI 3.1 document (generated from the route annotations by utoipa) and the
//! interactive viewer at `/docs`.
//!
//! The viewer is Swagger UI from the `swagger-ui-dist` crate, whose assets come with the crate
//! from the registry and are compiled into this binary, so `/docs` works without internet
//! access and no third-party code sits in this tree. (utoipa-scalar and utoipa-swagger-ui
//! were not used: the first loads its script from a CDN at view time, the second downloads
//! its assets at build time.)

use swagger_ui_dist::{ApiDefinition, OpenApiSource};
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

/// The viewer's routes: `GET /docs` (the page, reading `/openapi.json`) and its assets
/// under `/docs/`.
pub fn docs_routes() -> axum::Router {
    swagger_ui_dist::generate_routes(ApiDefinition {
        uri_prefix: "/docs",
        api_definition: OpenApiSource::Uri("/openapi.json"),
        title: Some("Social Messages API"),
    })
}
