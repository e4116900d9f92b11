//! Printed notices: the inspection notice (查检通知书), the booking confirmation (预约查检确认书), the
//! disposal notice (处置通知书) and the e-record release slip (电子底账放行单), as bilingual A4 PDFs with a
//! number and a QR code to the same public verification as certificates (`GET /verify/{number}`).
//!
//! # Layout
//! - this file: what each notice says ([`compose`], from the subject the caller may see, in the state the
//!   notice needs), numbering on first print ([`issue`]: a reprint of unchanged facts is the same notice;
//!   changed facts make a new notice that replaces the old one), and what the verification answers
//!   ([`verification`]: valid, replaced, or void once its subject moved on).
//! - [`http`]: `POST /api/v1/notices/{kind}/{id}/print`.
//! - `store`: the `notices` table's SQL.
//! - [`error`]: `NoticeError`, why a notice cannot be printed (mapped to HTTP in `crate::error`).
//!
//! Layout and font are the certificates' (`print::layout`). A notice is not signed: its number and the
//! digest of its printed facts, looked up at the issuing service, are what a holder checks.

pub mod error;
pub mod http;
mod store;

use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{
    applications::{self, Application, filing::load_visible},
    audit::{self, Actor},
    bookings,
    db::{Conn, Tx},
    domain::{BookingState, InstructionState, Principal},
    instructions::{self, Instruction},
    orgs::store as orgs_store,
    print::{
        DocInfo, PrintError,
        layout::{Flow, Letterhead},
    },
    records,
};
use error::NoticeError;

/// The notices that can be printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// Of an instruction (`id` = instruction): goods selected for on-site inspection, book a slot.
    InspectionNotice,
    /// Of a confirmed booking (`id` = booking).
    BookingConfirmation,
    /// Of a non-conforming approved result (`id` = application).
    DisposalNotice,
    /// Of released goods (`id` = application): the electronic record is `normal`.
    ReleaseSlip,
}

impl NoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::InspectionNotice => "inspection_notice",
            NoticeKind::BookingConfirmation => "booking_confirmation",
            NoticeKind::DisposalNotice => "disposal_notice",
            NoticeKind::ReleaseSlip => "release_slip",
        }
    }

    pub fn parse(s: &str) -> Option<NoticeKind> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }

    /// The two letters that start its numbers.
    fn prefix(self) -> &'static str {
        match self {
            NoticeKind::InspectionNotice => "IN",
            NoticeKind::BookingConfirmation => "BC",
            NoticeKind::DisposalNotice => "DN",
            NoticeKind::ReleaseSlip => "RS",
        }
    }

    pub fn titles(self) -> (&'static str, &'static str) {
        match self {
            NoticeKind::InspectionNotice => ("查检通知书", "Inspection Notice"),
            NoticeKind::BookingConfirmation => ("预约查检确认书", "Inspection Booking Confirmation"),
            NoticeKind::DisposalNotice => ("处置通知书", "Disposal Notice"),
            NoticeKind::ReleaseSlip => ("电子底账放行单", "E-record Release Slip"),
        }
    }
}

/// One printed line: a bilingual label and its value; an empty value makes the label a section heading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field {
    pub zh: String,
    pub en: String,
    pub value: String,
}

fn field(zh: &str, en: &str, value: impl Into<String>) -> Field {
    Field { zh: zh.into(), en: en.into(), value: value.into() }
}

fn heading(zh: &str, en: &str) -> Field {
    Field { zh: zh.into(), en: en.into(), value: String::new() }
}

/// What a notice says, before it has a number.
pub struct Composed {
    pub kind: NoticeKind,
    pub subject_id: i64,
    pub enterprise_id: i64,
    pub inspection_no: String,
    pub issuer: String,
    pub facts: Vec<Field>,
}

/// A numbered notice.
#[derive(Debug, Clone)]
pub struct Notice {
    pub id: i64,
    pub number: String,
    pub kind: NoticeKind,
    pub subject_id: i64,
    pub issuer: String,
    pub facts: Vec<Field>,
    pub digest: String,
    pub replaced_by: Option<i64>,
    pub issued_at: i64,
}

