//! The runner of a unit with `[deploy]`: instead of one local container it owns the Docker Swarm
//! service `containerctl-NAME`, which the cluster schedules on its nodes.
//!
//! Same contract with systemd as the container path: READY=1 once `replicas` tasks run, STATUS=
//! with the task count, the service's output relayed to the journal, the service removed on
//! SIGTERM, and a non-zero exit when the service is lost so systemd's restart policy applies.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bollard::auth::DockerCredentials;
use bollard::container::LogOutput;
use bollard::models::{
    EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum, EndpointSpec,
    HealthConfig, Limit, Mount, MountType, NetworkAttachmentConfig, SecretSpec, ServiceSpec, ServiceSpecMode,
    ServiceSpecModeReplicated, ServiceSpecRollbackConfig, ServiceSpecRollbackConfigFailureActionEnum,
    ServiceSpecRollbackConfigOrderEnum, ServiceSpecUpdateConfig, ServiceSpecUpdateConfigFailureActionEnum,
    ServiceSpecUpdateConfigOrderEnum, ServiceUpdateStatusStateEnum, Task, TaskSpec, TaskSpecContainerSpec,
    TaskSpecContainerSpecFile, TaskSpecContainerSpecPrivileges, TaskSpecContainerSpecSecrets,
    TaskSpecPlacement, TaskSpecResources, TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum,
    TaskState,
};
use bollard::query_parameters::{
    ListSecretsOptionsBuilder, ListTasksOptionsBuilder, LogsOptionsBuilder, UpdateServiceOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;
use tokio::signal::unix::{signal, Signal, SignalKind};

use super::output::{Relay, Stream};
use super::{connect, describe, docker_err, is_not_found, log, registry, spec, RunError};
use crate::journal;
use crate::notify;
use crate::secrets::{Resolved, SecretName};
use crate::unit::{Deploy, Protocol, Restart, Unit, UnitName, UpdateOrder, Volume, VolumeSource};

/// How often the tasks are polled while the service converges, and while it runs.
const CONVERGE_POLL: Duration = Duration::from_millis(500);
const RUNNING_POLL: Duration = Duration::from_secs(3);
/// How long the service may have no running task before the runner gives up on it.
const NO_TASK_GRACE: Duration = Duration::from_secs(30);
/// Time granted per step of progress while converging, as the pull does.
const PROGRESS_EXTENSION: Duration = Duration::from_secs(30);
/// Kept below the unit's TimeoutStopSec= (stop_timeout + 5 s) when waiting for tasks to go.
const STOP_GRACE: Duration = Duration::from_secs(4);

/// The first API version whose Swarm container spec has `Privileges.NoNewPrivileges`.
const NO_NEW_PRIVILEGES_API: (usize, usize) = (1, 46);

pub const NOT_MANAGER: &str =
    "this host is not a Swarm manager: run `containerctl cluster init` or deploy from a manager";

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// The image reference the service runs: `image:version`, plus `@digest` when pinned.
pub fn image_reference(unit: &Unit) -> String {
    let c = &unit.container;
    match &c.digest {
        Some(d) => format!("{}@{d}", c.reference()),
        None => c.reference(),
    }
}

/// A volume as a Swarm mount: host paths and shared volumes are bind mounts, names are volumes.
pub fn mount(v: &Volume) -> Mount {
    let (typ, source) = match &v.source {
        VolumeSource::Host(p) => (MountType::BIND, p.display().to_string()),
        VolumeSource::Shared(n) => (MountType::BIND, format!("{}/{n}", Volume::SHARED_ROOT)),
        VolumeSource::Named(n) => (MountType::VOLUME, n.clone()),
    };
    Mount {
        target: Some(v.target.display().to_string()),
        source: Some(source),
        typ: Some(typ),
        read_only: v.read_only.then_some(true),
        ..Default::default()
    }
}

/// Label of the Swarm secrets the runner creates: the secret's NAME (the unit is in
/// [`spec::LABEL_UNIT`]).
pub const LABEL_SECRET: &str = "io.containerctl.secret";

/// A secret as a service references it: the Swarm secret that holds its value, by ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmSecret {
    pub name: SecretName,
    pub id: String,
    pub swarm_name: String,
}

/// The Swarm secret holding one value of a unit's secret. Swarm secrets are immutable, so the
/// name follows the value (through its keyed digest): a new value is a new Swarm secret, and the
/// old one is removed once no service uses it. At most 45 characters, as Swarm wants them.
pub fn swarm_secret_name(unit: &UnitName, digest: &str) -> String {
    let h = crate::digest::sha256_hex(format!("{unit}\0{digest}").as_bytes());
    format!("containerctl-{}", &h[..32])
}

