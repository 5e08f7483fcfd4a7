//! Handlers of /api/v1 (docs/api.md). Thin: parse the request, call the daemon, shape the reply.

use super::openapi::{RevisionPath, UnitPath};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;

use super::{ApiError, Caller};
use crate::daemon::ops::{self, Applied, JobDone};
use crate::daemon::Daemon;
use crate::policy::Action;
use crate::wire;

type D = State<Arc<Daemon>>;
type R<T> = Result<Json<T>, ApiError>;

/// A JSON body, with axum's rejections turned into our error shape.
pub(super) fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    match b {
        Ok(Json(v)) => Ok(v),
        Err(JsonRejection::BytesRejection(e)) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Err(ApiError::TooLarge)
        }
        Err(e) => Err(ApiError::BadRequest(format!("bad request body: {}", e.body_text()))),
    }
}

/// Query parameters, with axum's rejections turned into our error shape.
pub(super) fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(v)| v).map_err(|e| ApiError::BadRequest(format!("bad query: {}", e.body_text())))
}

/// The most entries `GET /audit` and `GET /units/NAME/events` return at once.
const MAX_ENTRIES: u32 = 10_000;
/// The most journal lines `GET /units/NAME/logs` returns at once (before following).
const MAX_LOG_LINES: u32 = 100_000;

/// `value` of query parameter `field`, or `default`; more than `max` is refused, naming the rule.
fn at_most(field: &str, value: Option<u32>, default: u32, max: u32) -> Result<u32, ApiError> {
    match value {
        Some(v) if v > max => Err(ApiError::BadRequest(format!("{field}={v}: {field} is at most {max}"))),
        Some(v) => Ok(v),
        None => Ok(default),
    }
}

fn read(caller: &Caller, name: &str) -> Result<(), ApiError> {
    super::allow(caller, Action::Read, name)
}

#[utoipa::path(
get, path = "/units", tag = "units", responses((status = 200, description = "every unit, by name", body = Vec<wire::Unit>))
)]
pub async fn list(State(d): D, Extension(c): Extension<Caller>) -> Result<Response, ApiError> {
    read(&c, "*")?;
    // Kept rendered by the daemon (`daemon::listing`), for viewers with their errors redacted.
    let json = d.list_json(crate::policy::reads_plain_values(c.role));
    Ok(([(header::CONTENT_TYPE, "application/json")], Body::from(bytes::Bytes::from_owner(ArcText(json))))
        .into_response())
}

/// A shared text as a response body, without a copy.
struct ArcText(Arc<str>);

impl AsRef<[u8]> for ArcText {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

#[utoipa::path(
get, path = "/units/{name}", tag = "units", params(UnitPath), responses((status = 200, description = "ok", body = wire::UnitDetail))
)]
pub async fn detail(State(d): D, Extension(c): Extension<Caller>, Path(name): Path<String>) -> R<Value> {
    let name = ops::name(&name)?;
    read(&c, name.as_str())?;
    let view = d.view(&name).ok_or_else(|| ApiError::NotFound(format!("no unit {name}")))?;
    let view = super::redact::views(&d, &c, vec![view]).pop().ok_or_else(|| no_unit(&name))?;
    let text = super::redact::text(&c, d.definition(&name).map(|def| def.text).unwrap_or_default());
    let events = d.db().events(Some(name.as_str()), 20)?;
    let log = crate::logs::tail(&name, 10).await;
    let log_dropped = crate::logs::latest_drop(&name).await;
    let mut v = serde_json::to_value(view).map_err(|e| ApiError::Internal(e.to_string()))?;
    if let Value::Object(m) = &mut v {
        m.insert("text".into(), json!(text));
        m.insert("events".into(), json!(events));
        m.insert("log".into(), json!(log));
        m.insert("log_dropped".into(), json!(log_dropped));
    }
    Ok(Json(v))
}

#[utoipa::path(
get, path = "/units/{name}/file", tag = "units", params(UnitPath), responses((status = 200, description = "ok", body = wire::UnitFile))
)]
pub async fn file(State(d): D, Extension(c): Extension<Caller>, Path(name): Path<String>) -> R<Value> {
    let name = ops::name(&name)?;
    read(&c, name.as_str())?;
    let def = d.definition(&name).ok_or_else(|| no_unit(&name))?;
    let revision = d.db().latest_revision(name.as_str())?.map(|r| r.rev);
    let changed_on_disk = d.view(&name).is_some_and(|v| v.changed_on_disk);
    Ok(Json(json!(wire::UnitFile {
        path: def.path.display().to_string(),
        text: super::redact::text(&c, def.text),
        revision,
        changed_on_disk
    })))
}