/// A time as the site's wall clock with its offset: "2026-12-01 09:00 (UTC+08:00)".
fn local(ms: i64, timezone: &str) -> String {
    let tz = jiff::tz::TimeZone::get(timezone).unwrap_or(jiff::tz::TimeZone::UTC);
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.to_zoned(tz).strftime("%Y-%m-%d %H:%M (UTC%:z)").to_string(),
        Err(_) => ms.to_string(),
    }
}

fn party(c: &Conn, enterprise_id: i64) -> Result<String, NoticeError> {
    let e = orgs_store::enterprise(c, enterprise_id)?.ok_or(NoticeError::NotFound("the enterprise"))?;
    Ok(format!("{} ({})", e.name, e.customs_code))
}

fn unit(c: &Conn, id: i64) -> Result<crate::orgs::Unit, NoticeError> {
    orgs_store::unit(c, id)?.ok_or(NoticeError::NotFound("the customs unit"))
}

fn goods(app: &Application) -> Vec<Field> {
    app.content
        .goods
        .iter()
        .enumerate()
        .map(|(i, g)| {
            field(
                &format!("{}.", i + 1),
                &String::from(g.hs_code.clone()),
                format!(
                    "{}  数量 Quantity: {} {}  净重 Net weight: {} kg  原产国 Origin: {}",
                    g.name.as_str(),
                    g.quantity,
                    g.unit.as_str(),
                    g.net_weight_kg,
                    String::from(g.origin_country.clone())
                ),
            )
        })
        .collect()
}

/// The application's parties and goods, as every notice repeats them.
fn consignment(c: &Conn, app: &Application, inspection_no: &str) -> Result<Vec<Field>, NoticeError> {
    let mut f = vec![
        field("检验检疫编号", "Inspection No.", inspection_no),
        field("申请人", "Applicant", party(c, app.enterprise_id)?),
        field("收货人", "Consignee", app.content.consignee_name.as_str()),
        field("输入国家", "Country of destination", String::from(app.content.destination_country.clone())),
        heading("货物", "Goods"),
    ];
    f.extend(goods(app));
    Ok(f)
}

fn application(c: &Conn, id: i64) -> Result<Application, NoticeError> {
    applications::store::get(c, id)?.ok_or(NoticeError::NotFound("the application"))
}