/// The Swarm service spec for `unit` (which has `[deploy]`), its secrets as `secrets` name them.
/// Pure: no Docker connection here.
pub fn service_spec(unit: &Unit, hash: &str, secrets: &[SwarmSecret]) -> ServiceSpec {
    let c = &unit.container;
    let deploy = unit.deploy.clone().unwrap_or_default();
    let container_spec = TaskSpecContainerSpec {
        image: Some(image_reference(unit)),
        command: unit.entrypoint.as_deref().map(super::spec::entrypoint),
        args: (!c.args.is_empty()).then(|| c.args.clone()),
        env: (!c.env.is_empty()).then(|| c.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        user: c.user.clone(),
        dir: c.workdir.clone(),
        read_only: c.read_only.then_some(true),
        init: c.init.then_some(true),
        capability_add: (!c.capabilities.is_empty()).then(|| c.capabilities.clone()),
        mounts: (!c.volumes.is_empty()).then(|| c.volumes.iter().map(mount).collect()),
        // Files in /run/secrets, root's and readable by any user, like the local containers'.
        secrets: (!secrets.is_empty()).then(|| {
            secrets
                .iter()
                .map(|s| TaskSpecContainerSpecSecrets {
                    file: Some(TaskSpecContainerSpecFile {
                        name: Some(s.name.to_string()),
                        uid: Some("0".into()),
                        gid: Some("0".into()),
                        mode: Some(crate::secrets::FILE_MODE),
                    }),
                    secret_id: Some(s.id.clone()),
                    secret_name: Some(s.swarm_name.clone()),
                })
                .collect()
        }),
        // Swarm has this since API 1.46 (Docker Engine 27); older engines ignore it (see `run`).
        privileges: c
            .runs_with_no_new_privileges()
            .then(|| TaskSpecContainerSpecPrivileges { no_new_privileges: Some(true), ..Default::default() }),
        stop_grace_period: Some(nanos(unit.service.stop_timeout)),
        health_check: unit.health.as_ref().map(|h| HealthConfig {
            test: Some(std::iter::once("CMD".to_owned()).chain(h.cmd.iter().cloned()).collect()),
            interval: Some(nanos(h.interval)),
            timeout: Some(nanos(h.timeout)),
            retries: Some(i64::from(h.retries)),
            start_period: Some(nanos(h.start_period)),
            start_interval: None,
        }),
        ..Default::default()
    };
    let condition = match unit.service.restart {
        Restart::No => TaskSpecRestartPolicyConditionEnum::NONE,
        Restart::OnFailure => TaskSpecRestartPolicyConditionEnum::ON_FAILURE,
        Restart::Always => TaskSpecRestartPolicyConditionEnum::ANY,
    };
    let limits = (c.memory.is_some() || c.nano_cpus.is_some()).then(|| Limit {
        memory_bytes: c.memory.map(|m| i64::try_from(m).unwrap_or(i64::MAX)),
        nano_cpus: c.nano_cpus.map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
        pids: None,
    });
    let placement = (!deploy.constraints.is_empty() || deploy.max_replicas_per_node.is_some()).then(|| {
        TaskSpecPlacement {
            constraints: (!deploy.constraints.is_empty()).then(|| deploy.constraints.clone()),
            max_replicas: deploy.max_replicas_per_node.map(i64::from),
            ..Default::default()
        }
    });
    // "bridge" is Docker's default for one host; a service's default is the ingress network.
    let networks = c
        .network
        .as_ref()
        .filter(|n| n.as_str() != "bridge")
        .map(|n| vec![NetworkAttachmentConfig { target: Some(n.clone()), ..Default::default() }]);
    let ports: Vec<EndpointPortConfig> = c
        .ports
        .iter()
        .map(|p| EndpointPortConfig {
            protocol: Some(match p.protocol {
                Protocol::Tcp => EndpointPortConfigProtocolEnum::TCP,
                Protocol::Udp => EndpointPortConfigProtocolEnum::UDP,
                Protocol::Sctp => EndpointPortConfigProtocolEnum::SCTP,
            }),
            target_port: Some(i64::from(p.container_port)),
            published_port: Some(i64::from(p.host_port)),
            publish_mode: Some(EndpointPortConfigPublishModeEnum::INGRESS),
            name: None,
        })
        .collect();
    let labels = HashMap::from([
        (spec::LABEL_UNIT.to_owned(), unit.name.to_string()),
        (spec::LABEL_HASH.to_owned(), hash.to_owned()),
    ]);
    ServiceSpec {
        name: Some(unit.name.container_name()),
        labels: Some(labels),
        task_template: Some(TaskSpec {
            container_spec: Some(container_spec),
            resources: limits.map(|l| TaskSpecResources { limits: Some(l), ..Default::default() }),
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(condition),
                delay: Some(nanos(unit.service.restart_sec)),
                max_attempts: None,
                window: None,
            }),
            placement,
            networks,
            ..Default::default()
        }),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated { replicas: Some(i64::from(deploy.replicas)) }),
            ..Default::default()
        }),
        endpoint_spec: (!ports.is_empty()).then_some(EndpointSpec { mode: None, ports: Some(ports) }),
        update_config: Some(update_config(&deploy, unit.update_settings().soak)),
        rollback_config: Some(rollback_config(&deploy, unit.update_settings().soak)),
        ..Default::default()
    }
}

/// How long Swarm watches the tasks a rollback started before it calls the rollback done.
const ROLLBACK_MONITOR: Duration = Duration::from_secs(5);

/// The rolling update of a `[deploy]` unit: `update_parallelism` tasks at a time, `update_delay`
/// apart, each watched for `monitor` (the update's soak) after it started; a task that fails or
/// turns unhealthy meanwhile makes Swarm roll the whole service back (MaxFailureRatio 0).
pub fn update_config(deploy: &Deploy, monitor: Duration) -> ServiceSpecUpdateConfig {
    ServiceSpecUpdateConfig {
        parallelism: Some(i64::from(deploy.update_parallelism)),
        delay: Some(nanos(deploy.update_delay)),
        failure_action: Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK),
        monitor: Some(nanos(monitor)),
        max_failure_ratio: Some(0.0),
        order: Some(match deploy.update_order {
            UpdateOrder::StopFirst => ServiceSpecUpdateConfigOrderEnum::STOP_FIRST,
            UpdateOrder::StartFirst => ServiceSpecUpdateConfigOrderEnum::START_FIRST,
        }),
    }
}

