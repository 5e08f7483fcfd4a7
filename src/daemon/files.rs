//! Unit files changed outside the API. A hand edit becomes a revision (actor "file" and the
//! file's owner) when the daemon sees it: at every daemon-reload, at start, and before an API
//! edit of the same unit, so that edit's revision has the right before. What systemd loaded is
//! the generator's copy of the definition; a file that differs from it is "changed on disk".

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{Daemon, Definition};
use crate::db::NewAudit;
use crate::search::{self, Found};
use crate::time::now_ms;
use crate::unit::UnitName;

/// Actor of a hand edit whose file has no owner to name (a removal).
pub const FILE_ACTOR: &str = "file";
/// Action of a revision (and audit entry) recorded from a hand edit.
pub const FILE_ACTION: &str = "file";

/// What a unit's file says that its history does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandEdit<'a> {
    /// The file holds this text, which is not the latest revision.
    Written(&'a str),
    /// The file is gone (or masked) while the latest revision is not a removal.
    Removed,
}

/// Compares the latest revision's text (`""` for a removal) with the file's text.
pub fn hand_edit<'a>(latest: Option<&str>, on_disk: Option<&'a str>) -> Option<HandEdit<'a>> {
    match (latest, on_disk) {
        (_, Some(text)) if latest == Some(text) => None,
        (_, Some(text)) => Some(HandEdit::Written(text)),
        (Some(latest), None) if !latest.is_empty() => Some(HandEdit::Removed),
        (_, None) => None,
    }
}

/// Whether the file on disk is not what systemd loaded (`loaded`: the generator's copy). A valid
/// file without a copy is new to systemd; an invalid one never gets a copy, so a reload would
/// not load it either (its error is shown instead).
pub fn changed_on_disk(on_disk: Option<&str>, valid: bool, loaded: Option<&str>) -> bool {
    match (on_disk, loaded) {
        (Some(file), Some(copy)) => file != copy,
        (Some(_), None) => valid,
        (None, Some(_)) => true,
        (None, None) => false,
    }
}

/// `file (uid 0 root)`: the actor of a hand edit, from the file's owner.
pub fn file_actor(uid: u32, user: Option<&str>) -> String {
    match user {
        Some(u) => format!("{FILE_ACTOR} (uid {uid} {u})"),
        None => format!("{FILE_ACTOR} (uid {uid})"),
    }
}

fn owner_of(path: &Path) -> String {
    match std::fs::metadata(path) {
        Ok(m) => {
            let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(m.uid())).ok().flatten();
            file_actor(m.uid(), user.as_ref().map(|u| u.name.as_str()))
        }
        Err(_) => FILE_ACTOR.to_owned(),
    }
}

/// The generator's drop-in of `name`, holding its definition: what systemd loaded.
pub fn loaded_path(name: &UnitName) -> PathBuf {
    crate::generator::definition_path(Path::new(crate::generator::NORMAL_DIR), name)
}

impl Daemon {
    /// Records every hand edit not yet in the history: files written, changed or removed
    /// outside the API. Called at start and after every daemon-reload.
    pub async fn record_hand_edits(&self) {
        let guard = self.write_lock.lock().await;
        let mut names = BTreeSet::new();
        for found in search::discover(&search::search_path()) {
            match found {
                Found::File { name, .. } | Found::Masked { name, .. } => {
                    names.insert(name.to_string());
                }
                Found::BadName { .. } => {}
            }
        }
        match self.db().revision_units() {
            Ok(units) => names.extend(units),
            Err(e) => tracing::warn!("cannot list the units with revisions: {e}"),
        }
        let mut any = false;
        let mut removed = Vec::new();
        for name in names {
            if let Ok(name) = UnitName::new(&name) {
                let current = self.definition(&name);
                let recorded = self.record_hand_edit(&name, current.as_ref()).is_some();
                if recorded && current.is_none() {
                    removed.push(name);
                }
                any |= recorded;
            }
        }
        drop(guard);
        for name in removed {
            if self.remove_orphaned_container(&name).await {
                tracing::info!(unit = %name, "removed the stopped container of {name}: its unit file was removed");
            }
        }
        if any {
            self.changed();
        }
    }

    /// Records `current` (the unit's file, None when it has none) as a revision when it is not
    /// the latest one, with an audit entry. The caller holds `write_lock`, so the daemon's own
    /// writes (recorded right after the write) are never taken for hand edits.
    pub(super) fn record_hand_edit(&self, name: &UnitName, current: Option<&Definition>) -> Option<u32> {
        if current.is_some_and(|d| d.text.is_empty()) {
            return None; // unreadable: its error is shown, its text unknown
        }
        let latest = match self.db().latest_revision(name.as_str()) {
            Ok(latest) => latest,
            Err(e) => {
                tracing::warn!("cannot read the history of {name}: {e}");
                return None;
            }
        };
        let latest_text = latest.as_ref().map(|r| r.text.as_str());
        let edit = hand_edit(latest_text, current.map(|d| d.text.as_str()))?;
        let (actor, action, text) = match (edit, current) {
            (HandEdit::Written(text), Some(d)) => (owner_of(&d.path), FILE_ACTION, text),
            _ => (FILE_ACTOR.to_owned(), "rm", ""),
        };
        let before = latest_text.filter(|t| !t.is_empty()).map(str::to_owned);
        let after = (!text.is_empty()).then(|| text.to_owned());
        let at_ms = now_ms();
        let rev = match self.db().record_revision(name.as_str(), &actor, action, text, at_ms) {
            Ok(rev) => rev,
            Err(e) => {
                tracing::warn!("cannot record the hand edit of {name}: {e}");
                return None;
            }
        };
        let entry = NewAudit {
            at_ms,
            actor: actor.clone(),
            role: FILE_ACTOR.to_owned(),
            action: action.to_owned(),
            unit: Some(name.to_string()),
            before,
            after,
            result: "ok".to_owned(),
        };
        if let Err(e) = self.db().record_audit(&entry) {
            tracing::error!("cannot record audit of the hand edit of {name}: {e}");
        }
        let what = if text.is_empty() { "removal" } else { "edit" };
        tracing::info!(actor = %actor, unit = %name, "recorded the hand {what} of {name} as revision {rev:?}");
        rev
    }

