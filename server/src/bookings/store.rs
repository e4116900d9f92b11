//! The bookings' tables (`bookings`, `slot_usage`, `no_shows`, and the calendars' `slot_calendars` and
//! `closed_days`): every SQL statement of the module,
//! answering [`StoreError`], never HTTP. The rules that decide what to write are in `request.rs` and
//! `change.rs`.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use serde::Serialize;

use std::collections::BTreeMap;

use super::calendar_data::{self as calendar, Calendar, CalendarSpec, ClosedDay, SlotTime};
use crate::{
    db::{StoreError, scope},
    domain::{BookingState, time::rfc3339},
};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Booking {
    pub id: i64,
    pub instruction_id: i64,
    pub inspection_no: String,
    pub enterprise_id: i64,
    pub site_id: i64,
    pub site_code: String,
    pub state: BookingState,
    pub slot: SlotTime,
    /// Customs' feedback on a decline, or the reason recorded with a cancel or reschedule.
    pub feedback: Option<String>,
    /// Slots customs proposed when declining; take one with `accept-alternative`.
    pub alternatives: Vec<SlotTime>,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}

const COLS: &str = "b.id, b.instruction_id, i.inspection_no, b.enterprise_id, b.site_id, u.code, b.state,
                    b.starts_at, b.ends_at, u.timezone, b.feedback, b.alternatives, b.created_at, b.updated_at";
const FROM: &str =
    "bookings b JOIN instructions i ON i.id = b.instruction_id JOIN customs_units u ON u.id = b.site_id";

/// A booking row with the raw slot instants the rules need.
pub(super) struct Stored {
    pub booking: Booking,
    pub starts_at: i64,
    pub ends_at: i64,
}

/// A stored slot the calendar cannot read, as the row's error for column `idx` (like `db::json_column`).
fn damaged(idx: usize, e: calendar::StoredTimeError) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
}

fn row(r: &Row<'_>) -> rusqlite::Result<Stored> {
    let timezone: String = r.get(9)?;
    let starts_at: i64 = r.get(7)?;
    let ends_at: i64 = r.get(8)?;
    let length = ends_at - starts_at;
    let alternatives: Vec<i64> = crate::db::stored_json(r, 11, "bookings.alternatives", r.get::<_, i64>(0)?)?;
    Ok(Stored {
        booking: Booking {
            id: r.get(0)?,
            instruction_id: r.get(1)?,
            inspection_no: r.get(2)?,
            enterprise_id: r.get(3)?,
            site_id: r.get(4)?,
            site_code: r.get(5)?,
            state: r.get(6)?,
            slot: SlotTime::new(starts_at, ends_at, &timezone).map_err(|e| damaged(9, e))?,
            feedback: r.get(10)?,
            alternatives: alternatives
                .iter()
                .map(|s| SlotTime::new(*s, s + length, &timezone))
                .collect::<Result<_, _>>()
                .map_err(|e| damaged(11, e))?,
            created_at: r.get(12)?,
            updated_at: r.get(13)?,
        },
        starts_at,
        ends_at,
    })
}

pub(super) fn load(c: &Connection, id: i64) -> Result<Option<Stored>, StoreError> {
    Ok(c.prepare_cached(&format!("SELECT {COLS} FROM {FROM} WHERE b.id = ?1"))?
        .query_row([id], row)
        .optional()?)
}

/// Slot usage in `[from, to)`: one range scan of `slot_usage`'s primary key.
const USAGE_SQL: &str = "SELECT starts_at, used, capacity FROM slot_usage WHERE site_id = ?1 AND starts_at >= ?2 AND starts_at < ?3";