/// How Swarm goes back to the previous spec: as fast as the update went forward (no delay), and
/// it pauses, for an admin to look, when the previous version fails too.
pub fn rollback_config(deploy: &Deploy, monitor: Duration) -> ServiceSpecRollbackConfig {
    ServiceSpecRollbackConfig {
        parallelism: Some(i64::from(deploy.update_parallelism)),
        delay: Some(0),
        failure_action: Some(ServiceSpecRollbackConfigFailureActionEnum::PAUSE),
        monitor: Some(nanos(monitor.min(ROLLBACK_MONITOR))),
        max_failure_ratio: Some(0.0),
        order: Some(match deploy.update_order {
            UpdateOrder::StopFirst => ServiceSpecRollbackConfigOrderEnum::STOP_FIRST,
            UpdateOrder::StartFirst => ServiceSpecRollbackConfigOrderEnum::START_FIRST,
        }),
    }
}

/// What the tasks of a service say, as far as readiness is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Tasks meant to run that run.
    pub running: u32,
    /// The error of the most recent failed or rejected task, if any.
    pub last_error: Option<String>,
}

/// Counts the running tasks of one service among `tasks`.
pub fn progress(tasks: &[Task]) -> Progress {
    let running = tasks
        .iter()
        .filter(|t| {
            t.desired_state == Some(TaskState::RUNNING)
                && t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING)
        })
        .count();
    let last_error = tasks
        .iter()
        .filter(|t| {
            matches!(t.status.as_ref().and_then(|s| s.state), Some(TaskState::FAILED | TaskState::REJECTED))
        })
        .max_by_key(|t| t.version.as_ref().and_then(|v| v.index).unwrap_or(0))
        .and_then(task_error);
    Progress { running: u32::try_from(running).unwrap_or(u32::MAX), last_error }
}

fn task_error(t: &Task) -> Option<String> {
    let s = t.status.as_ref()?;
    let what = s.err.as_deref().filter(|e| !e.is_empty()).or(s.message.as_deref())?;
    let slot = t.slot.map(|s| format!(".{s}")).unwrap_or_default();
    Some(format!("task{slot}: {what}"))
}

/// Whether a task still holds (or may still start) a container.
fn live(t: &Task) -> bool {
    t.status.as_ref().and_then(|s| s.state).is_none_or(|s| s <= TaskState::RUNNING)
}

/// Runs `unit` as a Swarm service to the end and returns the runner's exit status. `secrets` are
/// its secrets as read for this start.
pub async fn run(unit: Unit, secrets: Resolved) -> u8 {
    let hash = spec::definition_hash(&unit, &secrets.fingerprint);
    let mut runner = SwarmRunner { unit, secrets, secret_ids: Vec::new(), hash, docker: None, id: None };
    match runner.run().await {
        Ok(code) => code,
        Err(e) => {
            notify::status(&format!("failed: {e}"));
            log(journal::ERR, &e.to_string());
            runner.remove().await;
            e.exit_code()
        }
    }
}

struct SwarmRunner {
    unit: Unit,
    /// The values of the unit's secrets, read at start (never logged).
    secrets: Resolved,
    /// The Swarm secrets the service references (set by `start`).
    secret_ids: Vec<String>,
    hash: String,
    docker: Option<Docker>,
    /// The service's ID once it is known to be ours (labelled for this unit, or created here).
    /// Only then may the runner remove it.
    id: Option<String>,
}

impl SwarmRunner {
    fn name(&self) -> String {
        self.unit.name.container_name()
    }

    fn replicas(&self) -> u32 {
        self.unit.deploy.as_ref().map_or(1, |d| d.replicas)
    }

    fn docker(&self) -> Result<&Docker, RunError> {
        self.docker.as_ref().ok_or_else(|| RunError::Docker("not connected to dockerd".into()))
    }

    async fn run(&mut self) -> Result<u8, RunError> {
        let mut term =
            signal(SignalKind::terminate()).map_err(|e| RunError::Docker(format!("signal handler: {e}")))?;
        let mut int =
            signal(SignalKind::interrupt()).map_err(|e| RunError::Docker(format!("signal handler: {e}")))?;
        notify::status("connecting to dockerd");
        self.docker = Some(connect().await?);
        let api = self.docker.as_ref().map(Docker::client_version);
        if let Some(v) = api.filter(|v| (v.major_version, v.minor_version) < NO_NEW_PRIVILEGES_API) {
            if self.unit.container.runs_with_no_new_privileges() {
                log(
                    journal::WARNING,
                    &format!(
                        "dockerd speaks API {}.{}, which ignores no-new-privileges for Swarm services \
                         (API 1.46, Docker Engine 27): the service's tasks run without it",
                        v.major_version, v.minor_version
                    ),
                );
            }
        }
        let since = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let started = tokio::select! {
            r = self.start() => r?,
            _ = term.recv() => { self.stop().await; return Ok(0); }
            _ = int.recv() => { self.stop().await; return Ok(0); }
        };
        log(journal::INFO, &started);
        let converged = tokio::select! {
            r = self.converge() => r?,
            _ = term.recv() => { self.stop().await; return Ok(0); }
            _ = int.recv() => { self.stop().await; return Ok(0); }
        };
        notify::ready(&converged);
        log(journal::INFO, &converged);
        // The service runs with the secrets' current values: earlier ones go.
        if let Some(docker) = self.docker.clone() {
            self.prune_secrets(&docker, &self.secret_ids).await;
        }
        self.supervise(since, &mut term, &mut int).await?;
        self.stop().await;
        Ok(0)
    }

