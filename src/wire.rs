//! The API's JSON shapes (docs/api.md), declared once: containerctld serializes them and the
//! client deserializes them, so the two cannot drift apart. Serde derives live here, at the edge,
//! not on domain types.
//!
//! Answers accept missing fields (and `null` for scalars), so that a client talking to a daemon
//! that adds or omits a field keeps working.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::policy::Role;

/// A policy rule that refused a definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Violation {
    #[serde(default)]
    pub rule: String,
    #[serde(default)]
    pub message: String,
    /// The key refused (`container.ports[0]`), when the rule concerns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `FILE:LINE:COLUMN` of that key in the refused text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The line of the refused text that `location` points at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_line: Option<String>,
    /// What an admin can change to allow it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// A unit-file diagnostic as the API sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WireDiagnostic {
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub line: Option<usize>,
    #[serde(default)]
    pub column: Option<usize>,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub hint: Option<String>,
}

/// A journal line: `job_failed` may send plain strings or `LogLine` objects; both are accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum LogEntry {
    Line(LogLine),
    Text(String),
}

/// `Unit` (GET /units): a unit's definition summary, its systemd state and live samples.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct Unit {
    pub name: String,
    pub description: Option<String>,
    pub image: Option<String>,
    pub version: Option<String>,
    /// The file the definition was read from.
    pub source: Option<String>,
    #[serde(default = "yes")]
    pub valid: bool,
    pub error: Option<String>,
    pub enabled: bool,
    pub protected: bool,
    pub active_state: String,
    pub sub_state: String,
    #[serde(deserialize_with = "null_as_default")]
    pub result: String,
    #[serde(deserialize_with = "null_as_default")]
    pub status_text: String,
    #[serde(deserialize_with = "null_as_default")]
    pub n_restarts: u32,
    /// systemd's ExecMainCode: 1 exited, 2 killed, 3 dumped core.
    #[serde(deserialize_with = "null_as_default")]
    pub exit_code: i32,
    /// systemd's ExecMainStatus: the exit status, or the signal number when killed.
    #[serde(deserialize_with = "null_as_default")]
    pub exit_status: i32,
    #[serde(deserialize_with = "null_as_default")]
    pub main_pid: u32,
    /// When the unit entered its current state, µs since the epoch.
    #[serde(deserialize_with = "null_as_default")]
    pub since_us: u64,
    pub health: Option<String>,
    pub cpu_percent: Option<f64>,
    pub memory_bytes: Option<u64>,
    /// The file on disk is not what systemd loaded: `systemctl daemon-reload` loads it.
    #[serde(deserialize_with = "null_as_default")]
    pub changed_on_disk: bool,
    /// What the last update check found and how the last update ended; None when the unit was
    /// never checked nor updated.
    pub update: Option<UnitUpdate>,
}

/// A unit's update state, as lists show it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct UnitUpdate {
    /// The newest version the unit's policy allows, from the last check (None: none newer).
    pub available: Option<String>,
    /// When the last check ran, ms since the epoch.
    pub checked_at_ms: Option<i64>,
    /// Why the last check could not tell (the registry unreachable, …).
    pub check_error: Option<String>,
    pub last: Option<LastUpdate>,
}

/// How the last update of a unit ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct LastUpdate {
    /// `running`, `updated`, `rolled_back`, `rollback_failed`, `failed`, `unchanged` or
    /// `interrupted`.
    pub outcome: String,
    pub from_version: String,
    pub to_version: String,
    pub to_digest: Option<String>,
    /// Why it rolled back or failed.
    pub reason: String,
    pub actor: String,
    pub at_ms: i64,
}

/// `null` read as the type's default, for daemons that send null where a value is unknown.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn yes() -> bool {
    true
}

