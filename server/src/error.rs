//! The one error type of the HTTP API.
//!
//! Every failure a client can see is an [`ApiError`]: a status, a stable machine-readable `code`, a sentence
//! that says what to fix, and optional structured `details`. Infrastructure failures become a bare 500 whose
//! cause is logged, never sent: a client cannot act on a SQLite message, and it may leak internals.

use axum::{
    Json,
    extract::{
        FromRequest, FromRequestParts, Path, Query, Request,
        rejection::{JsonRejection, PathRejection, QueryRejection},
    },
    http::{HeaderValue, StatusCode, header::RETRY_AFTER, request::Parts},
    response::{IntoResponse, Response},
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};

use crate::db::error::EngineError;
/// Defined beside the database (it wraps the engine's error), mapped to HTTP here.
pub use crate::db::error::StoreError;

/// The error body every endpoint answers with: `{"code", "message", "details"}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable identifier for programs, e.g. `invalid_customs_code`.
    pub code: String,
    /// A sentence for people: what is wrong and what to do about it.
    pub message: String,
    /// Structured extras: the offending field, the allowed values, alternatives.
    pub details: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A client mistake, answered as-is.
    #[error("{code}: {message}")]
    Client {
        status: StatusCode,
        code: &'static str,
        message: String,
        details: Value,
        /// Seconds to wait before trying again, sent as `Retry-After` (429, 503).
        retry_after_secs: Option<u64>,
    },
    /// Anything else: logged in full, answered as a bare 500.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Client {
            status,
            code,
            message: message.into(),
            details: Value::Null,
            retry_after_secs: None,
        }
    }

    pub fn with_details(self, extra: Value) -> Self {
        match self {
            ApiError::Client { status, code, message, retry_after_secs, .. } => {
                ApiError::Client { status, code, message, details: extra, retry_after_secs }
            }
            other => other,
        }
    }

    /// "Try again in `secs` seconds": the `Retry-After` header, and `details.retry_after_secs` for clients
    /// that read only the body.
    pub fn with_retry_after(self, secs: u64) -> Self {
        match self {
            ApiError::Client { status, code, message, .. } => ApiError::Client {
                status,
                code,
                message,
                details: json!({ "retry_after_secs": secs }),
                retry_after_secs: Some(secs),
            },
            other => other,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} was not found"))
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// The status this error answers with; handy for metrics and tests.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Client { status, .. } => *status,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// A login step's refusal: 401 with its stable code. (The domain errors of the modules become HTTP here,
/// once, so that domain code names what went wrong and only this file knows statuses.)
impl From<crate::auth::error::AuthError> for ApiError {
    fn from(e: crate::auth::error::AuthError) -> Self {
        ApiError::unauthorized(e.code(), e.to_string())
    }
}

/// A principal acting outside its role (403, the sentence says which roles the step needs).
impl From<crate::domain::principal::NotAllowed> for ApiError {
    fn from(e: crate::domain::principal::NotAllowed) -> Self {
        ApiError::forbidden(e.to_string())
    }
}

/// A validity period refused: 422 `invalid_period`, naming the field.
impl From<crate::domain::time::PeriodError> for ApiError {
    fn from(e: crate::domain::time::PeriodError) -> Self {
        invalid(e.field(), "invalid_period", e.to_string())
    }
}

impl From<crate::delegations::error::DelegationError> for ApiError {
    fn from(e: crate::delegations::error::DelegationError) -> Self {
        use crate::delegations::error::DelegationError as E;
        let message = e.to_string();
        match e {
            E::NotAllowed(e) => e.into(),
            E::Period(e) => e.into(),
            E::Store(e) => e.into(),
            E::MissingScopes => invalid("scopes", "missing_scopes", message),
            E::SelfDelegation => invalid("agent_customs_code", "self_delegation", message),
            E::NotFound => ApiError::not_found("the delegation"),
            E::AlreadyRevoked => ApiError::conflict("already_revoked", message),
            E::Inactive => ApiError::conflict("delegation_inactive", message),
            E::ScopeNotDelegated(_) => invalid("scopes", "scope_not_delegated", message),
            E::UnknownOperator => invalid("user_id", "unknown_operator", message),
        }
    }
}

impl From<crate::selection::error::SelectionError> for ApiError {
    fn from(e: crate::selection::error::SelectionError) -> Self {
        use crate::selection::error::SelectionError as E;
        match e {
            E::NoEnterprise => ApiError::not_found("the applicant enterprise"),
            E::Internal(e) => ApiError::Internal(e),
            E::Store(e) => e.into(),
        }
    }
}

impl From<crate::applications::error::ApplicationError> for ApiError {
    fn from(e: crate::applications::error::ApplicationError) -> Self {
        use crate::applications::error::ApplicationError as E;
        let message = e.to_string();
        match e {
            E::NotFound => ApiError::not_found("the application"),
            E::NotEnterprise | E::OfficerList | E::NotYourApplicant(_) => ApiError::forbidden(message),
            E::UnknownDistrict(_) => invalid("district_code", "unknown_district", message),
            E::UnknownSite { .. } => invalid("site_code", "unknown_site", message),
            E::NotEditable(_) => ApiError::conflict("not_editable", message),
            E::NumberedFieldsFixed => ApiError::conflict("numbered_fields_fixed", message),
            E::NotSubmittable(_) => ApiError::conflict("wrong_state", message),
            E::NotNumbered => ApiError::conflict("no_number", message),
            E::InvalidInspectionNo(_) => invalid("inspection_no", "invalid_inspection_no", message),
            E::SerialsExhausted(_) => ApiError::conflict("serials_exhausted", message),
            E::SubmissionRules(v) => ApiError::unprocessable("submission_rules", message)
                .with_details(serde_json::json!({ "violations": v })),
            E::NotAllowed(e) => e.into(),
            E::Delegation(e) => e.into(),
            E::Store(e) => e.into(),
        }
    }
}

impl From<crate::applications::submit_error::SubmitError> for ApiError {
    fn from(e: crate::applications::submit_error::SubmitError) -> Self {
        use crate::applications::submit_error::SubmitError as E;
        match e {
            E::Application(e) => e.into(),
            E::Review(e) => e.into(),
            E::Store(e) => e.into(),
        }
    }
}

impl From<crate::review::error::ReviewError> for ApiError {
    fn from(e: crate::review::error::ReviewError) -> Self {
        use crate::review::error::ReviewError as E;
        let message = e.to_string();
        match e {
            E::MissingOpinion => invalid("opinion", "missing_opinion", message),
            E::WrongState { .. } => ApiError::conflict("wrong_state", message),
            E::NotOwnUnit => ApiError::forbidden(message),
            E::NotAllowed(e) => e.into(),
            E::Application(e) => e.into(),
            E::Instruction(e) => e.into(),
            E::Selection(e) => e.into(),
            E::Store(e) => e.into(),
        }
    }
}

impl From<crate::instructions::error::InstructionError> for ApiError {
    fn from(e: crate::instructions::error::InstructionError) -> Self {
        use crate::instructions::error::InstructionError as E;
        let message = e.to_string();
        match e {
            E::NotFound => ApiError::not_found("the instruction"),
            E::NotNumbered => ApiError::conflict("no_number", message),
            E::Exists { .. } => ApiError::conflict("instruction_exists", message),
            E::OfficerCount(_) => invalid("officer_ids", "officer_count", message),
            E::NotAnOfficerHere(_) => invalid("officer_ids", "not_an_officer_here", message),
            E::UnknownUnit { field, .. } => invalid(field, "unknown_unit", message),
            E::UnknownOfficer(_) => invalid("officer", "unknown_officer", message),
            E::NotAllowed(e) => e.into(),
            E::Delegation(e) => e.into(),
            E::Store(e) => e.into(),
        }
    }
}

impl From<crate::bookings::error::BookingError> for ApiError {
    fn from(e: crate::bookings::error::BookingError) -> Self {
        use crate::bookings::error::BookingError as E;
        let message = e.to_string();
        match e {
            E::NotFound(what) => ApiError::not_found(what),
            E::UnknownSite { field, .. } => invalid(field, "unknown_site", message),
            E::SiteNotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "unknown_site", message),
            E::NotASite { field, .. } => invalid(field, "not_a_site", message),
            E::NoCalendar => ApiError::conflict("no_calendar", message),
            E::WrongState { state, .. } => {
                ApiError::conflict("booking_state", message).with_details(json!({"state": state}))
            }
            E::MayNotChange | E::SiteOutsideSubtree(_) => ApiError::forbidden(message),
            E::MissingReason => invalid("reason", "missing_reason", message),
            E::PastCutoff { .. } => ApiError::conflict("past_cutoff", message),
            E::SameSlot => invalid("starts_at", "same_slot", message),
            E::SlotFull { slot, alternatives } => ApiError::conflict("slot_full", message)
                .with_details(json!({"slot": slot, "alternatives": alternatives})),
            E::SlotNotBegun(_) => ApiError::conflict("slot_not_begun", message),
            E::BookingsOnClosedDay { date, booking_ids } => {
                ApiError::conflict("bookings_on_closed_day", message)
                    .with_details(json!({"date": date, "booking_ids": booking_ids}))
            }
            E::AfterDeadline { deadline_utc, .. } => invalid("starts_at", "after_deadline", message)
                .with_details(json!({"field": "starts_at", "deadline": deadline_utc})),
            E::SlotInPast(_) => invalid("starts_at", "slot_in_past", message),
            E::TooSoon { .. } => invalid("starts_at", "too_soon", message),
            E::WrongSite { .. } => invalid("site_code", "wrong_site", message),
            E::InstructionNotBookable(_) => ApiError::conflict("instruction_not_bookable", message),
            E::AlreadyBooked { booking, .. } => {
                ApiError::conflict("already_booked", message).with_details(json!({"booking_id": booking}))
            }
            E::BookedMeanwhile => ApiError::conflict("already_booked", message),
            E::TooManyNoShows { count, window_days, .. } => ApiError::conflict("too_many_no_shows", message)
                .with_details(json!({"no_shows": count, "window_days": window_days})),
            E::SlotPassed => ApiError::conflict("slot_passed", message),
            E::NotProposed(alternatives) => invalid("starts_at", "not_proposed", message)
                .with_details(json!({"field": "starts_at", "alternatives": alternatives})),
            E::ProposedSlot { slot, source } => {
                ApiError::from(*source).with_details(json!({"field": "alternatives", "slot": slot}))
            }
            E::ClosedDay { field, .. } => invalid(field, "closed_day", message),
            E::OutsideWorkingHours { field, hours, .. } => invalid(field, "outside_working_hours", message)
                .with_details(json!({"field": field, "hours": hours})),
            E::NotOnSlotBoundary { field, nearest, .. } => invalid(field, "not_on_slot_boundary", message)
                .with_details(json!({"field": field, "nearest": nearest})),
            E::InvalidWeekday(_) => invalid("hours", "invalid_weekday", message),
            E::InvalidHours { .. } => invalid("hours", "invalid_hours", message),
            E::WindowNotWholeSlots { .. } => invalid("hours", "window_not_whole_slots", message),
            E::OverlappingHours(_) => invalid("hours", "overlapping_hours", message),
            E::InvalidDate { field, .. } => invalid(field, "invalid_date", message),
            E::InvalidSlotMinutes => invalid("slot_minutes", "invalid_slot_minutes", message),
            E::InvalidCapacity => invalid("capacity", "invalid_capacity", message),
            E::ClosedDayWithoutReason(_) => invalid("closed_days", "missing_reason", message),
            E::NotAllowed(e) => e.into(),
            E::StoredTime(e) => e.into(),
            E::Store(e) => e.into(),
            E::Internal(e) => ApiError::Internal(e),
        }
    }
}

