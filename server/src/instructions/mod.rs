//! Inspection instructions (指令): created for on-site outcomes, with a checklist from the goods'
//! templates, a unit, a site and a deadline; assigned to officers by a supervisor of the site's subtree.
//!
//! This module owns the instruction's rows and its state machine ([`machine`]); it calls no module that
//! changes state. What follows from an event in other modules (the record opened at assignment, the
//! booking released at cancellation) is the `workflow` module's.

pub mod http;
pub mod machine;

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use serde::Serialize;
use serde_json::json;

use crate::domain::events::Event;
use crate::{
    applications::Application,
    audit::Actor,
    auth::Caller,
    domain::{AccountStatus, InstructionState, Role, Scope, time::rfc3339},
    error::{ApiError, invalid},
    orgs::store as orgs_store,
    receipts::{self, Change},
    reference::{self, CheckItem},
};

/// Used for goods whose HS code names no template category.
pub const FALLBACK_CATEGORY: &str = "general_goods";
pub const MAX_OFFICERS: usize = 4;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Instruction {
    pub id: i64,
    pub application_id: i64,
    pub inspection_no: String,
    pub enterprise_id: i64,
    pub unit_id: i64,
    pub site_id: i64,
    pub state: InstructionState,
    pub checklist: Vec<CheckItem>,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub deadline: i64,
    /// The booked slot's start, once a booking is confirmed.
    #[serde(with = "rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub due_at: Option<i64>,
    pub officers: Vec<i64>,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

/// An instruction as lists show it: everything but the checklist, which is on the item
/// (`GET /api/v1/instructions/{id}`); a list of a few hundred would otherwise carry megabytes of checklists.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InstructionSummary {
    pub id: i64,
    pub application_id: i64,
    pub inspection_no: String,
    pub enterprise_id: i64,
    pub unit_id: i64,
    pub site_id: i64,
    pub state: InstructionState,
    /// How many check items the checklist has.
    pub checks: i64,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub deadline: i64,
    /// The booked slot's start, once a booking is confirmed.
    #[serde(with = "rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub due_at: Option<i64>,
    pub officers: Vec<i64>,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

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

pub fn get(c: &Connection, id: i64) -> rusqlite::Result<Option<Instruction>> {
    let i = c
        .prepare_cached(&format!("SELECT {COLS} FROM instructions WHERE id = ?1"))?
        .query_row([id], row)
        .optional()?;
    i.map(|i| with_officers(c, i)).transpose()
}

pub fn by_application(c: &Connection, application_id: i64) -> rusqlite::Result<Option<Instruction>> {
    let i = c
        .prepare_cached(&format!("SELECT {COLS} FROM instructions WHERE application_id = ?1"))?
        .query_row([application_id], row)
        .optional()?;
    i.map(|i| with_officers(c, i)).transpose()
}

/// Which instructions a caller sees, as SQL over the `instructions` table aliased `i`.
pub fn scope_sql(
    c: &Connection,
    caller: &Caller,
    now: i64,
) -> Result<(String, Vec<rusqlite::types::Value>), ApiError> {
    Ok(match caller.role {
        Role::Admin => ("1 = 1".into(), vec![]),
        Role::Officer => (crate::db::scope::instruction_assigned_to("i.id"), vec![caller.user_id.into()]),
        Role::Supervisor | Role::Reviewer => {
            (crate::db::scope::instruction_in_subtree("i"), vec![caller.unit()?.into()])
        }
        Role::EnterpriseLegal | Role::EnterpriseOperator => {
            let ids =
                crate::delegations::enterprises_for(c, caller, &[Scope::Applications, Scope::Bookings], now)?;
            let marks = ids.iter().map(|_| "?").collect::<Vec<_>>().join(",");
            (format!("i.enterprise_id IN ({marks})"), ids.into_iter().map(Into::into).collect())
        }
    })
}

/// What `GET /api/v1/instructions` narrows the caller's instructions to; `None` is no restriction.
#[derive(Debug, Default)]
pub struct ListFilter {
    pub state: Option<InstructionState>,
    /// Assigned to this officer.
    pub officer: Option<i64>,
    /// At this site.
    pub site: Option<i64>,
    /// Of this unit's subtree (by district or site).
    pub unit: Option<i64>,
    /// Created in `[from, to)`.
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// An extra SQL condition over `i` with its parameters (the monitoring's overdue rules).
    pub condition: Option<(String, Vec<rusqlite::types::Value>)>,
}

pub fn list(
    c: &Connection,
    caller: &Caller,
    filter: ListFilter,
    limit: i64,
    offset: i64,
    now: i64,
) -> Result<Vec<InstructionSummary>, ApiError> {
    let (scope, mut values) = scope_sql(c, caller, now)?;
    let mut sql = format!("SELECT {SUMMARY_COLS} FROM instructions i WHERE {scope}");
    if let Some(s) = filter.state {
        sql.push_str(" AND i.state = ?");
        values.push(s.as_str().to_string().into());
    }
    if let Some(officer) = filter.officer {
        sql.push_str(&format!(" AND {}", crate::db::scope::instruction_assigned_to("i.id")));
        values.push(officer.into());
    }
    if let Some(site) = filter.site {
        sql.push_str(" AND i.site_id = ?");
        values.push(site.into());
    }
    if let Some(unit) = filter.unit {
        sql.push_str(&format!(" AND {}", crate::db::scope::instruction_in_subtree("i")));
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
    if let Some((condition, condition_values)) = filter.condition {
        sql.push_str(&format!(" AND {condition}"));
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

/// May the caller see this instruction?
pub fn visible(c: &Connection, caller: &Caller, id: i64, now: i64) -> Result<Instruction, ApiError> {
    let (scope, mut values) = scope_sql(c, caller, now)?;
    values.insert(0, id.into());
    let found: bool = c.query_row(
        &format!("SELECT EXISTS (SELECT 1 FROM instructions i WHERE i.id = ? AND {scope})"),
        rusqlite::params_from_iter(values),
        |r| r.get(0),
    )?;
    if !found {
        return Err(ApiError::not_found("the instruction"));
    }
    get(c, id)?.ok_or_else(|| ApiError::not_found("the instruction"))
}

/// The checklist for the goods: the templates of their categories, in order of first appearance, without
/// repeats; the fallback template where no goods line names a category.
pub fn checklist_for(c: &Connection, app: &Application) -> Result<Vec<CheckItem>, ApiError> {
    let mut categories: Vec<String> = Vec::new();
    for line in &app.content.goods {
        let category = reference::hs(c, &String::from(line.hs_code.clone()))?.and_then(|h| h.category);
        if let Some(cat) = category
            && !categories.contains(&cat)
        {
            categories.push(cat);
        }
    }
    if categories.is_empty() {
        categories.push(FALLBACK_CATEGORY.into());
    }
    let mut items: Vec<CheckItem> = Vec::new();
    for cat in categories {
        for item in reference::checklist_template(c, &cat)?.unwrap_or_default() {
            if !items.iter().any(|i| i.item_id == item.item_id) {
                items.push(item);
            }
        }
    }
    Ok(items)
}

/// Creates the instruction for an application selected for on-site inspection, and tells the enterprise.
pub fn create_for(
    tx: &Transaction<'_>,
    app: &Application,
    deadline: i64,
    now: i64,
) -> Result<Instruction, ApiError> {
    let checklist = checklist_for(tx, app)?;
    let inspection_no =
        app.inspection_no.clone().ok_or_else(|| ApiError::conflict("no_number", "not submitted"))?;
    // One instruction per application: an approval revoked before anything followed from it left its
    // instruction cancelled (never booked or assigned, so no record and no officers); approved again, the
    // same instruction is issued anew rather than a second one created.
    let reissued = match by_application(tx, app.id)? {
        Some(old) if old.state == InstructionState::Cancelled => {
            tx.execute(
                "UPDATE instructions SET state = 'issued', checklist = ?2, deadline = ?3, due_at = NULL,
                                         updated_at = ?4, state_since = ?4
                 WHERE id = ?1",
                params![
                    old.id,
                    serde_json::to_string(&checklist).map_err(anyhow::Error::from)?,
                    deadline,
                    now
                ],
            )?;
            Some(old.id)
        }
        Some(old) => {
            return Err(ApiError::conflict(
                "instruction_exists",
                format!("application {} has instruction {} already ({})", app.id, old.id, old.state),
            ));
        }
        None => None,
    };
    if reissued.is_none() {
        tx.execute(
        "INSERT INTO instructions (application_id, inspection_no, enterprise_id, unit_id, site_id, state, checklist,
                                   deadline, created_at, updated_at, state_since)
         VALUES (?1, ?2, ?3, ?4, ?5, 'issued', ?6, ?7, ?8, ?8, ?8)",
        params![
            app.id,
            inspection_no,
            app.enterprise_id,
            app.district_unit,
            app.site_unit,
            serde_json::to_string(&checklist).map_err(anyhow::Error::from)?,
            deadline,
            now
        ],
    )?;
    }
    let id = reissued.unwrap_or_else(|| tx.last_insert_rowid());
    let change = Change {
        event: Event::InspectionNotice,
        subject_id: id,
        enterprise_id: app.enterprise_id,
        inspection_no: Some(&inspection_no),
        state: InstructionState::Issued.as_str(),
        from: None,
        opinion: None,
        details: json!({"site_id": app.site_unit, "deadline": rfc3339::to_string(deadline),
                        "checks": checklist.len(), "application": app.id, "reissued": reissued.is_some()}),
    };
    receipts::record_change(tx, now, &Actor::System, change)?;
    get(tx, id)?.ok_or_else(|| ApiError::not_found("the instruction"))
}

/// Writes an instruction's new state. Only the workflow calls this, after [`machine::next`] allowed it,
/// in the transaction that writes the event's receipt and audit entry.
pub fn set_state(tx: &Transaction<'_>, now: i64, id: i64, state: InstructionState) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE instructions SET state = ?1, updated_at = ?2, state_since = ?2 WHERE id = ?3",
        params![state, now, id],
    )?;
    Ok(())
}

/// A new deadline (the workflow checks it is an extension and records why).
pub fn set_deadline(tx: &Transaction<'_>, now: i64, id: i64, deadline: i64) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE instructions SET deadline = ?1, updated_at = ?2 WHERE id = ?3",
        params![deadline, now, id],
    )?;
    Ok(())
}

/// The booked slot's start (`None`: no confirmed booking holds the instruction). Written for the bookings
/// module, which decides it; the instruction's table is written here only.
pub fn set_due_at(tx: &Transaction<'_>, now: i64, id: i64, due_at: Option<i64>) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE instructions SET due_at = ?1, updated_at = ?2 WHERE id = ?3",
        params![due_at, now, id],
    )?;
    Ok(())
}

