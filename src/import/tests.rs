//! The importers on realistic files (tests/import/*): what converts, into what, and what is
//! refused where.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{compose, docker_run, Outcome};

fn fixture(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/import").join(dir)
}

/// Converts tests/import/DIR/FILE as the CLI does: variables from `env` then DIR/.env, files
/// read relative to DIR.
fn import(dir: &str, file: &str, env: &[(&str, &str)], prefix: Option<&str>) -> (Outcome, String) {
    let d = fixture(dir);
    let text = std::fs::read_to_string(d.join(file)).expect("test input");
    let mut vars: BTreeMap<String, String> = std::fs::read_to_string(d.join(".env"))
        .map(|t| compose::dotenv_vars(&t).expect("test input"))
        .unwrap_or_default();
    for (k, v) in env {
        vars.insert(k.to_string(), v.to_string());
    }
    let read = |p: &str| std::fs::read_to_string(d.join(p)).map_err(|e| e.to_string());
    let input =
        compose::Input { file, text: &text, dir: Some(&d), vars: &vars, read_env_file: &read, prefix };
    (compose::convert(&input), text)
}

fn unit(o: &Outcome, name: &str) -> crate::unit::Unit {
    let u =
        o.units.iter().find(|u| u.name == name).unwrap_or_else(|| panic!("no unit {name}: {:?}", o.errors));
    crate::unit::parse(name, "x.toml", &u.text).expect("test input")
}

#[test]
fn a_web_app_with_database_and_cache() {
    let (o, _) = import("webapp", "compose.yaml", &[], None);
    assert!(o.errors.is_empty(), "{:#?}", o.errors);
    let names: Vec<_> = o.units.iter().map(|u| u.name.as_str()).collect();
    // Dependencies first, so they can be started in this order.
    assert_eq!(names, ["shop-db", "shop-cache", "shop-web"]);

    let web = unit(&o, "shop-web");
    assert_eq!(
        (web.container.image.as_str(), web.container.version.as_str()),
        ("registry.example:5002/shop/web", "2.3.2"),
        ".env's WEB_TAG"
    );
    assert_eq!(web.container.args, ["gunicorn", "--bind", "0.0.0.0:8000", "shop.wsgi"]);
    assert_eq!(web.container.env["WORKERS"], "4", "environment wins over env_file");
    assert_eq!(web.container.env["DJANGO_SETTINGS"], "shop.settings.prod");
    assert_eq!(web.container.env["ALLOWED_HOSTS"], "shop.example, localhost");
    assert_eq!(web.container.env["GREETING"], "hello \"world\"");
    assert_eq!(web.container.env["DEBUG"], "false");
    let static_dir = fixture("webapp").join("static").display().to_string();
    let volumes = web.container.volumes.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>().join(" ");
    assert!(volumes.contains(&static_dir), "{volumes}");
    assert!(volumes.contains("shop-uploads"), "a volume's name: is its Docker name: {volumes}");
    assert_eq!(web.service.requires, ["containerctl@shop-db.service", "containerctl@shop-cache.service"]);
    assert_eq!(web.service.after, web.service.requires);
    assert!(web.service.enabled, "unless-stopped comes back at boot");
    assert_eq!(web.service.stop_timeout.as_secs(), 30);
    assert!(web.container.init);
    let h = web.health.expect("test input");
    assert_eq!((h.retries, h.interval.as_secs(), h.start_period.as_secs()), (5, 10, 20));
    assert_eq!(web.secrets.files.iter().map(|s| s.as_str()).collect::<Vec<_>>(), ["django-key"]);

    let db = unit(&o, "shop-db");
    assert_eq!(db.container.version, "16.2");
    assert_eq!(
        db.container.digest.as_deref(),
        Some("sha256:4aea012537edfad80f98d870a36e6b90b4c09b27be7f4b4759d72db863baeebb")
    );
    assert!(
        format!("{:?}", db.container.volumes).contains("shop_db-data"),
        "Compose's PROJECT_VOLUME name, so the data carries over"
    );
    assert_eq!(db.health.expect("test input").cmd, ["/bin/sh", "-c", "pg_isready -U shop"]);
    assert_eq!(db.container.memory, Some(512 << 20));

    let cache = unit(&o, "shop-cache");
    assert_eq!(cache.container.args, ["redis-server", "--save", "", "--appendonly", "no"]);
    assert_eq!((cache.container.user.as_deref(), cache.container.read_only), (Some("999:999"), true));
    assert_eq!(cache.container.nano_cpus, Some(500_000_000));
    assert!(cache.deploy.is_none(), "resources alone do not make a Swarm service");

    let notes =
        o.notes.iter().map(|n| format!("{}: {}", n.location(), n.message)).collect::<Vec<_>>().join("\n");
    assert!(notes.contains("compose.yaml:37:5: container_name: dropped"), "{notes}");
    assert!(notes.contains("containerctl secret set django-key --file ./secrets/django.key"), "{notes}");
    assert!(notes.contains("printenv DB_PASSWORD | containerctl secret set db-password"), "{notes}");
}