    /// Adopts, updates or creates the service; returns what was done, for the journal.
    async fn start(&mut self) -> Result<String, RunError> {
        let docker = self.docker()?.clone();
        let info = docker.info().await.map_err(docker_err("cannot ask dockerd about Swarm"))?;
        if info.swarm.and_then(|s| s.control_available) != Some(true) {
            return Err(RunError::Config(NOT_MANAGER.into()));
        }
        let name = self.name();
        let image = image_reference(&self.unit);
        // Passed with the service (as `docker service create --with-registry-auth` does): Swarm
        // hands it to the nodes that pull the image for a task.
        let auth: Option<DockerCredentials> = registry::for_image(&self.unit.container.image).map(|c| c.auth);
        let secrets = self.ensure_secrets(&docker).await?;
        self.secret_ids = secrets.iter().map(|s| s.id.clone()).collect();
        let spec = service_spec(&self.unit, &self.hash, &secrets);
        match docker.inspect_service(&name, None).await {
            Ok(existing) => {
                let labels = existing.spec.as_ref().and_then(|s| s.labels.clone()).unwrap_or_default();
                if labels.get(spec::LABEL_UNIT).map(String::as_str) != Some(self.unit.name.as_str()) {
                    return Err(RunError::Config(format!(
                        "a service named {name} exists that containerctl did not create: rename or remove it (docker service rm {name})"
                    )));
                }
                let id = existing.id.clone().unwrap_or_else(|| name.clone());
                self.id = Some(id.clone());
                if labels.get(spec::LABEL_HASH) == Some(&self.hash) {
                    return Ok(format!("adopted service {name} ({})", short(&id)));
                }
                let version = existing.version.and_then(|v| v.index).unwrap_or(0);
                let options = UpdateServiceOptionsBuilder::default()
                    .version(i32::try_from(version).unwrap_or(i32::MAX))
                    .build();
                notify::status(&format!("updating service {name}"));
                let response = docker
                    .update_service(&id, spec, options, auth)
                    .await
                    .map_err(docker_err("cannot update the service"))?;
                for w in response.warnings.into_iter().flatten() {
                    log(journal::WARNING, &format!("dockerd: {w}"));
                }
                Ok(format!("updating service {name} ({}) to {image}: its definition changed", short(&id)))
            }
            Err(e) if is_not_found(&e) => {
                notify::status(&format!("creating service {name}"));
                let created = docker
                    .create_service(spec, auth)
                    .await
                    .map_err(docker_err("cannot create the service"))?;
                let id = created.id.unwrap_or_else(|| name.clone());
                self.id = Some(id.clone());
                Ok(format!("created service {name} ({}) from {image}", short(&id)))
            }
            Err(e) => Err(docker_err("cannot inspect the service")(e)),
        }
    }

    /// The Swarm secrets holding the values of the unit's secrets, created where missing.
    async fn ensure_secrets(&self, docker: &Docker) -> Result<Vec<SwarmSecret>, RunError> {
        let mut out = Vec::new();
        for f in &self.secrets.files {
            let swarm_name = swarm_secret_name(&self.unit.name, &f.digest);
            let id = match docker.inspect_secret(&swarm_name).await {
                Ok(existing) => {
                    let labels = existing.spec.and_then(|s| s.labels).unwrap_or_default();
                    if labels.get(spec::LABEL_UNIT).map(String::as_str) != Some(self.unit.name.as_str()) {
                        return Err(RunError::Config(format!(
                            "a Swarm secret named {swarm_name} exists that containerctl did not create for \
                             unit {}: remove it (docker secret rm {swarm_name})",
                            self.unit.name
                        )));
                    }
                    existing.id.unwrap_or_else(|| swarm_name.clone())
                }
                Err(e) if is_not_found(&e) => {
                    let labels = HashMap::from([
                        (spec::LABEL_UNIT.to_owned(), self.unit.name.to_string()),
                        (LABEL_SECRET.to_owned(), f.name.to_string()),
                    ]);
                    let secret = SecretSpec {
                        name: Some(swarm_name.clone()),
                        labels: Some(labels),
                        data: Some(base64::engine::general_purpose::STANDARD.encode(&f.value)),
                        ..Default::default()
                    };
                    let created = docker.create_secret(secret).await.map_err(|e| {
                        RunError::Docker(format!(
                            "cannot create the Swarm secret for {}: {}",
                            f.name,
                            describe(&e)
                        ))
                    })?;
                    log(journal::INFO, &format!("created Swarm secret {swarm_name} for secret {}", f.name));
                    created.id
                }
                Err(e) => return Err(docker_err("cannot inspect a Swarm secret")(e)),
            };
            out.push(SwarmSecret { name: f.name.clone(), id, swarm_name });
        }
        Ok(out)
    }

