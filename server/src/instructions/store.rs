//! SQL for `instructions` and `instruction_officers`, and the state counts over applications and
//! instructions that monitoring shows.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::{Instruction, InstructionSummary, ListFilter, StateCount};
use crate::{
    db::{SqlValue, scope},
    domain::InstructionState,
    error::StoreError,
    reference::CheckItem,
};

const SUMMARY_COLS: &str = "id, application_id, inspection_no, enterprise_id, unit_id, site_id, state, \
     json_array_length(checklist), deadline, due_at, created_at";

fn summary_row(r: &Row<'_>) -> rusqlite::Result<InstructionSummary> {
    Ok(InstructionSummary {
        id: r.get(0)?,
        application_id: r.get(1)?,
        inspection_no: r.get(2)?,
        enterprise_id: r.get(3)?,
        unit_id: r.get(4)?,
        site_id: r.get(5)?,
        state: r.get(6)?,
        checks: r.get(7)?,
        deadline: r.get(8)?,
        due_at: r.get(9)?,
        officers: Vec::new(),
        created_at: r.get(10)?,
    })
}

fn officers_of(c: &Connection, id: i64) -> rusqlite::Result<Vec<i64>> {
    let mut stmt = c.prepare_cached(
        "SELECT officer_id FROM instruction_officers WHERE instruction_id = ?1 ORDER BY officer_id",
    )?;
    stmt.query_map([id], |r| r.get(0))?.collect()
}

const COLS: &str = "id, application_id, inspection_no, enterprise_id, unit_id, site_id, state, checklist, deadline, due_at, created_at";

fn row(r: &Row<'_>) -> rusqlite::Result<Instruction> {
    let id: i64 = r.get(0)?;
    Ok(Instruction {
        id,
        application_id: r.get(1)?,
        inspection_no: r.get(2)?,
        enterprise_id: r.get(3)?,
        unit_id: r.get(4)?,
        site_id: r.get(5)?,
        state: r.get(6)?,
        checklist: crate::db::stored_json(r, 7, "instructions.checklist", id)?,
        deadline: r.get(8)?,
        due_at: r.get(9)?,
        officers: Vec::new(),
        created_at: r.get(10)?,
    })
}

fn with_officers(c: &Connection, mut i: Instruction) -> rusqlite::Result<Instruction> {
    i.officers = officers_of(c, i.id)?;
    Ok(i)
}

pub fn get(c: &Connection, id: i64) -> Result<Option<Instruction>, StoreError> {
    let i = c
        .prepare_cached(&format!("SELECT {COLS} FROM instructions WHERE id = ?1"))?
        .query_row([id], row)
        .optional()?;
    Ok(i.map(|i| with_officers(c, i)).transpose()?)
}

pub fn by_application(c: &Connection, application_id: i64) -> Result<Option<Instruction>, StoreError> {
    let i = c
        .query_row(
            &format!("SELECT {COLS} FROM instructions WHERE application_id = ?1"),
            [application_id],
            row,
        )
        .optional()?;
    Ok(i.map(|i| with_officers(c, i)).transpose()?)
}

/// A page of the instructions `scope` (a condition over `i` with its values) lets through, narrowed by
/// `filter`, newest first.
pub fn list(
    c: &Connection,
    (scope, mut values): (String, Vec<SqlValue>),
    filter: ListFilter,
    limit: i64,
    offset: i64,
) -> Result<Vec<InstructionSummary>, StoreError> {
    let mut sql = format!("SELECT {SUMMARY_COLS} FROM instructions i WHERE {scope}");
    if let Some(s) = filter.state {
        sql.push_str(" AND i.state = ?");
        values.push(s.as_str().to_string().into());
    }
    if let Some(officer) = filter.officer {
        sql.push_str(&format!(" AND {}", scope::instruction_assigned_to("i.id")));
        values.push(officer.into());
    }
    if let Some(site) = filter.site {
        sql.push_str(" AND i.site_id = ?");
        values.push(site.into());
    }
    if let Some(unit) = filter.unit {
        sql.push_str(&format!(" AND {}", scope::instruction_in_subtree("i")));
        values.push(unit.into());
    }
    if let Some(from) = filter.from {
        sql.push_str(" AND i.created_at >= ?");
        values.push(from.into());
    }
    if let Some(to) = filter.to {
        sql.push_str(" AND i.created_at < ?");
        values.push(to.into());
    }
    if let Some((holds, condition, condition_values)) = filter.condition {
        sql.push_str(&format!(" AND {}({condition})", if holds { "" } else { "NOT " }));
        values.extend(condition_values);
    }
    sql.push_str(" ORDER BY i.id DESC LIMIT ? OFFSET ?");
    values.push(limit.into());
    values.push(offset.into());
    let mut stmt = c.prepare(&sql)?;
    let mut rows =
        stmt.query_map(rusqlite::params_from_iter(values), summary_row)?.collect::<Result<Vec<_>, _>>()?;
    for i in &mut rows {
        i.officers = officers_of(c, i.id)?;
    }
    Ok(rows)
}

