//! `containerctl update NAME --to VERSION`: a version change that undoes itself.
//!
//! The state machine (ARCHITECTURE.md, "Updates"):
//!
//! ```text
//! plan ─► pull ─► pin ─► save (revision `update`) ─► restart ─► dependants ─► soak ─► updated
//!  │       │       │                                    │            │          │
//!  │       └───────┴─► failed (nothing changed)         └────────────┴──────────┴─► rollback
//!  └─► refused / planned (dry run)                                                    │
//!                 save previous text + the digest it ran (revision `rollback`) ◄──────┘
//!                 restart, dependants ─► rolled_back (version remembered as bad)
//!                                    └─► rollback_failed
//! ```
//!
//! Refusals come before anything streams and change nothing; the running container is
//! untouched until the new image is on the host (a `[deploy]` unit's service is updated by Swarm
//! instead: `update_swarm`); every write is a revision through
//! [`Daemon::apply_text`], so a daemon that dies mid-update leaves a whole file (and its update
//! row `running`, marked `interrupted` at the next start).

use std::collections::HashSet;
use std::time::Duration;

use bollard::query_parameters::{CreateImageOptionsBuilder, RemoveImageOptionsBuilder};
use futures_util::StreamExt;
use serde_json::json;

use super::ops::{apply_assignments, not_found};
use super::{Daemon, NoticeKind, OpError};
use crate::db::NewUpdate;
use crate::policy::{self, Action, Caller};
use crate::progress::Progress;
use crate::time::now_ms;
use crate::unit::{Unit, UnitName};
use crate::wire::{UpdateResult, UpdateUnit};

/// How a streamed update failed: the kind (as the error line's `kind`), the step, what happened
/// and what to do, and for a rollback what was done.
#[derive(Debug, Clone)]
pub struct UpdateFailure {
    pub kind: FailureKind,
    pub step: &'static str,
    pub message: String,
    pub hint: String,
    pub result: Option<Box<UpdateResult>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Nothing was changed (the pull failed, the digest did not match).
    Failed,
    /// The new version failed and the previous one runs again.
    RolledBack,
    /// The new version failed and so did the previous one.
    RollbackFailed,
    /// Docker or systemd cannot be reached.
    Unavailable,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Failed => "failed",
            FailureKind::RolledBack => "rolled_back",
            FailureKind::RollbackFailed => "rollback_failed",
            FailureKind::Unavailable => "unavailable",
        }
    }
}

pub(super) fn failed(
    step: &'static str,
    message: impl Into<String>,
    hint: impl Into<String>,
) -> UpdateFailure {
    UpdateFailure {
        kind: FailureKind::Failed,
        step,
        message: message.into(),
        hint: hint.into(),
        result: None,
    }
}

/// What was checked before anything streams: the update to run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: UnitName,
    pub unit: Unit,
    /// The unit file's current text.
    pub text: String,
    pub to_version: String,
    pub digest: Option<String>,
    pub soak: Duration,
    pub dry_run: bool,
    /// A scheduled run of a unit without `auto`: check, change nothing.
    pub check_only: bool,
    /// The version was rolled back before, and why.
    pub known_bad: Option<String>,
    /// No version was named and none newer is allowed: nothing to do.
    pub nothing_newer: bool,
}

/// A unit's image as the container that ran it had it: its ID and its registry digest.
#[derive(Debug, Clone, Default)]
struct Ran {
    image_id: Option<String>,
    digest: Option<String>,
}

/// Releases a unit's "update under way" mark when dropped.
struct Busy<'a>(&'a Daemon, String);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if let Ok(mut set) = self.0.updating.lock() {
            set.remove(&self.1);
        }
    }
}

/// The `updates` row of an update under way, which ends once with the outcome.
pub(super) struct Record<'a> {
    daemon: &'a Daemon,
    caller: &'a Caller,
    name: UnitName,
    pub(super) id: i64,
}