    /// Removes the Swarm secrets made for this unit but `keep`. One that a service still uses
    /// (Docker refuses to remove it) stays for the next run to remove. Failures are logged.
    async fn prune_secrets(&self, docker: &Docker, keep: &[String]) {
        let label = format!("{}={}", spec::LABEL_UNIT, self.unit.name);
        let filters = HashMap::from([("label", vec![label])]);
        let listed =
            docker.list_secrets(Some(ListSecretsOptionsBuilder::default().filters(&filters).build())).await;
        let secrets = match listed {
            Ok(s) => s,
            Err(e) => {
                log(journal::WARNING, &format!("cannot list the unit's Swarm secrets: {}", describe(&e)));
                return;
            }
        };
        for s in secrets {
            let Some(id) = s.id.filter(|id| !keep.contains(id)) else { continue };
            let name = s.spec.and_then(|s| s.name).unwrap_or_else(|| id.clone());
            match docker.delete_secret(&id).await {
                Ok(()) => log(journal::INFO, &format!("removed Swarm secret {name}: no longer used")),
                Err(e) if is_not_found(&e) => {}
                Err(e) => log(journal::INFO, &format!("kept Swarm secret {name}: {}", describe(&e))),
            }
        }
    }

    /// After a task failed: whether the registry refuses this host the image, with the credential
    /// the service carries. Nodes pull for tasks, so their failures only say "No such image"; a
    /// refusal is a configuration error (exit 78) that names the registry and the fix, since
    /// restarting would only ask the registry again with the same credential. Any other answer
    /// (the image is there, the registry is out of reach from here) leaves the decision to the
    /// tasks.
    async fn check_registry_access(&self) -> Result<(), RunError> {
        let image = image_reference(&self.unit);
        let (auth, sent) = match registry::for_image(&self.unit.container.image) {
            Some(c) => (Some(c.auth), Some(c.source)),
            None => (None, None),
        };
        match self.docker()?.inspect_registry_image(&image, auth).await {
            Err(e) if crate::credentials::is_auth_refusal(&describe(&e)) => Err(RunError::Config(
                registry::refusal_message(&image, &self.unit.container.image, sent.as_ref(), &describe(&e)),
            )),
            Ok(_) | Err(_) => Ok(()),
        }
    }

    async fn tasks(&self, id: &str) -> Result<Vec<Task>, RunError> {
        let filters = HashMap::from([("service", vec![id.to_owned()])]);
        self.docker()?
            .list_tasks(Some(ListTasksOptionsBuilder::default().filters(&filters).build()))
            .await
            .map_err(docker_err("cannot list the service's tasks"))
    }

    fn status_line(&self, p: &Progress) -> String {
        let mut s = format!("service {}: {}/{} tasks running", self.name(), p.running, self.replicas());
        if p.running < self.replicas() {
            if let Some(e) = &p.last_error {
                s.push_str(&format!("; last failure: {e}"));
            }
        }
        s
    }

    /// Waits until `replicas` tasks run and no update is under way; returns the status line.
    async fn converge(&self) -> Result<String, RunError> {
        let id = self.id.clone().unwrap_or_else(|| self.name());
        let start_timeout = crate::generator::start_timeout(&self.unit);
        let mut deadline = Instant::now() + start_timeout;
        let mut best = 0;
        let mut last_status = String::new();
        let mut diagnosed = false;
        loop {
            let service =
                self.docker()?.inspect_service(&id, None).await.map_err(docker_err("lost the service"))?;
            let update = service.update_status.as_ref();
            let updating = match update.and_then(|u| u.state) {
                Some(
                    ServiceUpdateStatusStateEnum::UPDATING | ServiceUpdateStatusStateEnum::ROLLBACK_STARTED,
                ) => true,
                Some(
                    state @ (ServiceUpdateStatusStateEnum::PAUSED
                    | ServiceUpdateStatusStateEnum::ROLLBACK_PAUSED
                    | ServiceUpdateStatusStateEnum::ROLLBACK_COMPLETED),
                ) => {
                    let message = update.and_then(|u| u.message.clone()).unwrap_or_default();
                    return Err(RunError::Docker(format!(
                        "the update of service {} ended {state}: {message}",
                        self.name()
                    )));
                }
                _ => false,
            };
            let p = progress(&self.tasks(&id).await?);
            if p.last_error.is_some() && !diagnosed {
                diagnosed = true;
                self.check_registry_access().await?;
            }
            let mut status = self.status_line(&p);
            if updating {
                status.push_str(", updating");
            }
            if p.running >= self.replicas() && !updating {
                return Ok(status);
            }
            if status != last_status {
                notify::status(&status);
                last_status = status;
            }
            if p.running > best {
                // Tasks are coming up: like a pull that makes progress, this earns more time.
                best = p.running;
                deadline = deadline.max(Instant::now() + PROGRESS_EXTENSION);
                notify::extend_timeout(PROGRESS_EXTENSION + CONVERGE_POLL);
            }
            if Instant::now() >= deadline {
                return Err(RunError::Docker(format!(
                    "service {} did not converge: {}",
                    self.name(),
                    self.status_line(&p)
                )));
            }
            tokio::time::sleep(CONVERGE_POLL).await;
        }
    }

