//! Tests of unit validation, through `unit::parse` on whole unit files: defaults, the full example,
//! and the diagnostics (position, message, hint) of each kind of mistake.

use std::path::PathBuf;

use super::super::parse;
use super::*;
use crate::unit::{Deploy, Protocol, UpdateOrder, VolumeSource};
use container::valid_repository;

fn errors(text: &str) -> Vec<Diagnostic> {
    parse("web", "/etc/containerctl/units/web.toml", text).expect_err("should be rejected")
}

const MIN: &str = "[container]\nimage = \"ctl-test/busybox\"\nversion = \"1\"\n";

#[test]
fn minimal_unit_gets_defaults() {
    let u = parse("web", "web.toml", MIN).expect("valid");
    assert_eq!(u.container.reference(), "ctl-test/busybox:1");
    assert_eq!(u.service, Service::default());
    assert!(u.service.enabled);
    assert_eq!(u.health, None);
}

#[test]
fn full_example_from_the_contract() {
    let text = r#"
description = "USB camera streamer"

[container]
image   = "registry.example:5002/camera"
version = "1.4.2"
digest  = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
args    = ["--fps", "30"]
env     = { RUST_LOG = "info" }
devices = ["/dev/video0", "/dev/ttyUSB0:/dev/ttyS0:rw"]
volumes = ["/srv/camera:/data", "shared:camera:/archive:ro", "cache:/cache"]
ports   = ["8080:80", "127.0.0.1:9000:9000/udp", "[::1]:7000:7000"]
user = "1000:1000"
workdir = "/data"
read_only = true
init = true
capabilities = ["net_admin", "CAP_SYS_TIME"]
network = "host"
memory = "256M"
cpus = 0.5

[service]
restart      = "on-failure"
restart_sec  = "2s"
stop_timeout = "10s"
after        = ["db", "network-online.target"]
requires     = ["db"]
enabled      = true
protected    = false

[health]
cmd      = ["wget", "-q", "-O-", "http://localhost/health"]
interval = "10s"
retries  = 3
"#;
    let u = parse("camera", "camera.toml", text).expect("valid");
    assert_eq!(u.description.as_deref(), Some("USB camera streamer"));
    assert_eq!(u.container.devices[1].container, PathBuf::from("/dev/ttyS0"));
    assert_eq!(u.container.devices[1].permissions, "rw");
    assert_eq!(u.container.devices[0].permissions, "rwm");
    assert_eq!(u.container.volumes[1].source, VolumeSource::Shared("camera".into()));
    assert!(u.container.volumes[1].read_only);
    assert_eq!(u.container.volumes[2].source, VolumeSource::Named("cache".into()));
    assert_eq!(u.container.ports[1].protocol, Protocol::Udp);
    assert_eq!(u.container.ports[1].host_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(u.container.ports[2].host_ip.as_deref(), Some("::1"));
    assert_eq!(u.container.memory, Some(256 << 20));
    assert!(u.container.init && u.container.read_only && !u.container.privileged);
    assert!(u.container.no_new_privileges && u.container.runs_with_no_new_privileges(), "on by default");
    assert_eq!(u.container.capabilities, ["NET_ADMIN", "SYS_TIME"]);
    assert_eq!(u.container.network.as_deref(), Some("host"));
    assert_eq!(u.container.nano_cpus, Some(500_000_000));
    assert_eq!(u.service.after, ["containerctl@db.service", "network-online.target"]);
    assert_eq!(u.service.requires, ["containerctl@db.service"]);
    let h = u.health.expect("health set");
    assert_eq!((h.interval, h.timeout, h.retries), (Duration::from_secs(10), Duration::from_secs(10), 3));
}

#[test]
fn unknown_key_names_line_column_and_suggests() {
    let e = errors("[container]\nimgae = \"x\"\nversion = \"1\"\n");
    assert_eq!(e.len(), 1);
    assert_eq!((e[0].line, e[0].column), (2, 1));
    assert_eq!(e[0].message, "unknown key `imgae` in [container]");
    assert_eq!(e[0].hint.as_deref(), Some("did you mean `image`?"));
    assert!(e[0].to_string().starts_with("/etc/containerctl/units/web.toml:2:1: "));
}

#[test]
fn unknown_top_level_table() {
    let e = errors("[contianer]\nimage = \"x\"\n");
    assert_eq!(e[0].message, "unknown key `contianer`");
    assert_eq!(e[0].hint.as_deref(), Some("did you mean `container`?"));
}

#[test]
fn missing_version_points_at_the_table() {
    let e = errors("description = \"x\"\n[container]\nimage = \"a/b\"\n");
    assert_eq!(e[0].message, "missing required key `version` in [container]");
    assert_eq!(e[0].line, 2);
    assert!(e[0].hint.as_deref().unwrap_or("").contains("pinned"));
}

#[test]
fn missing_container_table() {
    let e = errors("description = \"x\"\n");
    assert_eq!(e[0].message, "missing table [container]");
}

#[test]
fn tag_in_image_is_refused_with_the_fix() {
    let e = errors("[container]\nimage = \"registry:5002/cam:1.2\"\nversion = \"1\"\n");
    assert_eq!(e[0].message, "image `registry:5002/cam:1.2` includes the tag `1.2`");
    assert_eq!(e[0].hint.as_deref(), Some("write image = \"registry:5002/cam\" and version = \"1.2\""));
    assert_eq!((e[0].line, e[0].column), (2, 9));
}

#[test]
fn image_hints_name_only_valid_images_and_versions() {
    let hint = |image: &str| {
        let e = errors(&format!("[container]\nimage = \"{image}\"\nversion = \"1\"\n"));
        e[0].hint.clone().expect("a hint")
    };
    assert_eq!(hint("Nginx:1.27"), "write image = \"nginx\" and version = \"1.27\"");
    assert_eq!(
        hint("nginx:latest"),
        "write image = \"nginx\" and the exact tag you tested in version, like version = \"1.4.2\""
    );
    assert_eq!(
        hint("nginx:1.2+x"),
        "write image = \"nginx\" and the exact tag you tested in version, like version = \"1.4.2\""
    );
    let h = hint("my_/repo:1.0");
    assert!(h.starts_with("write the repository in image ([HOST[:PORT]/]"), "{h}");
    assert!(h.ends_with("and version = \"1.0\""), "{h}");
}

#[test]
fn every_unknown_key_is_reported_at_once() {
    let text = "descripton = \"x\"\n[container]\nimgae = \"a\"\nversion = \"1\"\nenv = { ANY = \"1\" }\nfrobnicate = 1\n\
                [service]\nrestrat = \"always\"\n[helth]\ncmd = [\"true\"]\n[deploy]\nreplica = 2\n";
    let e = errors(text);
    let found: Vec<_> =
        e.iter().map(|d| (d.line, d.column, d.message.as_str(), d.hint.as_deref().unwrap_or(""))).collect();
    assert_eq!(found.len(), 6, "{found:#?}");
    assert_eq!(found[0], (1, 1, "unknown key `descripton`", "did you mean `description`?"));
    assert_eq!(found[1], (9, 2, "unknown key `helth`", "did you mean `health`?"));
    assert_eq!(found[2], (3, 1, "unknown key `imgae` in [container]", "did you mean `image`?"));
    assert_eq!(found[3].2, "unknown key `frobnicate` in [container]");
    assert!(found[3].3.starts_with("known keys in [container]: image, version,"), "{}", found[3].3);
    assert_eq!(found[4], (8, 1, "unknown key `restrat` in [service]", "did you mean `restart`?"));
    assert_eq!(found[5], (12, 1, "unknown key `replica` in [deploy]", "did you mean `replicas`?"));
}

#[test]
fn several_errors_are_all_reported() {
    let text = format!("{MIN}devices = [\"dev/video0\"]\nports = [\"80\"]\n[service]\nrestart = \"on_failure\"\nstop_timeout = \"10x\"\n");
    let e = errors(&text);
    let messages: Vec<_> = e.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(e.len(), 4, "{messages:?}");
    assert!(messages[0].starts_with("device `dev/video0`"));
    assert!(messages[1].starts_with("port `80`"));
    assert!(messages[2].starts_with("restart = \"on_failure\""));
    assert_eq!(e[2].hint.as_deref(), Some("did you mean \"on-failure\"?"));
    assert!(messages[3].contains("unknown time unit `x`"));
    assert_eq!(e[3].line, 8);
}

#[test]
fn path_tricks_are_refused() {
    for v in
        ["/srv/../etc:/data", "/srv:/data/../..", "/srv:data", "shared:../x:/d", "/srv//x:/d", "/srv:/d:rx"]
    {
        let e = errors(&format!("{MIN}volumes = [\"{v}\"]\n"));
        assert!(e[0].message.starts_with("volume"), "{v}: {e:?}");
    }
    let e = errors(&format!("{MIN}devices = [\"/dev/../etc/shadow\"]\n"));
    assert!(e[0].message.starts_with("device"));
}

#[test]
fn type_errors_are_explained() {
    let e = errors("[container]\nimage = \"a\"\nversion = 1.4\n");
    assert_eq!(e[0].line, 3);
    assert!(e[0].hint.as_deref().unwrap_or("").contains("quote"), "{e:?}");
    let e = errors(&format!("{MIN}[service]\nrestart_sec = true\n"));
    assert!(e[0].message.contains("duration"), "{e:?}");
}

/// Durations, sizes and `cpus` take a string or a number; any other value is reported at the
/// value with the kind of value expected, and each accepted form gives its value.
#[test]
fn string_or_number_values() {
    let unit = |extra: &str| parse("web", "web.toml", &format!("{MIN}{extra}")).expect("valid");
    let u = unit("memory = \"64M\"\ncpus = \"0.5\"\n[service]\nrestart_sec = \"2s\"\nstop_timeout = 3\n");
    assert_eq!((u.container.memory, u.container.nano_cpus), (Some(64 << 20), Some(500_000_000)));
    assert_eq!(
        (u.service.restart_sec, u.service.stop_timeout),
        (Duration::from_secs(2), Duration::from_secs(3))
    );
    let u = unit("memory = 67108864\ncpus = 2\n[service]\nrestart_sec = 0.5\n");
    assert_eq!((u.container.memory, u.container.nano_cpus), (Some(64 << 20), Some(2_000_000_000)));
    assert_eq!(u.service.restart_sec, Duration::from_millis(500));
    for (extra, column, message) in [
        ("memory = 1.5\n", 10, "expected a size like \"512M\" or a number of bytes"),
        ("memory = true\n", 10, "expected a size like \"512M\" or a number of bytes"),
        ("memory = 99999999999999999999\n", 10, "expected a size like \"512M\" or a number of bytes"),
        ("cpus = [1]\n", 8, "expected a number like 1.5"),
        (
            "[service]\nrestart_sec = true\n",
            15,
            "expected a duration like \"2s\", \"1m30s\" or a number of seconds",
        ),
        (
            "[service]\nstop_timeout = {a = 1}\n",
            16,
            "expected a duration like \"2s\", \"1m30s\" or a number of seconds",
        ),
    ] {
        let e = errors(&format!("{MIN}{extra}"));
        assert_eq!(
            (e.len(), e[0].line, e[0].column, e[0].message.as_str()),
            (1, 4 + extra.matches('\n').count() - 1, column, message),
            "{extra}"
        );
    }
}

#[test]
fn latest_is_not_a_pin() {
    for v in ["latest", "Latest"] {
        let e = errors(&format!("[container]\nimage = \"a\"\nversion = \"{v}\"\n"));
        assert!(e[0].message.contains("not a pinned version"), "{v}");
    }
}

#[test]
fn dependencies_map_names_and_pass_systemd_units() {
    let e = errors(&format!("{MIN}[service]\nrequires = [\"web\"]\n"));
    assert!(e[0].message.contains("itself"));
    let e = errors(&format!("{MIN}[service]\nafter = [\"containerctl@web.service\"]\n"));
    assert!(e[0].message.contains("itself"));
    let e = errors(&format!("{MIN}[service]\nafter = [\"Bad Name\"]\n"));
    assert!(e[0].message.starts_with("after: `Bad Name` is not a valid unit name"));
}

#[test]
fn health_needs_a_command() {
    let e = errors(&format!("{MIN}[health]\ninterval = \"5s\"\n"));
    assert_eq!(e[0].message, "missing required key `cmd` in [health]");
    let e = errors(&format!("{MIN}[health]\ncmd = []\n"));
    assert_eq!(e[0].message, "health cmd is empty");
    let e = errors(&format!("{MIN}[health]\ncmd = [\"true\"]\ninterval = \"500ms\"\n"));
    assert_eq!((e[0].line, e[0].message.as_str()), (6, "interval must be at least 1s"));
    let e = errors(&format!("{MIN}[health]\ncmd = [\"true\"]\nretries = 0\n"));
    assert!(e[0].message.starts_with("retries = 0"));
}

#[test]
fn deploy_defaults_and_values() {
    let u = parse("web", "web.toml", &format!("{MIN}[deploy]\n")).expect("valid");
    assert_eq!(u.deploy, Some(Deploy::default()));
    let d = u.deploy.expect("deploy");
    assert_eq!(
        (d.update_parallelism, d.update_delay, d.update_order),
        (1, Duration::ZERO, UpdateOrder::StopFirst)
    );
    let text = format!(
        "{MIN}[deploy]\nreplicas = 3\nconstraints = [\"node.role==worker\", \"node.hostname != a\", \
         \"node.labels.zone==b\", \"engine.labels.disk==ssd\"]\nmax_replicas_per_node = 2\n"
    );
    let d = parse("web", "web.toml", &text).expect("valid").deploy.expect("deploy");
    assert_eq!(d.replicas, 3);
    assert_eq!(d.max_replicas_per_node, Some(2));
    assert_eq!(d.constraints[1], "node.hostname != a");
    assert_eq!(parse("web", "web.toml", MIN).expect("valid").deploy, None);
    let text = format!(
        "{MIN}[deploy]\nreplicas = 3\nupdate_parallelism = 2\nupdate_delay = \"5s\"\nupdate_order = \"start-first\"\n"
    );
    let d = parse("web", "web.toml", &text).expect("valid").deploy.expect("deploy");
    assert_eq!(
        (d.update_parallelism, d.update_delay, d.update_order),
        (2, Duration::from_secs(5), UpdateOrder::StartFirst)
    );
}

#[test]
fn deploy_update_keys_name_the_rule() {
    let e = errors(&format!("{MIN}[deploy]\nupdate_parallelism = 0\n"));
    assert!(
        e[0].message.starts_with("update_parallelism = 0 is out of range (1 to 1000)"),
        "{}",
        e[0].message
    );
    let e = errors(&format!("{MIN}[deploy]\nupdate_order = \"stop-frist\"\n"));
    assert!(e[0].message.contains("update_order = \"stop-frist\" is not one of"), "{}", e[0].message);
    assert_eq!(e[0].hint.as_deref(), Some("did you mean \"stop-first\"?"));
    let e = errors(&format!("{MIN}[deploy]\nupdate_delay = \"2h\"\n"));
    assert_eq!(e[0].message, "update_delay must be at most 60min");
}

#[test]
fn deploy_values_are_checked() {
    let e = errors(&format!("{MIN}[deploy]\nreplicas = 0\n"));
    assert_eq!((e[0].line, e[0].column), (5, 12));
    assert_eq!(e[0].message, "replicas = 0 is out of range (1 to 1000)");
    let e = errors(&format!("{MIN}[deploy]\nmax_replicas_per_node = 1001\n"));
    assert!(e[0].message.starts_with("max_replicas_per_node = 1001"));
    let e = errors(&format!("{MIN}[deploy]\nreplica = 2\n"));
    assert_eq!(e[0].message, "unknown key `replica` in [deploy]");
    assert_eq!(e[0].hint.as_deref(), Some("did you mean `replicas`?"));
    for bad in
        ["node.role=worker", "role==worker", "node.role==boss", "node.labels.==x", "node.id==", "a==b!=c"]
    {
        let e = errors(&format!("{MIN}[deploy]\nconstraints = [\"{bad}\"]\n"));
        assert!(e[0].message.starts_with(&format!("constraint `{bad}`")), "{bad}: {e:?}");
        assert_eq!(e[0].line, 5);
        assert!(e[0].hint.as_deref().unwrap_or("").contains("node.role==worker"));
    }
}

#[test]
fn deploy_refuses_what_swarm_cannot_do() {
    let text = format!("{MIN}devices = [\"/dev/video0\"]\n[deploy]\nreplicas = 2\n");
    let e = errors(&text);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!((e[0].line, e[0].column), (4, 11));
    assert_eq!(e[0].message, "Swarm services cannot map host devices");
    assert_eq!(
        e[0].hint.as_deref(),
        Some("remove [deploy] to run this unit on one host, or remove the devices")
    );
    // Without [deploy] the same container is fine.
    assert!(parse("web", "web.toml", &format!("{MIN}devices = [\"/dev/video0\"]\n")).is_ok());

    let e = errors(&format!("{MIN}privileged = true\nnetwork = \"host\"\n[deploy]\n"));
    let messages: Vec<_> = e.iter().map(|d| (d.line, d.message.as_str())).collect();
    assert_eq!(
        messages,
        [
            (4, "Swarm services cannot run in privileged mode"),
            (5, "Swarm services cannot use the host network")
        ]
    );
    let e = errors(&format!("{MIN}ports = [\"8080:80\", \"127.0.0.1:81:81\"]\n[deploy]\n"));
    assert_eq!(e.len(), 1);
    assert_eq!((e[0].line, e[0].column), (4, 21));
    assert!(e[0].message.contains("cannot bind one to 127.0.0.1"));
    // What Swarm can do passes: capabilities, named networks, privileged = false.
    let ok = format!(
        "{MIN}capabilities = [\"NET_ADMIN\"]\nnetwork = \"backend\"\nprivileged = false\nports = [\"8080:80/udp\"]\n[deploy]\n"
    );
    assert!(parse("web", "web.toml", &ok).is_ok());
}

#[test]
fn repositories() {
    for ok in ["busybox", "ctl-test/busybox", "localhost:5002/a/b", "registry.example/x_y.z", "a__b"] {
        assert!(valid_repository(ok), "{ok}");
    }
    for bad in ["", "Busybox", "a//b", "-a", "a-", "host:99999/x", "a/B"] {
        assert!(!valid_repository(bad), "{bad}");
    }
}

#[test]
fn invalid_file_name_is_reported() {
    let e = parse("Web", "/x/Web.toml", MIN).expect_err("bad name");
    assert_eq!(e[0].line, 0);
    assert!(e[0].message.starts_with("file name: `Web` is not a valid unit name"));
}

#[test]
fn stop_timeout_is_bounded() {
    let e = errors(&format!("{MIN}[service]\nstop_timeout = \"16min\"\n"));
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].message, "stop_timeout must be at most 15min");
    let ok = crate::unit::parse("web", "web.toml", &format!("{MIN}[service]\nstop_timeout = \"15min\"\n"));
    assert!(ok.is_ok(), "{ok:?}");
}

