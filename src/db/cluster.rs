//! Federation tables: join tokens, nodes (current state and last inventory) and node history.

use rusqlite::{params, OptionalExtension, Row};
use serde::Serialize;

use super::{Db, DbError};
use crate::cluster::token::Refusal;

/// A join token as the manager records it (the secret only as its SHA-256).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JoinTokenRecord {
    pub id: String,
    #[serde(skip)]
    pub secret_sha256: String,
    pub role: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub uses: u32,
    pub used: u32,
    pub revoked: bool,
}

impl JoinTokenRecord {
    /// `valid`, `expired`, `used` or `revoked` at `now_ms`.
    pub fn state(&self, now_ms: i64) -> &'static str {
        if self.revoked {
            "revoked"
        } else if self.used >= self.uses {
            "used"
        } else if now_ms >= self.expires_at_ms {
            "expired"
        } else {
            "valid"
        }
    }
}

/// A member as the manager records it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeRecord {
    pub id: String,
    pub hostname: String,
    pub addr: String,
    pub role: String,
    #[serde(skip)]
    pub secret_sha256: String,
    pub joined_at_ms: i64,
    pub last_seen_ms: i64,
    /// `up`, `down`, `left` or `removed`.
    pub state: String,
    pub swarm_node_id: Option<String>,
    /// The node's last report (JSON object).
    pub inventory: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeEvent {
    pub at_ms: i64,
    pub kind: String,
    pub detail: String,
}

fn token_from_row(row: &Row<'_>) -> rusqlite::Result<JoinTokenRecord> {
    Ok(JoinTokenRecord {
        id: row.get(0)?,
        secret_sha256: row.get(1)?,
        role: row.get(2)?,
        created_at_ms: row.get(3)?,
        expires_at_ms: row.get(4)?,
        uses: row.get(5)?,
        used: row.get(6)?,
        revoked: row.get(7)?,
    })
}

const TOKEN_COLUMNS: &str = "id, secret_sha256, role, created_at_ms, expires_at_ms, uses, used, revoked";
const NODE_COLUMNS: &str =
    "id, hostname, addr, role, secret_sha256, joined_at_ms, last_seen_ms, state, swarm_node_id, inventory";

fn node_from_row(row: &Row<'_>) -> rusqlite::Result<NodeRecord> {
    Ok(NodeRecord {
        id: row.get(0)?,
        hostname: row.get(1)?,
        addr: row.get(2)?,
        role: row.get(3)?,
        secret_sha256: row.get(4)?,
        joined_at_ms: row.get(5)?,
        last_seen_ms: row.get(6)?,
        state: row.get(7)?,
        swarm_node_id: row.get(8)?,
        inventory: row.get(9)?,
    })
}

/// What became of a node's report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reported {
    /// Stored; the node was up already.
    Stored,
    /// Stored; the node was down (or not seen yet) and is up again.
    CameBack,
    /// Not stored: no such node, or it left or was removed.
    NotAMember,
}

