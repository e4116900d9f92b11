//! The event stream's reads: the receipts after an id, as stream events with the unit each belongs to,
//! and the subtree's unit ids for the per-event scope check.

use std::collections::HashSet;

use super::SUBTREE;
use crate::{
    db::Conn,
    error::StoreError,
    monitoring::{Scope, hub::StreamEvent},
};

/// Stored events after `after`, oldest first, at most `limit`.
pub fn after(c: &Conn, after: i64, limit: i64) -> Result<Vec<StreamEvent>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT r.id, r.subject, r.subject_id, r.inspection_no, r.kind, r.state, r.at, i.id,
                COALESCE(i.unit_id, a.district_unit), COALESCE(i.site_id, a.site_unit)
         FROM receipts r
         LEFT JOIN bookings b ON r.subject = 'booking' AND b.id = r.subject_id
         LEFT JOIN instructions i ON i.id = CASE r.subject WHEN 'instruction' THEN r.subject_id
                                                            WHEN 'booking' THEN b.instruction_id END
         LEFT JOIN applications a ON r.subject = 'application' AND a.id = r.subject_id
         WHERE r.id > ?1 ORDER BY r.id LIMIT ?2",
    )?;
    let rows = stmt.query_map([after, limit], |r| {
        Ok(StreamEvent {
            id: r.get(0)?,
            subject: r.get(1)?,
            subject_id: r.get(2)?,
            inspection_no: r.get(3)?,
            kind: r.get(4)?,
            state: r.get(5)?,
            at: r.get(6)?,
            instruction_id: r.get(7)?,
            unit_id: r.get(8)?,
            site_id: r.get(9)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn newest_id(c: &Conn) -> Result<i64, StoreError> {
    Ok(c.query_row("SELECT coalesce(max(id), 0) FROM receipts", [], |r| r.get(0))?)
}

/// The subtree's unit ids, for the per-event scope check.
pub fn units_of(c: &Conn, scope: Scope) -> Result<HashSet<i64>, StoreError> {
    let mut stmt = c.prepare_cached(&format!("{SUBTREE} SELECT id FROM t"))?;
    let rows = stmt.query_map([scope.root], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