#[test]
fn no_new_privileges_is_a_boolean_that_privileged_mode_overrides() {
    let off = parse("a", "a.toml", &format!("{MIN}no_new_privileges = false\n")).expect("valid");
    assert!(!off.container.runs_with_no_new_privileges());
    let privileged = parse("a", "a.toml", &format!("{MIN}privileged = true\n")).expect("valid");
    assert!(privileged.container.no_new_privileges && !privileged.container.runs_with_no_new_privileges());
    let e = errors(&format!("{MIN}no_new_privileges = \"no\"\n"));
    assert_eq!(e.len(), 1, "{e:?}");
}

#[test]
fn log_rate_limit_is_off_by_default_and_parses_burst_per_interval() {
    use crate::unit::LogRateLimit;
    let u = parse("web", "web.toml", MIN).expect("valid");
    assert_eq!(u.service.log_rate_limit, LogRateLimit::Off);
    let u = parse("web", "web.toml", &format!("{MIN}[service]\nlog_rate_limit = \"10000/30s\"\n"))
        .expect("valid");
    assert_eq!(
        u.service.log_rate_limit,
        LogRateLimit::Limit { burst: 10000, interval: std::time::Duration::from_secs(30) }
    );
    let u = parse("web", "web.toml", &format!("{MIN}[service]\nlog_rate_limit = \"off\"\n")).expect("valid");
    assert_eq!(u.service.log_rate_limit, LogRateLimit::Off);
}

