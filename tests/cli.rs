//! `containerctl validate` as a user runs it: exit status, stderr text and --json.

use std::process::Command;

fn validate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_containerctl"))
        .arg("validate")
        .args(args)
        .output()
        .expect("run containerctl")
}

#[test]
fn valid_files_exit_zero() {
    let out = validate(&["examples/hello.toml", "examples/camera.toml"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "examples/hello.toml: ok\nexamples/camera.toml: ok\n");
}

#[test]
fn errors_go_to_stderr_with_position_and_exit_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("web.toml");
    std::fs::write(&bad, "[container]\nimage = \"a\"\nversion = \"1\"\n[service]\nrestart = \"sometimes\"\n")
        .expect("write");
    let out = validate(&[bad.to_str().expect("utf-8"), "examples/hello.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("error: {}:5:11: restart = \"sometimes\"", bad.display())), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("examples/hello.toml: ok"));
}

#[test]
fn json_reports_each_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("Bad.toml");
    std::fs::write(&bad, "").expect("write");
    let out = validate(&["--json", bad.to_str().expect("utf-8"), "examples/db.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v[0]["valid"], false);
    assert!(v[0]["errors"][0]["message"].as_str().expect("message").starts_with("file name: `Bad`"));
    assert_eq!(v[1]["valid"], true);
    assert_eq!(v[1]["errors"].as_array().map(Vec::len), Some(0));
}

#[test]
fn missing_file_is_an_error_not_a_panic() {
    let out = validate(&["/nonexistent/web.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/web.toml: cannot read"));
}

/// go-md2man (Debian 12's 2.0.2) copies a title block's text after `.TH` as it is: the `%` line
/// must be .TH's arguments (NAME SECTION DATE SOURCE MANUAL), or man prints "NAME(1)()".
#[test]
fn man_pages_have_well_formed_th_lines() {
    let mut pages = 0;
    for entry in std::fs::read_dir("docs").expect("docs/") {
        let path = entry.expect("entry").path();
        let file = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        let Some(stem) = file.strip_suffix(".md") else { continue };
        let Some((name, section)) = stem.rsplit_once('.').filter(|(_, s)| s.len() == 1) else { continue };
        pages += 1;
        let text = std::fs::read_to_string(&path).expect("read");
        let mut lines = text.lines();
        let title = lines.next().unwrap_or_default();
        let expected_start = format!(
            "% {} {section} \"\" \"containerctl {}\" \"",
            name.to_uppercase(),
            env!("CARGO_PKG_VERSION")
        );
        assert!(title.starts_with(&expected_start) && title.ends_with('"'), "{file}: title line {title:?}");
        assert_eq!(title.matches('"').count(), 6, "{file}: {title:?}");
        assert!(!lines.next().unwrap_or_default().starts_with('%'), "{file}: one title line only");
    }
    assert_eq!(pages, 4, "containerctl(1), containerctl.unit(5), containerctl.toml(5), containerctld(8)");
}

#[test]
fn a_plain_credential_is_a_warning_that_never_quotes_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = dir.path().join("web.toml");
    std::fs::write(
        &unit,
        "[container]\nimage = \"a\"\nversion = \"1\"\nenv = { TZ = \"UTC\", DB_PASSWORD = \"hunter2\" }\n",
    )
    .expect("write");
    let out = validate(&[unit.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0), "a warning keeps the file valid: {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "warning: {}:4:21: the value of environment variable DB_PASSWORD is written in plain text",
            unit.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("env_secrets = { DB_PASSWORD = \"NAME\" }"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
    let out = validate(&["--json", unit.to_str().expect("utf-8")]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v[0]["valid"], true);
    assert_eq!(v[0]["warnings"][0]["line"], 4);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("hunter2"));
}