impl Db {
    pub fn insert_join_token(&mut self, t: &JoinTokenRecord) -> Result<(), DbError> {
        self.conn
            .execute(
                &format!("INSERT INTO join_tokens ({TOKEN_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
                params![
                    t.id,
                    t.secret_sha256,
                    t.role,
                    t.created_at_ms,
                    t.expires_at_ms,
                    t.uses,
                    t.used,
                    t.revoked
                ],
            )
            .map(|_| ())
            .map_err(self.err())
    }

    /// Every join token, newest first.
    pub fn join_tokens(&self) -> Result<Vec<JoinTokenRecord>, DbError> {
        let q = || -> rusqlite::Result<Vec<JoinTokenRecord>> {
            self.conn
                .prepare_cached(&format!(
                    "SELECT {TOKEN_COLUMNS} FROM join_tokens ORDER BY created_at_ms DESC, id"
                ))?
                .query_map([], token_from_row)?
                .collect()
        };
        q().map_err(self.err())
    }

    pub fn revoke_join_token(&mut self, id: &str) -> Result<bool, DbError> {
        self.conn
            .execute("UPDATE join_tokens SET revoked = 1 WHERE id = ?1", [id])
            .map(|n| n > 0)
            .map_err(self.err())
    }

    /// Uses join token `id` once if `secret_sha256` matches and it is still valid at `now_ms`;
    /// check and use happen in one transaction, so a single-use token admits exactly one host.
    pub fn consume_join_token(
        &mut self,
        id: &str,
        secret_sha256: &str,
        now_ms: i64,
    ) -> Result<Result<JoinTokenRecord, Refusal>, DbError> {
        let (tx, path) = self.write_tx()?;
        let err = |source| DbError::Sql { path: path.to_path_buf(), source };
        let found = tx
            .query_row(
                &format!("SELECT {TOKEN_COLUMNS} FROM join_tokens WHERE id = ?1"),
                [id],
                token_from_row,
            )
            .optional()
            .map_err(err)?;
        let verdict = match found {
            None => Err(Refusal::Unknown),
            Some(t)
                if !crate::digest::constant_time_eq(t.secret_sha256.as_bytes(), secret_sha256.as_bytes()) =>
            {
                Err(Refusal::Unknown)
            }
            Some(t) => match t.state(now_ms) {
                "revoked" => Err(Refusal::Revoked),
                "used" => Err(Refusal::Used),
                "expired" => Err(Refusal::Expired),
                _ => Ok(t),
            },
        };
        if let Ok(t) = &verdict {
            tx.execute("UPDATE join_tokens SET used = used + 1 WHERE id = ?1", [&t.id]).map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(verdict.map(|mut t| {
            t.used += 1;
            t
        }))
    }

    /// Inserts or replaces node `n` and records `kind` in its history.
    pub fn put_node(&mut self, n: &NodeRecord, kind: &str, detail: &str) -> Result<(), DbError> {
        let (tx, path) = self.write_tx()?;
        let err = |source| DbError::Sql { path: path.to_path_buf(), source };
        tx.execute(
            &format!(
                "INSERT OR REPLACE INTO nodes ({NODE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
            ),
            params![
                n.id,
                n.hostname,
                n.addr,
                n.role,
                n.secret_sha256,
                n.joined_at_ms,
                n.last_seen_ms,
                n.state,
                n.swarm_node_id,
                n.inventory
            ],
        )
        .map_err(err)?;
        tx.execute(
            "INSERT INTO node_history (node_id, at_ms, kind, detail) VALUES (?1, ?2, ?3, ?4)",
            params![n.id, n.last_seen_ms.max(n.joined_at_ms), kind, detail],
        )
        .map_err(err)?;
        tx.commit().map_err(err)
    }

    pub fn node(&self, id: &str) -> Result<Option<NodeRecord>, DbError> {
        self.conn
            .query_row(&format!("SELECT {NODE_COLUMNS} FROM nodes WHERE id = ?1"), [id], node_from_row)
            .optional()
            .map_err(self.err())
    }

    /// The node with this id or, failing that, the first with this host name (by id).
    pub fn node_by_id_or_hostname(&self, key: &str) -> Result<Option<NodeRecord>, DbError> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {NODE_COLUMNS} FROM nodes WHERE id = ?1 OR hostname = ?1 ORDER BY id != ?1, id LIMIT 1"
            ))
            .and_then(|mut st| st.query_row([key], node_from_row).optional())
            .map_err(self.err())
    }

    /// Every node, by host name.
    pub fn nodes(&self) -> Result<Vec<NodeRecord>, DbError> {
        let q = || -> rusqlite::Result<Vec<NodeRecord>> {
            self.conn
                .prepare_cached(&format!("SELECT {NODE_COLUMNS} FROM nodes ORDER BY hostname, id"))?
                .query_map([], node_from_row)?
                .collect()
        };
        q().map_err(self.err())
    }

    /// Stores a node's report; a node that was down comes back `up` (recorded in its history).
    /// A report is replaced by the node's next one within the report interval, so its commit does
    /// not wait for the disk: with WAL, `synchronous=NORMAL` loses at most the last reports at a
    /// power cut and never corrupts. An fsync per report held the store's lock for up to 90 ms on
    /// a busy disk (bench/fleet.sh), so 100 members reporting at once queued behind each other,
    /// and so did the pages. Every other write stays `FULL`.
    pub fn node_report(&mut self, id: &str, at_ms: i64, inventory: &str) -> Result<Reported, DbError> {
        self.conn.pragma_update(None, "synchronous", "NORMAL").map_err(self.err())?;
        let stored = self.store_report(id, at_ms, inventory);
        let restored = self.conn.pragma_update(None, "synchronous", "FULL").map_err(self.err());
        let stored = stored?;
        restored.map(|()| stored)
    }

    fn store_report(&mut self, id: &str, at_ms: i64, inventory: &str) -> Result<Reported, DbError> {
        let (tx, path) = self.write_tx()?;
        let err = |source| DbError::Sql { path: path.to_path_buf(), source };
        let state: Option<String> = tx
            .query_row("SELECT state FROM nodes WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(err)?;
        let Some(state) = state else { return Ok(Reported::NotAMember) };
        if state == "left" || state == "removed" {
            return Ok(Reported::NotAMember);
        }
        tx.execute(
            "UPDATE nodes SET last_seen_ms = ?2, inventory = ?3, state = 'up' WHERE id = ?1",
            params![id, at_ms, inventory],
        )
        .map_err(err)?;
        if state != "up" {
            tx.execute(
                "INSERT INTO node_history (node_id, at_ms, kind, detail) VALUES (?1, ?2, 'up', ?3)",
                params![id, at_ms, format!("reporting again (was {state})")],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(if state == "up" { Reported::Stored } else { Reported::CameBack })
    }

    /// Sets a node's state; records the change in its history when it is one. Returns whether it
    /// changed.
    pub fn set_node_state(
        &mut self,
        id: &str,
        state: &str,
        at_ms: i64,
        detail: &str,
    ) -> Result<bool, DbError> {
        let (tx, path) = self.write_tx()?;
        let err = |source| DbError::Sql { path: path.to_path_buf(), source };
        let n = tx
            .execute("UPDATE nodes SET state = ?2 WHERE id = ?1 AND state != ?2", params![id, state])
            .map_err(err)?;
        if n > 0 {
            tx.execute(
                "INSERT INTO node_history (node_id, at_ms, kind, detail) VALUES (?1, ?2, ?3, ?4)",
                params![id, at_ms, state, detail],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(n > 0)
    }

    pub fn set_node_swarm_id(&mut self, id: &str, swarm_node_id: &str) -> Result<(), DbError> {
        self.conn
            .execute("UPDATE nodes SET swarm_node_id = ?2 WHERE id = ?1", params![id, swarm_node_id])
            .map(|_| ())
            .map_err(self.err())
    }

    /// A node's history, newest first.
    pub fn node_history(&self, id: &str, limit: u32) -> Result<Vec<NodeEvent>, DbError> {
        let q = || -> rusqlite::Result<Vec<NodeEvent>> {
            self.conn
                .prepare_cached(
                    "SELECT at_ms, kind, detail FROM node_history WHERE node_id = ?1
                     ORDER BY at_ms DESC, id DESC LIMIT ?2",
                )?
                .query_map(params![id, limit], |r| {
                    Ok(NodeEvent { at_ms: r.get(0)?, kind: r.get(1)?, detail: r.get(2)? })
                })?
                .collect()
        };
        q().map_err(self.err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(id: &str, uses: u32, expires: i64) -> JoinTokenRecord {
        JoinTokenRecord {
            id: id.into(),
            secret_sha256: "h".into(),
            role: "worker".into(),
            created_at_ms: 0,
            expires_at_ms: expires,
            uses,
            used: 0,
            revoked: false,
        }
    }

    fn up_node(id: &str, host: &str) -> NodeRecord {
        NodeRecord {
            id: id.into(),
            hostname: host.into(),
            addr: "10.0.0.2".into(),
            role: "worker".into(),
            secret_sha256: "s".into(),
            joined_at_ms: 10,
            last_seen_ms: 10,
            state: "up".into(),
            swarm_node_id: None,
            inventory: "{}".into(),
        }
    }

    #[test]
    fn join_tokens_are_used_once_and_refused_with_the_reason() {
        let mut db = Db::open_in_memory().expect("db");
        db.insert_join_token(&token("jt-a", 1, 1000)).expect("insert");
        db.insert_join_token(&token("jt-b", 2, 1000)).expect("insert");
        db.insert_join_token(&token("jt-c", 1, 1000)).expect("insert");
        assert_eq!(db.consume_join_token("jt-a", "wrong", 1).expect("db"), Err(Refusal::Unknown));
        assert_eq!(db.consume_join_token("jt-x", "h", 1).expect("db"), Err(Refusal::Unknown));
        assert_eq!(db.consume_join_token("jt-a", "h", 1).expect("db").map(|t| t.used), Ok(1));
        assert_eq!(db.consume_join_token("jt-a", "h", 1).expect("db"), Err(Refusal::Used));
        assert!(db.consume_join_token("jt-b", "h", 1).expect("db").is_ok());
        assert!(db.consume_join_token("jt-b", "h", 1).expect("db").is_ok());
        assert_eq!(db.consume_join_token("jt-b", "h", 1).expect("db"), Err(Refusal::Used));
        assert_eq!(db.consume_join_token("jt-c", "h", 1000).expect("db"), Err(Refusal::Expired));
        assert!(db.revoke_join_token("jt-c").expect("db"));
        assert_eq!(db.consume_join_token("jt-c", "h", 1).expect("db"), Err(Refusal::Revoked));
        let states: Vec<_> = db.join_tokens().expect("list").iter().map(|t| t.state(1).to_owned()).collect();
        assert_eq!(states, ["used", "used", "revoked"]);
    }

    #[test]
    fn nodes_keep_state_changes_in_their_history() {
        let mut db = Db::open_in_memory().expect("db");
        let n = up_node("n-1", "h1");
        db.put_node(&n, "joined", "joined as worker").expect("put");
        assert!(db.set_node_state("n-1", "down", 20, "no report for 30s").expect("state"));
        assert!(!db.set_node_state("n-1", "down", 21, "again").expect("state"));
        assert_eq!(db.node_report("n-1", 30, "{\"units\":[]}").expect("report"), Reported::CameBack);
        assert_eq!(db.node_report("n-1", 31, "{\"units\":[]}").expect("report"), Reported::Stored);
        assert_eq!(db.node_report("n-9", 30, "{}").expect("report"), Reported::NotAMember);
        let sync: i64 = db.conn.pragma_query_value(None, "synchronous", |r| r.get(0)).expect("pragma");
        assert_eq!(sync, 2, "every write but a report's commits with synchronous=FULL");
        let kinds: Vec<_> =
            db.node_history("n-1", 10).expect("history").into_iter().map(|e| e.kind).collect();
        assert_eq!(kinds, ["up", "down", "joined"]);
        let node = db.node("n-1").expect("node").expect("exists");
        assert_eq!((node.state.as_str(), node.last_seen_ms), ("up", 31));
        db.set_node_state("n-1", "left", 40, "left").expect("state");
        assert_eq!(
            db.node_report("n-1", 50, "{}").expect("report"),
            Reported::NotAMember,
            "a node that left cannot report"
        );
    }

    #[test]
    fn a_node_is_found_by_id_before_host_name() {
        let mut db = Db::open_in_memory().expect("db");
        // A host named like another node's id: the id wins; two nodes of one host name: the first id.
        db.put_node(&up_node("n-2", "n-1"), "joined", "joined").expect("put");
        db.put_node(&up_node("n-1", "h1"), "joined", "joined").expect("put");
        db.put_node(&up_node("n-0", "h1"), "joined", "joined").expect("put");
        let find = |k: &str| db.node_by_id_or_hostname(k).expect("db").map(|n| n.id);
        assert_eq!(find("n-1").as_deref(), Some("n-1"));
        assert_eq!(find("h1").as_deref(), Some("n-0"));
        assert_eq!(find("nope"), None);
    }
}