/// A unit with neither a file nor a recorded revision.
fn no_unit(name: &crate::unit::UnitName) -> ApiError {
    ApiError::NotFound(format!("no unit {name}: list units with containerctl list"))
}

#[utoipa::path(
put, path = "/units/{name}/file", tag = "units", params(UnitPath), request_body = wire::PutFile, responses((status = 200, description = "written (or unchanged), validated and recorded", body = wire::Applied))
)]
pub async fn put_file(
    State(d): D,
    Extension(c): Extension<Caller>,
    Path(name): Path<String>,
    b: Result<Json<wire::PutFile>, JsonRejection>,
) -> R<Applied> {
    let name = ops::name(&name)?;
    let b = body(b)?;
    Ok(Json(d.apply_text(&c, &name, b.text, "edit", b.restart).await?))
}

#[utoipa::path(
post, path = "/units/{name}/set", tag = "units", params(UnitPath), request_body = wire::SetUnit, responses((status = 200, description = "ok", body = wire::Applied))
)]
pub async fn set(
    State(d): D,
    Extension(c): Extension<Caller>,
    Path(name): Path<String>,
    b: Result<Json<wire::SetUnit>, JsonRejection>,
) -> R<Applied> {
    let name = ops::name(&name)?;
    let b = body(b)?;
    if b.assignments.is_empty() && b.unset.is_empty() {
        return Err(ApiError::BadRequest("give at least one KEY=VALUE or a key to unset".into()));
    }
    Ok(Json(d.set(&c, &name, &b.assignments, &b.unset, "set", b.restart).await?))
}

#[utoipa::path(
post, path = "/units", tag = "units", request_body = wire::NewUnit, responses((status = 201, description = "created", body = wire::Applied))
)]
pub async fn create(
    State(d): D,
    Extension(c): Extension<Caller>,
    b: Result<Json<wire::NewUnit>, JsonRejection>,
) -> Result<Response, ApiError> {
    let b = body(b)?;
    let name = ops::name(&b.name)?;
    let text = match b.text {
        Some(text) if b.image.is_empty() && b.version.is_empty() && b.args.is_empty() => text,
        Some(_) => {
            return Err(ApiError::BadRequest("give either text or image, version and args, not both".into()))
        }
        None if b.image.is_empty() || b.version.is_empty() => {
            return Err(ApiError::BadRequest("give image and version, or the unit file's text".into()))
        }
        None => ops::new_unit_text(&b.image, &b.version, &b.args),
    };
    let applied = d.create(&c, &name, text).await?;
    Ok((StatusCode::CREATED, Json(applied)).into_response())
}

/// `POST /import`: units given by the client, or converted from a pasted Compose file.
#[utoipa::path(
post, path = "/import", tag = "import", request_body = wire::ImportUnits, responses((status = 200, description = "every unit written, or none", body = wire::Imported))
)]
pub async fn import(
    State(d): D,
    Extension(c): Extension<Caller>,
    b: Result<Json<wire::ImportUnits>, JsonRejection>,
) -> R<wire::Imported> {
    let b = body(b)?;
    let (units, notes) = match (b.compose, b.units.is_empty()) {
        (Some(compose), true) => {
            crate::api::allow(&c, crate::policy::Action::Edit, "")?;
            d.convert_compose(&compose)?
        }
        (None, false) => (b.units, Vec::new()),
        _ => return Err(ApiError::BadRequest("give either units or compose, not both".into())),
    };
    Ok(Json(d.import(&c, units, notes, b.dry_run, b.start).await?))
}

#[utoipa::path(
delete, path = "/units/{name}", tag = "units", params(UnitPath), responses((status = 200, description = "ok", body = wire::Removed))
)]
pub async fn remove(State(d): D, Extension(c): Extension<Caller>, Path(name): Path<String>) -> R<Value> {
    let name = ops::name(&name)?;
    d.remove(&c, &name).await?;
    Ok(Json(json!(wire::Removed { name: name.to_string(), removed: true })))
}

#[utoipa::path(
post, path = "/units/{name}/start", tag = "units", params(UnitPath), responses((status = 200, description = "ok", body = wire::JobDone))
)]
pub async fn start(State(d): D, Extension(c): Extension<Caller>, Path(name): Path<String>) -> R<JobDone> {
    Ok(Json(d.job(&c, &ops::name(&name)?, Action::Start).await?))
}

