//! The daemon's SQLite store: unit revisions, lifecycle events and the audit trail.
//!
//! One database file and one module own every SQL statement of the project, so the schema, its
//! migrations and the durability settings can be read and reviewed in a single place and no
//! caller depends on table layout. Unit definitions are kept here in full, which is why every
//! connection runs with `synchronous=FULL`: an edit acknowledged to a user must survive a power
//! cut (node reports, replaced at every report interval, commit with `NORMAL`: `db/cluster.rs`).
//! Callers get plain row types and a [`DbError`] that names the file.

use std::fs::{DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};
use serde::Serialize;

mod cluster;
mod moves;
mod registries;
mod secrets;
mod updates;
pub use cluster::{JoinTokenRecord, NodeEvent, NodeRecord, Reported};
pub use moves::{MoveRecord, NewMove, Soaking, Unfinished};
pub use registries::RegistryUse;
pub use secrets::SecretRecord;
pub use updates::{BadVersion, CheckRecord, NewUpdate, UpdateRecord};

/// How long a statement waits for another connection's lock before failing with "busy".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Schema migrations: entry `i` takes `PRAGMA user_version` from `i` to `i + 1`. Append only;
/// never edit an entry that has shipped.
const MIGRATIONS: &[&str] = &[
    // 1: revisions, events, audit.
    "CREATE TABLE revisions (
        unit   TEXT    NOT NULL,
        rev    INTEGER NOT NULL CHECK (rev >= 1),
        at_ms  INTEGER NOT NULL,
        actor  TEXT    NOT NULL,
        action TEXT    NOT NULL,
        text   TEXT    NOT NULL,
        PRIMARY KEY (unit, rev)
    ) STRICT;
    CREATE TABLE events (
        id     INTEGER PRIMARY KEY,
        unit   TEXT    NOT NULL,
        at_ms  INTEGER NOT NULL,
        kind   TEXT    NOT NULL,
        detail TEXT    NOT NULL
    ) STRICT;
    CREATE INDEX events_by_unit ON events (unit, at_ms);
    CREATE INDEX events_by_kind ON events (unit, kind, at_ms);
    CREATE INDEX events_by_time ON events (at_ms);
    CREATE TABLE audit (
        id     INTEGER PRIMARY KEY,
        at_ms  INTEGER NOT NULL,
        actor  TEXT    NOT NULL,
        role   TEXT    NOT NULL,
        action TEXT    NOT NULL,
        unit   TEXT,
        before TEXT,
        after  TEXT,
        result TEXT    NOT NULL
    ) STRICT;
    CREATE INDEX audit_by_unit ON audit (unit, at_ms);
    CREATE INDEX audit_by_time ON audit (at_ms);",
    // 2: API tokens (JWT ids), revocable; one-time login tokens are marked used.
    "CREATE TABLE tokens (
        id            TEXT    PRIMARY KEY,
        name          TEXT    NOT NULL,
        role          TEXT    NOT NULL,
        created_at_ms INTEGER NOT NULL,
        expires_at_ms INTEGER NOT NULL,
        once          INTEGER NOT NULL DEFAULT 0,
        used          INTEGER NOT NULL DEFAULT 0,
        revoked       INTEGER NOT NULL DEFAULT 0
    ) STRICT;",
    // 3: federation: join tokens (secret stored as SHA-256), nodes and their history.
    "CREATE TABLE join_tokens (
        id            TEXT    PRIMARY KEY,
        secret_sha256 TEXT    NOT NULL,
        role          TEXT    NOT NULL,
        created_at_ms INTEGER NOT NULL,
        expires_at_ms INTEGER NOT NULL,
        uses          INTEGER NOT NULL CHECK (uses >= 1),
        used          INTEGER NOT NULL DEFAULT 0,
        revoked       INTEGER NOT NULL DEFAULT 0
    ) STRICT;
    CREATE TABLE nodes (
        id            TEXT    PRIMARY KEY,
        hostname      TEXT    NOT NULL,
        addr          TEXT    NOT NULL,
        role          TEXT    NOT NULL,
        secret_sha256 TEXT    NOT NULL,
        joined_at_ms  INTEGER NOT NULL,
        last_seen_ms  INTEGER NOT NULL,
        state         TEXT    NOT NULL,
        swarm_node_id TEXT,
        inventory     TEXT    NOT NULL DEFAULT '{}'
    ) STRICT;
    CREATE TABLE node_history (
        id      INTEGER PRIMARY KEY,
        node_id TEXT    NOT NULL,
        at_ms   INTEGER NOT NULL,
        kind    TEXT    NOT NULL,
        detail  TEXT    NOT NULL
    ) STRICT;
    CREATE INDEX node_history_by_node ON node_history (node_id, at_ms);",
    // 4: when each stored registry credential was last verified and last used (the credentials
    // themselves are in registries.json, never here).
    "CREATE TABLE registry_use (
        registry     TEXT    PRIMARY KEY,
        verified_ms  INTEGER,
        last_used_ms INTEGER
    ) STRICT;",
    // 5: secrets' sizes and dates (their values are files of the secret store, never here).
    "CREATE TABLE secrets (
        name          TEXT    PRIMARY KEY,
        size          INTEGER NOT NULL,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        updated_by    TEXT    NOT NULL
    ) STRICT;",
    // 6: updates (each attempt and its outcome), versions that were rolled back, and the last
    // check of each unit.
    "CREATE TABLE updates (
        id            INTEGER PRIMARY KEY,
        unit          TEXT    NOT NULL,
        started_ms    INTEGER NOT NULL,
        ended_ms      INTEGER,
        actor         TEXT    NOT NULL,
        image         TEXT    NOT NULL,
        from_version  TEXT    NOT NULL,
        from_digest   TEXT,
        from_image_id TEXT,
        to_version    TEXT    NOT NULL,
        to_digest     TEXT,
        outcome       TEXT    NOT NULL,
        reason        TEXT    NOT NULL DEFAULT ''
    ) STRICT;
    CREATE INDEX updates_by_unit ON updates (unit, id);
    CREATE TABLE bad_versions (
        unit    TEXT    NOT NULL,
        image   TEXT    NOT NULL,
        version TEXT    NOT NULL,
        digest  TEXT    NOT NULL,
        at_ms   INTEGER NOT NULL,
        reason  TEXT    NOT NULL,
        PRIMARY KEY (unit, image, version)
    ) STRICT;
    CREATE TABLE update_checks (
        unit      TEXT    PRIMARY KEY,
        at_ms     INTEGER NOT NULL,
        image     TEXT    NOT NULL,
        current   TEXT    NOT NULL,
        available TEXT,
        error     TEXT
    ) STRICT;",
    // 7: moves, on both sides (`side` is `source` or `target`), with their outcome.
    "CREATE TABLE moves (
        id          INTEGER PRIMARY KEY,
        unit        TEXT    NOT NULL,
        side        TEXT    NOT NULL,
        peer        TEXT    NOT NULL,
        actor       TEXT    NOT NULL,
        warm        INTEGER NOT NULL,
        started_ms  INTEGER NOT NULL,
        ended_ms    INTEGER,
        state       TEXT    NOT NULL,
        step        TEXT    NOT NULL DEFAULT '',
        bytes       INTEGER NOT NULL DEFAULT 0,
        downtime_ms INTEGER,
        detail      TEXT    NOT NULL DEFAULT ''
    ) STRICT;
    CREATE INDEX moves_by_state ON moves (state, id);",
    // 8: what a source needs to settle or resume a move after containerctld restarted: the
    // target's move id, whether the unit ran before the stop, the unit text's sum (JSON).
    "ALTER TABLE moves ADD COLUMN resume TEXT;",
    // 9: when a source's copy of a moved unit goes (the end of the soak, ms since the epoch), so
    // that a restart during the soak resumes it; NULL once the soak ended.
    "ALTER TABLE moves ADD COLUMN soak_until_ms INTEGER;",
];