impl Record<'_> {
    /// Records the outcome; `audit` is the audit entry's result, when the outcome has one.
    pub(super) fn end(&self, outcome: &str, reason: &str, audit: Option<String>) {
        if let Err(e) = self.daemon.db().end_update(self.id, outcome, reason, now_ms()) {
            tracing::error!("cannot record the end of the update of {}: {e}", self.name);
        }
        if let Some(result) = audit {
            self.daemon.audit(self.caller, "update", Some(self.name.as_str()), None, None, &result);
        }
        self.daemon.changed();
    }

    /// Ends the update as failed, audited, and gives the failure to return.
    pub(super) fn fail(&self, step: &'static str, message: String, hint: impl Into<String>) -> UpdateFailure {
        self.end("failed", &message, Some(format!("failed: {message}")));
        failed(step, message, hint)
    }

    pub(super) fn set_digest(&self, digest: &str) {
        if let Err(e) = self.daemon.db().set_update_digest(self.id, digest) {
            tracing::warn!("cannot record the digest of the update of {}: {e}", self.name);
        }
    }
}

impl Daemon {
    /// Starts the record of a planned update; `from_digest` and `from_image_id` are what runs.
    pub(super) fn start_record<'a>(
        &'a self,
        caller: &'a Caller,
        plan: &Plan,
        from_digest: Option<String>,
        from_image_id: Option<String>,
    ) -> Result<Record<'a>, UpdateFailure> {
        let c = &plan.unit.container;
        let id = self
            .db()
            .start_update(&NewUpdate {
                unit: plan.name.to_string(),
                started_ms: now_ms(),
                actor: caller.actor.clone(),
                image: c.image.clone(),
                from_version: c.version.clone(),
                from_digest,
                from_image_id,
                to_version: plan.to_version.clone(),
            })
            .map_err(|e| failed("plan", e.to_string(), ""))?;
        Ok(Record { daemon: self, caller, name: plan.name.clone(), id })
    }

    /// Saves `text` (the plan's, with the new version and digest) as a revision `update`, unless
    /// the file changed since the plan: that edit would be lost. `image` is what it runs.
    pub(super) async fn save_update(
        &self,
        rec: &Record<'_>,
        plan: &Plan,
        text: String,
        image: &str,
        p: &Progress,
    ) -> Result<crate::wire::Applied, UpdateFailure> {
        let name = &plan.name;
        if self.definition(name).map(|d| d.text) != Some(plan.text.clone()) {
            let message = format!("the file of {name} changed during the update: nothing was changed");
            return Err(rec.fail("save", message, format!("run containerctl update {name} again")));
        }
        let applied = self
            .apply_text(rec.caller, name, text, "update", false)
            .await
            .map_err(|e| rec.fail("save", e.to_string(), ""))?;
        let revision = applied.revision.map_or("-".into(), |r| r.to_string());
        p.step("save", "done", format!("revision {revision} of {name}: {image}"));
        Ok(applied)
    }

    /// The end of an update whose new version runs and stayed up.
    pub(super) fn updated(&self, rec: &Record<'_>, plan: &Plan, mut result: UpdateResult) -> UpdateResult {
        let c = &plan.unit.container;
        let summary = format!("{} → {}", c.version, plan.to_version);
        rec.end("updated", "", Some(format!("ok: {summary}")));
        if let Err(e) = self.db().clear_bad_version(plan.name.as_str(), &c.image, &plan.to_version) {
            tracing::warn!("{e}");
        }
        result.outcome = "updated".into();
        self.notice(NoticeKind::Updated, plan.name.as_str(), summary);
        result
    }

    /// Remembers the plan's version (with `digest`) as bad on the unit, for `reason`.
    pub(super) fn remember_bad(&self, plan: &Plan, digest: &str, reason: &str) {
        let c = &plan.unit.container;
        let name = &plan.name;
        if let Err(e) =
            self.db().record_bad_version(name.as_str(), &c.image, &plan.to_version, digest, reason, now_ms())
        {
            tracing::error!("cannot remember {} of {name} as bad: {e}", plan.to_version);
        }
    }

    /// The end of an update whose new version failed for `reason`: `kind` and `message` say
    /// whether the previous one runs again. Recorded, broadcast, and the failure to return.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn rolled_back(
        &self,
        rec: &Record<'_>,
        plan: &Plan,
        mut result: UpdateResult,
        reason: String,
        (kind, message): (FailureKind, String),
        step: &'static str,
        hint: &str,
    ) -> UpdateFailure {
        result.reason = Some(reason.clone());
        result.outcome = kind.as_str().into();
        let recorded = if kind == FailureKind::RolledBack { reason.as_str() } else { message.as_str() };
        rec.end(kind.as_str(), recorded, Some(format!("failed: {message}")));
        self.notice(NoticeKind::RolledBack, plan.name.as_str(), message.clone());
        UpdateFailure {
            kind,
            step,
            hint: format!(
                "{hint}; {} is remembered as bad and skipped by update --check and --all",
                plan.to_version
            ),
            message,
            result: Some(Box::new(result)),
        }
    }

    /// Checks an update request and decides what it does; refusals are audited and change
    /// nothing. `to = None` means the newest version the unit's policy allows.
    pub async fn plan_update(
        &self,
        caller: &Caller,
        name: &UnitName,
        req: &UpdateUnit,
    ) -> Result<Plan, OpError> {
        let def = self.definition(name).ok_or_else(|| not_found(name))?;
        let unit = def.unit.clone().map_err(|e| {
            OpError::Conflict(format!(
                "{} is not valid, so {name} cannot be updated: fix it first ({e})",
                def.path.display()
            ))
        })?;
        let protected = unit.service.protected;
        for action in [Action::Edit, Action::Restart] {
            policy::may(caller.role, action, name.as_str(), protected).map_err(|v| {
                self.audit(caller, "update", Some(name.as_str()), None, None, &format!("refused: {v}"));
                OpError::refused(v)
            })?;
        }
        let settings = unit.update_settings();
        let soak = match &req.soak {
            Some(s) => {
                let d = crate::unit::parse_duration(s)
                    .map_err(|e| OpError::InvalidInput(format!("--soak: {e}")))?;
                if d > crate::unit::Update::MAX_SOAK {
                    return Err(OpError::InvalidInput("--soak must be at most 1h".into()));
                }
                d
            }
            None => settings.soak,
        };
        if let Some(d) = &req.digest {
            let ok = d
                .strip_prefix("sha256:")
                .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
            if !ok {
                return Err(OpError::InvalidInput(format!(
                    "--digest {d} is not sha256: followed by 64 hex digits"
                )));
            }
        }
        let check_only = req.scheduled && !settings.auto;
        let mut nothing_newer = false;
        let to_version = match &req.to {
            Some(v) => v.trim().to_owned(),
            None if check_only => unit.container.version.clone(),
            None => {
                let check = self.check_unit(name, &unit).await;
                if let Some(e) = check.error {
                    return Err(OpError::Unavailable(format!(
                        "cannot tell the newest version of {name}: {e}"
                    )));
                }
                match check.available {
                    Some(v) => v,
                    None if settings.policy == crate::unit::UpdatePolicy::Manual => {
                        return Err(OpError::InvalidInput(format!(
                            "{name} has [update] policy = \"manual\": name the version with --to VERSION"
                        )))
                    }
                    None => {
                        nothing_newer = true;
                        unit.container.version.clone()
                    }
                }
            }
        };
        if to_version.is_empty() || to_version.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(OpError::InvalidInput(format!(
                "`{}` is not a version (a tag)",
                to_version.escape_debug()
            )));
        }
        let known_bad = self
            .db()
            .bad_versions(name.as_str(), &unit.container.image)?
            .into_iter()
            .find(|b| b.version == to_version)
            .map(|b| b.reason);
        let plan = Plan {
            name: name.clone(),
            text: def.text.clone(),
            to_version,
            digest: req.digest.clone(),
            soak,
            dry_run: req.dry_run,
            check_only,
            known_bad,
            nothing_newer,
            unit,
        };
        if !plan.check_only && !plan.nothing_newer {
            // The same checks as an edit, on the text the update would write (digest aside).
            let text = plan_text(&plan.text, &plan.to_version, plan.digest.as_deref())?;
            let preview = self.preview(caller, name, &text);
            if !preview.diagnostics.is_empty() {
                return Err(OpError::Invalid {
                    message: format!(
                        "version {} would make {name} invalid: nothing was changed",
                        plan.to_version
                    ),
                    diagnostics: preview.diagnostics,
                });
            }
            if !preview.violations.is_empty() {
                let result =
                    preview.violations.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
                self.audit(caller, "update", Some(name.as_str()), None, None, &format!("refused: {result}"));
                return Err(OpError::Refused {
                    message: format!("the policy refuses this definition of {name}: nothing was changed"),
                    violations: preview.violations,
                });
            }
        }
        Ok(plan)
    }

    /// Runs a planned update to its end, reporting its steps to `p`.
    pub async fn update(
        &self,
        caller: &Caller,
        plan: Plan,
        p: &Progress,
    ) -> Result<UpdateResult, UpdateFailure> {
        let name = plan.name.clone();
        let c = &plan.unit.container;
        let mut result = UpdateResult {
            name: name.to_string(),
            image: c.image.clone(),
            from_version: c.version.clone(),
            from_digest: c.digest.clone(),
            to_version: plan.to_version.clone(),
            to_digest: plan.digest.clone(),
            soak_ms: u64::try_from(plan.soak.as_millis()).unwrap_or(u64::MAX),
            dependants: self.dependants(&name),
            ..UpdateResult::default()
        };
        if plan.check_only {
            let check = self.check_unit(&name, &plan.unit).await;
            if let Some(e) = check.error {
                return Err(failed(
                    "check",
                    format!("cannot check {name}: {e}"),
                    "see containerctl update --check",
                ));
            }
            p.step(
                "check",
                "done",
                match &check.available {
                    Some(v) => format!("{name}: {v} is available (auto = false: not applied)"),
                    None => format!("{name}: {} is the newest allowed", c.version),
                },
            );
            result.outcome = "checked".into();
            result.to_version = check.available.unwrap_or_else(|| c.version.clone());
            return Ok(result);
        }
        if plan.nothing_newer {
            p.step("plan", "done", format!("{name}: {} is the newest version its policy allows", c.version));
            result.outcome = "unchanged".into();
            return Ok(result);
        }
        if plan.dry_run {
            return Ok(self.dry_run(caller, &plan, result));
        }
        if plan.to_version == c.version
            && plan.digest.as_ref().is_none_or(|d| c.digest.as_ref() == Some(d))
            && c.digest.is_some()
        {
            p.step("plan", "done", format!("{name} is at {} already", c.version));
            result.outcome = "unchanged".into();
            return Ok(result);
        }
        let _busy = self.mark_updating(&name)?;
        if let Some(reason) = &plan.known_bad {
            p.step(
                "plan",
                "running",
                format!(
                    "{} was rolled back on {name} before ({reason}); trying it as asked",
                    plan.to_version
                ),
            );
        }
        if plan.unit.deploy.is_some() {
            return self.update_swarm(caller, &plan, result, p).await;
        }
        p.step(
            "plan",
            "done",
            format!(
                "{name}: {} → {}, soak {}",
                c.version,
                plan.to_version,
                crate::unit::systemd_duration(plan.soak)
            ),
        );
        let docker = self.docker().ok_or_else(|| UpdateFailure {
            kind: FailureKind::Unavailable,
            ..failed("pull", "dockerd is not reachable", "start docker.service and try again")
        })?;
        // What runs now: the exact image a rollback returns to.
        let ran = self.ran(&docker, &name, &plan.unit).await;
        result.from_digest = c.digest.clone().or(ran.digest.clone());
        let rec = self.start_record(caller, &plan, result.from_digest.clone(), ran.image_id.clone())?;
        let end = |outcome: &str, reason: &str, audit: Option<String>| rec.end(outcome, reason, audit);
        // 1. The new image, pulled while the old container runs on.
        let reference = format!("{}:{}", c.image, plan.to_version);
        let pulled = match self.pull(&docker, &c.image, &plan.to_version, p).await {
            Ok(()) => docker
                .inspect_image(&reference)
                .await
                .map_err(|e| failed("pull", format!("cannot inspect {reference}: {e}"), "")),
            Err(e) => Err(e),
        };
        let pulled = match pulled {
            Ok(image) => image,
            Err(e) => {
                end("failed", &e.message, Some(format!("failed: {}", e.message)));
                return Err(e);
            }
        };
        let digest = image_digest(&pulled, &c.image);
        if let Some(want) = &plan.digest {
            let matches = pulled.id.as_deref() == Some(want.as_str())
                || pulled.repo_digests.iter().flatten().any(|d| d.ends_with(&format!("@{want}")));
            if !matches {
                let message = format!(
                    "{reference} is {}, not the digest {want} asked for: nothing was changed",
                    digest.as_deref().unwrap_or("?")
                );
                end("failed", &message, Some(format!("failed: {message}")));
                return Err(failed(
                    "pull",
                    message,
                    "check the digest, or leave --digest out to pin what the registry serves",
                ));
            }
        }
        let digest = plan.digest.clone().or(digest);
        result.to_digest = digest.clone();
        if let Some(d) = &digest {
            rec.set_digest(d);
        }
        p.step("pull", "done", format!("{reference} is {}", digest.as_deref().unwrap_or("present")));
        // 2. The new revision: version and the exact digest pulled.
        let text = match plan_text(&plan.text, &plan.to_version, digest.as_deref()) {
            Ok(t) => t,
            Err(e) => {
                end("failed", &e.to_string(), None);
                return Err(failed("save", e.to_string(), ""));
            }
        };
        if text == plan.text {
            p.step(
                "save",
                "done",
                format!("{name} runs {reference} ({}) already", digest.as_deref().unwrap_or("")),
            );
            end("unchanged", "", None);
            result.outcome = "unchanged".into();
            return Ok(result);
        }
        let was_active =
            self.units.read().ok().and_then(|u| u.get(name.as_str()).map(|s| s.active_state == "active"))
                == Some(true);
        // An edit since the plan would be lost: refuse instead (the new image stays pulled).
        let applied = self.save_update(&rec, &plan, text, &reference, p).await?;
        result.revision = applied.revision;
        if !was_active {
            p.step(
                "restart",
                "skipped",
                format!("{name} is not running: it starts {} at its next start", plan.to_version),
            );
            let summary = format!("ok: {} → {} saved (not running)", c.version, plan.to_version);
            end("updated", "saved while the unit was not running", Some(summary));
            result.outcome = "saved".into();
            return Ok(result);
        }
        // 3. Restart, dependants, soak.
        // The dependants that run now: they must run again after the update, or the rollback.
        let before = self.invocations(&result.dependants).await;
        match self.run_and_watch(caller, &name, plan.soak, &before, p).await {
            Ok(()) => {
                result.removed_image = self
                    .remove_image_before(
                        &docker,
                        &name,
                        rec.id,
                        ran.image_id.as_deref(),
                        pulled.id.as_deref(),
                        p,
                    )
                    .await;
                Ok(self.updated(&rec, &plan, result))
            }
            Err((reason, invocation)) => {
                let log = match invocation {
                    Some(inv) => {
                        crate::logs::tail_invocation(&inv, 10).await.into_iter().map(|l| l.message).collect()
                    }
                    None => Vec::new(),
                };
                result.log = log;
                self.remember_bad(&plan, digest.as_deref().unwrap_or_default(), &reason);
                p.step("soak", "failed", format!("{name} {}: {reason}", plan.to_version));
                let rolled = self.roll_back(caller, &name, &plan, &ran, &before, p).await;
                let (kind, message) = match &rolled {
                    Ok(rev) => {
                        result.rollback_revision = *rev;
                        (FailureKind::RolledBack, format!("rolled back to {}: {reason}", c.version))
                    }
                    Err(why) => {
                        let m = format!(
                            "{} failed ({reason}) and the rollback to {} failed too: {why}",
                            plan.to_version, c.version
                        );
                        (FailureKind::RollbackFailed, m)
                    }
                };
                let hint = format!("see containerctl logs {name}");
                Err(self.rolled_back(&rec, &plan, result, reason, (kind, message), "soak", &hint))
            }
        }
    }

    fn dry_run(&self, caller: &Caller, plan: &Plan, mut result: UpdateResult) -> UpdateResult {
        let c = &plan.unit.container;
        let text =
            plan_text(&plan.text, &plan.to_version, plan.digest.as_deref().or(Some(PLACEHOLDER_DIGEST)))
                .unwrap_or_default();
        let preview = self.preview(caller, &plan.name, &text);
        let reference = format!("{}:{}", c.image, plan.to_version);
        let active = self
            .units
            .read()
            .ok()
            .and_then(|u| u.get(plan.name.as_str()).map(|s| s.active_state.clone()))
            .unwrap_or_else(|| "inactive".into());
        if plan.unit.deploy.is_some() {
            result.outcome = "planned".into();
            result.diff = Some(preview.diff);
            result.plan = super::update_swarm::dry_run_steps(plan, active == "active");
            result.dependants = Vec::new();
            return result;
        }
        let mut steps = vec![format!("pull {reference} (the running container is untouched meanwhile)")];
        steps.push(match &plan.digest {
            Some(d) => format!("check that it is {d} and pin it"),
            None => "pin the digest pulled (container.digest)".into(),
        });
        steps.push("save the unit file as a revision with action update".into());
        if active == "active" {
            steps.push(format!("restart {}", plan.name.service()));
            if !result.dependants.is_empty() {
                steps.push(format!(
                    "restart with it the units that require it: {}",
                    result.dependants.join(", ")
                ));
            }
            steps.push(format!(
                "wait until it is ready{}, then watch it for {}",
                if plan.unit.health.is_some() { " and healthy" } else { "" },
                crate::unit::systemd_duration(plan.soak)
            ));
            steps.push(format!(
                "on failure: write back the current text with digest {} (revision with action rollback), restart, remember {} as bad",
                c.digest.as_deref().unwrap_or("of the image it runs"),
                plan.to_version
            ));
        } else {
            steps.push(format!("no restart: {} is {active}", plan.name));
        }
        if let Some(reason) = &plan.known_bad {
            steps.push(format!("note: {} was rolled back before: {reason}", plan.to_version));
        }
        result.outcome = "planned".into();
        result.diff = Some(preview.diff);
        result.plan = steps;
        result
    }

    fn mark_updating(&self, name: &UnitName) -> Result<Busy<'_>, UpdateFailure> {
        let mut set = self.updating.lock().map_err(|_| failed("plan", "internal lock poisoned", ""))?;
        if !set.insert(name.to_string()) {
            return Err(failed(
                "plan",
                format!("an update of {name} is under way"),
                "wait for it to end (containerctl status NAME)",
            ));
        }
        Ok(Busy(self, name.to_string()))
    }

    /// The container units that require `name`, directly or through another, nearest first.
    pub fn dependants(&self, name: &UnitName) -> Vec<String> {
        let defs: Vec<(String, Vec<String>)> = self
            .definitions()
            .into_iter()
            .filter_map(|(n, d)| d.unit.ok().map(|u| (n.to_string(), u.service.requires)))
            .collect();
        let mut out: Vec<String> = Vec::new();
        let mut frontier = vec![name.service()];
        while let Some(service) = frontier.pop() {
            for (n, requires) in &defs {
                if requires.contains(&service) && !out.contains(n) && n != name.as_str() {
                    out.push(n.clone());
                    frontier.insert(0, format!("containerctl@{n}.service"));
                }
            }
        }
        out
    }

    /// The image the unit's container runs (or ran): its ID and registry digest.
    async fn ran(&self, docker: &bollard::Docker, name: &UnitName, unit: &Unit) -> Ran {
        let Ok(container) = docker.inspect_container(&name.container_name(), None).await else {
            return Ran::default();
        };
        let Some(id) = container.image else { return Ran::default() };
        let digest = match docker.inspect_image(&id).await {
            Ok(image) => image_digest(&image, &unit.container.image),
            Err(_) => None,
        };
        Ran { image_id: Some(id), digest }
    }

    /// `docker pull IMAGE:TAG`, with Docker's progress as `progress` lines.
    async fn pull(
        &self,
        docker: &bollard::Docker,
        image: &str,
        tag: &str,
        p: &Progress,
    ) -> Result<(), UpdateFailure> {
        let reference = format!("{image}:{tag}");
        p.step("pull", "running", format!("pulling {reference}"));
        let options = CreateImageOptionsBuilder::default().from_image(image).tag(tag).build();
        let credentials = crate::runner::registry::for_image(image).map(|c| c.auth);
        let mut stream = docker.create_image(Some(options), None, credentials);
        let mut layers: std::collections::HashMap<String, (i64, i64)> = std::collections::HashMap::new();
        let mut last = std::time::Instant::now();
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| {
                failed("pull", format!("cannot pull {reference}: {e}"), "check the version exists (containerctl update --check) and the registry's credentials (containerctl registry login)")
            })?;
            if let Some(message) = info.error_detail.and_then(|e| e.message) {
                return Err(failed("pull", format!("cannot pull {reference}: {message}"), ""));
            }
            if let (Some(id), Some(d)) = (info.id, info.progress_detail) {
                if let (Some(cur), Some(total)) = (d.current, d.total) {
                    layers.insert(id, (cur, total));
                }
            }
            if last.elapsed() >= Duration::from_millis(500) {
                last = std::time::Instant::now();
                let (cur, total) = layers.values().fold((0i64, 0i64), |(a, b), (c, t)| (a + c, b + t));
                let (cur, total) = (u64::try_from(cur).unwrap_or(0), u64::try_from(total).unwrap_or(0));
                p.transfer(
                    "pull",
                    format!(
                        "pulling {reference}: {} of {} MB in {} layers",
                        cur >> 20,
                        total >> 20,
                        layers.len()
                    ),
                    cur,
                    total,
                );
            }
        }
        Ok(())
    }

    /// Writes back what ran before (its exact digest pinned), restarts it and its dependants.
    async fn roll_back(
        &self,
        caller: &Caller,
        name: &UnitName,
        plan: &Plan,
        ran: &Ran,
        before: &[(String, String)],
        p: &Progress,
    ) -> Result<Option<u32>, String> {
        let c = &plan.unit.container;
        let digest = c.digest.clone().or(ran.digest.clone());
        p.step(
            "rollback",
            "running",
            format!(
                "restoring {name} {}{}",
                c.version,
                digest.as_deref().map(|d| format!(" ({d})")).unwrap_or_default()
            ),
        );
        let text = plan_text(&plan.text, &c.version, digest.as_deref()).map_err(|e| e.to_string())?;
        // The dependants that ran before the update, in the run they are in now (down, if the
        // failed start took them down): each must run again.
        let mut now = Vec::new();
        for (n, _) in before {
            if let Ok(s) = self.systemd.unit_state(&format!("containerctl@{n}.service")).await {
                now.push((n.clone(), s.invocation_id));
            }
        }
        let applied =
            self.apply_text(caller, name, text, "rollback", false).await.map_err(|e| e.to_string())?;
        self.job(caller, name, Action::Restart).await.map_err(|e| e.to_string())?;
        self.dependants_up(caller, &now, p).await?;
        p.step(
            "rollback",
            "done",
            format!(
                "{name} runs {} again (revision {})",
                c.version,
                applied.revision.map_or("-".into(), |r| r.to_string())
            ),
        );
        Ok(applied.revision)
    }

    /// After a success: removes the image the previous successful update kept as its fallback
    /// (the one before the image this update left), unless something still uses it.
    async fn remove_image_before(
        &self,
        docker: &bollard::Docker,
        name: &UnitName,
        this_update: i64,
        previous: Option<&str>,
        current: Option<&str>,
        p: &Progress,
    ) -> Option<String> {
        let earlier =
            self.db().successful_updates(name.as_str()).ok()?.into_iter().find(|u| u.id != this_update)?;
        let old = earlier.start.from_image_id?;
        if Some(old.as_str()) == previous || Some(old.as_str()) == current {
            return None;
        }
        let mut in_use: HashSet<String> = HashSet::new();
        if let Ok(containers) = docker
            .list_containers(Some(
                bollard::query_parameters::ListContainersOptionsBuilder::default().all(true).build(),
            ))
            .await
        {
            in_use.extend(containers.into_iter().filter_map(|c| c.image_id));
        }
        for (_, def) in self.definitions() {
            if let Ok(u) = def.unit {
                if let Ok(image) = docker.inspect_image(&u.container.reference()).await {
                    in_use.extend(image.id);
                }
            }
        }
        if in_use.contains(&old) {
            return None;
        }
        let options = RemoveImageOptionsBuilder::default().build();
        match docker.remove_image(&old, Some(options), None).await {
            Ok(_) => {
                p.step("cleanup", "done", format!("removed image {old}, which no unit uses"));
                Some(old)
            }
            Err(e) => {
                tracing::info!("update of {name}: keeping image {old}: {e}");
                None
            }
        }
    }
}

