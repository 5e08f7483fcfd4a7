//! The cluster's shared volume: a small async wrapper over the `gluster` CLI (run as
//! `gluster --mode=script`, so it never prompts) and the systemd mount unit of
//! `/var/lib/containerctl/shared`.
//!
//! Every step can be repeated: probing a known peer, detaching an unknown one, starting a started
//! volume, adding a brick that is already in the volume or removing one that is not all succeed.
//! Creating a volume that exists is [`GlusterError::AlreadyExists`], so the caller can tell.
//!
//! What glusterd needs (tried in the test bed, see TESTBED.md): the parent of a brick directory
//! must exist on the brick's host (glusterd creates only the last component); a peer must be in
//! state "Peer in Cluster" before one of its bricks can be added, which takes a second or two after
//! `peer probe` returns ([`wait_peer_in_cluster`]); bricks are named by IP address, so no name
//! resolution is involved.

use std::time::Duration;

use tokio::process::Command;

/// The shared volume's mount point on every member.
pub const SHARED_DIR: &str = "/var/lib/containerctl/shared";
/// The mount unit's name (systemd's escaping of [`SHARED_DIR`]).
pub const MOUNT_UNIT: &str = "var-lib-containerctl-shared.mount";
/// How long one `gluster` command may take; glusterd's own CLI timeout is 120 s.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(150);

#[derive(Debug, thiserror::Error)]
pub enum GlusterError {
    #[error("cannot run `{command}`: {source}; install GlusterFS (apt install glusterfs-server)")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` did not finish within {}s; check glusterd (systemctl status glusterd, journalctl -u glusterd) and the network between the hosts", COMMAND_TIMEOUT.as_secs())]
    Timeout { command: String },
    #[error("`{command}` failed: {stderr}; {hint}")]
    Failed { command: String, stderr: String, hint: &'static str },
    #[error("`{command}`: {stderr}")]
    AlreadyExists { command: String, stderr: String },
    #[error("cannot read the output of `{command}`: {detail}; is this GlusterFS 10 or newer?")]
    Parse { command: String, detail: String },
    #[error("peer {host} is not in the cluster after {secs}s (last state: {state}); check that glusterd runs there and that TCP 24007 and 49152-60999 are open between the hosts")]
    PeerNotReady { host: String, secs: u64, state: String },
}

/// What `gluster volume info` says about a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeInfo {
    /// `HOST:/path`, in the volume's order.
    pub bricks: Vec<String>,
    /// Copies of every file (1 for a plain distributed volume).
    pub replica: u32,
    pub started: bool,
}

/// One peer of `gluster peer status` (the local host is not listed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub hostname: String,
    pub connected: bool,
    /// "Peer in Cluster": the peer's bricks can be used.
    pub in_cluster: bool,
    /// glusterd's state text, for messages.
    pub state: String,
}

