//! Moves, as each side records them: the source when it starts one, the target when it begins
//! receiving one; the step as it goes, then the outcome.

use rusqlite::{params, Row};
use serde::Serialize;

use super::{Db, DbError};

/// A move as recorded when it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct NewMove {
    pub unit: String,
    /// `source` or `target`.
    pub side: String,
    /// The other host.
    pub peer: String,
    pub actor: String,
    pub warm: bool,
    pub started_ms: i64,
    pub bytes: u64,
}

/// A source's move left `running` by a containerctld that stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfinished {
    pub id: i64,
    pub unit: String,
    pub peer: String,
    pub step: String,
    pub resume: Option<String>,
}

/// A source's moved unit whose copy here goes at the end of a soak.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Soaking {
    pub id: i64,
    pub unit: String,
    pub peer: String,
    pub actor: String,
    pub until_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MoveRecord {
    pub id: i64,
    #[serde(flatten)]
    pub start: NewMove,
    pub ended_ms: Option<i64>,
    /// `running`, `moved`, `failed`, `expired` (the target gave up staging the source left),
    /// `interrupted` (this daemon stopped during it) or `uncertain` (a source's daemon stopped
    /// after the commit and the target could not say it runs the unit).
    pub state: String,
    pub step: String,
    pub downtime_ms: Option<u64>,
    pub detail: String,
}

const COLUMNS: &str =
    "id, unit, side, peer, actor, warm, started_ms, ended_ms, state, step, bytes, downtime_ms, detail";

fn from_row(r: &Row<'_>) -> rusqlite::Result<MoveRecord> {
    Ok(MoveRecord {
        id: r.get(0)?,
        start: NewMove {
            unit: r.get(1)?,
            side: r.get(2)?,
            peer: r.get(3)?,
            actor: r.get(4)?,
            warm: r.get::<_, i64>(5)? != 0,
            started_ms: r.get(6)?,
            bytes: u64::try_from(r.get::<_, i64>(10)?).unwrap_or(0),
        },
        ended_ms: r.get(7)?,
        state: r.get(8)?,
        step: r.get(9)?,
        downtime_ms: r.get::<_, Option<i64>>(11)?.and_then(|d| u64::try_from(d).ok()),
        detail: r.get(12)?,
    })
}

impl Db {
    /// Records a move that starts now (state `running`) and returns its id.
    pub fn start_move(&mut self, m: &NewMove) -> Result<i64, DbError> {
        self.conn
            .execute(
                "INSERT INTO moves (unit, side, peer, actor, warm, started_ms, bytes, state) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'running')",
                params![
                    m.unit,
                    m.side,
                    m.peer,
                    m.actor,
                    i64::from(m.warm),
                    m.started_ms,
                    i64::try_from(m.bytes).unwrap_or(i64::MAX)
                ],
            )
            .map_err(self.err())?;
        Ok(self.conn.last_insert_rowid())
    }

    /// The step a running move is at.
    pub fn move_step(&mut self, id: i64, step: &str) -> Result<(), DbError> {
        self.conn
            .execute("UPDATE moves SET step = ?2 WHERE id = ?1 AND state = 'running'", params![id, step])
            .map_err(self.err())
            .map(|_| ())
    }

    pub fn end_move(
        &mut self,
        id: i64,
        state: &str,
        detail: &str,
        downtime_ms: Option<u64>,
        at_ms: i64,
    ) -> Result<(), DbError> {
        let downtime = downtime_ms.map(|d| i64::try_from(d).unwrap_or(i64::MAX));
        self.conn
            .execute(
                "UPDATE moves SET state = ?2, detail = ?3, downtime_ms = ?4, ended_ms = ?5 \
                 WHERE id = ?1 AND state = 'running'",
                params![id, state, detail, downtime, at_ms],
            )
            .map_err(self.err())
            .map(|_| ())
    }

    /// Moves received here still `running` are ones a containerctld that stopped left:
    /// `interrupted` (their staging is removed at start). The source's are settled instead
    /// ([`Db::unfinished_source_moves`]).
    pub fn interrupt_moves(&mut self, at_ms: i64) -> Result<usize, DbError> {
        self.conn
            .execute(
                "UPDATE moves SET state = 'interrupted', ended_ms = ?1, \
                 detail = 'containerctld stopped during the move' WHERE state = 'running' AND side = 'target'",
                params![at_ms],
            )
            .map_err(self.err())
    }

    /// What a source records to settle or resume a move after a restart (JSON of the daemon's).
    pub fn set_move_resume(&mut self, id: i64, resume: Option<&str>) -> Result<(), DbError> {
        self.conn
            .execute("UPDATE moves SET resume = ?2 WHERE id = ?1", params![id, resume])
            .map_err(self.err())
            .map(|_| ())
    }