/// Stands for the digest a dry run cannot know (nothing is pulled).
const PLACEHOLDER_DIGEST: &str = "sha256:<pulled>";

/// The unit's text with `container.version` set and `container.digest` set or removed,
/// comments and layout kept.
pub(super) fn plan_text(text: &str, version: &str, digest: Option<&str>) -> Result<String, OpError> {
    let quoted = |v: &str| serde_json::to_string(v).unwrap_or_default();
    let mut set = vec![format!("container.version={}", quoted(version))];
    let mut unset = Vec::new();
    match digest {
        Some(d) => set.push(format!("container.digest={}", quoted(d))),
        None if text_has_digest(text) => unset.push("container.digest".to_owned()),
        None => {}
    }
    apply_assignments(text, &set, &unset).map_err(OpError::InvalidInput)
}

fn text_has_digest(text: &str) -> bool {
    toml_edit::Document::parse(text)
        .ok()
        .is_some_and(|d| d.get("container").and_then(|c| c.get("digest")).is_some())
}

/// The registry digest of `image` for repository `repo` (`sha256:…`), else its ID.
fn image_digest(image: &bollard::models::ImageInspect, repo: &str) -> Option<String> {
    let digests = image.repo_digests.as_deref().unwrap_or_default();
    let pick = digests
        .iter()
        .find(|d| d.split_once('@').is_some_and(|(r, _)| r == repo || r.ends_with(&format!("/{repo}"))))
        .or_else(|| digests.first());
    pick.and_then(|d| d.split_once('@').map(|(_, dg)| dg.to_owned())).or_else(|| image.id.clone())
}

