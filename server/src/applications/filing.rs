//! The enterprise's steps on an application — file a draft, amend it, submit it, copy it — and who may
//! see one. The handlers in `http.rs` and signed messages (`messages`) both call these.

use crate::db::{Conn, Tx};

use super::{
    AppChange, Application, ApplicationContent, InspectionNo, SubmitError, next_inspection_no, place, store,
    submission_violations, transition, transition_as,
};
use crate::{
    audit::Actor,
    delegations,
    domain::Principal,
    domain::{ApplicationState, Role, Scope, events::ApplicationEvent},
    error::StoreError,
    orgs, review,
};

use super::ApplicationError;

/// Loads an application the caller may see: its enterprise's (own or delegated), or in a reviewing
/// customs user's subtree. Anything else is "not found".
pub fn load_visible(
    c: &Conn,
    caller: &Principal,
    id: i64,
    now: i64,
) -> Result<Application, ApplicationError> {
    let app = store::get(c, id)?.ok_or(ApplicationError::NotFound)?;
    let visible = match caller.role {
        Role::EnterpriseLegal | Role::EnterpriseOperator => {
            delegations::may_act_for(c, caller, app.enterprise_id, Scope::Applications, now)?
        }
        Role::Admin => true,
        Role::Reviewer | Role::Supervisor => {
            orgs::store::in_subtree(c, caller.unit()?, app.district_unit).map_err(StoreError::from)?
        }
        Role::Officer => false,
    };
    if visible { Ok(app) } else { Err(ApplicationError::NotFound) }
}

/// Applications are filed, changed, submitted and copied by enterprises (or their delegates) only.
pub fn require_enterprise(caller: &Principal) -> Result<(), ApplicationError> {
    if caller.role.is_enterprise() { Ok(()) } else { Err(ApplicationError::NotEnterprise) }
}

/// Parses an inspection number a caller typed, its district looked up in the store: a typo is told as a
/// typo, and a store that cannot answer is a logged 500, never "a district not ours".
pub fn typed_inspection_no(c: &Conn, no: &str) -> Result<InspectionNo, ApplicationError> {
    // `parse` asks a yes/no question; the store's failure is kept aside and answered first.
    let failed = std::cell::Cell::new(None);
    let parsed = InspectionNo::parse(no, |district| match orgs::store::unit_by_code(c, district) {
        Ok(unit) => unit.is_some(),
        Err(e) => {
            failed.set(Some(e));
            false
        }
    });
    if let Some(e) = failed.into_inner() {
        return Err(StoreError::from(e).into());
    }
    parsed.map_err(|e| ApplicationError::InvalidInspectionNo(e.0))
}

/// Files a new draft for the caller (the domain step behind `POST /applications` and signed messages).
pub fn create_draft(
    tx: &Tx<'_>,
    now: i64,
    caller: &Principal,
    content: ApplicationContent,
    copied_from: Option<i64>,
) -> Result<Application, ApplicationError> {
    let placement = place(tx, caller, &content, now)?;
    let id = store::insert(
        tx,
        store::NewRow {
            enterprise_id: placement.enterprise_id,
            created_by: caller.user_id,
            content: &content,
            district_unit: placement.district_unit,
            site_unit: placement.site_unit,
            copied_from,
        },
        now,
    )?;
    let mut app = store::get(tx, id)?.ok_or(ApplicationError::NotFound)?;
    let action = if copied_from.is_some() { ApplicationEvent::Copied } else { ApplicationEvent::Drafted };
    transition(tx, now, &Actor::User(caller.user_id), &mut app, ApplicationState::Draft, action, None)?;
    Ok(app)
}