/// What the notice `kind` of subject `id` says, if the caller may see the subject and it is in a state
/// the notice speaks of (otherwise 404 or a 409 that says why not).
pub fn compose(
    c: &Conn,
    caller: &Principal,
    kind: NoticeKind,
    id: i64,
    now: i64,
) -> Result<Composed, NoticeError> {
    match kind {
        NoticeKind::InspectionNotice => {
            let i = instructions::visible(c, caller, id, now)?;
            if i.state == InstructionState::Cancelled {
                return Err(NoticeError::Void(id));
            }
            let app = application(c, i.application_id)?;
            let site = unit(c, i.site_id)?;
            let mut facts = consignment(c, &app, &i.inspection_no)?;
            facts.push(heading("查检", "Inspection"));
            facts.push(field("查检地点", "Inspection site", format!("{} ({})", site.name, site.code)));
            facts.push(field("完成期限", "Deadline", local(i.deadline, &site.timezone)));
            facts.push(field("查检项目", "Check items", i.checklist.len().to_string()));
            facts.push(field(
                "说明",
                "Notice",
                "上述货物经布控须实施现场查检，请在期限前预约查检时段。 The goods above were selected for on-site \
                 inspection; book an inspection slot before the deadline.",
            ));
            composed(c, kind, id, &i, &app, facts)
        }
        NoticeKind::BookingConfirmation => {
            let b = bookings::get(c, caller, id, now).map_err(bookings::as_not_found)?;
            if b.state != BookingState::Confirmed {
                return Err(NoticeError::NotConfirmed { id, state: b.state });
            }
            let i =
                instructions::get(c, b.instruction_id)?.ok_or(NoticeError::NotFound("the instruction"))?;
            let app = application(c, i.application_id)?;
            let site = unit(c, b.site_id)?;
            let mut facts = consignment(c, &app, &i.inspection_no)?;
            facts.push(heading("预约", "Booking"));
            facts.push(field("预约编号", "Booking No.", b.id.to_string()));
            facts.push(field("查检地点", "Inspection site", format!("{} ({})", site.name, site.code)));
            facts.push(field(
                "查检时段",
                "Inspection slot",
                format!("{} – {}", b.slot.local_starts_at, b.slot.local_ends_at),
            ));
            facts.push(field(
                "说明",
                "Notice",
                "请按时到场并备齐货物与随附单证。 Present the goods and their supporting documents at the slot.",
            ));
            composed(c, kind, id, &i, &app, facts)
        }
        NoticeKind::DisposalNotice => {
            let app = load_visible(c, caller, id, now)?;
            let i = instructions::by_application(c, id)?;
            let disposal = match &i {
                Some(i) => records::sealed(c, i.id)?.and_then(|s| s.disposal),
                None => None,
            };
            let (Some(i), Some(disposal)) = (i, disposal) else {
                return Err(NoticeError::NoDisposal(id));
            };
            let evidence = records::sealed_evidence(c, i.id)?;
            let mut facts = consignment(c, &app, &i.inspection_no)?;
            facts.push(heading("查检结果与处置", "Result and disposal"));
            facts.push(field("查检结论", "Verdict", "不合格 Non-conforming"));
            facts.push(field("处置方式", "Disposal", disposal_label(&disposal)));
            if let Some(e) = evidence {
                facts.push(field("查验记录摘要", "Record digest", e.digest));
            }
            facts.push(field(
                "说明",
                "Notice",
                "货物不予放行，请按上述处置方式办理并接受海关监督。 The goods are not released; carry out the \
                 disposal above under customs supervision.",
            ));
            composed(c, kind, id, &i, &app, facts)
        }
        NoticeKind::ReleaseSlip => {
            let app = load_visible(c, caller, id, now)?;
            let Some(e) = applications::e_record(c, id)? else {
                return Err(NoticeError::NotReleased { id, state: app.state });
            };
            // Every release numbers the application first (`applications::release`): no number is damage.
            let inspection_no = app.inspection_no.clone().ok_or_else(|| {
                NoticeError::Internal(anyhow::anyhow!(
                    "application {id} was released without an inspection number"
                ))
            })?;
            let district = unit(c, app.district_unit)?;
            let mut facts = vec![
                field("电子底账编号", "E-record No.", e.number.clone()),
                field("状态", "Status", format!("正常 {}", e.status)),
                field("放行时间", "Released at", local(e.released_at, &district.timezone)),
                field(
                    "放行方式",
                    "Release",
                    if e.forced { "强制放行 Forced release" } else { "查检合格 Conforming result" },
                ),
            ];
            facts.extend(consignment(c, &app, &inspection_no)?);
            Ok(Composed {
                kind,
                subject_id: id,
                enterprise_id: app.enterprise_id,
                inspection_no,
                issuer: district.name,
                facts,
            })
        }
    }
}

fn composed(
    c: &Conn,
    kind: NoticeKind,
    id: i64,
    i: &Instruction,
    app: &Application,
    facts: Vec<Field>,
) -> Result<Composed, NoticeError> {
    Ok(Composed {
        kind,
        subject_id: id,
        enterprise_id: i.enterprise_id,
        inspection_no: i.inspection_no.clone(),
        issuer: unit(c, app.district_unit)?.name,
        facts,
    })
}

fn disposal_label(d: &str) -> String {
    let zh = match d {
        "technical_treatment" => "技术处理",
        "return" => "退运",
        "destruction" => "销毁",
        _ => "",
    };
    format!("{zh} {}", d.replace('_', " "))
}

fn digest(number: &str, facts_json: &str) -> String {
    let mut h = Sha256::new();
    h.update(number.as_bytes());
    h.update(b"\n");
    h.update(facts_json.as_bytes());
    hex::encode(h.finalize())
}

use store::by_id;
pub use store::by_number;

