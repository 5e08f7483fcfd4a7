//! Secrets: values a container gets as a file (`/run/secrets/NAME`) or an environment variable
//! without their being written in a unit file, a revision, the audit trail or any answer of the API.
//!
//! They live on this host only, one file per secret in `/var/lib/containerctl/secrets/NAME`:
//! the directory is root's with mode 0700 (as is /var/lib/containerctl), so nobody else on the
//! host reaches them; the files are 0444 so that dockerd can bind-mount one read-only into a
//! container whose process runs as any user (Swarm's default mode too). The daemon writes them
//! (`Store::set`, `Store::remove`, atomically); the runner reads them at every start
//! (`Store::resolve`). The store's `.key` (0400) keys the digests of values ([`Resolved`]), so that
//! a digest in a container label or a Swarm secret's name cannot be used to guess a weak value.
//!
//! Nothing here logs or formats a value: [`Resolved`]'s `Debug` shows names only.

use std::collections::BTreeSet;
use std::fmt;
use std::fs::DirBuilder;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::unit::SecretRefs;

/// Where the secrets live on every host.
pub const DEFAULT_DIR: &str = "/var/lib/containerctl/secrets";
/// Overrides [`DEFAULT_DIR`] for the runner (tests).
pub const DIR_ENV: &str = "CONTAINERCTL_SECRETS_DIR";
/// The largest value: Swarm's limit for a secret (500 KiB).
pub const MAX_BYTES: usize = 500 * 1024;
/// Where a container finds its secrets' files.
pub const MOUNT_DIR: &str = "/run/secrets";
/// The mode of a secret's file: read-only, for whatever user the container runs as.
pub const FILE_MODE: u32 = 0o444;
/// The digest key's file, in the store's directory (a dot name is never a secret's NAME).
const KEY_FILE: &str = ".key";

/// A secret's NAME: 1–64 characters of `[A-Za-z0-9][A-Za-z0-9_.-]*`. It becomes a file name on
/// the host and in the container, and a Swarm secret's target.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretName(String);

impl SecretName {
    pub const RULE: &'static str = "1-64 characters of [A-Za-z0-9][A-Za-z0-9_.-]*";

    pub fn new(name: &str) -> Result<Self, String> {
        let b = name.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 64
            && b[0].is_ascii_alphanumeric()
            && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-');
        if ok {
            Ok(SecretName(name.to_owned()))
        } else {
            Err(format!("`{}` is not a valid secret name: use {}", name.escape_debug(), Self::RULE))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The file's path in the container.
    pub fn mount_path(&self) -> String {
        format!("{MOUNT_DIR}/{}", self.0)
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{0}")]
    InvalidName(String),
    #[error("a secret cannot be empty (Swarm refuses empty secrets too)")]
    Empty,
    #[error("the value is {0} bytes, more than the {MAX_BYTES} bytes (500 KiB) a secret may hold")]
    TooLarge(usize),
    #[error("secret {0} does not exist: an admin sets it with `containerctl secret set {0}`")]
    Missing(SecretName),
    #[error(
        "secret {name} cannot be the value of environment variable {var}: it is not UTF-8 text \
         without NUL bytes; read it as a file instead (secrets = [\"{name}\"], /run/secrets/{name})"
    )]
    NotText { name: SecretName, var: String },
    #[error(
        "cannot read the secret store's key {}: {source}; containerctld creates it when it starts",
        path.display()
    )]
    NoKey { path: PathBuf, source: io::Error },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> SecretError + '_ {
    move |source| SecretError::Io { path: path.to_owned(), source }
}

/// Checks a value before it is stored: not empty, at most [`MAX_BYTES`].
pub fn check_value(value: &[u8]) -> Result<(), SecretError> {
    if value.is_empty() {
        Err(SecretError::Empty)
    } else if value.len() > MAX_BYTES {
        Err(SecretError::TooLarge(value.len()))
    } else {
        Ok(())
    }
}

/// One stored secret, as the directory shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub name: SecretName,
    pub size: u64,
    /// The file's modification time, ms since the epoch.
    pub modified_ms: i64,
}