/// An API token as recorded (its secret is never stored: only its id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenRecord {
    pub id: String,
    pub name: String,
    pub role: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub once: bool,
    pub used: bool,
    pub revoked: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot create directory {path}: {source}")]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error("cannot create database {path}: {source}")]
    CreateFile { path: PathBuf, source: std::io::Error },
    #[error("cannot open database {path}: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    #[error(
        "database {path} has schema version {found}, newer than version {supported} that this \
         containerctl knows: upgrade containerctl, or move the file aside to start a new history"
    )]
    TooNew { path: PathBuf, found: i64, supported: i64 },
    #[error("cannot migrate database {path} to schema version {version}: {source}")]
    Migrate { path: PathBuf, version: i64, source: rusqlite::Error },
    #[error("database {path}: {source}")]
    Sql { path: PathBuf, source: rusqlite::Error },
}

/// One stored version of a unit file, without its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RevisionInfo {
    pub rev: u32,
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    /// Length of the text in bytes.
    pub size: u64,
}

/// One stored version of a unit file. A removal is a revision with action "rm" and empty text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = RevisionText)]
pub struct Revision {
    pub rev: u32,
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub unit: String,
    pub at_ms: i64,
    pub kind: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub id: i64,
    pub unit: String,
    pub at_ms: i64,
    pub kind: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAudit {
    pub at_ms: i64,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub unit: Option<String>,
    pub before: Option<String>,
    pub after: Option<String>,
    pub result: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at_ms: i64,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub unit: Option<String>,
    pub before: Option<String>,
    pub after: Option<String>,
    pub result: String,
}

/// How much history [`Db::prune`] keeps. `u32::MAX` and `i64::MAX` mean "no limit".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// At least 1 is always kept: the latest revision is the unit's current definition.
    pub revisions_per_unit: u32,
    pub events_per_unit: u32,
    pub event_max_age_ms: i64,
    pub audit_max_rows: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            revisions_per_unit: 100,
            events_per_unit: 1000,
            event_max_age_ms: 30 * 24 * 60 * 60 * 1000,
            audit_max_rows: 100_000,
        }
    }
}