/// Does instruction `id` pass `scope` (a condition over `i` with its values)?
pub fn exists_in(
    c: &Connection,
    id: i64,
    (scope, mut values): (String, Vec<SqlValue>),
) -> Result<bool, StoreError> {
    values.insert(0, id.into());
    Ok(c.query_row(
        &format!("SELECT EXISTS (SELECT 1 FROM instructions i WHERE i.id = ? AND {scope})"),
        rusqlite::params_from_iter(values),
        |r| r.get(0),
    )?)
}

fn checklist_text(checklist: &[CheckItem]) -> Result<String, StoreError> {
    serde_json::to_string(checklist)
        .map_err(|e| StoreError::Other(rusqlite::Error::ToSqlConversionFailure(e.into())))
}

/// A cancelled instruction issued anew: state `issued`, the new checklist and deadline, no booked time.
pub fn reissue(
    tx: &Transaction<'_>,
    id: i64,
    checklist: &[CheckItem],
    deadline: i64,
    now: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE instructions SET state = 'issued', checklist = ?2, deadline = ?3, due_at = NULL,
                                 updated_at = ?4, state_since = ?4
         WHERE id = ?1",
        params![id, checklist_text(checklist)?, deadline, now],
    )?;
    Ok(())
}

/// A new instruction in state `issued`; answers its id.
pub struct NewInstruction<'a> {
    pub application_id: i64,
    pub inspection_no: &'a str,
    pub enterprise_id: i64,
    pub unit_id: i64,
    pub site_id: i64,
    pub checklist: &'a [CheckItem],
    pub deadline: i64,
}

pub fn insert(tx: &Transaction<'_>, new: &NewInstruction<'_>, now: i64) -> Result<i64, StoreError> {
    tx.execute(
        "INSERT INTO instructions (application_id, inspection_no, enterprise_id, unit_id, site_id, state, checklist,
                                   deadline, created_at, updated_at, state_since)
         VALUES (?1, ?2, ?3, ?4, ?5, 'issued', ?6, ?7, ?8, ?8, ?8)",
        params![
            new.application_id,
            new.inspection_no,
            new.enterprise_id,
            new.unit_id,
            new.site_id,
            checklist_text(new.checklist)?,
            new.deadline,
            now
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

/// Writes an instruction's new state. Only the workflow calls this, after [`super::machine::next`]
/// allowed it, in the transaction that writes the event's receipt and audit entry.
pub fn set_state(tx: &Transaction<'_>, now: i64, id: i64, state: InstructionState) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE instructions SET state = ?1, updated_at = ?2, state_since = ?2 WHERE id = ?3")?
        .execute(params![state, now, id])?;
    Ok(())
}

/// A new deadline (the workflow checks it is an extension and records why).
pub fn set_deadline(tx: &Transaction<'_>, now: i64, id: i64, deadline: i64) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE instructions SET deadline = ?1, updated_at = ?2 WHERE id = ?3",
        params![deadline, now, id],
    )?;
    Ok(())
}

/// The booked slot's start (`None`: no confirmed booking holds the instruction). Written for the bookings
/// module, which decides it; the instruction's table is written here only.
pub fn set_due_at(tx: &Transaction<'_>, now: i64, id: i64, due_at: Option<i64>) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE instructions SET due_at = ?1, updated_at = ?2 WHERE id = ?3")?
        .execute(params![due_at, now, id])?;
    Ok(())
}

/// The instruction's officers become `officers` (earlier ones are dropped).
pub fn replace_officers(tx: &Transaction<'_>, id: i64, officers: &[i64], now: i64) -> Result<(), StoreError> {
    tx.execute("DELETE FROM instruction_officers WHERE instruction_id = ?1", [id])?;
    for officer in officers {
        tx.execute(
            "INSERT INTO instruction_officers (instruction_id, officer_id, assigned_at) VALUES (?1, ?2, ?3)",
            params![id, officer, now],
        )?;
    }
    Ok(())
}

/// Applications and instructions created in `[from, to)` in the subtree of `unit`, counted by unit and state.
pub fn state_counts(c: &Connection, unit: i64, from: i64, to: i64) -> Result<Vec<StateCount>, StoreError> {
    let mut stmt = c.prepare(&format!(
        "SELECT x.unit, u.code, x.subject, x.state, count(*) FROM (
             SELECT district_unit AS unit, 'application' AS subject, state, created_at FROM applications
             UNION ALL
             SELECT unit_id, 'instruction', state, created_at FROM instructions) x
         JOIN customs_units u ON u.id = x.unit
         WHERE {} AND x.created_at >= ? AND x.created_at < ?
         GROUP BY x.unit, x.subject, x.state ORDER BY u.code, x.subject, x.state",
        scope::unit_in_subtree("x.unit")
    ))?;
    Ok(stmt
        .query_map(params![unit, from, to], |r| {
            Ok(StateCount {
                unit_id: r.get(0)?,
                unit_code: r.get(1)?,
                subject: r.get(2)?,
                state: r.get(3)?,
                count: r.get(4)?,
            })
        })?
        .collect::<Result<_, _>>()?)
}
