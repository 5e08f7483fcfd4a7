//! `containerctl update` of a unit with `[deploy]`: a Swarm rolling update of its service.
//!
//! ```text
//! plan ─► resolve (the registry's digest; nodes pull) ─► save (revision `update`)
//!   ─► ServiceUpdate of containerctl-NAME (image@digest, update_config) ─► follow the tasks
//!   ─► completed: updated
//!   ─► rollback_completed: Swarm runs the previous spec again; the file is written back
//!      (revision `rollback`), the version remembered as bad ─► rolled_back
//!   ─► rollback_paused: rollback_failed
//! ```
//!
//! The service is updated in place, never re-created: Swarm replaces `update_parallelism` tasks
//! at a time and watches each for the soak (`Monitor`), and with `FailureAction = rollback` it is
//! Swarm, not containerctl, that goes back, so a daemon that dies mid-update leaves the service
//! converging on its own. The runner of the unit keeps supervising the service meanwhile.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bollard::models::{Service, Task};
use bollard::query_parameters::{ListTasksOptionsBuilder, LogsOptionsBuilder, UpdateServiceOptionsBuilder};
use futures_util::StreamExt;

use super::update::{failed, plan_text, FailureKind, Plan, UpdateFailure};
use super::Daemon;
use crate::policy::Caller;
use crate::progress::Progress;
use crate::runner::{spec, swarm};
use crate::unit::{systemd_duration, UnitName};
use crate::update::rolling::{self, Phase};
use crate::wire::UpdateResult;

/// How often the service and its tasks are read while the update runs.
const POLL: Duration = Duration::from_millis(500);
/// Lines of the failed task's output shown with a rollback.
const LOG_LINES: usize = 10;
/// How long the failed task's output is waited for (its node may be gone).
const LOG_WAIT: Duration = Duration::from_secs(5);

/// The hint of a failure in which nothing was changed.
const REGISTRY_HINT: &str = "check the version exists (containerctl update --check) and the registry's credentials (containerctl registry login)";

