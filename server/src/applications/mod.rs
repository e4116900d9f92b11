//! Inspection applications (电子底账申请 / 出境检验检疫申请): drafts, submission, copies, amendments.
//!
//! The declaration itself is one JSON document (`ApplicationContent`) whose shape serde checks; the business
//! rules (known HS codes, legal units, producer qualification, the applicant) are checked on submission
//! against the reference tables, and every broken rule is reported at once so the filer fixes all in one go.
//!
//! # Layout
//! - this file: the types, placement and submission rules, history, transitions and release.
//! - [`filing`]: who may see an application and the enterprise's steps (draft, amend, submit, copy).
//! - [`error`]: [`ApplicationError`], why a step was refused (mapped to HTTP in `error.rs`).
//! - [`submit_error`]: [`SubmitError`], a submission's refusal: [`ApplicationError`] or the automatic review's.
//! - [`number`]: `InspectionNo`. [`store`]: all of the module's SQL. [`http`]: the handlers.

pub mod error;
pub mod filing;
pub mod http;
pub mod number;
pub mod store;
pub mod submit_error;

use crate::db::{Conn, Tx};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use error::{ApplicationError, Violation};
pub use number::InspectionNo;
pub use submit_error::SubmitError;

use crate::domain::events::ApplicationEvent;
use crate::{
    audit::Actor,
    delegations,
    domain::Principal,
    domain::{
        ApplicationState, CertificateKind, CustomsCode, Direction, DistrictCode, Line, Scope, UnitKind,
        time::rfc3339,
    },
    error::StoreError,
    orgs::store as orgs_store,
    receipts::{self, Change},
    reference,
};

pub const MAX_GOODS_LINES: usize = 100;

/// A 10-digit HS code (its existence is a submission rule, not a format rule).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "0805100000")]
pub struct HsCode(String);

impl TryFrom<String> for HsCode {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.len() == 10 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(HsCode(s))
        } else {
            Err(format!("HS code `{s}` must be exactly 10 digits"))
        }
    }
}

impl From<HsCode> for String {
    fn from(c: HsCode) -> String {
        c.0
    }
}

/// An ISO 3166-1 alpha-2 country code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "CN")]
pub struct Country(String);

impl TryFrom<String> for Country {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Country(s))
        } else {
            Err(format!("country `{s}` must be an ISO 3166 two-letter code such as CN or JP"))
        }
    }
}

