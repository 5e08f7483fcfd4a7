//! systemd generator: turns /etc/containerctl/units/*.toml (and /run, /usr/lib) into
//! `containerctl@NAME.service` drop-ins. See systemd.generator(7) and containerctl.unit(5).

use std::path::PathBuf;
use std::process::ExitCode;

use containerctl::{config, generator, journal, search};

const IDENT: &str = "containerctl-generator";

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let Some(out) = args.first() else {
        eprintln!("usage: {IDENT} NORMAL_DIR [EARLY_DIR LATE_DIR]");
        return ExitCode::from(2);
    };
    let cluster_dir = std::env::var_os("CONTAINERCTL_CLUSTER_DIR")
        .map_or_else(|| PathBuf::from("/etc/containerctl/cluster"), PathBuf::from);
    if let Err(e) = generator::generate_cluster(&cluster_dir, out) {
        journal::send(journal::ERR, IDENT, &format!("cannot install the cluster's units: {e}"), &[]);
    }
    let config = config::path();
    let loaded = config::load(&config);
    // With the file unreadable, the default: a start limit is safer than none (500 starts at
    // once on two cores ran past systemd's start timeout).
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let slots = loaded
        .as_ref()
        .ok()
        .and_then(|c| c.parallel_starts)
        .unwrap_or_else(|| config::default_parallel_starts(cpus));
    if let Err(e) = generator::generate_start_slots(out, slots, &config) {
        let message =
            format!("cannot write the start slots' drop-in: units start without the host-wide limit: {e}");
        journal::send(journal::ERR, IDENT, &message, &[]);
    }
    match loaded {
        Ok(c) => {
            let fstab = std::fs::read_to_string("/etc/fstab").unwrap_or_default();
            match generator::generate_root_mounts(&c.policy.allowed_host_paths, &config, &fstab, out) {
                Ok(mounts) => {
                    for (root, why) in mounts.skipped {
                        let message =
                            format!("not mounting allowed host path {} nosuid,nodev: {why}", root.display());
                        journal::send(journal::WARNING, IDENT, &message, &[]);
                    }
                }
                Err(e) => journal::send(
                    journal::ERR,
                    IDENT,
                    &format!("cannot write the allowed host paths' mount units: {e}"),
                    &[],
                ),
            }
        }
        Err(d) => journal::send(
            journal::ERR,
            IDENT,
            &format!("cannot read the policy, so the allowed host paths are not mounted nosuid,nodev: {d}"),
            &[],
        ),
    }
    match generator::generate(&search::search_path(), out) {
        Ok(report) => {
            for (file, diags) in &report.skipped {
                for d in diags {
                    let message = format!("skipping {file}: {d}");
                    journal::send(journal::ERR, IDENT, &message, &[("CONTAINERCTL_FILE", file)]);
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            journal::send(journal::ERR, IDENT, &format!("cannot write to {}: {e}", out.display()), &[]);
            ExitCode::FAILURE
        }
    }
}
