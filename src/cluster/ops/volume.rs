//! The shared volume on this host: mounting it now and at every boot (the mount unit's file for
//! the generator, and at once a transient unit with the same settings) and unmounting it when the
//! host leaves. Shared by init, join and leave, which is why it is a file of its own.

use std::time::Duration;

use super::{fail, need_binary, write, Cleanup, Progress, StepError};
use crate::cluster::{self, gluster};
use crate::daemon::Daemon;

/// Mounts the shared volume now and for every boot: the mount unit's file goes to
/// /etc/containerctl/cluster (the generator installs it at boot and at every daemon-reload), and
/// the mount itself is started at once as a transient unit with the same settings, which needs no
/// daemon-reload (that alone takes longer than a whole Swarm join).
pub(super) async fn mount_shared(
    d: &Daemon,
    servers: &[String],
    volume: &str,
    p: &Progress,
) -> Result<(), StepError> {
    let step = "shared volume";
    let root = crate::unit::Volume::SHARED_ROOT;
    need_binary("/usr/sbin/mount.glusterfs", "glusterfs-client", step)?;
    // systemd creates the mount point. The daemon does not touch it: its own mount namespace may
    // hold a stale copy of an earlier mount there.
    write(
        std::path::Path::new(cluster::MOUNT_UNIT_SOURCE),
        &gluster::mount_unit(servers, volume),
        0o644,
        step,
    )?;
    if cluster::shared::shared().mounted {
        p.step(step, "skipped", format!("already mounted at {root}"));
        return Ok(());
    }
    p.step(step, "running", format!("mounting {volume} from {} at {root}", servers.join(",")));
    let (what, options) = gluster::mount_source(servers, volume);
    let spec = crate::systemd::MountSpec {
        description: format!("containerctl shared volume (GlusterFS {volume})"),
        what,
        where_: root.into(),
        fs_type: "glusterfs".into(),
        options,
        after: vec!["network-online.target".into()],
        wants: vec!["network-online.target".into()],
    };
    let hint = format!(
        "check `journalctl -u {}` and that {} is reachable (TCP 24007 and the brick ports)",
        cluster::MOUNT_UNIT,
        servers.join(",")
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        // A unit loaded from a file (after a reload or a boot) is started as it is; otherwise
        // the mount is made a transient unit.
        let loaded = d.systemd.unit_state(cluster::MOUNT_UNIT).await.is_ok_and(|u| u.load_state == "loaded");
        let outcome = if loaded {
            d.systemd.start(cluster::MOUNT_UNIT).await
        } else {
            d.systemd.mount_transient(cluster::MOUNT_UNIT, &spec).await
        };
        let why = match outcome {
            Ok(o) if o.is_done() && cluster::shared::shared().mounted => break,
            Ok(o) if o.is_done() => "the mount unit is active but nothing is mounted".to_owned(),
            Ok(o) => format!("the mount failed (job result {})", o.result),
            Err(e) => e.to_string(),
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(fail(step, why, hint));
        }
        // A brick that was just added or a volume just started can take a moment; a failed
        // transient unit must be cleared before it can be made again.
        if let Err(e) = d.systemd.reset_failed(cluster::MOUNT_UNIT).await {
            tracing::warn!(
                "cluster: {step}: clearing the failed state of {} before a retry: {e}",
                cluster::MOUNT_UNIT
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    p.step(step, "done", format!("mounted at {root}"));
    Ok(())
}

/// Unmounts the shared volume and removes its mount unit; what fails goes to `cleanup` (under
/// the step `shared volume`) and the rest goes on.
pub(super) async fn unmount_shared(d: &Daemon, cleanup: &mut Cleanup<'_>) {
    let step = "shared volume";
    cleanup.stop_unit(d, step, cluster::MOUNT_UNIT).await;
    cleanup.remove_file(step, std::path::Path::new(cluster::MOUNT_UNIT_SOURCE));
    cleanup.reload(d, step).await;
}