#[utoipa::path(
post, path = "/units/{name}/stop", tag = "units", params(UnitPath), responses((status = 200, description = "ok", body = wire::JobDone))
)]
pub async fn stop(State(d): D, Extension(c): Extension<Caller>, Path(name): Path<String>) -> R<JobDone> {
    Ok(Json(d.job(&c, &ops::name(&name)?, Action::Stop).await?))
}

#[utoipa::path(
post, path = "/units/{name}/restart", tag = "units", params(UnitPath), responses((status = 200, description = "ok", body = wire::JobDone))
)]
pub async fn restart(State(d): D, Extension(c): Extension<Caller>, Path(name): Path<String>) -> R<JobDone> {
    Ok(Json(d.job(&c, &ops::name(&name)?, Action::Restart).await?))
}

#[utoipa::path(
post, path = "/units/{name}/reset-failed", tag = "units", params(UnitPath), responses((status = 200, description = "ok", body = wire::ResetFailed))
)]
pub async fn reset_failed(
    State(d): D,
    Extension(c): Extension<Caller>,
    Path(name): Path<String>,
) -> R<wire::ResetFailed> {
    Ok(Json(d.reset_failed(&c, Some(&ops::name(&name)?)).await?))
}

#[utoipa::path(
post, path = "/units/reset-failed", tag = "units", responses((status = 200, description = "ok", body = wire::ResetFailed))
)]
pub async fn reset_failed_all(State(d): D, Extension(c): Extension<Caller>) -> R<wire::ResetFailed> {
    super::allow(&c, Action::ResetFailed, "*")?;
    Ok(Json(d.reset_failed(&c, None).await?))
}

#[utoipa::path(
post, path = "/units/{name}/enable", tag = "units", params(UnitPath), responses((status = 200, description = "ok", body = wire::Applied))
)]
pub async fn enable(State(d): D, Extension(c): Extension<Caller>, Path(name): Path<String>) -> R<Applied> {
    Ok(Json(d.enable(&c, &ops::name(&name)?, true).await?))
}

#[utoipa::path(
post, path = "/units/{name}/disable", tag = "units", params(UnitPath), responses((status = 200, description = "ok", body = wire::Applied))
)]
pub async fn disable(State(d): D, Extension(c): Extension<Caller>, Path(name): Path<String>) -> R<Applied> {
    Ok(Json(d.enable(&c, &ops::name(&name)?, false).await?))
}

#[utoipa::path(
get, path = "/units/{name}/history", tag = "units", params(UnitPath), responses((status = 200, description = "newest first", body = Vec<wire::Revision>))
)]
pub async fn history(State(d): D, Extension(c): Extension<Caller>, Path(name): Path<String>) -> R<Value> {
    let name = ops::name(&name)?;
    read(&c, name.as_str())?;
    let revisions = d.db().revisions(name.as_str())?;
    if revisions.is_empty() && d.definition(&name).is_none() {
        return Err(no_unit(&name));
    }
    Ok(Json(json!(revisions)))
}

