//! Every change to units goes through here: validation, policy, an atomic write of the file,
//! a revision and an audit record, daemon-reload, and systemd jobs awaited to their end.
//! Nothing is written unless everything before the write passed.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::Daemon;
use super::OpError;
use crate::db::NewAudit;
use crate::policy::Caller;
use crate::policy::{self, Action, Role};
use crate::time::now_ms;
use crate::unit::{self, Unit, UnitName, VolumeSource};

pub use crate::wire::{Applied, JobDone};

/// The answer of a preview: what a write of the text would say and change.
#[derive(Debug)]
pub struct Preview {
    pub changed: bool,
    pub diagnostics: Vec<crate::diag::Diagnostic>,
    pub violations: Vec<policy::Violation>,
    pub diff: String,
    /// What a write would warn about (see [`Applied::warnings`]).
    pub warnings: Vec<String>,
}

pub fn name(raw: &str) -> Result<UnitName, OpError> {
    UnitName::new(raw).map_err(OpError::InvalidInput)
}

/// The file `containerctl new NAME --image IMAGE --version TAG -- ARGS...` writes.
pub fn new_unit_text(image: &str, version: &str, args: &[String]) -> String {
    let mut doc = toml_edit::DocumentMut::new();
    let mut container = toml_edit::Table::new();
    container.insert("image", toml_edit::value(image));
    container.insert("version", toml_edit::value(version));
    if !args.is_empty() {
        let mut a = toml_edit::Array::new();
        for arg in args {
            a.push(arg.as_str());
        }
        container.insert("args", toml_edit::value(a));
    }
    doc.insert("container", toml_edit::Item::Table(container));
    doc.to_string()
}

impl Daemon {
    /// Records a mutation (or its refusal) in the audit table and the journal. `unit` is None
    /// for changes that concern no unit (tokens, keys).
    pub(crate) fn audit(
        &self,
        caller: &Caller,
        action: &str,
        unit: Option<&str>,
        before: Option<String>,
        after: Option<String>,
        result: &str,
    ) {
        let entry = NewAudit {
            at_ms: now_ms(),
            actor: caller.actor.clone(),
            role: caller.role.to_string(),
            action: action.to_owned(),
            unit: unit.map(str::to_owned),
            before,
            after,
            result: result.to_owned(),
        };
        let what = match unit {
            Some(u) => format!("{action} {u}"),
            None => action.to_owned(),
        };
        if let Err(e) = self.db().record_audit(&entry) {
            tracing::error!("cannot record audit of {what}: {e}");
        }
        tracing::info!(actor = %caller.actor, role = %caller.role, action, unit, result, "{} {what}: {result}", caller.actor);
    }

    pub(super) fn current_unit(&self, name: &UnitName) -> Option<Unit> {
        self.definition(name).and_then(|d| d.unit.ok())
    }

    pub(super) fn protected(&self, name: &UnitName) -> bool {
        self.current_unit(name).is_some_and(|u| u.service.protected)
    }

    /// `v` with the location of its key in the unit's current file, when both are known.
    fn located(&self, name: &UnitName, v: policy::Violation) -> policy::Violation {
        let mut v = [v];
        if let Some(d) = self.definition(name) {
            policy::locate(&mut v, &d.path.display().to_string(), &d.text);
        }
        let [v] = v;
        v
    }

    /// Whether the caller's role may do `verb` to `name` as it is now (protected or not); a refusal
    /// is audited as `action` and names the rule.
    fn may(&self, caller: &Caller, verb: Action, name: &UnitName, action: &str) -> Result<(), OpError> {
        policy::may(caller.role, verb, name.as_str(), self.protected(name)).map_err(|v| {
            let v = self.located(name, v);
            self.audit(caller, action, Some(name.as_str()), None, None, &format!("refused: {v}"));
            forbidden_one(v)
        })
    }

