//! Embedded schema migrations. Only ever add a new file at the end; never edit one that has shipped.

use anyhow::Context;
use rusqlite::Connection;

/// `(version, sql)`, applied in order; `PRAGMA user_version` records the last one applied.
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
];

pub fn apply(conn: &mut Connection) -> anyhow::Result<()> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql).with_context(|| format!("migration {version}"))?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        tracing::info!(version, "applied migration");
    }
    Ok(())
}
