//! Embedded schema migrations. Only ever add a new file; never edit one that has shipped.
//!
//! Each applied version is a row of `schema_migrations`, so a migration merged with a lower number than
//! one a database already has (several branches each taking a number) still runs there: the runner
//! applies every listed version without a row, in order. `PRAGMA user_version` still holds the highest
//! version applied, for tools that read it.
//!
//! Foreign keys are off while a migration runs (SQLite's procedure for changing a table's schema: a
//! rebuilt table is dropped and its copy renamed, which with enforcement on would delete or orphan every
//! referencing row), and `PRAGMA foreign_key_check` must find nothing before the migration commits: a
//! migration cannot leave a dangling reference behind. The connection's setting is restored after.
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
    (22, include_str!("migrations/0022_onboarding.sql")),
    (23, include_str!("migrations/0023_receipt_subjects.sql")),
    (24, include_str!("migrations/0024_site_scope_pending.sql")),
    (25, include_str!("migrations/0025_reminder_scans.sql")),
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
    let enforced: bool = conn.pragma_query_value(None, "foreign_keys", |r| r.get(0))?;
    // Outside any transaction: inside one the pragma is a no-op.
    conn.pragma_update(None, "foreign_keys", false)?;
    let applied = pending.into_iter().try_for_each(|(version, sql)| apply_one(conn, *version, sql));
    conn.pragma_update(None, "foreign_keys", enforced)?;
    applied
}

