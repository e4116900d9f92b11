//! Booking endpoints: site calendars and availability, the booking flow for enterprises and customs.

use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};

use super::{
    Booking, BookingError, Calendar, CalendarSpec, ListFilter, NewBooking, SlotFree, Taken, calendar,
};
use crate::{
    audit::Actor,
    auth::Caller,
    domain::{BookingState, Paragraph, time::rfc3339},
    error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody, invalid},
    state::AppState,
};

/// Runs a booking change in one transaction together with what follows for its instruction (the
/// workflow moves it between `issued` and `booked`), then wakes receipt readers.
async fn changed<F>(state: &AppState, user_id: i64, f: F) -> Result<Booking, ApiError>
where
    F: FnOnce(&crate::db::Tx<'_>) -> Result<Booking, BookingError> + Send + 'static,
{
    let now = state.now_ms();
    let b = state
        .db
        .write(move |tx| -> Result<_, ApiError> {
            let b = f(tx)?;
            crate::workflow::booking_changed(tx, now, &Actor::User(user_id), b.instruction_id)?;
            Ok(b)
        })
        .await?;
    state.receipts_changed();
    Ok(b)
}

/// The widest date range availability answers in one call.
pub const MAX_AVAILABILITY_DAYS: i32 = 62;

fn instant(field: &str, s: &str) -> Result<i64, ApiError> {
    rfc3339::parse(s).map_err(|m| invalid(field, "invalid_time", m))
}

#[utoipa::path(get, path = "/api/v1/sites/{code}/calendar", tag = "bookings", security(("bearer" = [])),
    params(("code" = String, Path, description = "the site's 4-digit unit code")),
    responses((status = 200, body = Calendar), (status = 404, body = ErrorBody)))]
pub async fn get_calendar(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath(code): ApiPath<String>,
) -> Result<Json<Calendar>, ApiError> {
    let cal = state
        .db
        .read(move |c| -> Result<_, ApiError> {
            let site = super::site_by_code(c, "code", &code).map_err(super::as_not_found)?;
            calendar::get(c, site.id)?.ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "no_calendar",
                    format!("site {code} has no slot calendar yet"),
                )
            })
        })
        .await?;
    Ok(Json(cal))
}

