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

/// A login step's refusal keeps its own status and code (401, or the device's); a vanished session or
/// user is a 404 as before.
impl From<crate::auth::error::LoginError> for ApiError {
    fn from(e: crate::auth::error::LoginError) -> Self {
        use crate::auth::error::LoginError as E;
        match e {
            E::Refused(e) => e.into(),
            E::Device(e) => e.into(),
            E::Store(e) => e.into(),
        }
    }
}

/// An access token refused (401 `token_expired` / `invalid_token`), or one that could not be made (500).
impl From<crate::auth::error::TokenError> for ApiError {
    fn from(e: crate::auth::error::TokenError) -> Self {
        use crate::auth::error::TokenError as E;
        let message = e.to_string();
        match e {
            E::Expired => ApiError::unauthorized("token_expired", message),
            E::Invalid(_) => ApiError::unauthorized("invalid_token", message),
            E::Internal(e) => ApiError::Internal(e),
        }
    }
}

/// A password login that must wait: 429 `too_many_attempts` with `Retry-After`.
impl From<crate::auth::error::ThrottleError> for ApiError {
    fn from(e: crate::auth::error::ThrottleError) -> Self {
        use crate::auth::error::ThrottleError as E;
        let message = e.to_string();
        match e {
            E::TooManyAttempts { retry_after_secs, .. } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", message)
                    .with_retry_after(retry_after_secs)
            }
            E::Store(e) => e.into(),
        }
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

impl From<crate::records::admission::Saturated> for ApiError {
    fn from(e: crate::records::admission::Saturated) -> Self {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "saturated", e.to_string())
            .with_retry_after(e.retry_after_secs)
    }
}

