//! The `containerctl` binary against a fake containerctld: a small axum server on a Unix socket in a
//! tempdir that answers with canned docs/api.md responses and records every request. It checks what
//! the user sees (stdout, stderr, exit status); the real daemon is covered by the system tests.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener as StdUnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};

type Seen = Arc<Mutex<Vec<String>>>;

const WEB_TEXT: &str =
    "description = \"web server\"\n\n[container]\nimage = \"ctl-test/busybox\"\nversion = \"1.0\"\n";

fn units() -> Value {
    json!([
        {
            "name": "web", "description": "web server", "image": "ctl-test/busybox", "version": "1.0",
            "source": "/etc/containerctl/units/web.toml", "valid": true, "error": null,
            "enabled": true, "protected": true,
            "active_state": "active", "sub_state": "running", "result": "success",
            "status_text": "running container 3ec1ce6c1a66", "n_restarts": 1,
            "exit_code": 0, "exit_status": 0, "main_pid": 1234, "since_us": 1_790_000_000_000_000_u64,
            "health": "healthy", "cpu_percent": 0.4, "memory_bytes": 1_048_576
        },
        {
            "name": "db", "description": null, "image": "ctl-test/db", "version": "15",
            "source": "/etc/containerctl/units/db.toml", "valid": false,
            "error": "/etc/containerctl/units/db.toml:4:1: unknown key `imag`",
            "enabled": false, "protected": false,
            "active_state": "failed", "sub_state": "failed", "result": "exit-code",
            "status_text": null, "n_restarts": 0,
            "exit_code": 1, "exit_status": 78, "main_pid": 0, "since_us": 1_790_000_000_000_000_u64,
            "health": null, "cpu_percent": null, "memory_bytes": null
        }
    ])
}

fn web_detail() -> Value {
    let mut v = units()[0].clone();
    v["text"] = json!(WEB_TEXT);
    v["events"] = json!([{"at_ms": 1_790_000_000_000_i64, "kind": "started", "detail": null}]);
    v["log"] = json!([
        {"at_us": 1_790_000_001_000_000_u64, "priority": 6, "identifier": "web", "message": "listening on :80"},
        {"at_us": 1_790_000_002_000_000_u64, "priority": 4, "identifier": "web", "message": "slow client"}
    ]);
    v
}