/// `UnitDetail` (GET /units/NAME).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UnitDetail {
    #[serde(flatten)]
    pub unit: Unit,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub events: Vec<Event>,
    #[serde(default)]
    pub log: Vec<LogEntry>,
    /// The latest drop of the unit's log lines by journald's rate limit (`log_rate_limit`).
    #[serde(default)]
    pub log_dropped: Option<LogDrop>,
}

/// journald's report of lines it dropped by the unit's rate limit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct LogDrop {
    pub at_us: u64,
    pub dropped: u64,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct Event {
    pub at_ms: i64,
    pub kind: String,
    pub detail: Option<Value>,
}

/// One journal entry (`GET /units/NAME/logs` streams one per line).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct LogLine {
    pub at_us: u64,
    /// syslog priority: 0 emerg … 3 err, 4 warning, 6 info, 7 debug.
    pub priority: Option<u8>,
    pub identifier: Option<String>,
    pub message: String,
}

/// `GET /units/NAME/file`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct UnitFile {
    pub path: String,
    pub text: String,
    pub revision: Option<u32>,
    /// The file is not what systemd loaded (see `Unit`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub changed_on_disk: bool,
}

/// `Applied`: the answer of every change to a unit file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct Applied {
    pub name: String,
    pub changed: bool,
    /// The revision recorded, None when nothing changed.
    pub revision: Option<u32>,
    pub restarted: bool,
    /// The unit file written.
    pub path: String,
    /// What is accepted but deserves a change (a credential in plain text, a secret not set
    /// yet), each rendered as `FILE:LINE:COL: message` with a hint.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// `POST /units/NAME/reset-failed` and `POST /units/reset-failed`: the units whose failed state
/// was cleared.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct ResetFailed {
    pub reset: Vec<String>,
}

/// `JobDone`: a start, stop or restart that ended with result `done`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct JobDone {
    pub name: String,
    /// systemd's job id.
    pub job: u32,
    pub result: String,
    pub state: Option<Unit>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct Removed {
    pub name: String,
    pub removed: bool,
}

/// `Revision` (GET /units/NAME/history).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct Revision {
    pub rev: u64,
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub size: Option<u64>,
}

/// `GET /units/NAME/diff`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct Diff {
    pub from: Value,
    pub to: Value,
    pub diff: String,
}

/// `Device` (GET /devices).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct Device {
    pub path: String,
    pub target: Option<String>,
    #[serde(default = "yes")]
    pub present: bool,
    pub units: Vec<String>,
}

// Requests.

/// `PUT /units/NAME/file`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PutFile {
    pub text: String,
    #[serde(default)]
    pub restart: bool,
}

/// `POST /units/NAME/set`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SetUnit {
    #[serde(default)]
    pub assignments: Vec<String>,
    /// Keys to remove (`container.env.TZ`, `health`), after the assignments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unset: Vec<String>,
    #[serde(default)]
    pub restart: bool,
}

/// `POST /units`: a unit made of an image, its version and arguments (`containerctl new`), or
/// the whole text of its file (the web page's form and editor).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NewUnit {
    #[schema(pattern = "^[a-z0-9][a-z0-9_.-]{0,63}$")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(default)]
    pub args: Vec<String>,
    /// The unit file's text, instead of `image`, `version` and `args`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// `POST /units/NAME/revert`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RevertUnit {
    pub rev: u32,
    #[serde(default)]
    pub restart: bool,
}

/// `POST /units/NAME/preview`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PreviewUnit {
    pub text: String,
}

/// The answer of `POST /units/NAME/preview`: what `PUT …/file` with this text would say and
/// change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct Preview {
    /// No diagnostics: the text is a valid unit file.
    pub valid: bool,
    pub diagnostics: Vec<WireDiagnostic>,
    /// The policy rules a write by this caller would break.
    pub violations: Vec<Violation>,
    /// Unified diff from the current file.
    pub diff: String,
    pub changed: bool,
    pub warnings: Vec<String>,
}

