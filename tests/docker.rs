//! The runner against a real dockerd, outside systemd: a datagram socket of the test's own plays
//! systemd's NOTIFY_SOCKET, so the order of READY=1 and the container's state can be checked.
//! Needs dockerd and the image ctl-test/busybox:1 (scripts/test.sh provides both); built only
//! with `--features docker-tests`.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Case {
    _dir: tempfile::TempDir,
    definition: PathBuf,
    notify: UnixDatagram,
    notify_path: PathBuf,
    name: String,
}

/// A stop keeps the container for the next start (the runner's contract), so each case removes
/// its own when it ends: the test machine's dockerd keeps nothing of a run.
impl Drop for Case {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.container()]);
    }
}

impl Case {
    fn new(name: &str, toml: &str) -> Case {
        let dir = tempfile::tempdir().expect("tempdir");
        let definition = dir.path().join(format!("{name}.toml"));
        std::fs::write(&definition, toml).expect("write definition");
        let notify_path = dir.path().join("notify.sock");
        let notify = UnixDatagram::bind(&notify_path).expect("bind notify socket");
        notify.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
        let _ = docker(&["rm", "-f", &format!("containerctl-{name}")]);
        Case { _dir: dir, definition, notify, notify_path, name: name.to_owned() }
    }

    fn spawn(&self) -> Child {
        Command::new(env!("CARGO_BIN_EXE_containerctl-runner"))
            .arg(&self.name)
            .env("CONTAINERCTL_DEFINITION", &self.definition)
            // The policy of the test's own (missing: every default), not the machine's.
            .env("CONTAINERCTL_CONFIG", self.config())
            .env("NOTIFY_SOCKET", &self.notify_path)
            .env_remove("JOURNAL_STREAM")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn runner")
    }

    /// Collects notify messages until one contains `want`, or panics at the deadline.
    fn wait_notify(&self, want: &str, deadline: Duration) -> Vec<String> {
        let end = Instant::now() + deadline;
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while Instant::now() < end {
            if let Ok(n) = self.notify.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                let done = msg.lines().any(|l| l == want || l.starts_with(want));
                seen.push(msg);
                if done {
                    return seen;
                }
            }
        }
        panic!("no notify message {want:?} within {deadline:?}; got {seen:?}");
    }

    fn config(&self) -> PathBuf {
        self._dir.path().join("containerctl.toml")
    }

    fn container(&self) -> String {
        format!("containerctl-{}", self.name)
    }
}

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker").args(args).output().expect("docker CLI on PATH")
}

/// One field of `docker inspect` (a Go template like `{{.Id}}`), trimmed.
fn inspect(container: &str, template: &str) -> String {
    String::from_utf8_lossy(&docker(&["inspect", "-f", template, container]).stdout).trim().to_owned()
}

fn running(container: &str) -> bool {
    inspect(container, "{{.State.Running}}") == "true"
}

fn exists(container: &str) -> bool {
    docker(&["inspect", container]).status.success()
}