fn error(status: StatusCode, body: Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn ok(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn applied(rev: u64) -> Value {
    json!({"name": "web", "changed": true, "revision": rev, "restarted": false,
           "path": "/etc/containerctl/units/web.toml"})
}

fn invalid_restart() -> Response {
    error(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({"error": {"kind": "invalid", "message": "the unit file of web has 1 error",
            "diagnostics": [{"file": "/etc/containerctl/units/web.toml", "line": 7, "column": 11,
                "message": "restart = \"sometimes\": expected \"no\", \"on-failure\" or \"always\"",
                "hint": "did you mean \"on-failure\"?"}],
            "rendered": ["/etc/containerctl/units/web.toml:7:11: restart = \"sometimes\": expected \"no\", \"on-failure\" or \"always\"\n  |\n7 | restart = \"sometimes\"\n  |           ^\n  = hint: did you mean \"on-failure\"?"]}}),
    )
}

async fn handle(State(seen): State<Seen>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    seen.lock().expect("lock").push(format!("{} {} {text}", parts.method, parts.uri));
    let path = parts.uri.path().trim_start_matches("/api/v1");
    match (parts.method.as_str(), path) {
        ("GET", "/units") => ok(StatusCode::OK, &units()),
        ("GET", "/units/web") => ok(StatusCode::OK, &web_detail()),
        ("GET", "/units/web/file") => ok(
            StatusCode::OK,
            &json!({"path": "/etc/containerctl/units/web.toml", "text": WEB_TEXT, "revision": 4}),
        ),
        ("PUT", "/units/web/file") => {
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            if body["text"].as_str().is_some_and(|t| t.contains("sometimes")) {
                invalid_restart()
            } else {
                ok(StatusCode::OK, &applied(5))
            }
        }
        ("POST", "/units/web/set") if text.contains("service.enabled=") => ok(StatusCode::OK, &applied(6)),
        ("POST", "/units/web/set") => invalid_restart(),
        ("GET", "/units/db/file") => ok(
            StatusCode::OK,
            &json!({"path": "/etc/containerctl/units/db.toml", "text": WEB_TEXT, "revision": 2}),
        ),
        ("PUT", "/units/db/file") => ok(
            StatusCode::OK,
            &json!({"name": "db", "changed": true, "revision": 3, "restarted": false,
                    "path": "/etc/containerctl/units/db.toml"}),
        ),
        ("POST", "/units") => ok(
            StatusCode::CREATED,
            &json!({"name": "cam", "changed": true, "revision": 1, "restarted": false,
                    "path": "/etc/containerctl/units/cam.toml"}),
        ),
        ("DELETE", "/units/web") => ok(StatusCode::OK, &json!({"name": "web", "removed": true})),
        ("POST", "/units/web/stop") => error(
            StatusCode::FORBIDDEN,
            json!({"error": {"kind": "forbidden", "message": "web is protected: only an admin may stop it",
                "violations": [{"rule": "protected", "message": "service.protected = true"}]}}),
        ),
        ("POST", "/units/web/start") => error(
            StatusCode::BAD_GATEWAY,
            json!({"error": {"kind": "job_failed",
            "message": "job start of containerctl@web.service failed",
            "result": "failed", "status_text": "image ctl-test/busybox:1.0 not found",
            "log": [
                {"at_us": 1_790_000_003_000_000_u64, "priority": 3, "identifier": "containerctl-runner",
                 "message": "pulling ctl-test/busybox:1.0: manifest unknown"},
                "exited with status 125"
            ]}}),
        ),
        ("POST", "/units/web/restart") => ok(
            StatusCode::OK,
            &json!({"name": "web", "job": "/org/freedesktop/systemd1/job/42", "result": "done", "state": units()[0]}),
        ),
        ("POST", "/units/web/update") => {
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let result = json!({"name": "web", "outcome": "updated", "from_version": "1.0", "to_version": "1.1",
                "to_digest": format!("sha256:{}", "ab".repeat(32)), "revision": 5, "dependants": ["app"]});
            let last = if body["to"] == "1.2" {
                let mut detail = result.clone();
                detail["outcome"] = json!("rolled_back");
                detail["log"] = json!(["running 1.2", "health check failed"]);
                json!({"error": {"kind": "rolled_back", "step": "soak",
                    "message": "rolled back to 1.0: its container turned unhealthy",
                    "hint": "see containerctl logs web", "detail": detail}})
            } else {
                json!({ "result": result })
            };
            let lines = [
                json!({"step": "pull", "state": "running", "detail": "pulling reg/app:1.1"}),
                json!({"step": "pull", "state": "progress", "detail": "pulling reg/app:1.1: 1 of 2 MB",
                    "progress": {"current": 1, "total": 2}}),
                json!({"step": "soak", "state": "done", "detail": "web stayed up for 30s"}),
                last,
            ];
            let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
            (StatusCode::OK, [(header::CONTENT_TYPE, "application/x-ndjson")], Body::from(body))
                .into_response()
        }
        ("GET", "/units/web/logs") => {
            let lines = [
                json!({"at_us": 1_790_000_001_000_000_u64, "priority": 6, "identifier": "web", "message": "one"}),
                json!({"at_us": 1_790_000_002_000_000_u64, "priority": 4, "identifier": "web", "message": "two"}),
            ];
            let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
            (StatusCode::OK, [(header::CONTENT_TYPE, "application/x-ndjson")], Body::from(body))
                .into_response()
        }
        _ => error(
            StatusCode::NOT_FOUND,
            json!({"error": {"kind": "not_found", "message": format!("no unit at {path}")}}),
        ),
    }
}

struct Fake {
    dir: tempfile::TempDir,
    socket: PathBuf,
    seen: Seen,
}

impl Fake {
    fn start() -> Fake {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket = dir.path().join("containerctl.sock");
        let listener = StdUnixListener::bind(&socket).expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let seen: Seen = Arc::default();
        let app = Router::new().fallback(handle).with_state(seen.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::UnixListener::from_std(listener).expect("listener");
                let _ = axum::serve(listener, app).await;
            });
        });
        Fake { dir, socket, seen }
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[])
    }

    fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        ctl(&self.socket, args, env, self.dir.path())
    }

    fn requests(&self) -> Vec<String> {
        self.seen.lock().expect("lock").clone()
    }
}