    /// Validates, checks and writes `text` as the admin unit file of `name`.
    pub async fn apply_text(
        &self,
        caller: &Caller,
        name: &UnitName,
        text: String,
        action: &str,
        restart: bool,
    ) -> Result<Applied, OpError> {
        let _guard = self.write_lock.lock().await;
        let target = self.config.unit_dir.join(format!("{name}.toml"));
        let file = target.display().to_string();
        // Who may edit comes before what the text says: a caller who may not edit this unit learns
        // nothing from the validation of a text it sent (a viewer's edit is 403, valid or not).
        let current = self.definition(name);
        let before = current.as_ref().and_then(|d| d.unit.as_ref().ok());
        let verb = if action == "revert" { Action::Revert } else { Action::Edit };
        let protected = before.is_some_and(|b| b.service.protected);
        policy::may(caller.role, verb, name.as_str(), protected).map_err(|v| {
            let mut v = [v];
            policy::locate(&mut v, &file, &text);
            let [v] = v;
            let v = if v.location.is_some() { v } else { self.located(name, v) };
            self.audit(caller, action, Some(name.as_str()), None, None, &format!("refused: {v}"));
            forbidden_one(v)
        })?;
        let after = unit::parse(name.as_str(), &file, &text).map_err(|diagnostics| OpError::Invalid {
            message: format!("{file} is not valid: nothing was changed"),
            diagnostics,
        })?;
        let mut violations = self.check_definition(caller, name, before, &after);
        policy::locate(&mut violations, &file, &text);
        if !violations.is_empty() {
            let result = violations.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
            self.audit(caller, action, Some(name.as_str()), None, None, &format!("refused: {result}"));
            return Err(OpError::Refused {
                message: format!("the policy refuses this definition of {name}: nothing was changed"),
                violations,
            });
        }
        let warnings = self.definition_warnings(caller, &file, &text, &after);
        let unchanged = current.as_ref().is_some_and(|d| d.path == target && d.text == text);
        if unchanged {
            return Ok(Applied {
                name: name.to_string(),
                changed: false,
                revision: None,
                restarted: false,
                path: file,
                warnings,
            });
        }
        let conflicts = self.port_conflicts(name, &after, &file, &text);
        if !conflicts.is_empty() {
            let result = conflicts.iter().map(|d| d.message.clone()).collect::<Vec<_>>().join("; ");
            self.audit(caller, action, Some(name.as_str()), None, None, &format!("refused: {result}"));
            return Err(OpError::Invalid {
                message: format!("{file} publishes a host port another unit publishes: nothing was changed"),
                diagnostics: conflicts,
            });
        }
        // A hand edit not yet recorded gets its own revision, so this one's before is right.
        self.record_hand_edit(name, current.as_ref());
        write_atomically(&target, &text)
            .map_err(|e| OpError::Internal(format!("cannot write {file}: {e}")))?;
        let revision = self.db().record_revision(name.as_str(), &caller.actor, action, &text, now_ms())?;
        self.audit(caller, action, Some(name.as_str()), current.map(|d| d.text), Some(text), "ok");
        // Recorded: a hand-edit scan after the reload below sees the latest revision.
        drop(_guard);
        // Taken before the reload: during a daemon-reload systemd briefly drops every unit.
        let active =
            self.units.read().ok().and_then(|u| u.get(name.as_str()).map(|s| s.active_state == "active"));
        self.systemd.reload().await?;
        self.listing.reload_ended();
        self.changed();
        let mut restarted = false;
        if restart && active == Some(true) {
            self.job(caller, name, Action::Restart).await?;
            restarted = true;
        }
        Ok(Applied { name: name.to_string(), changed: true, revision, restarted, path: file, warnings })
    }