/// `POST /units/NAME/update`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct UpdateUnit {
    /// The version (tag) to move to; None: the newest the unit's `[update]` policy allows.
    pub to: Option<String>,
    /// The digest the new version must have (`sha256:…`); None: the digest pulled is pinned.
    pub digest: Option<String>,
    /// How long to watch the unit after it started (default `[update] soak`, else 30s).
    pub soak: Option<String>,
    /// Show the change and the plan; pull and change nothing.
    pub dry_run: bool,
    /// What the unit's timer asks: the update when `[update] auto = true`, else a check.
    pub scheduled: bool,
}

/// The result of `POST /units/NAME/update`: the last line of its stream, as `result` or, for a
/// rollback, as the `detail` of the error line.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct UpdateResult {
    pub name: String,
    /// `updated`, `saved` (the unit was not running: it runs the version at its next start),
    /// `unchanged`, `rolled_back`, `rollback_failed`, `planned` (dry run) or `checked`.
    pub outcome: String,
    pub image: String,
    pub from_version: String,
    pub from_digest: Option<String>,
    pub to_version: String,
    pub to_digest: Option<String>,
    /// The revision recorded for the update, and for the rollback when there was one.
    pub revision: Option<u32>,
    pub rollback_revision: Option<u32>,
    pub reason: Option<String>,
    /// The last journal lines of the failed run.
    pub log: Vec<String>,
    /// Units that require this one and were restarted with it.
    pub dependants: Vec<String>,
    /// The image removed from the host after the update succeeded (the one before the previous).
    pub removed_image: Option<String>,
    /// The unit file's diff (dry run).
    pub diff: Option<String>,
    /// The steps a dry run would take.
    pub plan: Vec<String>,
    pub soak_ms: u64,
}

/// `POST /updates/check`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CheckUpdates {
    /// The units to check; empty: every unit.
    pub units: Vec<String>,
}

/// One unit's answer to an update check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct UpdateCheck {
    pub name: String,
    pub image: String,
    pub current: String,
    /// The unit's `[update] policy`.
    pub policy: String,
    /// The newest version the policy allows; None when there is none newer.
    pub available: Option<String>,
    /// Versions that were rolled back on this unit and so are skipped.
    pub skipped: Vec<String>,
    pub checked_at_ms: i64,
    /// Why the registry could not be asked; the unit is otherwise left out of nothing.
    pub error: Option<String>,
}

/// `GET /units/NAME/versions`: the tags of the unit's image that compare with its version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct UnitVersions {
    pub name: String,
    pub image: String,
    pub current: String,
    pub policy: String,
    /// The newest version the policy allows (what `update NAME` without `--to` takes).
    pub available: Option<String>,
    /// Newest first, at most 100.
    pub versions: Vec<VersionInfo>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct VersionInfo {
    pub tag: String,
    /// Newer than the current version and allowed by the unit's policy.
    pub allowed: bool,
    /// Why it was rolled back on this unit, if it was.
    pub rolled_back: Option<String>,
}

/// `POST /tokens`.
/// `POST /session` (log in).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Login {
    /// An API token, or the token of a one-time login link.
    pub token: String,
}

/// A web session (`POST /session`, `GET /session`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Session {
    pub role: Role,
    pub name: String,
    /// Send it as `X-CSRF-Token` with every method but GET and HEAD.
    pub csrf: String,
    pub expires_at_ms: i64,
}

/// `DELETE /session`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoggedOut {
    pub logged_out: bool,
}

/// `GET /whoami`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Whoami {
    pub role: Role,
    pub actor: String,
}

/// `POST /login-link`: a one-time admin login link for the web page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LoginLink {
    pub url: String,
    pub expires_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NewToken {
    /// 1-64 printable characters (trimmed).
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
    pub role: Role,
    #[serde(default)]
    pub ttl: Option<String>,
}

/// The answer of `POST /tokens`: the token itself is shown this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedToken {
    pub id: String,
    pub name: String,
    pub role: String,
    pub expires_at_ms: i64,
    pub token: String,
}

