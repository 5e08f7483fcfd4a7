//! Handlers of /api/v1/units/NAME/update and /api/v1/updates/check (docs/api.md "Updates").
//!
//! Both are long: refusals (policy, a unit that does not exist or does not validate, a bad
//! request) are answered before anything starts, as every other error; then the answer is `200`
//! with NDJSON progress lines ending in `{"result": …}` or `{"error": {…}}`. The work runs in a
//! task of its own, so a client that goes away does not stop an update half-way (nor its
//! rollback).

use super::openapi::UnitPath;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::{Extension, Json};
use serde_json::json;

use super::units::body;
use super::{ApiError, Caller};
use crate::daemon::ops;
use crate::daemon::update::failure_line;
use crate::daemon::Daemon;
use crate::policy::Action;
use crate::wire;

type D = State<Arc<Daemon>>;

#[utoipa::path(
post, path = "/units/{name}/update", tag = "updates", params(UnitPath), request_body = wire::UpdateUnit, responses((status = 200, description = "the unit is updated (or rolled back); the result is an UpdateResult: NDJSON, one `{step, state, detail}` line per step, the last `{\"result\": …}` or `{\"error\": {…}}`", content_type = "application/x-ndjson", body = wire::StreamLine))
)]
pub async fn update(
    State(d): D,
    Extension(c): Extension<Caller>,
    Path(name): Path<String>,
    b: Result<Json<wire::UpdateUnit>, JsonRejection>,
) -> Result<Response, ApiError> {
    let name = ops::name(&name)?;
    let b = body(b)?;
    let plan = d.plan_update(&c, &name, &b).await?;
    Ok(super::streamed(|p| async move {
        match d.update(&c, plan, &p).await {
            Ok(result) => json!({ "result": result }),
            Err(f) => {
                p.step(f.step, "failed", f.message.clone());
                failure_line(&f)
            }
        }
    }))
}

#[utoipa::path(
get, path = "/units/{name}/versions", tag = "updates", params(UnitPath), responses((status = 200, description = "ok", body = wire::UnitVersions))
)]
pub async fn versions(
    State(d): D,
    Extension(c): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<wire::UnitVersions>, ApiError> {
    let name = ops::name(&name)?;
    super::allow(&c, Action::CheckUpdates, name.as_str())?;
    Ok(Json(d.versions(&c, &name).await?))
}

#[utoipa::path(
post, path = "/updates/check", tag = "updates", request_body = wire::CheckUpdates, responses((status = 200, description = "the registry is asked for newer versions; the result is a list of UpdateCheck: NDJSON, one `{step, state, detail}` line per step, the last `{\"result\": …}` or `{\"error\": {…}}`", content_type = "application/x-ndjson", body = wire::StreamLine))
)]
pub async fn check(
    State(d): D,
    Extension(c): Extension<Caller>,
    b: Result<Json<wire::CheckUpdates>, JsonRejection>,
) -> Result<Response, ApiError> {
    super::allow(&c, Action::CheckUpdates, "*")?;
    let b = body(b)?;
    let names = b.units.iter().map(|n| ops::name(n)).collect::<Result<Vec<_>, _>>()?;
    for n in &names {
        if d.definition(n).is_none() {
            return Err(ApiError::NotFound(format!("no unit {n}: see containerctl list")));
        }
    }
    Ok(super::streamed(|p| async move {
        match d.check_updates(&c, &names, &p).await {
            Ok(checks) => json!({ "result": checks }),
            Err(e) => {
                json!({"error": {"kind": "failed", "step": "check", "message": e.to_string(), "hint": ""}})
            }
        }
    }))
}