#[test]
fn bad_log_rate_limits_are_reported_at_their_value() {
    for (value, message) in [
        ("\"10000\"", "not \"off\" nor MESSAGES/DURATION"),
        ("\"x/30s\"", "`x` is not a number of messages"),
        ("\"0/30s\"", "the number of messages must be at least 1"),
        ("\"100/0s\"", "the interval must be at least 1ms"),
        ("\"100/soon\"", "interval:"),
    ] {
        let e = errors(&format!("{MIN}[service]\nlog_rate_limit = {value}\n"));
        assert_eq!(e.len(), 1, "{value}: {e:?}");
        assert_eq!((e[0].line, e[0].column), (5, 18), "{value}");
        assert!(e[0].message.contains(message), "{value}: {}", e[0].message);
        assert!(e[0].hint.as_deref().is_some_and(|h| h.contains("10000/30s")));
    }
    let e = errors(&format!("{MIN}[service]\nlog_rate_limit = 100\n"));
    assert_eq!(e.len(), 1, "{e:?}");
}

#[test]
fn secrets_and_env_secrets_name_secrets() {
    let u = parse(
        "web",
        "web.toml",
        &format!("{MIN}secrets = [\"tls.key\", \"ca\"]\nenv_secrets = {{ DB_PASSWORD = \"db-pass\", TOKEN = \"ca\" }}\n"),
    )
    .expect("valid");
    let names: Vec<&str> = u.secrets.files.iter().map(|n| n.as_str()).collect();
    assert_eq!(names, ["tls.key", "ca"]);
    assert_eq!(u.secrets.env["DB_PASSWORD"].as_str(), "db-pass");
    assert_eq!(u.secrets.names().len(), 3, "ca once");
    assert!(parse("web", "web.toml", MIN).expect("valid").secrets.is_empty());
    // The table form works as env's does.
    let u = parse("web", "web.toml", &format!("{MIN}[container.env_secrets]\nPW = \"pw\"\n")).expect("valid");
    assert_eq!(u.secrets.env["PW"].as_str(), "pw");
}