/// A stored zone, instant or closed day the booking calendar cannot read: a logged 500, never UTC or a
/// skipped day (`bookings/calendar_data.rs`).
impl From<crate::bookings::error::StoredTimeError> for ApiError {
    fn from(e: crate::bookings::error::StoredTimeError) -> Self {
        ApiError::Internal(anyhow::Error::new(e).context("stored slot time"))
    }
}

/// A workflow callee that still answers `ApiError` (see `WorkflowError::Callee`).
impl From<ApiError> for crate::workflow::error::WorkflowError {
    fn from(e: ApiError) -> Self {
        crate::workflow::error::WorkflowError::Callee(Box::new(e))
    }
}

impl From<crate::workflow::error::WorkflowError> for ApiError {
    fn from(e: crate::workflow::error::WorkflowError) -> Self {
        use crate::workflow::error::WorkflowError as E;
        let message = e.to_string();
        match e {
            E::Illegal(t) => ApiError::conflict("illegal_transition", message)
                .with_details(json!({"state": t.state, "event": t.event})),
            E::InstructionNotFound => ApiError::not_found("the instruction"),
            E::ApplicationNotFound => ApiError::not_found("the application"),
            E::SealedDecision { instruction, state } => ApiError::conflict("sealed_decision", message)
                .with_details(json!({"instruction_id": instruction, "state": state})),
            E::ApprovalHasConsequences { instruction, state } => {
                ApiError::conflict("approval_has_consequences", message)
                    .with_details(json!({"instruction_id": instruction, "state": state}))
            }
            E::NotRevocable { .. } => ApiError::conflict("not_revocable", message),
            E::NotAnExtension { .. } => invalid("deadline", "not_an_extension", message),
            E::NoVerdict => ApiError::conflict("no_verdict", message),
            E::Sealed(state) => ApiError::conflict("sealed", message).with_details(json!({"state": state})),
            E::UnusableUsername => invalid("username", "unusable_username", message),
            E::NotReleasable(state) => ApiError::conflict("not_releasable", message)
                .with_details(json!({"application_state": state})),
            E::NoDisposalPending(state) => ApiError::conflict("no_disposal_pending", message)
                .with_details(json!({"application_state": state})),
            E::Instruction(e) => e.into(),
            E::Application(e) => e.into(),
            E::Booking(e) => e.into(),
            E::Review(e) => e.into(),
            E::Store(e) => e.into(),
            E::Callee(e) => match e.downcast::<ApiError>() {
                Ok(e) => *e,
                Err(e) => ApiError::Internal(anyhow::anyhow!(e)),
            },
        }
    }
}

