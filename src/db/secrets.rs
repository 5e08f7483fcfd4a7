//! What is known of each secret besides its value: size and when and by whom it was set. The
//! values never enter the database: they are files of `crate::secrets::Store`.

use rusqlite::{params, Row};

use super::{Db, DbError};

/// A secret's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRecord {
    pub name: String,
    pub size: u64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub updated_by: String,
}

impl Db {
    /// Records that `actor` set secret `name` to a value of `size` bytes at `at_ms`: a new record,
    /// or the update of one (its creation date stays).
    pub fn record_secret(&mut self, name: &str, size: u64, at_ms: i64, actor: &str) -> Result<(), DbError> {
        let size = i64::try_from(size).unwrap_or(i64::MAX);
        self.conn
            .execute(
                "INSERT INTO secrets (name, size, created_at_ms, updated_at_ms, updated_by)
                 VALUES (?1, ?2, ?3, ?3, ?4)
                 ON CONFLICT (name) DO UPDATE SET size = ?2, updated_at_ms = ?3, updated_by = ?4",
                params![name, size, at_ms, actor],
            )
            .map(|_| ())
            .map_err(self.err())
    }

    /// Forgets secret `name` (removed).
    pub fn forget_secret(&mut self, name: &str) -> Result<(), DbError> {
        self.conn.execute("DELETE FROM secrets WHERE name = ?1", [name]).map(|_| ()).map_err(self.err())
    }

    /// Every secret's record, by name.
    pub fn secrets(&self) -> Result<Vec<SecretRecord>, DbError> {
        let from_row = |row: &Row<'_>| {
            Ok(SecretRecord {
                name: row.get(0)?,
                size: u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
                created_at_ms: row.get(2)?,
                updated_at_ms: row.get(3)?,
                updated_by: row.get(4)?,
            })
        };
        let query = || -> rusqlite::Result<Vec<SecretRecord>> {
            self.conn
                .prepare_cached(
                    "SELECT name, size, created_at_ms, updated_at_ms, updated_by FROM secrets ORDER BY name",
                )?
                .query_map([], from_row)?
                .collect()
        };
        query().map_err(self.err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_keeps_the_creation_date_and_a_removal_forgets() {
        let mut db = Db::open_in_memory().expect("db");
        db.record_secret("db", 7, 1000, "uid 0 (root)").expect("record");
        db.record_secret("api", 3, 1500, "uid 0 (root)").expect("record");
        db.record_secret("db", 9, 2000, "token admin").expect("update");
        let got = db.secrets().expect("list");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].name, "api");
        assert_eq!(
            got[1],
            SecretRecord {
                name: "db".into(),
                size: 9,
                created_at_ms: 1000,
                updated_at_ms: 2000,
                updated_by: "token admin".into()
            }
        );
        db.forget_secret("db").expect("forget");
        db.forget_secret("never").expect("nothing to forget is fine");
        assert_eq!(db.secrets().expect("list").len(), 1);
    }
}
