//! Finding unit files on disk: the search path and its precedence.
//!
//! This module does file I/O and nothing else. The same NAME in several directories resolves
//! to the first directory of the search path (/etc over /run over /usr/lib); a file there that is
//! empty or a symlink to /dev/null masks the NAME, as systemd does for unit files.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::diag::Diagnostic;
use crate::unit::{name_from_file_name, UnitName};

pub const DEFAULT_SEARCH_PATH: &[&str] =
    &["/etc/containerctl/units", "/run/containerctl/units", "/usr/lib/containerctl/units"];

/// Largest unit file read; anything bigger is certainly a mistake.
pub const MAX_UNIT_FILE_BYTES: u64 = 256 * 1024;

/// The search path, or the colon-separated `CONTAINERCTL_UNIT_PATH` when set (tests, chroots).
pub fn search_path() -> Vec<PathBuf> {
    match std::env::var_os("CONTAINERCTL_UNIT_PATH") {
        Some(p) if !p.is_empty() => std::env::split_paths(&p).collect(),
        _ => DEFAULT_SEARCH_PATH.iter().map(PathBuf::from).collect(),
    }
}

/// What a directory entry turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// The file that defines NAME (the highest-precedence one).
    File { name: UnitName, path: PathBuf },
    /// NAME is masked by an empty file or a /dev/null symlink.
    Masked { name: UnitName, path: PathBuf },
    /// A `*.toml` file whose name is not a valid NAME.
    BadName { path: PathBuf, message: String },
}

/// Every unit in `dirs`, sorted by NAME, each resolved by precedence. Missing dirs are skipped.
pub fn discover(dirs: &[PathBuf]) -> Vec<Found> {
    let mut by_name: std::collections::BTreeMap<UnitName, Found> = Default::default();
    let mut bad = Vec::new();
    for dir in dirs {
        let Ok(entries) = fs::read_dir(dir) else { continue };
        // The entry's type comes with the directory listing (d_type): no stat per file.
        let mut items: Vec<_> = entries
            .filter_map(Result::ok)
            .filter_map(|e| Some((e.file_name(), e.file_type().ok()?)))
            .collect();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        for (file_name, file_type) in items {
            let Some(file_name) = file_name.to_str() else { continue };
            if !file_name.ends_with(".toml") || file_name.starts_with('.') {
                continue;
            }
            if !(file_type.is_file() || file_type.is_symlink()) {
                continue;
            }
            let path = dir.join(file_name);
            match name_from_file_name(file_name) {
                Ok(name) => {
                    if by_name.contains_key(&name) {
                        continue;
                    }
                    // Empty regular files are masks too; callers see them as empty text
                    // (`Found::File`) and skip them, which saves a stat per file here.
                    let masked = file_type.is_symlink()
                        && fs::read_link(&path).is_ok_and(|t| t == Path::new("/dev/null"));
                    let found = if masked {
                        Found::Masked { name: name.clone(), path }
                    } else {
                        Found::File { name: name.clone(), path }
                    };
                    by_name.insert(name, found);
                }
                Err(message) => bad.push(Found::BadName { path, message }),
            }
        }
    }
    by_name.into_values().chain(bad).collect()
}

/// The file that defines `name`, if any (None when masked or absent).
pub fn find(dirs: &[PathBuf], name: &UnitName) -> Option<PathBuf> {
    let file_name = format!("{name}.toml");
    for dir in dirs {
        let path = dir.join(&file_name);
        if path.symlink_metadata().is_ok() {
            return (!is_masked(&path)).then_some(path);
        }
    }
    None
}

fn is_masked(path: &Path) -> bool {
    if fs::read_link(path).is_ok_and(|t| t == Path::new("/dev/null")) {
        return true;
    }
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == 0)
}