impl From<Country> for String {
    fn from(c: Country) -> String {
        c.0
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GoodsLine {
    pub hs_code: HsCode,
    pub name: Line<200>,
    pub quantity: f64,
    /// Must be the HS code's legal unit of quantity (see `GET /api/v1/hs-codes/{code}`).
    pub unit: Line<32>,
    pub net_weight_kg: f64,
    pub value_usd: f64,
    pub origin_country: Country,
    /// Registration number of the producer (orchard, mill, plant); required where a producer rule applies.
    #[serde(default)]
    pub producer_registration_no: Option<Line<64>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationContent {
    pub direction: Direction,
    /// The customs district (关区) that reviews the application.
    pub district_code: DistrictCode,
    /// The inspection site where the goods can be inspected; a site under the district.
    pub site_code: DistrictCode,
    /// The applicant enterprise's customs code; the application belongs to it.
    pub applicant_code: CustomsCode,
    pub consignor_code: CustomsCode,
    pub consignee_name: Line<200>,
    pub destination_country: Country,
    pub goods: Vec<GoodsLine>,
    #[serde(default)]
    pub certificates: Vec<CertificateKind>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Application {
    pub id: i64,
    pub enterprise_id: i64,
    pub state: ApplicationState,
    pub inspection_no: Option<String>,
    pub version: i64,
    pub copied_from: Option<i64>,
    /// The risk engine's outcome once approved: `release`, `document_check` or `on_site`.
    pub disposition: Option<String>,
    pub content: ApplicationContent,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
    #[serde(with = "rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub submitted_at: Option<i64>,
    /// Internal: the reviewing district's unit id.
    #[serde(skip)]
    pub district_unit: i64,
    #[serde(skip)]
    pub site_unit: i64,
}

fn violation(field: impl Into<String>, rule: &str, message: impl Into<String>) -> Violation {
    Violation { field: field.into(), rule: rule.into(), message: message.into() }
}

/// Where the application is filed: the district unit and the site under it.
pub struct Placement {
    pub enterprise_id: i64,
    pub district_unit: i64,
    pub site_unit: i64,
}

/// Checks what a draft must already satisfy: an applicant the caller may file for, a known district and a
/// site under it. Everything else waits for submission.
pub fn place(
    c: &Conn,
    caller: &Principal,
    content: &ApplicationContent,
    now: i64,
) -> Result<Placement, ApplicationError> {
    let enterprise =
        orgs_store::enterprise_by_code(c, content.applicant_code.as_str()).map_err(StoreError::from)?;
    let enterprise = match enterprise {
        Some(e) if delegations::may_act_for(c, caller, e.id, Scope::Applications, now)? => e,
        _ => return Err(ApplicationError::NotYourApplicant(content.applicant_code.to_string())),
    };
    let district = orgs_store::unit_by_code(c, content.district_code.as_str())
        .map_err(StoreError::from)?
        .filter(|u| u.kind == UnitKind::Customs)
        .ok_or_else(|| ApplicationError::UnknownDistrict(content.district_code.to_string()))?;
    let site = orgs_store::unit_by_code(c, content.site_code.as_str())
        .map_err(StoreError::from)?
        .filter(|u| u.kind == UnitKind::Site && u.parent_id == Some(district.id))
        .ok_or_else(|| ApplicationError::UnknownSite {
            site: content.site_code.to_string(),
            district: content.district_code.to_string(),
        })?;
    Ok(Placement { enterprise_id: enterprise.id, district_unit: district.id, site_unit: site.id })
}

/// Every submission rule, checked against the reference tables; an empty list means the application may go.
pub fn submission_violations(
    c: &Conn,
    content: &ApplicationContent,
    now: i64,
) -> Result<Vec<Violation>, StoreError> {
    let mut v = Vec::new();
    if content.goods.is_empty() || content.goods.len() > MAX_GOODS_LINES {
        v.push(violation("goods", "goods_count", format!("declare 1 to {MAX_GOODS_LINES} goods lines")));
    }
    if content.consignee_name.trim().is_empty() {
        v.push(violation("consignee_name", "required", "name the consignee"));
    }
    if orgs_store::nameable_enterprise(c, content.consignor_code.as_str())?.is_none() {
        v.push(violation(
            "consignor_code",
            "unknown_enterprise",
            format!("no registered enterprise has the customs code {}", content.consignor_code),
        ));
    }
    for (i, line) in content.goods.iter().enumerate() {
        let at = |f: &str| format!("goods[{i}].{f}");
        if line.name.trim().is_empty() || line.name.chars().count() > 200 {
            v.push(violation(at("name"), "invalid_text", "the goods name needs 1 to 200 characters"));
        }
        for (field, value) in [
            ("quantity", line.quantity),
            ("net_weight_kg", line.net_weight_kg),
            ("value_usd", line.value_usd),
        ] {
            if !(value.is_finite() && value > 0.0 && value < 1e12) {
                v.push(violation(at(field), "not_positive", format!("`{field}` must be a positive number")));
            }
        }
        let Some(hs) = reference::hs(c, &line.hs_code.0)? else {
            v.push(violation(
                at("hs_code"),
                "unknown_hs_code",
                format!("HS code {} is not in the tariff table; check the 10 digits", line.hs_code.0),
            ));
            continue;
        };
        if line.unit.as_str() != hs.unit {
            v.push(violation(
                at("unit"),
                "wrong_unit",
                format!(
                    "HS {} ({}) is declared in `{}`, not `{}`",
                    hs.code, hs.description_en, hs.unit, line.unit
                ),
            ));
        }
        for rule in reference::producer_rules_for(c, &hs.code, content.direction)? {
            let ok = match &line.producer_registration_no {
                Some(no) => reference::producer_registered_for(c, no, &rule.hs_prefix, now)?,
                None => false,
            };
            if !ok {
                v.push(violation(
                    at("producer_registration_no"),
                    "producer_not_registered",
                    format!("{} ({})", rule.reason_en, rule.reason_zh),
                ));
            }
        }
    }
    Ok(v)
}

/// Writes a history row: every change keeps the content as it stood.
pub fn record_history(
    tx: &Tx<'_>,
    app: &Application,
    action: ApplicationEvent,
    opinion: Option<&str>,
    actor: &Actor,
    now: i64,
) -> Result<(), StoreError> {
    store::insert_history(tx, app, action.as_str(), opinion, &actor.label(), now)?;
    Ok(())
}

/// Moves an application to `state` with history, a receipt for the enterprise and an audit entry.
pub fn transition(
    tx: &Tx<'_>,
    now: i64,
    actor: &Actor,
    app: &mut Application,
    state: ApplicationState,
    action: ApplicationEvent,
    opinion: Option<&str>,
) -> Result<(), ApplicationError> {
    let details = json!({"version": app.version, "disposition": app.disposition});
    transition_as(tx, now, actor, app, AppChange { state, action, opinion, details })
}

/// A change of an application's state as its receipt tells it.
pub struct AppChange<'a> {
    pub state: ApplicationState,
    /// The receipt kind and the history action, e.g. `approved`, `released`, `disposal_notice`.
    pub action: ApplicationEvent,
    pub opinion: Option<&'a str>,
    /// What the receipt adds, e.g. the disposal or the electronic record's number.
    pub details: Value,
}

/// [`transition`] with the receipt's details chosen by the caller.
pub fn transition_as(
    tx: &Tx<'_>,
    now: i64,
    actor: &Actor,
    app: &mut Application,
    change: AppChange<'_>,
) -> Result<(), ApplicationError> {
    let AppChange { state, action, opinion, details } = change;
    app.state = state;
    app.updated_at = now;
    store::update_state(tx, app)?;
    record_history(tx, app, action, opinion, actor, now)?;
    let change = Change {
        event: action.into(),
        subject_id: app.id,
        enterprise_id: app.enterprise_id,
        inspection_no: app.inspection_no.as_deref(),
        state: state.as_str(),
        from: None,
        opinion,
        details,
    };
    receipts::record_change(tx, now, actor, change)?;
    Ok(())
}

/// The electronic record (电子底账) of released goods: the number the certificates and the port refer to.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ERecord {
    pub application_id: i64,
    /// `E` followed by the 15-digit inspection number: one record per application, found from either.
    pub number: String,
    /// `normal` (正常) once released.
    pub status: String,
    /// Released by a supervisor's forced release rather than an approved conforming result.
    pub forced: bool,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub released_at: i64,
}

/// The electronic record's number for an inspection number.
pub fn e_record_number(inspection_no: &str) -> String {
    format!("E{inspection_no}")
}

pub fn e_record(c: &Conn, application_id: i64) -> Result<Option<ERecord>, StoreError> {
    Ok(store::e_record(c, application_id)?)
}

/// Releases the goods: the electronic record gets its number and status `normal`, the application
/// becomes `released`, and the receipt (`action`) carries the number.
pub fn release(
    tx: &Tx<'_>,
    now: i64,
    actor: &Actor,
    app: &mut Application,
    action: ApplicationEvent,
    opinion: Option<&str>,
    forced: bool,
) -> Result<ERecord, ApplicationError> {
    let no = app.inspection_no.clone().ok_or(ApplicationError::NotNumbered)?;
    let number = e_record_number(&no);
    store::insert_e_record(tx, app.id, &number, forced, now)?;
    let details = json!({"e_record_no": number, "e_record_status": "normal", "forced": forced,
                         "version": app.version, "disposition": app.disposition});
    transition_as(
        tx,
        now,
        actor,
        app,
        AppChange { state: ApplicationState::Released, action, opinion, details },
    )?;
    // Written just above in this transaction: not finding it is a damaged store, not a refusal.
    Ok(e_record(tx, app.id)?.ok_or(StoreError::NotFound("the electronic record just written"))?)
}

/// Assigns the next serial for (direction, year, district) in the caller's transaction: never duplicated,
/// never skipped, because the writer is serialised and the bump commits or rolls back with the submission.
pub fn next_inspection_no(
    tx: &Tx<'_>,
    direction: Direction,
    year: i16,
    district: &str,
) -> Result<InspectionNo, ApplicationError> {
    let serial = store::next_serial(tx, direction, year, district)?;
    if serial > 9_999_999 {
        return Err(ApplicationError::SerialsExhausted(district.to_owned()));
    }
    Ok(InspectionNo::new(direction == Direction::Import, year, district, serial as u32))
}