    /// Follows the service until a signal (Ok) or its loss (Err).
    async fn supervise(&self, since: u64, term: &mut Signal, int: &mut Signal) -> Result<(), RunError> {
        let id = self.id.clone().unwrap_or_else(|| self.name());
        let docker = self.docker()?.clone();
        let options = LogsOptionsBuilder::default()
            .follow(true)
            .stdout(true)
            .stderr(true)
            .timestamps(false)
            .since(i32::try_from(since).unwrap_or(0))
            .build();
        let mut logs = docker.service_logs(&id, Some(options)).boxed();
        let mut logs_open = true;
        let mut relay = Relay::from_env();
        let watchdog = notify::watchdog_interval().map(|d| d / 3);
        let mut watchdog_tick = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
        let mut poll = tokio::time::interval(RUNNING_POLL);
        let mut last_status = String::new();
        let mut none_since: Option<Instant> = None;
        let mut reported: HashSet<String> = HashSet::new();
        loop {
            tokio::select! {
                chunk = logs.next(), if logs_open => match chunk {
                    Some(Ok(LogOutput::StdOut { message })) => relay.push(Stream::Stdout, &message),
                    Some(Ok(LogOutput::StdErr { message })) => relay.push(Stream::Stderr, &message),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        log(journal::INFO, &format!("the service's output is not relayed: {}; read it with docker service logs {}", describe(&e), self.name()));
                        logs_open = false;
                    }
                    None => logs_open = false,
                },
                _ = watchdog_tick.tick(), if watchdog.is_some() => notify::watchdog(),
                _ = poll.tick() => {
                    match docker.inspect_service(&id, None).await {
                        Ok(_) => {}
                        Err(e) if is_not_found(&e) => {
                            return Err(RunError::Docker(format!("service {} was removed outside containerctl", self.name())));
                        }
                        Err(e) => return Err(docker_err("lost the service")(e)),
                    }
                    let tasks = self.tasks(&id).await?;
                    for t in &tasks {
                        let failed = matches!(t.status.as_ref().and_then(|s| s.state), Some(TaskState::FAILED | TaskState::REJECTED));
                        if let (true, Some(tid)) = (failed, t.id.as_ref()) {
                            if reported.insert(tid.clone()) {
                                if let Some(e) = task_error(t) {
                                    log(journal::WARNING, &e);
                                }
                            }
                        }
                    }
                    let p = progress(&tasks);
                    let status = self.status_line(&p);
                    if status != last_status {
                        notify::status(&status);
                        last_status = status;
                    }
                    if p.running == 0 {
                        let since = *none_since.get_or_insert_with(Instant::now);
                        if since.elapsed() >= NO_TASK_GRACE {
                            return Err(RunError::Docker(format!(
                                "no task of service {} has run for {}s{}",
                                self.name(),
                                NO_TASK_GRACE.as_secs(),
                                p.last_error.map(|e| format!(" (last failure: {e})")).unwrap_or_default()
                            )));
                        }
                    } else {
                        none_since = None;
                    }
                }
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
        }
        relay.finish();
        Ok(())
    }

    /// A deliberate stop: remove the service and wait for its tasks to end.
    async fn stop(&self) {
        notify::stopping(&format!("removing service {}", self.name()));
        self.remove().await;
    }

    /// Removes the service, if it is ours, waits (within the stop timeout) until none of its
    /// tasks runs, then removes the unit's Swarm secrets. Failures are logged, not fatal.
    async fn remove(&self) {
        let (Some(docker), Some(id)) = (self.docker.as_ref(), self.id.as_ref()) else { return };
        match docker.delete_service(id).await {
            Ok(()) => self.wait_tasks_gone(docker, id).await,
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                log(journal::WARNING, &format!("cannot remove service {}: {}", self.name(), describe(&e)));
                return;
            }
        }
        self.prune_secrets(docker, &[]).await;
    }

    async fn wait_tasks_gone(&self, docker: &Docker, id: &String) {
        // The service is gone, so its tasks can no longer be filtered by it: list all of them.
        let deadline = Instant::now() + self.unit.service.stop_timeout + STOP_GRACE;
        loop {
            let left = match docker.list_tasks(None).await {
                Ok(tasks) => tasks.iter().filter(|t| t.service_id.as_ref() == Some(id) && live(t)).count(),
                Err(_) => 0,
            };
            if left == 0 {
                log(journal::INFO, &format!("removed service {}", self.name()));
                return;
            }
            if Instant::now() >= deadline {
                log(
                    journal::WARNING,
                    &format!("removed service {}; {left} of its tasks are still stopping", self.name()),
                );
                return;
            }
            tokio::time::sleep(CONVERGE_POLL).await;
        }
    }
}