#[test]
fn the_environment_wins_over_dotenv_and_a_prefix_renames() {
    let (o, _) = import("webapp", "compose.yaml", &[("WEB_TAG", "9.9.9")], Some("prod"));
    assert!(o.errors.is_empty(), "{:#?}", o.errors);
    assert_eq!(unit(&o, "prod-web").container.version, "9.9.9");
    assert_eq!(
        unit(&o, "prod-web").service.requires,
        ["containerctl@prod-db.service", "containerctl@prod-cache.service"]
    );
}

#[test]
fn a_media_server_with_devices() {
    let (o, _) = import("media", "compose.yml", &[], Some("media"));
    assert!(o.errors.is_empty(), "{:#?}", o.errors);
    let j = unit(&o, "media-jellyfin");
    assert_eq!(j.container.devices.len(), 2);
    assert_eq!(j.container.network.as_deref(), Some("host"));
    assert_eq!(j.container.env["TZ"], "Europe/Berlin");
    let t = unit(&o, "media-transcoder");
    assert_eq!(format!("{:?}", t.container.devices[0]).matches("/dev/video0").count(), 2);
    assert_eq!(t.container.ports.len(), 3, "a udp port and a range of two");
    assert_eq!(t.container.capabilities, ["SYS_NICE"]);
    assert!(o.notes.iter().any(|n| n.message.contains("on-failure:3")));
    assert!(o.notes.iter().any(|n| n.message.contains("version: is obsolete")));
}

#[test]
fn unsupported_keys_are_each_reported_where_they_are_and_nothing_converts() {
    let (o, text) = import("unsupported", "compose.yaml", &[], Some("x"));
    assert!(o.units.is_empty());
    let found: Vec<String> =
        o.errors.iter().map(|e| format!("{}:{} {}", e.line, e.column, e.message)).collect();
    let expect = [
        ("app:\n    build", "has no image"),
        ("labels:", "labels cannot be expressed"),
        ("tmpfs:", "tmpfs cannot be expressed"),
        ("traefik:latest", "not pinned"),
        ("\"80\"", "no host port"),
        ("/var/lib/data", "anonymous volume"),
        ("./conf:/etc/traefik:z", "volume option z"),
        ("migrate:\n        condition", "service_completed_successfully"),
        ("example/migrate", "not pinned"),
        ("\"service:proxy\"", "network_mode service:proxy"),
    ];
    for (needle, message) in expect {
        let at = text.find(needle).unwrap_or_else(|| panic!("{needle}"));
        let line = text[..at].matches('\n').count() + 1;
        assert!(
            found.iter().any(|f| f.starts_with(&format!("{line}:")) && f.contains(message)),
            "no error `{message}` on line {line}: {found:#?}"
        );
    }
    // The service without an image is reported at its name.
    assert!(o.errors.iter().all(|e| e.file == "compose.yaml" && e.line > 0), "{:#?}", o.errors);
}

#[test]
fn a_value_the_unit_format_refuses_is_reported_at_its_compose_line() {
    let text = "name: t\nservices:\n  a:\n    image: busybox:1.36\n    stop_grace_period: 5 weeks\n";
    let vars = BTreeMap::new();
    let read = |_: &str| Err("no".to_owned());
    let o = compose::convert(&compose::Input {
        file: "c.yaml",
        text,
        dir: None,
        vars: &vars,
        read_env_file: &read,
        prefix: None,
    });
    assert!(o.units.is_empty());
    assert_eq!((o.errors[0].line, o.errors[0].column), (5, 24), "{:#?}", o.errors);
    assert!(o.errors[0].message.contains("service a:"), "{}", o.errors[0].message);
}