fn ctl(socket: &Path, args: &[&str], env: &[(&str, &str)], tmp: &Path) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_containerctl"));
    cmd.args(args)
        .env("CONTAINERCTL_SOCKET", socket)
        .env("TMPDIR", tmp)
        .env_remove("VISUAL")
        .env_remove("EDITOR")
        .env_remove("NO_COLOR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run containerctl")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn list_prints_an_aligned_table_without_colour_when_piped() {
    let fake = Fake::start();
    let out = fake.run(&["list"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        stdout(&out),
        "   NAME  STATE             ENABLED   HEALTH   RESTARTS   CPU  MEMORY  IMAGE\n\
         ×  db    failed            disabled  -               0     -       -  ctl-test/db:15\n\
         ●  web   active (running)  enabled   healthy         1  0.4%    1.0M  ctl-test/busybox:1.0\n"
    );
    assert!(!stdout(&out).contains('\x1b'));
    assert!(stderr(&out).contains("warning: the unit file of db has errors; see `containerctl status db`"));
    assert_eq!(fake.requests(), ["GET /api/v1/units "]);
}

#[test]
fn list_json_is_the_apis_json() {
    let fake = Fake::start();
    let out = fake.run(&["list", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v, units());
}

#[test]
fn status_reads_like_systemctl_status() {
    let fake = Fake::start();
    let out = fake.run(&["status", "web"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = stdout(&out);
    for expected in [
        "● web (containerctl@web.service) - web server\n",
        "    Loaded: /etc/containerctl/units/web.toml; enabled; protected\n",
        "    Active: active (running) since 2026-09-21 14:13:20 UTC; ",
        "    Status: \"running container 3ec1ce6c1a66\"\n",
        "     Image: ctl-test/busybox:1.0\n",
        "    Health: healthy\n",
        "  Restarts: 1\n",
        "\n2026-09-21T14:13:21Z web: listening on :80\n2026-09-21T14:13:22Z web: slow client\n",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    let json = fake.run(&["status", "web", "--json"]);
    assert_eq!(serde_json::from_slice::<Value>(&json.stdout).expect("json"), web_detail());
}

#[test]
fn forbidden_shows_the_violations_and_exits_4() {
    let fake = Fake::start();
    let out = fake.run(&["stop", "web"]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert_eq!(
        stderr(&out),
        "containerctl: web is protected: only an admin may stop it\n  policy rule protected: service.protected = true\n"
    );
    assert_eq!(stdout(&out), "");
}

#[test]
fn invalid_set_shows_every_diagnostic_and_exits_1() {
    let fake = Fake::start();
    let out = fake.run(&["set", "web", "service.restart=sometimes"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        stderr(&out),
        "containerctl: the unit file of web has 1 error\n\
         error: /etc/containerctl/units/web.toml:7:11: restart = \"sometimes\": expected \"no\", \"on-failure\" or \"always\"\n\
         \x20 |\n\
         7 | restart = \"sometimes\"\n\
         \x20 |           ^\n\
         \x20 = hint: did you mean \"on-failure\"?\n"
    );
    assert_eq!(
        fake.requests(),
        [r#"POST /api/v1/units/web/set {"assignments":["service.restart=sometimes"],"restart":false}"#]
    );
}

#[test]
fn set_sends_the_keys_to_unset() {
    let fake = Fake::start();
    let out = fake.run(&["set", "web", "container.env.B=2", "--unset", "container.env.A", "health"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        fake.requests(),
        [
            r#"POST /api/v1/units/web/set {"assignments":["container.env.B=2"],"unset":["container.env.A","health"],"restart":false}"#
        ]
    );
    let out = fake.run(&["set", "web", "--unset", "container.env.A", "x=1"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(stderr(&out).contains("put assignments before --unset"), "{out:?}");
    assert_eq!(fake.requests().len(), 1, "a usage error sends nothing");
}

#[test]
fn missing_units_exit_3() {
    let fake = Fake::start();
    for args in
        [&["history", "gone"][..], &["diff", "gone"], &["cat", "gone"], &["history", "gone", "--json"]]
    {
        let out = fake.run(args);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {out:?}");
    }
}

#[test]
fn failed_job_shows_result_status_and_log_lines_and_exits_1() {
    let fake = Fake::start();
    let out = fake.run(&["start", "web"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        stderr(&out),
        "containerctl: job start of containerctl@web.service failed\n\
         \x20 job result: failed\n\
         \x20 status: \"image ctl-test/busybox:1.0 not found\"\n\
         \x20 last log lines:\n\
         \x20   2026-09-21T14:13:23Z containerctl-runner: pulling ctl-test/busybox:1.0: manifest unknown\n\
         \x20   exited with status 125\n\
         see `containerctl status web` and `containerctl logs web` for details\n"
    );
}

#[test]
fn update_streams_its_steps_and_a_rollback_exits_1_with_the_failed_runs_log() {
    let fake = Fake::start();
    let out = fake.run(&["update", "web", "--to", "1.1"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        stdout(&out),
        "updated web from 1.0 to 1.1 (sha256:abababababab), revision 5\nrestarted with it: app\n"
    );
    assert!(stderr(&out).contains("✓ soak: web stayed up for 30s"), "{}", stderr(&out));
    assert!(fake
        .requests()
        .iter()
        .any(|r| r.starts_with("POST /api/v1/units/web/update") && r.contains("\"to\":\"1.1\"")));
    let out = fake.run(&["update", "web", "--to", "1.2"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stderr(&out).ends_with(
            "containerctl: web: rolled back to 1.0: its container turned unhealthy\n\
             \x20 last lines of the failed run:\n\
             \x20   running 1.2\n\
             \x20   health check failed\n\
             \x20 hint: see containerctl logs web\n"
        ),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&out), "");
    let out = fake.run(&["update", "web", "--to", "1.2", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(stdout(&out).lines().count(), 4, "every line as the daemon sent it");
    let out = fake.run(&["update", "--check", "--to", "1.1"]);
    assert_eq!(out.status.code(), Some(2), "--check and --to conflict: {out:?}");
}

#[test]
fn jobs_continue_after_a_failure_and_exit_with_the_first() {
    let fake = Fake::start();
    let out = fake.run(&["restart", "nope", "web"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(stderr(&out).starts_with("containerctl: no unit at /units/nope/restart\n"), "{}", stderr(&out));
    assert_eq!(fake.requests().len(), 2);
}

#[test]
fn unknown_unit_exits_3() {
    let fake = Fake::start();
    let out = fake.run(&["status", "nope"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(stderr(&out), "containerctl: no unit at /units/nope\n");
}

#[test]
fn unreachable_daemon_exits_5() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.sock");
    let out = ctl(&missing, &["list"], &[], dir.path());
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert_eq!(
        stderr(&out),
        format!(
            "containerctl: cannot reach containerctld at {}: is it running? (systemctl status containerctld)\n",
            missing.display()
        )
    );
    // A socket file that nobody listens on any more (the daemon was killed).
    let stale = dir.path().join("stale.sock");
    drop(StdUnixListener::bind(&stale).expect("bind"));
    let out = ctl(&stale, &["status", "web"], &[], dir.path());
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert!(stderr(&out).contains("cannot reach containerctld at"), "{}", stderr(&out));
}

#[test]
fn bad_arguments_are_usage_errors_before_any_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.sock");
    for args in [&["status", "Web"][..], &["set", "web", "novalue"], &["frobnicate"], &["start"]] {
        let out = ctl(&missing, args, &[], dir.path());
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    }
}

#[test]
fn edit_unchanged_is_no_change() {
    let fake = Fake::start();
    let out = fake.run_with(&["edit", "web"], &[("EDITOR", "true")]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(stdout(&out), "web: no change\n");
    assert_eq!(fake.requests(), ["GET /api/v1/units/web/file "]);
    let left: Vec<_> = std::fs::read_dir(fake.dir.path()).expect("read_dir").flatten().collect();
    assert_eq!(left.len(), 1, "only the socket is left: {left:?}");
}

#[test]
fn edit_saves_and_prints_the_revision() {
    let fake = Fake::start();
    let out = fake.run_with(&["edit", "web"], &[("EDITOR", "sed -i s/1.0/1.1/")]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(stdout(&out), "web: saved revision 5 to /etc/containerctl/units/web.toml\n");
    assert!(stderr(&out).contains("`containerctl restart web`"), "{}", stderr(&out));
    let put = fake.requests().into_iter().find(|r| r.starts_with("PUT ")).expect("a PUT");
    let body: Value =
        serde_json::from_str(put.trim_start_matches("PUT /api/v1/units/web/file ")).expect("json");
    assert_eq!(body, json!({"text": WEB_TEXT.replace("1.0", "1.1"), "restart": false}));
}

#[test]
fn refused_edit_is_shown_kept_and_exits_1_without_a_terminal() {
    let fake = Fake::start();
    let editor = "printf '[service]\\nrestart = \"sometimes\"\\n' >>";
    let out = fake.run_with(&["edit", "web", "--restart"], &[("EDITOR", editor)]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = stderr(&out);
    assert!(err.starts_with("containerctl: the unit file of web has 1 error\n"), "{err}");
    assert!(err.contains("7 | restart = \"sometimes\"\n  |           ^\n"), "{err}");
    let kept = err.lines().last().and_then(|l| l.split("your text is kept in ").nth(1)).expect("kept path");
    assert!(
        err.contains(&format!("error: {kept}:7:11: restart = \"sometimes\"")),
        "the kept copy named: {err}"
    );
    let meta = std::fs::metadata(kept).expect("kept file");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert!(std::fs::read_to_string(kept).expect("read").ends_with("restart = \"sometimes\"\n"));
}

#[test]
fn failing_editor_changes_nothing() {
    let fake = Fake::start();
    let out = fake.run_with(&["edit", "web"], &[("VISUAL", "false"), ("EDITOR", "true")]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(stderr(&out), "containerctl: editor `false` exited with status 1; nothing was changed\n");
    assert_eq!(fake.requests(), ["GET /api/v1/units/web/file "]);
}

#[test]
fn new_and_rm_without_a_terminal() {
    let fake = Fake::start();
    let out = fake.run(&[
        "new",
        "cam",
        "--image",
        "registry.example:5002/camera",
        "--version",
        "1.4.2",
        "--",
        "--fps",
        "30",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(stdout(&out), "cam: created /etc/containerctl/units/cam.toml (revision 1)\n");
    let out = fake.run(&["rm", "web"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(stdout(&out), "web: removed\n");
    assert_eq!(
        fake.requests(),
        [
            r#"POST /api/v1/units {"name":"cam","image":"registry.example:5002/camera","version":"1.4.2","args":["--fps","30"]}"#,
            "DELETE /api/v1/units/web ",
        ]
    );
}

#[test]
fn logs_print_journal_lines_or_ndjson() {
    let fake = Fake::start();
    let out = fake.run(&["logs", "web", "-n", "2"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(stdout(&out), "2026-09-21T14:13:21Z web: one\n2026-09-21T14:13:22Z web: two\n");
    assert_eq!(fake.requests(), ["GET /api/v1/units/web/logs?n=2&follow=false "]);
    let out = fake.run(&["logs", "web", "--json"]);
    let lines: Vec<Value> =
        stdout(&out).lines().map(|l| serde_json::from_str(l).expect("one json object per line")).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["message"], "two");
}

#[test]
fn completions_need_no_daemon() {
    let dir = tempfile::tempdir().expect("tempdir");
    for shell in ["bash", "zsh", "fish"] {
        let out = ctl(&dir.path().join("none.sock"), &["completions", shell], &[], dir.path());
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert!(stdout(&out).contains("containerctl"), "{shell}");
    }
}

#[test]
fn next_start_is_not_said_of_stopped_units_or_enabled_changes() {
    let fake = Fake::start();
    // db is failed (not running): it starts with the new file.
    let out = fake.run_with(&["edit", "db"], &[("EDITOR", "sed -i s/1.0/1.1/")]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(stdout(&out), "db: saved revision 3 to /etc/containerctl/units/db.toml\n");
    assert!(!stderr(&out).contains("next start"), "{}", stderr(&out));
    // web runs, but `enabled` changes what starts at boot, not what runs.
    let out = fake.run_with(&["edit", "web"], &[("EDITOR", "printf '\\n[service]\\nenabled = false\\n' >>")]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(!stderr(&out).contains("next start"), "{}", stderr(&out));
    let out = fake.run(&["set", "web", "service.enabled=false"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(!stderr(&out).contains("next start"), "{}", stderr(&out));
    // A real change of a running unit still says it.
    let out = fake.run_with(&["edit", "web"], &[("EDITOR", "sed -i s/1.0/1.1/")]);
    assert!(stderr(&out).contains("it takes effect at the next start"), "{}", stderr(&out));
}

#[test]
fn complete_units_prints_names_or_nothing() {
    let fake = Fake::start();
    let out = fake.run(&["__complete-units"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(stdout(&out), "web\ndb\n");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = ctl(&dir.path().join("none.sock"), &["__complete-units"], &[], dir.path());
    assert_eq!((stdout(&out).as_str(), stderr(&out).as_str()), ("", ""), "quiet without a daemon");
    let out = ctl(&dir.path().join("none.sock"), &["completions", "bash"], &[], dir.path());
    assert!(stdout(&out).contains("complete -F _containerctl_units"), "{}", stdout(&out));
}