    /// What the policy says of `after` replacing `before`, for `caller`: the same check for a
    /// preview as for a write, host paths resolved as Docker will see them.
    pub fn check_definition(
        &self,
        caller: &Caller,
        name: &UnitName,
        before: Option<&Unit>,
        after: &Unit,
    ) -> Vec<policy::Violation> {
        if caller.role >= Role::Admin {
            return Vec::new();
        }
        let (resolved, unresolved) = resolve_host_paths(after);
        let others: Vec<String> = crate::search::discover(&crate::search::search_path())
            .into_iter()
            .filter_map(|found| match found {
                crate::search::Found::File { name, .. } | crate::search::Found::Masked { name, .. } => {
                    Some(name.to_string())
                }
                crate::search::Found::BadName { .. } => None,
            })
            .collect();
        let checked = policy::check_definition(caller.role, &self.config.policy, before, &resolved, &others);
        let mut violations = checked.err().unwrap_or_default();
        // A path that does not resolve could become a symlink anywhere before Docker mounts
        // it; operators get only paths that exist (an admin creates them). Units with [deploy]
        // may have no host path at all (the policy said so already).
        if after.deploy.is_none() {
            // The runner walks these paths again at every start and refuses a symlink below an
            // allowed root; refuse it here already, so a saved unit is one that can start.
            let roots = &self.config.policy.allowed_host_paths;
            for (i, v) in after.container.volumes.iter().enumerate() {
                let VolumeSource::Host(p) = &v.source else { continue };
                if unresolved.iter().any(|(j, _)| *j == i) {
                    continue;
                }
                let Some(root) = crate::runner::hostpath::root_of(p, roots).filter(|r| r.parent().is_some())
                else {
                    continue;
                };
                if let Err(refusal) = crate::runner::hostpath::walk(p, root, false) {
                    let mut violation =
                        policy::Violation::new("host paths allow-list", format!("{name}: {refusal}"));
                    violation.key = Some(format!("container.volumes[{i}]"));
                    violation.fix =
                        Some(format!("replace the symbolic link in {} with a directory", p.display()).into());
                    violations.push(violation);
                }
            }
            for (i, p) in unresolved {
                let mut v = policy::Violation::new(
                    "host paths allow-list",
                    format!(
                        "{name}: host path {} does not exist or cannot be resolved: ask an admin to create it",
                        p.display()
                    ),
                );
                v.key = Some(format!("container.volumes[{i}]"));
                v.fix = Some(format!("create {}", p.display()).into());
                violations.push(v);
            }
        }
        violations
    }

    /// The host ports of `after` (the text `text` of `file`) that another unit already publishes:
    /// Docker would refuse to start the second, so it is refused when it is saved (admins too).
    pub(super) fn port_conflicts(
        &self,
        name: &UnitName,
        after: &Unit,
        file: &str,
        text: &str,
    ) -> Vec<crate::diag::Diagnostic> {
        if after.container.ports.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for (other_name, other) in self.definitions() {
            let Ok(other_unit) = &other.unit else { continue };
            if other_name == *name {
                continue;
            }
            for (i, p) in after.container.ports.iter().enumerate() {
                let Some(j) = other_unit.container.ports.iter().position(|q| p.conflicts(q)) else {
                    continue;
                };
                let other_file = other.path.display().to_string();
                let there = match port_span(&other.text, j) {
                    Some(span) => {
                        crate::diag::Diagnostic::at(&other_file, &other.text, span, "", None).location()
                    }
                    None => other_file,
                };
                out.push(crate::diag::Diagnostic::at(
                    file,
                    text,
                    port_span(text, i).unwrap_or(0..0),
                    format!(
                        "host port {} is already published by unit {other_name} ({there})",
                        p.host_socket()
                    ),
                    Some(format!(
                        "pick another host port, or free it in {other_name} first: Docker cannot start both"
                    )),
                ));
            }
        }
        out
    }

    /// What `apply_text` would say of `text` and what it would change, writing nothing.
    pub fn preview(&self, caller: &Caller, name: &UnitName, text: &str) -> Preview {
        let file = self.config.unit_dir.join(format!("{name}.toml")).display().to_string();
        let current = self.definition(name);
        let current_text = current.as_ref().map(|def| def.text.clone()).unwrap_or_default();
        let (diagnostics, violations, warnings) = match unit::parse(name.as_str(), &file, text) {
            Ok(after) => {
                let before = current.as_ref().and_then(|def| def.unit.as_ref().ok());
                let mut violations = self.check_definition(caller, name, before, &after);
                policy::locate(&mut violations, &file, text);
                let warnings = self.definition_warnings(caller, &file, text, &after);
                (self.port_conflicts(name, &after, &file, text), violations, warnings)
            }
            Err(diags) => (diags, Vec::new(), Vec::new()),
        };
        // A viewer compares redacted texts: the diff shows no credential, and `changed` cannot
        // tell whether a guessed value is the one in the file.
        let (current_text, text) = if policy::reads_plain_values(caller.role) {
            (current_text, text.to_owned())
        } else {
            (unit::redact::redact(&current_text), unit::redact::redact(text))
        };
        let diff = if current_text == text {
            String::new()
        } else {
            similar::TextDiff::from_lines(&current_text, &text)
                .unified_diff()
                .context_radius(3)
                .header(&format!("{name} current"), &format!("{name} proposed"))
                .to_string()
        };
        Preview { changed: current_text != text, diagnostics, violations, diff, warnings }
    }