pub(super) fn usage(
    c: &Connection,
    site_id: i64,
    from: i64,
    to: i64,
) -> Result<Vec<(i64, i64, i64)>, StoreError> {
    let mut stmt = c.prepare_cached(USAGE_SQL)?;
    let rows = stmt.query_map(params![site_id, from, to], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Takes one place in the slot, or says it is full. Inside the caller's write transaction.
pub(super) fn take_place(
    tx: &Transaction<'_>,
    site_id: i64,
    capacity: i64,
    start: i64,
) -> Result<bool, StoreError> {
    tx.prepare_cached(
        "INSERT INTO slot_usage (site_id, starts_at, used, capacity) VALUES (?1, ?2, 0, ?3)
         ON CONFLICT (site_id, starts_at) DO NOTHING",
    )?
    .execute(params![site_id, start, capacity])?;
    let taken = tx
        .prepare_cached(
            "UPDATE slot_usage SET used = used + 1 WHERE site_id = ?1 AND starts_at = ?2 AND used < capacity",
        )?
        .execute(params![site_id, start])?;
    Ok(taken == 1)
}

/// The slot's used places and capacity, if a place in it was ever taken (no row: none used, the
/// calendar's capacity).
pub(super) fn used_of(c: &Connection, site_id: i64, start: i64) -> Result<Option<(i64, i64)>, StoreError> {
    Ok(c.prepare_cached("SELECT used, capacity FROM slot_usage WHERE site_id = ?1 AND starts_at = ?2")?
        .query_row(params![site_id, start], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

pub(super) fn release_place(tx: &Transaction<'_>, site_id: i64, start: i64) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE slot_usage SET used = used - 1 WHERE site_id = ?1 AND starts_at = ?2 AND used > 0",
    )?
    .execute(params![site_id, start])?;
    Ok(())
}

/// The confirmed booking's slot of an instruction, for the record's server-owned part.
pub fn confirmed_slot(
    c: &Connection,
    instruction_id: i64,
) -> Result<Option<fieldcheck_sync::schema::Slot>, StoreError> {
    Ok(c.query_row(
        "SELECT starts_at, ends_at FROM bookings WHERE instruction_id = ?1 AND state = 'confirmed'",
        [instruction_id],
        |r| Ok(fieldcheck_sync::schema::Slot { starts_at: r.get(0)?, ends_at: r.get(1)? }),
    )
    .optional()?)
}

pub(super) fn set_state(
    tx: &Transaction<'_>,
    now: i64,
    id: i64,
    state: BookingState,
    feedback: Option<&str>,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE bookings SET state = ?1, feedback = coalesce(?2, feedback), updated_at = ?3 WHERE id = ?4",
        params![state, feedback, now, id],
    )?;
    Ok(())
}

pub(super) fn no_shows_within(tx: &Connection, enterprise_id: i64, since: i64) -> Result<i64, StoreError> {
    Ok(tx
        .prepare_cached("SELECT count(*) FROM no_shows WHERE enterprise_id = ?1 AND at >= ?2")?
        .query_row(params![enterprise_id, since], |r| r.get(0))?)
}

pub(super) fn record_no_show(
    tx: &Transaction<'_>,
    now: i64,
    b: &Booking,
    kind: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO no_shows (enterprise_id, booking_id, kind, at) VALUES (?1, ?2, ?3, ?4)",
        params![b.enterprise_id, b.id, kind, now],
    )?;
    Ok(())
}

/// The booking `id`, or [`StoreError::NotFound`].
pub(super) fn existing(c: &Connection, id: i64) -> Result<Stored, StoreError> {
    load(c, id)?.ok_or(StoreError::NotFound("the booking"))
}

/// Whose bookings a caller's list may show (the visibility rule decides; the store writes its SQL).
pub(super) enum Seen {
    All,
    /// Bookings of these enterprises (the caller's own and those delegated to it).
    Enterprises(Vec<i64>),
    /// Bookings at sites in the subtree of this unit.
    Subtree(i64),
    /// Bookings of instructions assigned to this officer.
    AssignedTo(i64),
}

/// The booking's state, if it exists.
pub fn state_of(c: &Connection, id: i64) -> Result<Option<BookingState>, StoreError> {
    Ok(c.query_row("SELECT state FROM bookings WHERE id = ?1", [id], |r| r.get(0)).optional()?)
}

/// Bookings the caller sees (`seen`) matching the filter, newest first.
pub(super) fn list(c: &Connection, seen: &Seen, f: &ListFilter) -> Result<Vec<Booking>, StoreError> {
    let mut values: Vec<rusqlite::types::Value> = Vec::new();
    let scope = match seen {
        Seen::All => "1 = 1".to_string(),
        Seen::Enterprises(ids) => {
            let marks = ids.iter().map(|_| "?").collect::<Vec<_>>().join(",");
            values.extend(ids.iter().map(|&id| id.into()));
            format!("b.enterprise_id IN ({marks})")
        }
        Seen::Subtree(unit) => {
            values.push((*unit).into());
            scope::unit_in_subtree("b.site_id")
        }
        Seen::AssignedTo(officer) => {
            values.push((*officer).into());
            scope::instruction_assigned_to("b.instruction_id")
        }
    };
    let mut sql = format!("SELECT {COLS} FROM {FROM} WHERE {scope}");
    if let Some(s) = f.state {
        sql.push_str(" AND b.state = ?");
        values.push(s.as_str().to_string().into());
    }
    if let Some(i) = f.instruction_id {
        sql.push_str(" AND b.instruction_id = ?");
        values.push(i.into());
    }
    sql.push_str(" ORDER BY b.id DESC LIMIT ? OFFSET ?");
    values.push(f.limit.into());
    values.push(f.offset.into());
    let mut stmt = c.prepare(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(values), row)?;
    Ok(rows.map(|r| r.map(|s| s.booking)).collect::<Result<_, _>>()?)
}

/// Which bookings a list shows, within the caller's scope.
pub struct ListFilter {
    pub state: Option<BookingState>,
    pub instruction_id: Option<i64>,
    pub limit: i64,
    pub offset: i64,
}

/// The place a live (requested or confirmed) booking holds.
pub(super) struct LivePlace {
    pub id: i64,
    pub site_id: i64,
    pub starts_at: i64,
}

/// The instruction's live booking, if it has one.
pub(super) fn live_of(c: &Connection, instruction_id: i64) -> Result<Option<LivePlace>, StoreError> {
    Ok(c
        .prepare_cached(
            "SELECT id, site_id, starts_at FROM bookings WHERE instruction_id = ?1 AND state IN ('requested', 'confirmed')",
        )?
        .query_row([instruction_id], |r| Ok(LivePlace { id: r.get(0)?, site_id: r.get(1)?, starts_at: r.get(2)? }))
        .optional()?)
}

/// Ids of the live bookings at a site starting in `[from, to)`.
pub(super) fn live_between(c: &Connection, site_id: i64, from: i64, to: i64) -> Result<Vec<i64>, StoreError> {
    let mut stmt = c.prepare(
        "SELECT id FROM bookings WHERE site_id = ?1 AND starts_at >= ?2 AND starts_at < ?3
         AND state IN ('requested', 'confirmed') ORDER BY id",
    )?;
    Ok(stmt.query_map(params![site_id, from, to], |r| r.get(0))?.collect::<Result<_, _>>()?)
}

/// A new booking row for `instruction`; answers its id.
pub(super) fn insert(
    tx: &Transaction<'_>,
    now: i64,
    instruction: &crate::instructions::Instruction,
    start: i64,
    end: i64,
    state: BookingState,
    requested_by: i64,
) -> Result<i64, StoreError> {
    let i = instruction;
    tx.prepare_cached(
        "INSERT INTO bookings (instruction_id, enterprise_id, site_id, starts_at, ends_at, state, requested_by,
                               created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
    )?
    .execute(params![i.id, i.enterprise_id, i.site_id, start, end, state, requested_by, now])?;
    Ok(tx.last_insert_rowid())
}

/// Customs' decline: its feedback and the alternatives it proposes (slot starts).
pub(super) fn set_declined(
    tx: &Transaction<'_>,
    now: i64,
    id: i64,
    feedback: &str,
    alternatives: &[i64],
) -> Result<(), StoreError> {
    let alternatives = serde_json::to_string(alternatives)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    tx.execute(
        "UPDATE bookings SET state = 'declined', feedback = ?1, alternatives = ?2, updated_at = ?3 WHERE id = ?4",
        params![feedback, alternatives, now, id],
    )?;
    Ok(())
}

/// The enterprise took one of the proposed alternatives: confirmed there, no alternatives left.
pub(super) fn take_alternative(
    tx: &Transaction<'_>,
    now: i64,
    id: i64,
    start: i64,
    end: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE bookings SET state = 'confirmed', starts_at = ?1, ends_at = ?2, alternatives = '[]', updated_at = ?3
         WHERE id = ?4",
        params![start, end, now, id],
    )?;
    Ok(())
}

/// The booking moved to `[start, end)` in `state`; a `reason` replaces the feedback.
pub(super) fn move_to(
    tx: &Transaction<'_>,
    now: i64,
    id: i64,
    state: BookingState,
    start: i64,
    end: i64,
    reason: Option<&str>,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE bookings SET state = ?1, starts_at = ?2, ends_at = ?3, feedback = coalesce(?4, feedback), updated_at = ?5
         WHERE id = ?6",
        params![state, start, end, reason, now, id],
    )?;
    Ok(())
}