/// Reads a unit file already known to be a regular file or a symlink from [`discover`]: one
/// open and the reads, no stat (the generator runs this for every unit at every boot).
pub fn read_listed_unit_file(path: &Path) -> Result<String, Diagnostic> {
    let shown = path.display().to_string();
    let fail = |m: String, hint: Option<&str>| Diagnostic::file_level(&shown, m, hint.map(str::to_owned));
    let file = fs::File::open(path).map_err(|e| fail(format!("cannot read: {e}"), None))?;
    let mut bytes = Vec::with_capacity(4096);
    file.take(MAX_UNIT_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(format!("cannot read: {e}"), None))?;
    if bytes.len() as u64 > MAX_UNIT_FILE_BYTES {
        return Err(fail(
            format!("file is larger than the {MAX_UNIT_FILE_BYTES} bytes allowed"),
            Some("a unit file describes one container; move data elsewhere"),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        fail(
            format!("not valid UTF-8 at byte {}", e.utf8_error().valid_up_to()),
            Some("save the file as UTF-8"),
        )
    })
}

/// Reads a unit file, refusing non-files, oversized files and invalid UTF-8.
pub fn read_unit_file(path: &Path) -> Result<String, Diagnostic> {
    let shown = path.display().to_string();
    let fail = |m: String, hint: Option<&str>| Diagnostic::file_level(&shown, m, hint.map(str::to_owned));
    let file = fs::File::open(path).map_err(|e| fail(format!("cannot read: {e}"), None))?;
    let meta = file.metadata().map_err(|e| fail(format!("cannot read: {e}"), None))?;
    if !meta.is_file() {
        return Err(fail("not a regular file".into(), None));
    }
    if meta.len() > MAX_UNIT_FILE_BYTES {
        return Err(fail(
            format!("file is {} bytes, more than the {MAX_UNIT_FILE_BYTES} allowed", meta.len()),
            Some("a unit file describes one container; move data elsewhere"),
        ));
    }
    let mut bytes = Vec::new();
    file.take(MAX_UNIT_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(format!("cannot read: {e}"), None))?;
    String::from_utf8(bytes).map_err(|e| {
        fail(
            format!("not valid UTF-8 at byte {}", e.utf8_error().valid_up_to()),
            Some("save the file as UTF-8"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_masking_and_bad_names() {
        let root = tempfile::tempdir().expect("tempdir");
        let [etc, run, lib] = ["etc", "run", "lib"].map(|d| root.path().join(d));
        for d in [&etc, &run, &lib] {
            fs::create_dir(d).expect("mkdir");
        }
        fs::write(lib.join("web.toml"), "vendor").expect("write");
        fs::write(run.join("web.toml"), "runtime").expect("write");
        fs::write(lib.join("db.toml"), "vendor").expect("write");
        fs::write(etc.join("db.toml"), "").expect("write");
        std::os::unix::fs::symlink("/dev/null", etc.join("cam.toml")).expect("symlink");
        fs::write(lib.join("cam.toml"), "vendor").expect("write");
        fs::write(etc.join("Bad.toml"), "x").expect("write");
        fs::write(etc.join("notes.txt"), "x").expect("write");
        let dirs = vec![etc.clone(), run.clone(), lib.clone(), root.path().join("missing")];
        let found = discover(&dirs);
        let n = |s: &str| UnitName::new(s).expect("valid");
        assert_eq!(
            found,
            vec![
                Found::Masked { name: n("cam"), path: etc.join("cam.toml") },
                Found::File { name: n("db"), path: etc.join("db.toml") },
                Found::File { name: n("web"), path: run.join("web.toml") },
                Found::BadName {
                    path: etc.join("Bad.toml"),
                    message: "`Bad` is not a valid unit name: use 1-64 characters of [a-z0-9][a-z0-9_.-]*"
                        .into()
                },
            ]
        );
        assert_eq!(find(&dirs, &n("web")), Some(run.join("web.toml")));
        assert_eq!(find(&dirs, &n("cam")), None);
        assert_eq!(find(&dirs, &n("nope")), None);
    }

    #[test]
    fn oversized_and_binary_files_are_refused() {
        let root = tempfile::tempdir().expect("tempdir");
        let big = root.path().join("big.toml");
        fs::write(&big, vec![b'#'; MAX_UNIT_FILE_BYTES as usize + 1]).expect("write");
        assert!(read_unit_file(&big).expect_err("too big").message.contains("more than"));
        let bin = root.path().join("bin.toml");
        fs::write(&bin, b"a = \"\xff\"").expect("write");
        assert!(read_unit_file(&bin).expect_err("binary").message.contains("UTF-8 at byte 5"));
        assert!(read_unit_file(root.path()).is_err());
    }
}
