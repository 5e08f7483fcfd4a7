//! Handlers of /api/v1/registries (docs/api.md "Registry credentials"): admin only, every verb.
//! REGISTRY holds `/` and `:`, so it travels in the body or a query parameter, never in the path.
//! A password arrives in one request body and is in no answer, log line or audit row.

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};

use super::{ApiError, Caller};
use crate::daemon::Daemon;
use crate::policy::Action;
use crate::wire::{RegistryInfo, RegistryLogin, RegistryRef, RegistryRemoved, RegistryTested};

type D = State<Arc<Daemon>>;

fn allow(c: &Caller) -> Result<(), ApiError> {
    super::allow(c, Action::ManageRegistries, "*")
}

/// A JSON body whose refusal never quotes what was sent (it may hold a password).
fn body<T>(b: Result<Json<T>, JsonRejection>, shape: &str) -> Result<T, ApiError> {
    match b {
        Ok(Json(v)) => Ok(v),
        Err(JsonRejection::BytesRejection(e)) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Err(ApiError::TooLarge)
        }
        Err(_) => Err(ApiError::BadRequest(format!("bad request body: expected {shape}"))),
    }
}

/// GET /registries.
#[utoipa::path(
get, path = "/registries", tag = "registries", responses((status = 200, description = "ok", body = Vec<RegistryInfo>))
)]
pub async fn list(State(d): D, Extension(c): Extension<Caller>) -> Result<Json<Vec<RegistryInfo>>, ApiError> {
    allow(&c)?;
    Ok(Json(d.registries()?))
}

/// POST /registries: log in and store.
#[utoipa::path(
post, path = "/registries", tag = "registries", request_body = RegistryLogin, responses((status = 201, description = "verified with the registry and stored", body = RegistryInfo))
)]
pub async fn login(
    State(d): D,
    Extension(c): Extension<Caller>,
    b: Result<Json<RegistryLogin>, JsonRejection>,
) -> Result<(StatusCode, Json<RegistryInfo>), ApiError> {
    allow(&c)?;
    let b = body(b, r#"{"registry": R, "username": U, "password": P} with strings only"#)?;
    let info = d.registry_login(&c, &b.registry, &b.username, &b.password).await?;
    Ok((StatusCode::CREATED, Json(info)))
}

/// POST /registries/test: verify a stored credential again.
#[utoipa::path(
post, path = "/registries/test", tag = "registries", request_body = RegistryRef, responses((status = 200, description = "ok", body = RegistryTested))
)]
pub async fn test(
    State(d): D,
    Extension(c): Extension<Caller>,
    b: Result<Json<RegistryRef>, JsonRejection>,
) -> Result<Json<RegistryTested>, ApiError> {
    allow(&c)?;
    let b = body(b, r#"{"registry": R}"#)?;
    Ok(Json(d.registry_test(&c, &b.registry).await?))
}

/// DELETE /registries?registry=R: log out.
#[utoipa::path(
delete, path = "/registries", tag = "registries", params(RegistryRef), responses((status = 200, description = "ok", body = RegistryRemoved))
)]
pub async fn logout(
    State(d): D,
    Extension(c): Extension<Caller>,
    q: Result<Query<RegistryRef>, QueryRejection>,
) -> Result<Json<RegistryRemoved>, ApiError> {
    allow(&c)?;
    let Ok(Query(q)) = q else {
        return Err(ApiError::BadRequest("bad query: expected ?registry=REGISTRY (percent-encoded)".into()));
    };
    Ok(Json(d.registry_logout(&c, &q.registry).await?))
}