/// The error line of a failed update, as the stream sends it.
pub fn failure_line(f: &UpdateFailure) -> serde_json::Value {
    json!({"error": {"kind": f.kind.as_str(), "step": f.step, "message": f.message, "hint": f.hint, "detail": f.result}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_gets_the_version_and_digest_and_keeps_the_rest() {
        let text = "# web\n[container]\nimage = \"reg/app\"  # ours\nversion = \"1.0\"\n";
        let d = format!("sha256:{}", "a".repeat(64));
        let out = plan_text(text, "1.1", Some(&d)).expect("text");
        assert_eq!(
            out,
            format!("# web\n[container]\nimage = \"reg/app\"  # ours\nversion = \"1.1\"\ndigest = \"{d}\"\n")
        );
        let back = plan_text(&out, "1.0", None).expect("text");
        assert_eq!(back, text);
        // A version that looks like a number stays a string.
        assert!(plan_text(text, "2", None).expect("text").contains("version = \"2\""));
    }

    #[test]
    fn digests_come_from_the_repository_or_the_id() {
        let image = bollard::models::ImageInspect {
            id: Some("sha256:id".into()),
            repo_digests: Some(vec!["other/x@sha256:o".into(), "reg.test:5443/ctl/app@sha256:d".into()]),
            ..Default::default()
        };
        assert_eq!(image_digest(&image, "reg.test:5443/ctl/app").as_deref(), Some("sha256:d"));
        assert_eq!(image_digest(&image, "nope").as_deref(), Some("sha256:o"));
        let local = bollard::models::ImageInspect { id: Some("sha256:id".into()), ..Default::default() };
        assert_eq!(image_digest(&local, "x").as_deref(), Some("sha256:id"));
    }
}
