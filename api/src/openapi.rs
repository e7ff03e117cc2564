//! The OpenAPI 3.1 document (generated from the route annotations by utoipa, then completed by
//! [`complete`] with what every route shares), the schemas of the domain's closed value sets,
//! and the interactive viewer at `/docs`.
//!
//! The viewer is Swagger UI from the `swagger-ui-dist` crate, whose assets come with the crate
//! from the registry and are compiled into this binary, so `/docs` works without internet
//! access and no third-party code sits in this tree. (utoipa-scalar and utoipa-swagger-ui
//! were not used: the first loads its script from a CDN at view time, the second downloads
//! its assets at build time.)

use serde_json::{Value, json};
use shared::domain::{
    Disposition, MentionState, MentionType, Platform, ReplyStatus, Role, TaskStatus,
};
use std::borrow::Cow;
use swagger_ui_dist::{ApiDefinition, OpenApiSource};
use utoipa::Modify;
use utoipa::openapi::schema::{Object, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{OpenApi, RefOr};

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
        (name = "brands", description = "The brands (Ayrshare User Profiles) of the installation"),
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

/// Pattern of free text: PostgreSQL cannot store U+0000, so the API refuses it in every string
/// (422 naming the field). [`complete`] puts it on every request string without a pattern,
/// format or enum of its own.
const TEXT_PATTERN: &str = "^[^\\u0000]*$";

/// Free text that is not blank: no U+0000, and at least one character that is not white space
/// as Rust's `char::is_whitespace` sees it (the Unicode `White_Space` set, listed here because
/// regex engines disagree on `\s`).
const NON_BLANK_PATTERN: &str = "^[^\\u0000]*[^\\u0000\\t-\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\u0000]*$";

/// A UUID in its hyphenated form, the only one ids are accepted in.
const UUID_PATTERN: &str =
    "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";

/// A comma list of `items` (a regex alternative) as a query filter: empty, or items separated by
/// single commas.
fn comma_list(items: &str, description: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(format!("^(?:(?:{items})(?:,(?:{items}))*)?$")))
        .description(Some(description))
        .build()
}

/// Text of 1 to `max_chars` characters (counted as given, before surrounding white space is
/// removed) that is not blank.
pub fn non_blank_text(max_chars: usize, description: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(max_chars))
        .pattern(Some(NON_BLANK_PATTERN))
        .description(Some(description))
        .build()
}

/// A comma list of user ids (`userId` of the inbox).
pub fn uuid_list() -> Object {
    comma_list(UUID_PATTERN, "Comma list of ids")
}

/// A comma list of `values`, plus `absent` standing for "no value" when given.
fn value_list(values: &[&str], absent: Option<&str>) -> Object {
    let items: Vec<&str> = absent.into_iter().chain(values.iter().copied()).collect();
    comma_list(
        &items.join("|"),
        &format!("Comma list of: {}", items.join(", ")),
    )
}

/// Schemas of the domain's closed value sets (`shared::domain`), named like the domain types, so
/// that fields can say `value_type = RoleValues` and get `enum: [admin, agent]` by reference.
macro_rules! vocabulary {
    ($($schema:ident => $domain:ident;)+) => {$(
        #[doc = concat!("The schema of [`", stringify!($domain), "`]: its spellings as an enum.")]
        pub struct $schema;

        impl $schema {
            fn values() -> Vec<&'static str> {
                $domain::ALL.iter().map(|v| v.as_str()).collect()
            }
        }

        impl utoipa::PartialSchema for $schema {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(Self::values()))
                    .into()
            }
        }

        impl utoipa::ToSchema for $schema {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($domain))
            }
        }
    )+};
}

vocabulary! {
    RoleValues => Role;
    PlatformValues => Platform;
    MentionTypeValues => MentionType;
    MentionStateValues => MentionState;
    DispositionValues => Disposition;
    ReplyStatusValues => ReplyStatus;
    TaskStatusValues => TaskStatus;
}

macro_rules! list_filter {
    ($($schema:ident),+) => {$(
        impl $schema {
            /// A comma list of the values (a query filter).
            pub fn list() -> Object {
                value_list(&Self::values(), None)
            }
        }
    )+};
}

list_filter!(PlatformValues, MentionTypeValues, TaskStatusValues);

impl MentionStateValues {
    /// The inbox's `state` filter: `new` stands for mentions without a state.
    pub fn filter() -> Object {
        value_list(&Self::values(), Some("new"))
    }
}

impl DispositionValues {
    /// The inbox's `disposition` filter: `none` stands for mentions without one.
    pub fn filter() -> Object {
        value_list(&Self::values(), Some("none"))
    }
}

