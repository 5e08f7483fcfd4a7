//! The OpenAPI 3.1 document of /api/v1, generated from the code: every route is registered with
//! `utoipa_axum::routes!` from a handler carrying `#[utoipa::path]`, so registering a route and
//! documenting it are one call (see `api_routes` in mod.rs and ARCHITECTURE.md). What applies to
//! every route (authentication, the error body) is added here once.
//!
//! The document is public (no token, as the web page's files): it describes the API, it holds
//! nothing of this host. It is also installed as /usr/share/doc/containerctl/openapi.json.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr};

use crate::wire;

/// The names of the security schemes.
pub const BEARER: &str = "bearer";
pub const SESSION: &str = "session";

/// The error body every route answers with on failure: `{"error": {"kind", "message", …}}`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong: `kind` for programs, `message` for people; the other fields come with
/// some kinds only.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorDetail {
    pub kind: ErrorKind,
    pub message: String,
    /// `forbidden`: the policy rules that refused the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub violations: Option<Vec<wire::Violation>>,
    /// `invalid`: every problem of a unit file, with its position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<Vec<wire::WireDiagnostic>>,
    /// `invalid`: the diagnostics as `FILE:LINE:COL: message` text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rendered: Option<Vec<String>>,
    /// `job_failed`: systemd's job result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// `job_failed`: the unit's status text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_text: Option<String>,
    /// `job_failed`: the unit's last journal lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    TooLarge,
    Invalid,
    Internal,
    JobFailed,
    Unavailable,
    TooManyRequests,
    RegistryRefused,
    RegistryFailed,
}

/// The statuses any route may answer with the error body, and when.
const ERRORS: &[(&str, &str)] = &[
    ("400", "a bad request: the message names the field and the rule"),
    ("401", "no credentials, or a token or session that is not valid"),
    ("403", "the role or the policy refuses it (or a session's X-CSRF-Token is missing)"),
    ("404", "no such unit, revision, token, node or secret"),
    ("405", "the route does not take this method"),
    ("409", "the request conflicts with the current state"),
    ("413", "the request body is over the route's limit"),
    ("422", "a unit file that does not validate, or a credential a registry refused"),
    ("429", "a limit of the daemon is reached (sessions, log followers, event streams)"),
    ("500", "an internal error; the detail is in the journal of containerctld"),
    ("502", "a systemd job or a registry failed"),
    ("503", "dockerd, systemd or the cluster's manager cannot be reached"),
];

/// What no single handler says: the title, the security schemes, and the error body on every
/// operation.
pub fn finish(doc: &mut OpenApi) {
    doc.info.title = "containerctl API".into();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    doc.info.description = Some(
        "The HTTP API of containerctld under /api/v1 (docs/api.md explains each route). Callers \
         authenticate with `Authorization: Bearer TOKEN` (a token from `containerctl token \
         create`) or with the web page's session cookie, which also needs `X-CSRF-Token` on \
         every method but GET and HEAD. Long operations answer 200 with \
         `application/x-ndjson`: one JSON object per line, ending with `{\"result\": …}` or \
         `{\"error\": {…}}`."
            .into(),
    );
    doc.info.license = Some(utoipa::openapi::License::new("Apache-2.0"));
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            utoipa::openapi::security::HttpBuilder::from(Http::new(HttpAuthScheme::Bearer))
                .bearer_format("JWT")
                .build(),
        ),
    );
    components.add_security_scheme(
        SESSION,
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(crate::auth::SESSION_COOKIE))),
    );
    let mut schemas = Vec::new();
    <ErrorBody as utoipa::ToSchema>::schemas(&mut schemas);
    components.schemas.extend(schemas);
    components.schemas.insert("ErrorBody".into(), <ErrorBody as utoipa::PartialSchema>::schema());
    for (status, description) in ERRORS {
        let response = ResponseBuilder::new()
            .description(*description)
            .content(
                "application/json",
                ContentBuilder::new().schema(Some(RefOr::Ref(Ref::from_schema_name("ErrorBody")))).build(),
            )
            .build();
        components.responses.insert(error_response(status), RefOr::T(response));
    }
    let security = vec![
        utoipa::openapi::security::SecurityRequirement::new::<_, _, &str>(BEARER, []),
        utoipa::openapi::security::SecurityRequirement::new::<_, _, &str>(SESSION, []),
    ];
    doc.security = Some(security);
    for (path, item) in doc.paths.paths.iter_mut() {
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
            &mut item.options,
            &mut item.trace,
        ]
        .into_iter()
        .flatten()
        {
            // operationId must be unique: handlers of several modules share names (`list`).
            if let (Some(tag), Some(id)) = (op.tags.as_ref().and_then(|t| t.first()), &op.operation_id) {
                op.operation_id = Some(format!("{tag}_{id}"));
            }
            add_errors(op, path == "/api/v1/openapi.json");
        }
    }
}