    /// `set NAME KEY=VALUE... --unset KEY...` keeping the file's comments and layout.
    pub async fn set(
        &self,
        caller: &Caller,
        name: &UnitName,
        assignments: &[String],
        unset: &[String],
        action: &str,
        restart: bool,
    ) -> Result<Applied, OpError> {
        let current = self.definition(name).ok_or_else(|| not_found(name))?;
        // A caller who may not edit the unit is refused before its assignments are read.
        self.may(caller, Action::Edit, name, action)?;
        let text = apply_assignments(&current.text, assignments, unset).map_err(OpError::InvalidInput)?;
        self.apply_text(caller, name, text, action, restart).await
    }

    /// Writes a new unit file: `text` goes through the same checks as an edit (action `new`).
    pub async fn create(&self, caller: &Caller, name: &UnitName, text: String) -> Result<Applied, OpError> {
        if self.definition(name).is_some() {
            return Err(OpError::Conflict(format!(
                "unit {name} already exists: edit it with containerctl edit {name}"
            )));
        }
        self.apply_text(caller, name, text, "new", false).await
    }

    pub async fn remove(&self, caller: &Caller, name: &UnitName) -> Result<(), OpError> {
        let current = self.definition(name).ok_or_else(|| not_found(name))?;
        self.may(caller, Action::Remove, name, "rm")?;
        if !current.path.starts_with(&self.config.unit_dir) {
            return Err(OpError::Conflict(format!(
                "{} is a vendor or runtime unit and cannot be removed: mask it with ln -s /dev/null {}/{name}.toml",
                current.path.display(),
                self.config.unit_dir.display()
            )));
        }
        let _ = self.systemd.stop(&name.service()).await;
        self.remove_container(name).await;
        let guard = self.write_lock.lock().await;
        // Read again under the lock: what is removed is what was recorded last.
        let current = self.definition(name).unwrap_or(current);
        self.record_hand_edit(name, Some(&current));
        std::fs::remove_file(&current.path)
            .map_err(|e| OpError::Internal(format!("cannot remove {}: {e}", current.path.display())))?;
        self.db().record_revision(name.as_str(), &caller.actor, "rm", "", now_ms())?;
        self.audit(caller, "rm", Some(name.as_str()), Some(current.text), None, "ok");
        drop(guard);
        self.systemd.reload().await?;
        self.listing.reload_ended();
        self.changed();
        Ok(())
    }

    /// Removes the unit's exited container, if it is ours (labelled with its NAME).
    async fn remove_container(&self, name: &UnitName) {
        self.remove_own_container(name, true).await;
    }

    /// Removes the container a unit kept (a stop keeps it for the next start) once its unit
    /// file was removed by hand: nothing would start it again. A running one stays (the unit
    /// still runs until it is stopped), and so does one that is not ours. True if removed.
    pub(super) async fn remove_orphaned_container(&self, name: &UnitName) -> bool {
        let active =
            self.units.read().ok().and_then(|u| u.get(name.as_str()).map(|s| s.active_state.clone()));
        if active.is_some_and(|a| a != "inactive" && a != "failed") {
            return false;
        }
        self.remove_own_container(name, false).await
    }