/// `GET /tokens`: one API token, never its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub role: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub revoked: bool,
}

/// `DELETE /tokens/ID`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RevokedToken {
    pub id: String,
    pub revoked: bool,
}

/// `POST /keys/rotate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RotatedKey {
    pub key_id: String,
}

// The cluster.

/// `POST /cluster/init`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterInit {
    #[serde(default)]
    pub advertise_addr: Option<String>,
}

/// `POST /cluster/join`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterJoin {
    pub token: String,
    #[serde(default)]
    pub advertise_addr: Option<String>,
}

/// `POST /images/push`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImagePush {
    pub image: String,
    #[serde(default)]
    pub token: Option<String>,
}

/// `POST /cluster/tokens`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewJoinToken {
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub ttl: Option<String>,
    #[serde(default)]
    pub uses: Option<u32>,
}

/// The answer of `POST /cluster/tokens`: the join token is shown this once.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct JoinTokenCreated {
    pub id: String,
    pub token: String,
    pub role: String,
    pub expires_at_ms: i64,
    pub uses: u32,
}

/// `GET /cluster/tokens`: one join token, never its secret.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct JoinTokenInfo {
    pub id: String,
    pub role: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub uses: u32,
    pub used: u32,
    pub revoked: bool,
    /// `valid`, `expired`, `used` or `revoked`.
    pub state: String,
}

/// `GET /cluster/nodes` (and `/cluster/nodes/ID` with its history).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct Node {
    pub id: String,
    pub hostname: String,
    pub addr: String,
    pub role: String,
    /// `up`, `down`, `left` or `removed`.
    pub state: String,
    pub swarm_state: Option<String>,
    pub availability: Option<String>,
    pub joined_at_ms: i64,
    pub last_seen_ms: i64,
    /// The node's last report: units, containers, images, devices, resources, shared volume.
    pub units: Vec<Value>,
    pub containers: Value,
    pub images: Vec<Value>,
    pub devices: Vec<Value>,
    pub resources: Value,
    pub shared: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<Value>>,
}

/// `DELETE /cluster/nodes/ID`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct RemovedNode {
    pub id: String,
    pub hostname: String,
    pub state: String,
}

/// `GET /cluster`: `{"member": false}`, or the membership of this host. Readers look at
/// `membership` only when `member` is true.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClusterStatus {
    pub member: bool,
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub membership: Option<Membership>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct Membership {
    pub role: String,
    pub primary: bool,
    pub cluster_id: String,
    pub node_id: String,
    pub hostname: String,
    pub addr: String,
    pub manager_addrs: Vec<String>,
    pub registry: RegistryStatus,
    /// The shared volume: path, mounted, size_bytes, used_bytes.
    pub shared: Value,
    pub swarm: Option<SwarmStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct RegistryStatus {
    pub address: String,
    pub images: Option<Vec<RegistryImage>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct RegistryImage {
    pub name: String,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct SwarmStatus {
    pub node_id: Option<String>,
    pub state: Option<String>,
    pub managers: Option<i64>,
    pub nodes: Option<i64>,
}

/// One line of a long operation's NDJSON stream: progress, then a result or a failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum StreamLine {
    Result { result: Value },
    Failure { error: StepFailure },
    Progress(Progress),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct Progress {
    pub step: String,
    /// `running`, `progress`, `done`, `skipped` or `failed`.
    pub state: String,
    pub detail: String,
    /// Bytes done and in all, for `progress` lines of a transfer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct StepFailure {
    pub kind: String,
    pub step: String,
    pub message: String,
    pub hint: String,
    /// What the operation did before it failed (an update's [`UpdateResult`] for a rollback).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
}

/// One secret in `GET /secrets`: never its value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct SecretInfo {
    pub name: String,
    /// Bytes of the value.
    pub size: u64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// Who set it last (`uid 0 (root)`); None for a file put in the store by hand.
    pub updated_by: Option<String>,
    /// The units whose files reference it (`secrets` or `env_secrets`).
    pub units: Vec<String>,
}

/// `PUT /secrets/NAME`: what was stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct SecretSet {
    pub name: String,
    pub size: u64,
    /// False when the secret existed and was replaced.
    pub created: bool,
    /// The units that reference it: they get the new value at their next start.
    pub units: Vec<String>,
}

/// `DELETE /secrets/NAME`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct SecretRemoved {
    pub name: String,
    pub removed: bool,
    /// The units that still reference it (with `force=true`): they fail at their next start.
    pub units: Vec<String>,
}

