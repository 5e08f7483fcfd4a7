//! Handlers of /api/v1/units/NAME/move and /api/v1/cluster/nodes/NODE/drain (docs/api.md "Moves"). Refusals (policy, a unit that
//! does not exist, a target that is not a member or cannot be asked) are answered before
//! anything starts; then the answer is `200` with NDJSON progress lines ending in
//! `{"result": …}` (a dry run's plan and blockers too) or `{"error": {…}}`. A unit this host
//! does not have is looked for on the other members and its move forwarded there. The move runs in a
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
use crate::daemon::drain::DrainAt;
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
    if d.definition(&name).is_none() && d.cluster.state().is_some() {
        // Not here: the member that has it runs the move, for this caller.
        let host = d.unit_host(&name).await?;
        return Ok(super::streamed(|p| async move { d.forward_move(&c, &host, &name, &b, &p).await }));
    }
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

#[utoipa::path(
post, path = "/cluster/nodes/{node}/drain", tag = "moves", params(NodePath), request_body = wire::DrainNode, responses((status = 200, description = "every movable unit of NODE moved off it: NDJSON, one `{step, state, detail}` line per step, the last `{\"result\": DrainResult}` or `{\"error\": {…}}`", content_type = "application/x-ndjson", body = wire::StreamLine))
)]
/// `POST /cluster/nodes/NODE/drain`: every movable unit of this node (NODE names this host) moved
/// off it; each unit's move checks the caller's rights on it as a move does.
pub async fn drain(
    State(d): State<Arc<Daemon>>,
    Extension(c): Extension<Caller>,
    Path(node): Path<String>,
    b: Result<Json<wire::DrainNode>, JsonRejection>,
) -> Result<Response, ApiError> {
    super::allow(&c, Action::Edit, "*")?;
    let b = body(b)?;
    match d.check_drain(&node).await? {
        DrainAt::Here(others) => {
            Ok(super::streamed(|p| async move { json!({ "result": d.drain(&c, &b, others, &p).await }) }))
        }
        DrainAt::Other(host) => {
            Ok(super::streamed(|p| async move { d.forward_drain(&c, &host, &b, &p).await }))
        }
    }
}

/// `{node}` of /cluster/nodes/{node}/drain.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct NodePath {
    /// The node to drain: its id or host name.
    node: String,
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MovesQuery {
    /// At most this many moves, newest first (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// The answer of `GET /moves`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct MovesList {
    /// This host's name.
    pub host: String,
    pub moves: Vec<crate::db::MoveRecord>,
}

#[utoipa::path(
get, path = "/moves", tag = "moves", params(MovesQuery), responses((status = 200, description = "this host's moves, as source or target, newest first", body = MovesList))
)]
/// `GET /moves?limit=N`: this host's moves, as source or target, newest first (running ones too).
pub async fn list(
    State(d): State<Arc<Daemon>>,
    Extension(c): Extension<Caller>,
    q: Result<axum::extract::Query<MovesQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<MovesList>, ApiError> {
    let q = super::units::query(q)?;
    super::allow(&c, Action::Read, "*")?;
    let limit = match q.limit {
        None => 100,
        Some(n @ 1..=1000) => n,
        Some(n) => return Err(ApiError::BadRequest(format!("limit={n}: limit is from 1 to 1000"))),
    };
    Ok(Json(MovesList { host: crate::cluster::hostname(), moves: d.db().moves(limit)? }))
}