impl Daemon {
    /// Runs a planned update of a `[deploy]` unit: a rolling update of its Swarm service.
    pub(super) async fn update_swarm(
        &self,
        caller: &Caller,
        plan: &Plan,
        mut result: UpdateResult,
        p: &Progress,
    ) -> Result<UpdateResult, UpdateFailure> {
        let name = plan.name.clone();
        let c = &plan.unit.container;
        let deploy = plan.unit.deploy.clone().unwrap_or_default();
        // Units that require a Swarm service are not restarted with it: its tasks are replaced.
        result.dependants = Vec::new();
        p.step(
            "plan",
            "done",
            format!("{name}: {} → {}, {}", c.version, plan.to_version, rollout_words(plan)),
        );
        let docker = self.docker().ok_or_else(|| UpdateFailure {
            kind: FailureKind::Unavailable,
            ..failed("plan", "dockerd is not reachable", "start docker.service and try again")
        })?;
        let manager = docker.info().await.ok().and_then(|i| i.swarm?.control_available) == Some(true);
        if !manager {
            return Err(failed("plan", swarm::NOT_MANAGER, "run the update on a manager of the cluster"));
        }
        let service_name = name.container_name();
        let existing = match docker.inspect_service(&service_name, None).await {
            Ok(s) => Some(s),
            Err(e) if crate::runner::is_not_found(&e) => None,
            Err(e) => {
                return Err(UpdateFailure {
                    kind: FailureKind::Unavailable,
                    ..failed("plan", format!("cannot inspect service {service_name}: {e}"), "")
                })
            }
        };
        if let Some(s) = &existing {
            let labels = s.spec.as_ref().and_then(|s| s.labels.as_ref());
            if labels.and_then(|l| l.get(spec::LABEL_UNIT)).map(String::as_str) != Some(name.as_str()) {
                return Err(failed(
                    "plan",
                    format!("a service named {service_name} exists that containerctl did not create: nothing was changed"),
                    format!("rename or remove it (docker service rm {service_name})"),
                ));
            }
        }
        let running_image = existing.as_ref().and_then(service_image);
        result.from_digest =
            c.digest.clone().or(running_image.as_deref().and_then(rolling::digest_of).map(str::to_owned));

        // 1. The digest, from the registry: the nodes pull, this host need not.
        let reference = format!("{}:{}", c.image, plan.to_version);
        p.step("resolve", "running", format!("asking the registry for {reference}"));
        let auth = crate::runner::registry::for_image(&c.image).map(|cred| cred.auth);
        let digest = match docker.inspect_registry_image(&reference, auth.clone()).await {
            Ok(d) => d.descriptor.digest,
            Err(e) => {
                return Err(failed(
                    "resolve",
                    format!("cannot find {reference} in its registry: {e}: nothing was changed"),
                    REGISTRY_HINT,
                ))
            }
        };
        let Some(digest) = digest else {
            return Err(failed(
                "resolve",
                format!("the registry gave no digest for {reference}: nothing was changed"),
                REGISTRY_HINT,
            ));
        };
        if let Some(want) = plan.digest.as_ref().filter(|w| **w != digest) {
            return Err(failed(
                "resolve",
                format!("{reference} is {digest}, not the digest {want} asked for: nothing was changed"),
                "check the digest, or leave --digest out to pin what the registry serves",
            ));
        }
        result.to_digest = Some(digest.clone());
        p.step("resolve", "done", format!("{reference} is {digest}"));
        let new_image = format!("{reference}@{digest}");
        if running_image.as_deref() == Some(new_image.as_str()) {
            p.step("plan", "done", format!("service {service_name} runs {new_image} already"));
            result.outcome = "unchanged".into();
            return Ok(result);
        }

        let rec = self.start_record(caller, plan, result.from_digest.clone(), None)?;
        rec.set_digest(&digest);

        // 2. The new revision: version and digest.
        let text = match plan_text(&plan.text, &plan.to_version, Some(&digest)) {
            Ok(t) => t,
            Err(e) => return Err(rec.fail("save", e.to_string(), "")),
        };
        let applied = self.save_update(&rec, plan, text.clone(), &new_image, p).await?;
        result.revision = applied.revision;
        let Some(existing) = existing else {
            p.step(
                "rollout",
                "skipped",
                format!(
                    "service {service_name} does not run: {name} starts {} at its next start",
                    plan.to_version
                ),
            );
            let summary = format!("ok: {} → {} saved (not running)", c.version, plan.to_version);
            rec.end("updated", "saved while the service was not running", Some(summary));
            result.outcome = "saved".into();
            return Ok(result);
        };

        // 3. The rolling update: the same service, its spec with the new image.
        let nodes = self.node_names(&docker).await;
        let before = self.service_tasks(&docker, &service_name).await.unwrap_or_default();
        let known: HashSet<String> = before.iter().filter_map(|t| t.id.clone()).collect();
        let previous_status = existing.update_status.as_ref().and_then(|s| s.started_at.clone());
        // The spec is made again from the saved definition, as the runner makes it: an inspected
        // spec does not survive a round trip through bollard's types (its `HealthCheck` is
        // dockerd's `Healthcheck`, dropped on the way in), and the health check must reach Swarm.
        let unit = match crate::unit::parse(name.as_str(), &applied.path, &text) {
            Ok(u) => u,
            Err(_) => {
                let message = format!("the saved definition of {name} does not parse: nothing was changed");
                return Err(rec.fail("rollout", message, ""));
            }
        };
        let fingerprint = self.secrets.resolve(&unit.secrets).map(|r| r.fingerprint).unwrap_or_default();
        let mut service_spec = swarm::service_spec(&unit, &spec::definition_hash(&unit, &fingerprint), &[]);
        // The unit's secrets are the service's, as the runner made them (the update changes none).
        let secrets = existing
            .spec
            .as_ref()
            .and_then(|s| s.task_template.as_ref())
            .and_then(|t| t.container_spec.as_ref())
            .and_then(|c| c.secrets.clone());
        if let Some(cs) = service_spec.task_template.as_mut().and_then(|t| t.container_spec.as_mut()) {
            cs.secrets = secrets;
        }
        service_spec.update_config = Some(swarm::update_config(&deploy, plan.soak));
        service_spec.rollback_config = Some(swarm::rollback_config(&deploy, plan.soak));
        let version = existing.version.as_ref().and_then(|v| v.index).unwrap_or(0);
        let options = UpdateServiceOptionsBuilder::default()
            .version(i32::try_from(version).unwrap_or(i32::MAX))
            .build();
        p.step("rollout", "running", format!("updating service {service_name}: {}", rollout_words(plan)));
        let started = tokio::time::Instant::now();
        // The registry credential goes with the spec, as at create: Swarm hands it to the nodes.
        match docker.update_service(&service_name, service_spec, options, auth).await {
            Ok(answer) => {
                for w in answer.warnings.into_iter().flatten() {
                    p.step("rollout", "running", format!("dockerd: {w}"));
                }
            }
            Err(e) => {
                let why = format!("dockerd refused the update of service {service_name}: {e}");
                let restored = self.write_back(caller, &name, plan, result.from_digest.as_deref()).await;
                let message = match restored {
                    Ok(_) => format!("{why}: the service is unchanged and the file was written back"),
                    Err(e) => format!("{why}; writing the file back failed too: {e}"),
                };
                return Err(rec.fail("rollout", message, "see journalctl -u docker on this host"));
            }
        }
        let phase =
            self.follow_rollout(&docker, plan, &service_name, previous_status, &nodes, &known, p).await;
        let elapsed = started.elapsed().as_secs_f64();
        let tasks = self.service_tasks(&docker, &service_name).await.unwrap_or_default();
        match phase {
            Ok((Phase::Completed, _)) => {
                p.step(
                    "rollout",
                    "done",
                    format!(
                        "every task of {service_name} runs {} after {elapsed:.1}s: {}",
                        plan.to_version,
                        rolling::node_line(&tasks, &nodes, &known)
                    ),
                );
                Ok(self.updated(&rec, plan, result))
            }
            Ok((phase @ (Phase::RolledBack | Phase::RollbackPaused), message)) => {
                let failing = rolling::failing_task(&tasks, &nodes, &known);
                let reason = match &failing {
                    Some((_, task)) => task.clone(),
                    None if !message.is_empty() => message.clone(),
                    None => "a task failed".into(),
                };
                if let Some((task, _)) = &failing {
                    result.log = task_log(&docker, task).await;
                }
                self.remember_bad(plan, &digest, &reason);
                p.step(
                    "rollout",
                    "failed",
                    format!("{name} {}: {reason}; Swarm: {message}", plan.to_version),
                );
                // Swarm went back to the previous spec (all the way, or until the rollback
                // paused): the file says so again.
                let written = self.write_back(caller, &name, plan, result.from_digest.as_deref()).await;
                let (kind, message) = match (phase, &written) {
                    (Phase::RolledBack, Ok(rev)) => {
                        result.rollback_revision = *rev;
                        p.step(
                            "rollback",
                            "done",
                            format!(
                                "service {service_name} runs {} again (revision {}): {}",
                                c.version,
                                rev.map_or("-".into(), |r| r.to_string()),
                                rolling::node_line(&tasks, &nodes, &known)
                            ),
                        );
                        (FailureKind::RolledBack, format!("rolled back to {}: {reason}", c.version))
                    }
                    (_, Err(why)) => (
                        FailureKind::RollbackFailed,
                        format!(
                            "{} failed ({reason}) and writing back {} failed: {why}",
                            plan.to_version, c.version
                        ),
                    ),
                    (_, Ok(rev)) => {
                        result.rollback_revision = *rev;
                        (
                            FailureKind::RollbackFailed,
                            format!(
                                "{} failed ({reason}) and Swarm's rollback to {} paused: {message}",
                                plan.to_version, c.version
                            ),
                        )
                    }
                };
                let hint = format!("see docker service ps {service_name}");
                Err(self.rolled_back(&rec, plan, result, reason, (kind, message), "rollout", &hint))
            }
            Ok((phase, message)) => {
                let message =
                    format!("the rolling update of service {service_name} {}: {message}", phase.as_str());
                Err(rec.fail("rollout", message, format!("resume it with docker service update --rollback {service_name}, or run containerctl update {name} again")))
            }
            Err(message) => {
                Err(rec.fail("rollout", message, format!("follow it with docker service ps {service_name}")))
            }
        }
    }