/// The instruction, if the caller may act on it as a supervisor: an admin, or a unit whose subtree holds
/// the instruction's district or site (`db::scope::instruction_in_subtree`, the same rule the lists use,
/// so a supervisor acts on exactly what they see). Anyone else is told it does not exist.
pub fn supervised(tx: &Connection, caller: &Caller, id: i64) -> Result<Instruction, ApiError> {
    let i = get(tx, id)?.ok_or_else(|| ApiError::not_found("the instruction"))?;
    if caller.role != Role::Admin && !crate::db::scope::instruction_in_subtree_of(tx, caller.unit()?, id)? {
        return Err(ApiError::not_found("the instruction"));
    }
    Ok(i)
}

/// Who an instruction was assigned to before and after [`assign_officers`].
pub struct Assignment {
    pub instruction: Instruction,
    pub before: Vec<i64>,
    pub after: Vec<i64>,
}

/// Checks and writes the officers a supervisor of the site's subtree assigns: one to four active field
/// officers of that subtree, replacing earlier ones. The state change is the workflow's.
pub fn assign_officers(
    tx: &Transaction<'_>,
    now: i64,
    caller: &Caller,
    i: Instruction,
    officers: &[i64],
) -> Result<Assignment, ApiError> {
    let unit = caller.unit()?;
    let mut ids: Vec<i64> = officers.to_vec();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() || ids.len() > MAX_OFFICERS {
        return Err(invalid("officer_ids", "officer_count", format!("assign 1 to {MAX_OFFICERS} officers")));
    }
    for officer in &ids {
        let user = orgs_store::user(tx, *officer)?;
        let ok = match &user {
            Some(u) => {
                u.role == Role::Officer
                    && u.status == AccountStatus::Active
                    && match u.unit_id {
                        Some(officer_unit) => orgs_store::in_subtree(tx, unit, officer_unit)?,
                        None => false,
                    }
            }
            None => false,
        };
        if !ok {
            return Err(invalid(
                "officer_ids",
                "not_an_officer_here",
                format!("user {officer} is not an active field officer of your unit"),
            ));
        }
    }
    tx.execute("DELETE FROM instruction_officers WHERE instruction_id = ?1", [i.id])?;
    for officer in &ids {
        tx.execute(
            "INSERT INTO instruction_officers (instruction_id, officer_id, assigned_at) VALUES (?1, ?2, ?3)",
            params![i.id, officer, now],
        )?;
    }
    Ok(Assignment { before: i.officers.clone(), instruction: i, after: ids })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StateCount {
    pub unit_id: i64,
    pub unit_code: String,
    /// `application` or `instruction`.
    pub subject: String,
    pub state: String,
    pub count: i64,
}

/// Applications and instructions created in `[from, to)` in the subtree of `unit`, counted by unit and state.
pub fn state_counts(c: &Connection, unit: i64, from: i64, to: i64) -> rusqlite::Result<Vec<StateCount>> {
    let mut stmt = c.prepare(&format!(
        "SELECT x.unit, u.code, x.subject, x.state, count(*) FROM (
             SELECT district_unit AS unit, 'application' AS subject, state, created_at FROM applications
             UNION ALL
             SELECT unit_id, 'instruction', state, created_at FROM instructions) x
         JOIN customs_units u ON u.id = x.unit
         WHERE {} AND x.created_at >= ? AND x.created_at < ?
         GROUP BY x.unit, x.subject, x.state ORDER BY u.code, x.subject, x.state",
        crate::db::scope::unit_in_subtree("x.unit")
    ))?;
    stmt.query_map(params![unit, from, to], |r| {
        Ok(StateCount {
            unit_id: r.get(0)?,
            unit_code: r.get(1)?,
            subject: r.get(2)?,
            state: r.get(3)?,
            count: r.get(4)?,
        })
    })?
    .collect()
}