    /// Removes `containerctl-NAME` if it is labelled with NAME; a running one only with `force`.
    async fn remove_own_container(&self, name: &UnitName, force: bool) -> bool {
        let Some(docker) = self.docker() else { return false };
        let container = name.container_name();
        let Ok(c) = docker.inspect_container(&container, None).await else { return false };
        let running = c.state.as_ref().and_then(|s| s.running).unwrap_or(false);
        let ours = c.config.and_then(|c| c.labels).is_some_and(|l| {
            l.get(crate::runner::spec::LABEL_UNIT).map(String::as_str) == Some(name.as_str())
        });
        if !ours || (running && !force) {
            return false;
        }
        // Without force dockerd refuses a container that started meanwhile.
        let options =
            bollard::query_parameters::RemoveContainerOptionsBuilder::default().force(force).build();
        match docker.remove_container(&container, Some(options)).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("cannot remove container {container}: {e}");
                false
            }
        }
    }

    /// start, stop or restart, awaited to the job's end.
    pub async fn job(&self, caller: &Caller, name: &UnitName, action: Action) -> Result<JobDone, OpError> {
        let verb = match action {
            Action::Start => "start",
            Action::Stop => "stop",
            _ => "restart",
        };
        if self.definition(name).is_none() && !self.units.read().is_ok_and(|u| u.contains_key(name.as_str()))
        {
            return Err(not_found(name));
        }
        policy::may(caller.role, action, name.as_str(), self.protected(name)).map_err(|v| {
            let v = self.located(name, v);
            self.audit(caller, verb, Some(name.as_str()), None, None, &format!("refused: {v}"));
            forbidden_one(v)
        })?;
        if action == Action::Restart {
            self.refuse_invalid_restart(caller, name)?;
        }
        let unit = name.service();
        if action != Action::Stop {
            let unrunnable = self.unrunnable_requirements(name);
            if !unrunnable.is_empty() {
                let message = format!(
                    "cannot {verb} {unit}: it requires {}; create the unit or remove it from service.requires",
                    unrunnable.join("; and ")
                );
                self.audit(caller, verb, Some(name.as_str()), None, None, &format!("refused: {message}"));
                return Err(OpError::Conflict(message));
            }
            // An explicit start is the admin's decision: the crash-loop start limit must not refuse it.
            self.systemd.reset_failed(&unit).await?;
        }
        let outcome = match action {
            Action::Start => self.systemd.start(&unit).await?,
            Action::Stop => self.systemd.stop(&unit).await?,
            _ => self.systemd.restart(&unit).await?,
        };
        self.refresh(name).await;
        let state = self.view(name);
        if outcome.is_done() {
            self.audit(caller, verb, Some(name.as_str()), None, None, "ok");
            return Ok(JobDone { name: name.to_string(), job: outcome.job, result: outcome.result, state });
        }
        let mut status_text = state.as_ref().map(|s| s.status_text.clone()).unwrap_or_default();
        if outcome.kind() == crate::systemd::JobResult::Dependency {
            // The unit's own status text is that of its previous run: name what it waited for.
            let failed = self.failed_requirements(name).await;
            if !failed.is_empty() {
                status_text = failed.join("; ");
            }
        }
        self.audit(caller, verb, Some(name.as_str()), None, None, &format!("job {}", outcome.result));
        if outcome.kind() == crate::systemd::JobResult::Canceled {
            return Err(canceled_job(verb, name));
        }
        let log = crate::logs::tail(name, 10).await.into_iter().map(|l| l.message).collect();
        Err(OpError::JobFailed {
            message: format!(
                "{verb} of {unit} ended with result {}{}",
                outcome.result,
                if status_text.is_empty() { String::new() } else { format!(": {status_text}") }
            ),
            result: outcome.result,
            status_text,
            log,
        })
    }

    /// A restart must not run into a file that does not validate: the generator would drop the
    /// unit at the next reload, and the running container is what the admin has. Refused, the
    /// container keeps running.
    fn refuse_invalid_restart(&self, caller: &Caller, name: &UnitName) -> Result<(), OpError> {
        let Some(def) = self.definition(name) else { return Ok(()) };
        if def.unit.is_ok() {
            return Ok(());
        }
        let file = def.path.display().to_string();
        let diagnostics = match unit::parse(name.as_str(), &file, &def.text) {
            Err(diagnostics) if !def.text.is_empty() => diagnostics,
            _ => {
                let message = def.unit.err().unwrap_or_default();
                vec![crate::diag::Diagnostic::file_level(&file, message, None)]
            }
        };
        let message = format!(
            "{file} is not valid: not restarting {name}, its container keeps running: fix the file (containerctl validate {file})"
        );
        self.audit(
            caller,
            "restart",
            Some(name.as_str()),
            None,
            None,
            &format!("refused: {file} is not valid"),
        );
        Err(OpError::Invalid { message, diagnostics })
    }

    pub async fn enable(&self, caller: &Caller, name: &UnitName, enabled: bool) -> Result<Applied, OpError> {
        let action = if enabled { Action::Enable } else { Action::Disable };
        let verb = if enabled { "enable" } else { "disable" };
        policy::may(caller.role, action, name.as_str(), self.protected(name)).map_err(|v| {
            let v = self.located(name, v);
            self.audit(caller, verb, Some(name.as_str()), None, None, &format!("refused: {v}"));
            forbidden_one(v)
        })?;
        self.set(caller, name, &[format!("service.enabled={enabled}")], &[], verb, false).await
    }

    pub async fn revert(
        &self,
        caller: &Caller,
        name: &UnitName,
        rev: u32,
        restart: bool,
    ) -> Result<Applied, OpError> {
        let r = self.db().revision(name.as_str(), rev)?;
        let r = r.ok_or_else(|| {
            OpError::NotFound(format!("unit {name} has no revision {rev}: see containerctl history {name}"))
        })?;
        if r.text.is_empty() {
            return Err(OpError::InvalidInput(format!(
                "revision {rev} of {name} is its removal: pick an earlier one"
            )));
        }
        self.apply_text(caller, name, r.text, "revert", restart).await
    }
}

