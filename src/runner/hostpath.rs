//! What is checked is what runs: the host paths a container bind-mounts, checked again right
//! before Docker gets them.
//!
//! Below an allowed root (`policy.allowed_host_paths`, and the cluster's shared root) anything may
//! have been written by an operator's container, so the daemon's check when the unit was saved
//! proves nothing at start: a directory may since have become a symbolic link to `/`. [`walk`]
//! goes from the root down with `lstat` and refuses any component that is a symbolic link, so the
//! path it returns names the same file with or without following links, and lies in the root.
//! [`check_mount`] refuses a source whose mount honours setuid bits or device nodes. Paths
//! outside every root are an admin's (only admins may write them) and are left as they are.

use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};

use crate::unit::{Unit, Volume, VolumeSource};

/// Why a host path is refused. Each message names the path, the offending component and what to
/// do; the runner exits with [`super::EXIT_CONFIG`] on any of them.
#[derive(Debug)]
pub enum Refusal {
    /// A component at or below the root is a symbolic link.
    Symlink { path: PathBuf, component: PathBuf, target: Option<PathBuf>, root: PathBuf },
    /// A component does not exist.
    Missing { path: PathBuf, component: PathBuf },
    /// A component above the last is not a directory.
    NotDirectory { path: PathBuf, component: PathBuf },
    /// The path has a `..` component (validation refuses these; checked again all the same).
    ParentDir { path: PathBuf },
    /// The allowed root itself cannot be resolved.
    Root { path: PathBuf, root: PathBuf, error: io::Error },
    /// lstat or statvfs failed for another reason.
    Io { path: PathBuf, component: PathBuf, error: io::Error },
    /// The source is on a mount without nosuid or nodev.
    MountFlags { path: PathBuf, root: PathBuf, missing: &'static str },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Symlink { path, component, target, root } => {
                let to = target.as_ref().map(|t| format!(" (-> {})", t.display())).unwrap_or_default();
                write!(
                    f,
                    "host path {} is refused: {}{to} is a symbolic link, and no component below {} may \
                     be one; ask an admin to replace the link with a directory (or name its real \
                     location in volumes), then start the unit again",
                    path.display(),
                    component.display(),
                    root.display()
                )
            }
            Refusal::Missing { path, component } => write!(
                f,
                "host path {} is refused: {} does not exist; ask an admin to create it, then start \
                 the unit again",
                path.display(),
                component.display()
            ),
            Refusal::NotDirectory { path, component } => write!(
                f,
                "host path {} is refused: {} is not a directory; fix volumes or the host path",
                path.display(),
                component.display()
            ),
            Refusal::ParentDir { path } => {
                write!(f, "host path {} is refused: it has a `..` component; fix volumes", path.display())
            }
            Refusal::Root { path, root, error } => write!(
                f,
                "host path {} is refused: its allowed root {} cannot be resolved ({error}); ask an \
                 admin to create it",
                path.display(),
                root.display()
            ),
            Refusal::Io { path, component, error } => write!(
                f,
                "host path {} is refused: cannot inspect {} ({error})",
                path.display(),
                component.display()
            ),
            Refusal::MountFlags { path, root, missing } => write!(
                f,
                "host path {} is refused: it is on a mount without {missing}, so a container could \
                 give the host a setuid program or a device node; {} must be mounted nosuid,nodev \
                 (containerctl-generator writes that mount unit: run `systemctl daemon-reload` and \
                 `systemctl start {}`)",
                path.display(),
                root.display(),
                mount_unit_name(root)
            ),
        }
    }
}

/// The outermost root of `roots` that `path` is (lexically) at or below. The outermost, so that
/// with nested roots every component below any allowed root is walked.
pub fn root_of<'a>(path: &Path, roots: &'a [PathBuf]) -> Option<&'a Path> {
    roots.iter().filter(|r| path.starts_with(r)).min_by_key(|r| r.components().count()).map(PathBuf::as_path)
}

