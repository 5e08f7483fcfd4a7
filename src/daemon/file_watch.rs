//! The unit files' directories and systemd's generator directory, watched with inotify, so that
//! the unit list (`listing.rs`) reads a unit file again only once it changed and stats no file per
//! request. The kernel queues an event before the write, rename or removal that caused it returns,
//! so a listing that drains the queue first sees every change made before the request began.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

/// What a drained event means for the unit list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// `NAME.toml` was written, replaced, created or removed in a directory of the search path.
    Unit(String),
    /// Anything may have changed: a directory of the search path appeared, vanished or was
    /// replaced, or the kernel's queue overflowed. The watches are armed again.
    Everything,
    /// systemd's generator directory changed: a daemon-reload is under way.
    Reload,
}

/// Why a directory is watched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// A directory of the search path.
    Units,
    /// The nearest existing ancestor of a directory of the search path that does not exist;
    /// `next` is the entry whose creation brings that directory closer.
    Ancestor { next: std::ffi::OsString },
    /// The parent of the generator directory (systemd removes and creates that directory at
    /// every daemon-reload).
    GeneratorParent { name: std::ffi::OsString },
    /// The generator directory itself.
    Generator,
}

/// Events of a unit directory that change what a NAME's file says or which file defines it.
const UNIT_EVENTS: AddWatchFlags = AddWatchFlags::IN_CLOSE_WRITE
    .union(AddWatchFlags::IN_MODIFY)
    .union(AddWatchFlags::IN_ATTRIB)
    .union(AddWatchFlags::IN_CREATE)
    .union(AddWatchFlags::IN_DELETE)
    .union(AddWatchFlags::IN_MOVED_FROM)
    .union(AddWatchFlags::IN_MOVED_TO)
    .union(AddWatchFlags::IN_DELETE_SELF)
    .union(AddWatchFlags::IN_MOVE_SELF);
/// Events of a directory that holds one we wait for.
const ENTRY_EVENTS: AddWatchFlags = AddWatchFlags::IN_CREATE
    .union(AddWatchFlags::IN_DELETE)
    .union(AddWatchFlags::IN_MOVED_FROM)
    .union(AddWatchFlags::IN_MOVED_TO)
    .union(AddWatchFlags::IN_DELETE_SELF)
    .union(AddWatchFlags::IN_MOVE_SELF);

/// What one event of a watch with `roles` means (pure).
pub fn classify(roles: &[Role], mask: AddWatchFlags, name: Option<&OsStr>) -> Vec<Seen> {
    if mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
        return vec![Seen::Everything];
    }
    let gone = mask.intersects(AddWatchFlags::IN_DELETE_SELF | AddWatchFlags::IN_MOVE_SELF);
    let mut out = Vec::new();
    for role in roles {
        let seen = match role {
            Role::Units if gone => Some(Seen::Everything),
            Role::Units => name.and_then(OsStr::to_str).and_then(unit_of_file).map(Seen::Unit),
            Role::Ancestor { next } => (gone || name == Some(next.as_os_str())).then_some(Seen::Everything),
            Role::GeneratorParent { name: g } => {
                (gone || name == Some(g.as_os_str())).then_some(Seen::Reload)
            }
            Role::Generator => Some(Seen::Reload),
        };
        if let Some(seen) = seen {
            if !out.contains(&seen) {
                out.push(seen);
            }
        }
    }
    out
}

/// The NAME a file name of a unit directory defines (`web.toml`), if it can define one; the
/// daemon's temporaries (`.web.toml.tmp-…`) and other files define none.
fn unit_of_file(file_name: &str) -> Option<String> {
    if file_name.starts_with('.') {
        return None;
    }
    crate::unit::name_from_file_name(file_name).ok().map(|n| n.to_string())
}

/// The directory to watch for `dir`: itself when it exists, else its nearest existing ancestor
/// with the entry below it that leads to `dir`.
fn watch_target(dir: &Path, exists: impl Fn(&Path) -> bool) -> Option<(PathBuf, Role)> {
    if exists(dir) {
        return Some((dir.to_owned(), Role::Units));
    }
    let mut child = dir;
    let mut parent = dir.parent();
    while let Some(p) = parent {
        if exists(p) {
            let next = match child.components().next_back() {
                Some(Component::Normal(n)) => n.to_owned(),
                _ => return None,
            };
            return Some((p.to_owned(), Role::Ancestor { next }));
        }
        child = p;
        parent = p.parent();
    }
    None
}