/// Changes a draft or returned application's content (the domain step behind `PUT /applications/{id}`).
pub fn amend(
    tx: &Tx<'_>,
    now: i64,
    caller: &Principal,
    id: i64,
    content: ApplicationContent,
) -> Result<Application, ApplicationError> {
    let mut app = load_visible(tx, caller, id, now)?;
    if !matches!(app.state, ApplicationState::Draft | ApplicationState::Returned) {
        return Err(ApplicationError::NotEditable(app.state));
    }
    // The inspection number encodes direction and district, and the applicant owns the record.
    if app.inspection_no.is_some()
        && (content.direction != app.content.direction
            || content.district_code != app.content.district_code
            || content.applicant_code != app.content.applicant_code)
    {
        return Err(ApplicationError::NumberedFieldsFixed);
    }
    let placement = place(tx, caller, &content, now)?;
    app.content = content;
    app.district_unit = placement.district_unit;
    app.site_unit = placement.site_unit;
    app.enterprise_id = placement.enterprise_id;
    app.version += 1;
    app.updated_at = now;
    store::update_content(tx, &app)?;
    // Every change of something an enterprise owns gets its receipt: an amendment too (the state stays).
    let change = AppChange {
        state: app.state,
        action: ApplicationEvent::Amended,
        opinion: None,
        details: serde_json::json!({"version": app.version}),
    };
    transition_as(tx, now, &Actor::User(caller.user_id), &mut app, change)?;
    Ok(app)
}

/// Submits a draft or returned application: every rule checked, the inspection number assigned, and the
/// district's automatic review applied (the domain step behind `POST /applications/{id}/submit`).
pub fn submit_in(
    tx: &Tx<'_>,
    now: i64,
    caller: &Principal,
    id: i64,
    year: i16,
    deadline: i64,
) -> Result<Application, SubmitError> {
    let mut app = load_visible(tx, caller, id, now)?;
    if !matches!(app.state, ApplicationState::Draft | ApplicationState::Returned) {
        return Err(ApplicationError::NotSubmittable(app.state).into());
    }
    let violations = submission_violations(tx, &app.content, now)?;
    if !violations.is_empty() {
        return Err(ApplicationError::SubmissionRules(violations).into());
    }
    if app.inspection_no.is_none() {
        let no = next_inspection_no(tx, app.content.direction, year, app.content.district_code.as_str())?;
        app.inspection_no = Some(no.to_string());
    }
    app.submitted_at = Some(now);
    let actor = Actor::User(caller.user_id);
    transition(tx, now, &actor, &mut app, ApplicationState::Submitted, ApplicationEvent::Submitted, None)?;
    if review::auto_review_enabled(tx, app.district_unit)? {
        review::apply(
            tx,
            now,
            &Actor::System,
            &mut app,
            review::Action::Approve,
            Some("automatic review"),
            deadline,
        )?;
    }
    Ok(app)
}

/// Copies an application the caller may see into a new draft (`copied_from` names the original).
pub fn copy(tx: &Tx<'_>, now: i64, caller: &Principal, id: i64) -> Result<Application, ApplicationError> {
    let old = load_visible(tx, caller, id, now)?;
    create_draft(tx, now, caller, old.content, Some(old.id))
}

/// The applications the caller may see that match `filter`: the caller's scope is added to it here.
pub fn list_visible(
    c: &Conn,
    caller: &Principal,
    mut filter: store::Filter,
    now: i64,
) -> Result<Vec<Application>, ApplicationError> {
    match caller.role {
        Role::EnterpriseLegal | Role::EnterpriseOperator => {
            filter.enterprises = Some(delegations::enterprises_for(c, caller, &[Scope::Applications], now)?);
        }
        Role::Admin => {}
        Role::Reviewer | Role::Supervisor => {
            filter.district_units = Some(
                orgs::store::subtree(c, caller.unit()?)
                    .map_err(StoreError::from)?
                    .iter()
                    .map(|u| u.id)
                    .collect(),
            );
        }
        Role::Officer => {
            return Err(ApplicationError::OfficerList);
        }
    }
    Ok(store::list(c, &filter).map_err(StoreError::from)?)
}