/// Walks `path` from `root` (which `path` must start with) down with lstat, refusing any
/// symbolic link and any `..`. The root itself is an admin's and is resolved (canonicalized); the
/// result is the resolved root joined with the walked components, which therefore stays in the
/// root. With `allow_missing_last`, a missing last component is accepted (Docker creates it in
/// the checked parent).
pub fn walk(path: &Path, root: &Path, allow_missing_last: bool) -> Result<PathBuf, Refusal> {
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(Refusal::ParentDir { path: path.to_owned() });
    }
    let Ok(rest) = path.strip_prefix(root) else {
        // Not below the root: the caller picked the root with `root_of`; refuse rather than guess.
        return Err(Refusal::ParentDir { path: path.to_owned() });
    };
    let real_root = std::fs::canonicalize(root).map_err(|error| Refusal::Root {
        path: path.to_owned(),
        root: root.to_owned(),
        error,
    })?;
    let names: Vec<_> = rest.components().filter(|c| matches!(c, Component::Normal(_))).collect();
    let mut lexical = root.to_owned();
    let mut real = real_root;
    for (i, name) in names.iter().enumerate() {
        lexical.push(name);
        real.push(name);
        let last = i + 1 == names.len();
        match std::fs::symlink_metadata(&real) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(Refusal::Symlink {
                    path: path.to_owned(),
                    component: lexical,
                    target: std::fs::read_link(&real).ok(),
                    root: root.to_owned(),
                });
            }
            Ok(m) if !last && !m.is_dir() => {
                return Err(Refusal::NotDirectory { path: path.to_owned(), component: lexical });
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if last && allow_missing_last {
                    break;
                }
                return Err(Refusal::Missing { path: path.to_owned(), component: lexical });
            }
            Err(error) => return Err(Refusal::Io { path: path.to_owned(), component: lexical, error }),
        }
    }
    Ok(real)
}

/// Refuses `checked` (a path [`walk`] returned for `path`) unless its mount is nosuid and nodev.
pub fn check_mount(path: &Path, checked: &Path, root: &Path) -> Result<(), Refusal> {
    use nix::sys::statvfs::{statvfs, FsFlags};
    let flags = statvfs(checked)
        .map_err(|e| Refusal::Io {
            path: path.to_owned(),
            component: checked.to_owned(),
            error: io::Error::from(e),
        })?
        .flags();
    let missing = match (flags.contains(FsFlags::ST_NOSUID), flags.contains(FsFlags::ST_NODEV)) {
        (true, true) => return Ok(()),
        (false, true) => "nosuid",
        (true, false) => "nodev",
        (false, false) => "nosuid and nodev",
    };
    Err(Refusal::MountFlags { path: path.to_owned(), root: root.to_owned(), missing })
}

/// Checks every bind-mount source of `unit` that lies below one of `roots` (walked, and on a
/// nosuid,nodev mount) and every `shared:` directory (walked from the shared root, which may not
/// have the directory yet: Docker creates it). Returns the unit with those host paths replaced by
/// the checked ones, which is what Docker must get. Other sources are left as they are.
pub fn check_volumes(unit: &Unit, roots: &[PathBuf]) -> Result<Unit, Refusal> {
    let mut checked = unit.clone();
    for v in &mut checked.container.volumes {
        match &mut v.source {
            VolumeSource::Host(p) => {
                if p.components().any(|c| c == Component::ParentDir) {
                    return Err(Refusal::ParentDir { path: p.clone() });
                }
                // A root of `/` allows every path: the admin gave operators the host.
                let Some(root) = root_of(p, roots).filter(|r| r.parent().is_some()) else { continue };
                let real = walk(p, root, false)?;
                check_mount(p, &real, root)?;
                *p = real;
            }
            VolumeSource::Shared(name) => {
                let root = Path::new(Volume::SHARED_ROOT);
                walk(&root.join(name.as_str()), root, true)?;
            }
            VolumeSource::Named(_) => {}
        }
    }
    Ok(checked)
}