// Registry credentials (admin only). A password goes in one request body and never comes back.

/// `POST /registries`: log in to a registry and store the credential if it accepts it. Debug
/// leaves the password out.
#[derive(Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistryLogin {
    /// `HOST[:PORT][/NAMESPACE]`; `docker.io` for Docker Hub.
    pub registry: String,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for RegistryLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryLogin")
            .field("registry", &self.registry)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// `POST /registries/test`: which stored credential to verify again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RegistryRef {
    pub registry: String,
}

/// `GET /registries`, and the answer of a login: one stored credential, never its password.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct RegistryInfo {
    pub registry: String,
    pub username: String,
    pub added_ms: i64,
    /// The last successful login or test.
    pub verified_ms: Option<i64>,
    /// The last pull by this host's dockerd of an image the credential applies to.
    pub last_used_ms: Option<i64>,
}

/// The answer of `POST /registries/test`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct RegistryTested {
    pub registry: String,
    pub username: String,
    /// The registry accepted the credential (a refusal is an error answer instead).
    pub ok: bool,
    /// dockerd's status text (`Login Succeeded`).
    pub message: String,
}

/// The answer of `DELETE /registries?registry=R`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct RegistryRemoved {
    pub registry: String,
    pub removed: bool,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn stream_lines_are_told_apart() {
        let r: StreamLine = serde_json::from_value(json!({"result": {"image": "x"}})).expect("result");
        assert_eq!(r, StreamLine::Result { result: json!({"image": "x"}) });
        let f: StreamLine = serde_json::from_value(
            json!({"error": {"kind": "conflict", "step": "swarm", "message": "m", "hint": "h"}}),
        )
        .expect("failure");
        assert!(matches!(f, StreamLine::Failure { error } if error.kind == "conflict" && error.hint == "h"));
        let p: StreamLine =
            serde_json::from_value(json!({"step": "push", "state": "progress", "detail": "d"}))
                .expect("progress");
        assert!(matches!(p, StreamLine::Progress(p) if p.state == "progress" && p.progress.is_none()));
    }

    #[test]
    fn a_non_member_status_is_just_that() {
        let s = ClusterStatus { member: false, membership: None };
        assert_eq!(serde_json::to_value(&s).expect("json"), json!({"member": false}));
        let back: ClusterStatus = serde_json::from_value(json!({"member": false})).expect("status");
        assert!(!back.member, "membership fields are read only when member is true");
        let m: ClusterStatus = serde_json::from_value(
            json!({"member": true, "role": "manager", "manager_addrs": ["10.0.0.1:5001"]}),
        )
        .expect("member");
        assert_eq!(m.membership.map(|m| m.manager_addrs), Some(vec!["10.0.0.1:5001".to_owned()]));
    }

    #[test]
    fn units_accept_null_scalars_and_serialize_every_field() {
        let u: Unit = serde_json::from_value(json!({"name": "web", "status_text": null, "n_restarts": null}))
            .expect("unit");
        assert_eq!((u.status_text.as_str(), u.n_restarts, u.valid), ("", 0, true));
        let v = serde_json::to_value(&u).expect("json");
        assert_eq!(v["status_text"], json!(""));
        assert_eq!(v["exit_status"], json!(0));
    }

    #[test]
    fn a_login_request_never_debug_prints_its_password() {
        let l: RegistryLogin =
            serde_json::from_value(json!({"registry": "ghcr.io", "username": "me", "password": "hunter2"}))
                .expect("login");
        assert!(!format!("{l:?}").contains("hunter2"));
        let unknown = json!({"registry": "ghcr.io", "username": "me", "password": "p", "x": 1});
        assert!(serde_json::from_value::<RegistryLogin>(unknown).is_err());
        let info: RegistryInfo =
            serde_json::from_value(json!({"registry": "ghcr.io", "last_used_ms": null})).expect("info");
        assert_eq!(info.last_used_ms, None);
    }

    #[test]
    fn changed_on_disk_is_false_from_older_daemons() {
        let u: Unit = serde_json::from_value(json!({"name": "web"})).expect("unit");
        assert!(!u.changed_on_disk);
        let u: Unit = serde_json::from_value(json!({"name": "web", "changed_on_disk": null})).expect("unit");
        assert!(!u.changed_on_disk);
        let f: UnitFile = serde_json::from_value(json!({"path": "p", "text": "t"})).expect("file");
        assert!(!f.changed_on_disk);
        let u = Unit { changed_on_disk: true, ..Unit::default() };
        assert_eq!(serde_json::to_value(&u).expect("json")["changed_on_disk"], json!(true));
    }
}