/// One migration and its row, in one transaction that commits only if no foreign key dangles.
fn apply_one(conn: &mut Connection, version: i64, sql: &str) -> anyhow::Result<()> {
    let tx = conn.transaction()?;
    tx.execute_batch(sql).with_context(|| format!("migration {version}"))?;
    let dangling: Vec<(String, i64, String)> = tx
        .prepare("PRAGMA foreign_key_check")?
        .query_map([], |r| Ok((r.get(0)?, r.get::<_, Option<i64>>(1)?.unwrap_or(0), r.get(2)?)))?
        .take(5)
        .collect::<Result<_, _>>()?;
    if !dangling.is_empty() {
        anyhow::bail!("migration {version} leaves dangling references (table, rowid, parent): {dangling:?}");
    }
    tx.execute("INSERT INTO schema_migrations (version) VALUES (?1)", [version])?;
    let highest: i64 = tx.query_row("SELECT max(version) FROM schema_migrations", [], |r| r.get(0))?;
    tx.pragma_update(None, "user_version", highest)?;
    tx.commit()?;
    tracing::info!(version, "applied migration");
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

    /// Every row of `table` as text, in rowid order: what must survive a table rebuild unchanged.
    fn dump(c: &Connection, sql: &str) -> Vec<Vec<String>> {
        let mut stmt = c.prepare(sql).unwrap();
        let n = stmt.column_count();
        stmt.query_map([], |r| {
            (0..n).map(|i| r.get_ref(i).map(|v| format!("{v:?}"))).collect::<rusqlite::Result<Vec<String>>>()
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    #[test]
    fn a_database_with_data_keeps_every_row_its_references_and_its_audit_chain_through_the_table_rebuilds() {
        let mut c = Connection::open_in_memory().unwrap();
        // As the server opens it: foreign keys enforced.
        c.pragma_update(None, "foreign_keys", true).unwrap();
        let before: Vec<(i64, &str)> = MIGRATIONS.iter().copied().filter(|(v, _)| *v < 22).collect();
        apply_list(&mut c, &before).unwrap();
        c.execute_batch(
            "INSERT INTO customs_units (id, code, name, kind, created_at) VALUES (1, '0000', 'HQ', 'headquarters', 0);
             INSERT INTO enterprises (id, customs_code, uscc, name, credit_rating, unit_id, created_at)
                 VALUES (1, '3101960001', '91110000100000589A', 'E', 'general', 1, 0);
             INSERT INTO users (id, username, display_name, password_hash, role, unit_id, enterprise_id, status,
                                valid_until, signing_key, created_at) VALUES
                 (1, 'admin', 'A', 'h1', 'admin', 1, NULL, 'active', NULL, NULL, 1),
                 (2, 'legal', 'L', 'h2', 'enterprise_legal', NULL, 1, 'active', NULL, zeroblob(32), 2),
                 (7, 'op', 'O', 'h3', 'enterprise_operator', NULL, 1, 'frozen', 99, NULL, 3),
                 (9, 'lost', 'X', 'h4', 'officer', 1, NULL, 'lost', NULL, NULL, 4);
             INSERT INTO devices (id, officer_id, name, actor_id, registered_at) VALUES ('d1', 9, 'hh', 'ab', 5);
             INSERT INTO sessions (id, user_id, device_id, aal, created_at, expires_at) VALUES
                 ('s1', 2, NULL, 1, 6, 7), ('s2', 9, 'd1', 1, 6, 7);",
        )
        .unwrap();
        for i in 1..=5 {
            c.execute(
                "INSERT INTO receipts (enterprise_id, subject, subject_id, kind, state, at, details)
                 VALUES (1, 'booking', ?1, 'booking_confirmed', 'confirmed', ?1, '{}')",
                [i],
            )
            .unwrap();
        }
        c.execute(
            "INSERT INTO reminders (kind, subject_id, due_at, receipt_id, sent_at) VALUES ('booking_soon', 3, 10, 3, 11)",
            [],
        )
        .unwrap();
        // The newest receipt gone (only a repair would do it): its id must still never be handed out again.
        c.execute("DELETE FROM receipts WHERE id = 5", []).unwrap();
        {
            let tx = c.transaction().unwrap();
            for i in 0..20 {
                let actor = crate::audit::Actor::User(1 + i % 2);
                crate::audit::append(
                    &tx,
                    i,
                    &actor,
                    crate::audit::Action::UserCreate,
                    &crate::audit::Subject::User(i),
                    serde_json::json!({"i": i}),
                )
                .unwrap();
            }
            tx.commit().unwrap();
        }
        let users_sql =
            "SELECT id, username, display_name, password_hash, role, unit_id, enterprise_id, status,
                                valid_until, signing_key, created_at FROM users ORDER BY id";
        let tables = [
            users_sql,
            "SELECT * FROM receipts ORDER BY id",
            "SELECT * FROM reminders ORDER BY kind, subject_id",
            "SELECT * FROM sessions ORDER BY id",
            // The columns the rebuilds must keep (later migrations add others, e.g. 0024's pending counts).
            "SELECT id, officer_id, name, actor_id, status, registered_at, last_seen_at FROM devices ORDER BY id",
            "SELECT * FROM audit_log ORDER BY seq",
        ];
        let kept: Vec<_> = tables.iter().map(|sql| dump(&c, sql)).collect();

        apply(&mut c).unwrap();

        for (sql, rows) in tables.iter().zip(&kept) {
            assert_eq!(&dump(&c, sql), rows, "{sql}");
        }
        let enforced: bool = c.pragma_query_value(None, "foreign_keys", |r| r.get(0)).unwrap();
        assert!(enforced, "foreign keys are on again after the migrations");
        assert!(dump(&c, "PRAGMA foreign_key_check").is_empty());
        let chain = crate::audit::verify(&c).unwrap();
        assert_eq!((chain.entries, chain.first_broken), (20, None));
        let indexes = dump(
            &c,
            "SELECT name FROM sqlite_master WHERE type = 'index' AND name IN
                                ('users_enterprise', 'users_unit', 'receipts_enterprise') ORDER BY name",
        );
        assert_eq!(indexes.len(), 3, "{indexes:?}");
        let new_receipt = c
            .query_row(
                "INSERT INTO receipts (enterprise_id, subject, subject_id, kind, state, at, details)
                 VALUES (1, 'delegation', 1, 'reminder_delegation_expiring', 'active', 1, '{}') RETURNING id",
                [],
                |r| r.get::<_, i64>(0),
            )
            .unwrap();
        assert_eq!(new_receipt, 6, "the AUTOINCREMENT high-water mark survived the rebuild");
        assert!(
            c.execute("UPDATE users SET status = 'pending', must_change_password = 1 WHERE id = 7", [])
                .is_ok(),
            "pending is a status now"
        );
        assert!(
            c.execute("UPDATE users SET status = 'asleep' WHERE id = 7", []).is_err(),
            "the CHECK still holds"
        );
        let misspelt = c.execute(
            "INSERT INTO receipts (enterprise_id, subject, subject_id, kind, state, at, details)
             VALUES (1, 'bookings', 1, 'x', 'x', 1, '{}')",
            [],
        );
        assert!(misspelt.is_err(), "an unknown receipt subject is refused");
        assert!(c.execute("DELETE FROM users WHERE id = 9", []).is_err(), "references to users still hold");
    }
}