impl From<crate::orgs::error::OrgsError> for ApiError {
    fn from(e: crate::orgs::error::OrgsError) -> Self {
        use crate::orgs::error::OrgsError as E;
        let message = e.to_string();
        match e {
            E::NotFound(what) => ApiError::not_found(what),
            E::InvalidText { field, .. } => invalid(field, "invalid_text", message),
            E::InvalidUsername => invalid("username", "invalid_username", message),
            E::UnknownTimezone(_) => invalid("timezone", "unknown_timezone", message),
            E::MissingParent => invalid("parent_code", "missing_parent", message),
            E::UnknownUnit { field, .. } => invalid(field, "unknown_unit", message),
            E::DuplicateUnit(_) => ApiError::conflict("duplicate_unit", message),
            E::DuplicateEnterprise(_) | E::DuplicateCreditCode => {
                ApiError::conflict("duplicate_enterprise", message)
            }
            E::MissingEnterprise => invalid("enterprise_code", "missing_enterprise", message),
            E::UnknownEnterprise(_) => invalid("enterprise_code", "unknown_enterprise", message),
            E::MissingUnit => invalid("unit_code", "missing_unit", message),
            E::DuplicateUsername(_) => ApiError::conflict("duplicate_username", message),
            E::OperatorWithoutEnterprise(_) => ApiError::Internal(anyhow::Error::new(e)),
            E::NotPending(_) => ApiError::conflict("not_pending", message),
            E::AccountLost => ApiError::conflict("account_lost", message),
            E::AccountPending => ApiError::conflict("account_pending", message),
            E::InvalidPublicKey(_) => invalid("public_key", "invalid_public_key", message),
            E::UnitsForCustomsOnly => ApiError::forbidden(message),
            E::Period(e) => e.into(),
            E::Store(e) => e.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::not_found(what),
            StoreError::Conflict(what) => {
                ApiError::conflict("already_exists", format!("{what} already exists"))
            }
            StoreError::Other(e) => e.into(),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        ApiError::Internal(anyhow::Error::new(e).context("database"))
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::Internal(anyhow::Error::new(e).context("blocking task"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Client { status, code, message, details, retry_after_secs } => {
                let body = ErrorBody { code: code.to_string(), message, details };
                let mut response = (status, Json(body)).into_response();
                if let Some(secs) = retry_after_secs {
                    response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
                }
                response
            }
            ApiError::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                let body = ErrorBody {
                    code: "internal".into(),
                    message: "internal error; the request was not applied".into(),
                    details: Value::Null,
                };
                (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
            }
        }
    }
}

/// `Json` with our error format: a malformed, mistyped or oversized body gets an [`ApiError`] that says
/// which part to fix instead of axum's plain-text rejection.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

/// `Path` with our error format: `/devices/abc` where a number belongs says so in JSON.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|e: PathRejection| ApiError::bad_request("invalid_path", e.body_text()))
    }
}