/// The inotify instance and what each of its watches is for.
pub struct FileWatch {
    inotify: Arc<Inotify>,
    search: Vec<PathBuf>,
    generator: PathBuf,
    watches: HashMap<WatchDescriptor, Vec<Role>>,
}

impl FileWatch {
    /// Watches `search` (the unit directories, missing ones through their nearest ancestor) and
    /// the generator directory `generator`. Fails when inotify is not available (no instances
    /// left): the listing then reads every file at every request, as it did before.
    pub fn new(search: Vec<PathBuf>, generator: PathBuf) -> nix::Result<FileWatch> {
        let inotify = Arc::new(Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?);
        let mut w = FileWatch { inotify, search, generator, watches: HashMap::new() };
        w.arm()?;
        Ok(w)
    }

    /// (Re)adds every watch, dropping the ones no longer needed.
    fn arm(&mut self) -> nix::Result<()> {
        for wd in std::mem::take(&mut self.watches).into_keys() {
            // Already gone when its directory was removed: nothing to undo.
            let _ = self.inotify.rm_watch(wd);
        }
        let mut wanted: Vec<(PathBuf, Role, AddWatchFlags)> = Vec::new();
        for dir in &self.search {
            match watch_target(dir, Path::is_dir) {
                Some((path, Role::Units)) => wanted.push((path, Role::Units, UNIT_EVENTS)),
                Some((path, role)) => wanted.push((path, role, ENTRY_EVENTS)),
                None => {}
            }
        }
        if let (Some(parent), Some(name)) = (self.generator.parent(), self.generator.file_name()) {
            wanted.push((parent.to_owned(), Role::GeneratorParent { name: name.to_owned() }, ENTRY_EVENTS));
            if self.generator.is_dir() {
                wanted.push((self.generator.clone(), Role::Generator, ENTRY_EVENTS));
            }
        }
        // One directory can serve several roles: its watch gets the union of their events.
        let mut masks: HashMap<PathBuf, AddWatchFlags> = HashMap::new();
        for (path, _, mask) in &wanted {
            *masks.entry(path.clone()).or_insert(AddWatchFlags::empty()) |= *mask;
        }
        for (path, role, _) in wanted {
            let mask = masks.get(&path).copied().unwrap_or(ENTRY_EVENTS);
            match self.inotify.add_watch(&path, mask) {
                Ok(wd) => self.watches.entry(wd).or_default().push(role),
                // Gone between the check and the watch: the next event or rescan finds it.
                Err(Errno::ENOENT | Errno::ENOTDIR) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Every event queued since the last drain, without waiting. After [`Seen::Everything`] the
    /// watches are armed again; a failure to arm them is `Err` (the caller stops trusting them).
    pub fn drain(&mut self) -> nix::Result<Vec<Seen>> {
        let mut out = Vec::new();
        loop {
            let events = match self.inotify.read_events() {
                Ok(events) => events,
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e),
            };
            if events.is_empty() {
                break;
            }
            for e in events {
                let overflow = e.mask.contains(AddWatchFlags::IN_Q_OVERFLOW);
                let roles =
                    if overflow { &[][..] } else { self.watches.get(&e.wd).map_or(&[][..], Vec::as_slice) };
                for seen in classify(roles, e.mask, e.name.as_deref()) {
                    if !out.contains(&seen) {
                        out.push(seen);
                    }
                }
                if overflow && !out.contains(&Seen::Everything) {
                    out.push(Seen::Everything);
                }
            }
        }
        if out.iter().any(|s| matches!(s, Seen::Everything | Seen::Reload)) {
            // A directory appeared or was replaced (the generator's at every reload): watch the
            // new one.
            self.arm()?;
        }
        Ok(out)
    }

    /// The instance, to wait on for readability (only [`FileWatch::drain`] reads it).
    pub fn waiter(&self) -> Arc<Inotify> {
        self.inotify.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn os(s: &str) -> Option<&OsStr> {
        Some(OsStr::new(s))
    }

    #[test]
    fn a_unit_file_event_names_its_unit() {
        let units = [Role::Units];
        assert_eq!(classify(&units, AddWatchFlags::IN_MOVED_TO, os("web.toml")), [Seen::Unit("web".into())]);
        assert_eq!(classify(&units, AddWatchFlags::IN_CLOSE_WRITE, os("db.toml")), [Seen::Unit("db".into())]);
        assert_eq!(classify(&units, AddWatchFlags::IN_DELETE, os("db.toml")), [Seen::Unit("db".into())]);
        assert!(
            classify(&units, AddWatchFlags::IN_CREATE, os(".web.toml.tmp-12-0")).is_empty(),
            "a temporary"
        );
        assert!(classify(&units, AddWatchFlags::IN_CREATE, os("notes.txt")).is_empty());
        assert!(classify(&units, AddWatchFlags::IN_CREATE, os("Bad Name.toml")).is_empty());
        assert_eq!(classify(&units, AddWatchFlags::IN_DELETE_SELF, None), [Seen::Everything]);
        assert_eq!(classify(&units, AddWatchFlags::IN_MOVE_SELF, None), [Seen::Everything]);
        assert_eq!(classify(&[], AddWatchFlags::IN_Q_OVERFLOW, None), [Seen::Everything]);
    }

    #[test]
    fn an_ancestor_event_matters_only_on_the_way_to_the_directory() {
        let roles = [Role::Ancestor { next: OsString::from("containerctl") }];
        assert_eq!(classify(&roles, AddWatchFlags::IN_CREATE, os("containerctl")), [Seen::Everything]);
        assert!(classify(&roles, AddWatchFlags::IN_CREATE, os("other")).is_empty());
    }

    #[test]
    fn the_generator_directory_means_a_reload() {
        let parent = [Role::GeneratorParent { name: OsString::from("generator") }];
        assert_eq!(classify(&parent, AddWatchFlags::IN_CREATE, os("generator")), [Seen::Reload]);
        assert!(classify(&parent, AddWatchFlags::IN_CREATE, os("generator.late")).is_empty());
        assert!(classify(&parent, AddWatchFlags::IN_CREATE, os("transient")).is_empty());
        let dir = [Role::Generator];
        assert_eq!(classify(&dir, AddWatchFlags::IN_CREATE, os("containerctl@a.service.d")), [Seen::Reload]);
    }

    #[test]
    fn a_missing_directory_is_watched_through_its_nearest_ancestor() {
        let exists = |p: &Path| p == Path::new("/run") || p == Path::new("/");
        assert_eq!(
            watch_target(Path::new("/run/containerctl/units"), exists),
            Some((PathBuf::from("/run"), Role::Ancestor { next: OsString::from("containerctl") }))
        );
        assert_eq!(watch_target(Path::new("/run"), exists), Some((PathBuf::from("/run"), Role::Units)));
    }

    /// A real inotify instance over a temporary tree: files written in place, replaced by a
    /// rename and removed name their unit; a unit directory created later is found.
    #[test]
    fn the_watch_sees_edits_made_before_the_drain() -> nix::Result<()> {
        let root = tempfile::tempdir().map_err(|_| Errno::EIO)?;
        let etc = root.path().join("etc/units");
        let run = root.path().join("run/units");
        std::fs::create_dir_all(&etc).map_err(|_| Errno::EIO)?;
        std::fs::create_dir_all(root.path().join("systemd")).map_err(|_| Errno::EIO)?;
        let generator = root.path().join("systemd/generator");
        let mut w = FileWatch::new(vec![etc.clone(), run.clone()], generator.clone())?;
        assert_eq!(w.drain()?, [], "nothing happened yet");
        std::fs::write(etc.join("a.toml"), "x").map_err(|_| Errno::EIO)?;
        assert_eq!(w.drain()?, [Seen::Unit("a".into())]);
        std::fs::write(etc.join(".b.toml.tmp"), "y").map_err(|_| Errno::EIO)?;
        std::fs::rename(etc.join(".b.toml.tmp"), etc.join("b.toml")).map_err(|_| Errno::EIO)?;
        assert_eq!(w.drain()?, [Seen::Unit("b".into())]);
        std::fs::remove_file(etc.join("a.toml")).map_err(|_| Errno::EIO)?;
        assert_eq!(w.drain()?, [Seen::Unit("a".into())]);
        // run/units does not exist: its creation is seen through root/run's parent, then its files.
        std::fs::create_dir_all(&run).map_err(|_| Errno::EIO)?;
        assert_eq!(w.drain()?, [Seen::Everything]);
        std::fs::write(run.join("c.toml"), "z").map_err(|_| Errno::EIO)?;
        assert_eq!(w.drain()?, [Seen::Unit("c".into())]);
        // The generator directory made and filled, as at a daemon-reload.
        std::fs::create_dir_all(generator.join("containerctl@c.service.d")).map_err(|_| Errno::EIO)?;
        assert_eq!(w.drain()?, [Seen::Reload]);
        std::fs::remove_dir(generator.join("containerctl@c.service.d")).map_err(|_| Errno::EIO)?;
        assert_eq!(w.drain()?, [Seen::Reload], "the new generator directory is watched too");
        Ok(())
    }
}
