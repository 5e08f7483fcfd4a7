//! When each stored registry credential was last verified and last used. The credentials live in
//! registries.json (see `credentials`); this table holds no secret, only times by registry.

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::{Db, DbError};

/// The times recorded for one registry credential.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RegistryUse {
    pub registry: String,
    /// The last successful login or test.
    pub verified_ms: Option<i64>,
    /// The last pull of an image the credential applies to, as dockerd reported it.
    pub last_used_ms: Option<i64>,
}

impl Db {
    /// A new credential for `registry` was stored at `at_ms`: verified then, not used yet.
    pub fn registry_logged_in(&mut self, registry: &str, at_ms: i64) -> Result<(), DbError> {
        self.conn
            .execute(
                "INSERT INTO registry_use (registry, verified_ms, last_used_ms) VALUES (?1, ?2, NULL)
                 ON CONFLICT (registry) DO UPDATE SET verified_ms = ?2, last_used_ms = NULL",
                params![registry, at_ms],
            )
            .map(|_| ())
            .map_err(self.err())
    }

    /// The credential for `registry` was verified again at `at_ms`.
    pub fn registry_verified(&mut self, registry: &str, at_ms: i64) -> Result<(), DbError> {
        self.registry_touch(registry, "verified_ms", at_ms)
    }

    /// An image the credential for `registry` applies to was pulled at `at_ms`.
    pub fn registry_used(&mut self, registry: &str, at_ms: i64) -> Result<(), DbError> {
        self.registry_touch(registry, "last_used_ms", at_ms)
    }

    /// Moves `column` (one of the two above, never user input) forward to `at_ms`; an older time
    /// than the one recorded (a replayed event) changes nothing.
    fn registry_touch(&mut self, registry: &str, column: &'static str, at_ms: i64) -> Result<(), DbError> {
        let sql = format!(
            "INSERT INTO registry_use (registry, {column}) VALUES (?1, ?2)
             ON CONFLICT (registry) DO UPDATE SET {column} = max(coalesce({column}, 0), ?2)"
        );
        self.conn.execute(&sql, params![registry, at_ms]).map(|_| ()).map_err(self.err())
    }

    /// Forgets the times of `registry` (its credential was removed).
    pub fn registry_forget(&mut self, registry: &str) -> Result<(), DbError> {
        self.conn
            .execute("DELETE FROM registry_use WHERE registry = ?1", [registry])
            .map(|_| ())
            .map_err(self.err())
    }

    pub fn registry_use(&self, registry: &str) -> Result<RegistryUse, DbError> {
        self.conn
            .query_row(
                "SELECT registry, verified_ms, last_used_ms FROM registry_use WHERE registry = ?1",
                [registry],
                |row| {
                    Ok(RegistryUse {
                        registry: row.get(0)?,
                        verified_ms: row.get(1)?,
                        last_used_ms: row.get(2)?,
                    })
                },
            )
            .optional()
            .map(|r| {
                r.unwrap_or_else(|| RegistryUse { registry: registry.to_owned(), ..RegistryUse::default() })
            })
            .map_err(self.err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn use_times_only_move_forward_and_a_new_login_starts_over() {
        let mut db = Db::open_in_memory().expect("db");
        assert_eq!(
            db.registry_use("ghcr.io").expect("read"),
            RegistryUse { registry: "ghcr.io".into(), ..Default::default() }
        );
        db.registry_logged_in("ghcr.io", 100).expect("login");
        db.registry_used("ghcr.io", 300).expect("used");
        db.registry_used("ghcr.io", 200).expect("an older, replayed event");
        db.registry_verified("ghcr.io", 250).expect("verified");
        let u = db.registry_use("ghcr.io").expect("read");
        assert_eq!((u.verified_ms, u.last_used_ms), (Some(250), Some(300)));
        db.registry_logged_in("ghcr.io", 400).expect("login again");
        let u = db.registry_use("ghcr.io").expect("read");
        assert_eq!((u.verified_ms, u.last_used_ms), (Some(400), None));
        db.registry_forget("ghcr.io").expect("forget");
        assert_eq!(db.registry_use("ghcr.io").expect("read").verified_ms, None);
        assert_eq!(db.registry_use("docker.io").expect("read").last_used_ms, None);
    }
}