    /// Reports each node's tasks until Swarm's update of the service is over; its final phase and
    /// Swarm's message. `previous` is when the update before this one started: until the status
    /// shows another, it is not this update's.
    #[allow(clippy::too_many_arguments)]
    async fn follow_rollout(
        &self,
        docker: &bollard::Docker,
        plan: &Plan,
        service: &str,
        previous: Option<String>,
        nodes: &HashMap<String, String>,
        known: &HashSet<String>,
        p: &Progress,
    ) -> Result<(Phase, String), String> {
        let deadline = tokio::time::Instant::now() + self.rollout_timeout(plan);
        let mut last = String::new();
        loop {
            let s = docker
                .inspect_service(service, None)
                .await
                .map_err(|e| format!("lost service {service} during its update: {e}"))?;
            let status = s.update_status.as_ref().filter(|u| u.started_at != previous);
            let phase = status.and_then(|u| u.state).and_then(Phase::of);
            let message = status.and_then(|u| u.message.clone()).unwrap_or_default();
            if let Some(phase) = phase.filter(|ph| ph.is_final()) {
                return Ok((phase, message));
            }
            let tasks = self.service_tasks(docker, service).await.unwrap_or_default();
            let line = format!(
                "{}: {}",
                phase.unwrap_or(Phase::Updating).as_str(),
                rolling::node_line(&tasks, nodes, known)
            );
            if line != last {
                p.step("rollout", "running", line.clone());
                last = line;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "the rolling update of service {service} is still under way after {}s ({last})",
                    self.rollout_timeout(plan).as_secs()
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Enough for every batch to start and soak, twice (forward and back).
    fn rollout_timeout(&self, plan: &Plan) -> Duration {
        let deploy = plan.unit.deploy.clone().unwrap_or_default();
        let batches = deploy.replicas.div_ceil(deploy.update_parallelism.max(1));
        let per_batch = crate::generator::start_timeout(&plan.unit) + deploy.update_delay + plan.soak;
        per_batch * batches * 2 + Duration::from_secs(60)
    }

    async fn service_tasks(&self, docker: &bollard::Docker, service: &str) -> Option<Vec<Task>> {
        let filters = HashMap::from([("service", vec![service.to_owned()])]);
        docker.list_tasks(Some(ListTasksOptionsBuilder::default().filters(&filters).build())).await.ok()
    }

    /// Node IDs to host names (IDs stand in when the nodes cannot be listed).
    async fn node_names(&self, docker: &bollard::Docker) -> HashMap<String, String> {
        let Ok(nodes) = docker.list_nodes(None).await else { return HashMap::new() };
        nodes.into_iter().filter_map(|n| Some((n.id?, n.description?.hostname?))).collect()
    }

    /// Writes back the text before the update with the digest the service ran (revision
    /// `rollback`); the revision, if one was made.
    async fn write_back(
        &self,
        caller: &Caller,
        name: &UnitName,
        plan: &Plan,
        digest: Option<&str>,
    ) -> Result<Option<u32>, String> {
        let c = &plan.unit.container;
        let text = plan_text(&plan.text, &c.version, digest).map_err(|e| e.to_string())?;
        let applied =
            self.apply_text(caller, name, text, "rollback", false).await.map_err(|e| e.to_string())?;
        Ok(applied.revision)
    }
}

/// The image the service's spec runs.
fn service_image(s: &Service) -> Option<String> {
    s.spec.as_ref()?.task_template.as_ref()?.container_spec.as_ref()?.image.clone()
}

/// "rolling update of 3 tasks, 1 at a time, 0s apart, stop-first, each watched for 30s".
fn rollout_words(plan: &Plan) -> String {
    let d = plan.unit.deploy.clone().unwrap_or_default();
    format!(
        "Swarm rolling update of {} task(s), {} at a time, {} apart, {}, each watched for {} (failure: rollback)",
        d.replicas,
        d.update_parallelism,
        systemd_duration(d.update_delay),
        d.update_order.as_str(),
        systemd_duration(plan.soak)
    )
}

/// The steps of a dry run of a `[deploy]` unit's update; `active`: whether the unit runs.
pub(super) fn dry_run_steps(plan: &Plan, active: bool) -> Vec<String> {
    let c = &plan.unit.container;
    let service = plan.name.container_name();
    let reference = format!("{}:{}", c.image, plan.to_version);
    let mut steps = vec![format!(
        "ask the registry for the digest of {reference} (nothing is pulled here: each node pulls for its tasks)"
    )];
    steps.push(match &plan.digest {
        Some(d) => format!("check that it is {d} and pin it"),
        None => "pin that digest (container.digest)".into(),
    });
    steps.push("save the unit file as a revision with action update".into());
    if active {
        steps.push(format!("update service {service} in place (not re-created): {}", rollout_words(plan)));
        steps.push(format!(
            "on failure: Swarm rolls {service} back to its current spec ({}); the current text is written back, with the digest the service ran if it had one (revision with action rollback), and {} is remembered as bad",
            c.digest.as_deref().map_or_else(|| format!("{}:{}", c.image, c.version), |d| format!("{}:{}@{d}", c.image, c.version)),
            plan.to_version
        ));
    } else {
        steps.push(format!(
            "no rolling update: {} is not running; it starts {} at its next start",
            plan.name, plan.to_version
        ));
    }
    steps
}

/// The last lines of a task's output, read through the manager from the task's node.
async fn task_log(docker: &bollard::Docker, task: &str) -> Vec<String> {
    let options =
        LogsOptionsBuilder::default().stdout(true).stderr(true).tail(&LOG_LINES.to_string()).build();
    let mut stream = docker.task_logs(task, Some(options));
    let mut lines = Vec::new();
    let read = async {
        while let Some(Ok(chunk)) = stream.next().await {
            let text = String::from_utf8_lossy(&chunk.into_bytes()).into_owned();
            lines.extend(text.lines().map(str::to_owned));
        }
    };
    let _ = tokio::time::timeout(LOG_WAIT, read).await;
    let skip = lines.len().saturating_sub(LOG_LINES);
    lines.split_off(skip)
}