/// A file secret of a unit, read for a start.
pub struct FileSecret {
    pub name: SecretName,
    /// The file on the host (what dockerd bind-mounts).
    pub path: PathBuf,
    pub value: Vec<u8>,
    /// Keyed digest of the name and value (hex): equal digests, equal values.
    pub digest: String,
}

/// The secrets of a unit, read right before its container is made.
#[derive(Default)]
pub struct Resolved {
    /// In the order of the unit's `secrets`.
    pub files: Vec<FileSecret>,
    /// `VAR` and the value of its secret, sorted by VAR. Values are secret: never log them.
    pub env: Vec<(String, String)>,
    /// Keyed digest of every secret the unit references (name and value), empty when it
    /// references none: what decides, with the definition, whether a container may be adopted.
    pub fingerprint: String,
}

impl fmt::Debug for Resolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolved")
            .field("files", &self.files.iter().map(|s| s.name.as_str()).collect::<Vec<_>>())
            .field("env", &self.env.iter().map(|(var, _)| var.as_str()).collect::<Vec<_>>())
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

/// The secrets' directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(dir: impl Into<PathBuf>) -> Store {
        Store { dir: dir.into() }
    }

    /// `$CONTAINERCTL_SECRETS_DIR` (tests) or [`DEFAULT_DIR`]: the runner's store.
    pub fn from_env() -> Store {
        Store::new(std::env::var_os(DIR_ENV).map_or_else(|| PathBuf::from(DEFAULT_DIR), PathBuf::from))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, name: &SecretName) -> PathBuf {
        self.dir.join(name.as_str())
    }

    /// Creates the directory (0700) and the digest key (0400) when missing, and takes the
    /// directory back to 0700 if its mode was widened. The daemon calls it at start.
    pub fn ensure(&self) -> Result<(), SecretError> {
        DirBuilder::new().recursive(true).mode(0o700).create(&self.dir).map_err(io_at(&self.dir))?;
        let meta = std::fs::metadata(&self.dir).map_err(io_at(&self.dir))?;
        if meta.permissions().mode() & 0o7777 != 0o700 {
            std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
                .map_err(io_at(&self.dir))?;
        }
        let key = self.dir.join(KEY_FILE);
        if !key.exists() {
            crate::atomic_file::write(&key, crate::digest::random_hex(32).as_bytes(), 0o400)
                .map_err(io_at(&key))?;
        }
        Ok(())
    }

    /// Stores `value` as secret `name`, replacing it atomically; true when it existed before.
    pub fn set(&self, name: &SecretName, value: &[u8]) -> Result<bool, SecretError> {
        check_value(value)?;
        self.ensure()?;
        let path = self.path(name);
        let existed = path.exists();
        crate::atomic_file::write(&path, value, FILE_MODE).map_err(io_at(&path))?;
        Ok(existed)
    }

    /// Removes secret `name`; false when there was none.
    pub fn remove(&self, name: &SecretName) -> Result<bool, SecretError> {
        let path = self.path(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                std::fs::File::open(&self.dir).and_then(|d| d.sync_all()).map_err(io_at(&self.dir))?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_at(&path)(e)),
        }
    }

    pub fn exists(&self, name: &SecretName) -> bool {
        self.path(name).is_file()
    }

    /// Every secret in the directory, by name. Other files (the key, temporaries) are not secrets.
    pub fn list(&self) -> Result<Vec<Stored>, SecretError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_at(&self.dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_at(&self.dir))?;
            let Some(name) = entry.file_name().to_str().and_then(|n| SecretName::new(n).ok()) else {
                continue;
            };
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let modified_ms = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            out.push(Stored { name, size: meta.len(), modified_ms });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The value of secret `name`.
    pub fn read(&self, name: &SecretName) -> Result<Vec<u8>, SecretError> {
        let path = self.path(name);
        std::fs::read(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => SecretError::Missing(name.clone()),
            _ => SecretError::Io { path, source: e },
        })
    }

    fn key(&self) -> Result<Vec<u8>, SecretError> {
        let path = self.dir.join(KEY_FILE);
        std::fs::read(&path).map_err(|source| SecretError::NoKey { path, source })
    }

    /// Reads every secret `refs` names: what the runner does at each start. A missing secret, or
    /// one that cannot be an environment value, is an error naming it.
    pub fn resolve(&self, refs: &SecretRefs) -> Result<Resolved, SecretError> {
        if refs.is_empty() {
            return Ok(Resolved::default());
        }
        let names: BTreeSet<&SecretName> = refs.files.iter().chain(refs.env.values()).collect();
        let mut values = std::collections::BTreeMap::new();
        for name in names {
            values.insert(name.clone(), self.read(name)?);
        }
        let key = self.key()?;
        let mut parts: Vec<&[u8]> = vec![b"containerctl secrets v1\0"];
        let lengths: Vec<[u8; 8]> = values.values().map(|v| (v.len() as u64).to_le_bytes()).collect();
        for ((name, value), len) in values.iter().zip(&lengths) {
            parts.extend([name.as_str().as_bytes(), b"\0", len.as_slice(), value.as_slice()]);
        }
        let fingerprint = crate::digest::hmac_sha256_hex(&key, &parts);
        let mut files = Vec::new();
        for name in &refs.files {
            let value = values.get(name).cloned().unwrap_or_default();
            let digest =
                crate::digest::hmac_sha256_hex(&key, &[b"file\0", name.as_str().as_bytes(), b"\0", &value]);
            files.push(FileSecret { name: name.clone(), path: self.path(name), value, digest });
        }
        let mut env = Vec::new();
        for (var, name) in &refs.env {
            let value = values.get(name).map(Vec::as_slice).unwrap_or_default();
            let text = std::str::from_utf8(value)
                .ok()
                .filter(|t| !t.contains('\0'))
                .ok_or_else(|| SecretError::NotText { name: name.clone(), var: var.clone() })?;
            env.push((var.clone(), text.to_owned()));
        }
        Ok(Resolved { files, env, fingerprint })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::os::unix::fs::MetadataExt;

    use super::*;

    fn name(n: &str) -> SecretName {
        SecretName::new(n).expect("valid name")
    }

    fn refs(files: &[&str], env: &[(&str, &str)]) -> SecretRefs {
        SecretRefs {
            files: files.iter().map(|n| name(n)).collect(),
            env: env.iter().map(|(v, n)| ((*v).to_owned(), name(n))).collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn names_follow_the_rule() {
        for good in ["a", "DB_PASSWORD", "db-pass.v2", "0x", &"a".repeat(64)] {
            assert!(SecretName::new(good).is_ok(), "{good}");
        }
        for bad in ["", ".key", "-a", "_a", "a/b", "..", "a b", "a:b", "é", "a\0", &"a".repeat(65)] {
            let e = SecretName::new(bad).expect_err(bad);
            assert!(e.contains(SecretName::RULE), "{e}");
        }
        assert_eq!(name("db").mount_path(), "/run/secrets/db");
    }

    #[test]
    fn values_are_checked() {
        assert!(matches!(check_value(b""), Err(SecretError::Empty)));
        assert!(check_value(&vec![0u8; MAX_BYTES]).is_ok());
        assert!(
            matches!(check_value(&vec![0u8; MAX_BYTES + 1]), Err(SecretError::TooLarge(n)) if n == MAX_BYTES + 1)
        );
    }

    #[test]
    fn the_store_is_root_only_and_its_files_read_only() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = Store::new(tmp.path().join("secrets"));
        assert_eq!(store.list().expect("an absent store is empty"), []);
        assert!(!store.set(&name("db"), b"hunter2").expect("set"), "a new secret");
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").mode() & 0o7777;
        assert_eq!(mode(store.dir()), 0o700);
        assert_eq!(mode(&store.path(&name("db"))), 0o444);
        assert_eq!(mode(&store.dir().join(KEY_FILE)), 0o400);
        assert!(store.set(&name("db"), b"correct horse").expect("replace"), "replaced");
        assert_eq!(store.read(&name("db")).expect("read"), b"correct horse");
        assert_eq!(mode(&store.path(&name("db"))), 0o444);
        // A widened directory is taken back to 0700.
        std::fs::set_permissions(store.dir(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        store.ensure().expect("ensure");
        assert_eq!(mode(store.dir()), 0o700);
    }

    #[test]
    fn list_shows_secrets_only_with_their_sizes() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = Store::new(tmp.path());
        store.set(&name("b"), b"12345").expect("set");
        store.set(&name("a"), &[0, 159, 146, 150]).expect("binary values are fine");
        std::fs::write(tmp.path().join(".b.tmp-1-0"), "left over").expect("write");
        std::fs::create_dir(tmp.path().join("dir")).expect("mkdir");
        let listed = store.list().expect("list");
        let shown: Vec<(&str, u64)> = listed.iter().map(|s| (s.name.as_str(), s.size)).collect();
        assert_eq!(shown, [("a", 4), ("b", 5)]);
        let now = crate::time::now_ms();
        assert!(listed.iter().all(|s| (now - 60_000..=now + 1000).contains(&s.modified_ms)), "{listed:?}");
        assert!(store.remove(&name("a")).expect("rm"));
        assert!(!store.remove(&name("a")).expect("rm again"), "already gone");
        assert!(!store.exists(&name("a")) && store.exists(&name("b")));
    }

    #[test]
    fn resolve_reads_values_and_names_what_is_missing() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = Store::new(tmp.path());
        assert_eq!(store.resolve(&refs(&[], &[])).expect("none").fingerprint, "", "no secrets, no digest");
        store.set(&name("db"), b"hunter2").expect("set");
        store.set(&name("cert"), &[0xff, 0, 1]).expect("set");
        let r = store.resolve(&refs(&["cert", "db"], &[("DB_PASSWORD", "db")])).expect("resolved");
        assert_eq!(r.files.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["cert", "db"]);
        assert_eq!(r.files[0].path, tmp.path().join("cert"));
        assert_eq!(r.files[0].value, [0xff, 0, 1]);
        assert_eq!(r.env, [("DB_PASSWORD".to_owned(), "hunter2".to_owned())]);
        assert_eq!(r.fingerprint.len(), 64);
        let shown = format!("{r:?}");
        assert!(!shown.contains("hunter2") && shown.contains("DB_PASSWORD"), "{shown}");
        let e = store.resolve(&refs(&["db", "api"], &[])).err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("secret api does not exist: an admin sets it with `containerctl secret set api`")
        );
        let e = store.resolve(&refs(&[], &[("CERT", "cert")])).expect_err("binary in env");
        assert!(matches!(e, SecretError::NotText { .. }), "{e}");
        assert!(e.to_string().contains("read it as a file instead"), "{e}");
    }

    #[test]
    fn digests_change_with_values_and_keys_only() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = Store::new(tmp.path());
        store.set(&name("db"), b"one").expect("set");
        let r = refs(&["db"], &[]);
        let first = store.resolve(&r).expect("resolved");
        assert_eq!(first.fingerprint, store.resolve(&r).expect("again").fingerprint, "deterministic");
        // The same value written again is the same secret.
        store.set(&name("db"), b"one").expect("set");
        assert_eq!(store.resolve(&r).expect("resolved").files[0].digest, first.files[0].digest);
        store.set(&name("db"), b"two").expect("set");
        let second = store.resolve(&r).expect("resolved");
        assert_ne!(first.fingerprint, second.fingerprint);
        assert_ne!(first.files[0].digest, second.files[0].digest);
        // Keyed: not the plain SHA-256 of the value, and another host's key gives other digests.
        assert_ne!(second.files[0].digest, crate::digest::sha256_hex(b"two"));
        let other = tempfile::tempdir().expect("tempdir");
        let other_store = Store::new(other.path());
        other_store.set(&name("db"), b"two").expect("set");
        assert_ne!(other_store.resolve(&r).expect("resolved").fingerprint, second.fingerprint);
    }

    #[test]
    fn without_the_key_nothing_resolves() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = Store::new(tmp.path());
        std::fs::write(tmp.path().join("db"), "x").expect("a secret copied in by hand");
        let e = store.resolve(&refs(&["db"], &[])).expect_err("no key");
        assert!(e.to_string().contains("containerctld creates it when it starts"), "{e}");
    }
}
