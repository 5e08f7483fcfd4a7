//! Updates: each attempt and its outcome, the versions that were rolled back (skipped by
//! `update --check` and `--all`), and the last check's answer per unit.

use rusqlite::{params, Row};

use super::{Db, DbError};

/// One update attempt as recorded when it starts; its outcome is filled in when it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUpdate {
    pub unit: String,
    pub started_ms: i64,
    pub actor: String,
    pub image: String,
    pub from_version: String,
    /// The digest the previous container ran (what a rollback pins).
    pub from_digest: Option<String>,
    /// The image ID the previous container ran: kept on the host until a newer update succeeds.
    pub from_image_id: Option<String>,
    pub to_version: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateRecord {
    pub id: i64,
    /// What was recorded when it started.
    pub start: NewUpdate,
    pub ended_ms: Option<i64>,
    pub to_digest: Option<String>,
    /// `running`, `updated`, `rolled_back`, `rollback_failed`, `failed` or `interrupted`.
    pub outcome: String,
    pub reason: String,
}

/// A version that was rolled back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadVersion {
    pub version: String,
    pub digest: String,
    pub at_ms: i64,
    pub reason: String,
}

/// The last `update --check` of a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRecord {
    pub unit: String,
    pub at_ms: i64,
    pub image: String,
    pub current: String,
    pub available: Option<String>,
    pub error: Option<String>,
}

const UPDATE_COLUMNS: &str = "id, unit, started_ms, ended_ms, actor, image, from_version, from_digest, \
                              from_image_id, to_version, to_digest, outcome, reason";

fn update_from_row(r: &Row<'_>) -> rusqlite::Result<UpdateRecord> {
    Ok(UpdateRecord {
        id: r.get(0)?,
        start: NewUpdate {
            unit: r.get(1)?,
            started_ms: r.get(2)?,
            actor: r.get(4)?,
            image: r.get(5)?,
            from_version: r.get(6)?,
            from_digest: r.get(7)?,
            from_image_id: r.get(8)?,
            to_version: r.get(9)?,
        },
        ended_ms: r.get(3)?,
        to_digest: r.get(10)?,
        outcome: r.get(11)?,
        reason: r.get(12)?,
    })
}

impl Db {
    /// Records an update that starts now (outcome `running`) and returns its id.
    pub fn start_update(&mut self, u: &NewUpdate) -> Result<i64, DbError> {
        let written = self
            .conn
            .execute(
                "INSERT INTO updates (unit, started_ms, actor, image, from_version, from_digest, \
                 from_image_id, to_version, outcome) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'running')",
                params![
                    u.unit,
                    u.started_ms,
                    u.actor,
                    u.image,
                    u.from_version,
                    u.from_digest,
                    u.from_image_id,
                    u.to_version
                ],
            )
            .map_err(self.err());
        self.wrote_updates();
        written?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records the digest the update pinned (known once the pull is done).
    pub fn set_update_digest(&mut self, id: i64, digest: &str) -> Result<(), DbError> {
        let written = self
            .conn
            .execute("UPDATE updates SET to_digest = ?2 WHERE id = ?1", params![id, digest])
            .map_err(self.err())
            .map(|_| ());
        self.wrote_updates();
        written
    }

    pub fn end_update(&mut self, id: i64, outcome: &str, reason: &str, at_ms: i64) -> Result<(), DbError> {
        let written = self
            .conn
            .execute(
                "UPDATE updates SET outcome = ?2, reason = ?3, ended_ms = ?4 WHERE id = ?1",
                params![id, outcome, reason, at_ms],
            )
            .map_err(self.err())
            .map(|_| ());
        self.wrote_updates();
        written
    }

    /// Updates still `running` are ones a containerctld that stopped left: `interrupted`.
    pub fn interrupt_updates(&mut self, at_ms: i64) -> Result<Vec<UpdateRecord>, DbError> {
        let running = self.updates_where("outcome = 'running'", None)?;
        let written = self
            .conn
            .execute(
                "UPDATE updates SET outcome = 'interrupted', ended_ms = ?1, \
                 reason = 'containerctld stopped during the update' WHERE outcome = 'running'",
                [at_ms],
            )
            .map_err(self.err());
        self.wrote_updates();
        written?;
        Ok(running)
    }

    /// The latest update of `unit` (any outcome).
    pub fn last_update(&self, unit: &str) -> Result<Option<UpdateRecord>, DbError> {
        Ok(self.updates_where("unit = ?1", Some(unit))?.into_iter().next())
    }

    /// The latest update of every unit that has one, by unit.
    pub fn last_updates(&self) -> Result<Vec<UpdateRecord>, DbError> {
        let sql = format!(
            "SELECT {UPDATE_COLUMNS} FROM updates WHERE id IN (SELECT max(id) FROM updates GROUP BY unit) \
             ORDER BY unit"
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(self.err())?;
        let rows = stmt.query_map([], update_from_row).map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// The successful updates of `unit`, newest first.
    pub fn successful_updates(&self, unit: &str) -> Result<Vec<UpdateRecord>, DbError> {
        self.updates_where("unit = ?1 AND outcome = 'updated'", Some(unit))
    }

    fn updates_where(&self, condition: &str, unit: Option<&str>) -> Result<Vec<UpdateRecord>, DbError> {
        let sql =
            format!("SELECT {UPDATE_COLUMNS} FROM updates WHERE {condition} ORDER BY id DESC LIMIT 100");
        let mut stmt = self.conn.prepare_cached(&sql).map_err(self.err())?;
        let rows = match unit {
            Some(u) => stmt.query_map([u], update_from_row),
            None => stmt.query_map([], update_from_row),
        }
        .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// Remembers `version` (with the digest it had) of `image` as bad for `unit`.
    pub fn record_bad_version(
        &mut self,
        unit: &str,
        image: &str,
        version: &str,
        digest: &str,
        reason: &str,
        at_ms: i64,
    ) -> Result<(), DbError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO bad_versions (unit, image, version, digest, at_ms, reason) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![unit, image, version, digest, at_ms, reason],
            )
            .map_err(self.err())
            .map(|_| ())
    }

    /// Forgets that `version` was bad (it has now run well).
    pub fn clear_bad_version(&mut self, unit: &str, image: &str, version: &str) -> Result<(), DbError> {
        self.conn
            .execute(
                "DELETE FROM bad_versions WHERE unit = ?1 AND image = ?2 AND version = ?3",
                params![unit, image, version],
            )
            .map_err(self.err())
            .map(|_| ())
    }

    /// The versions of `image` that were rolled back on `unit`, newest first.
    pub fn bad_versions(&self, unit: &str, image: &str) -> Result<Vec<BadVersion>, DbError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT version, digest, at_ms, reason FROM bad_versions WHERE unit = ?1 AND image = ?2 \
                 ORDER BY at_ms DESC",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map(params![unit, image], |r| {
                Ok(BadVersion { version: r.get(0)?, digest: r.get(1)?, at_ms: r.get(2)?, reason: r.get(3)? })
            })
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    pub fn record_check(&mut self, c: &CheckRecord) -> Result<(), DbError> {
        let written = self
            .conn
            .execute(
                "INSERT OR REPLACE INTO update_checks (unit, at_ms, image, current, available, error) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![c.unit, c.at_ms, c.image, c.current, c.available, c.error],
            )
            .map_err(self.err())
            .map(|_| ());
        self.wrote_updates();
        written
    }

