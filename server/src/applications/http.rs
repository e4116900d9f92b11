//! Application endpoints for enterprises (file, amend, submit, copy) and customs staff (read).

use axum::{Json, extract::State, http::StatusCode};
use rusqlite::Connection;
use serde::Deserialize;

use super::{Application, ApplicationContent, store};
use crate::domain::events::ApplicationEvent;
use crate::{
    audit::Actor,
    auth::Caller,
    delegations,
    domain::{ApplicationState, Role, Scope, time::rfc3339},
    error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody, invalid},
    orgs, review,
    state::AppState,
};

/// Loads an application the caller may see: its enterprise's (own or delegated), or in a reviewing
/// customs user's subtree. Anything else is "not found".
pub fn load_visible(c: &Connection, caller: &Caller, id: i64, now: i64) -> Result<Application, ApiError> {
    let app = store::get(c, id)?.ok_or_else(|| ApiError::not_found("the application"))?;
    let visible = match caller.role {
        Role::EnterpriseLegal | Role::EnterpriseOperator => {
            delegations::may_act_for(c, caller, app.enterprise_id, Scope::Applications, now)?
        }
        Role::Admin => true,
        Role::Reviewer | Role::Supervisor => orgs::store::in_subtree(c, caller.unit()?, app.district_unit)?,
        Role::Officer => false,
    };
    if visible { Ok(app) } else { Err(ApiError::not_found("the application")) }
}

fn require_enterprise(caller: &Caller) -> Result<(), ApiError> {
    if caller.role.is_enterprise() {
        Ok(())
    } else {
        Err(ApiError::forbidden("applications are filed by enterprises"))
    }
}

#[utoipa::path(post, path = "/api/v1/applications", tag = "applications", request_body = ApplicationContent,
    security(("bearer" = [])),
    responses((status = 201, body = Application), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(content): ApiJson<ApplicationContent>,
) -> Result<(StatusCode, Json<Application>), ApiError> {
    require_enterprise(&caller)?;
    let now = state.now_ms();
    let app = state.db.write(move |tx| create_draft(tx, now, &caller, content, None)).await?;
    state.receipts_changed();
    Ok((StatusCode::CREATED, Json(app)))
}

/// Files a new draft for the caller (the domain step behind `POST /applications` and signed messages).
pub fn create_draft(
    tx: &rusqlite::Transaction<'_>,
    now: i64,
    caller: &Caller,
    content: ApplicationContent,
    copied_from: Option<i64>,
) -> Result<Application, ApiError> {
    let placement = super::place(tx, caller, &content, now)?;
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
    let mut app = store::get(tx, id)?.ok_or_else(|| ApiError::not_found("the application"))?;
    let action = if copied_from.is_some() { ApplicationEvent::Copied } else { ApplicationEvent::Drafted };
    super::transition(
        tx,
        now,
        &Actor::User(caller.user_id),
        &mut app,
        ApplicationState::Draft,
        action,
        None,
    )?;
    Ok(app)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub state: Option<ApplicationState>,
    pub inspection_no: Option<String>,
    /// Created at or after (RFC 3339).
    pub from: Option<String>,
    /// Created before (RFC 3339).
    pub to: Option<String>,
    /// Only this enterprise (one of yours, or one you act for).
    pub enterprise_id: Option<i64>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/applications", tag = "applications", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = Vec<Application>), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<Application>>, ApiError> {
    let parse = |field: &str, v: &Option<String>| -> Result<Option<i64>, ApiError> {
        v.as_deref().map(|s| rfc3339::parse(s).map_err(|m| invalid(field, "invalid_time", m))).transpose()
    };
    let from = parse("from", &q.from)?;
    let to = parse("to", &q.to)?;
    let now = state.now_ms();
    let apps = state
        .db
        .read(move |c| {
            if let Some(no) = &q.inspection_no {
                // A typo is told as a typo, not answered with an empty list.
                super::InspectionNo::parse(no, |d| orgs::store::unit_by_code(c, d).ok().flatten().is_some())
                    .map_err(|e| invalid("inspection_no", "invalid_inspection_no", e.0))?;
            }
            let mut filter = store::Filter {
                state: q.state.map(|s| s.as_str().to_string()),
                inspection_no: q.inspection_no,
                from,
                to,
                enterprise: q.enterprise_id,
                limit: crate::error::in_range("limit", q.limit, 100, 1, 500)?,
                offset: q.offset.unwrap_or(0).max(0),
                ..Default::default()
            };
            match caller.role {
                Role::EnterpriseLegal | Role::EnterpriseOperator => {
                    filter.enterprises =
                        Some(delegations::enterprises_for(c, &caller, &[Scope::Applications], now)?);
                }
                Role::Admin => {}
                Role::Reviewer | Role::Supervisor => {
                    filter.district_units =
                        Some(orgs::store::subtree(c, caller.unit()?)?.iter().map(|u| u.id).collect());
                }
                Role::Officer => {
                    return Err(ApiError::forbidden("officers work from instructions, not applications"));
                }
            }
            Ok(store::list(c, &filter)?)
        })
        .await?;
    Ok(Json(apps))
}