impl From<crate::records::error::RecordsError> for ApiError {
    fn from(e: crate::records::error::RecordsError) -> Self {
        use crate::records::error::RecordsError as E;
        let message = e.to_string();
        match e {
            E::NoRecord => ApiError::new(StatusCode::NOT_FOUND, "not_found", message),
            E::Schema(v) => ApiError::unprocessable(v.rule(), message),
            E::NoRecordYet => ApiError::conflict("no_such_conflict", message),
            E::NoSuchConflict { open, .. } => {
                ApiError::conflict("no_such_conflict", message).with_details(json!({"open": open}))
            }
            E::UnfitValue { .. } => invalid("value", "invalid_value", message),
            E::Instruction(e) => e.into(),
            E::Internal(e) => ApiError::Internal(e),
            E::Store(e) => e.into(),
        }
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
            E::Records(e) => e.into(),
            E::Store(e) => e.into(),
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

impl From<crate::certificates::error::CertificateError> for ApiError {
    fn from(e: crate::certificates::error::CertificateError) -> Self {
        use crate::certificates::error::CertificateError as E;
        let message = e.to_string();
        match e {
            E::NotFound(what) => ApiError::not_found(what),
            E::UnknownType { known, .. } => invalid("type", "unknown_certificate_type", message)
                .with_details(json!({"field": "type", "known": known})),
            E::NotYourEnterprise => {
                ApiError::forbidden(message).with_details(json!({"field": "application_id"}))
            }
            E::NotReleased(state) => {
                ApiError::conflict("not_released", message).with_details(json!({"application_state": state}))
            }
            E::GoodsCount { .. } => invalid("goods", "goods_count", message),
            E::TooManyDeclarations { .. } | E::TooManyReplacementDeclarations { .. } => {
                invalid("additional_declarations", "too_many", message)
            }
            E::UnknownGoodsLine { index, .. } => {
                invalid(&format!("goods[{index}].line"), "unknown_goods_line", message)
            }
            E::DuplicateGoodsLine { index } => {
                invalid(&format!("goods[{index}].line"), "duplicate_goods_line", message)
            }
            E::NotPositive { index } => invalid(&format!("goods[{index}].quantity"), "not_positive", message),
            E::QuantityExceedsInspected { index, inspected, .. } => {
                let field = format!("goods[{index}].quantity");
                ApiError::unprocessable("quantity_exceeds_inspected", message)
                    .with_details(json!({"field": field, "inspected": inspected}))
            }
            E::Unprintable { field, .. } => invalid(&field, "unprintable_text", message),
            E::ChangedByEnterprise | E::DecidedByCustoms | E::RevokedByCustoms => {
                ApiError::forbidden(message)
            }
            E::Illegal { state, action } => ApiError::conflict("illegal_transition", message)
                .with_details(json!({"state": state, "event": action})),
            E::ApplicationChanged => invalid("application_id", "application_changed", message),
            E::ReleasedOnly | E::NoElectronicRecord => ApiError::conflict("not_released", message),
            E::DuplicateCertificate(_) => ApiError::conflict("duplicate_certificate", message),
            E::UnknownEnterprise(_) => ApiError::conflict("unknown_enterprise", message),
            E::UnknownHsCode { .. } => ApiError::conflict("unknown_hs_code", message),
            E::SerialsExhausted => ApiError::conflict("serials_exhausted", message),
            E::NotValid { status, .. } => {
                ApiError::conflict("not_valid", message).with_details(json!({"status": status}))
            }
            E::PrintLimitReached { prints, max_prints, .. } => {
                ApiError::conflict("print_limit_reached", message)
                    .with_details(json!({"prints": prints, "max_prints": max_prints}))
            }
            E::PrintInProgress => ApiError::conflict("print_in_progress", message),
            E::NotAValidCertificate { .. } => {
                ApiError::new(StatusCode::NOT_FOUND, "not_a_valid_certificate", message)
            }
            E::Notice(e) => e.into(),
            E::Internal(e) => ApiError::Internal(e),
            E::NotAllowed(e) => e.into(),
            E::Store(e) => e.into(),
        }
    }
}

impl From<crate::messages::error::MessageError> for ApiError {
    fn from(e: crate::messages::error::MessageError) -> Self {
        use crate::messages::error::MessageError as E;
        // The message layer's own refusals name their rule in the details, as the code.
        let rule = |status: StatusCode, rule: &'static str, message: String| {
            ApiError::new(status, rule, message).with_details(json!({ "rule": rule }))
        };
        let message = e.to_string();
        match e {
            E::Envelope(e) => {
                let status = match e.rule {
                    "bad_signature" => StatusCode::UNAUTHORIZED,
                    "message_too_large" => StatusCode::PAYLOAD_TOO_LARGE,
                    _ => StatusCode::BAD_REQUEST,
                };
                rule(status, e.rule, e.message)
            }
            E::WrongTyp { .. } => rule(StatusCode::BAD_REQUEST, "wrong_typ", message),
            E::UnknownKey(_) => rule(StatusCode::UNAUTHORIZED, "unknown_key", message),
            E::InvalidPayload(_) => rule(StatusCode::UNPROCESSABLE_ENTITY, "invalid_payload", message),
            E::MessageIdReused(r) => ApiError::conflict("message_id_reused", message).with_details(json!({
                "rule": "message_id_reused",
                "original": {"evidence_id": r.evidence_id, "payload_sha256": r.original_sha256,
                             "received_at": r.received_at},
                "payload_sha256": r.payload_sha256,
            })),
            E::UnknownEnterprise(_) => rule(StatusCode::UNPROCESSABLE_ENTITY, "unknown_enterprise", message),
            E::NotDelegated { .. } => rule(StatusCode::FORBIDDEN, "not_delegated", message),
            E::SignerPending(_) => rule(StatusCode::FORBIDDEN, "signer_pending", message),
            E::SignerFrozen(_) => rule(StatusCode::FORBIDDEN, "signer_frozen", message),
            E::SignerLost(_) => rule(StatusCode::FORBIDDEN, "signer_lost", message),
            E::SignerExpired(_) => rule(StatusCode::FORBIDDEN, "signer_expired", message),
            E::SignerNotEnterprise => rule(StatusCode::FORBIDDEN, "signer_not_enterprise", message),
            E::MissingContent(_) => rule(StatusCode::UNPROCESSABLE_ENTITY, "missing_content", message),
            E::InvalidContent(_) => rule(StatusCode::UNPROCESSABLE_ENTITY, "invalid_content", message),
            E::MissingField { .. } | E::SubmitTakesOne => {
                rule(StatusCode::UNPROCESSABLE_ENTITY, "missing_field", message)
            }
            E::InvalidTime(_) => rule(StatusCode::UNPROCESSABLE_ENTITY, "invalid_time", message),
            E::EnterpriseMismatch(_) => {
                rule(StatusCode::UNPROCESSABLE_ENTITY, "enterprise_mismatch", message)
            }
            E::NotFound(what) => ApiError::not_found(what),
            E::Application(e) => e.into(),
            E::Submit(e) => e.into(),
            E::Booking(e) => e.into(),
            E::Certificate(e) => e.into(),
            E::Workflow(e) => e.into(),
            E::Orgs(e) => e.into(),
            E::Store(e) => e.into(),
            E::Internal(e) => ApiError::Internal(e),
        }
    }
}

/// A received file that is not a supporting document: 415 when no format of ours is recognised, else 422.
impl From<crate::documents::error::DocRefusal> for ApiError {
    fn from(r: crate::documents::error::DocRefusal) -> ApiError {
        let status = if matches!(r, crate::documents::error::DocRefusal::UnsupportedFormat) {
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        ApiError::new(status, r.code(), format!("{r}; nothing was stored"))
    }
}

impl From<crate::documents::error::DocumentError> for ApiError {
    fn from(e: crate::documents::error::DocumentError) -> Self {
        use crate::documents::error::DocumentError as E;
        let message = e.to_string();
        match e {
            E::NotFound(what) => ApiError::not_found(what),
            E::AttachedByEnterprise | E::AskedByCustoms => ApiError::forbidden(message),
            E::UnknownAttachment(_) => invalid("replaces", "unknown_attachment", message),
            E::AlreadyReplaced { by, .. } | E::AskForReplacement { by, .. } => {
                ApiError::conflict("already_replaced", message).with_details(json!({"replaced_by": by}))
            }
            E::KindMismatch { .. } => invalid("kind", "kind_mismatch", message),
            E::AlreadyRequested { request, .. } => {
                ApiError::conflict("already_requested", message).with_details(json!({"request_id": request}))
            }
            E::Application(e) => e.into(),
            E::Certificate(e) => e.into(),
            E::Review(e) => e.into(),
            E::Store(e) => e.into(),
            E::Internal(e) => ApiError::Internal(e),
        }
    }
}

/// A new password the policy refuses: 422 on the body's `password` field.
impl From<crate::auth::password::strength::PasswordError> for ApiError {
    fn from(e: crate::auth::password::strength::PasswordError) -> Self {
        use crate::auth::password::strength::PasswordError as E;
        let code = match e {
            E::TooLong(_) => "password_too_long",
            E::TooShort(_) => "weak_password",
        };
        invalid("password", code, e.to_string())
    }
}

/// The password hashing queue is full: 503 `overloaded` with `Retry-After`; anything else a logged 500.
impl From<crate::auth::password::error::HashError> for ApiError {
    fn from(e: crate::auth::password::error::HashError) -> Self {
        use crate::auth::password::error::HashError as E;
        let message = e.to_string();
        match e {
            E::Overloaded { retry_after_secs } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", message)
                    .with_retry_after(retry_after_secs)
            }
            E::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl From<crate::onboarding::error::OnboardingError> for ApiError {
    fn from(e: crate::onboarding::error::OnboardingError) -> Self {
        use crate::onboarding::error::OnboardingError as E;
        let message = e.to_string();
        match e {
            E::Empty { field, .. } => invalid(field, "invalid_text", message),
            E::InvalidLegalPerson(_) => invalid("enterprise.legal_person", "invalid_text", message),
            E::InvalidPhone => invalid("contact.phone", "invalid_phone", message),
            E::InvalidEmail => invalid("contact.email", "invalid_email", message),
            E::TooManyRegistrations { retry_after_secs, .. } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_registrations", message)
                    .with_retry_after(retry_after_secs)
            }
            E::NotFound(what) => ApiError::not_found(what),
            E::NotReturned(_) => ApiError::conflict("not_returned", message),
            E::NotPending(_) => ApiError::conflict("not_pending", message),
            E::UnknownUnit(_) => invalid("unit_code", "unknown_unit", message),
            E::DuplicateEnterprise => ApiError::conflict("duplicate_enterprise", message),
            E::MissingOpinion => invalid("opinion", "missing_opinion", message),
            E::Orgs(e) => e.into(),
            E::Store(e) => e.into(),
            E::Password(e) => e.into(),
        }
    }
}

impl From<crate::notices::error::NoticeError> for ApiError {
    fn from(e: crate::notices::error::NoticeError) -> Self {
        use crate::notices::error::NoticeError as E;
        let message = e.to_string();
        match e {
            E::NotFound(what) => ApiError::not_found(what),
            E::Void(_) => ApiError::conflict("notice_void", message),
            E::NotConfirmed { .. } => ApiError::conflict("not_confirmed", message),
            E::NoDisposal(_) => ApiError::conflict("no_disposal", message),
            E::NotReleased { .. } => ApiError::conflict("not_released", message),
            E::Instruction(e) => e.into(),
            E::Application(e) => e.into(),
            E::Store(e) => e.into(),
            E::Internal(e) => ApiError::Internal(e),
            E::Booking(e) => e.into(),
        }
    }
}

impl From<crate::photos::error::PhotoError> for ApiError {
    fn from(e: crate::photos::error::PhotoError) -> Self {
        use crate::photos::error::PhotoError as E;
        let message = e.to_string();
        match e {
            E::InvalidSha256 => invalid("sha256", "invalid_sha256", message),
            E::NotAssigned => {
                ApiError::not_found("the instruction").with_details(json!({"field": "instruction"}))
            }
            E::NotFound(what) => ApiError::not_found(what),
            E::InstructionClosed(_) => ApiError::conflict("instruction_closed", message),
            E::NotAllowed(e) => e.into(),
            E::Store(e) => e.into(),
            E::Internal(e) => ApiError::Internal(e),
        }
    }
}

/// A received file that is no photo: 415 for a type we do not take, else 422; a disk failure is a 500.
impl From<crate::photos::error::IngestError> for ApiError {
    fn from(e: crate::photos::error::IngestError) -> ApiError {
        use crate::photos::error::IngestError;
        match e {
            IngestError::HashMismatch { ref expected, ref actual } => {
                let details = json!({"expected": expected, "actual": actual});
                ApiError::unprocessable(
                    "hash_mismatch",
                    format!("{e}; nothing was stored — send the bytes whose SHA-256 is the name"),
                )
                .with_details(details)
            }
            IngestError::Refused(r) => {
                let status = if r.is_media_type() {
                    StatusCode::UNSUPPORTED_MEDIA_TYPE
                } else {
                    StatusCode::UNPROCESSABLE_ENTITY
                };
                ApiError::new(status, r.code(), format!("{r}; nothing was stored"))
            }
            IngestError::Io(io) => ApiError::Internal(anyhow::Error::new(io).context("storing a photo")),
        }
    }
}

/// A monitoring request refused: the period's fields (422), the live stream tokens used up (503 with
/// `Retry-After`), the role (403).
impl From<crate::monitoring::error::MonitoringError> for ApiError {
    fn from(e: crate::monitoring::error::MonitoringError) -> Self {
        use crate::monitoring::error::MonitoringError as E;
        let message = e.to_string();
        match e {
            E::NotAllowed(e) => e.into(),
            E::InvalidTime { field, .. } => invalid(field, "invalid_time", message),
            E::BackwardsPeriod => invalid("from", "invalid_range", message),
            E::PeriodTooLong { max_days } => invalid("from", "range_too_long", message)
                .with_details(json!({"field": "from", "max_days": max_days})),
            E::TooManyStreamTokens { retry_after_secs } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "too_many_stream_tokens", message)
                    .with_retry_after(retry_after_secs)
            }
            E::Randomness(_) => ApiError::Internal(anyhow::Error::new(e)),
        }
    }
}

impl From<crate::devices::error::DeviceError> for ApiError {
    fn from(e: crate::devices::error::DeviceError) -> Self {
        use crate::devices::error::DeviceError as E;
        let message = e.to_string();
        match e {
            E::InvalidName => invalid("name", "invalid_text", message),
            E::NotFound(what) => ApiError::not_found(what),
            E::NotYours => ApiError::unauthorized("unknown_device", message),
            E::Frozen => ApiError::unauthorized("device_frozen", message),
            E::Lost => ApiError::unauthorized("device_lost", message),
            E::StaysLost => ApiError::conflict("device_lost", message),
            E::Store(e) => e.into(),
            E::Internal(e) => ApiError::Internal(e),
        }
    }
}

/// An import that wrote nothing is the operator's to read in full (the CLI prints its problems); through
/// the API it is a logged 500.
impl From<crate::reference::error::ImportError> for ApiError {
    fn from(e: crate::reference::error::ImportError) -> ApiError {
        ApiError::Internal(anyhow::Error::new(e))
    }
}

impl From<crate::receipts::error::ReceiptsError> for ApiError {
    fn from(e: crate::receipts::error::ReceiptsError) -> Self {
        use crate::receipts::error::ReceiptsError as E;
        match e {
            E::NotAllowed(e) => e.into(),
            E::Store(e) => e.into(),
        }
    }
}

impl From<crate::reminders::error::ReminderError> for ApiError {
    fn from(e: crate::reminders::error::ReminderError) -> Self {
        use crate::reminders::error::ReminderError as E;
        match e {
            E::Store(e) => e.into(),
            E::Records(e) => e.into(),
        }
    }
}

impl From<crate::workflow::error::BlankText> for ApiError {
    fn from(e: crate::workflow::error::BlankText) -> Self {
        invalid(e.field, e.code, e.to_string())
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
            StoreError::Failed(what) => ApiError::Internal(anyhow::anyhow!(what)),
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
    use crate::records::error::RecordsError;

    fn parts(e: ApiError) -> (StatusCode, &'static str, String, Value) {
        match e {
            ApiError::Client { status, code, message, details, .. } => (status, code, message, details),
            ApiError::Internal(e) => panic!("internal: {e}"),
        }
    }

    /// An error and what the client saw of it before: status, code, message, details.
    type Case<E> = (E, (u16, &'static str, &'static str, Value));

    /// What a client sees of an error: status, code, message, details.
    fn seen(e: impl Into<ApiError>) -> (u16, &'static str, String, Value) {
        let (status, code, message, details) = parts(e.into());
        (status.as_u16(), code, message, details)
    }

    #[test]
    fn certificate_refusals_keep_the_status_code_sentence_and_details_clients_saw() {
        use crate::certificates::error::CertificateError as E;
        use crate::domain::CertState;
        let cases: Vec<Case<E>> = vec![
            (
                E::TooManyDeclarations { max: 10 },
                (
                    422,
                    "too_many",
                    "at most 10 additional declarations",
                    json!({"field": "additional_declarations"}),
                ),
            ),
            (
                E::TooManyReplacementDeclarations { max: 10 },
                (422, "too_many", "at most 10", json!({"field": "additional_declarations"})),
            ),
            (
                E::DuplicateGoodsLine { index: 2 },
                (422, "duplicate_goods_line", "name each goods line once", json!({"field": "goods[2].line"})),
            ),
            (
                E::QuantityExceedsInspected {
                    index: 0,
                    line: 1,
                    inspected: 2.5,
                    unit: "kg".into(),
                    asked: 3.0,
                },
                (
                    422,
                    "quantity_exceeds_inspected",
                    "line 1 was declared and inspected as 2.5 kg; a certificate cannot cover 3",
                    json!({"field": "goods[0].quantity", "inspected": 2.5}),
                ),
            ),
            (
                E::Unprintable { field: "treatment".into(), glyph: '\u{1F600}' },
                (
                    422,
                    "unprintable_text",
                    "the character '\u{1F600}' (U+1F600) cannot be printed on a certificate; write it another way",
                    json!({"field": "treatment"}),
                ),
            ),
            (
                E::Illegal { state: CertState::Issued, action: "issu" },
                (
                    409,
                    "illegal_transition",
                    "a certificate application that is issued cannot be issued",
                    json!({"state": "issued", "event": "issu"}),
                ),
            ),
            (
                E::ApplicationChanged,
                (
                    422,
                    "application_changed",
                    "an amendment keeps the application; apply anew for another",
                    json!({"field": "application_id"}),
                ),
            ),
            (
                E::DuplicateCertificate("X1".into()),
                (
                    409,
                    "duplicate_certificate",
                    "certificate X1 of this type is already valid; replace it instead",
                    Value::Null,
                ),
            ),
            (
                E::SerialsExhausted,
                (409, "serials_exhausted", "this year's certificate numbers are used up", Value::Null),
            ),
            (
                E::NotAValidCertificate {
                    number: "220026SA999999".into(),
                    why: "no certificate has such a number",
                },
                (
                    404,
                    "not_a_valid_certificate",
                    "220026SA999999 is not a valid certificate or notice: no certificate has such a number",
                    Value::Null,
                ),
            ),
            (
                E::PrintInProgress,
                (
                    409,
                    "print_in_progress",
                    "another print of this certificate just happened; ask again",
                    Value::Null,
                ),
            ),
            (
                E::NotYourEnterprise,
                (
                    403,
                    "forbidden",
                    "you may not apply for certificates of this application's enterprise: it is not yours and has not \
                     delegated certificates to you",
                    json!({"field": "application_id"}),
                ),
            ),
        ];
        for (e, (status, code, message, details)) in cases {
            assert_eq!(seen(e), (status, code, message.to_owned(), details));
        }
    }

    #[test]
    fn message_refusals_keep_their_rule_status_and_sentence() {
        use crate::messages::{envelope::EnvelopeError, error::MessageError as E};
        let rule = |r: &str| json!({ "rule": r });
        let cases: Vec<(E, (u16, &str, &str))> = vec![
            (
                E::Envelope(EnvelopeError { rule: "message_too_large", message: "too big".into() }),
                (413, "message_too_large", "too big"),
            ),
            (
                E::Envelope(EnvelopeError { rule: "malformed_envelope", message: "no".into() }),
                (400, "malformed_envelope", "no"),
            ),
            (
                E::WrongTyp { expected: "fieldcheck-message+jws" },
                (400, "wrong_typ", "`typ` must be `fieldcheck-message+jws` when present"),
            ),
            (E::InvalidPayload("eof".into()), (422, "invalid_payload", "the signed payload: eof")),
            (
                E::SignerPending("a".into()),
                (
                    403,
                    "signer_pending",
                    "the account `a` is not confirmed yet: its key signs nothing until it is",
                ),
            ),
            (
                E::SignerLost("a".into()),
                (403, "signer_lost", "the account `a` was reported lost: its key signs nothing any more"),
            ),
            (E::SignerExpired("a".into()), (403, "signer_expired", "the account `a` is past its validity")),
            (
                E::SignerNotEnterprise,
                (
                    403,
                    "signer_not_enterprise",
                    "messages are signed by enterprise operators, legal persons or platform signers",
                ),
            ),
            (
                E::MissingContent("booking.request"),
                (422, "missing_content", "a `booking.request` message needs `content`"),
            ),
            (
                E::MissingField { kind: "booking.cancel", field: "booking_id" },
                (422, "missing_field", "a `booking.cancel` message needs `booking_id`"),
            ),
            (
                E::SubmitTakesOne,
                (
                    422,
                    "missing_field",
                    "`application.submit` takes either `content` (file and submit) or `application_id` (submit a draft)",
                ),
            ),
            (
                E::EnterpriseMismatch("1234567890".into()),
                (
                    422,
                    "enterprise_mismatch",
                    "the message names enterprise 1234567890 but its content is another enterprise's",
                ),
            ),
        ];
        for (e, (status, code, message)) in cases {
            assert_eq!(seen(e), (status, code, message.to_owned(), rule(code)));
        }
    }

    #[test]
    fn document_refusals_keep_the_status_code_sentence_and_details_clients_saw() {
        use crate::documents::error::DocumentError as E;
        let cases: Vec<Case<E>> = vec![
            (
                E::UnknownAttachment(7),
                (422, "unknown_attachment", "document 7 is not attached here", json!({"field": "replaces"})),
            ),
            (
                E::KindMismatch { old: 7, kind: "invoice" },
                (
                    422,
                    "kind_mismatch",
                    "document 7 is a invoice; its replacement must be one too",
                    json!({"field": "kind"}),
                ),
            ),
            (
                E::AlreadyReplaced { old: 7, by: 9 },
                (
                    409,
                    "already_replaced",
                    "document 7 was already replaced by document 9",
                    json!({"replaced_by": 9}),
                ),
            ),
            (
                E::AttachedByEnterprise,
                (403, "forbidden", "supporting documents are attached by the enterprise", Value::Null),
            ),
            (
                E::AskedByCustoms,
                (403, "forbidden", "customs asks for documents again, not the enterprise", Value::Null),
            ),
        ];
        for (e, (status, code, message, details)) in cases {
            assert_eq!(seen(e), (status, code, message.to_owned(), details));
        }
    }

    #[test]
    fn a_database_failure_behind_a_document_is_not_told_as_not_found() {
        use crate::{db::error::StoreError, documents::error::DocumentError as E};
        let failure = E::Store(StoreError::Failed("committing a group of writes: disk full".into()));
        assert!(failure.is_failure());
        assert!(!E::Store(StoreError::NotFound("the application")).is_failure());
        assert!(!E::Certificate(crate::certificates::error::CertificateError::NotFound("x")).is_failure());
    }

    #[test]
    fn onboarding_refusals_keep_the_status_code_sentence_and_details_clients_saw() {
        use crate::onboarding::error::OnboardingError as E;
        let cases: Vec<Case<E>> = vec![
            (
                E::Empty { field: "enterprise.legal_person", name: "legal_person" },
                (
                    422,
                    "invalid_text",
                    "`legal_person` must not be empty",
                    json!({"field": "enterprise.legal_person"}),
                ),
            ),
            (
                E::InvalidPhone,
                (
                    422,
                    "invalid_phone",
                    "`contact.phone` takes digits, spaces and `+-()`, with at least 5 digits",
                    json!({"field": "contact.phone"}),
                ),
            ),
            (
                E::InvalidEmail,
                (
                    422,
                    "invalid_email",
                    "`contact.email` must look like name@example.com",
                    json!({"field": "contact.email"}),
                ),
            ),
            (
                E::UnknownUnit("X".into()),
                (422, "unknown_unit", "no unit has the code X", json!({"field": "unit_code"})),
            ),
            (
                E::TooManyRegistrations { per_hour: 5, retry_after_secs: 60 },
                (
                    429,
                    "too_many_registrations",
                    "5 registrations an hour are accepted from one address; try again later",
                    json!({"retry_after_secs": 60}),
                ),
            ),
        ];
        for (e, (status, code, message, details)) in cases {
            assert_eq!(seen(e), (status, code, message.to_owned(), details));
        }
    }

    #[test]
    fn notice_refusals_keep_the_status_code_and_sentence_clients_saw() {
        use crate::{domain::ApplicationState, notices::error::NoticeError as E};
        assert_eq!(
            seen(E::Void(4)),
            (409, "notice_void", "instruction 4 was cancelled; it has no notice".to_owned(), Value::Null)
        );
        assert_eq!(
            seen(E::NotReleased { id: 4, state: ApplicationState::Draft }),
            (409, "not_released", "application 4 is draft; it was not released".to_owned(), Value::Null)
        );
    }

    #[test]
    fn photo_refusals_keep_the_status_code_sentence_and_details_clients_saw() {
        use crate::{domain::InstructionState, photos::error::PhotoError as E};
        assert_eq!(
            seen(E::NotAssigned),
            (404, "not_found", "the instruction was not found".to_owned(), json!({"field": "instruction"}))
        );
        assert_eq!(
            seen(E::InstructionClosed(InstructionState::Approved)),
            (
                409,
                "instruction_closed",
                "the instruction is approved; it takes no more evidence".to_owned(),
                Value::Null
            )
        );
    }

    #[test]
    fn auth_refusals_keep_the_status_code_sentence_and_details_clients_saw() {
        use crate::auth::{
            error::{AuthError, LoginError, ThrottleError, TokenError},
            password::error::HashError,
        };
        assert_eq!(
            seen(TokenError::Expired),
            (
                401,
                "token_expired",
                "the access token has expired; get a new one with POST /api/v1/auth/refresh".to_owned(),
                Value::Null
            )
        );
        assert_eq!(
            seen(TokenError::Invalid("wrong issuer")),
            (
                401,
                "invalid_token",
                "the access token is not valid: wrong issuer; log in again".to_owned(),
                Value::Null
            )
        );
        let wait = ThrottleError::TooManyAttempts { scope: "from your address", retry_after_secs: 4 };
        let wait = ApiError::from(wait);
        assert!(matches!(wait, ApiError::Client { retry_after_secs: Some(4), .. }));
        assert_eq!(
            seen(wait),
            (
                429,
                "too_many_attempts",
                "too many failed logins from your address; try again in 4 s".to_owned(),
                json!({"retry_after_secs": 4})
            )
        );
        let overloaded = ApiError::from(HashError::Overloaded { retry_after_secs: 1 });
        assert!(matches!(overloaded, ApiError::Client { retry_after_secs: Some(1), .. }));
        assert_eq!(
            seen(overloaded),
            (
                503,
                "overloaded",
                "too many logins at once; try again in 1 s".to_owned(),
                json!({"retry_after_secs": 1})
            )
        );
        assert_eq!(
            seen(LoginError::from(AuthError::UnknownRefresh)),
            (401, "invalid_refresh_token", "unknown refresh token".to_owned(), Value::Null)
        );
        assert_eq!(
            seen(LoginError::from(AuthError::NoSigningKey)),
            (
                401,
                "no_signing_key",
                "no registered signing key for this username; ask an administrator to register one"
                    .to_owned(),
                Value::Null
            )
        );
        assert_eq!(
            seen(LoginError::from(crate::devices::error::DeviceError::Frozen)),
            (401, "device_frozen", "this device is frozen".to_owned(), Value::Null)
        );
        assert_eq!(
            seen(LoginError::from(StoreError::NotFound("the session"))),
            (404, "not_found", "the session was not found".to_owned(), Value::Null)
        );
        let failed: ApiError = HashError::Internal(anyhow::anyhow!("argon2 memory: no")).into();
        assert!(matches!(failed, ApiError::Internal(_)));
        let failed: ApiError = TokenError::Internal(anyhow::anyhow!("no randomness")).into();
        assert!(matches!(failed, ApiError::Internal(_)));
    }

    #[test]
    fn device_refusals_keep_the_status_code_and_sentence_clients_saw() {
        use crate::devices::error::DeviceError as E;
        assert_eq!(
            seen(E::InvalidName),
            (
                422,
                "invalid_text",
                "`name` must have 1 to 100 characters".to_owned(),
                json!({"field": "name"})
            )
        );
        assert_eq!(
            seen(E::Lost),
            (401, "device_lost", "this device was reported lost".to_owned(), Value::Null)
        );
        assert_eq!(
            seen(E::StaysLost),
            (
                409,
                "device_lost",
                "a lost device stays lost; register the replacement handheld as a new device".to_owned(),
                Value::Null
            )
        );
    }

    #[test]
    fn monitoring_refusals_keep_the_status_code_sentence_details_and_retry_after_clients_saw() {
        use crate::monitoring::{MonitoringError as E, Period, Scope};
        let now = 1_790_000_000_000;
        let period = |from, to| seen(Period::parse(from, to, now).unwrap_err());
        assert_eq!(
            period(Some("yesterday"), None),
            (422, "invalid_time", rfc3339_refusal("yesterday"), json!({"field": "from"}))
        );
        assert_eq!(
            period(None, Some("soon")),
            (422, "invalid_time", rfc3339_refusal("soon"), json!({"field": "to"}))
        );
        assert_eq!(
            period(Some("2026-02-01T00:00:00Z"), Some("2026-01-01T00:00:00Z")),
            (422, "invalid_range", "`from` must be before `to`".to_owned(), json!({"field": "from"}))
        );
        assert_eq!(
            period(Some("2000-01-01T00:00:00Z"), Some("2026-01-01T00:00:00Z")),
            (
                422,
                "range_too_long",
                "at most 1830 days at once".to_owned(),
                json!({"field": "from", "max_days": 1830})
            )
        );
        let officer = crate::domain::Principal {
            user_id: 1,
            username: "o".into(),
            role: crate::domain::Role::Officer,
            unit_id: Some(1),
            enterprise_id: None,
        };
        let (status, code, message, _) = seen(Scope::of(&officer).unwrap_err());
        assert_eq!((status, code), (403, "forbidden"), "{message}");
        assert!(message.starts_with("this needs one of the roles supervisor, admin"), "{message}");

        let e: ApiError = E::TooManyStreamTokens { retry_after_secs: 60 }.into();
        let response = e.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()), Some("60"));
        assert_eq!(
            seen(E::TooManyStreamTokens { retry_after_secs: 60 }),
            (
                503,
                "too_many_stream_tokens",
                "too many stream tokens are live; use the one you have or try again in a minute".to_owned(),
                json!({"retry_after_secs": 60})
            )
        );
    }