    pub fn checks(&self) -> Result<Vec<CheckRecord>, DbError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT unit, at_ms, image, current, available, error FROM update_checks ORDER BY unit",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(CheckRecord {
                    unit: r.get(0)?,
                    at_ms: r.get(1)?,
                    image: r.get(2)?,
                    current: r.get(3)?,
                    available: r.get(4)?,
                    error: r.get(5)?,
                })
            })
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    pub fn check(&self, unit: &str) -> Result<Option<CheckRecord>, DbError> {
        Ok(self.checks()?.into_iter().find(|c| c.unit == unit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(unit: &str, to: &str) -> NewUpdate {
        NewUpdate {
            unit: unit.into(),
            started_ms: 1,
            actor: "uid 0 (root)".into(),
            image: "reg/app".into(),
            from_version: "1.0".into(),
            from_digest: Some("sha256:a".into()),
            from_image_id: Some("sha256:i".into()),
            to_version: to.into(),
        }
    }

    #[test]
    fn updates_are_recorded_ended_and_interrupted() {
        let mut db = Db::open_in_memory().expect("db");
        let a = db.start_update(&new("web", "1.1")).expect("start");
        db.set_update_digest(a, "sha256:b").expect("digest");
        db.end_update(a, "updated", "", 5).expect("end");
        let b = db.start_update(&new("web", "1.2")).expect("start");
        let c = db.start_update(&new("db", "2")).expect("start");
        assert!(b > a && c > b);
        let last = db.last_update("web").expect("query").expect("one");
        assert_eq!((last.id, last.outcome.as_str()), (b, "running"));
        let gone = db.interrupt_updates(9).expect("interrupt");
        assert_eq!(gone.len(), 2);
        assert_eq!(db.last_update("web").expect("q").expect("one").outcome, "interrupted");
        let ok = db.successful_updates("web").expect("q");
        assert_eq!((ok.len(), ok[0].to_digest.as_deref()), (1, Some("sha256:b")));
        let all = db.last_updates().expect("q");
        assert_eq!(all.iter().map(|u| u.start.unit.as_str()).collect::<Vec<_>>(), ["db", "web"]);
    }

    #[test]
    fn prune_keeps_the_latest_updates_of_each_unit() {
        let mut db = Db::open_in_memory().expect("db");
        for v in ["1", "2", "3", "4"] {
            db.start_update(&new("web", v)).expect("start");
        }
        db.start_update(&new("db", "1")).expect("start");
        let r = super::super::Retention { revisions_per_unit: 2, ..super::super::Retention::default() };
        assert_eq!(db.prune(&r, 10).expect("prune").updates, 2);
        assert_eq!(db.last_update("web").expect("q").map(|u| u.start.to_version).as_deref(), Some("4"));
        assert_eq!(db.last_updates().expect("q").len(), 2);
    }

    #[test]
    fn bad_versions_and_checks() {
        let mut db = Db::open_in_memory().expect("db");
        db.record_bad_version("web", "reg/app", "1.2", "sha256:x", "unhealthy", 3).expect("bad");
        db.record_bad_version("web", "reg/app", "1.2", "sha256:x", "unhealthy again", 4).expect("bad");
        db.record_bad_version("web", "reg/other", "1.3", "", "x", 4).expect("bad");
        let bad = db.bad_versions("web", "reg/app").expect("q");
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].reason, "unhealthy again");
        db.clear_bad_version("web", "reg/app", "1.2").expect("clear");
        assert!(db.bad_versions("web", "reg/app").expect("q").is_empty());
        let c = CheckRecord {
            unit: "web".into(),
            at_ms: 1,
            image: "reg/app".into(),
            current: "1.0".into(),
            available: Some("1.1".into()),
            error: None,
        };
        db.record_check(&c).expect("check");
        db.record_check(&CheckRecord { at_ms: 2, ..c.clone() }).expect("again");
        assert_eq!(db.check("web").expect("q").map(|c| c.at_ms), Some(2));
        assert_eq!(db.checks().expect("q").len(), 1);
    }
}
