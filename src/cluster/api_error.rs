//! The errors of the cluster API on :5001 and their responses. The cluster API answers other
//! containerctl daemons, not the CLI, but with the same wire shape as the local API
//! (`{"error": {"kind": …, "message": …}}` and the same status per kind), so a joining host reads
//! a refusal the same way whichever API sent it. It is its own type so that the cluster module
//! does not depend on the local API; only the kinds the cluster API uses are here.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::ops::{StepError, StepKind};

#[derive(Debug, PartialEq, Eq)]
pub enum ClusterApiError {
    BadRequest(String),
    Unauthorized(String),
    /// Sent with an empty `violations` list, as the local API sends a refusal that no policy
    /// rule made.
    Forbidden(String),
    NotFound(String),
    Conflict(String),
    /// The detail is logged; the response says only that something went wrong.
    Internal(String),
    Unavailable(String),
}

impl IntoResponse for ClusterApiError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            ClusterApiError::BadRequest(m) => {
                (StatusCode::BAD_REQUEST, json!({"kind": "bad_request", "message": m}))
            }
            ClusterApiError::Unauthorized(m) => {
                (StatusCode::UNAUTHORIZED, json!({"kind": "unauthorized", "message": m}))
            }
            ClusterApiError::Forbidden(m) => {
                (StatusCode::FORBIDDEN, json!({"kind": "forbidden", "message": m, "violations": []}))
            }
            ClusterApiError::NotFound(m) => {
                (StatusCode::NOT_FOUND, json!({"kind": "not_found", "message": m}))
            }
            ClusterApiError::Conflict(m) => (StatusCode::CONFLICT, json!({"kind": "conflict", "message": m})),
            ClusterApiError::Internal(detail) => {
                tracing::error!("internal error: {detail}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"kind": "internal", "message": "internal error: see the journal of containerctld"}),
                )
            }
            ClusterApiError::Unavailable(m) => {
                (StatusCode::SERVICE_UNAVAILABLE, json!({"kind": "unavailable", "message": m}))
            }
        };
        (status, Json(json!({ "error": body }))).into_response()
    }
}

/// A failed step as the cluster API's error: the same status per kind as the local API gives it.
impl From<StepError> for ClusterApiError {
    fn from(e: StepError) -> Self {
        let message = e.message_with_hint();
        match e.kind {
            StepKind::Forbidden => ClusterApiError::Forbidden(message),
            StepKind::BadRequest => ClusterApiError::BadRequest(message),
            StepKind::Conflict => ClusterApiError::Conflict(message),
            StepKind::NotFound => ClusterApiError::NotFound(message),
            StepKind::Unavailable | StepKind::Failed => ClusterApiError::Unavailable(message),
        }
    }
}

impl From<crate::db::DbError> for ClusterApiError {
    fn from(e: crate::db::DbError) -> Self {
        ClusterApiError::Internal(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    async fn answer(e: ClusterApiError) -> (u16, String) {
        let r = e.into_response();
        let status = r.status().as_u16();
        let body = r.into_body().collect().await.expect("body").to_bytes();
        (status, String::from_utf8(body.to_vec()).expect("utf-8"))
    }

    #[tokio::test]
    async fn statuses_and_bodies_are_the_local_apis() {
        let cases = [
            (
                ClusterApiError::BadRequest("b".into()),
                400,
                r#"{"error":{"kind":"bad_request","message":"b"}}"#,
            ),
            (
                ClusterApiError::Unauthorized("u".into()),
                401,
                r#"{"error":{"kind":"unauthorized","message":"u"}}"#,
            ),
            (
                ClusterApiError::Forbidden("f".into()),
                403,
                r#"{"error":{"kind":"forbidden","message":"f","violations":[]}}"#,
            ),
            (ClusterApiError::NotFound("n".into()), 404, r#"{"error":{"kind":"not_found","message":"n"}}"#),
            (ClusterApiError::Conflict("c".into()), 409, r#"{"error":{"kind":"conflict","message":"c"}}"#),
            (
                ClusterApiError::Internal("secret detail".into()),
                500,
                r#"{"error":{"kind":"internal","message":"internal error: see the journal of containerctld"}}"#,
            ),
            (
                ClusterApiError::Unavailable("a".into()),
                503,
                r#"{"error":{"kind":"unavailable","message":"a"}}"#,
            ),
        ];
        for (e, status, body) in cases {
            assert_eq!(answer(e).await, (status, body.to_owned()));
        }
    }

    #[test]
    fn step_errors_map_by_kind_with_the_hint() {
        let step = |kind| StepError { step: "s".into(), message: "m".into(), hint: "h".into(), kind };
        assert_eq!(
            ClusterApiError::from(step(StepKind::Failed)),
            ClusterApiError::Unavailable("m; h".into())
        );
        assert_eq!(ClusterApiError::from(step(StepKind::Conflict)), ClusterApiError::Conflict("m; h".into()));
        assert_eq!(
            ClusterApiError::from(step(StepKind::BadRequest)),
            ClusterApiError::BadRequest("m; h".into())
        );
        assert_eq!(
            ClusterApiError::from(step(StepKind::Forbidden)),
            ClusterApiError::Forbidden("m; h".into())
        );
        assert_eq!(ClusterApiError::from(step(StepKind::NotFound)), ClusterApiError::NotFound("m; h".into()));
        assert_eq!(
            ClusterApiError::from(step(StepKind::Unavailable)),
            ClusterApiError::Unavailable("m; h".into())
        );
    }
}