    /// The sentence `rfc3339::parse` refuses `s` with.
    fn rfc3339_refusal(s: &str) -> String {
        crate::domain::time::rfc3339::parse(s).unwrap_err()
    }

    #[test]
    fn a_refused_validity_period_and_a_blank_reason_keep_their_code_field_and_sentence() {
        use crate::domain::time::PeriodError;
        assert_eq!(
            seen(PeriodError::BackDated),
            (
                422,
                "invalid_period",
                "`valid_from` is more than a day before now; a validity period cannot be back-dated further"
                    .to_owned(),
                json!({"field": "valid_from"})
            )
        );
        assert_eq!(
            seen(PeriodError::EndsBeforeStart),
            (
                422,
                "invalid_period",
                "`valid_until` must be after `valid_from`".to_owned(),
                json!({"field": "valid_until"})
            )
        );
        let blank = crate::workflow::required_text("reason", "missing_reason", "  ", "why it is cancelled");
        assert_eq!(
            seen(blank.unwrap_err()),
            (422, "missing_reason", "say why it is cancelled".to_owned(), json!({"field": "reason"}))
        );
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

    #[test]
    fn a_refused_resolution_answers_the_status_code_sentence_and_details_the_handlers_built() {
        assert_eq!(
            parts(RecordsError::NoRecordYet.into()),
            (
                StatusCode::CONFLICT,
                "no_such_conflict",
                "the record has no conflicts: no officer has written yet".into(),
                Value::Null
            )
        );
        let no_such = RecordsError::NoSuchConflict {
            path: "verdict.value".into(),
            open: vec!["checks.c1.value".into()],
        };
        assert_eq!(
            parts(no_such.into()),
            (
                StatusCode::CONFLICT,
                "no_such_conflict",
                "verdict.value has no open conflict".into(),
                json!({"open": ["checks.c1.value"]})
            )
        );
        let unfit = RecordsError::UnfitValue {
            path: "checks.c1.result".into(),
            expected: "a check result: pass, fail or not_applicable",
        };
        assert_eq!(
            parts(unfit.into()),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_value",
                "checks.c1.result takes a check result: pass, fail or not_applicable".into(),
                json!({"field": "value"})
            )
        );
    }

    #[test]
    fn an_instruction_without_a_record_document_is_a_404_that_says_when_one_is_made() {
        assert_eq!(
            parts(RecordsError::NoRecord.into()),
            (
                StatusCode::NOT_FOUND,
                "not_found",
                "the record (it is created when officers are assigned) was not found".into(),
                Value::Null
            )
        );
    }

    #[test]
    fn a_server_edit_that_breaks_the_record_schema_answers_422_with_the_rule_as_its_code() {
        let violation = fieldcheck_sync::schema::SchemaViolation::WrongUnit {
            path: "checks.c1.measurement".into(),
            found: "°F".into(),
            expected: "°C".into(),
        };
        let sentence = violation.to_string();
        assert_eq!(
            parts(RecordsError::Schema(violation).into()),
            (StatusCode::UNPROCESSABLE_ENTITY, "wrong_unit", sentence, Value::Null)
        );
    }

    #[test]
    fn a_damaged_record_and_a_failed_statement_are_a_bare_500() {
        let damaged: ApiError = RecordsError::internal("stored record", "not automerge").into();
        assert!(matches!(damaged, ApiError::Internal(_)));
        let failed: ApiError = RecordsError::from(EngineError::QueryReturnedNoRows).into();
        assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