/// `Query` with our error format.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e: QueryRejection| ApiError::bad_request("invalid_query", e.body_text()))
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let text = rejection.body_text();
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the body is larger than this endpoint accepts",
        );
    }
    match rejection {
        JsonRejection::JsonDataError(_) => {
            let code = if text.contains("unknown field") { "unknown_field" } else { "invalid_field" };
            // axum's prefix says nothing the status does not; keep the part that names the field.
            let detail = text.split_once("target type: ").map_or(text.as_str(), |(_, rest)| rest);
            let error = ApiError::unprocessable(code, format!("the body does not fit: {detail}"));
            // serde_path_to_error puts the field's path first (`goods[0].name: …`); programs get it apart.
            match detail.split_once(": ").map(|(path, _)| path).filter(|p| !p.is_empty() && !p.contains(' '))
            {
                Some(path) => error.with_details(json!({ "field": path })),
                None => error,
            }
        }
        JsonRejection::JsonSyntaxError(_) => {
            ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {text}"))
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body with `Content-Type: application/json`",
        ),
        _ => ApiError::bad_request("invalid_body", text),
    }
}

/// Turns a field-level parse failure into the 422 every endpoint uses for bad values.
/// A number from the query (page size, wait), refused outside `min..=max` rather than clamped: a client that
/// asks for 1000 rows and silently gets 500 would page wrongly. The answer names the allowed range.
pub fn in_range(field: &str, value: Option<i64>, default: i64, min: i64, max: i64) -> Result<i64, ApiError> {
    let v = value.unwrap_or(default);
    if (min..=max).contains(&v) {
        return Ok(v);
    }
    Err(ApiError::unprocessable("out_of_range", format!("`{field}` must be from {min} to {max}; it was {v}"))
        .with_details(json!({ "field": field, "min": min, "max": max })))
}

