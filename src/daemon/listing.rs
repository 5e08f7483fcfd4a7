//! The unit list that `GET /units`, the web page's event stream and /metrics serve, kept between
//! requests and built again only where something changed: a request copies no definition, stats
//! no file and serializes no unit that did not change (BENCHMARKS.md, "One host at 500 units").
//!
//! What a unit's entry is made of, and what says that it changed:
//! - its file: the inotify watch of the unit directories (`file_watch`), drained at the start of
//!   every listing, so an edit finished before a request is in its answer. A file that is a
//!   symlink is checked by its stamp at every listing (its target's directory is not watched);
//!   without inotify every file is, as before this cache existed.
//! - what systemd loaded (the generator's copy): read again by stamp at every listing while a
//!   daemon-reload is under way (the watch sees systemd replace the generator directory), and
//!   once more when it ended (systemd's `Reloading` signal, or the daemon's own reload returning).
//! - its systemd state and live facts (health, CPU, memory): marked by the daemon where it stores
//!   them, before and after storing, so a listing that runs in between is rebuilt once more.
//! - its update state: the store counts its writes of updates and checks (`Db::updates_written`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::file_watch::{FileWatch, Seen};
use super::{shown_without_file, view, Daemon, Definition, Live, UnitView};
use crate::metrics::UnitLines;
use crate::search::{self, Found};
use crate::systemd::UnitState;
use crate::unit::{self, UnitName};
use crate::wire::UnitUpdate;

/// Whether the generator's copies read are what systemd loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Copies {
    /// They are: no reload since they were read.
    Fresh,
    /// A reload ended since: read them (by stamp) once more.
    #[default]
    Stale,
    /// A reload is under way: read them (by stamp) at every listing until it ends.
    Reloading,
}

impl Copies {
    /// Whether a listing reads the copies now, and the state after it did.
    pub fn take(self) -> (bool, Copies) {
        match self {
            Copies::Fresh => (false, Copies::Fresh),
            Copies::Stale => (true, Copies::Fresh),
            Copies::Reloading => (true, Copies::Reloading),
        }
    }
}

/// What has to be built again at the next listing.
#[derive(Debug, Default)]
pub struct Pending {
    /// Discover every unit file again (at start, after a lost event, without inotify).
    pub rescan: bool,
    /// Read these NAMEs' files again.
    pub files: BTreeSet<String>,
    /// Build these NAMEs' entries again.
    pub views: BTreeSet<String>,
    /// Build every entry again.
    pub all_views: bool,
    /// Where the copies stand.
    pub copies: Copies,
}

impl Pending {
    fn everything() -> Pending {
        Pending { rescan: true, all_views: true, ..Pending::default() }
    }

    /// Applies what the file watch saw.
    pub fn seen(&mut self, seen: Seen) {
        match seen {
            Seen::Unit(name) => {
                self.files.insert(name);
            }
            Seen::Everything => {
                self.rescan = true;
                self.all_views = true;
            }
            Seen::Reload => self.copies = Copies::Reloading,
        }
    }
}

/// One unit as every reader gets it.
pub struct Entry {
    pub view: UnitView,
    /// `view` in JSON, as admins and operators read it.
    json: String,
    /// `view` in JSON as viewers read it, when it differs: a file's errors quote its lines, so a
    /// viewer gets the errors of the redacted file.
    viewer_json: Option<String>,
    /// Its lines of /metrics.
    metrics: UnitLines,
}

impl Entry {
    fn new(view: UnitView, viewer_error: Option<String>) -> Entry {
        let json = serde_json::to_string(&view).unwrap_or_default();
        let viewer_json = viewer_error.map(|error| {
            let redacted = UnitView { error: Some(error), ..view.clone() };
            serde_json::to_string(&redacted).unwrap_or_default()
        });
        let metrics = crate::metrics::unit_lines(&view);
        Entry { view, json, viewer_json, metrics }
    }
}