#[utoipa::path(put, path = "/api/v1/sites/{code}/calendar", tag = "bookings", request_body = CalendarSpec,
    security(("bearer" = [])), params(("code" = String, Path)),
    responses((status = 200, body = Calendar), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_calendar(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(code): ApiPath<String>,
    ApiJson(spec): ApiJson<CalendarSpec>,
) -> Result<Json<Calendar>, ApiError> {
    let now = state.now_ms();
    Ok(Json(state.db.write(move |tx| super::set_calendar(tx, now, &caller, &code, &spec)).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityQuery {
    /// First local date of the site, e.g. `2026-12-01`.
    pub from: String,
    /// Last local date (inclusive); at most 62 days after `from`.
    pub to: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Availability {
    pub site_code: String,
    pub timezone: String,
    pub slot_minutes: i64,
    pub slots: Vec<SlotFree>,
}

#[utoipa::path(get, path = "/api/v1/sites/{code}/availability", tag = "bookings", security(("bearer" = [])),
    params(("code" = String, Path), AvailabilityQuery),
    responses((status = 200, body = Availability), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn availability(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath(code): ApiPath<String>,
    ApiQuery(q): ApiQuery<AvailabilityQuery>,
) -> Result<Json<Availability>, ApiError> {
    let from = calendar::parse_date("from", &q.from)?;
    let to = calendar::parse_date("to", &q.to)?;
    if to < from {
        return Err(invalid("to", "invalid_range", "`to` is before `from`"));
    }
    if (to - from).get_days() > MAX_AVAILABILITY_DAYS {
        return Err(invalid(
            "to",
            "range_too_long",
            format!("ask for at most {MAX_AVAILABILITY_DAYS} days at a time"),
        ));
    }
    let now = state.now_ms();
    let earliest = now + state.settings.booking.min_lead_hours * 3_600_000;
    let out = state
        .db
        .read(move |c| -> Result<_, ApiError> {
            let site = super::site_by_code(c, "code", &code).map_err(super::as_not_found)?;
            let rules = super::rules_of(c, site.id)?;
            let (start, end) = calendar::date_range_ms(&site.timezone, from, to)?;
            Ok(Availability {
                site_code: site.code,
                timezone: site.timezone,
                slot_minutes: rules.slot_minutes,
                slots: super::availability(c, &rules, start, end, earliest)?,
            })
        })
        .await?;
    Ok(Json(out))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BookingRequest {
    pub instruction_id: i64,
    /// The slot start, RFC 3339 (as availability lists it).
    pub starts_at: String,
    /// Optional: the site you mean; refused if it is not the instruction's site.
    pub site_code: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/bookings", tag = "bookings", request_body = BookingRequest,
    security(("bearer" = [])),
    responses((status = 201, body = Booking, description = "`confirmed` where the site confirms automatically, else `requested` (holding its place)"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "`slot_full` names alternatives in `details.alternatives`"),
        (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<BookingRequest>,
) -> Result<(StatusCode, Json<Booking>), ApiError> {
    let starts_at = instant("starts_at", &req.starts_at)?;
    let now = state.now_ms();
    let settings = state.settings.booking.clone();
    let new = NewBooking { instruction_id: req.instruction_id, site_code: req.site_code, starts_at };
    state
        .db
        .read({
            let (caller, settings, new) = (caller.clone(), settings.clone(), new.clone());
            move |c| Ok::<_, ApiError>(super::precheck(c, now, &caller, &settings, &new)?)
        })
        .await?;
    let user_id = caller.user_id;
    let taken = state
        .db
        .write({
            let settings = settings.clone();
            move |tx| match super::take(tx, now, &caller, &settings, new)? {
                Taken::Booked(b) => {
                    crate::workflow::booking_changed(tx, now, &Actor::User(user_id), b.instruction_id)?;
                    Ok::<_, ApiError>(Ok(b))
                }
                Taken::Full(full) => Ok(Err(full)),
            }
        })
        .await?;
    match taken {
        Ok(b) => {
            state.receipts_changed();
            Ok((StatusCode::CREATED, Json(b)))
        }
        // Filled between the check and the writer: the alternatives are looked up on a reader, so the
        // writer only found the slot full.
        Err(full) => {
            Err(state.db.read(move |c| Ok::<_, ApiError>(ApiError::from(full.refusal(c, &settings)))).await?)
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub state: Option<BookingState>,
    pub instruction_id: Option<i64>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/bookings", tag = "bookings", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = Vec<Booking>)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<Booking>>, ApiError> {
    let now = state.now_ms();
    let f = ListFilter {
        state: q.state,
        instruction_id: q.instruction_id,
        limit: crate::error::in_range("limit", q.limit, 100, 1, 500)?,
        offset: q.offset.unwrap_or(0).max(0),
    };
    Ok(Json(state.db.read(move |c| super::list(c, &caller, &f, now)).await?))
}

#[utoipa::path(get, path = "/api/v1/bookings/{id}", tag = "bookings", security(("bearer" = [])),
    params(("id" = i64, Path)), responses((status = 200, body = Booking), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Booking>, ApiError> {
    let now = state.now_ms();
    Ok(Json(state.db.read(move |c| super::get(c, &caller, id, now)).await?))
}

#[utoipa::path(post, path = "/api/v1/bookings/{id}/confirm", tag = "bookings", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = Booking), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn confirm(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Booking>, ApiError> {
    let now = state.now_ms();
    let b = changed(&state, caller.user_id, move |tx| super::confirm(tx, now, &caller, id)).await?;
    Ok(Json(b))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclineRequest {
    /// What the enterprise should know, e.g. why the slot does not suit the site.
    pub feedback: Paragraph<2000>,
    /// Slot starts (RFC 3339) to propose; left out, the nearest free slots are proposed.
    pub alternatives: Option<Vec<String>>,
}

#[utoipa::path(post, path = "/api/v1/bookings/{id}/decline", tag = "bookings", request_body = DeclineRequest,
    security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = Booking), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn decline(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<DeclineRequest>,
) -> Result<Json<Booking>, ApiError> {
    if req.feedback.trim().is_empty() {
        return Err(invalid("feedback", "missing_feedback", "tell the enterprise why the slot is declined"));
    }
    let proposed = req
        .alternatives
        .map(|list| list.iter().map(|s| instant("alternatives", s)).collect::<Result<Vec<_>, _>>())
        .transpose()?;
    let now = state.now_ms();
    let settings = state.settings.booking.clone();
    let b = changed(&state, caller.user_id, move |tx| {
        super::decline(tx, now, &caller, &settings, id, req.feedback.trim(), proposed)
    })
    .await?;
    Ok(Json(b))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlotChoice {
    /// The slot start, RFC 3339.
    pub starts_at: String,
}

#[utoipa::path(post, path = "/api/v1/bookings/{id}/accept-alternative", tag = "bookings", request_body = SlotChoice,
    security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = Booking), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn accept_alternative(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<SlotChoice>,
) -> Result<Json<Booking>, ApiError> {
    let start = instant("starts_at", &req.starts_at)?;
    let now = state.now_ms();
    let settings = state.settings.booking.clone();
    let b = changed(&state, caller.user_id, move |tx| {
        super::accept_alternative(tx, now, &caller, &settings, id, start)
    })
    .await?;
    Ok(Json(b))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RescheduleRequest {
    /// The new slot start, RFC 3339.
    pub starts_at: String,
    /// Required when customs reschedules; optional for the enterprise.
    pub reason: Option<Paragraph<2000>>,
}

#[utoipa::path(post, path = "/api/v1/bookings/{id}/reschedule", tag = "bookings", request_body = RescheduleRequest,
    security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = Booking), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn reschedule(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<RescheduleRequest>,
) -> Result<Json<Booking>, ApiError> {
    let start = instant("starts_at", &req.starts_at)?;
    let now = state.now_ms();
    let settings = state.settings.booking.clone();
    let b = changed(&state, caller.user_id, move |tx| {
        super::reschedule(tx, now, &caller, &settings, id, start, req.reason.as_deref())
    })
    .await?;
    Ok(Json(b))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// Required when customs cancels; optional for the enterprise.
    pub reason: Option<Paragraph<2000>>,
}

#[utoipa::path(post, path = "/api/v1/bookings/{id}/cancel", tag = "bookings", request_body = CancelRequest,
    security(("bearer" = [])), params(("id" = i64, Path)),
    responses((status = 200, body = Booking, description = "`cancelled`, or `no_show` for an enterprise's cancel after the cut-off"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiJson(req): ApiJson<CancelRequest>,
) -> Result<Json<Booking>, ApiError> {
    let now = state.now_ms();
    let settings = state.settings.booking.clone();
    let b = changed(&state, caller.user_id, move |tx| {
        super::cancel(tx, now, &caller, &settings, id, req.reason.as_deref())
    })
    .await?;
    Ok(Json(b))
}

#[utoipa::path(post, path = "/api/v1/bookings/{id}/no-show", tag = "bookings", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 200, body = Booking), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn no_show(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Booking>, ApiError> {
    let now = state.now_ms();
    let b = changed(&state, caller.user_id, move |tx| super::mark_no_show(tx, now, &caller, id)).await?;
    Ok(Json(b))
}
