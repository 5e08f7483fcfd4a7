//! The member routes of the cluster API: what one member asks of another during a move. Every
//! member serves them on ADDR:5001 (the primary manager beside the cluster API). A caller must
//! present a client certificate of the cluster CA (checked by rustls in the handshake) and
//! connect from the address of an active member (asked of the primary manager).
//!
//! | route | what |
//! |---|---|
//! | `POST /cluster/v1/moves/preflight` | the checks of an offer, no side effects: blockers and how the image comes |
//! | `POST /cluster/v1/moves` | the offer with its manifest and history: staging places made, the move's id |
//! | `PUT /cluster/v1/moves/{id}/data` | the data as tar, in manifest order; a refusal removes everything staged |
//! | `POST /cluster/v1/moves/{id}/delta` | a warm move after the stop: the final manifest and the files not sent again |
//! | `POST /cluster/v1/moves/{id}/commit` | the sums: verified, put in place, the unit written and started (READY) |
//! | `GET /cluster/v1/moves/{id}` | after a stream broke: the files whole here, with their sums (a resumed pass skips them) |
//! | `DELETE /cluster/v1/moves/{id}` | gives a move up: everything staged removed |
//! | `GET /cluster/v1/moves/{id}/outcome?unit=NAME` | what became of a move here and whether the unit runs (a source that restarted after its commit asks) |
//! | `PUT /cluster/v1/images` | an image as `docker save` writes it, loaded into dockerd |
//! | `POST /cluster/v1/units/where` | whether this member has a unit (`{"unit": NAME}`), and its state |
//! | `POST /cluster/v1/drain/forward` | a drain of this member asked on another, run here for the caller it names: NDJSON progress |
//! | `POST /cluster/v1/moves/forward` | a move asked on another member, run here for the caller it names: NDJSON progress |
//!
//! JSON bodies are limited to 64 MiB (a manifest of a million entries); the data and image
//! streams are limited by the manifest and by dockerd.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Extension, Json, Router};
use futures_util::StreamExt;

use super::api_error::ClusterApiError;
use super::ops::{self, PeerNode};
use super::tls::PeerCertificate;
use crate::daemon::OpError;
use crate::daemon::{Daemon, MoveInError};
use crate::unit::UnitName;
use crate::wire::{
    DrainForward, MoveBegin, MoveBegun, MoveCommit, MoveDelta, MoveForward, MoveOffer, MovePreflight,
};

const JSON_LIMIT: usize = 64 << 20;

pub fn app(d: Arc<Daemon>) -> Router {
    Router::new()
        .route("/cluster/v1/moves/preflight", post(preflight))
        .route("/cluster/v1/moves", post(begin))
        .route("/cluster/v1/moves/{id}/data", put(data))
        .route("/cluster/v1/moves/{id}/delta", post(delta))
        .route("/cluster/v1/moves/{id}/commit", post(commit))
        .route("/cluster/v1/moves/{id}", delete(abort).get(have))
        .route("/cluster/v1/moves/{id}/outcome", get(outcome))
        .route("/cluster/v1/images", put(image))
        .route("/cluster/v1/units/where", post(unit_where))
        .route("/cluster/v1/moves/forward", post(forward))
        .route("/cluster/v1/drain/forward", post(drain_forward))
        .layer(DefaultBodyLimit::max(JSON_LIMIT))
        .with_state(d)
}

/// The calling member: a certificate of the cluster CA and the address of an active member.
async fn member(d: &Daemon, cert: PeerCertificate, peer: SocketAddr) -> Result<PeerNode, ClusterApiError> {
    if !cert.0 {
        return Err(ClusterApiError::Unauthorized(
            "member routes need the client certificate of a member of this cluster".into(),
        ));
    }
    let ip = match peer.ip() {
        std::net::IpAddr::V6(v6) => {
            v6.to_ipv4_mapped().map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4)
        }
        v4 => v4,
    }
    .to_string();
    match ops::lookup(d, &ip).await {
        Ok(n) if n.addr == ip => Ok(n),
        Ok(_) | Err(_) => {
            tracing::warn!("cluster: member route refused for {ip}: not an active member");
            Err(ClusterApiError::Forbidden(format!("{ip} is not an active member of this cluster")))
        }
    }
}

impl From<MoveInError> for ClusterApiError {
    fn from(e: MoveInError) -> Self {
        match e {
            MoveInError::Refused(m) => ClusterApiError::BadRequest(m),
            MoveInError::Conflict(m) => ClusterApiError::Conflict(m),
            MoveInError::NotFound(m) => ClusterApiError::NotFound(m),
            MoveInError::Failed(m) => ClusterApiError::Unavailable(m),
        }
    }
}

