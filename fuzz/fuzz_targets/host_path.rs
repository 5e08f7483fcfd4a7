//! Host paths of bind mounts are operator input checked against the allow-list: the check must
//! never panic, and a path it accepts must lie below an allowed root.
#![no_main]

use containerctl::unit::{parse, VolumeSource};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else { return };
    if path.contains(['"', '\\', '\n']) {
        return;
    }
    let text = format!("[container]\nimage = \"busybox\"\nversion = \"1\"\nvolumes = [\"{path}:/data\"]\n");
    let Ok(unit) = parse("fuzz", "fuzz.toml", &text) else { return };
    let mut policy = containerctl::config::Policy::default();
    policy.allowed_host_paths = vec!["/srv/containers".into()];
    let ok = containerctl::policy::check_definition(
        containerctl::policy::Role::Operator,
        &policy,
        None,
        &unit,
        &[],
    )
    .is_ok();
    for v in &unit.container.volumes {
        if let VolumeSource::Host(p) = &v.source {
            if ok {
                assert!(p.starts_with("/srv/containers"), "accepted {p:?} outside the allowed root");
                assert!(!p.components().any(|c| c == std::path::Component::ParentDir), "accepted {p:?} with ..");
            }
        }
    }
});