/// Rows deleted by one [`Db::prune`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    pub revisions: u64,
    pub events: u64,
    pub audit: u64,
    pub updates: u64,
}

/// The open store. `Send` but not `Sync`: share it behind a mutex, and call it off the async
/// executor (`spawn_blocking`) since every commit waits for an fsync.
#[derive(Debug)]
pub struct Db {
    conn: Connection,
    path: PathBuf,
    /// Counts the writes of updates and update checks, so that the daemon's unit list reads
    /// them again only after one (`updates_written`).
    updates_written: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Db {
    /// Opens or creates the database at `path` and brings its schema up to date. A new file is
    /// created with mode 0600 and a missing parent directory with 0700; existing ones keep their
    /// modes.
    pub fn open(path: &Path) -> Result<Db, DbError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            if !parent.exists() {
                DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent)
                    .map_err(|source| DbError::CreateDir { path: parent.to_path_buf(), source })?;
            }
        }
        // SQLite would create the file with 0644 minus the umask; create it first with 0600.
        // Its -wal and -shm files inherit the database file's mode.
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|source| DbError::CreateFile { path: path.to_path_buf(), source })?;
        let conn =
            Connection::open(path).map_err(|source| DbError::Open { path: path.to_path_buf(), source })?;
        Db::init(conn, path.to_path_buf())
    }

    /// A private database that lives as long as the value, for tests.
    pub fn open_in_memory() -> Result<Db, DbError> {
        let path = PathBuf::from(":memory:");
        let conn =
            Connection::open_in_memory().map_err(|source| DbError::Open { path: path.clone(), source })?;
        Db::init(conn, path)
    }

    fn init(mut conn: Connection, path: PathBuf) -> Result<Db, DbError> {
        let setup = |conn: &Connection| -> rusqlite::Result<()> {
            conn.busy_timeout(BUSY_TIMEOUT)?;
            // journal_mode answers with the mode in effect ("memory" for an in-memory database).
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.pragma_update(None, "foreign_keys", true)
        };
        setup(&conn).map_err(|source| DbError::Open { path: path.clone(), source })?;
        migrate(&mut conn, &path, MIGRATIONS)?;
        Ok(Db { conn, path, updates_written: Default::default() })
    }

    /// The count of writes of updates and update checks, shared: it grows after each one.
    pub fn updates_written(&self) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
        self.updates_written.clone()
    }

    /// Counts one write of updates or update checks (after it happened).
    fn wrote_updates(&self) {
        self.updates_written.fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    /// The file this store was opened from (":memory:" for an in-memory one).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> DbError + '_ {
        |source| DbError::Sql { path: self.path.clone(), source }
    }

    fn write_tx(&mut self) -> Result<(Transaction<'_>, &Path), DbError> {
        let path = &self.path;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|source| DbError::Sql { path: path.clone(), source })?;
        Ok((tx, path))
    }

    /// Stores `text` as the next revision of `unit` and returns its number (1, 2, 3… per unit),
    /// or `None` without writing anything when `text` equals the latest revision's text.
    /// Record a removal with action "rm" and empty text.
    pub fn record_revision(
        &mut self,
        unit: &str,
        actor: &str,
        action: &str,
        text: &str,
        at_ms: i64,
    ) -> Result<Option<u32>, DbError> {
        let (tx, path) = self.write_tx()?;
        let err = |source| DbError::Sql { path: path.to_path_buf(), source };
        let latest: Option<(u32, String)> = tx
            .query_row(
                "SELECT rev, text FROM revisions WHERE unit = ?1 ORDER BY rev DESC LIMIT 1",
                [unit],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(err)?;
        let rev = match latest {
            Some((_, latest_text)) if latest_text == text => return Ok(None),
            Some((rev, _)) => rev
                .checked_add(1)
                .ok_or_else(|| err(rusqlite::Error::IntegralValueOutOfRange(0, rev.into())))?,
            None => 1,
        };
        tx.execute(
            "INSERT INTO revisions (unit, rev, at_ms, actor, action, text) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![unit, rev, at_ms, actor, action, text],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(Some(rev))
    }

    /// Every unit that has at least one revision, by name.
    pub fn revision_units(&self) -> Result<Vec<String>, DbError> {
        let query = || -> rusqlite::Result<Vec<String>> {
            self.conn
                .prepare_cached("SELECT DISTINCT unit FROM revisions ORDER BY unit")?
                .query_map([], |row| row.get(0))?
                .collect()
        };
        query().map_err(self.err())
    }

    /// Every stored revision of `unit`, newest first.
    pub fn revisions(&self, unit: &str) -> Result<Vec<RevisionInfo>, DbError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT rev, at_ms, actor, action, length(CAST(text AS BLOB))
                 FROM revisions WHERE unit = ?1 ORDER BY rev DESC",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([unit], |row| {
                Ok(RevisionInfo {
                    rev: row.get(0)?,
                    at_ms: row.get(1)?,
                    actor: row.get(2)?,
                    action: row.get(3)?,
                    // length() is never negative.
                    size: u64::try_from(row.get::<_, i64>(4)?).unwrap_or(0),
                })
            })
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    pub fn revision(&self, unit: &str, rev: u32) -> Result<Option<Revision>, DbError> {
        self.conn
            .query_row(
                "SELECT rev, at_ms, actor, action, text FROM revisions WHERE unit = ?1 AND rev = ?2",
                params![unit, rev],
                revision_from_row,
            )
            .optional()
            .map_err(self.err())
    }

    pub fn latest_revision(&self, unit: &str) -> Result<Option<Revision>, DbError> {
        self.conn
            .query_row(
                "SELECT rev, at_ms, actor, action, text FROM revisions WHERE unit = ?1
                 ORDER BY rev DESC LIMIT 1",
                [unit],
                revision_from_row,
            )
            .optional()
            .map_err(self.err())
    }

    /// Stores a lifecycle event and returns its id.
    pub fn record_event(&mut self, e: &NewEvent) -> Result<i64, DbError> {
        self.conn
            .prepare_cached("INSERT INTO events (unit, at_ms, kind, detail) VALUES (?1, ?2, ?3, ?4)")
            .and_then(|mut stmt| stmt.insert(params![e.unit, e.at_ms, e.kind, e.detail]))
            .map_err(self.err())
    }

    /// The latest `limit` events of `unit` (or of all units), newest first.
    pub fn events(&self, unit: Option<&str>, limit: u32) -> Result<Vec<Event>, DbError> {
        let from_row = |row: &Row<'_>| {
            Ok(Event {
                id: row.get(0)?,
                unit: row.get(1)?,
                at_ms: row.get(2)?,
                kind: row.get(3)?,
                detail: row.get(4)?,
            })
        };
        let query = || -> rusqlite::Result<Vec<Event>> {
            match unit {
                Some(unit) => self
                    .conn
                    .prepare_cached(
                        "SELECT id, unit, at_ms, kind, detail FROM events WHERE unit = ?1
                         ORDER BY at_ms DESC, id DESC LIMIT ?2",
                    )?
                    .query_map(params![unit, limit], from_row)?
                    .collect(),
                None => self
                    .conn
                    .prepare_cached(
                        "SELECT id, unit, at_ms, kind, detail FROM events
                         ORDER BY at_ms DESC, id DESC LIMIT ?1",
                    )?
                    .query_map([limit], from_row)?
                    .collect(),
            }
        };
        query().map_err(self.err())
    }

    /// When the latest event of `kind` for `unit` happened.
    pub fn last_event_at(&self, unit: &str, kind: &str) -> Result<Option<i64>, DbError> {
        self.conn
            .query_row("SELECT max(at_ms) FROM events WHERE unit = ?1 AND kind = ?2", [unit, kind], |row| {
                row.get(0)
            })
            .map_err(self.err())
    }

    /// Whether an event of `kind` for `unit` at exactly `at_ms` is already stored, so that
    /// replaying Docker's events after a reconcile does not record them twice.
    pub fn has_event(&self, unit: &str, kind: &str, at_ms: i64) -> Result<bool, DbError> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM events WHERE unit = ?1 AND kind = ?2 AND at_ms = ?3)",
                params![unit, kind, at_ms],
                |row| row.get(0),
            )
            .map_err(self.err())
    }

    /// Stores one audit entry and returns its id.
    pub fn record_audit(&mut self, a: &NewAudit) -> Result<i64, DbError> {
        self.conn
            .prepare_cached(
                "INSERT INTO audit (at_ms, actor, role, action, unit, before, after, result)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut stmt| {
                stmt.insert(params![a.at_ms, a.actor, a.role, a.action, a.unit, a.before, a.after, a.result])
            })
            .map_err(self.err())
    }

    /// The latest `limit` audit entries about `unit` (or all of them), newest first.
    pub fn audit(&self, unit: Option<&str>, limit: u32) -> Result<Vec<AuditEntry>, DbError> {
        let from_row = |row: &Row<'_>| {
            Ok(AuditEntry {
                id: row.get(0)?,
                at_ms: row.get(1)?,
                actor: row.get(2)?,
                role: row.get(3)?,
                action: row.get(4)?,
                unit: row.get(5)?,
                before: row.get(6)?,
                after: row.get(7)?,
                result: row.get(8)?,
            })
        };
        let query = || -> rusqlite::Result<Vec<AuditEntry>> {
            match unit {
                Some(unit) => self
                    .conn
                    .prepare_cached(
                        "SELECT id, at_ms, actor, role, action, unit, before, after, result
                         FROM audit WHERE unit = ?1 ORDER BY at_ms DESC, id DESC LIMIT ?2",
                    )?
                    .query_map(params![unit, limit], from_row)?
                    .collect(),
                None => self
                    .conn
                    .prepare_cached(
                        "SELECT id, at_ms, actor, role, action, unit, before, after, result
                         FROM audit ORDER BY at_ms DESC, id DESC LIMIT ?1",
                    )?
                    .query_map([limit], from_row)?
                    .collect(),
            }
        };
        query().map_err(self.err())
    }

    pub fn record_token(&mut self, t: &TokenRecord) -> Result<(), DbError> {
        self.conn
            .execute(
                "INSERT INTO tokens (id, name, role, created_at_ms, expires_at_ms, once, used, revoked)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![t.id, t.name, t.role, t.created_at_ms, t.expires_at_ms, t.once, t.used, t.revoked],
            )
            .map(|_| ())
            .map_err(self.err())
    }

    /// Every token, newest first.
    pub fn tokens(&self) -> Result<Vec<TokenRecord>, DbError> {
        let query = || -> rusqlite::Result<Vec<TokenRecord>> {
            self.conn
                .prepare_cached(
                    "SELECT id, name, role, created_at_ms, expires_at_ms, once, used, revoked
                     FROM tokens ORDER BY created_at_ms DESC, id",
                )?
                .query_map([], |row| {
                    Ok(TokenRecord {
                        id: row.get(0)?,
                        name: row.get(1)?,
                        role: row.get(2)?,
                        created_at_ms: row.get(3)?,
                        expires_at_ms: row.get(4)?,
                        once: row.get(5)?,
                        used: row.get(6)?,
                        revoked: row.get(7)?,
                    })
                })?
                .collect()
        };
        query().map_err(self.err())
    }

    /// Revokes token `id`; false when there is no such token.
    pub fn revoke_token(&mut self, id: &str) -> Result<bool, DbError> {
        self.conn
            .execute("UPDATE tokens SET revoked = 1 WHERE id = ?1", [id])
            .map(|n| n > 0)
            .map_err(self.err())
    }

    /// Marks a one-time token used; false when it was used (or revoked) already.
    pub fn use_token(&mut self, id: &str) -> Result<bool, DbError> {
        self.conn
            .execute("UPDATE tokens SET used = 1 WHERE id = ?1 AND used = 0 AND revoked = 0", [id])
            .map(|n| n > 0)
            .map_err(self.err())
    }

    /// Deletes the oldest rows beyond `r`'s limits, all in one transaction. The latest revision
    /// of every unit is always kept.
    pub fn prune(&mut self, r: &Retention, now_ms: i64) -> Result<PruneReport, DbError> {
        let (tx, path) = self.write_tx()?;
        let err = |source| DbError::Sql { path: path.to_path_buf(), source };
        let revisions = tx
            .execute(
                "DELETE FROM revisions WHERE rowid IN (
                    SELECT rid FROM (
                        SELECT rowid AS rid,
                               row_number() OVER (PARTITION BY unit ORDER BY rev DESC) AS n
                        FROM revisions)
                    WHERE n > ?1)",
                [r.revisions_per_unit.max(1)],
            )
            .map_err(err)?;
        let expired = tx
            .execute("DELETE FROM events WHERE at_ms < ?1", [now_ms.saturating_sub(r.event_max_age_ms)])
            .map_err(err)?;
        let excess = tx
            .execute(
                "DELETE FROM events WHERE id IN (
                    SELECT id FROM (
                        SELECT id,
                               row_number() OVER (PARTITION BY unit ORDER BY at_ms DESC, id DESC) AS n
                        FROM events)
                    WHERE n > ?1)",
                [r.events_per_unit],
            )
            .map_err(err)?;
        let audit = tx
            .execute(
                "DELETE FROM audit WHERE id IN (
                    SELECT id FROM audit ORDER BY at_ms DESC, id DESC LIMIT -1 OFFSET ?1)",
                [r.audit_max_rows],
            )
            .map_err(err)?;
        // As many updates per unit as revisions (each made one), and at least the two an update
        // looks back on (the image kept by the one before).
        let updates = tx
            .execute(
                "DELETE FROM updates WHERE id IN (
                    SELECT id FROM (
                        SELECT id, row_number() OVER (PARTITION BY unit ORDER BY id DESC) AS n
                        FROM updates)
                    WHERE n > ?1)",
                [r.revisions_per_unit.max(2)],
            )
            .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(PruneReport {
            revisions: revisions as u64,
            events: (expired + excess) as u64,
            audit: audit as u64,
            updates: updates as u64,
        })
    }
}