/// Completes `document` with what every operation shares instead of each annotation repeating
/// it, so the document is as strict as the server:
///
/// - error bodies are `Problem` as `application/problem+json`;
/// - operations with a token: 401, and 429 with `Retry-After` (the token's rate limit);
/// - operations with a body: 400 (not JSON), 413 (over 64 KB), 415 (not JSON media type) and
///   422 (wrong shape); operations with parameters: 422;
/// - 503 `unavailable` with `Retry-After` on every operation that uses the database;
/// - `{id}` path parameters are UUIDs, and an id that is looked up may be a 404;
/// - request strings without a pattern, format or enum get [`TEXT_PATTERN`].
pub fn complete(document: OpenApi) -> OpenApi {
    let Ok(mut value) = serde_json::to_value(&document) else {
        return document;
    };
    let mut body_schemas = Vec::new();
    if let Some(paths) = value["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for operation in item.values_mut().filter(|v| v.is_object()) {
                complete_operation(path, operation, &mut body_schemas);
            }
        }
    }
    if let Some(schemas) = value["components"]["schemas"].as_object_mut() {
        for name in body_schemas {
            if let Some(schema) = schemas.get_mut(&name) {
                add_text_patterns(schema);
            }
        }
    }
    serde_json::from_value(value).unwrap_or(document)
}

fn complete_operation(path: &str, operation: &mut Value, body_schemas: &mut Vec<String>) {
    let secured = operation
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty());
    let has_body = operation.get("requestBody").is_some();
    if let Some(name) = operation
        .pointer("/requestBody/content/application~1json/schema/$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.rsplit('/').next())
    {
        body_schemas.push(name.to_owned());
    }
    let mut has_params = false;
    let mut has_id = false;
    for parameter in operation
        .get_mut("parameters")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        has_params = true;
        if parameter["in"] == "path" && parameter["name"] == "id" {
            has_id = true;
            parameter["schema"]["format"] = json!("uuid");
        } else if parameter["in"] == "query" {
            add_text_pattern(&mut parameter["schema"]);
        }
    }
    // `GET /v1/status` answers from memory; every other operation reads the database.
    let uses_database = path != "/v1/status";
    let Some(responses) = operation["responses"].as_object_mut() else {
        return;
    };
    for (status, response) in responses.iter_mut() {
        if status.as_str() >= "400" {
            let content = response["content"].as_object_mut();
            if let Some(content) = content {
                if content.get("application/json")
                    == Some(&json!({"schema": {"$ref": "#/components/schemas/Problem"}}))
                {
                    content.remove("application/json");
                }
                content.insert("application/problem+json".into(), problem_content());
            } else {
                response["content"] = json!({ "application/problem+json": problem_content() });
            }
        }
        if status == "429"
            || (status == "503" && response["content"].get("application/json").is_none())
        {
            response["headers"]["Retry-After"] = retry_after();
        }
    }
    let mut add = |status: &str, description: &str, retry: bool| {
        responses.entry(status).or_insert_with(|| {
            let mut response = json!({
                "description": description,
                "content": { "application/problem+json": problem_content() },
            });
            if retry {
                response["headers"] = json!({ "Retry-After": retry_after() });
            }
            response
        });
    };
    if has_body {
        add("400", "The body is not JSON (`malformed_json`)", false);
        add("413", "The body is over 64 KB (`payload_too_large`)", false);
        add(
            "415",
            "The body is not `application/json` (`unsupported_media_type`)",
            false,
        );
    }
    if has_body || has_params {
        add(
            "422",
            "A field, parameter or header is invalid (`validation_failed`, named in `field`)",
            false,
        );
    }
    if secured {
        add("401", "No valid token", false);
        add("429", "Over the token's rate limit (`rate_limited`)", true);
    }
    if has_id {
        add("404", "No such id", false);
    }
    if uses_database {
        add("503", "The database is unavailable (`unavailable`)", true);
    }
}

fn problem_content() -> Value {
    json!({ "schema": { "$ref": "#/components/schemas/Problem" } })
}

fn retry_after() -> Value {
    json!({
        "description": "Seconds to wait before trying again",
        "required": true,
        "schema": { "type": "integer", "minimum": 1 },
    })
}

/// [`TEXT_PATTERN`] on every string property of `schema` that has no constraint of its own.
fn add_text_patterns(schema: &mut Value) {
    if let Some(properties) = schema["properties"].as_object_mut() {
        properties.values_mut().for_each(add_text_pattern);
    }
}

fn add_text_pattern(schema: &mut Value) {
    let is_string = match &schema["type"] {
        Value::String(t) => t == "string",
        Value::Array(types) => types.iter().any(|t| t == "string"),
        _ => false,
    };
    let constrained = ["pattern", "format", "enum"]
        .iter()
        .any(|k| schema.get(k).is_some());
    if is_string && !constrained {
        schema["pattern"] = json!(TEXT_PATTERN);
    }
}