#[test]
fn bad_secret_references_are_reported_at_their_value() {
    let e = errors(&format!(
        "{MIN}secrets = [\"a/b\", \"ok\", \"ok\"]\nenv = {{ PW = \"x\" }}\nenv_secrets = {{ PW = \"pw\", 1X = \"pw\", Y = \".key\" }}\nvolumes = [\"v:/run/secrets/ok\"]\n"
    ));
    let got: Vec<(usize, &str)> = e.iter().map(|d| (d.line, d.message.as_str())).collect();
    assert_eq!(
        got,
        [
            (4, "secrets: `a/b` is not a valid secret name: use 1-64 characters of [A-Za-z0-9][A-Za-z0-9_.-]*"),
            (4, "secret `ok` is mounted at /run/secrets/ok, where a volume is mounted too"),
            (4, "secret `ok` is listed twice in secrets"),
            (6, "environment variable name `1X` is not valid"),
            (6, "`PW` is set in both env and env_secrets"),
            (
                6,
                "env_secrets.Y: `.key` is not a valid secret name: use 1-64 characters of [A-Za-z0-9][A-Za-z0-9_.-]*"
            ),
        ]
    );
    assert!(e[0].hint.as_deref().is_some_and(|h| h.contains("containerctl secret list")));
    assert_eq!(e[4].hint.as_deref(), Some("remove PW from env: its value comes from the secret"));
    let e = errors(&format!("{MIN}secrets = \"db\"\n"));
    assert_eq!(e[0].hint.as_deref(), Some("write a list, like [\"a\", \"b\"]"));
}

#[test]
fn deploy_units_get_secrets_as_files_only() {
    let ok = parse("web", "web.toml", &format!("{MIN}secrets = [\"db\"]\n[deploy]\n"));
    assert!(ok.is_ok(), "{ok:?}");
    let e = errors(&format!("{MIN}env_secrets = {{ PW = \"db\" }}\n[deploy]\n"));
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!((e[0].line, e[0].column), (4, 22));
    assert_eq!(e[0].message, "Swarm services get secrets as files only, not as environment variable PW");
    assert!(e[0].hint.as_deref().is_some_and(|h| h.contains("read /run/secrets/NAME")), "{e:?}");
}
