//! Embedded schema migrations. Only ever add a new file; never edit one that has shipped.
//!
//! Each applied version is a row of `schema_migrations`, so a migration merged with a lower number than
//! one a database already has (several branches each taking a number) still runs there: the runner
//! applies every listed version without a row, in order. `PRAGMA user_version` still holds the highest
//! version applied, for tools that read it.
//!
//! A database from before the table (user_version = N, no `schema_migrations`) was migrated by a runner
//! that applied every listed version up to N, so those count as applied; from then on each version is
//! tracked on its own.

use anyhow::Context;
use rusqlite::{Connection, params};

/// `(version, sql)`, applied in order of version.
pub const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/0001_foundation.sql")),
    (2, include_str!("migrations/0002_applications.sql")),
    (3, include_str!("migrations/0003_login_throttle.sql")),
    (4, include_str!("migrations/0004_bookings.sql")),
    (5, include_str!("migrations/0005_records.sql")),
    (6, include_str!("migrations/0006_photos.sql")),
    (7, include_str!("migrations/0007_login_limits.sql")),
    (8, include_str!("migrations/0008_results.sql")),
    (9, include_str!("migrations/0009_record_schema_2.sql")),
    (11, include_str!("migrations/0011_certificates.sql")),
    (12, include_str!("migrations/0012_monitoring.sql")),
    (13, include_str!("migrations/0013_device_actors.sql")),
    (14, include_str!("migrations/0014_messages.sql")),
    (17, include_str!("migrations/0017_documents.sql")),
    (18, include_str!("migrations/0018_notices.sql")),
    (20, include_str!("migrations/0020_monitoring_summary.sql")),
    (21, include_str!("migrations/0021_message_evidence.sql")),
    (24, include_str!("migrations/0024_site_scope_pending.sql")),
];

pub fn apply(conn: &mut Connection) -> anyhow::Result<()> {
    apply_list(conn, MIGRATIONS)
}

/// Applies every migration of `list` that `conn` has no row for, each in its own transaction with its row.
fn apply_list(conn: &mut Connection, list: &[(i64, &str)]) -> anyhow::Result<()> {
    adopt_untracked(conn, list)?;
    let applied: Vec<i64> = conn
        .prepare("SELECT version FROM schema_migrations")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut pending: Vec<&(i64, &str)> = list.iter().filter(|(v, _)| !applied.contains(v)).collect();
    pending.sort_by_key(|(v, _)| *v);
    for (version, sql) in pending {
        let tx = conn.transaction()?;
        tx.execute_batch(sql).with_context(|| format!("migration {version}"))?;
        tx.execute("INSERT INTO schema_migrations (version) VALUES (?1)", [version])?;
        let highest: i64 = tx.query_row("SELECT max(version) FROM schema_migrations", [], |r| r.get(0))?;
        tx.pragma_update(None, "user_version", highest)?;
        tx.commit()?;
        tracing::info!(version, "applied migration");
    }
    Ok(())
}

/// Creates `schema_migrations` when missing and, for a database migrated before it existed, records the
/// listed versions up to its `user_version` as applied. One transaction: a crash leaves either no table
/// (and this runs again) or the table with every adopted row.
fn adopt_untracked(conn: &mut Connection, list: &[(i64, &str)]) -> anyhow::Result<()> {
    let tx = conn.transaction()?;
    let tracked: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations')",
        [],
        |r| r.get(0),
    )?;
    if !tracked {
        let current: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        tx.execute_batch("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY) STRICT")?;
        for (version, _) in list.iter().filter(|(v, _)| *v <= current) {
            tx.execute("INSERT INTO schema_migrations (version) VALUES (?1)", params![version])?;
        }
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(c: &Connection) -> Vec<i64> {
        c.prepare("SELECT version FROM schema_migrations ORDER BY version")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn user_version(c: &Connection) -> i64 {
        c.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap()
    }

    /// The highest listed version: what `user_version` ends at.
    fn highest() -> i64 {
        MIGRATIONS.iter().map(|(v, _)| *v).max().expect("migrations are listed")
    }

    /// What the runner before `schema_migrations` did: everything above `user_version`, then the pragma.
    fn migrate_untracked(c: &mut Connection) {
        for (version, sql) in MIGRATIONS {
            c.execute_batch(sql).unwrap();
            c.pragma_update(None, "user_version", version).unwrap();
        }
    }

    #[test]
    fn a_database_at_version_14_without_0010_gets_a_newly_added_lower_migration_applied() {
        let mut c = Connection::open_in_memory().unwrap();
        migrate_untracked(&mut c);
        assert_eq!(user_version(&c), highest());
        apply(&mut c).unwrap();
        let before = versions(&c);
        assert!(!before.contains(&10) && before.contains(&14), "{before:?}");

        let mut with_0010 = MIGRATIONS.to_vec();
        with_0010.push((10, "CREATE TABLE merged_late (id INTEGER PRIMARY KEY);"));
        apply_list(&mut c, &with_0010).unwrap();
        assert!(versions(&c).contains(&10));
        let table: bool = c
            .query_row("SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'merged_late')", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(table, "the lower migration ran");
        assert_eq!(user_version(&c), highest(), "user_version stays the highest applied");
        apply_list(&mut c, &with_0010).expect("nothing runs twice");
    }

    #[test]
    fn a_database_migrated_before_the_table_adopts_its_versions_and_reruns_none() {
        let mut c = Connection::open_in_memory().unwrap();
        migrate_untracked(&mut c);
        // Every shipped migration creates tables, so running one again would fail here.
        apply(&mut c).unwrap();
        let listed: Vec<i64> = MIGRATIONS.iter().map(|(v, _)| *v).collect();
        assert_eq!(versions(&c), listed);
    }

    #[test]
    fn a_new_database_records_every_version_and_a_failed_one_is_not_recorded() {
        let mut c = Connection::open_in_memory().unwrap();
        apply(&mut c).unwrap();
        assert_eq!(versions(&c).len(), MIGRATIONS.len());
        assert_eq!(user_version(&c), highest());

        // A number no migration uses, so a branch that claims one later does not break this test.
        let unused = (1..).find(|v| MIGRATIONS.iter().all(|(listed, _)| listed != v)).unwrap();
        let mut broken = MIGRATIONS.to_vec();
        broken.push((unused, "CREATE TABLE half (id INTEGER); THIS IS NOT SQL;"));
        assert!(apply_list(&mut c, &broken).is_err());
        assert!(!versions(&c).contains(&unused));
        let half: bool = c
            .query_row("SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'half')", [], |r| r.get(0))
            .unwrap();
        assert!(!half, "a failed migration leaves nothing behind");
    }
}