/// The error responses of `op`; `open` is a route that takes no credential at all (logging in
/// takes one in its body, and answers 401 for a bad one).
fn add_errors(op: &mut Operation, open: bool) {
    for (status, _) in ERRORS {
        if open && *status == "401" {
            continue;
        }
        if op.responses.responses.contains_key(*status) {
            continue;
        }
        op.responses
            .responses
            .insert((*status).to_owned(), RefOr::Ref(Ref::from_response_name(error_response(status))));
    }
}

/// The name of the shared response of an error status: `Error404`.
fn error_response(status: &str) -> String {
    format!("Error{status}")
}

/// The document as JSON (ending with a newline), built once.
pub fn json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut text =
            super::openapi().to_pretty_json().unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
        text.push('\n');
        text
    })
}

/// `GET /openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    security(()),
    responses((status = 200, description = "the OpenAPI 3.1 document of this API", content_type = "application/json", body = Object))
)]
pub async fn document() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], json()).into_response()
}

/// `{name}` of the /units/{name}… routes.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct UnitPath {
    /// The unit's NAME: 1-64 characters of `[a-z0-9][a-z0-9_.-]*`.
    #[param(pattern = "^[a-z0-9][a-z0-9_.-]{0,63}$")]
    name: String,
}

/// `{name}` and `{rev}` of /units/{name}/revisions/{rev}.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct RevisionPath {
    /// The unit's NAME.
    #[param(pattern = "^[a-z0-9][a-z0-9_.-]{0,63}$")]
    name: String,
    /// A revision number of the unit (`GET /units/{name}/history`).
    rev: u32,
}

/// `{id}` of a token, a join token or a node.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct IdPath {
    /// The id (a node also by its host name).
    id: String,
}

/// `{name}` of /secrets/{name}.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct SecretPath {
    /// The secret's NAME: 1-64 characters of `[A-Za-z0-9][A-Za-z0-9_.-]*`.
    #[param(pattern = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    name: String,
}

#[cfg(test)]
mod tests {
    use crate::secrets::SecretName;
    use crate::unit::UnitName;

    /// The patterns the document gives for NAME are the rules the daemon applies.
    #[test]
    fn name_patterns_are_the_daemons_rules() {
        let doc = serde_json::to_value(crate::api::openapi()).expect("json");
        let pattern = |path: &str, method: &str| -> regex_lite::Regex {
            let params = doc["paths"][path][method]["parameters"].as_array().expect("parameters");
            let p = params.iter().find(|p| p["name"] == "name").expect("a name parameter");
            regex_lite::Regex::new(p["schema"]["pattern"].as_str().expect("a pattern")).expect("a regex")
        };
        let unit = pattern("/api/v1/units/{name}", "get");
        let revision = pattern("/api/v1/units/{name}/revisions/{rev}", "get");
        let secret = pattern("/api/v1/secrets/{name}", "put");
        let long = "a".repeat(64);
        let too_long = "a".repeat(65);
        for s in ["web", "a", "0db", "a_b.c-d", "Web", "-web", ".x", "", "a/b", "a b", "é", &long, &too_long]
        {
            assert_eq!(unit.is_match(s), UnitName::new(s).is_ok(), "unit name {s:?}");
            assert_eq!(revision.is_match(s), UnitName::new(s).is_ok(), "unit name {s:?}");
            assert_eq!(secret.is_match(s), SecretName::new(s).is_ok(), "secret name {s:?}");
        }
    }
}
