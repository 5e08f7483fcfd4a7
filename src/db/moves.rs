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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct MoveRecord {
    pub id: i64,
    #[serde(flatten)]
    pub start: NewMove,
    pub ended_ms: Option<i64>,
    /// `running`, `moved`, `failed`, `expired` (the target gave up staging the source left) or
    /// `interrupted` (this daemon stopped during it).
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

    /// Moves still `running` are ones a containerctld that stopped left: `interrupted`.
    pub fn interrupt_moves(&mut self, at_ms: i64) -> Result<usize, DbError> {
        self.conn
            .execute(
                "UPDATE moves SET state = 'interrupted', ended_ms = ?1, \
                 detail = 'containerctld stopped during the move' WHERE state = 'running'",
                params![at_ms],
            )
            .map_err(self.err())
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
        let b = db.start_move(&NewMove { unit: "db".into(), ..m.clone() }).expect("start");
        db.move_step(a, "copy").expect("step");
        db.end_move(a, "moved", "moved to h2", Some(1200), 20).expect("end");
        assert_eq!(db.interrupt_moves(30).expect("interrupt"), 1);
        let all = db.moves(10).expect("list");
        assert_eq!(all.len(), 2);
        assert_eq!((all[0].id, all[0].state.as_str()), (b, "interrupted"));
        assert_eq!(
            (all[1].state.as_str(), all[1].step.as_str(), all[1].downtime_ms, all[1].ended_ms),
            ("moved", "copy", Some(1200), Some(20))
        );
        assert!(all[1].start.warm);
    }
}