#[utoipa::path(
get, path = "/units/{name}/revisions/{rev}", tag = "units", params(RevisionPath), responses((status = 200, description = "ok", body = crate::db::Revision))
)]
pub async fn revision(
    State(d): D,
    Extension(c): Extension<Caller>,
    Path((name, rev)): Path<(String, String)>,
) -> R<Value> {
    let name = ops::name(&name)?;
    read(&c, name.as_str())?;
    let rev: u32 =
        rev.parse().map_err(|_| ApiError::BadRequest(format!("`{rev}` is not a revision number")))?;
    let r = d.db().revision(name.as_str(), rev)?;
    let mut r = r.ok_or_else(|| ApiError::NotFound(format!("unit {name} has no revision {rev}")))?;
    r.text = super::redact::text(&c, r.text);
    Ok(Json(json!(r)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiffQuery {
    /// The older revision (default: the latest whose text differs from `to`).
    from: Option<u32>,
    /// The newer revision (default: the current file).
    to: Option<u32>,
}

#[utoipa::path(
get, path = "/units/{name}/diff", tag = "units", params(UnitPath, DiffQuery), responses((status = 200, description = "ok", body = wire::Diff))
)]
pub async fn diff(
    State(d): D,
    Extension(c): Extension<Caller>,
    Path(name): Path<String>,
    q: Result<Query<DiffQuery>, QueryRejection>,
) -> R<Value> {
    let q = query(q)?;
    let name = ops::name(&name)?;
    read(&c, name.as_str())?;
    let definition = d.definition(&name);
    let revisions = d.db().revisions(name.as_str())?;
    if revisions.is_empty() && definition.is_none() {
        return Err(no_unit(&name));
    }
    let current = definition.map(|def| def.text).unwrap_or_default();
    let text_of = |rev: u32| -> Result<String, ApiError> {
        let r = d.db().revision(name.as_str(), rev)?;
        r.map(|r| r.text).ok_or_else(|| ApiError::NotFound(format!("unit {name} has no revision {rev}")))
    };
    let (to_label, to_text) = match q.to {
        Some(rev) => (json!(rev), text_of(rev)?),
        None => (json!("current"), current.clone()),
    };
    let from = match q.from {
        Some(rev) => rev,
        None => {
            // The latest revision whose text differs from the target.
            let mut pick = None;
            for r in &revisions {
                if q.to.is_some_and(|t| r.rev >= t) {
                    continue;
                }
                if text_of(r.rev)? != to_text {
                    pick = Some(r.rev);
                    break;
                }
            }
            pick.ok_or_else(|| {
                ApiError::NotFound(format!("unit {name} has no earlier revision to compare with"))
            })?
        }
    };
    let from_text = super::redact::text(&c, text_of(from)?);
    let to_text = super::redact::text(&c, to_text);
    let diff = similar::TextDiff::from_lines(&from_text, &to_text)
        .unified_diff()
        .context_radius(3)
        .header(&format!("{name} revision {from}"), &format!("{name} {to_label}"))
        .to_string();
    Ok(Json(json!({"from": from, "to": to_label, "diff": diff})))
}

#[utoipa::path(
post, path = "/units/{name}/revert", tag = "units", params(UnitPath), request_body = wire::RevertUnit, responses((status = 200, description = "ok", body = wire::Applied))
)]
pub async fn revert(
    State(d): D,
    Extension(c): Extension<Caller>,
    Path(name): Path<String>,
    b: Result<Json<wire::RevertUnit>, JsonRejection>,
) -> R<Applied> {
    let name = ops::name(&name)?;
    let b = body(b)?;
    Ok(Json(d.revert(&c, &name, b.rev, b.restart).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// The last N lines (default 50, at most 100000).
    #[param(maximum = 100_000)]
    n: Option<u32>,
    /// Keep the stream open and send new lines as they come.
    #[serde(default)]
    follow: bool,
}

#[utoipa::path(
get, path = "/units/{name}/logs", tag = "units", params(UnitPath, LogQuery), responses((status = 200, description = "one journal entry per line; with follow=true the stream stays open", content_type = "application/x-ndjson", body = wire::LogLine))
)]
pub async fn logs(
    State(d): D,
    Extension(c): Extension<Caller>,
    Path(name): Path<String>,
    q: Result<Query<LogQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let name = ops::name(&name)?;
    read(&c, name.as_str())?;
    if d.view(&name).is_none() {
        return Err(ApiError::NotFound(format!("no unit {name}")));
    }
    let n = at_most("n", q.n, 50, MAX_LOG_LINES)?;
    // A follower holds its place (and its journalctl) until the client goes away.
    let place = match q.follow {
        true => Some(d.log_followers.enter().ok_or_else(|| {
            ApiError::TooMany(format!(
                "{} log followers are open: stop one (logs --follow) and try again",
                d.log_followers.open()
            ))
        })?),
        false => None,
    };
    let mut child = crate::logs::spawn(&name, n, q.follow)
        .map_err(|e| ApiError::Internal(format!("cannot run journalctl: {e}")))?;
    let stdout = child.stdout.take().ok_or_else(|| ApiError::Internal("journalctl has no stdout".into()))?;
    let lines = tokio::io::BufReader::new(stdout).lines();
    let stream =
        futures_util::stream::unfold((lines, child, place), |(mut lines, child, place)| async move {
            loop {
                match lines.next_line().await {
                    Ok(Some(line)) => {
                        if let Some(l) = crate::logs::parse_json_line(&line) {
                            let mut out = serde_json::to_vec(&l).unwrap_or_default();
                            out.push(b'\n');
                            return Some((Ok::<_, std::io::Error>(out), (lines, child, place)));
                        }
                    }
                    _ => return None,
                }
            }
        });
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(stream)).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Limit {
    /// At most this many entries (default 100, at most 10000).
    #[param(maximum = 10_000)]
    limit: Option<u32>,
    /// Only the entries of this unit.
    unit: Option<String>,
}