    /// The moves this host was the source of that a containerctld that stopped left `running`.
    pub fn unfinished_source_moves(&self) -> Result<Vec<Unfinished>, DbError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, unit, peer, step, resume FROM moves \
                 WHERE state = 'running' AND side = 'source' ORDER BY id",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Unfinished {
                    id: r.get(0)?,
                    unit: r.get(1)?,
                    peer: r.get(2)?,
                    step: r.get(3)?,
                    resume: r.get(4)?,
                })
            })
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// The newest move of `unit` to `peer` that a restart interrupted during the copy and that a
    /// new move may resume: its id and what it recorded.
    pub fn resumable_move(&self, unit: &str, peer: &str) -> Result<Option<(i64, String)>, DbError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, resume FROM moves WHERE unit = ?1 AND peer = ?2 AND side = 'source' \
                 AND state = 'interrupted' AND step = 'copy' AND resume IS NOT NULL ORDER BY id DESC LIMIT 1",
            )
            .map_err(self.err())?;
        let mut rows = stmt.query(params![unit, peer]).map_err(self.err())?;
        match rows.next().map_err(self.err())? {
            Some(r) => Ok(Some((r.get(0).map_err(self.err())?, r.get(1).map_err(self.err())?))),
            None => Ok(None),
        }
    }

    /// When the source's copy of the unit of move `id` goes (`None`: the soak ended).
    pub fn set_move_soak(&mut self, id: i64, until_ms: Option<i64>) -> Result<(), DbError> {
        self.conn
            .execute("UPDATE moves SET soak_until_ms = ?2 WHERE id = ?1", params![id, until_ms])
            .map_err(self.err())
            .map(|_| ())
    }

    /// The soaks a containerctld that stopped left under way (moves of this host as the source
    /// that ended `moved`, with a soak end recorded), oldest first. A source's move still
    /// `running` is settled instead, which starts its soak again.
    pub fn soaking_moves(&self) -> Result<Vec<Soaking>, DbError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, unit, peer, actor, soak_until_ms FROM moves WHERE side = 'source' \
                 AND state = 'moved' AND soak_until_ms IS NOT NULL ORDER BY id",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Soaking {
                    id: r.get(0)?,
                    unit: r.get(1)?,
                    peer: r.get(2)?,
                    actor: r.get(3)?,
                    until_ms: r.get(4)?,
                })
            })
            .map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }

    /// The newest moves first, at most `limit`.
    pub fn moves(&self, limit: u32) -> Result<Vec<MoveRecord>, DbError> {
        let sql = format!("SELECT {COLUMNS} FROM moves ORDER BY id DESC LIMIT ?1");
        let mut stmt = self.conn.prepare_cached(&sql).map_err(self.err())?;
        let rows = stmt.query_map([limit], from_row).map_err(self.err())?;
        rows.collect::<Result<_, _>>().map_err(self.err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_move_is_recorded_from_start_to_outcome() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut db = Db::open(&dir.path().join("c.db")).expect("open");
        let m = NewMove {
            unit: "cam".into(),
            side: "source".into(),
            peer: "h2".into(),
            actor: "root".into(),
            warm: true,
            started_ms: 10,
            bytes: 5,
        };
        let a = db.start_move(&m).expect("start");
        let b =
            db.start_move(&NewMove { unit: "db".into(), side: "target".into(), ..m.clone() }).expect("start");
        let c = db.start_move(&NewMove { unit: "web".into(), ..m.clone() }).expect("start");
        db.move_step(c, "copy").expect("step");
        db.set_move_resume(c, Some("{}")).expect("resume");
        db.move_step(a, "copy").expect("step");
        db.end_move(a, "moved", "moved to h2", Some(1200), 20).expect("end");
        assert_eq!(db.interrupt_moves(30).expect("interrupt"), 1);
        // The source's own is left to be settled, with what it recorded.
        let left = db.unfinished_source_moves().expect("unfinished");
        assert_eq!(left.len(), 1);
        assert_eq!((left[0].id, left[0].step.as_str(), left[0].resume.as_deref()), (c, "copy", Some("{}")));
        assert_eq!(db.resumable_move("web", "h2").expect("q"), None);
        db.end_move(c, "interrupted", "restarted", None, 40).expect("end");
        assert_eq!(db.resumable_move("web", "h2").expect("q"), Some((c, "{}".to_owned())));
        assert_eq!(db.resumable_move("web", "h3").expect("q"), None);
        db.end_move(c, "failed", "again", None, 50).expect("ended once only");
        let all = db.moves(10).expect("list");
        assert_eq!(all[0].state, "interrupted");
        let all: Vec<_> = all.into_iter().filter(|r| r.id != c).collect();
        assert_eq!(all.len(), 2);
        assert_eq!((all[0].id, all[0].state.as_str()), (b, "interrupted"));
        assert_eq!(
            (all[1].state.as_str(), all[1].step.as_str(), all[1].downtime_ms, all[1].ended_ms),
            ("moved", "copy", Some(1200), Some(20))
        );
        assert!(all[1].start.warm);
        // A soak under way is found again (a restart resumes it) until it is recorded as ended.
        assert_eq!(db.soaking_moves().expect("soaks"), vec![]);
        db.set_move_soak(a, Some(99)).expect("soak");
        let soaking = db.soaking_moves().expect("soaks");
        assert_eq!(
            soaking,
            vec![Soaking {
                id: a,
                unit: "cam".into(),
                peer: "h2".into(),
                actor: "root".into(),
                until_ms: 99
            }]
        );
        db.set_move_soak(a, None).expect("soak ended");
        assert_eq!(db.soaking_moves().expect("soaks"), vec![]);
    }
}
