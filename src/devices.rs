//! Host devices by their stable names, and which units use them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::unit::Unit;

/// Directories of udev's stable symlinks worth showing.
pub const BY_ID_DIRS: &[&str] =
    &["/dev/serial/by-id", "/dev/v4l/by-id", "/dev/input/by-id", "/dev/snd/by-id"];

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceView {
    pub path: String,
    pub target: Option<String>,
    pub present: bool,
    pub units: Vec<String>,
}

/// Stable device names found under `dirs` plus every device the `units` declare.
pub fn scan(dirs: &[&str], units: &[(String, Unit)]) -> Vec<DeviceView> {
    let mut devices: BTreeMap<String, DeviceView> = BTreeMap::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        for e in entries.flatten() {
            let path = e.path();
            let target = std::fs::canonicalize(&path).ok().map(|t| t.display().to_string());
            let key = path.display().to_string();
            devices.insert(key.clone(), DeviceView { path: key, target, present: true, units: Vec::new() });
        }
    }
    for (name, unit) in units {
        for d in &unit.container.devices {
            let host = d.host.display().to_string();
            let real: Option<PathBuf> = std::fs::canonicalize(&d.host).ok();
            let matched = devices.values_mut().find(|v| {
                v.path == host || (real.is_some() && v.target.as_deref().map(Path::new) == real.as_deref())
            });
            match matched {
                Some(v) => v.units.push(name.clone()),
                None => {
                    let entry = devices.entry(host.clone()).or_insert_with(|| DeviceView {
                        path: host.clone(),
                        target: real.as_ref().map(|r| r.display().to_string()),
                        present: d.host.exists(),
                        units: Vec::new(),
                    });
                    entry.units.push(name.clone());
                }
            }
        }
    }
    devices.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_devices_are_listed_and_missing_ones_flagged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let by_id = dir.path().join("by-id");
        std::fs::create_dir(&by_id).expect("mkdir");
        std::os::unix::fs::symlink("/dev/null", by_id.join("usb-Acme_Serial_123")).expect("symlink");
        let text =
            "[container]\nimage = \"a\"\nversion = \"1\"\ndevices = [\"/dev/null\", \"/dev/ttyNOPE9\"]\n";
        let u = crate::unit::parse("cam", "cam.toml", text).expect("valid");
        let list = scan(&[by_id.to_str().expect("utf-8")], &[("cam".into(), u)]);
        assert_eq!(list.len(), 2, "{list:?}");
        let null = list.iter().find(|d| d.path.ends_with("usb-Acme_Serial_123")).expect("by-id entry");
        assert_eq!(
            (null.target.as_deref(), null.present, null.units.clone()),
            (Some("/dev/null"), true, vec!["cam".to_string()])
        );
        let missing = list.iter().find(|d| d.path == "/dev/ttyNOPE9").expect("declared entry");
        assert!(!missing.present);
    }
}