/// systemd's name for the mount unit of `path` (`systemd-escape --path --suffix=mount`):
/// `/srv/containers` is `srv-containers.mount`, `/` is `-.mount`.
pub fn mount_unit_name(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    let parts: Vec<&[u8]> = bytes.split(|b| *b == b'/').filter(|p| !p.is_empty() && *p != b".").collect();
    if parts.is_empty() {
        return "-.mount".into();
    }
    let mut out = String::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push('-');
        }
        for (j, &b) in part.iter().enumerate() {
            // A dot is escaped only at the very start of the name.
            let plain =
                b.is_ascii_alphanumeric() || b == b':' || b == b'_' || (b == b'.' && (i, j) != (0, 0));
            if plain {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("\\x{b:02x}"));
            }
        }
    }
    out.push_str(".mount");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    struct Tree {
        _dir: tempfile::TempDir,
        root: PathBuf,
    }

    /// root/a/b/c, all directories.
    fn tree() -> Tree {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("a/b/c")).expect("mkdir");
        Tree { _dir: dir, root }
    }

    fn real(p: &Path) -> PathBuf {
        std::fs::canonicalize(p).expect("canonicalize")
    }

    #[test]
    fn a_plain_path_is_returned_resolved() {
        let t = tree();
        let got = walk(&t.root.join("a/b/c"), &t.root, false).expect("plain");
        assert_eq!(got, real(&t.root).join("a/b/c"));
        // The root itself, and the root written with a trailing slash or `.`.
        assert_eq!(walk(&t.root, &t.root, false).expect("root"), real(&t.root));
        assert_eq!(walk(&t.root.join("./a/"), &t.root, false).expect("dot"), real(&t.root).join("a"));
    }

    #[test]
    fn a_symlink_at_any_depth_is_refused() {
        for depth in ["a", "a/b", "a/b/c"] {
            let t = tree();
            let link = t.root.join(depth);
            std::fs::remove_dir_all(&link).expect("rm");
            symlink("/", &link).expect("symlink");
            match walk(&t.root.join("a/b/c"), &t.root, false) {
                Err(Refusal::Symlink { component, target, .. }) => {
                    assert_eq!(component, link, "depth {depth}");
                    assert_eq!(target, Some(PathBuf::from("/")));
                }
                other => panic!("depth {depth}: {other:?}"),
            }
        }
        // Even a link that points back inside the root.
        let t = tree();
        symlink(t.root.join("a/b"), t.root.join("inside")).expect("symlink");
        let e = walk(&t.root.join("inside/c"), &t.root, false).expect_err("link inside");
        assert!(e.to_string().contains("inside"), "{e}");
        assert!(e.to_string().contains("is a symbolic link"), "{e}");
    }

    #[test]
    fn the_root_itself_may_be_a_link_an_admin_made() {
        let t = tree();
        let alias = t.root.parent().expect("parent").join("alias");
        symlink(&t.root, &alias).expect("symlink");
        assert_eq!(walk(&alias.join("a"), &alias, false).expect("alias"), real(&t.root).join("a"));
    }

    #[test]
    fn dotdot_missing_and_file_components_are_refused() {
        let t = tree();
        assert!(matches!(walk(&t.root.join("a/../../etc"), &t.root, false), Err(Refusal::ParentDir { .. })));
        match walk(&t.root.join("a/x/y"), &t.root, false) {
            Err(Refusal::Missing { component, .. }) => assert_eq!(component, t.root.join("a/x")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(walk(&t.root.join("a/x"), &t.root, false), Err(Refusal::Missing { .. })));
        assert_eq!(
            walk(&t.root.join("a/x"), &t.root, true).expect("missing last"),
            real(&t.root).join("a/x")
        );
        assert!(matches!(walk(&t.root.join("a/x/y"), &t.root, true), Err(Refusal::Missing { .. })));
        std::fs::write(t.root.join("a/f"), "").expect("write");
        assert!(walk(&t.root.join("a/f"), &t.root, false).is_ok(), "a file as the last component");
        assert!(matches!(walk(&t.root.join("a/f/g"), &t.root, false), Err(Refusal::NotDirectory { .. })));
        let gone = t.root.join("gone");
        assert!(matches!(walk(&gone.join("a"), &gone, false), Err(Refusal::Root { .. })));
    }

    #[test]
    fn volumes_below_a_root_are_checked_and_others_left_alone() {
        let t = tree();
        let text = format!(
            "[container]\nimage = \"a\"\nversion = \"1\"\nvolumes = [\"{}/a/b:/data\", \"/var/run/docker.sock:/s\", \"cache:/c\"]\n",
            t.root.display()
        );
        let unit = crate::unit::parse("cam", "cam.toml", &text).expect("valid");
        // Outside every root (or with `/` as the root): unchanged, not even looked at.
        for roots in [vec![], vec![PathBuf::from("/")]] {
            let same = check_volumes(&unit, &roots).expect("no roots");
            assert_eq!(same.container.volumes, unit.container.volumes);
        }
        let roots = [t.root.clone()];
        let flags = nix::sys::statvfs::statvfs(&t.root).expect("statvfs").flags();
        let safe = flags.contains(nix::sys::statvfs::FsFlags::ST_NOSUID)
            && flags.contains(nix::sys::statvfs::FsFlags::ST_NODEV);
        match check_volumes(&unit, &roots) {
            Ok(checked) => {
                assert!(safe);
                assert_eq!(
                    checked.container.volumes[0].source,
                    VolumeSource::Host(real(&t.root).join("a/b"))
                );
                assert_eq!(checked.container.volumes[1..], unit.container.volumes[1..]);
            }
            Err(e) => assert!(!safe && matches!(e, Refusal::MountFlags { .. }), "{e}"),
        }
        // A symlink is refused before the mount is looked at.
        std::fs::remove_dir_all(t.root.join("a/b")).expect("rm");
        symlink("/", t.root.join("a/b")).expect("symlink");
        let e = check_volumes(&unit, &roots).expect_err("symlink");
        assert!(matches!(e, Refusal::Symlink { .. }), "{e}");
        assert!(
            e.to_string().contains(&format!("{}/a/b (-> /) is a symbolic link", t.root.display())),
            "{e}"
        );
    }

    #[test]
    fn the_outermost_root_is_chosen() {
        let roots = [PathBuf::from("/srv/containers"), PathBuf::from("/srv"), PathBuf::from("/data")];
        assert_eq!(root_of(Path::new("/srv/containers/x"), &roots), Some(Path::new("/srv")));
        assert_eq!(root_of(Path::new("/data"), &roots), Some(Path::new("/data")));
        assert_eq!(root_of(Path::new("/database"), &roots), None);
        assert_eq!(root_of(Path::new("/var/run/docker.sock"), &roots), None);
    }

    #[test]
    fn mount_unit_names_are_systemd_escaped() {
        assert_eq!(mount_unit_name(Path::new("/srv/containers")), "srv-containers.mount");
        assert_eq!(mount_unit_name(Path::new("/srv/containers/")), "srv-containers.mount");
        assert_eq!(mount_unit_name(Path::new("/")), "-.mount");
        assert_eq!(mount_unit_name(Path::new("/srv/my-data/.x y")), "srv-my\\x2ddata-.x\\x20y.mount");
        assert_eq!(mount_unit_name(Path::new("/.a/b")), "\\x2ea-b.mount");
    }

    #[test]
    fn mount_flags_are_read() {
        // Whatever the temporary directory is mounted with, the check agrees with statvfs.
        let t = tree();
        let flags = nix::sys::statvfs::statvfs(&t.root).expect("statvfs").flags();
        let safe = flags.contains(nix::sys::statvfs::FsFlags::ST_NOSUID)
            && flags.contains(nix::sys::statvfs::FsFlags::ST_NODEV);
        let got = check_mount(&t.root, &t.root, &t.root);
        assert_eq!(got.is_ok(), safe, "{got:?}");
        if let Err(e) = got {
            assert!(e.to_string().contains("must be mounted nosuid,nodev"), "{e}");
        }
    }
}
