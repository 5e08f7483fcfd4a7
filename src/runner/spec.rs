//! `Unit` → Docker's container create body. Pure: no Docker connection here.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, DeviceMapping, HealthConfig, HostConfig, HostConfigLogConfig, PortBinding,
    RestartPolicy, RestartPolicyNameEnum,
};
use sha2::{Digest, Sha256};

use crate::secrets::Resolved;
use crate::unit::{Unit, Volume, VolumeSource};

/// Label carrying the unit NAME on every container containerctl creates.
pub const LABEL_UNIT: &str = "io.containerctl.unit";
/// Label carrying [`definition_hash`], so a new runner knows whether it may adopt a container.
pub const LABEL_HASH: &str = "io.containerctl.hash";

/// A hash of everything that shapes the container. Two units with the same hash would create
/// the same container, so a runner may adopt a running container whose label matches.
/// `secrets` is [`crate::secrets::Resolved::fingerprint`], the keyed digest of the values of the
/// secrets the unit references (never the values): a changed secret makes a new container.
pub fn definition_hash(unit: &Unit, secrets: &str) -> String {
    let mut h = Sha256::new();
    // Debug output of the validated types is deterministic (BTreeMap, Vec) and covers every field.
    h.update(
        format!("{:?}\n{:?}\n{}", unit.container, unit.health, unit.service.stop_timeout.as_secs())
            .as_bytes(),
    );
    // A Swarm service also carries its placement and restart policy. Units without [deploy] keep
    // the hash they always had, so an upgrade does not replace their containers.
    if let Some(d) = &unit.deploy {
        h.update(format!("\n{d:?}\n{:?}\n{:?}", unit.service.restart, unit.service.restart_sec).as_bytes());
    }
    if let Some(e) = &unit.entrypoint {
        h.update(format!("\nentrypoint {e:?}").as_bytes());
    }
    // Likewise units without secrets keep their hash.
    if !unit.secrets.is_empty() {
        h.update(format!("\nsecrets {:?} {secrets}", unit.secrets).as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The Entrypoint Docker expects: `[""]` is how its API says "no entrypoint".
pub fn entrypoint(e: &[String]) -> Vec<String> {
    if e.is_empty() {
        vec![String::new()]
    } else {
        e.to_vec()
    }
}

/// `stop_timeout` in the whole seconds Docker takes, rounded up so "500ms" is not "kill at once".
pub fn stop_seconds(unit: &Unit) -> i32 {
    let d = unit.service.stop_timeout;
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i32::try_from(secs).unwrap_or(i32::MAX)
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// The bind string Docker expects for a volume.
pub fn bind(v: &Volume) -> String {
    let source = match &v.source {
        VolumeSource::Host(p) => p.display().to_string(),
        VolumeSource::Named(n) => n.clone(),
        VolumeSource::Shared(n) => format!("{}/{n}", Volume::SHARED_ROOT),
    };
    let mode = if v.read_only { ":ro" } else { "" };
    format!("{source}:{}{mode}", v.target.display())
}

/// The create body for `unit`'s container. Docker's own restart policy is off: systemd restarts.
/// `secrets` are the unit's secrets as read for this start: each file bind-mounted read-only at
/// `/run/secrets/NAME`, each `env_secrets` variable set after `env`.
pub fn create_body(unit: &Unit, hash: &str, secrets: &Resolved) -> ContainerCreateBody {
    let c = &unit.container;
    let mut binds: Vec<String> = c.volumes.iter().map(bind).collect();
    binds.extend(secrets.files.iter().map(|f| format!("{}:{}:ro", f.path.display(), f.name.mount_path())));
    let env: Vec<String> = c
        .env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .chain(secrets.env.iter().map(|(k, v)| format!("{k}={v}")))
        .collect();
    let mut port_bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for p in &c.ports {
        let key = format!("{}/{}", p.container_port, p.protocol.as_str());
        port_bindings
            .entry(key)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding { host_ip: p.host_ip.clone(), host_port: Some(p.host_port.to_string()) });
    }
    let mut exposed: Vec<String> = port_bindings.keys().cloned().collect();
    exposed.sort();
    let host_config = HostConfig {
        binds: (!binds.is_empty()).then_some(binds),
        devices: (!c.devices.is_empty()).then(|| {
            c.devices
                .iter()
                .map(|d| DeviceMapping {
                    path_on_host: Some(d.host.display().to_string()),
                    path_in_container: Some(d.container.display().to_string()),
                    cgroup_permissions: Some(d.permissions.clone()),
                })
                .collect()
        }),
        port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::NO),
            maximum_retry_count: None,
        }),
        // Output reaches the journal through the runner; a second copy on disk is waste.
        log_config: Some(HostConfigLogConfig { typ: Some("none".into()), config: None }),
        memory: c.memory.map(|m| i64::try_from(m).unwrap_or(i64::MAX)),
        nano_cpus: c.nano_cpus.map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
        readonly_rootfs: c.read_only.then_some(true),
        init: c.init.then_some(true),
        privileged: c.privileged.then_some(true),
        // setuid programs in the image (or in a bind mount) grant nothing to the container's
        // processes: a container that runs as a user stays that user.
        security_opt: c.runs_with_no_new_privileges().then(|| vec!["no-new-privileges".to_owned()]),
        cap_add: (!c.capabilities.is_empty()).then(|| c.capabilities.clone()),
        network_mode: c.network.clone(),
        ..Default::default()
    };
    let healthcheck = unit.health.as_ref().map(|h| HealthConfig {
        test: Some(std::iter::once("CMD".to_owned()).chain(h.cmd.iter().cloned()).collect()),
        interval: Some(nanos(h.interval)),
        timeout: Some(nanos(h.timeout)),
        retries: Some(i64::from(h.retries)),
        start_period: Some(nanos(h.start_period)),
        start_interval: None,
    });
    let labels = HashMap::from([
        (LABEL_UNIT.to_owned(), unit.name.to_string()),
        (LABEL_HASH.to_owned(), hash.to_owned()),
    ]);
    ContainerCreateBody {
        image: Some(c.reference()),
        cmd: (!c.args.is_empty()).then(|| c.args.clone()),
        entrypoint: unit.entrypoint.as_deref().map(entrypoint),
        env: (!env.is_empty()).then_some(env),
        user: c.user.clone(),
        working_dir: c.workdir.clone(),
        labels: Some(labels),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        healthcheck,
        stop_timeout: Some(i64::from(stop_seconds(unit))),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        host_config: Some(host_config),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unit;

    const TEXT: &str = r#"
[container]
image = "ctl-test/busybox"
version = "1"
args = ["httpd", "-f"]
env = { B = "2", A = "1" }
devices = ["/dev/null:/dev/xnull:rw"]
volumes = ["/srv:/data:ro", "shared:cam:/archive", "cache:/cache"]
ports = ["8080:80", "127.0.0.1:8081:80", "53:53/udp"]
memory = "64M"
cpus = 0.5
init = true
[health]
cmd = ["true"]
interval = "5s"
"#;

    #[test]
    fn body_maps_every_field() {
        let u = unit::parse("web", "web.toml", TEXT).expect("valid");
        let b = create_body(&u, "h1", &Resolved::default());
        assert_eq!(b.image.as_deref(), Some("ctl-test/busybox:1"));
        assert_eq!(b.cmd, Some(vec!["httpd".into(), "-f".into()]));
        assert_eq!(b.env, Some(vec!["A=1".into(), "B=2".into()]));
        assert_eq!(b.exposed_ports, Some(vec!["53/udp".into(), "80/tcp".into()]));
        let hc = b.host_config.expect("host config");
        assert_eq!(
            hc.binds,
            Some(vec![
                "/srv:/data:ro".into(),
                "/var/lib/containerctl/shared/cam:/archive".into(),
                "cache:/cache".into()
            ])
        );
        let pb = hc.port_bindings.expect("ports");
        assert_eq!(pb["80/tcp"].as_ref().map(Vec::len), Some(2));
        assert_eq!(hc.devices.expect("devices")[0].cgroup_permissions.as_deref(), Some("rw"));
        assert_eq!(hc.restart_policy.and_then(|r| r.name), Some(RestartPolicyNameEnum::NO));
        assert_eq!(hc.memory, Some(64 << 20));
        assert_eq!(hc.init, Some(true));
        assert_eq!(hc.nano_cpus, Some(500_000_000));
        let health = b.healthcheck.expect("health");
        assert_eq!(health.test, Some(vec!["CMD".into(), "true".into()]));
        assert_eq!(health.interval, Some(5_000_000_000));
        assert_eq!(b.labels.expect("labels")[LABEL_UNIT], "web");
    }

    #[test]
    fn no_new_privileges_unless_privileged_or_turned_off() {
        let security = |extra: &str| {
            let u = unit::parse(
                "web",
                "web.toml",
                &TEXT.replace("init = true\n", &format!("init = true\n{extra}")),
            )
            .expect("valid");
            create_body(&u, "h", &Resolved::default()).host_config.and_then(|h| h.security_opt)
        };
        assert_eq!(security(""), Some(vec!["no-new-privileges".to_owned()]));
        assert_eq!(security("no_new_privileges = true\n"), Some(vec!["no-new-privileges".to_owned()]));
        assert_eq!(security("no_new_privileges = false\n"), None);
        assert_eq!(security("privileged = true\n"), None);
    }

    #[test]
    fn stop_timeout_rounds_up() {
        let u = unit::parse("web", "web.toml", &format!("{TEXT}[service]\nstop_timeout = \"500ms\"\n"))
            .expect("valid");
        assert_eq!(stop_seconds(&u), 1);
        assert_eq!(create_body(&u, "h", &Resolved::default()).stop_timeout, Some(1));
    }

    #[test]
    fn hash_changes_with_the_container_but_not_the_description() {
        let a = unit::parse("web", "web.toml", TEXT).expect("valid");
        let b = unit::parse("web", "web.toml", &format!("description = \"x\"\n{TEXT}")).expect("valid");
        let c = unit::parse("web", "web.toml", &TEXT.replace("httpd", "httpd2")).expect("valid");
        assert_eq!(definition_hash(&a, ""), definition_hash(&b, ""));
        assert_ne!(definition_hash(&a, ""), definition_hash(&c, ""));
        assert_eq!(definition_hash(&a, "").len(), 64);
        // What the hash of a unit without secrets always was: upgrading replaces no container.
        assert_eq!(
            definition_hash(&a, ""),
            "48199e71a385c9d53695cf38ecb350f019931ce01ff10f38257c741a115a5500"
        );
    }

    #[test]
    fn hash_follows_the_secrets_values_through_their_digest() {
        let with = |refs: &str| {
            unit::parse("web", "web.toml", &TEXT.replace("init = true\n", &format!("init = true\n{refs}")))
                .expect("valid")
        };
        let u = with("secrets = [\"db\"]\n");
        assert_ne!(definition_hash(&u, "d1"), definition_hash(&u, "d2"), "a changed value");
        assert_ne!(definition_hash(&u, "d1"), definition_hash(&with("secrets = [\"db2\"]\n"), "d1"));
        let env = with("env_secrets = { PW = \"db\" }\n");
        assert_ne!(definition_hash(&u, "d1"), definition_hash(&env, "d1"), "file or variable");
    }

    #[test]
    fn secrets_are_read_only_files_and_variables() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = crate::secrets::Store::new(tmp.path());
        let name = |n: &str| crate::secrets::SecretName::new(n).expect("valid");
        store.set(&name("db"), b"hunter2").expect("set");
        store.set(&name("tls.key"), b"-----BEGIN-----").expect("set");
        let u = unit::parse(
            "web",
            "web.toml",
            &TEXT.replace(
                "init = true\n",
                "init = true\nsecrets = [\"tls.key\"]\nenv_secrets = { DB_PASSWORD = \"db\" }\n",
            ),
        )
        .expect("valid");
        let resolved = store.resolve(&u.secrets).expect("resolved");
        let b = create_body(&u, "h", &resolved);
        assert_eq!(b.env, Some(vec!["A=1".into(), "B=2".into(), "DB_PASSWORD=hunter2".into()]));
        let binds = b.host_config.and_then(|h| h.binds).expect("binds");
        assert_eq!(
            binds.last().map(String::as_str),
            Some(format!("{}:/run/secrets/tls.key:ro", tmp.path().join("tls.key").display()).as_str())
        );
        assert_eq!(binds.len(), 4);
    }
}