fn revision_from_row(row: &Row<'_>) -> rusqlite::Result<Revision> {
    Ok(Revision {
        rev: row.get(0)?,
        at_ms: row.get(1)?,
        actor: row.get(2)?,
        action: row.get(3)?,
        text: row.get(4)?,
    })
}

/// Applies the migrations after the database's `user_version`, each in its own transaction, and
/// refuses a database written by a newer containerctl.
fn migrate(conn: &mut Connection, path: &Path, migrations: &[&str]) -> Result<(), DbError> {
    let sql = |source| DbError::Sql { path: path.to_path_buf(), source };
    let supported = migrations.len() as i64;
    loop {
        // IMMEDIATE takes the write lock before reading the version, so two processes opening
        // the same file cannot both apply a migration.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql)?;
        let found: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0)).map_err(sql)?;
        if found > supported {
            return Err(DbError::TooNew { path: path.to_path_buf(), found, supported });
        }
        let Some(step) = usize::try_from(found).ok().and_then(|i| migrations.get(i)) else {
            return Ok(());
        };
        let version = found + 1;
        let failed = |source| DbError::Migrate { path: path.to_path_buf(), version, source };
        tx.execute_batch(step).map_err(failed)?;
        tx.pragma_update(None, "user_version", version).map_err(failed)?;
        tx.commit().map_err(failed)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).map(|m| m.permissions().mode() & 0o777).unwrap_or(0)
    }

    fn event(unit: &str, at_ms: i64, kind: &str) -> NewEvent {
        NewEvent { unit: unit.into(), at_ms, kind: kind.into(), detail: format!("{kind} at {at_ms}") }
    }

    fn audit_entry(unit: Option<&str>, at_ms: i64, action: &str) -> NewAudit {
        NewAudit {
            at_ms,
            actor: "uid 1000 (alice)".into(),
            role: "operator".into(),
            action: action.into(),
            unit: unit.map(Into::into),
            before: None,
            after: Some("after".into()),
            result: "ok".into(),
        }
    }

    fn file_db() -> (tempfile::TempDir, PathBuf, Db) {
        let dir = tempfile::tempdir().expect("a temporary directory is available");
        let path = dir.path().join("containerctl.db");
        let db = Db::open(&path).expect("a new database opens");
        (dir, path, db)
    }

    #[test]
    fn new_file_and_directory_are_private() {
        let dir = tempfile::tempdir().expect("a temporary directory is available");
        let path = dir.path().join("state/sub/containerctl.db");
        let mut db = Db::open(&path).expect("a new database opens");
        db.record_revision("web", "root", "new", "x", 1).expect("write succeeds");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("state")), 0o700);
        assert_eq!(mode(&dir.path().join("state/sub")), 0o700);
        let wal = dir.path().join("state/sub/containerctl.db-wal");
        assert!(wal.exists(), "a WAL file exists while the database is open");
        assert_eq!(mode(&wal), 0o600);
        assert_eq!(db.path(), path);
    }

    #[test]
    fn durability_settings_are_in_effect() {
        let (_dir, _path, db) = file_db();
        let pragma = |name: &str| -> String {
            db.conn
                .pragma_query_value(None, name, |row| row.get::<_, rusqlite::types::Value>(0))
                .map(|v| match v {
                    rusqlite::types::Value::Integer(i) => i.to_string(),
                    rusqlite::types::Value::Text(t) => t,
                    other => format!("{other:?}"),
                })
                .expect("pragma is readable")
        };
        assert_eq!(pragma("journal_mode"), "wal");
        assert_eq!(pragma("synchronous"), "2", "2 is FULL");
        assert_eq!(pragma("foreign_keys"), "1");
        assert_eq!(pragma("busy_timeout"), BUSY_TIMEOUT.as_millis().to_string());
        assert_eq!(pragma("user_version"), MIGRATIONS.len().to_string());
    }

    #[test]
    fn data_survives_close_and_reopen() {
        let (_dir, path, mut db) = file_db();
        db.record_revision("web", "root", "new", "a = 1\n", 10).expect("write succeeds");
        let event_id = db.record_event(&event("web", 20, "started")).expect("write succeeds");
        let audit_id = db.record_audit(&audit_entry(Some("web"), 30, "start")).expect("write succeeds");
        drop(db);

        let mut db = Db::open(&path).expect("an existing database opens again");
        let rev = db.latest_revision("web").expect("read succeeds").expect("revision 1 survived");
        assert_eq!((rev.rev, rev.text.as_str(), rev.at_ms), (1, "a = 1\n", 10));
        let events = db.events(Some("web"), 10).expect("read succeeds");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].id, event_id);
        let audit = db.audit(None, 10).expect("read succeeds");
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].id, audit_id);
        assert_eq!(audit[0].after.as_deref(), Some("after"));
        assert_eq!(db.record_revision("web", "root", "edit", "a = 2\n", 40).expect("write"), Some(2));
    }

    #[test]
    fn revisions_are_numbered_per_unit_and_unchanged_text_records_nothing() {
        let (_dir, _path, mut db) = file_db();
        assert_eq!(db.record_revision("web", "root", "new", "v1", 1).expect("write"), Some(1));
        assert_eq!(db.record_revision("web", "alice", "edit", "v2 é", 2).expect("write"), Some(2));
        assert_eq!(db.record_revision("web", "alice", "set", "v2 é", 3).expect("write"), None);
        assert_eq!(db.record_revision("db", "root", "import", "v1", 4).expect("write"), Some(1));
        assert_eq!(db.record_revision("web", "bob", "revert", "v1", 5).expect("write"), Some(3));

        let list = db.revisions("web").expect("read succeeds");
        let summary: Vec<_> = list.iter().map(|r| (r.rev, r.action.as_str(), r.size)).collect();
        assert_eq!(summary, [(3, "revert", 2), (2, "edit", 5), (1, "new", 2)]);
        assert_eq!(list[1].actor, "alice");
        assert_eq!(list[1].at_ms, 2);

        let two = db.revision("web", 2).expect("read succeeds").expect("revision 2 exists");
        assert_eq!(two.text, "v2 é");
        assert_eq!(db.revision("web", 9).expect("read succeeds"), None);
        assert_eq!(db.latest_revision("web").expect("read").map(|r| r.rev), Some(3));
        assert_eq!(db.latest_revision("none").expect("read"), None);
        assert!(db.revisions("none").expect("read").is_empty());
        assert_eq!(db.revision_units().expect("read"), vec!["db".to_owned(), "web".to_owned()]);
    }

    #[test]
    fn rm_keeps_history() {
        let (_dir, _path, mut db) = file_db();
        db.record_revision("web", "root", "new", "v1", 1).expect("write");
        db.record_revision("web", "root", "edit", "v2", 2).expect("write");
        assert_eq!(db.record_revision("web", "root", "rm", "", 3).expect("write"), Some(3));
        assert_eq!(db.record_revision("web", "root", "rm", "", 4).expect("write"), None);

        let latest = db.latest_revision("web").expect("read").expect("the removal is a revision");
        assert_eq!((latest.action.as_str(), latest.text.as_str()), ("rm", ""));
        assert_eq!(db.revision("web", 1).expect("read").map(|r| r.text), Some("v1".into()));
        assert_eq!(db.record_revision("web", "root", "new", "v1", 5).expect("write"), Some(4));
    }

    #[test]
    fn events_are_newest_first_filtered_and_limited() {
        let (_dir, _path, mut db) = file_db();
        // Recorded out of order, as a reconcile replaying Docker's events would.
        for (unit, at, kind) in
            [("web", 30, "exited"), ("web", 10, "started"), ("db", 20, "started"), ("web", 20, "ready")]
        {
            db.record_event(&event(unit, at, kind)).expect("write");
        }
        let web: Vec<_> =
            db.events(Some("web"), 10).expect("read").into_iter().map(|e| (e.at_ms, e.kind)).collect();
        assert_eq!(web, [(30, "exited".into()), (20, "ready".into()), (10, "started".into())]);

        let all = db.events(None, 3).expect("read");
        let all: Vec<_> = all.iter().map(|e| (e.unit.as_str(), e.at_ms)).collect();
        assert_eq!(all, [("web", 30), ("web", 20), ("db", 20)]);
        assert_eq!(db.events(Some("web"), 1).expect("read").len(), 1);
        assert!(db.events(Some("none"), 10).expect("read").is_empty());

        assert_eq!(db.last_event_at("web", "started").expect("read"), Some(10));
        assert_eq!(db.last_event_at("web", "pulled").expect("read"), None);
        assert!(db.has_event("web", "ready", 20).expect("read"));
        assert!(!db.has_event("web", "ready", 21).expect("read"));
        assert!(!db.has_event("db", "ready", 20).expect("read"));
    }

    #[test]
    fn audit_is_newest_first_filtered_and_limited() {
        let (_dir, _path, mut db) = file_db();
        let first = db.record_audit(&audit_entry(Some("web"), 10, "edit")).expect("write");
        let second = db.record_audit(&audit_entry(None, 10, "token-create")).expect("write");
        let mut failed = audit_entry(Some("web"), 20, "start");
        failed.result = "unit web is protected".into();
        failed.before = Some("before".into());
        db.record_audit(&failed).expect("write");

        let all = db.audit(None, 10).expect("read");
        let actions: Vec<_> = all.iter().map(|a| a.action.as_str()).collect();
        assert_eq!(actions, ["start", "token-create", "edit"]);
        assert!(second > first);
        assert_eq!(all[0].result, "unit web is protected");
        assert_eq!(all[0].before.as_deref(), Some("before"));
        assert_eq!(all[1].unit, None);

        let web: Vec<_> = db.audit(Some("web"), 1).expect("read").into_iter().map(|a| a.action).collect();
        assert_eq!(web, ["start"]);
        assert_eq!(db.audit(Some("web"), 10).expect("read").len(), 2);
    }

    #[test]
    fn prune_keeps_the_latest_revision_and_respects_each_limit() {
        let (_dir, _path, mut db) = file_db();
        for i in 1..=5 {
            db.record_revision("web", "root", "edit", &format!("v{i}"), i).expect("write");
        }
        db.record_revision("db", "root", "new", "only", 1).expect("write");
        db.record_revision("gone", "root", "new", "v1", 1).expect("write");
        db.record_revision("gone", "root", "rm", "", 2).expect("write");
        for at in 0..10 {
            db.record_event(&event("web", 1_000 + at, "health")).expect("write");
        }
        db.record_event(&event("db", 10, "started")).expect("write");
        db.record_event(&event("db", 1_005, "ready")).expect("write");
        for at in 0..6 {
            db.record_audit(&audit_entry(Some("web"), at, "edit")).expect("write");
        }

        let keep_all = Retention {
            revisions_per_unit: u32::MAX,
            events_per_unit: u32::MAX,
            event_max_age_ms: i64::MAX,
            audit_max_rows: u32::MAX,
        };
        assert_eq!(db.prune(&keep_all, 2_000).expect("prune"), PruneReport::default());

        let r = Retention {
            revisions_per_unit: 2,
            events_per_unit: 3,
            event_max_age_ms: 1_000,
            audit_max_rows: 4,
        };
        let report = db.prune(&r, 2_000).expect("prune");
        // web: 3 old revisions; events: db@10 by age, then 7 of web's 10 by count; audit: 2.
        assert_eq!(report, PruneReport { revisions: 3, events: 8, audit: 2, updates: 0 });
        let revs: Vec<_> = db.revisions("web").expect("read").iter().map(|r| r.rev).collect();
        assert_eq!(revs, [5, 4]);
        assert_eq!(db.revisions("gone").expect("read").len(), 2);
        let web: Vec<_> = db.events(Some("web"), 100).expect("read").iter().map(|e| e.at_ms).collect();
        assert_eq!(web, [1_009, 1_008, 1_007]);
        let db_events: Vec<_> = db.events(Some("db"), 100).expect("read").iter().map(|e| e.at_ms).collect();
        assert_eq!(db_events, [1_005]);
        let audit: Vec<_> = db.audit(None, 100).expect("read").iter().map(|a| a.at_ms).collect();
        assert_eq!(audit, [5, 4, 3, 2]);

        let nothing =
            Retention { revisions_per_unit: 0, events_per_unit: 0, event_max_age_ms: 0, audit_max_rows: 0 };
        let report = db.prune(&nothing, 2_000).expect("prune");
        assert_eq!(report, PruneReport { revisions: 2, events: 4, audit: 4, updates: 0 });
        for unit in ["web", "db", "gone"] {
            assert_eq!(db.revisions(unit).expect("read").len(), 1, "latest revision of {unit} kept");
        }
        assert_eq!(db.latest_revision("web").expect("read").map(|r| r.text), Some("v5".into()));
        assert_eq!(db.record_revision("web", "root", "edit", "v6", 6).expect("write"), Some(6));
    }

    #[test]
    fn default_retention() {
        let r = Retention::default();
        assert_eq!((r.revisions_per_unit, r.events_per_unit, r.audit_max_rows), (100, 1000, 100_000));
        assert_eq!(r.event_max_age_ms, 2_592_000_000);
    }

    #[test]
    fn a_newer_schema_is_refused_naming_the_file_and_versions() {
        let (_dir, path, db) = file_db();
        let future = MIGRATIONS.len() as i64 + 1;
        db.conn.pragma_update(None, "user_version", future).expect("user_version is writable");
        drop(db);

        let err = Db::open(&path).expect_err("a database from a newer containerctl is refused");
        assert!(matches!(err, DbError::TooNew { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains(&format!("version {future}")), "{message}");
        assert!(message.contains(&format!("version {}", MIGRATIONS.len())), "{message}");
    }

    #[test]
    fn a_failing_migration_changes_nothing() {
        let dir = tempfile::tempdir().expect("a temporary directory is available");
        let path = dir.path().join("containerctl.db");
        let mut conn = Connection::open(&path).expect("sqlite opens");
        let steps =
            ["CREATE TABLE a (x INTEGER) STRICT;", "CREATE TABLE b (x INTEGER); SELECT * FROM nowhere;"];
        let err = migrate(&mut conn, &path, &steps).expect_err("the second step fails");
        assert!(matches!(err, DbError::Migrate { version: 2, .. }), "{err:?}");
        assert!(err.to_string().contains(&path.display().to_string()));
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).expect("read");
        assert_eq!(version, 1);
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema WHERE name IN ('a', 'b')", [], |r| r.get(0))
            .expect("read");
        assert_eq!(tables, 1, "table b was rolled back with its step");
    }

    #[test]
    fn in_memory_database_works() {
        let mut db = Db::open_in_memory().expect("an in-memory database opens");
        assert_eq!(db.record_revision("web", "root", "new", "v1", 1).expect("write"), Some(1));
        assert_eq!(db.path(), Path::new(":memory:"));
    }

    #[test]
    fn an_unwritable_location_names_the_path() {
        let dir = tempfile::tempdir().expect("a temporary directory is available");
        let file = dir.path().join("file");
        std::fs::write(&file, "").expect("write");
        let path = file.join("containerctl.db");
        let err = Db::open(&path).expect_err("a file is not a directory");
        assert!(err.to_string().contains(&path.display().to_string()), "{err}");
    }
}