#[test]
fn hostile_files_are_refused_cleanly() {
    let vars = BTreeMap::new();
    let read = |_: &str| Err("pasted files cannot read env_file".to_owned());
    let convert = |text: &str| {
        compose::convert(&compose::Input {
            file: "p.yaml",
            text,
            dir: None,
            vars: &vars,
            read_env_file: &read,
            prefix: Some("p"),
        })
    };
    // A relative bind mount of a pasted file has no directory to resolve against.
    let o = convert("services:\n  a:\n    image: a:1\n    volumes: [\"../../etc:/x\"]\n");
    assert!(o.errors.iter().any(|e| e.message.contains("relative")), "{:#?}", o.errors);
    // An env_file cannot be read from a pasted file.
    let o = convert("services:\n  a:\n    image: a:1\n    env_file: /etc/shadow\n");
    assert!(o.errors.iter().any(|e| e.message.contains("cannot read")), "{:#?}", o.errors);
    // A service name that would make a unit name systemd or Docker could trip on.
    assert!(!convert("services:\n  \"../x\":\n    image: a:1\n").errors.is_empty());
    assert!(!convert("services:\n  a:\n    image: a:1\n    volumes: [\"/x:/y:ro,rw,\\u0000\"]\n")
        .errors
        .is_empty());
    assert!(!convert("services: [1, 2]\n").errors.is_empty());
    assert!(!convert("{{{").errors.is_empty());
    // Newlines in a value cannot inject TOML: they stay inside the string.
    let o = convert("services:\n  a:\n    image: a:1\n    environment:\n      X: \"1\\\"\\n[service]\\nrestart = \\\"always\\\"\"\n");
    assert!(o.errors.is_empty(), "{:#?}", o.errors);
    let u = crate::unit::parse("p-a", "p-a.toml", &o.units[0].text).expect("test input");
    assert_eq!(u.container.env["X"], "1\"\n[service]\nrestart = \"always\"");
    assert_eq!(u.service.restart, crate::unit::Restart::OnFailure);
}

#[test]
fn docker_run_command_lines() {
    let read = |p: &str| {
        if p == "app.env" {
            Ok("A=1\nB='two'\n".to_owned())
        } else {
            Err(format!("{p}: no such file"))
        }
    };
    let args: Vec<String> = "docker run -d --name cam --restart unless-stopped -p 8080:80 -e TZ=UTC --env-file app.env -v cam-data:/data --device /dev/video0 --health-cmd 'wget -q -O- localhost' --health-interval 5s -it registry.example:5002/camera:1.4@sha256:4aea012537edfad80f98d870a36e6b90b4c09b27be7f4b4759d72db863baeebb --verbose -x"
        .split(' ').map(str::to_owned).collect();
    // The shell would have joined the quoted health command; do as the shell does.
    let mut joined = Vec::new();
    let mut buf: Option<String> = None;
    for a in args {
        match (&mut buf, a.starts_with('\''), a.ends_with('\'')) {
            (None, true, false) => buf = Some(a[1..].to_owned()),
            (Some(b), _, true) => {
                b.push(' ');
                b.push_str(&a[..a.len() - 1]);
                joined.push(buf.take().expect("test input"));
            }
            (Some(b), _, _) => {
                b.push(' ');
                b.push_str(&a);
            }
            (None, _, _) => joined.push(a),
        }
    }
    let o = docker_run::convert(&docker_run::Input { args: &joined, prefix: None, read_env_file: &read });
    assert!(o.errors.is_empty(), "{:#?}", o.errors);
    let u = unit(&o, "cam");
    assert_eq!(u.container.image, "registry.example:5002/camera");
    assert_eq!(u.container.version, "1.4");
    assert!(u.container.digest.is_some());
    assert_eq!(u.container.args, ["--verbose", "-x"]);
    assert_eq!(u.container.env.len(), 3);
    assert_eq!(u.container.env["B"], "two");
    assert!(u.service.enabled);
    assert_eq!(u.health.expect("test input").cmd, ["/bin/sh", "-c", "wget -q -O- localhost"]);
    assert!(o.notes.iter().any(|n| n.message.contains("terminal")));

    let bad: Vec<String> = ["run", "--name", "x", "--cap-drop", "ALL", "--pid=host", "-p", "80", "busybox"]
        .map(str::to_owned)
        .to_vec();
    let o = docker_run::convert(&docker_run::Input { args: &bad, prefix: None, read_env_file: &read });
    let messages: Vec<_> = o.errors.iter().map(|e| format!("{}: {}", e.location(), e.message)).collect();
    assert!(o.units.is_empty());
    assert!(messages.iter().any(|m| m.contains("docker run:1:14: option --cap-drop")), "{messages:#?}");
    assert!(messages.iter().any(|m| m.contains("--pid")), "{messages:#?}");
    assert!(messages.iter().any(|m| m.contains("no host port")), "{messages:#?}");
    assert!(messages.iter().any(|m| m.contains("busybox is not pinned")), "{messages:#?}");
}
