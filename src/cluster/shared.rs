//! The shared volume's state on this host: whether the GlusterFS volume is mounted at its root
//! and how full it is. Read by the runner (a unit with `shared:` volumes refuses to start on an
//! unmounted root), the inventory and the cluster status, so it sits below all of them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Shared {
    pub path: String,
    pub mounted: bool,
    pub volume: String,
    pub size_bytes: u64,
    pub used_bytes: u64,
    pub avail_bytes: u64,
}

/// Whether `path` is a mount point of a FUSE Gluster file system, from `/proc/self/mountinfo`.
pub fn is_gluster_mount(mountinfo: &str, path: &str) -> bool {
    mountinfo.lines().any(|l| {
        let fields: Vec<&str> = l.split(' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else { return false };
        fields.get(4) == Some(&path) && fields.get(sep + 1).is_some_and(|t| t.starts_with("fuse.glusterfs"))
    })
}

/// The shared volume's mount state and usage on this host.
pub fn shared() -> Shared {
    let path = crate::unit::Volume::SHARED_ROOT;
    // systemd mounts it in the host's mount namespace, which a sandboxed daemon's namespace may
    // not receive (a host whose / is not a shared mount): look through PID 1's view first.
    let in_host = |m: &str| std::fs::read_to_string(m).is_ok_and(|m| is_gluster_mount(&m, path));
    let mounted = in_host("/proc/1/mountinfo") || in_host("/proc/self/mountinfo");
    let (size_bytes, used_bytes, avail_bytes) = if mounted {
        statvfs(&format!("/proc/1/root{path}")).or_else(|| statvfs(path)).unwrap_or_default()
    } else {
        (0, 0, 0)
    };
    Shared {
        path: path.into(),
        mounted,
        volume: crate::cluster::VOLUME.into(),
        size_bytes,
        used_bytes,
        avail_bytes,
    }
}

/// (size, used, available) bytes of the file system holding `path`.
pub(crate) fn statvfs(path: &str) -> Option<(u64, u64, u64)> {
    let s = nix::sys::statvfs::statvfs(path).ok()?;
    let f = s.fragment_size();
    let total = s.blocks() * f;
    let free = s.blocks_free() * f;
    let avail = s.blocks_available() * f;
    Some((total, total.saturating_sub(free), avail))
}