struct Output {
    command: String,
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Output {
    /// What gluster said about a failure: it writes errors to stderr, some to stdout.
    fn message(&self) -> String {
        let s = if self.stderr.trim().is_empty() { &self.stdout } else { &self.stderr };
        s.trim().to_owned()
    }

    fn failed(&self) -> GlusterError {
        let stderr = self.message();
        GlusterError::Failed { hint: hint(&self.command, &stderr), command: self.command.clone(), stderr }
    }
}

async fn gluster(args: &[&str]) -> Result<Output, GlusterError> {
    let command = format!("gluster --mode=script {}", args.join(" "));
    let child = Command::new("gluster")
        .arg("--mode=script")
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = match tokio::time::timeout(COMMAND_TIMEOUT, child).await {
        Err(_) => return Err(GlusterError::Timeout { command }),
        Ok(Err(source)) => return Err(GlusterError::Spawn { command, source }),
        Ok(Ok(out)) => out,
    };
    Ok(Output {
        command,
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

fn hint(command: &str, stderr: &str) -> &'static str {
    if stderr.contains("Peer in Cluster") {
        "wait until `gluster peer status` shows the host as \"Peer in Cluster\" and try again"
    } else if stderr.contains("Failed to create brick directory") {
        "create the brick's parent directory on that host first"
    } else if stderr.contains("not connected") || stderr.contains("Connection refused") {
        "check that glusterd runs on every host (systemctl status glusterd) and TCP 24007 is open"
    } else if command.contains(" peer ") {
        "check that glusterd runs on both hosts (systemctl status glusterd) and that TCP 24007 is open between them"
    } else {
        "see journalctl -u glusterd and /var/log/glusterfs/glusterd.log on the hosts involved"
    }
}

/// Adds `host` (an IP address) to the trusted pool; a known peer or the local host is fine.
pub async fn peer_probe(host: &str) -> Result<(), GlusterError> {
    let out = gluster(&["peer", "probe", host]).await?;
    if out.ok {
        Ok(())
    } else {
        Err(out.failed())
    }
}

/// Removes `host` from the pool; a host that is not in it is fine. glusterd refuses while the host
/// still holds bricks: remove them first ([`remove_brick`]).
pub async fn peer_detach(host: &str) -> Result<(), GlusterError> {
    let out = gluster(&["peer", "detach", host]).await?;
    if out.ok || out.message().contains("is not part of cluster") {
        Ok(())
    } else {
        Err(out.failed())
    }
}

/// The peers of this host's pool.
pub async fn peers() -> Result<Vec<Peer>, GlusterError> {
    let out = gluster(&["peer", "status", "--xml"]).await?;
    if !out.ok {
        return Err(out.failed());
    }
    parse_peer_status(&out.stdout).map_err(|detail| GlusterError::Parse { command: out.command, detail })
}

/// Waits until `host` is "Peer in Cluster" and connected, polling for at most `timeout`.
pub async fn wait_peer_in_cluster(host: &str, timeout: Duration) -> Result<(), GlusterError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let state = match peers().await?.into_iter().find(|p| p.hostname == host) {
            Some(p) if p.in_cluster && p.connected => return Ok(()),
            Some(p) => format!("{}{}", p.state, if p.connected { "" } else { ", disconnected" }),
            None => "not a peer".to_owned(),
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(GlusterError::PeerNotReady { host: host.to_owned(), secs: timeout.as_secs(), state });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The volume `name`, or `None` if there is none.
pub async fn volume_info(name: &str) -> Result<Option<VolumeInfo>, GlusterError> {
    let out = gluster(&["volume", "info", name, "--xml"]).await?;
    if !out.ok {
        return Err(out.failed());
    }
    parse_volume_info(&out.stdout).map_err(|detail| GlusterError::Parse { command: out.command, detail })
}

/// Creates a one-brick volume (`force`: the brick may be on the root file system).
/// [`GlusterError::AlreadyExists`] if the volume exists.
pub async fn create_volume(name: &str, brick: &str) -> Result<(), GlusterError> {
    let out = gluster(&["volume", "create", name, brick, "force"]).await?;
    if out.ok {
        Ok(())
    } else if out.message().contains("already exists") {
        Err(GlusterError::AlreadyExists { command: out.command.clone(), stderr: out.message() })
    } else {
        Err(out.failed())
    }
}

/// Starts the volume; a started one is fine.
pub async fn start_volume(name: &str) -> Result<(), GlusterError> {
    let out = gluster(&["volume", "start", name]).await?;
    if out.ok || out.message().contains("already started") {
        Ok(())
    } else {
        Err(out.failed())
    }
}

/// Stops and deletes volume `name` (its bricks' files stay on disk); nothing to do when it
/// does not exist.
pub async fn delete_volume(name: &str) -> Result<(), GlusterError> {
    if volume_info(name).await?.is_none() {
        return Ok(());
    }
    let out = gluster(&["volume", "stop", name, "force"]).await?;
    if !out.ok && !out.message().contains("not in started state") {
        return Err(out.failed());
    }
    let out = gluster(&["volume", "delete", name]).await?;
    if out.ok || out.message().contains("does not exist") {
        Ok(())
    } else {
        Err(out.failed())
    }
}

/// Adds `brick` and sets the replica count to `new_replica`; nothing to do when the brick is
/// already in the volume. The brick's host must be "Peer in Cluster" and its parent directory
/// must exist there.
pub async fn add_brick(name: &str, brick: &str, new_replica: u32) -> Result<(), GlusterError> {
    if has_brick(name, brick).await? {
        return Ok(());
    }
    let replica = new_replica.to_string();
    let out = gluster(&["volume", "add-brick", name, "replica", &replica, brick, "force"]).await?;
    if out.ok {
        Ok(())
    } else {
        Err(out.failed())
    }
}

/// Removes `brick` at once (`force`: its data is not migrated, the other replicas hold it) and
/// sets the replica count to `new_replica`; nothing to do when the brick is not in the volume.
pub async fn remove_brick(name: &str, brick: &str, new_replica: u32) -> Result<(), GlusterError> {
    if !has_brick(name, brick).await? {
        return Ok(());
    }
    let replica = new_replica.to_string();
    let out = gluster(&["volume", "remove-brick", name, "replica", &replica, brick, "force"]).await?;
    if out.ok {
        Ok(())
    } else {
        Err(out.failed())
    }
}

/// Sets the volume's `auth.allow` to `addrs` (IP addresses): clients from other addresses can
/// neither mount it nor stay connected (the bricks check it again when it changes). Gluster's own
/// daemons (self-heal, the bricks of other peers) authenticate by the volume's internal
/// credentials and are not affected.
pub async fn set_auth_allow(name: &str, addrs: &[String]) -> Result<(), GlusterError> {
    let list = auth_allow_value(addrs);
    let out = gluster(&["volume", "set", name, "auth.allow", &list]).await?;
    if out.ok {
        Ok(())
    } else {
        Err(out.failed())
    }
}

/// `auth.allow`'s value: the addresses joined by commas; never empty (no member at all would
/// otherwise mean "everyone").
fn auth_allow_value(addrs: &[String]) -> String {
    if addrs.is_empty() {
        "127.0.0.1".to_owned()
    } else {
        addrs.join(",")
    }
}

async fn has_brick(name: &str, brick: &str) -> Result<bool, GlusterError> {
    match volume_info(name).await? {
        Some(v) => Ok(v.bricks.iter().any(|b| b == brick)),
        None => Err(GlusterError::Failed {
            command: format!("gluster --mode=script volume info {name} --xml"),
            stderr: format!("volume {name} does not exist"),
            hint: "create it first (containerctl cluster init on the manager)",
        }),
    }
}

/// The mount unit ([`MOUNT_UNIT`]) of the volume at [`SHARED_DIR`]: the volume file comes from the
/// first of `servers` (IP addresses), the others are backup volfile servers. Ordered after
/// glusterd so that a member that serves a brick mounts once its own glusterd is up.
/// `What=` and `Options=` of the shared volume's mount: the first server, the others as backups.
/// Always `nosuid,nodev`: any member (or a container writing to a `shared:` volume) can create
/// files there, so no setuid program or device node on it may take effect on another host.
pub fn mount_source(servers: &[String], volume: &str) -> (String, String) {
    let first = servers.first().map(String::as_str).unwrap_or("127.0.0.1");
    let mut options = String::from("_netdev,nosuid,nodev");
    if servers.len() > 1 {
        options.push_str(",backup-volfile-servers=");
        options.push_str(&servers[1..].join(":"));
    }
    (format!("{first}:/{volume}"), options)
}

pub fn mount_unit(servers: &[String], volume: &str) -> String {
    let (what, options) = mount_source(servers, volume);
    format!(
        "# Written by containerctl; changes are overwritten.\n\
         [Unit]\n\
         Description=containerctl shared volume (GlusterFS {volume})\n\
         Documentation=man:containerctl(1)\n\
         After=network-online.target glusterd.service\n\
         Wants=network-online.target glusterd.service\n\
         \n\
         [Mount]\n\
         What={what}\n\
         Where={SHARED_DIR}\n\
         Type=glusterfs\n\
         Options={options}\n\
         TimeoutSec=90\n\
         \n\
         [Install]\n\
         WantedBy=remote-fs.target\n"
    )
}

fn parse_volume_info(xml: &str) -> Result<Option<VolumeInfo>, String> {
    let ret = element(xml, "opRet").ok_or("no <opRet>")?;
    if ret.trim() != "0" {
        let err = element(xml, "opErrstr").map(unescape).unwrap_or_default();
        if err.contains("does not exist") {
            return Ok(None);
        }
        return Err(format!("gluster reported an error: {err}"));
    }
    let Some(volume) = elements(xml, "volume").next() else {
        return Ok(None);
    };
    let status = element(volume, "status").ok_or("no <status>")?;
    let replica = element(volume, "replicaCount").ok_or("no <replicaCount>")?;
    let replica: u32 = replica.trim().parse().map_err(|_| format!("bad <replicaCount> {replica:?}"))?;
    let bricks_xml = element(volume, "bricks").unwrap_or_default();
    let bricks = elements(bricks_xml, "brick")
        .map(|b| element(b, "name").map(unescape).ok_or("a <brick> without <name>"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(VolumeInfo { bricks, replica: replica.max(1), started: status.trim() == "1" }))
}

fn parse_peer_status(xml: &str) -> Result<Vec<Peer>, String> {
    let ret = element(xml, "opRet").ok_or("no <opRet>")?;
    if ret.trim() != "0" {
        let err = element(xml, "opErrstr").map(unescape).unwrap_or_default();
        return Err(format!("gluster reported an error: {err}"));
    }
    let status = element(xml, "peerStatus").unwrap_or_default();
    Ok(elements(status, "peer")
        .map(|p| {
            let state = element(p, "stateStr").map(unescape).unwrap_or_default();
            Peer {
                hostname: element(p, "hostname").map(unescape).unwrap_or_default(),
                connected: element(p, "connected").map(str::trim) == Some("1"),
                in_cluster: state == "Peer in Cluster",
                state,
            }
        })
        .collect())
}

/// The contents of every `<tag>` or `<tag attr..>` element directly in `xml`, in order (not
/// nested ones of the same name: gluster's output has none).
fn elements<'a>(xml: &'a str, tag: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    let open = format!("<{tag}");
    let close = format!("</{tag}>");
    let mut rest = xml;
    std::iter::from_fn(move || loop {
        let at = rest.find(&open)?;
        let after = &rest[at + open.len()..];
        match after.chars().next() {
            Some('>') | Some(' ') => {
                let start = after.find('>')? + 1;
                let body = &after[start..];
                let end = body.find(&close)?;
                rest = &body[end + close.len()..];
                return Some(&body[..end]);
            }
            // `<tag/>`: empty.
            Some('/') => {
                rest = &after[1..];
                return Some("");
            }
            // A longer name (`<volumes>` when looking for `<volume>`).
            _ => rest = after,
        }
    })
}

fn element<'a>(xml: &'a str, tag: &'a str) -> Option<&'a str> {
    elements(xml, tag).next()
}

fn unescape(s: &str) -> String {
    s.trim()
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from glusterfs-server 10.3 (Debian 12) in the test bed.
    const DISTRIBUTE: &str = include_str!("testdata/gluster-info-distribute.xml");
    const REPLICA2: &str = include_str!("testdata/gluster-info-replica2.xml");
    const REPLICA3: &str = include_str!("testdata/gluster-info-replica3.xml");
    const MISSING: &str = include_str!("testdata/gluster-info-missing.xml");
    const PEERS: &str = include_str!("testdata/gluster-peer-right-after.xml");

    fn brick(n: u8) -> String {
        format!("172.29.77.1{n}:/var/lib/containerctl/gluster/brick")
    }

    #[test]
    fn volume_info_of_real_output() {
        assert_eq!(
            parse_volume_info(DISTRIBUTE),
            Ok(Some(VolumeInfo { bricks: vec![brick(1)], replica: 1, started: true }))
        );
        assert_eq!(
            parse_volume_info(REPLICA2),
            Ok(Some(VolumeInfo { bricks: vec![brick(1), brick(2)], replica: 2, started: true }))
        );
        assert_eq!(
            parse_volume_info(REPLICA3),
            Ok(Some(VolumeInfo { bricks: vec![brick(1), brick(2), brick(3)], replica: 3, started: true }))
        );
        assert_eq!(parse_volume_info(MISSING), Ok(None));
        let created = DISTRIBUTE.replace("<status>1</status>", "<status>0</status>");
        assert_eq!(parse_volume_info(&created).map(|v| v.map(|v| v.started)), Ok(Some(false)));
        assert!(parse_volume_info("garbage").is_err());
        let failed = MISSING.replace("Volume does not exist", "Another transaction is in progress");
        assert!(parse_volume_info(&failed).is_err_and(|e| e.contains("Another transaction")));
    }

    #[test]
    fn peers_of_real_output() {
        let peers = parse_peer_status(PEERS).expect("parse");
        assert_eq!(
            peers,
            vec![
                Peer {
                    hostname: "172.29.77.12".into(),
                    connected: true,
                    in_cluster: true,
                    state: "Peer in Cluster".into()
                },
                Peer {
                    hostname: "172.29.77.13".into(),
                    connected: true,
                    in_cluster: false,
                    state: "Accepted peer request".into()
                },
            ]
        );
    }

    #[test]
    fn elements_skip_longer_names_and_read_attributes() {
        let xml = "<volumes><volume><name>a&amp;b</name></volume><count>1</count></volumes><x/>";
        assert_eq!(elements(xml, "volume").collect::<Vec<_>>(), vec!["<name>a&amp;b</name>"]);
        assert_eq!(element(xml, "name").map(unescape), Some("a&b".to_owned()));
        assert_eq!(element(xml, "x"), Some(""));
        assert_eq!(element("<b u=\"1\">t<n>v</n></b>", "b"), Some("t<n>v</n>"));
    }

    #[test]
    fn mount_unit_text() {
        let servers: Vec<String> = vec!["10.0.0.1".into(), "10.0.0.2".into(), "10.0.0.3".into()];
        assert_eq!(
            mount_unit(&servers, "containerctl"),
            "# Written by containerctl; changes are overwritten.
[Unit]
Description=containerctl shared volume (GlusterFS containerctl)
Documentation=man:containerctl(1)
After=network-online.target glusterd.service
Wants=network-online.target glusterd.service

[Mount]
What=10.0.0.1:/containerctl
Where=/var/lib/containerctl/shared
Type=glusterfs
Options=_netdev,nosuid,nodev,backup-volfile-servers=10.0.0.2:10.0.0.3
TimeoutSec=90

[Install]
WantedBy=remote-fs.target
"
        );
        let one = mount_unit(&servers[..1], "v");
        assert!(one.contains("Options=_netdev,nosuid,nodev\n"), "{one}");
        assert!(one.contains("What=10.0.0.1:/v\n"), "{one}");
    }

    #[test]
    fn auth_allow_is_never_everyone() {
        assert_eq!(auth_allow_value(&["10.0.0.1".into(), "10.0.0.2".into()]), "10.0.0.1,10.0.0.2");
        assert_eq!(auth_allow_value(&[]), "127.0.0.1");
    }

    #[test]
    fn hints_name_the_likely_cause() {
        assert!(hint("gluster volume add-brick", "Host x is not in 'Peer in Cluster' state").contains("wait"));
        assert!(hint("gluster volume add-brick", "Failed to create brick directory").contains("parent"));
        assert!(hint("gluster --mode=script peer probe 1.2.3.4", "failed").contains("24007"));
    }
}