#[utoipa::path(get, path = "/api/v1/applications/{id}", tag = "applications", security(("bearer" = [])),
    params(("id" = i64, Path)), responses((status = 200, body = Application), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Application>, ApiError> {
    let now = state.now_ms();
    Ok(Json(state.db.read(move |c| load_visible(c, &caller, id, now)).await?))
}

#[utoipa::path(get, path = "/api/v1/applications/{id}/e-record", tag = "applications", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = super::ERecord), (status = 404, body = ErrorBody, description = "not released (yet)")))]
pub async fn e_record(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<super::ERecord>, ApiError> {
    let now = state.now_ms();
    let record = state
        .db
        .read(move |c| {
            load_visible(c, &caller, id, now)?;
            super::e_record(c, id)?.ok_or_else(|| ApiError::not_found("the electronic record"))
        })
        .await?;
    Ok(Json(record))
}

#[utoipa::path(put, path = "/api/v1/applications/{id}", tag = "applications", request_body = ApplicationContent,
    security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = Application), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(content): ApiJson<ApplicationContent>,
) -> Result<Json<Application>, ApiError> {
    require_enterprise(&caller)?;
    let now = state.now_ms();
    let app = state.db.write(move |tx| amend(tx, now, &caller, id, content)).await?;
    state.receipts_changed();
    Ok(Json(app))
}

/// Changes a draft or returned application's content (the domain step behind `PUT /applications/{id}`).
pub fn amend(
    tx: &rusqlite::Transaction<'_>,
    now: i64,
    caller: &Caller,
    id: i64,
    content: ApplicationContent,
) -> Result<Application, ApiError> {
    let mut app = load_visible(tx, caller, id, now)?;
    if !matches!(app.state, ApplicationState::Draft | ApplicationState::Returned) {
        return Err(ApiError::conflict(
            "not_editable",
            format!("an application that is {} cannot be changed; only drafts and returned ones", app.state),
        ));
    }
    // The inspection number encodes direction and district, and the applicant owns the record.
    if app.inspection_no.is_some()
        && (content.direction != app.content.direction
            || content.district_code != app.content.district_code
            || content.applicant_code != app.content.applicant_code)
    {
        return Err(ApiError::conflict(
            "numbered_fields_fixed",
            "direction, district and applicant cannot change once the application has its inspection number; copy it instead",
        ));
    }
    let placement = super::place(tx, caller, &content, now)?;
    app.content = content;
    app.district_unit = placement.district_unit;
    app.site_unit = placement.site_unit;
    app.enterprise_id = placement.enterprise_id;
    app.version += 1;
    app.updated_at = now;
    store::update_content(tx, &app)?;
    // Every change of something an enterprise owns gets its receipt: an amendment too (the state stays).
    let change = super::AppChange {
        state: app.state,
        action: ApplicationEvent::Amended,
        opinion: None,
        details: serde_json::json!({"version": app.version}),
    };
    super::transition_as(tx, now, &Actor::User(caller.user_id), &mut app, change)?;
    Ok(app)
}