/// The notice for these facts: the latest one of the subject if its facts are the same, else a new one
/// (numbered `<prefix><inspection no><nn>`) that replaces it, audited.
pub fn issue(tx: &Tx<'_>, now: i64, caller: &Principal, composed: Composed) -> Result<Notice, NoticeError> {
    let latest = store::latest_of(tx, composed.kind, composed.subject_id)?;
    if let Some(n) = latest.as_ref().filter(|n| n.facts == composed.facts) {
        return Ok(n.clone());
    }
    let prefix = format!("{}{}", composed.kind.prefix(), composed.inspection_no);
    let seq = store::count_numbered(tx, &prefix)?;
    let number = format!("{prefix}{:02}", seq + 1);
    let facts_json = serde_json::to_string(&composed.facts).map_err(|e| NoticeError::Internal(e.into()))?;
    let digest = digest(&number, &facts_json);
    let id = store::insert(
        tx,
        &store::NewNotice {
            number: &number,
            kind: composed.kind,
            subject_id: composed.subject_id,
            enterprise_id: composed.enterprise_id,
            issuer: &composed.issuer,
            facts_json: &facts_json,
            digest: &digest,
            issued_by: caller.user_id,
            issued_at: now,
        },
    )?;
    if let Some(old) = &latest {
        store::set_replaced_by(tx, old.id, id)?;
    }
    audit::append(
        tx,
        now,
        &Actor::User(caller.user_id),
        audit::Action::NoticeIssue,
        &audit::Subject::Notice(&number),
        json!({"kind": composed.kind, "subject_id": composed.subject_id, "digest": digest,
               "replaces": latest.map(|n| n.number)}),
    )?;
    by_id(tx, id)?.ok_or_else(|| NoticeError::Internal(anyhow::anyhow!("notice {number} vanished")))
}

/// Renders a numbered notice; the QR code encodes `verify_url`.
pub fn pdf(n: &Notice, verify_url: &str) -> Result<Vec<u8>, PrintError> {
    let (title_zh, title_en) = n.kind.titles();
    let issued = format!("签发机构 Issued by: {}   {}", n.issuer, local(n.issued_at, "Asia/Shanghai"));
    let mut f =
        Flow::new(&Letterhead { title_zh, title_en, number: &n.number, note: Some(&issued), verify_url })?;
    for line in &n.facts {
        if line.value.is_empty() {
            f.heading(&format!("{} {}", line.zh, line.en))?;
        } else {
            f.field(&line.zh, &line.en, &line.value)?;
        }
    }
    f.heading("核验 Verification")?;
    f.field("通知摘要", "Notice digest", &n.digest)?;
    f.field("在线核验", "Verify online", verify_url)?;
    let title = format!("{title_en} {title_zh} {}", n.number);
    f.render(&DocInfo { title: &title, subject: "fieldcheck notice" })
}

/// What the public verification says of a notice.
pub struct Standing {
    pub notice: Notice,
    /// `valid`; `replaced` (a newer notice of changed facts); `void` (its subject moved on: the booking
    /// is no longer confirmed, the instruction was cancelled).
    pub status: &'static str,
    pub replaced_by: Option<String>,
}

pub fn verification(c: &Conn, number: &str) -> Result<Option<Standing>, NoticeError> {
    let Some(notice) = by_number(c, number)? else { return Ok(None) };
    if let Some(id) = notice.replaced_by {
        let replaced_by = by_id(c, id)?.map(|n| n.number);
        return Ok(Some(Standing { notice, status: "replaced", replaced_by }));
    }
    let live = match notice.kind {
        NoticeKind::InspectionNotice => {
            instructions::get(c, notice.subject_id)?.is_some_and(|i| i.state != InstructionState::Cancelled)
        }
        NoticeKind::BookingConfirmation => {
            bookings::state_of(c, notice.subject_id)? == Some(BookingState::Confirmed)
        }
        NoticeKind::DisposalNotice | NoticeKind::ReleaseSlip => true,
    };
    Ok(Some(Standing { notice, status: if live { "valid" } else { "void" }, replaced_by: None }))
}