/// `POST /import`: units to create together, all or none. Either `units` (converted by the
/// client, as `containerctl import` does with files only it may read) or `compose` (a Compose
/// file pasted into the web page, converted by the daemon).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ImportUnits {
    pub units: Vec<ImportUnit>,
    pub compose: Option<ImportCompose>,
    /// Check everything and show the units; write nothing.
    pub dry_run: bool,
    /// Start the units (dependencies first) once all are written.
    pub start: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ImportUnit {
    pub name: String,
    pub text: String,
    /// Where it came from (`compose.yaml:12:3 service web`), for the history and audit.
    pub source: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ImportCompose {
    pub text: String,
    /// Unit names are PREFIX-SERVICE; required unless the file has `name:`.
    pub prefix: Option<String>,
    /// The variables of a pasted `.env` (the daemon's own environment is never used).
    pub env: String,
}

/// The answer of `POST /import`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct Imported {
    pub dry_run: bool,
    pub units: Vec<ImportedUnit>,
    /// What was dropped or must be done by hand, as `FILE:LINE:COL: message`.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct ImportedUnit {
    pub name: String,
    pub text: String,
    pub source: Option<String>,
    /// The revision recorded (None in a dry run).
    pub revision: Option<u32>,
    pub path: String,
    pub warnings: Vec<String>,
    /// `start`: systemd's result of the start job (`done`), or the error.
    pub started: Option<String>,
}

/// `POST /units/NAME/move`: move a unit and its data to another member.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct MoveUnit {
    /// The member to move to: node id, host name or address.
    pub to: String,
    pub dry_run: bool,
    /// Keep the source's data for good (else it is removed once the target stayed up for the soak).
    pub keep_source: bool,
    /// How long the target must stay up before the source's data is removed (default 10m).
    pub soak: Option<String>,
    /// Copy while the unit runs, then stop and send only what changed.
    pub warm: bool,
}

/// What a move did, or for a dry run what it would do.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct MoveResult {
    pub unit: String,
    pub from: String,
    pub to: String,
    pub dry_run: bool,
    /// The steps, in order.
    pub plan: Vec<String>,
    /// Bytes and files of the volumes copied (`shared:` volumes are not).
    pub bytes: u64,
    pub files: u64,
    pub volumes: Vec<String>,
    /// How the target gets the image: `present`, `registry` or `stream`.
    pub image: String,
    pub estimate_seconds: f64,
    /// Why the move cannot be done; empty when it can.
    pub blockers: Vec<String>,
    /// From the stop on the source to READY on the target.
    pub downtime_ms: Option<u64>,
    pub seconds: Option<f64>,
    pub keep_source: bool,
    pub warm: bool,
    /// Bytes sent after the stop (a warm move's delta; all of them for a cold one).
    pub sent_after_stop: Option<u64>,
}

