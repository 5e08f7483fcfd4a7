//! Handler of /api/v1/units/NAME/move (docs/api.md "Moves"). Refusals (policy, a unit that
//! does not exist, a target that is not a member or cannot be asked) are answered before
//! anything starts; then the answer is `200` with NDJSON progress lines ending in
//! `{"result": …}` (a dry run's plan and blockers too) or `{"error": {…}}`. The move runs in a
//! task of its own, so a client that goes away does not stop it half-way (nor its undo).

use super::openapi::UnitPath;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::{Extension, Json};
use serde_json::json;

use super::units::body;
use super::{ApiError, Caller};
use crate::daemon::move_out::failure_line;
use crate::daemon::{ops, Daemon};
use crate::policy::Action;
use crate::wire;

#[utoipa::path(
post, path = "/units/{name}/move", tag = "moves", params(UnitPath), request_body = wire::MoveUnit, responses((status = 200, description = "the unit moves to another member; the result is a MoveResult: NDJSON, one `{step, state, detail}` line per step, the last `{\"result\": …}` or `{\"error\": {…}}`", content_type = "application/x-ndjson", body = wire::StreamLine))
)]
pub async fn move_unit(
    State(d): State<Arc<Daemon>>,
    Extension(c): Extension<Caller>,
    Path(name): Path<String>,
    b: Result<Json<wire::MoveUnit>, JsonRejection>,
) -> Result<Response, ApiError> {
    let name = ops::name(&name)?;
    super::allow(&c, Action::Edit, name.as_str())?;
    let b = body(b)?;
    let plan = d.plan_move(&c, &name, &b).await?;
    Ok(super::streamed(|p| async move {
        match d.move_unit(&c, plan, &p).await {
            Ok(result) => json!({ "result": result }),
            Err(f) => {
                p.step(f.step, "failed", f.message.clone());
                failure_line(&f)
            }
        }
    }))
}