/// A site's calendar row as the rules read it.
pub(super) struct CalendarRow {
    pub slot_minutes: i64,
    pub capacity: i64,
    /// Weekday → working windows, as stored (the rules parse the windows).
    pub hours: BTreeMap<String, Vec<String>>,
    pub auto_confirm: bool,
    /// The site's zone name.
    pub timezone: String,
}

const CALENDAR_FROM: &str = "slot_calendars k JOIN customs_units u ON u.id = k.site_id WHERE k.site_id = ?1";

pub(super) fn calendar_rules(c: &Connection, site_id: i64) -> Result<Option<CalendarRow>, StoreError> {
    Ok(c.prepare_cached(&format!(
        "SELECT k.slot_minutes, k.capacity, k.hours, k.auto_confirm, u.timezone FROM {CALENDAR_FROM}"
    ))?
    .query_row([site_id], |r| {
        Ok(CalendarRow {
            slot_minutes: r.get(0)?,
            capacity: r.get(1)?,
            hours: crate::db::stored_json(r, 2, "slot_calendars.hours", site_id)?,
            auto_confirm: r.get(3)?,
            timezone: r.get(4)?,
        })
    })
    .optional()?)
}

/// The site's closed days as stored (`YYYY-MM-DD`), unordered.
pub(super) fn closed_dates(c: &Connection, site_id: i64) -> Result<Vec<String>, StoreError> {
    let mut stmt = c.prepare_cached("SELECT day FROM closed_days WHERE site_id = ?1")?;
    Ok(stmt.query_map([site_id], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?)
}

/// The site's calendar as supervisors see it, closed days by date.
pub(super) fn calendar(c: &Connection, site_id: i64) -> Result<Option<Calendar>, StoreError> {
    let row = c
        .query_row(
            &format!(
                "SELECT k.site_id, u.code, u.timezone, k.slot_minutes, k.capacity, k.auto_confirm, k.hours,
                        k.updated_at FROM {CALENDAR_FROM}"
            ),
            [site_id],
            |r| {
                Ok(Calendar {
                    site_id: r.get(0)?,
                    site_code: r.get(1)?,
                    timezone: r.get(2)?,
                    slot_minutes: r.get(3)?,
                    capacity: r.get(4)?,
                    auto_confirm: r.get(5)?,
                    hours: crate::db::stored_json(r, 6, "slot_calendars.hours", site_id)?,
                    closed_days: Vec::new(),
                    updated_at: r.get(7)?,
                })
            },
        )
        .optional()?;
    let Some(mut cal) = row else { return Ok(None) };
    let mut stmt = c.prepare("SELECT day, reason FROM closed_days WHERE site_id = ?1 ORDER BY day")?;
    cal.closed_days = stmt
        .query_map([site_id], |r| Ok(ClosedDay { date: r.get(0)?, reason: r.get(1)? }))?
        .collect::<Result<_, _>>()?;
    Ok(Some(cal))
}

/// Writes the calendar row (hours, slot length, capacity); slots from `now` on take the new capacity, or
/// what they already use if that is more.
pub(super) fn put_calendar(
    tx: &Transaction<'_>,
    now: i64,
    site_id: i64,
    spec: &CalendarSpec,
    actor: &str,
) -> Result<(), StoreError> {
    let hours = serde_json::to_string(&spec.hours).expect("a map of strings serialises");
    tx.execute(
        "INSERT INTO slot_calendars (site_id, slot_minutes, capacity, hours, auto_confirm, updated_by, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (site_id) DO UPDATE SET slot_minutes = excluded.slot_minutes, capacity = excluded.capacity,
             hours = excluded.hours, auto_confirm = excluded.auto_confirm, updated_by = excluded.updated_by,
             updated_at = excluded.updated_at",
        params![site_id, spec.slot_minutes, spec.capacity, hours, spec.auto_confirm, actor, now],
    )?;
    tx.execute(
        "UPDATE slot_usage SET capacity = max(?2, used) WHERE site_id = ?1 AND starts_at >= ?3",
        params![site_id, spec.capacity, now],
    )?;
    Ok(())
}

/// Replaces the site's closed days with `days` (date, reason).
pub(super) fn replace_closed_days(
    tx: &Transaction<'_>,
    site_id: i64,
    days: &[(String, &str)],
) -> Result<(), StoreError> {
    tx.execute("DELETE FROM closed_days WHERE site_id = ?1", [site_id])?;
    for (date, reason) in days {
        tx.execute(
            "INSERT INTO closed_days (site_id, day, reason) VALUES (?1, ?2, ?3)
             ON CONFLICT (site_id, day) DO UPDATE SET reason = excluded.reason",
            params![site_id, date, reason],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn availability_reads_slot_usage_through_its_primary_key() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::Db::open(dir.path(), 1).unwrap();
        let plan = db
            .write_blocking(|tx| -> Result<_, StoreError> {
                let mut stmt = tx.prepare(&format!("EXPLAIN QUERY PLAN {USAGE_SQL}"))?;
                let rows = stmt.query_map(params![1, 0, 1], |r| r.get::<_, String>(3))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?.join("\n"))
            })
            .unwrap();
        assert!(plan.contains("SEARCH slot_usage USING PRIMARY KEY"), "{plan}");
    }
}