/// `POST /cluster/nodes/NODE/drain`: move every movable unit off this node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct DrainNode {
    pub dry_run: bool,
    /// Move each unit warm.
    pub warm: bool,
}

/// `POST /cluster/v1/drain/forward`: a drain of the called member, asked on another.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DrainForward {
    pub request: DrainNode,
    pub caller: MoveCaller,
}

/// What a drain did (or would do) with each unit of the node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DrainResult {
    pub node: String,
    pub dry_run: bool,
    pub moves: Vec<DrainMove>,
}

/// One unit of a drain: `planned`, `moved`, `failed` (it runs here again), `blocked` (no member
/// can take it: every blocker) or `skipped` (not movable: why).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DrainMove {
    pub unit: String,
    pub to: Option<String>,
    pub state: String,
    pub detail: String,
    pub downtime_ms: Option<u64>,
}

/// `POST /cluster/v1/moves/forward`: a move asked on another member, run where the unit is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MoveForward {
    pub unit: String,
    pub request: MoveUnit,
    pub caller: MoveCaller,
}

/// `POST /cluster/v1/units/where`: whether a member has a unit, and its state there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UnitHere {
    pub unit: String,
    pub active: bool,
    pub enabled: bool,
}

/// Who asked for a move, as the source's daemon authenticated them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MoveCaller {
    pub role: String,
    pub actor: String,
}

/// The source's offer to a target member (member routes): the unit and what its data is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MoveOffer {
    pub unit: String,
    pub text: String,
    pub caller: MoveCaller,
    /// The source's host name.
    pub source: String,
    pub bytes: u64,
    pub files: u64,
    /// The source has the image and can stream it.
    pub image_on_source: bool,
}

/// The target's answer to an offer: blockers (empty: it can take the unit) and how it gets the image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MovePreflight {
    pub blockers: Vec<String>,
    pub image: String,
    pub free_bytes: u64,
}

/// One revision of a unit's history, as it travels with the unit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MoveRevision {
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub text: String,
}

/// `POST /cluster/v1/moves`: the offer again, the manifest of the data and the unit's history.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MoveBegin {
    pub offer: MoveOffer,
    pub manifest: crate::transfer::Manifest,
    pub revisions: Vec<MoveRevision>,
    /// A warm move: the first data is sent while the unit runs, a delta follows.
    pub warm: bool,
}

/// A file the target has from the first pass of a warm move.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MoveReused {
    /// The volume's index in the manifest.
    pub volume: usize,
    pub path: String,
}

/// A file a target has whole after a stream broke (`GET /cluster/v1/moves/ID`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MoveHave {
    pub volume: usize,
    pub path: String,
    pub size: u64,
    pub sum: String,
}

/// `GET /cluster/v1/moves/ID/outcome`: what became of a move on its target, for a source whose
/// containerctld restarted after it sent the commit. `state` is `receiving` (the commit never
/// arrived), `committing`, `moved`, `failed` (everything of it undone there) or `unknown` (the
/// target restarted since); `defined`/`active`: the unit on the target now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MoveOutcome {
    pub state: String,
    pub defined: bool,
    pub active: bool,
}

/// `POST /cluster/v1/moves/ID/delta`: after the stop, the final manifest and the files not sent again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MoveDelta {
    pub manifest: crate::transfer::Manifest,
    pub reuse: Vec<MoveReused>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MoveBegun {
    pub id: String,
}

/// `POST /cluster/v1/moves/ID/commit`: the SHA-256 of every file as the source read it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MoveCommit {
    pub sums: Vec<String>,
}