pub(super) fn not_found(name: &UnitName) -> OpError {
    OpError::NotFound(format!(
        "no unit {name}: create it with containerctl new {name} or list units with containerctl list"
    ))
}

/// The span of `container.ports[index]` in a unit file's text.
fn port_span(text: &str, index: usize) -> Option<std::ops::Range<usize>> {
    let doc = toml_edit::Document::parse(text).ok()?;
    doc.get("container")?.get("ports")?.as_array()?.get(index)?.span()
}

fn forbidden_one(v: policy::Violation) -> OpError {
    OpError::refused(v)
}

/// Follows symlinks of host paths, so an allow-listed directory holding a symlink to /etc does
/// not let /etc through the policy. Returns the resolved unit and the host paths that did not
/// resolve (missing, or a dangling symlink on the way), with their index in `volumes`.
fn resolve_host_paths(u: &Unit) -> (Unit, Vec<(usize, PathBuf)>) {
    let mut u = u.clone();
    let mut unresolved = Vec::new();
    for (i, v) in u.container.volumes.iter_mut().enumerate() {
        if let VolumeSource::Host(p) = &mut v.source {
            match std::fs::canonicalize(&*p) {
                Ok(real) => *p = real,
                Err(_) => unresolved.push((i, p.clone())),
            }
        }
    }
    for d in &mut u.container.devices {
        if let Ok(real) = std::fs::canonicalize(&d.host) {
            if real != d.host && !d.host.starts_with("/dev/serial") && !d.host.starts_with("/dev/v4l") {
                d.host = real;
            }
        }
    }
    (u, unresolved)
}

/// Writes `text` to `path` so that readers see the old or the new file, never a mix: a temporary
/// file in the same directory, fsync, rename, fsync of the directory.
/// Writes a unit file atomically (mode 0644), creating its directory when missing.
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    crate::atomic_file::write(path, text.as_bytes(), 0o644)
}

/// Applies `TABLE.KEY=VALUE` assignments, then removes the keys of `unset`, keeping comments and
/// layout. An inline table (`env = { A = "1" }`) is a table like any other. Every key is checked
/// before anything changes: an unknown or malformed key refuses the whole request.
pub fn apply_assignments(text: &str, assignments: &[String], unset: &[String]) -> Result<String, String> {
    let mut doc = toml_edit::DocumentMut::from_str(text)
        .map_err(|e| format!("the current file does not parse: {e}"))?;
    let mut set_keys = Vec::new();
    for a in assignments {
        let (key, value) = a
            .split_once('=')
            .ok_or_else(|| format!("`{a}` is not KEY=VALUE (like container.version=1.5)"))?;
        let path = key_path(key)?;
        unit::keys::check(&path)?;
        if let [table] = path[..] {
            if unit::keys::of_table(table).is_some() {
                return Err(format!("`{table}` is a table: set one of its keys, like {table}.KEY=VALUE"));
            }
        }
        set_keys.push(path.join("."));
        let value = value.trim();
        let quoted = value.starts_with('"') || value.starts_with('\'');
        let parsed = if unit::keys::takes_string(&path) && !quoted {
            toml_edit::Value::from(value)
        } else {
            toml_edit::Value::from_str(value).unwrap_or_else(|_| toml_edit::Value::from(value))
        };
        assign(&mut doc, &path, parsed)?;
    }
    for key in unset {
        let path = key_path(key)?;
        if set_keys.contains(&path.join(".")) {
            return Err(format!("`{}` is both set and unset: give it once", path.join(".")));
        }
        remove(&mut doc, &path)?;
    }
    Ok(doc.to_string())
}

fn key_path(key: &str) -> Result<Vec<&str>, String> {
    let path: Vec<&str> = key.trim().split('.').collect();
    if path.iter().any(|p| p.is_empty()) {
        return Err(format!("`{}` is not a key path (like service.restart)", key.trim()));
    }
    Ok(path)
}