#[utoipa::path(post, path = "/api/v1/applications/{id}/submit", tag = "applications", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = Application), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, description = "rules broken; `details.violations` lists each with its field", body = ErrorBody)))]
pub async fn submit(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Application>, ApiError> {
    require_enterprise(&caller)?;
    let now = state.now_ms();
    let deadline = state.settings.workflow.inspection_deadline_ms();
    let year = filing_year(&state)?;
    let app = state.db.write(move |tx| submit_in(tx, now, &caller, id, year, deadline)).await?;
    state.receipts_changed();
    Ok(Json(app))
}

/// The year inspection numbers are counted in: the calendar year in China, where the districts are.
pub fn filing_year(state: &AppState) -> Result<i16, ApiError> {
    Ok(state
        .clock
        .now()
        .to_zoned(jiff::tz::TimeZone::get("Asia/Shanghai").map_err(anyhow::Error::from)?)
        .year())
}

/// Submits a draft or returned application: every rule checked, the inspection number assigned, and the
/// district's automatic review applied (the domain step behind `POST /applications/{id}/submit`).
pub fn submit_in(
    tx: &rusqlite::Transaction<'_>,
    now: i64,
    caller: &Caller,
    id: i64,
    year: i16,
    deadline: i64,
) -> Result<Application, ApiError> {
    let mut app = load_visible(tx, caller, id, now)?;
    if !matches!(app.state, ApplicationState::Draft | ApplicationState::Returned) {
        return Err(ApiError::conflict(
            "wrong_state",
            format!("an application that is {} cannot be submitted", app.state),
        ));
    }
    let violations = super::submission_violations(tx, &app.content, now)?;
    if !violations.is_empty() {
        return Err(ApiError::unprocessable(
            "submission_rules",
            format!(
                "{} rule(s) broken: {}",
                violations.len(),
                violations.iter().map(|v| v.message.as_str()).collect::<Vec<_>>().join("; ")
            ),
        )
        .with_details(super::violations_details(&violations)));
    }
    if app.inspection_no.is_none() {
        let no =
            super::next_inspection_no(tx, app.content.direction, year, app.content.district_code.as_str())?;
        app.inspection_no = Some(no.to_string());
    }
    app.submitted_at = Some(now);
    let actor = Actor::User(caller.user_id);
    super::transition(
        tx,
        now,
        &actor,
        &mut app,
        ApplicationState::Submitted,
        ApplicationEvent::Submitted,
        None,
    )?;
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

#[utoipa::path(post, path = "/api/v1/applications/{id}/copy", tag = "applications", security(("bearer" = [])),
    params(("id" = i64, Path)), responses((status = 201, body = Application), (status = 404, body = ErrorBody)))]
pub async fn copy(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<(StatusCode, Json<Application>), ApiError> {
    require_enterprise(&caller)?;
    let now = state.now_ms();
    let app = state
        .db
        .write(move |tx| {
            let old = load_visible(tx, &caller, id, now)?;
            create_draft(tx, now, &caller, old.content, Some(old.id))
        })
        .await?;
    state.receipts_changed();
    Ok((StatusCode::CREATED, Json(app)))
}

#[utoipa::path(get, path = "/api/v1/applications/{id}/history", tag = "applications", security(("bearer" = [])),
    params(("id" = i64, Path)), responses((status = 200, body = Vec<store::HistoryEntry>), (status = 404, body = ErrorBody)))]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Vec<store::HistoryEntry>>, ApiError> {
    let now = state.now_ms();
    let h = state
        .db
        .read(move |c| {
            load_visible(c, &caller, id, now)?;
            Ok(store::history(c, id)?)
        })
        .await?;
    Ok(Json(h))
}