type Caller = (State<Arc<Daemon>>, Extension<PeerCertificate>, ConnectInfo<SocketAddr>);

fn bad_json(e: axum::extract::rejection::JsonRejection) -> ClusterApiError {
    ClusterApiError::BadRequest(format!("bad request: {}", e.body_text()))
}

async fn preflight(
    (State(d), Extension(cert), ConnectInfo(peer)): Caller,
    body: Result<Json<MoveOffer>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<MovePreflight>, ClusterApiError> {
    let from = member(&d, cert, peer).await?;
    let Json(offer) = body.map_err(bad_json)?;
    Ok(Json(d.move_preflight(&from.hostname, &offer).await))
}

async fn begin(
    (State(d), Extension(cert), ConnectInfo(peer)): Caller,
    body: Result<Json<MoveBegin>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<MoveBegun>, ClusterApiError> {
    let from = member(&d, cert, peer).await?;
    let Json(b) = body.map_err(bad_json)?;
    Ok(Json(MoveBegun { id: d.move_begin(&from.hostname, b).await? }))
}

async fn data(
    (State(d), Extension(cert), ConnectInfo(peer)): Caller,
    Path(id): Path<String>,
    body: axum::body::Body,
) -> Result<Response, ClusterApiError> {
    member(&d, cert, peer).await?;
    // A task of its own: a source that goes away must not cancel it half-way (hyper drops the
    // handler of a closed connection), it ends with what arrived whole kept.
    let n = tokio::spawn(async move { d.move_receive(&id, body).await })
        .await
        .map_err(|e| ClusterApiError::Internal(e.to_string()))??;
    Ok(Json(serde_json::json!({ "bytes": n })).into_response())
}

async fn delta(
    (State(d), Extension(cert), ConnectInfo(peer)): Caller,
    Path(id): Path<String>,
    body: Result<Json<MoveDelta>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ClusterApiError> {
    member(&d, cert, peer).await?;
    let Json(delta) = body.map_err(bad_json)?;
    d.move_delta(&id, delta).await?;
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}

async fn commit(
    (State(d), Extension(cert), ConnectInfo(peer)): Caller,
    Path(id): Path<String>,
    body: Result<Json<MoveCommit>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ClusterApiError> {
    member(&d, cert, peer).await?;
    let Json(c) = body.map_err(bad_json)?;
    // A task of its own: a source killed meanwhile must not leave a commit half-done here.
    let detail = tokio::spawn(async move { d.move_commit(&id, &c.sums).await })
        .await
        .map_err(|e| ClusterApiError::Internal(e.to_string()))??;
    Ok(Json(serde_json::json!({ "detail": detail })).into_response())
}

#[derive(serde::Deserialize)]
struct OutcomeQuery {
    unit: String,
}

async fn outcome(
    (State(d), Extension(cert), ConnectInfo(peer)): Caller,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<OutcomeQuery>,
) -> Result<Response, ClusterApiError> {
    member(&d, cert, peer).await?;
    let name = unit_name(&q.unit)?;
    Ok(Json(d.move_outcome(&id, &name)).into_response())
}

async fn have(
    (State(d), Extension(cert), ConnectInfo(peer)): Caller,
    Path(id): Path<String>,
) -> Result<Response, ClusterApiError> {
    member(&d, cert, peer).await?;
    Ok(Json(serde_json::json!({ "have": d.move_have(&id)? })).into_response())
}

async fn abort(
    (State(d), Extension(cert), ConnectInfo(peer)): Caller,
    Path(id): Path<String>,
) -> Result<Response, ClusterApiError> {
    member(&d, cert, peer).await?;
    d.move_abort(&id).await?;
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}

async fn unit_where(
    (State(d), Extension(cert), ConnectInfo(peer)): Caller,
    body: Result<Json<serde_json::Value>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ClusterApiError> {
    member(&d, cert, peer).await?;
    let Json(v) = body.map_err(bad_json)?;
    let name = unit_name(v["unit"].as_str().unwrap_or(""))?;
    match d.unit_here(&name) {
        Some(h) => Ok(Json(h).into_response()),
        None => Err(ClusterApiError::NotFound(format!("no unit {name} here"))),
    }
}

fn unit_name(s: &str) -> Result<UnitName, ClusterApiError> {
    UnitName::new(s).map_err(|e| ClusterApiError::BadRequest(format!("refused: {e} (rule: unit names)")))
}

impl From<OpError> for ClusterApiError {
    fn from(e: OpError) -> Self {
        match e {
            OpError::InvalidInput(m) | OpError::Invalid { message: m, .. } => ClusterApiError::BadRequest(m),
            OpError::NotFound(m) => ClusterApiError::NotFound(m),
            OpError::Conflict(m) => ClusterApiError::Conflict(m),
            OpError::Refused { message, .. } => ClusterApiError::Forbidden(message),
            OpError::JobFailed { message, .. } => ClusterApiError::Conflict(message),
            OpError::Unavailable(m) | OpError::RegistryFailed(m) => ClusterApiError::Unavailable(m),
            OpError::RegistryRefused(m) => ClusterApiError::Conflict(m),
            OpError::Internal(m) => ClusterApiError::Internal(m),
        }
    }
}

/// A move asked on member `from`: planned here for the caller it names (refusals answer with
/// their status), then run, its progress streamed back as NDJSON.
async fn forward(
    (State(d), Extension(cert), ConnectInfo(peer)): Caller,
    body: Result<Json<MoveForward>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ClusterApiError> {
    let from = member(&d, cert, peer).await?;
    let Json(f) = body.map_err(bad_json)?;
    let name = unit_name(&f.unit)?;
    let caller = crate::daemon::move_in::caller_from(&f.caller, &from.hostname)
        .map_err(|e| ClusterApiError::Forbidden(format!("refused: {e}")))?;
    let plan = d.plan_move(&caller, &name, &f.request).await?;
    tracing::info!("cluster: a move of {name} asked on {} by {}", from.hostname, caller.actor);
    let (p, rx) = crate::progress::Progress::new();
    let last = p.clone();
    tokio::spawn(async move {
        let line = match d.move_unit(&caller, plan, &p).await {
            Ok(result) => serde_json::json!({ "result": result }),
            Err(f) => {
                p.step(f.step, "failed", f.message.clone());
                crate::daemon::move_out::failure_line(&f)
            }
        };
        last.send(line);
    });
    let lines = crate::progress::ndjson_lines(rx);
    Ok(([(axum::http::header::CONTENT_TYPE, "application/x-ndjson")], axum::body::Body::from_stream(lines))
        .into_response())
}

/// A drain of this member asked on member `from`, for the caller it names: NDJSON progress.
async fn drain_forward(
    (State(d), Extension(cert), ConnectInfo(peer)): Caller,
    body: Result<Json<DrainForward>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ClusterApiError> {
    let from = member(&d, cert, peer).await?;
    let Json(f) = body.map_err(bad_json)?;
    let caller = crate::daemon::move_in::caller_from(&f.caller, &from.hostname)
        .map_err(|e| ClusterApiError::Forbidden(format!("refused: {e}")))?;
    let others = match d.check_drain(&crate::cluster::hostname()).await? {
        crate::daemon::drain::DrainAt::Here(others) => others,
        crate::daemon::drain::DrainAt::Other(_) => {
            return Err(ClusterApiError::Conflict("this member is not the node to drain".into()))
        }
    };
    tracing::info!("cluster: a drain of this host asked on {} by {}", from.hostname, caller.actor);
    let (p, rx) = crate::progress::Progress::new();
    let last = p.clone();
    tokio::spawn(async move {
        let result = d.drain(&caller, &f.request, others, &p).await;
        last.send(serde_json::json!({ "result": result }));
    });
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        axum::body::Body::from_stream(crate::progress::ndjson_lines(rx)),
    )
        .into_response())
}

async fn image(
    (State(d), Extension(cert), ConnectInfo(peer)): Caller,
    body: axum::body::Body,
) -> Result<Response, ClusterApiError> {
    let from = member(&d, cert, peer).await?;
    let docker = d.docker().ok_or_else(|| ClusterApiError::Unavailable("dockerd is not reachable".into()))?;
    let stream = body.into_data_stream();
    let mut load = docker.import_image_stream(
        bollard::query_parameters::ImportImageOptionsBuilder::new().quiet(true).build(),
        stream,
        None,
    );
    while let Some(line) = load.next().await {
        match line {
            Ok(info) if info.error_detail.is_some() => {
                let why = info.error_detail.and_then(|e| e.message).unwrap_or_default();
                return Err(ClusterApiError::BadRequest(format!("dockerd refused the image: {why}")));
            }
            Ok(_) => {}
            Err(e) => return Err(ClusterApiError::BadRequest(format!("dockerd refused the image: {e}"))),
        }
    }
    tracing::info!("cluster: an image was loaded from {} for a move", from.hostname);
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}
