//! What a node reports to the manager: its units, containers, images, devices and resources, and
//! the state of its shared mount. Collected from the daemon's live state, Docker and /proc.

use serde::{Deserialize, Serialize};

use crate::cluster::shared::statvfs;
pub use crate::cluster::shared::{is_gluster_mount, shared, Shared};
use crate::daemon::Daemon;

/// How long after a report the next one at the interval is due: the interval, give or take a
/// tenth of it, by `random` (any u64). A fleet that reported at once (after the manager came
/// back, or a change everywhere) would otherwise stay in step and send every later interval's
/// reports in one burst too; a tenth is far inside the three intervals after which a silent
/// node is marked down.
pub fn next_report_in(interval: std::time::Duration, random: u64) -> std::time::Duration {
    let tenth = interval / 10;
    let spread = u64::try_from(tenth.as_nanos().saturating_mul(2)).unwrap_or(u64::MAX - 1);
    let offset = std::time::Duration::from_nanos(random % (spread + 1));
    (interval - tenth) + offset
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Inventory {
    pub hostname: String,
    pub units: Vec<UnitSummary>,
    pub containers: u32,
    pub images: Vec<String>,
    pub devices: Vec<String>,
    pub resources: Resources,
    pub shared: Shared,
}

impl Inventory {
    /// A digest of what the Cluster page shows of this node apart from its gauges (load, memory,
    /// disk, the shared volume's use): its units and their states, containers, images, devices and
    /// whether the shared volume is mounted. Two reports with the same digest look the same but for
    /// numbers that change at every report, which the page refreshes on its own timer.
    pub fn shown_digest(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (&self.hostname, &self.units, self.containers, &self.images, &self.devices).hash(&mut h);
        (&self.shared.path, self.shared.mounted, &self.shared.volume).hash(&mut h);
        h.finish()
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, Hash)]
pub struct UnitSummary {
    pub name: String,
    pub active_state: String,
    pub sub_state: String,
    pub image: Option<String>,
    pub version: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Resources {
    pub cpus: u32,
    pub memory_total_bytes: u64,
    pub memory_available_bytes: u64,
    pub load1: f64,
    pub disk_avail_bytes: u64,
}

/// `/proc/meminfo` → (MemTotal, MemAvailable) in bytes.
pub fn parse_meminfo(text: &str) -> (u64, u64) {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("MemTotal:"), field("MemAvailable:"))
}

fn resources(state_dir: &std::path::Path) -> Resources {
    let (memory_total_bytes, memory_available_bytes) =
        parse_meminfo(&std::fs::read_to_string("/proc/meminfo").unwrap_or_default());
    let load1 = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0);
    Resources {
        cpus: std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(1)),
        memory_total_bytes,
        memory_available_bytes,
        load1,
        disk_avail_bytes: statvfs(&state_dir.to_string_lossy()).map_or(0, |s| s.2),
    }
}

/// This host's inventory now.
pub async fn collect(d: &Daemon) -> Inventory {
    let units = d
        .list()
        .into_iter()
        .map(|u| UnitSummary {
            name: u.name,
            active_state: u.active_state,
            sub_state: u.sub_state,
            image: u.image,
            version: u.version,
        })
        .collect();
    let (mut containers, mut images) = (0, Vec::new());
    if let Some(docker) = d.docker() {
        let opts = bollard::query_parameters::ListContainersOptionsBuilder::new().all(true).build();
        containers =
            docker.list_containers(Some(opts)).await.map_or(0, |c| u32::try_from(c.len()).unwrap_or(0));
        if let Ok(list) = docker.list_images(None::<bollard::query_parameters::ListImagesOptions>).await {
            images = list.into_iter().flat_map(|i| i.repo_tags).filter(|t| t != "<none>:<none>").collect();
            images.sort();
        }
    }
    let defs: Vec<(String, crate::unit::Unit)> = d
        .definitions()
        .into_iter()
        .filter_map(|(n, def)| def.unit.ok().map(|u| (n.to_string(), u)))
        .collect();
    let devices =
        crate::devices::scan(crate::devices::BY_ID_DIRS, &defs).into_iter().map(|v| v.path).collect();
    Inventory {
        hostname: super::hostname(),
        units,
        containers,
        images,
        devices,
        resources: resources(&d.config.state_dir),
        shared: shared(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_report_is_the_interval_give_or_take_a_tenth() {
        use std::time::Duration;
        let i = Duration::from_secs(15);
        assert_eq!(next_report_in(i, 0), Duration::from_millis(13_500));
        assert_eq!(next_report_in(i, 3_000_000_000), Duration::from_millis(16_500));
        assert_eq!(next_report_in(i, 3_000_000_001), Duration::from_millis(13_500));
        // Spread over the whole 13.5-16.5 s: every half second of it is hit.
        let spread: std::collections::BTreeSet<_> = (0..1000u64)
            .map(|n| next_report_in(i, n.wrapping_mul(0x9e37_79b9_7f4a_7c15)).as_millis() / 500)
            .collect();
        assert_eq!(spread.into_iter().collect::<Vec<_>>(), [27, 28, 29, 30, 31, 32]);
        assert_eq!(next_report_in(Duration::ZERO, 7), Duration::ZERO);
        assert_eq!(next_report_in(Duration::from_micros(5), 500), Duration::from_micros(5));
    }

    #[test]
    fn the_shown_digest_ignores_gauges_only() {
        let unit = UnitSummary { name: "web".into(), active_state: "active".into(), ..Default::default() };
        let a = Inventory { hostname: "h1".into(), units: vec![unit], containers: 1, ..Default::default() };
        let mut gauges = a.clone();
        gauges.resources = Resources {
            cpus: 2,
            memory_total_bytes: 8,
            memory_available_bytes: 3,
            load1: 0.7,
            disk_avail_bytes: 9,
        };
        gauges.shared.used_bytes = 5;
        gauges.shared.avail_bytes = 6;
        assert_eq!(a.shown_digest(), gauges.shown_digest());
        let mut failed = a.clone();
        failed.units[0].active_state = "failed".into();
        let mut more = a.clone();
        more.containers = 2;
        let mut mounted = a.clone();
        mounted.shared.mounted = true;
        let mut image = a.clone();
        image.images.push("r/x:1".into());
        for other in [failed, more, mounted, image] {
            assert_ne!(a.shown_digest(), other.shown_digest(), "{other:?}");
        }
    }

    #[test]
    fn meminfo_is_read_in_bytes() {
        let text = "MemTotal:       16384 kB\nMemFree:  1 kB\nMemAvailable:    8192 kB\n";
        assert_eq!(parse_meminfo(text), (16384 * 1024, 8192 * 1024));
        assert_eq!(parse_meminfo(""), (0, 0));
    }

    #[test]
    fn gluster_mounts_are_recognised_by_path_and_type() {
        let m = "36 25 0:32 / /var/lib/containerctl/shared rw,relatime shared:1 - fuse.glusterfs 10.0.0.1:/containerctl rw\n\
                 37 25 0:33 / /var/lib/containerctl rw - ext4 /dev/sda1 rw\n";
        assert!(is_gluster_mount(m, "/var/lib/containerctl/shared"));
        assert!(!is_gluster_mount(m, "/var/lib/containerctl"));
        assert!(!is_gluster_mount("", "/var/lib/containerctl/shared"));
    }
}
