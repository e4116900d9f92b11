//! Cloud-issued certificates (云签发, flow step 10): apply, intelligent review, signed issue, self-print,
//! public verification, revoke and replace, and the SPS message with its outbox.
//!
//! # Layout
//! - this file: the enterprise's request ([`CertificateRequest`]), its checks at the door, the
//!   intelligent review ([`review`], every rule against the released, sealed record), and every state
//!   change (draft, amend, submit, withdraw, issue, reject, revoke, replace) written with its receipt and
//!   audit entry in the caller's transaction.
//! - [`types`]: certificate types and destination rules, reference data from `fixtures/certificates`.
//! - [`keys`]: the Ed25519 certificate key, published beside the JWKS.
//! - [`store`]: the tables and their SQL.
//! - [`error`]: `CertificateError`, why a step was refused (mapped to HTTP in `crate::error`).
//! - [`document`]: the printed certificate (A4, Chinese and English, QR code) through [`crate::print`].
//! - [`outbox`]: the SPS outbox table, the sender trait and its directory sender, the delivery bell.
//! - [`sps`]: the UN/CEFACT SPS certificate message and the delivery task.
//! - [`verify`]: the public `GET /verify/{number}`, HTML for people and JSON for programs.
//! - [`http`]: thin handlers.
//!
//! A certificate's content is canonical JSON: the exact bytes are stored, their SHA-256 is the digest the
//! QR code carries, and the signature covers the same bytes. Nothing re-serialises it after issue.

pub mod document;
pub mod error;
pub mod http;
pub mod keys;
pub mod outbox;
pub mod sps;
pub mod store;
pub mod types;
pub mod verify;

use crate::db::{Conn, Tx};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::domain::events::CertificateEvent;
use crate::{
    applications::{self, Application, Country, Violation, store as app_store},
    audit::{self, Actor},
    delegations,
    domain::{ApplicationState, CertState, Line, Paragraph, Principal, Role, Scope, time::rfc3339},
    instructions, orgs, print, receipts,
    receipts::About,
    records,
};
use error::CertificateError;
use keys::CertificateKey;
use types::CertificateType;

pub const MAX_GOODS_LINES: usize = 100;
pub const MAX_DECLARATIONS: usize = 10;

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Party {
    pub name: Line<200>,
    pub address: Line<300>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransportMode {
    Sea,
    Air,
    Road,
    Rail,
}

impl TransportMode {
    /// UN/ECE Recommendation 19 mode code, as the SPS message carries it.
    pub fn rec19(self) -> &'static str {
        match self {
            TransportMode::Sea => "1",
            TransportMode::Rail => "2",
            TransportMode::Road => "3",
            TransportMode::Air => "4",
        }
    }

    pub fn zh(self) -> &'static str {
        match self {
            TransportMode::Sea => "海运",
            TransportMode::Air => "空运",
            TransportMode::Road => "公路",
            TransportMode::Rail => "铁路",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Transport {
    pub mode: TransportMode,
    /// Vessel and voyage, flight, truck plate.
    pub means: Line<100>,
    pub port_of_loading: Line<100>,
    /// UN/LOCODE where known, e.g. `JPOSA`.
    #[serde(default)]
    pub port_of_unloading: Option<Line<100>>,
}

/// One goods line of the certificate: a line of the released application, and how much of it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertGoodsLine {
    /// 1-based line number in the released application's goods.
    pub line: usize,
    /// At most what was declared and inspected, in the line's unit.
    pub quantity: f64,
    /// Packages, e.g. `100 cartons`.
    #[serde(default)]
    pub packages: Option<Line<100>>,
}

/// What an enterprise applies for; amended as a whole.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateRequest {
    /// The released inspection application the certificate rests on.
    pub application_id: i64,
    /// A certificate type code (`GET /api/v1/certificate-types`).
    #[serde(rename = "type")]
    pub type_code: Line<32>,
    pub consignee: Party,
    pub destination_country: Country,
    #[serde(default)]
    pub transport: Option<Transport>,
    pub goods: Vec<CertGoodsLine>,
    #[serde(default)]
    pub additional_declarations: Vec<Paragraph<1000>>,
    /// Treatment applied (e.g. cold treatment, 1.1 °C for 16 days), where a destination requires it.
    #[serde(default)]
    pub treatment: Option<Paragraph<500>>,
}

/// An application for a certificate, as the enterprise and the reviewer see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CertApplication {
    pub id: i64,
    pub application_id: i64,
    pub enterprise_id: i64,
    #[serde(rename = "type")]
    pub type_code: String,
    pub state: CertState,
    pub version: i64,
    pub request: CertificateRequest,
    /// The intelligent review's failed rules, when it queued the application for a reviewer.
    pub failed_rules: Vec<Violation>,
    pub opinion: Option<String>,
    pub certificate_id: Option<i64>,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
    /// Internal: who created it.
    #[serde(skip)]
    pub created_by: i64,
}

