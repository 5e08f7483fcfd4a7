//! The one error type of the API, mapped to status codes with an exhaustive match.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;

use crate::daemon::OpError;
use crate::diag::Diagnostic;
use crate::policy::Violation;

#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    Unauthorized(String),
    Forbidden {
        message: String,
        violations: Vec<Violation>,
    },
    NotFound(String),
    /// The route exists but does not take the request's method.
    MethodNotAllowed,
    Conflict(String),
    TooLarge,
    /// A body over the limit of its route, with what that limit is for.
    ValueTooLarge(String),
    Invalid {
        message: String,
        diagnostics: Vec<Diagnostic>,
    },
    /// The detail is logged; the response says only that something went wrong.
    Internal(String),
    JobFailed {
        message: String,
        result: String,
        status_text: String,
        log: Vec<String>,
    },
    Unavailable(String),
    /// A limit of the daemon is reached (sessions, log followers, event streams).
    TooMany(String),
    /// A registry refused a credential: its answer.
    RegistryRefused(String),
    /// A registry could not be asked about a credential.
    RegistryFailed(String),
}

#[derive(Serialize)]
struct WireDiagnostic<'a> {
    file: &'a str,
    line: usize,
    column: usize,
    message: &'a str,
    hint: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            ApiError::BadRequest(m) => {
                (StatusCode::BAD_REQUEST, json!({"kind": "bad_request", "message": m}))
            }
            ApiError::Unauthorized(m) => {
                (StatusCode::UNAUTHORIZED, json!({"kind": "unauthorized", "message": m}))
            }
            ApiError::Forbidden { message, violations } => (
                StatusCode::FORBIDDEN,
                json!({"kind": "forbidden", "message": message, "violations": violations}),
            ),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, json!({"kind": "not_found", "message": m})),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                json!({"kind": "method_not_allowed", "message": "method not allowed on this route: see the Allow header"}),
            ),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, json!({"kind": "conflict", "message": m})),
            ApiError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"kind": "too_large", "message": format!("request body is larger than {} bytes", super::MAX_BODY_BYTES)}),
            ),
            ApiError::ValueTooLarge(m) => {
                (StatusCode::PAYLOAD_TOO_LARGE, json!({"kind": "too_large", "message": m}))
            }
            ApiError::Invalid { message, diagnostics } => {
                let d: Vec<WireDiagnostic> = diagnostics
                    .iter()
                    .map(|d| WireDiagnostic {
                        file: &d.file,
                        line: d.line,
                        column: d.column,
                        message: &d.message,
                        hint: d.hint.as_deref(),
                    })
                    .collect();
                let rendered: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    json!({"kind": "invalid", "message": message, "diagnostics": d, "rendered": rendered}),
                )
            }
            ApiError::Internal(detail) => {
                tracing::error!("internal error: {detail}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"kind": "internal", "message": "internal error: see the journal of containerctld"}),
                )
            }
            ApiError::JobFailed { message, result, status_text, log } => (
                StatusCode::BAD_GATEWAY,
                json!({"kind": "job_failed", "message": message, "result": result, "status_text": status_text, "log": log}),
            ),
            ApiError::Unavailable(m) => {
                (StatusCode::SERVICE_UNAVAILABLE, json!({"kind": "unavailable", "message": m}))
            }
            ApiError::TooMany(m) => {
                (StatusCode::TOO_MANY_REQUESTS, json!({"kind": "too_many_requests", "message": m}))
            }
            ApiError::RegistryRefused(m) => {
                (StatusCode::UNPROCESSABLE_ENTITY, json!({"kind": "registry_refused", "message": m}))
            }
            ApiError::RegistryFailed(m) => {
                (StatusCode::BAD_GATEWAY, json!({"kind": "registry_failed", "message": m}))
            }
        };
        (status, Json(json!({ "error": body }))).into_response()
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<crate::systemd::SystemdError> for ApiError {
    fn from(e: crate::systemd::SystemdError) -> Self {
        OpError::from(e).into()
    }
}

impl From<Violation> for ApiError {
    /// A refusal of the role check: the message is the rule's.
    fn from(v: Violation) -> Self {
        ApiError::Forbidden { message: v.message.clone(), violations: vec![v] }
    }
}

impl From<OpError> for ApiError {
    fn from(e: OpError) -> Self {
        match e {
            OpError::InvalidInput(m) => ApiError::BadRequest(m),
            OpError::NotFound(m) => ApiError::NotFound(m),
            OpError::Conflict(m) => ApiError::Conflict(m),
            OpError::Refused { message, violations } => ApiError::Forbidden { message, violations },
            OpError::Invalid { message, diagnostics } => ApiError::Invalid { message, diagnostics },
            OpError::JobFailed { message, result, status_text, log } => {
                ApiError::JobFailed { message, result, status_text, log }
            }
            OpError::Unavailable(m) => ApiError::Unavailable(m),
            OpError::Internal(m) => ApiError::Internal(m),
            OpError::RegistryRefused(m) => ApiError::RegistryRefused(m),
            OpError::RegistryFailed(m) => ApiError::RegistryFailed(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::openapi::ErrorBody;

    /// Every variant answers with the documented body and a documented status.
    #[tokio::test]
    async fn every_error_matches_the_documented_body() {
        let d = Diagnostic::file_level("u.toml", "bad", None);
        let all = vec![
            ApiError::BadRequest("b".into()),
            ApiError::Unauthorized("u".into()),
            ApiError::Forbidden { message: "f".into(), violations: Vec::new() },
            ApiError::NotFound("n".into()),
            ApiError::MethodNotAllowed,
            ApiError::Conflict("c".into()),
            ApiError::TooLarge,
            ApiError::ValueTooLarge("v".into()),
            ApiError::Invalid { message: "i".into(), diagnostics: vec![d] },
            ApiError::Internal("secret detail".into()),
            ApiError::JobFailed {
                message: "j".into(),
                result: "failed".into(),
                status_text: "s".into(),
                log: vec!["l".into()],
            },
            ApiError::Unavailable("u".into()),
            ApiError::TooMany("t".into()),
            ApiError::RegistryRefused("r".into()),
            ApiError::RegistryFailed("r".into()),
        ];
        let doc = serde_json::to_value(crate::api::openapi()).expect("json");
        let units = &doc["paths"]["/api/v1/units"]["get"]["responses"];
        for e in all {
            let r = e.into_response();
            let status = r.status();
            assert!(units.get(status.as_str()).is_some(), "{status} is not documented");
            let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.expect("body");
            let parsed: Result<ErrorBody, _> = serde_json::from_slice(&body);
            assert!(parsed.is_ok(), "{status}: {} is not an ErrorBody", String::from_utf8_lossy(&body));
            assert!(!String::from_utf8_lossy(&body).contains("secret detail"), "5xx bodies stay generic");
        }
    }
}