fn assign(doc: &mut toml_edit::DocumentMut, path: &[&str], value: toml_edit::Value) -> Result<(), String> {
    let key = path.join(".");
    let (last, tables) = path.split_last().ok_or_else(|| format!("`{key}` is empty"))?;
    let mut table: &mut dyn toml_edit::TableLike = doc.as_table_mut();
    // Inside an inline table, a missing table is inline too.
    let mut inline = false;
    for t in tables {
        let new = if inline {
            toml_edit::Item::Value(toml_edit::Value::InlineTable(toml_edit::InlineTable::new()))
        } else {
            toml_edit::Item::Table(toml_edit::Table::new())
        };
        let item = table.entry(t).or_insert(new);
        inline |= item.is_inline_table();
        table = item.as_table_like_mut().ok_or_else(|| format!("`{t}` in `{key}` is not a table"))?;
    }
    match table.get_mut(last).and_then(|i| i.as_value_mut()) {
        Some(existing) => {
            let decor = existing.decor().clone();
            *existing = value;
            *existing.decor_mut() = decor;
        }
        None => {
            let mut value = value;
            if inline {
                // `{ A = "1" }`: the space before `}` belongs to the last value; keep it last.
                if let Some(previous) = table.iter_mut().last().and_then(|(_, i)| i.as_value_mut()) {
                    let suffix = previous.decor().suffix().cloned();
                    previous.decor_mut().set_suffix("");
                    if let Some(suffix) = suffix {
                        value.decor_mut().set_suffix(suffix);
                    }
                }
            }
            table.insert(last, toml_edit::Item::Value(value));
        }
    }
    Ok(())
}

/// Removes the key at `path`. A key the file does not have is no change, unless no unit file may
/// have it: then it is refused like a typo. A key the file has is removed even if it is unknown.
fn remove(doc: &mut toml_edit::DocumentMut, path: &[&str]) -> Result<(), String> {
    let key = path.join(".");
    let (last, tables) = path.split_last().ok_or_else(|| format!("`{key}` is empty"))?;
    let mut table: Option<&mut dyn toml_edit::TableLike> = Some(doc.as_table_mut());
    for t in tables {
        table = match table.and_then(|tl| tl.get_mut(t)) {
            Some(item) if item.is_table_like() => item.as_table_like_mut(),
            Some(_) => return Err(format!("`{t}` in `{key}` is not a table")),
            None => None,
        };
    }
    match table {
        Some(table) if table.contains_key(last) => {
            table.remove(last);
            Ok(())
        }
        _ => unit::keys::check(path),
    }
}