// ---- the certificate's signed content ----

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IssuedParty {
    pub name: String,
    #[serde(default)]
    pub customs_code: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IssuedGoods {
    pub seq: usize,
    pub hs_code: String,
    pub description_en: String,
    pub description_zh: String,
    pub name: String,
    pub quantity: f64,
    pub unit: String,
    pub net_weight_kg: f64,
    pub origin_country: String,
    pub packages: Option<String>,
}

/// What the certificate rests on: the sealed record (heads and content digest) and its photos.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Evidence {
    pub inspection_no: String,
    pub e_record_no: String,
    pub record_heads: Vec<String>,
    pub record_digest: Option<String>,
    pub photo_hashes: Vec<String>,
}

/// The canonical content of an issued certificate. Field order is the serialisation order, so the same
/// content always gives the same bytes; the stored bytes are what is signed, whatever this struct
/// becomes later.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CertificateContent {
    pub schema: u32,
    pub number: String,
    #[serde(rename = "type")]
    pub type_code: String,
    pub title_en: String,
    pub title_zh: String,
    pub issued_at: String,
    pub issuer: IssuedParty,
    pub applicant: IssuedParty,
    pub consignor: IssuedParty,
    pub consignee: IssuedParty,
    pub export_country: String,
    pub destination_country: String,
    pub transport: Option<IssuedTransport>,
    pub goods: Vec<IssuedGoods>,
    pub additional_declarations: Vec<String>,
    pub treatment: Option<String>,
    pub evidence: Evidence,
    /// The number of the certificate this one replaces, and why.
    pub replaces: Option<Replacement>,
    pub key_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IssuedTransport {
    pub mode: TransportMode,
    pub means: String,
    pub port_of_loading: String,
    pub port_of_unloading: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Replacement {
    pub number: String,
    pub reason: String,
}

impl CertificateContent {
    pub fn canonical(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("the content serialises")
    }
}

pub fn digest_of(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

// ---- access ----

/// May the caller see certificate work of `enterprise_id` in `district_unit`? Its enterprise (own or
/// delegated `certificates`), customs staff of the district's subtree, administrators.
pub fn may_see(
    c: &Conn,
    caller: &Principal,
    enterprise_id: i64,
    district_unit: i64,
    now: i64,
) -> Result<bool, CertificateError> {
    Ok(match caller.role {
        Role::EnterpriseLegal | Role::EnterpriseOperator => {
            delegations::may_act_for(c, caller, enterprise_id, Scope::Certificates, now)?
        }
        Role::Admin => true,
        Role::Reviewer | Role::Supervisor => orgs::store::in_subtree(c, caller.unit()?, district_unit)?,
        Role::Officer => false,
    })
}

/// A certificate application the caller may see, else "not found" (its existence is not revealed).
pub fn visible(c: &Conn, caller: &Principal, id: i64, now: i64) -> Result<CertApplication, CertificateError> {
    let ca = store::get_application(c, id)?
        .ok_or_else(|| CertificateError::NotFound("the certificate application"))?;
    let app =
        app_store::get(c, ca.application_id)?.ok_or_else(|| CertificateError::NotFound("the application"))?;
    if may_see(c, caller, ca.enterprise_id, app.district_unit, now)? {
        Ok(ca)
    } else {
        Err(CertificateError::NotFound("the certificate application"))
    }
}

/// The enterprise's own (or delegated) application, for changes.
fn owned(c: &Conn, caller: &Principal, id: i64, now: i64) -> Result<CertApplication, CertificateError> {
    let ca = visible(c, caller, id, now)?;
    if !caller.role.is_enterprise() {
        return Err(CertificateError::ChangedByEnterprise);
    }
    Ok(ca)
}

// ---- checks at the door ----

/// What a request must satisfy before it is stored at all: a known type, an application the caller may
/// apply for and that is released, goods lines of it within the declared (inspected) quantities, and text
/// the certificate font can print. Answers the application and the type.
pub fn check_request(
    c: &Conn,
    caller: &Principal,
    req: &CertificateRequest,
    now: i64,
) -> Result<(Application, CertificateType), CertificateError> {
    let ty = types::get(c, req.type_code.as_str())?.ok_or_else(|| {
        let known: Vec<String> = match types::all(c) {
            Ok(all) => all.into_iter().map(|t| t.code).collect(),
            Err(e) => return CertificateError::from(e),
        };
        CertificateError::UnknownType { code: req.type_code.as_str().to_owned(), known }
    })?;
    let app = app_store::get(c, req.application_id)?
        .ok_or_else(|| CertificateError::NotFound("the application"))?;
    if !delegations::may_act_for(c, caller, app.enterprise_id, Scope::Certificates, now)? {
        // Someone who cannot see the application at all learns nothing of it, not even that it exists.
        if !delegations::may_see(c, caller, app.enterprise_id, now)? {
            return Err(CertificateError::NotFound("the application"));
        }
        return Err(CertificateError::NotYourEnterprise);
    }
    if app.state != ApplicationState::Released {
        return Err(CertificateError::NotReleased(app.state));
    }
    if req.goods.is_empty() || req.goods.len() > MAX_GOODS_LINES {
        return Err(CertificateError::GoodsCount { max: MAX_GOODS_LINES });
    }
    if req.additional_declarations.len() > MAX_DECLARATIONS {
        return Err(CertificateError::TooManyDeclarations { max: MAX_DECLARATIONS });
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, g) in req.goods.iter().enumerate() {
        let Some(declared) = g.line.checked_sub(1).and_then(|l| app.content.goods.get(l)) else {
            return Err(CertificateError::UnknownGoodsLine { index: i, lines: app.content.goods.len() });
        };
        if !seen.insert(g.line) {
            return Err(CertificateError::DuplicateGoodsLine { index: i });
        }
        if !(g.quantity.is_finite() && g.quantity > 0.0) {
            return Err(CertificateError::NotPositive { index: i });
        }
        if g.quantity > declared.quantity {
            return Err(CertificateError::QuantityExceedsInspected {
                index: i,
                line: g.line,
                inspected: declared.quantity,
                unit: declared.unit.as_str().to_owned(),
                asked: g.quantity,
            });
        }
    }
    printable(req)?;
    Ok((app, ty))
}

/// Every text that will be printed must be in the certificate font: refused now rather than printed as
/// blank boxes later.
fn printable(req: &CertificateRequest) -> Result<(), CertificateError> {
    let mut texts: Vec<(String, &str)> = vec![
        ("consignee.name".into(), req.consignee.name.as_str()),
        ("consignee.address".into(), req.consignee.address.as_str()),
    ];
    if let Some(t) = &req.transport {
        texts.push(("transport.means".into(), t.means.as_str()));
        texts.push(("transport.port_of_loading".into(), t.port_of_loading.as_str()));
        if let Some(p) = &t.port_of_unloading {
            texts.push(("transport.port_of_unloading".into(), p.as_str()));
        }
    }
    for (i, d) in req.additional_declarations.iter().enumerate() {
        texts.push((format!("additional_declarations[{i}]"), d.as_str()));
    }
    if let Some(t) = &req.treatment {
        texts.push(("treatment".into(), t.as_str()));
    }
    for (i, g) in req.goods.iter().enumerate() {
        if let Some(p) = &g.packages {
            texts.push((format!("goods[{i}].packages"), p.as_str()));
        }
    }
    for (field, text) in texts {
        check_printable(&field, text)?;
    }
    Ok(())
}

/// Refuses text the certificate font cannot show; line breaks and tabs of paragraphs are layout, not glyphs.
fn check_printable(field: &str, text: &str) -> Result<(), CertificateError> {
    let glyphs: String = text.chars().filter(|c| !matches!(c, '\n' | '\r' | '\t')).collect();
    print::typeface()
        .covers(&glyphs)
        .map_err(|glyph| CertificateError::Unprintable { field: field.to_owned(), glyph })
}

// ---- intelligent review ----

fn rule(field: &str, rule: &str, message: impl Into<String>) -> Violation {
    Violation { field: field.into(), rule: rule.into(), message: message.into() }
}

/// What the review reads of the released record.
pub struct ReleasedRecord {
    pub e_record: Option<applications::ERecord>,
    pub instruction_id: Option<i64>,
    pub seal: Option<records::SealedEvidence>,
    pub photo_hashes: Vec<String>,
}

pub fn released_record(c: &Conn, app: &Application) -> Result<ReleasedRecord, CertificateError> {
    let e_record = applications::e_record(c, app.id)?;
    let instruction = instructions::by_application(c, app.id)?;
    let (seal, photos) = match &instruction {
        Some(i) => (records::sealed_evidence(c, i.id)?, records::photo_hashes(c, i.id)?),
        None => (None, Vec::new()),
    };
    Ok(ReleasedRecord { e_record, instruction_id: instruction.map(|i| i.id), seal, photo_hashes: photos })
}

/// Every intelligent-review rule, against the released, sealed record and the reference data. An empty
/// answer means the certificate is issued at once; each failure names its field, rule and reason.
pub fn review(
    c: &Conn,
    app: &Application,
    ty: &CertificateType,
    req: &CertificateRequest,
    record: &ReleasedRecord,
    own_id: Option<i64>,
) -> Result<Vec<Violation>, CertificateError> {
    let mut v = Vec::new();
    match &record.e_record {
        Some(e) if e.status == "normal" && app.state == ApplicationState::Released => {
            if e.forced {
                v.push(rule(
                    "application_id",
                    "not_force_released",
                    "the goods were released by force, not on an approved conforming result; a reviewer decides",
                ));
            }
        }
        _ => {
            v.push(rule("application_id", "released", "the goods have no electronic record in status normal"))
        }
    }
    if record.instruction_id.is_some() {
        match &record.seal {
            None => v.push(rule("application_id", "record_sealed", "the inspection record was never sealed")),
            Some(s) if s.verdict.as_deref() != Some("conforming") => v.push(rule(
                "application_id",
                "verdict_conforming",
                format!("the sealed verdict is {}", s.verdict.as_deref().unwrap_or("missing")),
            )),
            Some(_) => {}
        }
    }
    for (i, g) in req.goods.iter().enumerate() {
        let Some(declared) = g.line.checked_sub(1).and_then(|l| app.content.goods.get(l)) else {
            v.push(rule(&format!("goods[{i}].line"), "goods_inspected", "no such goods line was inspected"));
            continue;
        };
        if g.quantity > declared.quantity {
            v.push(rule(
                &format!("goods[{i}].quantity"),
                "quantity_within_inspected",
                format!("more than the {} {} inspected", declared.quantity, declared.unit.as_str()),
            ));
        }
        let hs: String = declared.hs_code.clone().into();
        if !ty.covers_chapter(&hs[..2]) {
            v.push(rule(
                &format!("goods[{i}].line"),
                "type_covers_goods",
                format!("a {} does not certify HS chapter {} goods ({hs})", ty.title_en, &hs[..2]),
            ));
        }
    }
    if !same_name(req.consignee.name.as_str(), app.content.consignee_name.as_str()) {
        v.push(rule(
            "consignee.name",
            "parties_match",
            format!("the released application names the consignee `{}`", app.content.consignee_name.as_str()),
        ));
    }
    if req.destination_country != app.content.destination_country {
        v.push(rule(
            "destination_country",
            "parties_match",
            format!(
                "the released application goes to {}",
                String::from(app.content.destination_country.clone())
            ),
        ));
    }
    let requested: Vec<&str> = app.content.certificates.iter().map(|k| k.as_str()).collect();
    if ty.code != "general" && !requested.contains(&ty.code.as_str()) {
        v.push(rule(
            "type",
            "requested_with_application",
            format!(
                "the application did not request a {} (it requested: {})",
                ty.title_en,
                requested.join(", ")
            ),
        ));
    }
    if ty.requires("transport") && req.transport.is_none() {
        v.push(rule("transport", "required", format!("a {} states the means of transport", ty.title_en)));
    }
    if ty.requires("port_of_unloading")
        && req.transport.as_ref().and_then(|t| t.port_of_unloading.as_ref()).is_none()
    {
        v.push(rule(
            "transport.port_of_unloading",
            "required",
            format!("a {} names the port of unloading", ty.title_en),
        ));
    }
    let country: String = req.destination_country.clone().into();
    for r in ty.destination_rules.iter().filter(|r| r.country == country) {
        let met = match r.requires.as_str() {
            "treatment" => req.treatment.as_ref().is_some_and(|t| !t.trim().is_empty()),
            _ => req.additional_declarations.iter().any(|d| !d.trim().is_empty()),
        };
        if !met {
            let field = if r.requires == "treatment" { "treatment" } else { "additional_declarations" };
            v.push(rule(
                field,
                "destination_requirement",
                format!("{} ({}) [{}]", r.message_en, r.message_zh, r.id),
            ));
        }
    }
    if let Some(number) = store::valid_certificate_for(c, app.id, &ty.code, own_id)? {
        v.push(rule(
            "type",
            "unique_certificate",
            format!("certificate {number} of this type is already valid"),
        ));
    }
    Ok(v)
}

fn same_name(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    norm(a) == norm(b)
}

// ---- state changes ----

/// Writes the receipt and the audit entry of a certificate event, in the caller's transaction.
fn event(
    tx: &Tx<'_>,
    now: i64,
    actor: &Actor,
    ca: &CertApplication,
    event: CertificateEvent,
    opinion: Option<&str>,
    details: Value,
) -> Result<(), CertificateError> {
    let inspection_no = inspection_no(tx, ca.application_id)?;
    let about = About {
        subject_id: ca.id,
        enterprise_id: ca.enterprise_id,
        inspection_no: inspection_no.as_deref(),
        state: ca.state.as_str(),
    };
    receipts::record_event(tx, now, actor, event, about, opinion, details)?;
    Ok(())
}

pub fn create(
    tx: &Tx<'_>,
    now: i64,
    caller: &Principal,
    req: CertificateRequest,
) -> Result<CertApplication, CertificateError> {
    let (app, ty) = check_request(tx, caller, &req, now)?;
    let id = store::insert_application(tx, now, caller.user_id, app.enterprise_id, &ty.code, &req)?;
    let ca = store::get_application(tx, id)?
        .ok_or_else(|| CertificateError::NotFound("the certificate application"))?;
    event(
        tx,
        now,
        &Actor::User(caller.user_id),
        &ca,
        CertificateEvent::Drafted,
        None,
        json!({"type": ty.code}),
    )?;
    Ok(ca)
}

/// Replaces the request of a draft, a queued or a rejected application; it is a draft again (a queued one
/// leaves the reviewer's queue until resubmitted).
pub fn amend(
    tx: &Tx<'_>,
    now: i64,
    caller: &Principal,
    id: i64,
    req: CertificateRequest,
) -> Result<CertApplication, CertificateError> {
    let mut ca = owned(tx, caller, id, now)?;
    if !matches!(ca.state, CertState::Draft | CertState::Queued | CertState::Rejected) {
        return Err(illegal(&ca, "amend"));
    }
    if req.application_id != ca.application_id {
        return Err(CertificateError::ApplicationChanged);
    }
    let (_, ty) = check_request(tx, caller, &req, now)?;
    ca.state = CertState::Draft;
    ca.version += 1;
    ca.type_code = ty.code;
    ca.request = req;
    ca.failed_rules.clear();
    store::update_application(tx, now, &ca)?;
    event(
        tx,
        now,
        &Actor::User(caller.user_id),
        &ca,
        CertificateEvent::Amended,
        None,
        json!({"version": ca.version}),
    )?;
    Ok(ca)
}

pub fn withdraw(
    tx: &Tx<'_>,
    now: i64,
    caller: &Principal,
    id: i64,
) -> Result<CertApplication, CertificateError> {
    let mut ca = owned(tx, caller, id, now)?;
    if !matches!(ca.state, CertState::Draft | CertState::Queued | CertState::Rejected) {
        return Err(illegal(&ca, "withdraw"));
    }
    ca.state = CertState::Withdrawn;
    store::update_application(tx, now, &ca)?;
    event(tx, now, &Actor::User(caller.user_id), &ca, CertificateEvent::Withdrawn, None, json!({}))?;
    Ok(ca)
}

fn illegal(ca: &CertApplication, action: &'static str) -> CertificateError {
    CertificateError::Illegal { state: ca.state, action }
}

fn inspection_no(c: &Conn, application_id: i64) -> Result<Option<String>, CertificateError> {
    Ok(app_store::get(c, application_id)?.and_then(|a| a.inspection_no))
}

/// Submits a draft: the intelligent review runs; all rules pass → issued at once by `system`, else
/// queued for a reviewer with every failed rule.
pub fn submit(
    tx: &Tx<'_>,
    now: i64,
    caller: &Principal,
    key: &CertificateKey,
    id: i64,
) -> Result<CertApplication, CertificateError> {
    let mut ca = owned(tx, caller, id, now)?;
    if ca.state != CertState::Draft {
        return Err(illegal(&ca, "submit"));
    }
    let (app, ty) = check_request(tx, caller, &ca.request, now)?;
    let record = released_record(tx, &app)?;
    let failed = review(tx, &app, &ty, &ca.request, &record, None)?;
    let actor = Actor::User(caller.user_id);
    if failed.is_empty() {
        issue(tx, now, &Actor::System, key, &mut ca, &app, &ty, &record, None)?;
    } else {
        ca.state = CertState::Queued;
        ca.failed_rules = failed;
        store::update_application(tx, now, &ca)?;
        let details = json!({"failed_rules": ca.failed_rules});
        event(tx, now, &actor, &ca, CertificateEvent::Queued, None, details)?;
    }
    Ok(ca)
}

/// A reviewer decides a queued application: issue (overriding the failed rules, which stay on record)
/// or reject with an opinion.
pub fn decide(
    tx: &Tx<'_>,
    now: i64,
    caller: &Principal,
    key: &CertificateKey,
    id: i64,
    issue_it: bool,
    opinion: Option<&str>,
) -> Result<CertApplication, CertificateError> {
    let mut ca = visible(tx, caller, id, now)?;
    if caller.role.is_enterprise() {
        return Err(CertificateError::DecidedByCustoms);
    }
    if ca.state != CertState::Queued {
        return Err(illegal(&ca, if issue_it { "issu" } else { "reject" }));
    }
    let app = app_store::get(tx, ca.application_id)?
        .ok_or_else(|| CertificateError::NotFound("the application"))?;
    let actor = Actor::User(caller.user_id);
    if issue_it {
        let ty = types::get(tx, &ca.type_code)?
            .ok_or_else(|| CertificateError::NotFound("the certificate type"))?;
        if app.state != ApplicationState::Released {
            return Err(CertificateError::ReleasedOnly);
        }
        if let Some(number) = store::valid_certificate_for(tx, app.id, &ty.code, None)? {
            return Err(CertificateError::DuplicateCertificate(number));
        }
        let record = released_record(tx, &app)?;
        ca.opinion = opinion.map(str::to_owned);
        issue(tx, now, &actor, key, &mut ca, &app, &ty, &record, opinion)?;
    } else {
        ca.state = CertState::Rejected;
        ca.opinion = opinion.map(str::to_owned);
        store::update_application(tx, now, &ca)?;
        event(tx, now, &actor, &ca, CertificateEvent::Rejected, opinion, json!({}))?;
    }
    Ok(ca)
}

/// The content a request gives, before number and time are set.
fn content_for(
    c: &Conn,
    app: &Application,
    ty: &CertificateType,
    req: &CertificateRequest,
    record: &ReleasedRecord,
    key: &CertificateKey,
) -> Result<CertificateContent, CertificateError> {
    let issuer =
        orgs::store::unit(c, app.district_unit)?.ok_or_else(|| CertificateError::NotFound("the district"))?;
    // A signed certificate never carries a blank party or description: what the application named must
    // still be on record, or issuing stops with the reason.
    let enterprise = |code: &str| -> Result<IssuedParty, CertificateError> {
        let e = orgs::store::enterprise_by_code(c, code)?
            .ok_or_else(|| CertificateError::UnknownEnterprise(code.to_owned()))?;
        Ok(IssuedParty { name: e.name, customs_code: Some(code.to_owned()), address: None })
    };
    let mut goods = Vec::new();
    for (i, g) in req.goods.iter().enumerate() {
        let d = &app.content.goods[g.line - 1];
        let hs: String = d.hs_code.clone().into();
        let entry = crate::reference::hs(c, &hs)?
            .ok_or_else(|| CertificateError::UnknownHsCode { line: g.line, hs: hs.clone() })?;
        goods.push(IssuedGoods {
            seq: i + 1,
            description_en: entry.description_en,
            description_zh: entry.description_zh,
            hs_code: hs,
            name: d.name.as_str().to_owned(),
            quantity: g.quantity,
            unit: d.unit.as_str().to_owned(),
            // The certified share of the declared line's weight.
            net_weight_kg: (d.net_weight_kg * g.quantity / d.quantity * 1000.0).round() / 1000.0,
            origin_country: d.origin_country.clone().into(),
            packages: g.packages.as_ref().map(|p| p.as_str().to_owned()),
        });
    }
    let e = record.e_record.as_ref().ok_or(CertificateError::NoElectronicRecord)?;
    Ok(CertificateContent {
        schema: 1,
        number: String::new(),
        type_code: ty.code.clone(),
        title_en: ty.title_en.clone(),
        title_zh: ty.title_zh.clone(),
        issued_at: String::new(),
        issuer: IssuedParty { name: issuer.name, customs_code: Some(issuer.code), address: None },
        applicant: enterprise(app.content.applicant_code.as_str())?,
        consignor: enterprise(app.content.consignor_code.as_str())?,
        consignee: IssuedParty {
            name: req.consignee.name.as_str().to_owned(),
            customs_code: None,
            address: Some(req.consignee.address.as_str().to_owned()),
        },
        export_country: "CN".into(),
        destination_country: req.destination_country.clone().into(),
        transport: req.transport.as_ref().map(|t| IssuedTransport {
            mode: t.mode,
            means: t.means.as_str().to_owned(),
            port_of_loading: t.port_of_loading.as_str().to_owned(),
            port_of_unloading: t.port_of_unloading.as_ref().map(|p| p.as_str().to_owned()),
        }),
        goods,
        additional_declarations: req.additional_declarations.iter().map(|d| d.trim().to_owned()).collect(),
        treatment: req.treatment.as_ref().map(|t| t.trim().to_owned()),
        // Goods released without inspection have no sealed record: the evidence is then the inspection
        // number and the electronic record, and the record's heads stay empty. Every release numbers the
        // application first (`applications::release`), so a released one without a number is damage.
        evidence: Evidence {
            inspection_no: app.inspection_no.clone().ok_or_else(|| {
                CertificateError::Internal(anyhow::anyhow!(
                    "application {} was released without an inspection number",
                    app.id
                ))
            })?,
            e_record_no: e.number.clone(),
            record_heads: record.seal.as_ref().map(|s| s.heads.clone()).unwrap_or_default(),
            record_digest: record.seal.as_ref().map(|s| s.digest.clone()),
            photo_hashes: record.photo_hashes.clone(),
        },
        replaces: None,
        key_id: key.kid.clone(),
    })
}

/// Numbers, signs and stores a certificate with its outbox entry; the application becomes `issued`.
#[allow(clippy::too_many_arguments)]
fn issue(
    tx: &Tx<'_>,
    now: i64,
    actor: &Actor,
    key: &CertificateKey,
    ca: &mut CertApplication,
    app: &Application,
    ty: &CertificateType,
    record: &ReleasedRecord,
    opinion: Option<&str>,
) -> Result<(), CertificateError> {
    let content = content_for(tx, app, ty, &ca.request, record, key)?;
    let cert = sign_and_store(tx, now, actor, key, ca, app, content)?;
    ca.state = CertState::Issued;
    ca.certificate_id = Some(cert.id);
    store::update_application(tx, now, ca)?;
    let details = json!({"certificate_id": cert.id, "number": cert.number, "digest": cert.digest,
                         "overridden_rules": ca.failed_rules});
    event(tx, now, actor, ca, CertificateEvent::Issued, opinion, details)
}

fn sign_and_store(
    tx: &Tx<'_>,
    now: i64,
    actor: &Actor,
    key: &CertificateKey,
    ca: &CertApplication,
    app: &Application,
    mut content: CertificateContent,
) -> Result<store::Certificate, CertificateError> {
    let district = orgs::store::unit(tx, app.district_unit)?
        .ok_or_else(|| CertificateError::NotFound("the district"))?;
    let year = jiff::Timestamp::from_millisecond(now)
        .map_err(anyhow::Error::from)?
        .to_zoned(jiff::tz::TimeZone::UTC)
        .year();
    let ty = types::get(tx, &content.type_code)?
        .ok_or_else(|| CertificateError::NotFound("the certificate type"))?;
    let serial = store::next_serial(tx, &district.code, year, &ty.code)?;
    if serial > 999_999 {
        return Err(CertificateError::SerialsExhausted);
    }
    content.number = format!("{}{:02}{}{serial:06}", district.code, year % 100, ty.number_tag());
    content.issued_at = rfc3339::to_string(now);
    let bytes = content.canonical();
    let digest = digest_of(&bytes);
    let signature = key.sign(&bytes);
    let issued_by = match actor {
        Actor::User(id) => format!("user:{id}"),
        Actor::System => "system".into(),
        Actor::Anonymous => "anonymous".into(),
    };
    let new = store::NewCertificate {
        number: &content.number,
        cert_application_id: ca.id,
        application_id: app.id,
        enterprise_id: app.enterprise_id,
        district_unit: app.district_unit,
        type_code: &content.type_code,
        content: std::str::from_utf8(&bytes).map_err(anyhow::Error::from)?,
        digest: &digest,
        signature: &signature,
        key_id: &key.kid,
        replaces: None,
        issued_by: &issued_by,
        issued_at: now,
    };
    let id = store::insert_certificate(tx, &new)?;
    outbox::enqueue(tx, now, id, "issued")?;
    audit::append(
        tx,
        now,
        actor,
        audit::Action::CertificateSigned,
        &audit::Subject::Certificate(id),
        json!({"number": content.number, "digest": digest, "key_id": key.kid,
               "record_digest": content.evidence.record_digest, "record_heads": content.evidence.record_heads}),
    )?;
    store::certificate(tx, id)?
        .ok_or_else(|| CertificateError::Internal(anyhow::anyhow!("certificate vanished")))
}

/// A certificate the caller may see.
pub fn visible_certificate(
    c: &Conn,
    caller: &Principal,
    id: i64,
    now: i64,
) -> Result<store::Certificate, CertificateError> {
    let cert = store::certificate(c, id)?.ok_or_else(|| CertificateError::NotFound("the certificate"))?;
    if may_see(c, caller, cert.enterprise_id, cert.district_unit, now)? {
        Ok(cert)
    } else {
        Err(CertificateError::NotFound("the certificate"))
    }
}

fn customs_visible(
    c: &Conn,
    caller: &Principal,
    id: i64,
    now: i64,
) -> Result<store::Certificate, CertificateError> {
    let cert = visible_certificate(c, caller, id, now)?;
    if caller.role.is_enterprise() {
        return Err(CertificateError::RevokedByCustoms);
    }
    if cert.status != "valid" {
        return Err(CertificateError::NotValid { number: cert.number, status: cert.status });
    }
    Ok(cert)
}

fn status_event(
    tx: &Tx<'_>,
    now: i64,
    caller: &Principal,
    cert: &store::Certificate,
    what: CertificateEvent,
    reason: &str,
    details: Value,
) -> Result<(), CertificateError> {
    let ca = store::get_application(tx, cert.cert_application_id)?
        .ok_or_else(|| CertificateError::NotFound("the certificate application"))?;
    event(tx, now, &Actor::User(caller.user_id), &ca, what, Some(reason), details)
}

/// Revokes a valid certificate with a reason; verification says `revoked` from now on.
pub fn revoke(
    tx: &Tx<'_>,
    now: i64,
    caller: &Principal,
    id: i64,
    reason: &str,
) -> Result<store::Certificate, CertificateError> {
    let cert = customs_visible(tx, caller, id, now)?;
    store::set_status(tx, id, "revoked", None, reason, now)?;
    outbox::enqueue(tx, now, id, "revoked")?;
    status_event(
        tx,
        now,
        caller,
        &cert,
        CertificateEvent::Revoked,
        reason,
        json!({"certificate_id": id, "number": cert.number}),
    )?;
    store::certificate(tx, id)?.ok_or_else(|| CertificateError::NotFound("the certificate"))
}

/// Corrections a replacement may carry; everything else is copied from the replaced certificate.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceRequest {
    pub reason: Paragraph<2000>,
    #[serde(default)]
    pub consignee: Option<Party>,
    #[serde(default)]
    pub additional_declarations: Option<Vec<Paragraph<1000>>>,
}

/// Replaces a valid certificate: a new number and signature over the corrected content, which names the
/// replaced number and the reason; the old one verifies as `replaced` and points to the new one.
pub fn replace(
    tx: &Tx<'_>,
    now: i64,
    caller: &Principal,
    key: &CertificateKey,
    id: i64,
    req: &ReplaceRequest,
) -> Result<store::Certificate, CertificateError> {
    let old = customs_visible(tx, caller, id, now)?;
    let reason = req.reason.trim();
    let mut content: CertificateContent = serde_json::from_str(&old.content)
        .map_err(|e| CertificateError::Internal(anyhow::anyhow!("stored content: {e}")))?;
    if let Some(p) = &req.consignee {
        content.consignee = IssuedParty {
            name: p.name.as_str().to_owned(),
            customs_code: None,
            address: Some(p.address.as_str().to_owned()),
        };
    }
    if let Some(d) = &req.additional_declarations {
        if d.len() > MAX_DECLARATIONS {
            return Err(CertificateError::TooManyReplacementDeclarations { max: MAX_DECLARATIONS });
        }
        content.additional_declarations = d.iter().map(|d| d.trim().to_owned()).collect();
    }
    check_printable("consignee.name", &content.consignee.name)?;
    check_printable("consignee.address", content.consignee.address.as_deref().unwrap_or_default())?;
    for (i, d) in content.additional_declarations.iter().enumerate() {
        check_printable(&format!("additional_declarations[{i}]"), d)?;
    }
    content.replaces = Some(Replacement { number: old.number.clone(), reason: reason.to_owned() });
    content.key_id = key.kid.clone();
    let ca = store::get_application(tx, old.cert_application_id)?
        .ok_or_else(|| CertificateError::NotFound("the certificate application"))?;
    let app = app_store::get(tx, old.application_id)?
        .ok_or_else(|| CertificateError::NotFound("the application"))?;
    let new = sign_and_store(tx, now, &Actor::User(caller.user_id), key, &ca, &app, content)?;
    store::set_replaces(tx, new.id, old.id)?;
    store::set_status(tx, old.id, "replaced", Some(new.id), reason, now)?;
    outbox::enqueue(tx, now, old.id, "replaced")?;
    let details = json!({"certificate_id": new.id, "number": new.number, "replaces": old.number});
    status_event(tx, now, caller, &old, CertificateEvent::Replaced, reason, details)?;
    store::certificate(tx, new.id)?.ok_or_else(|| CertificateError::NotFound("the certificate"))
}

/// Counts a print, if the limit allows: answers the copy number. `expected_prints` is the count the PDF
/// was rendered for; a concurrent print in between makes this one fail rather than print a copy twice.
pub fn count_print(
    tx: &Tx<'_>,
    now: i64,
    caller: &Principal,
    cert: &store::Certificate,
    max_prints: i64,
) -> Result<i64, CertificateError> {
    let copy = cert.prints + 1;
    if copy > max_prints {
        return Err(CertificateError::PrintLimitReached {
            number: cert.number.clone(),
            prints: cert.prints,
            max_prints,
        });
    }
    if !store::bump_prints(tx, cert.id, cert.prints)? {
        return Err(CertificateError::PrintInProgress);
    }
    store::insert_print(tx, cert.id, copy, caller.user_id, now)?;
    audit::append(
        tx,
        now,
        &Actor::User(caller.user_id),
        audit::Action::CertificatePrinted,
        &audit::Subject::Certificate(cert.id),
        json!({"number": cert.number, "copy": copy}),
    )?;
    Ok(copy)
}
