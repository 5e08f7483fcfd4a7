//! /api/v1/secrets: list (names, sizes, dates, users), set (the raw value as the body) and
//! remove. No route returns a value.

use super::openapi::SecretPath;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;

use super::{ApiError, Caller};
use crate::daemon::Daemon;
use crate::policy::Action;
use crate::secrets::MAX_BYTES;
use crate::wire;

type D = State<Arc<Daemon>>;

/// The body limit of `PUT /secrets/NAME`: a value of [`MAX_BYTES`] and one byte more, so that a
/// larger value is refused with a message of its own.
pub const BODY_LIMIT: usize = MAX_BYTES + 1;

#[utoipa::path(
get, path = "/secrets", tag = "secrets", responses((status = 200, description = "names, sizes, dates and users; never a value", body = Vec<wire::SecretInfo>))
)]
pub async fn list(
    State(d): D,
    Extension(c): Extension<Caller>,
) -> Result<Json<Vec<wire::SecretInfo>>, ApiError> {
    Ok(Json(d.secret_list(&c)?))
}

/// PUT /secrets/NAME with the value as the body (any bytes). The role is checked before the body
/// is read.
#[utoipa::path(
put, path = "/secrets/{name}", tag = "secrets", params(SecretPath), request_body(content = String, description = "the value: any bytes, 1 to 512000", content_type = "application/octet-stream"), responses((status = 200, description = "replaced", body = wire::SecretSet), (status = 201, description = "created", body = wire::SecretSet))
)]
pub async fn put(
    State(d): D,
    Extension(c): Extension<Caller>,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    d.allow_secrets(&c, Action::ManageSecrets, "secret set")?;
    let value = axum::body::to_bytes(body, BODY_LIMIT).await.map_err(|_| {
        ApiError::ValueTooLarge(format!(
            "the value is larger than {MAX_BYTES} bytes (500 KiB), the most a secret may hold"
        ))
    })?;
    if value.len() > MAX_BYTES {
        return Err(ApiError::ValueTooLarge(format!(
            "the value is larger than {MAX_BYTES} bytes (500 KiB), the most a secret may hold"
        )));
    }
    let set = d.secret_set(&c, &name, &value).await?;
    let status = if set.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(set)).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RemoveQuery {
    /// Remove it although unit files reference it (they fail at their next start).
    #[serde(default)]
    force: bool,
}

#[utoipa::path(
delete, path = "/secrets/{name}", tag = "secrets", params(SecretPath, RemoveQuery), responses((status = 200, description = "ok", body = wire::SecretRemoved))
)]
pub async fn remove(
    State(d): D,
    Extension(c): Extension<Caller>,
    Path(name): Path<String>,
    q: Result<Query<RemoveQuery>, QueryRejection>,
) -> Result<Json<wire::SecretRemoved>, ApiError> {
    let q = super::units::query(q)?;
    Ok(Json(d.secret_remove(&c, &name, q.force).await?))
}