/// A job systemd canceled: another start, stop or restart of the unit replaced it while it ran
/// (two callers at once). Nothing failed: it is a conflict with that other request, not a 502.
fn canceled_job(verb: &str, name: &UnitName) -> OpError {
    OpError::Conflict(format!(
        "the {verb} of {name} was canceled: another start, stop or restart of it replaced it while it \
         ran; see its state with `containerctl status {name}` and try again if needed"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_canceled_job_is_a_conflict_naming_the_unit() {
        let name = UnitName::new("web").expect("a valid name");
        let e = canceled_job("restart", &name);
        assert!(
            matches!(&e, OpError::Conflict(m) if m.starts_with("the restart of web was canceled: another")),
            "{e:?}"
        );
    }

    #[test]
    fn a_new_unit_from_image_version_and_args_is_a_valid_file() {
        let text = new_unit_text("ctl-test/busybox", "1", &["sh".into(), "-c".into(), "echo \"hi\"".into()]);
        assert_eq!(
            text,
            "[container]\nimage = \"ctl-test/busybox\"\nversion = \"1\"\nargs = [\"sh\", \"-c\", 'echo \"hi\"']\n"
        );
        let unit = crate::unit::parse("x", "x.toml", &text).expect("valid");
        assert_eq!(unit.container.args.len(), 3);
        assert!(!new_unit_text("a", "1", &[]).contains("args"));
    }

    #[test]
    fn assignments_keep_comments_and_layout() {
        let text = "# camera\n[container]\nimage   = \"a\"  # repo\nversion = \"1\"\n\n[service]\nrestart = \"no\"\n";
        let out = apply_assignments(
            text,
            &[
                "container.version=1.5".into(),
                "service.restart=always".into(),
                "container.args=[\"-v\", \"x\"]".into(),
                "health.cmd=[\"true\"]".into(),
            ],
            &[],
        )
        .expect("applies");
        assert!(
            out.starts_with("# camera\n[container]\nimage   = \"a\"  # repo\nversion = \"1.5\"\n"),
            "{out}"
        );
        assert!(out.contains("restart = \"always\""), "{out}");
        assert!(out.contains("args = [\"-v\", \"x\"]"), "{out}");
        assert!(out.contains("[health]\ncmd = [\"true\"]"), "{out}");
        assert!(apply_assignments(text, &["novalue".into()], &[]).is_err());
        assert!(apply_assignments(text, &["container.image.x=1".into()], &[]).is_err());
        assert!(apply_assignments(text, &[".x=1".into()], &[]).is_err());
    }

    #[test]
    fn values_that_are_not_toml_are_strings() {
        let out = apply_assignments(
            "[container]\n",
            &["container.version=1.4.2-rc1".into(), "container.init=true".into()],
            &[],
        )
        .expect("applies");
        assert!(out.contains("version = \"1.4.2-rc1\""), "{out}");
        assert!(out.contains("init = true"), "{out}");
    }

    #[test]
    fn inline_tables_are_tables_and_env_values_strings() {
        let text = "[container]\nimage = \"a\"\nenv = { A = \"1\" } # env\n";
        let out = apply_assignments(
            text,
            &["container.env.B=2".into(), "container.env.C=true".into(), "container.env.A=\"x y\"".into()],
            &[],
        )
        .expect("applies");
        assert_eq!(out, "[container]\nimage = \"a\"\nenv = { A = \"x y\", B = \"2\", C = \"true\" } # env\n");
        let out = apply_assignments("[container]\nimage = \"a\"\n", &["container.env.TZ=1".into()], &[])
            .expect("applies");
        assert!(out.contains("TZ = \"1\""), "{out}");
    }

    #[test]
    fn unset_removes_keys_and_keeps_the_rest() {
        let text = "# web\n[container]\nimage = \"a\"  # repo\nuser = \"1000\"\nenv = { A = \"1\", B = \"2\" }\n\n[health]\ncmd = [\"true\"]\n";
        let out = apply_assignments(
            text,
            &[],
            &["container.user".into(), "container.env.A".into(), "health".into(), "service.restart".into()],
        )
        .expect("applies");
        assert_eq!(out, "# web\n[container]\nimage = \"a\"  # repo\nenv = { B = \"2\" }\n");
        // A key no unit may have is refused, unless the file has it (then removing it is the fix).
        let e = apply_assignments(text, &[], &["container.usr".into()]).expect_err("unknown");
        assert!(e.contains("did you mean `user`?"), "{e}");
        let out = apply_assignments("[container]\nimgae = \"a\"\n", &[], &["container.imgae".into()])
            .expect("applies");
        assert_eq!(out, "[container]\n");
        assert!(apply_assignments(text, &["container.user=2".into()], &["container.user".into()]).is_err());
        assert!(apply_assignments(text, &[], &["container.image.x".into()]).is_err());
    }

    #[test]
    fn unknown_keys_are_refused_before_anything_changes() {
        let text = "[container]\nimage = \"a\"\n";
        let e = apply_assignments(text, &["container.version=2".into(), "container.imgae=b".into()], &[])
            .expect_err("unknown");
        assert!(e.contains("unknown key `container.imgae`: did you mean `image`?"), "{e}");
        let e = apply_assignments(text, &["container=1".into()], &[]).expect_err("a table");
        assert!(e.contains("`container` is a table"), "{e}");
        assert!(apply_assignments(text, &["sevrice.restart=no".into()], &[]).is_err());
    }

    #[test]
    fn port_spans_point_at_the_entry() {
        let text = "[container]\nports = [\"80:80\", \"8080:80\"]\n";
        assert_eq!(port_span(text, 1).map(|s| &text[s]), Some("\"8080:80\""));
        assert_eq!(port_span(text, 2), None);
    }

    #[test]
    fn atomic_write_replaces_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("web.toml");
        write_atomically(&p, "one").expect("write");
        write_atomically(&p, "two").expect("write");
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "two");
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1, "temporary file left behind");
    }
}
