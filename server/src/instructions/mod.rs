//! Inspection instructions (指令): created for on-site outcomes, with a checklist from the goods'
//! templates, a unit, a site and a deadline; assigned to officers by a supervisor of the site's subtree.
//!
//! This module owns the instruction's rows and its state machine ([`machine`]); it calls no module that
//! changes state. What follows from an event in other modules (the record opened at assignment, the
//! booking released at cancellation) is the `workflow` module's.
//!
//! # Layout
//! - this file: the types, who sees and supervises an instruction, the checklist, creation and assignment.
//! - [`machine`]: the pure transition table. [`error`]: [`InstructionError`] (mapped in `error.rs`).
//! - [`store`]: all SQL on `instructions` and `instruction_officers`. [`http`]: the handlers.

pub mod error;
pub mod http;
pub mod machine;
pub mod store;

pub use error::InstructionError;

use serde::Serialize;
use serde_json::json;

use crate::domain::events::Event;
use crate::{
    applications::Application,
    audit::Actor,
    db::{Conn, SqlValue, Tx},
    domain::Principal,
    domain::{AccountStatus, InstructionState, Role, Scope, time::rfc3339},
    error::StoreError,
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

pub use store::{by_application, get, set_deadline, set_due_at, set_state, state_counts};

/// Which instructions a caller sees, as SQL over the `instructions` table aliased `i`.
pub fn scope_sql(
    c: &Conn,
    caller: &Principal,
    now: i64,
) -> Result<(String, Vec<SqlValue>), InstructionError> {
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

/// What `GET /api/v1/instructions` narrows the caller's instructions to, as the client names it (unit
/// codes, an officer's id or username); `None` is no restriction.
#[derive(Debug, Default)]
pub struct ListQuery {
    pub state: Option<InstructionState>,
    /// Assigned to this officer: a user id or a username.
    pub officer: Option<String>,
    /// At this site (unit code).
    pub site: Option<String>,
    /// Of this unit's subtree, by district or site (unit code).
    pub unit: Option<String>,
    /// Created in `[from, to)`.
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Only the instructions some overdue rule holds for (`Some(true)`) or none holds for (`Some(false)`).
    pub overdue: Option<bool>,
}

/// [`ListQuery`] looked up: what the store narrows by.
#[derive(Debug, Default)]
pub struct ListFilter {
    pub state: Option<InstructionState>,
    pub officer: Option<i64>,
    pub site: Option<i64>,
    pub unit: Option<i64>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// A condition over `i` with its parameters (the monitoring's overdue rules), and whether it must
    /// hold (`true`) or must not.
    pub condition: Option<(bool, String, Vec<SqlValue>)>,
}

/// A page of the caller's instructions narrowed by `query`, newest first; `overdue` is the rules' condition
/// (`OverdueRules::any`) a `query.overdue` filters by. An unknown unit code or username is the client's mistake.
pub fn list(
    c: &Conn,
    caller: &Principal,
    query: ListQuery,
    overdue: (String, Vec<SqlValue>),
    (limit, offset): (i64, i64),
    now: i64,
) -> Result<Vec<InstructionSummary>, InstructionError> {
    let unit_id = |field: &'static str, code: &str| -> Result<i64, InstructionError> {
        crate::orgs::store::unit_by_code(c, code)
            .map_err(StoreError::from)?
            .map(|u| u.id)
            .ok_or_else(|| InstructionError::UnknownUnit { field, code: code.to_owned() })
    };
    let officer = match query.officer {
        None => None,
        Some(o) => Some(match o.parse::<i64>() {
            Ok(id) => id,
            Err(_) => crate::orgs::store::user_by_name(c, &o)
                .map_err(StoreError::from)?
                .map(|u| u.id)
                .ok_or(InstructionError::UnknownOfficer(o))?,
        }),
    };
    let filter = ListFilter {
        state: query.state,
        officer,
        site: query.site.as_deref().map(|s| unit_id("site", s)).transpose()?,
        unit: query.unit.as_deref().map(|u| unit_id("unit", u)).transpose()?,
        from: query.from,
        to: query.to,
        condition: query.overdue.map(|holds| (holds, overdue.0, overdue.1)),
    };
    Ok(store::list(c, scope_sql(c, caller, now)?, filter, limit, offset)?)
}

/// May the caller see this instruction?
pub fn visible(c: &Conn, caller: &Principal, id: i64, now: i64) -> Result<Instruction, InstructionError> {
    if !store::exists_in(c, id, scope_sql(c, caller, now)?)? {
        return Err(InstructionError::NotFound);
    }
    get(c, id)?.ok_or(InstructionError::NotFound)
}

/// The checklist for the goods: the templates of their categories, in order of first appearance, without
/// repeats; the fallback template where no goods line names a category.
pub fn checklist_for(c: &Conn, app: &Application) -> Result<Vec<CheckItem>, StoreError> {
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
    tx: &Tx<'_>,
    app: &Application,
    deadline: i64,
    now: i64,
) -> Result<Instruction, InstructionError> {
    let checklist = checklist_for(tx, app)?;
    let inspection_no = app.inspection_no.clone().ok_or(InstructionError::NotNumbered)?;
    // One instruction per application: an approval revoked before anything followed from it left its
    // instruction cancelled (never booked or assigned, so no record and no officers); approved again, the
    // same instruction is issued anew rather than a second one created.
    let reissued = match by_application(tx, app.id)? {
        Some(old) if old.state == InstructionState::Cancelled => {
            store::reissue(tx, old.id, &checklist, deadline, now)?;
            Some(old.id)
        }
        Some(old) => {
            return Err(InstructionError::Exists {
                application: app.id,
                instruction: old.id,
                state: old.state,
            });
        }
        None => None,
    };
    let id = match reissued {
        Some(id) => id,
        None => {
            let new = store::NewInstruction {
                application_id: app.id,
                inspection_no: &inspection_no,
                enterprise_id: app.enterprise_id,
                unit_id: app.district_unit,
                site_id: app.site_unit,
                checklist: &checklist,
                deadline,
            };
            store::insert(tx, &new, now)?
        }
    };
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
    get(tx, id)?.ok_or(InstructionError::NotFound)
}

/// The instruction, if the caller may act on it as a supervisor: an admin, or a unit whose subtree holds
/// the instruction's district or site (`db::scope::instruction_in_subtree`, the same rule the lists use,
/// so a supervisor acts on exactly what they see). Anyone else is told it does not exist.
pub fn supervised(tx: &Conn, caller: &Principal, id: i64) -> Result<Instruction, InstructionError> {
    let i = get(tx, id)?.ok_or(InstructionError::NotFound)?;
    if caller.role != Role::Admin
        && !crate::db::scope::instruction_in_subtree_of(tx, caller.unit()?, id).map_err(StoreError::from)?
    {
        return Err(InstructionError::NotFound);
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
    tx: &Tx<'_>,
    now: i64,
    caller: &Principal,
    i: Instruction,
    officers: &[i64],
) -> Result<Assignment, InstructionError> {
    let unit = caller.unit()?;
    let mut ids: Vec<i64> = officers.to_vec();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() || ids.len() > MAX_OFFICERS {
        return Err(InstructionError::OfficerCount(MAX_OFFICERS));
    }
    for officer in &ids {
        let user = orgs_store::user(tx, *officer).map_err(StoreError::from)?;
        let ok = match &user {
            Some(u) => {
                u.role == Role::Officer
                    && u.status == AccountStatus::Active
                    && match u.unit_id {
                        Some(officer_unit) => {
                            orgs_store::in_subtree(tx, unit, officer_unit).map_err(StoreError::from)?
                        }
                        None => false,
                    }
            }
            None => false,
        };
        if !ok {
            return Err(InstructionError::NotAnOfficerHere(*officer));
        }
    }
    store::replace_officers(tx, i.id, &ids, now)?;
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