fn short(id: &str) -> String {
    id.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unit;
    use bollard::models::{ObjectVersion, TaskStatus};

    const TEXT: &str = r#"
[container]
image = "10.0.0.1:5002/web"
version = "2"
digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
args = ["httpd", "-f"]
env = { B = "2", A = "1" }
volumes = ["/srv:/data:ro", "shared:cam:/archive", "cache:/cache"]
ports = ["8080:80", "53:53/udp"]
memory = "64M"
init = true
capabilities = ["NET_ADMIN"]
[service]
restart = "always"
restart_sec = "3s"
stop_timeout = "7s"
[health]
cmd = ["true"]
interval = "5s"
[deploy]
replicas = 3
constraints = ["node.role==worker", "node.labels.zone!=b"]
max_replicas_per_node = 2
"#;

    fn spec_of(text: &str) -> ServiceSpec {
        let u = unit::parse("web", "web.toml", text).expect("valid");
        service_spec(&u, &spec::definition_hash(&u, ""), &[])
    }

    #[test]
    fn spec_maps_every_field() {
        let u = unit::parse("web", "web.toml", TEXT).expect("valid");
        let s = service_spec(&u, "h1", &[]);
        assert_eq!(s.name.as_deref(), Some("containerctl-web"));
        let labels = s.labels.expect("labels");
        assert_eq!(labels[spec::LABEL_UNIT], "web");
        assert_eq!(labels[spec::LABEL_HASH], "h1");
        assert_eq!(s.mode.and_then(|m| m.replicated).and_then(|r| r.replicas), Some(3));
        let t = s.task_template.expect("task template");
        let c = t.container_spec.expect("container spec");
        assert_eq!(
            c.image.as_deref(),
            Some(
                "10.0.0.1:5002/web:2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
            )
        );
        assert_eq!(c.args, Some(vec!["httpd".into(), "-f".into()]));
        assert_eq!(c.command, None);
        assert_eq!(c.env, Some(vec!["A=1".into(), "B=2".into()]));
        assert_eq!(c.init, Some(true));
        assert_eq!(c.capability_add, Some(vec!["NET_ADMIN".into()]));
        assert_eq!(c.privileges.and_then(|p| p.no_new_privileges), Some(true));
        assert_eq!(c.stop_grace_period, Some(7_000_000_000));
        assert_eq!(c.health_check.and_then(|h| h.interval), Some(5_000_000_000));
        let mounts = c.mounts.expect("mounts");
        let m: Vec<_> =
            mounts.iter().map(|m| (m.typ, m.source.as_deref(), m.target.as_deref(), m.read_only)).collect();
        assert_eq!(
            m,
            [
                (Some(MountType::BIND), Some("/srv"), Some("/data"), Some(true)),
                (Some(MountType::BIND), Some("/var/lib/containerctl/shared/cam"), Some("/archive"), None),
                (Some(MountType::VOLUME), Some("cache"), Some("/cache"), None),
            ]
        );
        let placement = t.placement.expect("placement");
        assert_eq!(
            placement.constraints,
            Some(vec!["node.role==worker".into(), "node.labels.zone!=b".into()])
        );
        assert_eq!(placement.max_replicas, Some(2));
        let restart = t.restart_policy.expect("restart policy");
        assert_eq!(restart.condition, Some(TaskSpecRestartPolicyConditionEnum::ANY));
        assert_eq!(restart.delay, Some(3_000_000_000));
        assert_eq!(t.resources.and_then(|r| r.limits).and_then(|l| l.memory_bytes), Some(64 << 20));
        assert_eq!(t.networks, None);
        let update = s.update_config.expect("update config");
        assert_eq!(update.parallelism, Some(1));
        assert_eq!(update.failure_action, Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK));
        assert_eq!(update.monitor, Some(30_000_000_000), "the [update] soak");
        assert_eq!(update.order, Some(ServiceSpecUpdateConfigOrderEnum::STOP_FIRST));
        let rollback = s.rollback_config.expect("rollback config");
        assert_eq!(rollback.failure_action, Some(ServiceSpecRollbackConfigFailureActionEnum::PAUSE));
        let ports = s.endpoint_spec.and_then(|e| e.ports).expect("ports");
        let p: Vec<_> =
            ports.iter().map(|p| (p.published_port, p.target_port, p.protocol, p.publish_mode)).collect();
        assert_eq!(
            p,
            [
                (
                    Some(8080),
                    Some(80),
                    Some(EndpointPortConfigProtocolEnum::TCP),
                    Some(EndpointPortConfigPublishModeEnum::INGRESS)
                ),
                (
                    Some(53),
                    Some(53),
                    Some(EndpointPortConfigProtocolEnum::UDP),
                    Some(EndpointPortConfigPublishModeEnum::INGRESS)
                ),
            ]
        );
    }

    #[test]
    fn update_config_follows_deploy_and_the_soak() {
        let text = format!(
            "{TEXT}update_parallelism = 2\nupdate_delay = \"4s\"\nupdate_order = \"start-first\"\n[update]\nsoak = \"9s\"\n"
        );
        let s = spec_of(&text);
        let u = s.update_config.expect("update config");
        assert_eq!((u.parallelism, u.delay, u.monitor), (Some(2), Some(4_000_000_000), Some(9_000_000_000)));
        assert_eq!(u.order, Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST));
        assert_eq!(u.max_failure_ratio, Some(0.0));
        let r = s.rollback_config.expect("rollback config");
        assert_eq!((r.parallelism, r.delay, r.monitor), (Some(2), Some(0), Some(5_000_000_000)));
        assert_eq!(r.order, Some(ServiceSpecRollbackConfigOrderEnum::START_FIRST));
    }

    #[test]
    fn restart_mapping_and_defaults() {
        let min = "[container]\nimage = \"ctl-test/busybox\"\nversion = \"1\"\n[deploy]\n";
        for (restart, want) in [
            ("no", TaskSpecRestartPolicyConditionEnum::NONE),
            ("on-failure", TaskSpecRestartPolicyConditionEnum::ON_FAILURE),
            ("always", TaskSpecRestartPolicyConditionEnum::ANY),
        ] {
            let s = spec_of(&format!("{min}[service]\nrestart = \"{restart}\"\n"));
            let t = s.task_template.expect("task template");
            assert_eq!(t.restart_policy.and_then(|r| r.condition), Some(want), "{restart}");
        }
        let s = spec_of(min);
        assert_eq!(s.mode.and_then(|m| m.replicated).and_then(|r| r.replicas), Some(1));
        assert_eq!(s.endpoint_spec, None);
        let t = s.task_template.expect("task template");
        assert_eq!(t.placement, None);
        assert_eq!(t.resources, None);
        let c = t.container_spec.expect("container spec");
        assert_eq!(c.image.as_deref(), Some("ctl-test/busybox:1"));
        assert_eq!((c.args, c.mounts, c.health_check), (None, None, None));
        let s = spec_of(&format!("{}network = \"backend\"\n[deploy]\n", min.trim_end_matches("[deploy]\n")));
        let networks = s.task_template.and_then(|t| t.networks).expect("networks");
        assert_eq!(networks[0].target.as_deref(), Some("backend"));
    }

    #[test]
    fn hash_covers_deploy_and_restart() {
        let a = unit::parse("web", "web.toml", TEXT).expect("valid");
        let b = unit::parse("web", "web.toml", &TEXT.replace("replicas = 3", "replicas = 4")).expect("valid");
        let c = unit::parse("web", "web.toml", &TEXT.replace("\"always\"", "\"no\"")).expect("valid");
        let h = spec::definition_hash(&a, "");
        assert_ne!(h, spec::definition_hash(&b, ""));
        assert_ne!(h, spec::definition_hash(&c, ""));
        // Units without [deploy] keep the hash they had before [deploy] existed.
        let plain = TEXT.split("[deploy]").next().unwrap_or_default();
        let p = unit::parse("web", "web.toml", plain).expect("valid");
        let q = unit::parse("web", "web.toml", &plain.replace("\"always\"", "\"no\"")).expect("valid");
        assert_eq!(spec::definition_hash(&p, ""), spec::definition_hash(&q, ""));
    }

    #[test]
    fn secrets_are_root_files_readable_by_any_user() {
        let min =
            "[container]\nimage = \"ctl-test/busybox\"\nversion = \"1\"\nsecrets = [\"db\"]\n[deploy]\n";
        let u = unit::parse("web", "web.toml", min).expect("valid");
        let name = swarm_secret_name(&u.name, "d1");
        let secret = SwarmSecret {
            name: SecretName::new("db").expect("valid"),
            id: "sid".into(),
            swarm_name: name.clone(),
        };
        let s = service_spec(&u, "h", &[secret]);
        let c = s.task_template.and_then(|t| t.container_spec).expect("container spec");
        let refs = c.secrets.expect("secrets");
        assert_eq!(refs.len(), 1);
        assert_eq!(
            (refs[0].secret_id.as_deref(), refs[0].secret_name.as_deref()),
            (Some("sid"), Some(name.as_str()))
        );
        let f = refs[0].file.clone().expect("file");
        assert_eq!(
            (f.name.as_deref(), f.uid.as_deref(), f.gid.as_deref(), f.mode),
            (Some("db"), Some("0"), Some("0"), Some(0o444))
        );
        assert_eq!(
            service_spec(&u, "h", &[]).task_template.and_then(|t| t.container_spec).and_then(|c| c.secrets),
            None
        );
    }

    #[test]
    fn swarm_secret_names_follow_unit_and_value() {
        let web = UnitName::new("web").expect("valid");
        let long = UnitName::new(&"a".repeat(64)).expect("valid");
        let n = swarm_secret_name(&web, "d1");
        assert!(n.starts_with("containerctl-") && n.len() == 45, "{n}");
        assert!(n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'), "{n}");
        assert_eq!(n, swarm_secret_name(&web, "d1"));
        assert_ne!(n, swarm_secret_name(&web, "d2"), "a new value is a new Swarm secret");
        assert_ne!(n, swarm_secret_name(&long, "d1"), "each unit has its own");
        assert_eq!(swarm_secret_name(&long, "d1").len(), 45);
    }

    fn task(index: u64, desired: TaskState, state: TaskState, err: Option<&str>) -> Task {
        Task {
            id: Some(format!("t{index}")),
            version: Some(ObjectVersion { index: Some(index) }),
            slot: Some(1),
            desired_state: Some(desired),
            status: Some(TaskStatus {
                state: Some(state),
                err: err.map(str::to_owned),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn progress_counts_running_tasks_and_keeps_the_latest_error() {
        let tasks = [
            task(1, TaskState::SHUTDOWN, TaskState::FAILED, Some("old error")),
            task(5, TaskState::SHUTDOWN, TaskState::FAILED, Some("no such image")),
            task(3, TaskState::RUNNING, TaskState::RUNNING, None),
            task(4, TaskState::SHUTDOWN, TaskState::RUNNING, None),
            task(6, TaskState::RUNNING, TaskState::PREPARING, None),
        ];
        let p = progress(&tasks);
        assert_eq!(p.running, 1);
        assert_eq!(p.last_error.as_deref(), Some("task.1: no such image"));
        assert!(live(&tasks[4]) && live(&tasks[2]) && !live(&tasks[0]));
        assert_eq!(progress(&[]), Progress { running: 0, last_error: None });
    }
}