    /// The definition systemd loaded for `name` (the generator's copy), if any. Read again only
    /// when the file's stamp (modification time, length) changed: every listing asks for all.
    pub fn loaded_text(&self, name: &str) -> Option<String> {
        let name = UnitName::new(name).ok()?;
        self.loaded_text_at(&loaded_path(&name))
    }

    fn loaded_text_at(&self, path: &Path) -> Option<String> {
        self.loaded.text(path, |p| crate::generator::read_definition(p).ok())
    }
}

/// A file's modification time and length.
type Stamp = (std::time::SystemTime, u64);

/// Texts read from files, each read again only when its stamp (modification time, length)
/// changed.
#[derive(Default)]
pub struct StampedTexts {
    texts: std::sync::RwLock<std::collections::HashMap<PathBuf, (Stamp, String)>>,
}

impl StampedTexts {
    /// The text of `path` by `read`, from the cache while the file's stamp is unchanged; None
    /// (and forgotten) when the file is gone or `read` fails.
    pub fn text(&self, path: &Path, read: impl FnOnce(&Path) -> Option<String>) -> Option<String> {
        let stamp = std::fs::metadata(path).ok().and_then(|m| Some((m.modified().ok()?, m.len())));
        let Some(stamp) = stamp else {
            if let Ok(mut texts) = self.texts.write() {
                texts.remove(path);
            }
            return None;
        };
        if let Some((at, text)) = self.texts.read().ok()?.get(path) {
            if *at == stamp {
                return Some(text.clone());
            }
        }
        let text = read(path)?;
        if let Ok(mut texts) = self.texts.write() {
            texts.insert(path.to_owned(), (stamp, text.clone()));
        }
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamped_texts_read_a_file_again_only_once_it_changed() -> std::io::Result<()> {
        let dir = std::env::temp_dir().join(format!("containerctl-stamped-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("u.conf");
        std::fs::write(&path, "a")?;
        let cache = StampedTexts::default();
        let reads = std::cell::Cell::new(0);
        let read = |p: &Path| {
            reads.set(reads.get() + 1);
            std::fs::read_to_string(p).ok()
        };
        assert_eq!(cache.text(&path, read).as_deref(), Some("a"));
        assert_eq!(cache.text(&path, read).as_deref(), Some("a"));
        assert_eq!(reads.get(), 1, "an unchanged file is not read again");
        std::fs::write(&path, "bb")?;
        assert_eq!(cache.text(&path, read).as_deref(), Some("bb"));
        assert_eq!(reads.get(), 2);
        std::fs::remove_file(&path)?;
        assert_eq!(cache.text(&path, read), None, "a removed file has no text");
        std::fs::write(&path, "bb")?;
        assert_eq!(cache.text(&path, read).as_deref(), Some("bb"));
        assert_eq!(reads.get(), 3, "a removed file was forgotten");
        std::fs::remove_dir_all(&dir)
    }

    #[test]
    fn a_file_that_is_not_the_latest_revision_is_a_hand_edit() {
        assert_eq!(hand_edit(None, Some("a")), Some(HandEdit::Written("a")));
        assert_eq!(hand_edit(Some("a"), Some("b")), Some(HandEdit::Written("b")));
        assert_eq!(hand_edit(Some(""), Some("b")), Some(HandEdit::Written("b")));
        assert_eq!(hand_edit(Some("a"), Some("a")), None, "the daemon's own write is recorded once");
        assert_eq!(hand_edit(Some("a"), None), Some(HandEdit::Removed));
        assert_eq!(hand_edit(Some(""), None), None, "already a removal");
        assert_eq!(hand_edit(None, None), None);
    }

    #[test]
    fn changed_on_disk_compares_the_file_with_the_loaded_copy() {
        assert!(!changed_on_disk(Some("a"), true, Some("a")));
        assert!(changed_on_disk(Some("b"), true, Some("a")));
        assert!(changed_on_disk(Some("b"), false, Some("a")), "an invalid edit of a loaded unit");
        assert!(changed_on_disk(Some("a"), true, None), "new to systemd");
        assert!(!changed_on_disk(Some("a"), false, None), "a reload would skip it");
        assert!(changed_on_disk(None, false, Some("a")), "removed but still loaded");
        assert!(!changed_on_disk(None, false, None));
    }

    #[test]
    fn the_actor_names_the_owner() {
        assert_eq!(file_actor(0, Some("root")), "file (uid 0 root)");
        assert_eq!(file_actor(1234, None), "file (uid 1234)");
    }
}