fn wait_exit(child: &mut Child, deadline: Duration) -> std::process::ExitStatus {
    let end = Instant::now() + deadline;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(Instant::now() < end, "runner did not exit within {deadline:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn terminate(child: &Child) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid fits"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("send SIGTERM");
}

const IMAGE: &str = "image = \"ctl-test/busybox\"\nversion = \"1\"\n";

#[test]
fn ready_is_sent_once_the_container_runs_and_sigterm_stops_it_for_the_next_start() {
    let case = Case::new(
        "it-ready",
        &format!("[container]\n{IMAGE}args = [\"sh\", \"-c\", \"echo hello-out; echo hello-err >&2; exec sleep 1000\"]\n"),
    );
    let mut child = case.spawn();
    let seen = case.wait_notify("READY=1", Duration::from_secs(30));
    assert!(running(&case.container()), "READY=1 before the container ran: {seen:?}");
    assert!(seen.last().is_some_and(|m| m.contains("STATUS=running container")), "{seen:?}");
    terminate(&child);
    case.wait_notify("STOPPING=1", Duration::from_secs(10));
    let status = wait_exit(&mut child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(0));
    assert!(
        exists(&case.container()) && !running(&case.container()),
        "SIGTERM stops the container and keeps it"
    );
    let out = child.wait_with_output().expect("output");
    assert!(String::from_utf8_lossy(&out.stdout).contains("hello-out"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("hello-err"));
    // The next start of the unchanged definition starts the same container again.
    let id = inspect(&case.container(), "{{.Id}}");
    let mut again = case.spawn();
    case.wait_notify("READY=1", Duration::from_secs(30));
    assert!(running(&case.container()), "the kept container runs again");
    assert_eq!(inspect(&case.container(), "{{.Id}}"), id, "the same container, started again");
    terminate(&again);
    assert_eq!(wait_exit(&mut again, Duration::from_secs(20)).code(), Some(0));
    let _ = docker(&["rm", "-f", &case.container()]);
}

#[test]
fn the_containers_exit_status_becomes_the_runners_and_a_rerun_reuses_it() {
    let case = Case::new("it-exit", &format!("[container]\n{IMAGE}args = [\"sh\", \"-c\", \"exit 7\"]\n"));
    let mut child = case.spawn();
    assert_eq!(wait_exit(&mut child, Duration::from_secs(30)).code(), Some(7));
    assert_eq!(
        inspect(&case.container(), "{{.State.Running}} {{.State.ExitCode}}"),
        "false 7",
        "the exited container is kept"
    );
    let id = inspect(&case.container(), "{{.Id}}");
    let mut again = case.spawn();
    assert_eq!(wait_exit(&mut again, Duration::from_secs(30)).code(), Some(7));
    assert_eq!(inspect(&case.container(), "{{.Id}}"), id, "a restart starts the same container again");
    let _ = docker(&["rm", "-f", &case.container()]);
}

#[test]
fn ready_waits_for_the_health_check() {
    let case = Case::new(
        "it-health",
        &format!(
            "[container]\n{IMAGE}args = [\"sh\", \"-c\", \"sleep 2; touch /tmp/ok; exec sleep 1000\"]\n\
             [health]\ncmd = [\"test\", \"-f\", \"/tmp/ok\"]\ninterval = \"1s\"\nretries = 10\n"
        ),
    );
    let mut child = case.spawn();
    let seen = case.wait_notify("READY=1", Duration::from_secs(30));
    assert_eq!(inspect(&case.container(), "{{.State.Health.Status}}"), "healthy", "{seen:?}");
    terminate(&child);
    assert_eq!(wait_exit(&mut child, Duration::from_secs(20)).code(), Some(0));
}

#[test]
fn a_digest_mismatch_is_refused_without_creating_a_container() {
    let case = Case::new(
        "it-digest",
        &format!("[container]\n{IMAGE}digest = \"sha256:{}\"\nargs = [\"true\"]\n", "1".repeat(64)),
    );
    let mut child = case.spawn();
    let seen = case.wait_notify("STATUS=failed: refusing to start", Duration::from_secs(30));
    assert_eq!(wait_exit(&mut child, Duration::from_secs(10)).code(), Some(78), "{seen:?}");
    assert!(!exists(&case.container()));
}

#[test]
fn a_killed_runner_is_succeeded_by_one_that_adopts_the_container() {
    let case = Case::new("it-adopt", &format!("[container]\n{IMAGE}args = [\"sleep\", \"1000\"]\n"));
    let mut first = case.spawn();
    case.wait_notify("READY=1", Duration::from_secs(30));
    let id = inspect(&case.container(), "{{.Id}}");
    first.kill().expect("SIGKILL");
    let _ = first.wait();
    assert!(running(&case.container()), "the container must outlive a killed runner");
    let mut second = case.spawn();
    case.wait_notify("READY=1", Duration::from_secs(30));
    let id2 = inspect(&case.container(), "{{.Id}}");
    assert_eq!(id, id2, "the second runner replaced instead of adopting");
    terminate(&second);
    assert_eq!(wait_exit(&mut second, Duration::from_secs(20)).code(), Some(0));
    assert!(!running(&case.container()), "SIGTERM stops the adopted container");
    let _ = docker(&["rm", "-f", &case.container()]);
}

#[test]
fn a_changed_definition_replaces_the_running_container() {
    let case = Case::new("it-replace", &format!("[container]\n{IMAGE}args = [\"sleep\", \"1000\"]\n"));
    let mut first = case.spawn();
    case.wait_notify("READY=1", Duration::from_secs(30));
    let id = inspect(&case.container(), "{{.Id}}");
    first.kill().expect("SIGKILL");
    let _ = first.wait();
    std::fs::write(&case.definition, format!("[container]\n{IMAGE}args = [\"sleep\", \"999\"]\n"))
        .expect("rewrite");
    let mut second = case.spawn();
    case.wait_notify("READY=1", Duration::from_secs(30));
    let id2 = inspect(&case.container(), "{{.Id}}");
    assert_ne!(id, id2);
    terminate(&second);
    assert_eq!(wait_exit(&mut second, Duration::from_secs(20)).code(), Some(0));
    let _ = docker(&["rm", "-f", &case.container()]);
}

#[test]
fn missing_definition_fails_with_the_configuration_status() {
    let out = Command::new(env!("CARGO_BIN_EXE_containerctl-runner"))
        .arg("nodef")
        .env_remove("CONTAINERCTL_DEFINITION")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no valid definition for unit nodef"));
}

#[test]
fn containers_run_with_no_new_privileges_unless_turned_off() {
    for (flag, want) in [("", "NoNewPrivs:\t1"), ("no_new_privileges = false\n", "NoNewPrivs:\t0")] {
        let case = Case::new(
            "it-nnp",
            &format!("[container]\n{IMAGE}{flag}args = [\"grep\", \"NoNewPrivs\", \"/proc/self/status\"]\n"),
        );
        let mut child = case.spawn();
        assert_eq!(wait_exit(&mut child, Duration::from_secs(30)).code(), Some(0));
        let out = child.wait_with_output().expect("output");
        assert!(String::from_utf8_lossy(&out.stdout).contains(want), "{flag:?}: {out:?}");
        let _ = docker(&["rm", "-f", &case.container()]);
    }
}

/// A directory below an allowed root that became a symlink to / after the unit was checked.
#[test]
fn a_host_path_swapped_for_a_symlink_is_refused_at_start() {
    let case = Case::new("it-symlink", "");
    let root = case._dir.path().join("allowed");
    std::fs::create_dir_all(root.join("cam")).expect("mkdir");
    std::fs::write(case.config(), format!("[policy]\nallowed_host_paths = [\"{}\"]\n", root.display()))
        .expect("write config");
    let unit = format!(
        "[container]\n{IMAGE}args = [\"ls\", \"/data\"]\nvolumes = [\"{}/cam/data:/data\"]\n",
        root.display()
    );
    std::fs::write(&case.definition, unit).expect("write definition");
    std::fs::remove_dir_all(root.join("cam")).expect("rm");
    std::os::unix::fs::symlink("/", root.join("cam")).expect("symlink");
    let mut child = case.spawn();
    let seen = case.wait_notify("STATUS=failed: refusing to start", Duration::from_secs(30));
    assert_eq!(wait_exit(&mut child, Duration::from_secs(10)).code(), Some(78), "{seen:?}");
    let status = seen.last().cloned().unwrap_or_default();
    assert!(status.contains(&format!("{}/cam (-> /) is a symbolic link", root.display())), "{status}");
    assert!(!exists(&case.container()), "a container was created");
}

/// A real directory below an allowed root runs only when the root is mounted nosuid,nodev.
#[test]
fn a_host_path_below_an_allowed_root_needs_a_nosuid_nodev_mount() {
    let case = Case::new("it-nosuid", "");
    let root = case._dir.path().join("allowed");
    std::fs::create_dir_all(root.join("cam")).expect("mkdir");
    std::fs::write(root.join("cam/file"), "x").expect("write");
    std::fs::write(case.config(), format!("[policy]\nallowed_host_paths = [\"{}\"]\n", root.display()))
        .expect("write config");
    let unit = format!(
        "[container]\n{IMAGE}args = [\"ls\", \"/data\"]\nvolumes = [\"{}/cam:/data\"]\n",
        root.display()
    );
    std::fs::write(&case.definition, unit).expect("write definition");
    let flags = nix::sys::statvfs::statvfs(&root).expect("statvfs").flags();
    let safe = flags.contains(nix::sys::statvfs::FsFlags::ST_NOSUID)
        && flags.contains(nix::sys::statvfs::FsFlags::ST_NODEV);
    let mut child = case.spawn();
    let code = wait_exit(&mut child, Duration::from_secs(30)).code();
    let out = child.wait_with_output().expect("output");
    if safe {
        assert_eq!(code, Some(0), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("file"), "{out:?}");
    } else {
        assert_eq!(code, Some(78), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("must be mounted nosuid,nodev"), "{out:?}");
        assert!(!exists(&case.container()));
    }
    let _ = docker(&["rm", "-f", &case.container()]);
}
