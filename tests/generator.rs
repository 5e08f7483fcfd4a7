//! The generator: golden files for the drop-ins of every example, and a real run of the
//! generator binary over a search path that mixes valid, invalid and masked units.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use containerctl::{generator, search, unit};

fn examples() -> Vec<PathBuf> {
    let mut files: Vec<_> = fs::read_dir("examples")
        .expect("examples/ exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "examples/ lost its files");
    files
}

#[test]
fn every_example_is_valid() {
    for path in examples() {
        let text = search::read_unit_file(&path).expect("readable");
        let name = path.file_stem().and_then(|s| s.to_str()).expect("utf-8 name");
        if let Err(diags) = unit::parse(name, &path.display().to_string(), &text) {
            let shown: Vec<String> = diags.iter().map(ToString::to_string).collect();
            panic!("{}", shown.join("\n"));
        }
    }
}

/// Set UPDATE_GOLDEN=1 to rewrite tests/golden/ after an intended change, then review the diff.
#[test]
fn dropins_match_golden_files() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    for path in examples() {
        let name = path.file_stem().and_then(|s| s.to_str()).expect("utf-8 name").to_owned();
        let text = fs::read_to_string(&path).expect("readable");
        let unit = unit::parse(&name, "x", &text).expect("valid example");
        let source = PathBuf::from(format!("/etc/containerctl/units/{name}.toml"));
        let definition = PathBuf::from(format!(
            "/run/systemd/generator/containerctl@{name}.service.d/{}",
            generator::DROPIN_NAME
        ));
        let got = generator::render_dropin(&unit, &source, &definition, &text);
        assert_eq!(generator::embedded_definition(&got), text, "{name}: the embedded definition");
        let golden = Path::new("tests/golden").join(format!("{name}.conf"));
        if update {
            fs::write(&golden, &got).expect("write golden");
        }
        let want = fs::read_to_string(&golden)
            .unwrap_or_else(|_| panic!("missing {}; run with UPDATE_GOLDEN=1", golden.display()));
        assert_eq!(got, want, "drop-in for {name} differs from {}", golden.display());
    }
}

#[test]
fn generator_binary_skips_invalid_units_and_generates_the_rest() {
    let root = tempfile::tempdir().expect("tempdir");
    let etc = root.path().join("etc");
    let lib = root.path().join("lib");
    let out = root.path().join("out");
    for d in [&etc, &lib, &out] {
        fs::create_dir(d).expect("mkdir");
    }
    fs::copy("examples/hello.toml", etc.join("hello.toml")).expect("copy");
    fs::copy("examples/db.toml", lib.join("db.toml")).expect("copy");
    fs::write(etc.join("broken.toml"), "[container]\nimgae = \"x\"\nversion = \"1\"\n").expect("write");
    fs::write(lib.join("masked.toml"), fs::read("examples/hello.toml").expect("read")).expect("write");
    std::os::unix::fs::symlink("/dev/null", etc.join("masked.toml")).expect("symlink");

    let config = root.path().join("containerctl.toml");
    let allowed = root.path().join("allowed");
    fs::write(&config, format!("[policy]\nallowed_host_paths = [\"{}\"]\n", allowed.display()))
        .expect("write");

    let path = std::env::join_paths([&etc, &lib]).expect("join");
    let output = Command::new(env!("CARGO_BIN_EXE_containerctl-generator"))
        .arg(&out)
        .arg(&out)
        .arg(&out)
        .env("CONTAINERCTL_UNIT_PATH", path)
        .env("CONTAINERCTL_CONFIG", &config)
        .output()
        .expect("run generator");
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Outside systemd there is no journal socket; the message falls back to stderr or kmsg.
    if !stderr.is_empty() {
        assert!(stderr.contains("broken.toml:2:1: unknown key `imgae` in [container]"), "{stderr}");
    }

    let hello = out.join("containerctl@hello.service.d");
    let dropin = fs::read_to_string(hello.join(generator::DROPIN_NAME)).expect("hello drop-in");
    assert!(dropin.contains(&format!("SourcePath={}", etc.join("hello.toml").display())), "{dropin}");
    assert_eq!(
        generator::read_definition(&hello.join(generator::DROPIN_NAME)).expect("definition"),
        fs::read_to_string("examples/hello.toml").expect("example")
    );
    let entries: Vec<_> =
        fs::read_dir(&hello).expect("read dir").map(|e| e.expect("entry").file_name()).collect();
    assert_eq!(entries, [generator::DROPIN_NAME], "one file per unit");
    let wants = out.join("multi-user.target.wants");
    assert_eq!(
        fs::read_link(wants.join("containerctl@hello.service")).expect("wants link"),
        PathBuf::from(generator::TEMPLATE_PATH)
    );
    assert!(out.join("containerctl@db.service.d").join(generator::DROPIN_NAME).exists());
    assert!(!wants.join("containerctl@db.service").exists(), "db has enabled = false");
    assert!(!out.join("containerctl@broken.service.d").exists());

    // The allowed root's nosuid,nodev bind mount, wanted by local-fs.target.
    let name = containerctl::runner::hostpath::mount_unit_name(&allowed);
    let mount = fs::read_to_string(out.join(&name)).expect("mount unit");
    assert!(mount.contains(&format!("Where={}\n", allowed.display())), "{mount}");
    assert!(mount.contains("Options=bind,nosuid,nodev\n"), "{mount}");
    assert_eq!(fs::read_link(out.join("local-fs.target.wants").join(&name)).expect("link"), out.join(&name));
    assert!(!out.join("containerctl@masked.service.d").exists());
    // The runners learn the number of start slots from a drop-in for every instance:
    // parallel_starts is unset, so four per CPU. The generator makes no file outside `out`.
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let slots = fs::read_to_string(out.join(generator::START_SLOTS_DROPIN)).expect("the slots' drop-in");
    let count = containerctl::config::default_parallel_starts(cpus);
    assert!(
        slots.ends_with(&format!("[Service]\nEnvironment=CONTAINERCTL_START_SLOTS={count}\n")),
        "{slots}"
    );
    let mut entries: Vec<_> =
        fs::read_dir(root.path()).expect("read root").map(|e| e.expect("entry").file_name()).collect();
    entries.sort();
    assert_eq!(entries, ["containerctl.toml", "etc", "lib", "out"], "nothing written outside out/");
}

#[test]
fn generator_without_arguments_is_a_usage_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_containerctl-generator")).output().expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).starts_with("usage:"));
}