/// The list's state; see the module docs.
pub struct Listing {
    /// The unit directories, by precedence.
    dirs: Vec<PathBuf>,
    inner: Mutex<Inner>,
}

struct Inner {
    watch: Option<FileWatch>,
    /// False once the watch failed: every listing then reads every file.
    trusted: bool,
    pending: Pending,
    /// The unit files by NAME (masked and absent NAMEs have none).
    files: BTreeMap<String, Definition>,
    /// NAMEs whose file is a symlink.
    linked: BTreeSet<String>,
    /// What systemd loaded, by NAME (None: nothing).
    loaded: HashMap<String, Option<String>>,
    /// The store's count of update writes when `updates` was read.
    updates_seen: Option<u64>,
    updates: HashMap<String, UnitUpdate>,
    entries: BTreeMap<String, Arc<Entry>>,
    /// The whole list in JSON (plain, for viewers) and the units' /metrics, until an entry changes.
    json: [Option<Arc<str>>; 2],
    metrics: Option<Arc<str>>,
}

impl Listing {
    /// A listing of the unit directories `dirs`, watched with the generator directory
    /// `generator`; everything is read at the first listing.
    pub fn new(dirs: Vec<PathBuf>, generator: PathBuf) -> Listing {
        let watch = match FileWatch::new(dirs.clone(), generator) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!("cannot watch the unit files ({e}): every listing reads them all");
                None
            }
        };
        Listing {
            dirs,
            inner: Mutex::new(Inner {
                trusted: watch.is_some(),
                watch,
                pending: Pending::everything(),
                files: BTreeMap::new(),
                linked: BTreeSet::new(),
                loaded: HashMap::new(),
                updates_seen: None,
                updates: HashMap::new(),
                entries: BTreeMap::new(),
                json: [None, None],
                metrics: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Unit `name`'s state or live facts changed (or are about to).
    pub fn unit_changed(&self, name: &str) {
        self.lock().pending.views.insert(name.to_owned());
    }

    /// Every unit's state may have changed (states read again, containers listed again).
    pub fn all_changed(&self) {
        self.lock().pending.all_views = true;
    }

    /// A daemon-reload ended: the copies are read once more. The watch is drained first, so the
    /// events of the reload that ended do not count as a reload still under way.
    pub fn reload_ended(&self) {
        let mut l = self.lock();
        l.drain();
        l.pending.copies = Copies::Stale;
        l.pending.all_views = true;
    }

    /// Takes the file watch's events: whether there were any (the web page's stream is told),
    /// None once the watch is not trusted (nothing to wait for any more).
    pub fn files_seen(&self) -> Option<bool> {
        let mut l = self.lock();
        let any = l.drain();
        l.trusted.then_some(any)
    }

    /// The file watch's inotify instance, to wait on for events (None without inotify).
    pub fn watch_waiter(&self) -> Option<Arc<nix::sys::inotify::Inotify>> {
        self.lock().watch.as_ref().map(FileWatch::waiter)
    }
}

impl Inner {
    /// Takes the watch's events into `pending`; true when there were any.
    fn drain(&mut self) -> bool {
        let watch = match self.watch.as_mut() {
            Some(w) if self.trusted => w,
            _ => {
                // Nothing says what changed: look at everything, by stamp, as a reload does.
                self.pending.rescan = true;
                self.pending.copies = Copies::Reloading;
                return false;
            }
        };
        match watch.drain() {
            Ok(seen) => {
                let any = !seen.is_empty();
                for s in seen {
                    self.pending.seen(s);
                }
                any
            }
            Err(e) => {
                // Kept open (its descriptor may be waited on), no longer believed.
                tracing::warn!(
                    "the unit files' watch failed ({e}): every listing reads them all from now on"
                );
                self.trusted = false;
                self.pending.rescan = true;
                self.pending.copies = Copies::Reloading;
                true
            }
        }
    }

    fn json(&mut self, plain: bool) -> Arc<str> {
        let slot = usize::from(!plain);
        if let Some(text) = &self.json[slot] {
            return text.clone();
        }
        let size = self.entries.values().map(|e| e.json.len() + 1).sum::<usize>() + 2;
        let mut s = String::with_capacity(size);
        s.push('[');
        for (i, e) in self.entries.values().enumerate() {
            if i > 0 {
                s.push(',');
            }
            let text = if plain { &e.json } else { e.viewer_json.as_ref().unwrap_or(&e.json) };
            s.push_str(text);
        }
        s.push(']');
        let text: Arc<str> = s.into();
        self.json[slot] = Some(text.clone());
        text
    }

    fn metrics(&mut self) -> Arc<str> {
        if let Some(text) = &self.metrics {
            return text.clone();
        }
        let text: Arc<str> = crate::metrics::render(self.entries.values().map(|e| &e.metrics)).into();
        self.metrics = Some(text.clone());
        text
    }
}

/// The errors of unit `name`'s file as a viewer reads them: those of the redacted file, when
/// redaction changes it (a file's errors quote its lines).
pub fn viewer_error(name: &UnitName, def: &Definition) -> Option<String> {
    let redacted = unit::redact::redact(&def.text);
    if redacted == def.text {
        return None;
    }
    let file = def.path.display().to_string();
    Some(match unit::parse(name.as_str(), &file, &redacted) {
        Err(diags) => diags.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"),
        Ok(_) => {
            format!("{file}: the file is not valid at a value that is redacted for viewers: ask an operator")
        }
    })
}

/// What the listing is made of: the daemon's state, or a test's.
pub(super) trait Source {
    /// The definition in the unit file at `path` (from a cache while its stamp is unchanged, when
    /// `trust_stamp`); None when the file is gone or masks the unit.
    fn definition(&self, name: &UnitName, path: &Path, trust_stamp: bool) -> Option<Definition>;
    /// What systemd loaded for `name` (the generator's copy), read again only once its stamp changed.
    fn loaded(&self, name: &str) -> Option<String>;
    /// The store's count of writes of updates and update checks.
    fn updates_written(&self) -> u64;
    /// The update states of the units that have one.
    fn update_states(&self) -> HashMap<String, UnitUpdate>;
    /// `f` of systemd's states and the live facts, by NAME.
    fn with_states<R>(&self, f: impl FnOnce(&BTreeMap<String, UnitState>, &HashMap<String, Live>) -> R) -> R;
}

impl Source for Daemon {
    fn definition(&self, name: &UnitName, path: &Path, trust_stamp: bool) -> Option<Definition> {
        self.definition_at(name, path, trust_stamp)
    }

    fn loaded(&self, name: &str) -> Option<String> {
        self.loaded_text(name)
    }

    fn updates_written(&self) -> u64 {
        self.updates_written.load(Ordering::Acquire)
    }

    fn update_states(&self) -> HashMap<String, UnitUpdate> {
        Daemon::update_states(self)
    }

    fn with_states<R>(&self, f: impl FnOnce(&BTreeMap<String, UnitState>, &HashMap<String, Live>) -> R) -> R {
        let units = self.units.read().unwrap_or_else(PoisonError::into_inner);
        let live = self.live.read().unwrap_or_else(PoisonError::into_inner);
        f(&units, &live)
    }
}

impl Daemon {
    /// Every unit: those with files plus loaded instances without one, by NAME.
    pub fn list(&self) -> Vec<UnitView> {
        self.listing().entries.values().map(|e| e.view.clone()).collect()
    }

    /// [`Daemon::list`] in JSON, as `plain` readers (admins, operators) or viewers read it.
    pub fn list_json(&self, plain: bool) -> Arc<str> {
        self.listing().json(plain)
    }

    /// The units' families of /metrics.
    pub fn units_metrics(&self) -> Arc<str> {
        self.listing().metrics()
    }

    fn listing(&self) -> MutexGuard<'_, Inner> {
        let (l, files_changed) = self.listing.current(self);
        if files_changed {
            // Hand edits reach the web page's stream even when a request took them first.
            self.changed();
        }
        l
    }
}

impl Listing {
    /// The list brought up to date with everything that changed since the last one, and whether
    /// the file watch had events.
    fn current<S: Source>(&self, s: &S) -> (MutexGuard<'_, Inner>, bool) {
        let mut l = self.lock();
        let files_changed = l.drain();
        let mut changed = l.refresh_files(s, &self.dirs);
        let (read, copies) = l.pending.copies.take();
        l.pending.copies = copies;
        if read {
            changed.extend(l.refresh_copies(s));
        }
        changed.extend(l.refresh_updates(s));
        let all = std::mem::take(&mut l.pending.all_views);
        changed.append(&mut l.pending.views);
        l.rebuild(s, all, changed);
        (l, files_changed)
    }
}

impl Inner {
    /// Reads the files the watch says changed (or all of them); gives the NAMEs whose file did.
    fn refresh_files(&mut self, s: &impl Source, dirs: &[PathBuf]) -> BTreeSet<String> {
        let is_link = |p: &Path| p.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink());
        if std::mem::take(&mut self.pending.rescan) {
            self.pending.files.clear();
            let mut files = BTreeMap::new();
            let mut linked = BTreeSet::new();
            for found in search::discover(dirs) {
                if let Found::File { name, path } = found {
                    if self.trusted && is_link(&path) {
                        linked.insert(name.to_string());
                    }
                    if let Some(d) = s.definition(&name, &path, true) {
                        files.insert(name.to_string(), d);
                    }
                }
            }
            let mut changed: BTreeSet<String> = self.files.keys().chain(files.keys()).cloned().collect();
            changed.retain(|n| {
                self.files.get(n).map(|d| (&d.path, &d.text)) != files.get(n).map(|d| (&d.path, &d.text))
            });
            self.files = files;
            self.linked = linked;
            return changed;
        }
        let mut names = std::mem::take(&mut self.pending.files);
        names.extend(self.linked.iter().cloned());
        let mut changed = BTreeSet::new();
        for name in names {
            let Ok(unit_name) = UnitName::new(&name) else { continue };
            let path = search::find(dirs, &unit_name);
            let link = path.as_deref().is_some_and(is_link);
            // A link's target may change behind it: its stamp decides. A file the watch named is
            // read again whatever its stamp says.
            let def = path.and_then(|p| s.definition(&unit_name, &p, link));
            if link {
                self.linked.insert(name.clone());
            } else {
                self.linked.remove(&name);
            }
            let same = match (self.files.get(&name), &def) {
                (Some(a), Some(b)) => a.path == b.path && a.text == b.text,
                (None, None) => true,
                _ => false,
            };
            match def {
                Some(d) => self.files.insert(name.clone(), d),
                None => self.files.remove(&name),
            };
            if !same {
                changed.insert(name);
            }
        }
        changed
    }

    /// Reads what systemd loaded (by stamp) for every unit listed, with a state or read before;
    /// gives the NAMEs whose copy changed.
    fn refresh_copies(&mut self, s: &impl Source) -> BTreeSet<String> {
        let mut names: BTreeSet<String> = self.files.keys().chain(self.loaded.keys()).cloned().collect();
        s.with_states(|units, _| names.extend(units.keys().cloned()));
        let mut changed = BTreeSet::new();
        for name in names {
            let copy = s.loaded(&name);
            if self.loaded.get(&name) != Some(&copy) {
                self.loaded.insert(name.clone(), copy);
                changed.insert(name);
            }
        }
        changed
    }

    /// Reads the update states again when the store wrote any since; gives the NAMEs whose
    /// state changed.
    fn refresh_updates(&mut self, s: &impl Source) -> BTreeSet<String> {
        // Counted before the read: a write during it is read again at the next listing.
        let written = s.updates_written();
        if self.updates_seen == Some(written) {
            return BTreeSet::new();
        }
        let updates = s.update_states();
        let changed = (self.updates.keys().chain(updates.keys()))
            .filter(|n| self.updates.get(*n) != updates.get(*n))
            .cloned()
            .collect();
        self.updates = updates;
        self.updates_seen = Some(written);
        changed
    }

    /// Builds the entries of `names` (of every unit with `all`) again.
    fn rebuild(&mut self, s: &impl Source, all: bool, mut names: BTreeSet<String>) {
        s.with_states(|units, live| {
            if all {
                names.extend(self.files.keys().cloned());
                names.extend(self.entries.keys().cloned());
                names.extend(units.keys().cloned());
            }
            if names.is_empty() {
                return;
            }
            for name in names {
                let state = units.get(&name);
                if !self.files.contains_key(&name) && !state.is_some_and(shown_without_file) {
                    self.entries.remove(&name);
                    continue;
                }
                if !self.loaded.contains_key(&name) {
                    let copy = s.loaded(&name);
                    self.loaded.insert(name.clone(), copy);
                }
                let def = self.files.get(&name);
                let loaded = self.loaded.get(&name).and_then(Option::as_deref);
                let mut v = view(&name, def, loaded, state, live.get(&name));
                if def.is_some() {
                    v.update = self.updates.get(&name).cloned();
                }
                let viewer = match (def, &v.error, UnitName::new(&name)) {
                    (Some(d), Some(_), Ok(n)) => viewer_error(&n, d),
                    _ => None,
                };
                self.entries.insert(name, Arc::new(Entry::new(v, viewer)));
            }
            self.json = [None, None];
            self.metrics = None;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};

    #[test]
    fn copies_are_read_while_a_reload_runs_and_once_after() {
        assert_eq!(Copies::default().take(), (true, Copies::Fresh), "read at the first listing");
        assert_eq!(Copies::Fresh.take(), (false, Copies::Fresh), "then trusted");
        assert_eq!(
            Copies::Reloading.take(),
            (true, Copies::Reloading),
            "read at every listing during a reload"
        );
        assert_eq!(Copies::Stale.take(), (true, Copies::Fresh), "and once after it");
    }

    #[test]
    fn what_the_watch_saw_becomes_work() {
        let mut p = Pending::default();
        p.seen(Seen::Unit("web".into()));
        assert!(p.files.contains("web") && !p.rescan && !p.all_views);
        p.seen(Seen::Reload);
        assert_eq!(p.copies, Copies::Reloading);
        p.seen(Seen::Everything);
        assert!(p.rescan && p.all_views);
    }

    /// The daemon's side, with files in a temporary directory and states set by the test. It
    /// counts what a listing reads.
    #[derive(Default)]
    struct Fake {
        parses: Cell<u32>,
        copies_read: Cell<u32>,
        cache: RefCell<HashMap<PathBuf, Definition>>,
        copies: RefCell<HashMap<String, String>>,
        written: Cell<u64>,
        updates: RefCell<HashMap<String, UnitUpdate>>,
        units: RefCell<BTreeMap<String, UnitState>>,
        live: RefCell<HashMap<String, Live>>,
    }

    impl Source for Fake {
        fn definition(&self, name: &UnitName, path: &Path, trust_stamp: bool) -> Option<Definition> {
            let stamp = super::super::file_stamp(path)?;
            if let Some(d) = self.cache.borrow().get(path).filter(|d| trust_stamp && d.stamp == stamp) {
                return Some(d.clone());
            }
            self.parses.set(self.parses.get() + 1);
            let d = super::super::parse_definition(name, path, stamp);
            self.cache.borrow_mut().insert(path.to_owned(), d.clone());
            Some(d)
        }
        fn loaded(&self, name: &str) -> Option<String> {
            self.copies_read.set(self.copies_read.get() + 1);
            self.copies.borrow().get(name).cloned()
        }
        fn updates_written(&self) -> u64 {
            self.written.get()
        }
        fn update_states(&self) -> HashMap<String, UnitUpdate> {
            self.updates.borrow().clone()
        }
        fn with_states<R>(
            &self,
            f: impl FnOnce(&BTreeMap<String, UnitState>, &HashMap<String, Live>) -> R,
        ) -> R {
            f(&self.units.borrow(), &self.live.borrow())
        }
    }

    const UNIT: &str = "[container]\nimage = \"busybox\"\nversion = \"1\"\n";

    fn entry(listing: &Listing, fake: &Fake, name: &str) -> Option<UnitView> {
        listing.current(fake).0.entries.get(name).map(|e| e.view.clone())
    }

    fn write(path: &Path, text: &str) {
        std::fs::write(path, text).expect("the temporary directory is writable");
    }

    #[test]
    fn a_listing_reads_only_what_changed_and_shows_every_change() {
        let root = tempfile::tempdir().expect("a temporary directory");
        let etc = root.path().join("etc");
        let usr = root.path().join("usr");
        std::fs::create_dir_all(&etc).expect("etc");
        std::fs::create_dir_all(root.path().join("systemd")).expect("the generator's parent");
        let generator = root.path().join("systemd/generator");
        write(&etc.join("a.toml"), &format!("description = \"one\"\n{UNIT}"));
        write(&etc.join("b.toml"), UNIT);
        let listing = Listing::new(vec![etc.clone(), usr.clone()], generator.clone());
        let fake = Fake::default();

        let a = entry(&listing, &fake, "a").expect("a is listed");
        assert_eq!(a.description.as_deref(), Some("one"));
        assert!(a.changed_on_disk, "valid and not loaded by systemd");
        assert!(entry(&listing, &fake, "b").is_some());
        let (parses, copies) = (fake.parses.get(), fake.copies_read.get());
        let first = listing.current(&fake).0.json(true);
        let again = listing.current(&fake).0.json(true);
        assert!(Arc::ptr_eq(&first, &again), "nothing changed: the same text, not rendered again");
        assert_eq!((fake.parses.get(), fake.copies_read.get()), (parses, copies), "and nothing read again");

        // A hand edit in place and one by rename: the next listing has them, nothing else is read.
        write(&etc.join("a.toml"), &format!("description = \"two\"\n{UNIT}"));
        assert_eq!(entry(&listing, &fake, "a").and_then(|v| v.description).as_deref(), Some("two"));
        assert_eq!(fake.parses.get(), parses + 1, "only the edited file is read");
        write(&etc.join(".a.toml.tmp"), &format!("description = \"three\"\n{UNIT}"));
        std::fs::rename(etc.join(".a.toml.tmp"), etc.join("a.toml")).expect("rename");
        assert_eq!(entry(&listing, &fake, "a").and_then(|v| v.description).as_deref(), Some("three"));
        // Same length and a stamp that may not move: read again all the same (the watch said so).
        write(&etc.join("a.toml"), &format!("description = \"thrEE\"\n{UNIT}"));
        assert_eq!(entry(&listing, &fake, "a").and_then(|v| v.description).as_deref(), Some("thrEE"));

        // An invalid edit, and what a viewer reads of its error.
        write(&etc.join("b.toml"), &format!("{UNIT}env = {{ DB_PASSWORD = \"hunter2\", N = 5 }}\n"));
        let b = entry(&listing, &fake, "b").expect("an invalid file is listed");
        assert!(!b.valid && b.error.as_deref().is_some_and(|e| e.contains("hunter2")));
        let mut l = listing.current(&fake).0;
        assert!(l.json(true).contains("hunter2"), "admins and operators read the file as written");
        assert!(!l.json(false).contains("hunter2"), "viewers do not: {}", l.json(false));
        assert!(l.json(false).contains("b.toml:4:"), "but they read where the error is");
        drop(l);

        // systemd's state, the live facts and updates, each told by its own sign.
        fake.units.borrow_mut().insert(
            "a".into(),
            UnitState { active_state: "active".into(), sub_state: "running".into(), ..UnitState::default() },
        );
        fake.live.borrow_mut().insert("a".into(), Live { memory_bytes: Some(4096), ..Live::default() });
        listing.unit_changed("a");
        let a = entry(&listing, &fake, "a").expect("a");
        assert_eq!((a.active_state.as_str(), a.memory_bytes), ("active", Some(4096)));
        assert!(listing.current(&fake).0.metrics().contains("containerctl_unit_active{unit=\"a\"} 1\n"));
        fake.updates
            .borrow_mut()
            .insert("a".into(), UnitUpdate { available: Some("2".into()), ..Default::default() });
        fake.written.set(1);
        let a = entry(&listing, &fake, "a").expect("a");
        assert_eq!(a.update.and_then(|u| u.available).as_deref(), Some("2"));
        assert!(listing
            .current(&fake)
            .0
            .metrics()
            .contains("containerctl_unit_update_available{unit=\"a\",version=\"2\"} 1\n"));
        assert_eq!(fake.parses.get(), parses + 4, "no file was read for any of these");

        // What systemd loaded: trusted until a reload; read at every listing while one runs.
        let text = std::fs::read_to_string(etc.join("a.toml")).expect("a.toml");
        fake.copies.borrow_mut().insert("a".into(), text.clone());
        assert!(entry(&listing, &fake, "a").is_some_and(|v| v.changed_on_disk), "no reload yet");
        std::fs::create_dir(&generator).expect("a reload makes the generator directory");
        assert!(entry(&listing, &fake, "a").is_some_and(|v| !v.changed_on_disk), "read during the reload");
        let during = fake.copies_read.get();
        let _ = entry(&listing, &fake, "a");
        assert!(fake.copies_read.get() > during, "read again while it runs");
        listing.reload_ended();
        let _ = entry(&listing, &fake, "a");
        let after = fake.copies_read.get();
        let _ = entry(&listing, &fake, "a");
        assert_eq!(fake.copies_read.get(), after, "trusted again once it ended");
        write(&etc.join("a.toml"), &format!("description = \"four\"\n{UNIT}"));
        assert!(entry(&listing, &fake, "a").is_some_and(|v| v.changed_on_disk), "edited after the reload");

        // Removed: gone, unless systemd still runs it; a directory made later is watched.
        std::fs::remove_file(etc.join("b.toml")).expect("rm b");
        assert!(entry(&listing, &fake, "b").is_none(), "removed by hand");
        std::fs::remove_file(etc.join("a.toml")).expect("rm a");
        let a = entry(&listing, &fake, "a").expect("a running unit without a file is listed");
        assert!(a.source.is_none() && a.active_state == "active");
        std::fs::create_dir_all(&usr).expect("usr");
        write(&usr.join("c.toml"), UNIT);
        assert!(entry(&listing, &fake, "c").is_some(), "a file in a directory made after the start");
        write(&etc.join("c.toml"), &format!("description = \"etc wins\"\n{UNIT}"));
        assert_eq!(entry(&listing, &fake, "c").and_then(|v| v.description).as_deref(), Some("etc wins"));
        std::fs::remove_file(etc.join("c.toml")).expect("rm etc/c");
        assert_eq!(
            entry(&listing, &fake, "c").and_then(|v| v.source),
            Some(usr.join("c.toml").display().to_string())
        );

        // A symlink's target lives elsewhere: its stamp is looked at by every listing.
        let target = root.path().join("elsewhere.toml");
        write(&target, UNIT);
        std::os::unix::fs::symlink(&target, etc.join("d.toml")).expect("symlink");
        assert!(entry(&listing, &fake, "d").is_some_and(|v| v.description.is_none()));
        write(&target, &format!("description = \"through the link\"\n{UNIT}"));
        assert_eq!(
            entry(&listing, &fake, "d").and_then(|v| v.description).as_deref(),
            Some("through the link")
        );
    }
}