pub fn invalid(field: &str, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::unprocessable(code, message).with_details(json!({ "field": field }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bookings::error::BookingError;

    fn parts(e: ApiError) -> (StatusCode, &'static str, String, Value) {
        match e {
            ApiError::Client { status, code, message, details, .. } => (status, code, message, details),
            ApiError::Internal(e) => panic!("internal: {e}"),
        }
    }

    #[test]
    fn a_refused_proposed_slot_keeps_its_reasons_code_and_sentence_and_names_the_slot() {
        let inner = BookingError::SlotInPast("2026-12-01T09:00:00+08:00".into());
        let e = BookingError::ProposedSlot { slot: "2026-12-01T01:00:00Z".into(), source: Box::new(inner) };
        let (status, code, message, details) = parts(e.into());
        assert_eq!((status, code), (StatusCode::UNPROCESSABLE_ENTITY, "slot_in_past"));
        assert_eq!(message, "2026-12-01T09:00:00+08:00 is in the past; choose a future slot");
        assert_eq!(details, json!({"field": "alternatives", "slot": "2026-12-01T01:00:00Z"}));
    }

    #[test]
    fn an_unknown_site_is_a_field_error_in_a_body_and_a_404_in_the_path() {
        let field = BookingError::UnknownSite { field: "site_code", code: "9999".into() };
        let (status, code, message, details) = parts(field.into());
        assert_eq!((status, code), (StatusCode::UNPROCESSABLE_ENTITY, "unknown_site"));
        assert_eq!(message, "no inspection site has the code `9999`");
        assert_eq!(details, json!({"field": "site_code"}));
        let path =
            crate::bookings::as_not_found(BookingError::UnknownSite { field: "code", code: "9999".into() });
        let (status, code, message, details) = parts(path.into());
        assert_eq!((status, code, details), (StatusCode::NOT_FOUND, "unknown_site", Value::Null));
        assert_eq!(message, "no inspection site has the code `9999`");
    }

    #[test]
    fn a_full_slot_says_how_many_alternatives_are_free_and_lists_them_in_the_details() {
        let slot = |h: u8| crate::bookings::SlotTime {
            starts_at: format!("2026-12-01T{h:02}:00:00Z"),
            ends_at: format!("2026-12-01T{:02}:00:00Z", h + 1),
            local_starts_at: format!("2026-12-01T{:02}:00:00+08:00", h + 8),
            local_ends_at: format!("2026-12-01T{:02}:00:00+08:00", h + 9),
            timezone: "Asia/Shanghai".into(),
        };
        let none = BookingError::SlotFull { slot: Box::new(slot(1)), alternatives: vec![] };
        assert_eq!(
            none.to_string(),
            "the slot at 2026-12-01T09:00:00+08:00 has no free capacity; no other slot is free in the next days"
        );
        let (status, code, message, details) = parts(
            BookingError::SlotFull { slot: Box::new(slot(1)), alternatives: vec![slot(2), slot(3)] }.into(),
        );
        assert_eq!((status, code), (StatusCode::CONFLICT, "slot_full"));
        assert_eq!(
            message,
            "the slot at 2026-12-01T09:00:00+08:00 has no free capacity; 2 nearby slots are free (details.alternatives)"
        );
        assert_eq!(details["alternatives"].as_array().map(Vec::len), Some(2));
        assert_eq!(details["slot"]["local_starts_at"], "2026-12-01T09:00:00+08:00");
    }
}