#[utoipa::path(
get, path = "/units/{name}/events", tag = "units", params(UnitPath, ("limit" = Option<u32>, Query, maximum = 10_000, description = "at most this many (default 50, at most 10000)")), responses((status = 200, description = "newest first", body = Vec<wire::Event>))
)]
pub async fn events(
    State(d): D,
    Extension(c): Extension<Caller>,
    Path(name): Path<String>,
    q: Result<Query<Limit>, QueryRejection>,
) -> R<Value> {
    let q = query(q)?;
    let name = ops::name(&name)?;
    read(&c, name.as_str())?;
    let limit = at_most("limit", q.limit, 50, MAX_ENTRIES)?;
    Ok(Json(json!(d.db().events(Some(name.as_str()), limit)?)))
}

#[utoipa::path(
get, path = "/devices", tag = "units", responses((status = 200, description = "ok", body = Vec<wire::Device>))
)]
pub async fn devices(State(d): D, Extension(c): Extension<Caller>) -> R<Value> {
    read(&c, "*")?;
    let units: Vec<(String, crate::unit::Unit)> = d
        .definitions()
        .into_iter()
        .filter_map(|(n, def)| def.unit.ok().map(|u| (n.to_string(), u)))
        .collect();
    Ok(Json(json!(crate::devices::scan(crate::devices::BY_ID_DIRS, &units))))
}

#[utoipa::path(
get, path = "/audit", tag = "audit", params(Limit), responses((status = 200, description = "newest first (admin only)", body = Vec<crate::db::AuditEntry>))
)]
pub async fn audit(
    State(d): D,
    Extension(c): Extension<Caller>,
    q: Result<Query<Limit>, QueryRejection>,
) -> R<Value> {
    let q = query(q)?;
    super::allow(&c, Action::ReadAudit, "*")?;
    let limit = at_most("limit", q.limit, 100, MAX_ENTRIES)?;
    let unit = q.unit.as_deref().map(ops::name).transpose()?;
    let mut entries = d.db().audit(unit.as_ref().map(|u| u.as_str()), limit)?;
    // Admins only today; should the audit trail open to others, they read it redacted.
    for e in &mut entries {
        e.before = e.before.take().map(|t| super::redact::text(&c, t));
        e.after = e.after.take().map(|t| super::redact::text(&c, t));
    }
    Ok(Json(json!(entries)))
}

/// POST /units/NAME/preview: what `PUT …/file` would say and change, without writing anything.
#[utoipa::path(
post, path = "/units/{name}/preview", tag = "units", params(UnitPath), request_body = wire::PreviewUnit, responses((status = 200, description = "what a PUT of this text would say and change; nothing is written", body = wire::Preview))
)]
pub async fn preview(
    State(d): D,
    Extension(c): Extension<Caller>,
    Path(name): Path<String>,
    b: Result<Json<wire::PreviewUnit>, JsonRejection>,
) -> R<wire::Preview> {
    let name = ops::name(&name)?;
    read(&c, name.as_str())?;
    let b = body(b)?;
    let p = d.preview(&c, &name, &b.text);
    let diagnostics = p
        .diagnostics
        .iter()
        .map(|x| wire::WireDiagnostic {
            file: Some(x.file.clone()),
            line: Some(x.line),
            column: Some(x.column),
            message: x.message.clone(),
            hint: x.hint.clone(),
        })
        .collect();
    let violations =
        serde_json::from_value(json!(p.violations)).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(wire::Preview {
        valid: p.diagnostics.is_empty(),
        diagnostics,
        violations,
        diff: p.diff,
        changed: p.changed,
        warnings: p.warnings,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_limit_over_its_maximum_is_refused_naming_it() {
        assert_eq!(at_most("limit", None, 50, MAX_ENTRIES).expect("default"), 50);
        assert_eq!(at_most("limit", Some(MAX_ENTRIES), 50, MAX_ENTRIES).expect("the maximum"), MAX_ENTRIES);
        let e = at_most("n", Some(2_147_483_648), 50, MAX_LOG_LINES).expect_err("over the maximum");
        assert!(matches!(&e, ApiError::BadRequest(m) if m == "n=2147483648: n is at most 100000"), "{e:?}");
    }
}
