//! Supporting documents (随附单证): contracts, invoices, packing lists, producer qualifications and
//! treatment records an enterprise attaches to an application or a certificate application.
//!
//! # Layout
//! - this file: the kinds and subjects, the check of a received file ([`inspect`]: PDF well-formedness
//!   with lopdf, images through the photo checks), who may attach and read ([`subject`]), and the domain
//!   steps — attach (also "send again"), ask for a file again — each writing its receipt and audit entry.
//! - [`store`]: the three tables (files, attachments, requests) and their SQL.
//! - [`error`]: `DocumentError` and `DocRefusal` (a received file that is no document), mapped to HTTP in
//!   `crate::error`.
//! - [`http`]: upload, list, download and "ask again" endpoints.
//!
//! The bytes live in the photo store's content-addressed folders (`PhotoFiles::document`): one place for
//! every file an inspection rests on, named by SHA-256, a row written only after its file is durable.
//! Nothing is ever replaced in place: a file sent again is a new attachment that names the one it
//! replaces, so the history shows both.

pub mod error;
pub mod http;
pub mod store;

use crate::db::{Conn, Tx};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{
    applications::{self, filing::load_visible},
    audit::Actor,
    certificates,
    config::PhotoSettings,
    domain::events::{self, DocumentEvent, Event},
    domain::{Principal, time::rfc3339},
    photos::{Sha256Hex, inspect as image_check},
    receipts::{self, About},
};
pub use error::DocRefusal;
use error::DocumentError;

/// What a supporting document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    Contract,
    Invoice,
    PackingList,
    ProducerQualification,
    TreatmentRecord,
    Other,
}

impl DocumentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentKind::Contract => "contract",
            DocumentKind::Invoice => "invoice",
            DocumentKind::PackingList => "packing_list",
            DocumentKind::ProducerQualification => "producer_qualification",
            DocumentKind::TreatmentRecord => "treatment_record",
            DocumentKind::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<DocumentKind> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    }
}

/// What a document is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    /// An inspection application (`/applications/{id}`).
    Application,
    /// A certificate application (`/certificate-applications/{id}`).
    Certificate,
}

impl Subject {
    pub fn as_str(self) -> &'static str {
        match self {
            Subject::Application => "application",
            Subject::Certificate => "certificate",
        }
    }

    pub fn parse(s: &str) -> Option<Subject> {
        match s {
            "application" => Some(Subject::Application),
            "certificate" => Some(Subject::Certificate),
            _ => None,
        }
    }

    /// The receipts' name for it.
    pub fn receipt_subject(self) -> events::Subject {
        match self {
            Subject::Application => events::Subject::Application,
            Subject::Certificate => events::Subject::Certificate,
        }
    }
}

/// The accepted file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DocFormat {
    Pdf,
    Jpeg,
    Png,
}

impl DocFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            DocFormat::Pdf => "pdf",
            DocFormat::Jpeg => "jpeg",
            DocFormat::Png => "png",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            DocFormat::Pdf => "application/pdf",
            DocFormat::Jpeg => "image/jpeg",
            DocFormat::Png => "image/png",
        }
    }

    pub fn parse(s: &str) -> Option<DocFormat> {
        [DocFormat::Pdf, DocFormat::Jpeg, DocFormat::Png].into_iter().find(|f| f.as_str() == s)
    }

    pub fn from_content_type(s: &str) -> Option<DocFormat> {
        [DocFormat::Pdf, DocFormat::Jpeg, DocFormat::Png].into_iter().find(|f| f.content_type() == s)
    }

    /// The format a file name's extension claims.
    pub fn from_file_name(name: &str) -> Option<DocFormat> {
        let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
        match ext.as_str() {
            "pdf" => Some(DocFormat::Pdf),
            "jpg" | "jpeg" => Some(DocFormat::Jpeg),
            "png" => Some(DocFormat::Png),
            _ => None,
        }
    }
}

/// What the check found out about an accepted file.
#[derive(Debug, Clone, Copy)]
pub struct Inspected {
    pub format: DocFormat,
    /// A PDF's page count.
    pub pages: Option<u32>,
}

/// The format the first bytes show, `None` for none of ours.
fn sniff(bytes: &[u8]) -> Option<DocFormat> {
    // Readers tolerate junk before the PDF header (up to 1024 bytes); we are stricter: a document must
    // start as one.
    if bytes.starts_with(b"%PDF-") {
        return Some(DocFormat::Pdf);
    }
    match image_check::sniff(bytes) {
        Ok(image_check::PhotoFormat::Jpeg) => Some(DocFormat::Jpeg),
        Ok(image_check::PhotoFormat::Png) => Some(DocFormat::Png),
        _ => None,
    }
}

/// Checks a received file: its bytes are what the client declared (by type and by name), a PDF loads
/// strictly (no repaired cross-references), is not encrypted and has at least one page, an image decodes
/// within the photo limits. Runs third-party parsers on hostile bytes: call it off the executor.
pub fn inspect(
    bytes: &[u8],
    declared: &[DocFormat],
    limits: &PhotoSettings,
) -> Result<Inspected, DocRefusal> {
    if bytes.is_empty() {
        return Err(DocRefusal::Empty);
    }
    let Some(actual) = sniff(bytes) else {
        return Err(match declared.first() {
            Some(d) => DocRefusal::Mismatch { declared: d.as_str(), actual: "none of PDF, JPEG or PNG" },
            None => DocRefusal::UnsupportedFormat,
        });
    };
    if let Some(d) = declared.iter().find(|d| **d != actual) {
        return Err(DocRefusal::Mismatch { declared: d.as_str(), actual: actual.as_str() });
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match actual {
        DocFormat::Pdf => check_pdf(bytes).map(|pages| Inspected { format: actual, pages: Some(pages) }),
        DocFormat::Jpeg | DocFormat::Png => {
            image_check::inspect(bytes, None, limits)?;
            Ok(Inspected { format: actual, pages: None })
        }
    }));
    outcome.unwrap_or_else(|_| Err(DocRefusal::MalformedPdf("the parser failed on this file".into())))
}

/// Answers a PDF's page count, or why it is not accepted.
fn check_pdf(bytes: &[u8]) -> Result<u32, DocRefusal> {
    // Encryption is told apart before the load: an encrypted file with a user password does not load
    // at all, and "malformed" would be the wrong thing to tell its sender.
    if has_encrypt_entry(bytes) {
        return Err(DocRefusal::Encrypted);
    }
    let options = lopdf::LoadOptions { strict: true, ..lopdf::LoadOptions::default() };
    let doc = lopdf::Document::load_mem_with_options(bytes, options).map_err(|e| match e {
        lopdf::Error::InvalidPassword | lopdf::Error::Decryption(_) => DocRefusal::Encrypted,
        other => DocRefusal::MalformedPdf(other.to_string()),
    })?;
    if doc.is_encrypted() || doc.was_encrypted() {
        return Err(DocRefusal::Encrypted);
    }
    if doc.xref_recovery.is_some() {
        return Err(DocRefusal::MalformedPdf("its cross-reference table had to be rebuilt".into()));
    }
    match doc.get_pages().len() {
        0 => Err(DocRefusal::NoPages),
        n => Ok(n as u32),
    }
}

/// Does a trailer (classic or cross-reference stream) name an `/Encrypt` dictionary? A plain byte search:
/// the name cannot appear elsewhere outside compressed streams, and a false positive only refuses a file.
fn has_encrypt_entry(bytes: &[u8]) -> bool {
    bytes.windows(8).any(|w| w == b"/Encrypt")
}

/// One attached file as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Attachment {
    pub id: i64,
    pub subject: Subject,
    pub subject_id: i64,
    pub kind: DocumentKind,
    pub sha256: String,
    pub format: DocFormat,
    pub content_type: &'static str,
    pub size: i64,
    pub pages: Option<u32>,
    pub file_name: Option<String>,
    /// The attachment this one was sent to replace (after a reviewer asked for it again).
    pub replaces: Option<i64>,
    /// The attachment that replaced this one; this one stays in the history.
    pub replaced_by: Option<i64>,
    pub attached_by: i64,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub attached_at: i64,
    /// Reviewers' requests to send this file again, answered or not.
    pub requests: Vec<DocRequest>,
}

/// A reviewer's request to send a file again.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DocRequest {
    pub id: i64,
    pub attachment_id: i64,
    pub opinion: String,
    pub requested_by: i64,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub requested_at: i64,
    /// The attachment sent in answer.
    pub answered_by: Option<i64>,
    #[serde(with = "rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub answered_at: Option<i64>,
}

/// The owner of a subject, as receipts name it.
pub struct Owner {
    pub enterprise_id: i64,
    pub inspection_no: Option<String>,
    /// The subject's state now (receipts carry it).
    pub state: &'static str,
}

/// The subject, if the caller may see it (its enterprise and delegates with the subject's scope, customs
/// staff of the district's subtree, administrators); otherwise "not found", as for the subject itself.
pub fn subject(
    c: &Conn,
    caller: &Principal,
    subject: Subject,
    id: i64,
    now: i64,
) -> Result<Owner, DocumentError> {
    match subject {
        Subject::Application => {
            let app = load_visible(c, caller, id, now)?;
            Ok(Owner {
                enterprise_id: app.enterprise_id,
                inspection_no: app.inspection_no,
                state: app.state.as_str(),
            })
        }
        Subject::Certificate => {
            let ca = certificates::visible(c, caller, id, now)?;
            let app = applications::store::get(c, ca.application_id)?
                .ok_or(DocumentError::NotFound("the application"))?;
            Ok(Owner {
                enterprise_id: ca.enterprise_id,
                inspection_no: app.inspection_no,
                state: ca.state.as_str(),
            })
        }
    }
}

/// An attachment the caller may read (through its subject).
pub fn readable(
    c: &Conn,
    caller: &Principal,
    attachment_id: i64,
    now: i64,
) -> Result<Attachment, DocumentError> {
    let a = store::attachment(c, attachment_id)?.ok_or(DocumentError::NotFound("the document"))?;
    match subject(c, caller, a.subject, a.subject_id, now) {
        Ok(_) => Ok(a),
        Err(e) if e.is_failure() => Err(e),
        Err(_) => Err(DocumentError::NotFound("the document")),
    }
}

/// What the enterprise sends with a file.
pub struct Upload<'a> {
    pub subject: Subject,
    pub subject_id: i64,
    pub kind: DocumentKind,
    pub sha: &'a Sha256Hex,
    pub file_name: Option<&'a str>,
    /// The attachment this file replaces (a reviewer asked for it again).
    pub replaces: Option<i64>,
}

/// Checks what can be checked before a byte is read: the caller is the subject's enterprise (or a
/// delegate with its scope), and a replaced attachment belongs to the subject and was not replaced yet.
pub fn check_upload(c: &Conn, caller: &Principal, u: &Upload<'_>, now: i64) -> Result<Owner, DocumentError> {
    if !caller.role.is_enterprise() {
        return Err(DocumentError::AttachedByEnterprise);
    }
    let owner = subject(c, caller, u.subject, u.subject_id, now)?;
    if let Some(old) = u.replaces {
        let a = store::attachment(c, old)?
            .filter(|a| a.subject == u.subject && a.subject_id == u.subject_id)
            .ok_or(DocumentError::UnknownAttachment(old))?;
        if let Some(by) = a.replaced_by {
            return Err(DocumentError::AlreadyReplaced { old, by });
        }
        if a.kind != u.kind {
            return Err(DocumentError::KindMismatch { old, kind: a.kind.as_str() });
        }
    }
    Ok(owner)
}

/// Records an attachment of checked bytes (`new`: the file row to write, when the bytes are new), in one
/// transaction with its receipt and audit entry; a replacement answers the open requests for the old one.
/// The same file attached again as the same kind (and not as a replacement) answers the attachment there
/// is: `(attachment, created)`.
pub fn attach(
    tx: &Tx<'_>,
    now: i64,
    caller: &Principal,
    u: &Upload<'_>,
    new: Option<(Inspected, u64)>,
) -> Result<(Attachment, bool), DocumentError> {
    let owner = check_upload(tx, caller, u, now)?;
    if let Some((inspected, size)) = new {
        store::insert_document(tx, u.sha.as_str(), size, inspected, caller.user_id, now)?;
    }
    if u.replaces.is_none()
        && let Some(existing) = store::same_file(tx, u.subject, u.subject_id, u.kind, u.sha.as_str())?
    {
        return Ok((store::attachment(tx, existing)?.expect("just found"), false));
    }
    let id = store::insert_attachment(tx, u, owner.enterprise_id, caller.user_id, now)?;
    let answered = match u.replaces {
        Some(old) => store::answer_requests(tx, old, id, now)?,
        None => 0,
    };
    let kind = if u.replaces.is_some() { DocumentEvent::Resent } else { DocumentEvent::Attached };
    let details = json!({"attachment_id": id, "kind": u.kind, "sha256": u.sha.as_str(), "replaces": u.replaces,
                         "requests_answered": answered});
    event(tx, now, &Actor::User(caller.user_id), u.subject, u.subject_id, &owner, kind, None, details)?;
    Ok((store::attachment(tx, id)?.expect("just written"), true))
}

/// A reviewer asks for a file again, with an opinion that says what is wrong with it: a receipt tells the
/// enterprise, which sends a replacement naming this attachment.
pub fn request_again(
    tx: &Tx<'_>,
    now: i64,
    caller: &Principal,
    attachment_id: i64,
    opinion: &str,
) -> Result<DocRequest, DocumentError> {
    let a = readable(tx, caller, attachment_id, now)?;
    if caller.role.is_enterprise() {
        return Err(DocumentError::AskedByCustoms);
    }
    let owner = subject(tx, caller, a.subject, a.subject_id, now)?;
    let may_review = match a.subject {
        Subject::Application => {
            let app = applications::store::get(tx, a.subject_id)?
                .ok_or(DocumentError::NotFound("the application"))?;
            crate::review::may_review(tx, caller, app.district_unit)?
        }
        Subject::Certificate => true,
    };
    if !may_review {
        return Err(DocumentError::NotFound("the document"));
    }
    if let Some(by) = a.replaced_by {
        return Err(DocumentError::AskForReplacement { attachment: attachment_id, by });
    }
    if let Some(open) = a.requests.iter().find(|r| r.answered_by.is_none()) {
        return Err(DocumentError::AlreadyRequested { attachment: attachment_id, request: open.id });
    }
    let id = store::insert_request(tx, attachment_id, opinion, caller.user_id, now)?;
    let details =
        json!({"attachment_id": attachment_id, "kind": a.kind, "sha256": a.sha256, "request_id": id});
    let actor = Actor::User(caller.user_id);
    event(
        tx,
        now,
        &actor,
        a.subject,
        a.subject_id,
        &owner,
        DocumentEvent::Requested,
        Some(opinion),
        details,
    )?;
    store::request(tx, id)?.ok_or_else(|| DocumentError::Internal(anyhow::anyhow!("request {id} vanished")))
}

/// The receipt (to the subject's enterprise) and the audit entry of a document event.
#[allow(clippy::too_many_arguments)]
fn event(
    tx: &Tx<'_>,
    now: i64,
    actor: &Actor,
    subject: Subject,
    subject_id: i64,
    owner: &Owner,
    event: DocumentEvent,
    opinion: Option<&str>,
    details: serde_json::Value,
) -> Result<(), DocumentError> {
    let about = About {
        subject_id,
        enterprise_id: owner.enterprise_id,
        inspection_no: owner.inspection_no.as_deref(),
        state: owner.state,
    };
    let event = Event::Document(subject.receipt_subject(), event);
    receipts::record_event(tx, now, actor, event, about, opinion, details)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_page_pdf() -> Vec<u8> {
        let mut page = crate::print::Page::new();
        page.text(50.0, 80.0, 12.0, "合同 Contract").unwrap();
        crate::print::render(&[page], &crate::print::DocInfo { title: "t", subject: "s" }).unwrap()
    }

    #[test]
    fn a_well_formed_pdf_is_accepted_with_its_page_count() {
        let got = inspect(&one_page_pdf(), &[DocFormat::Pdf], &PhotoSettings::default()).unwrap();
        assert_eq!((got.format, got.pages), (DocFormat::Pdf, Some(1)));
    }

    #[test]
    fn a_truncated_pdf_is_refused_as_malformed() {
        let pdf = one_page_pdf();
        let err = inspect(&pdf[..pdf.len() / 2], &[], &PhotoSettings::default()).unwrap_err();
        assert_eq!(err.code(), "malformed_pdf", "{err}");
    }

    #[test]
    fn a_pdf_naming_an_encrypt_dictionary_is_refused_as_encrypted() {
        let pdf =
            String::from_utf8_lossy(&one_page_pdf()).replace("trailer\n<<", "trailer\n<< /Encrypt 99 0 R");
        let err = inspect(pdf.as_bytes(), &[], &PhotoSettings::default()).unwrap_err();
        assert_eq!(err.code(), "encrypted_pdf", "{err}");
    }

    #[test]
    fn text_declared_as_a_pdf_is_refused_as_not_a_pdf() {
        let err =
            inspect(b"hello, I am a text file", &[DocFormat::Pdf], &PhotoSettings::default()).unwrap_err();
        assert_eq!(err.code(), "not_a_pdf", "{err}");
        let err = inspect(b"hello, I am a text file", &[], &PhotoSettings::default()).unwrap_err();
        assert_eq!(err.code(), "unsupported_document_format", "{err}");
        let jpeg =
            std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/photos/Canon_40D.jpg")).unwrap();
        let err = inspect(&jpeg, &[DocFormat::Pdf], &PhotoSettings::default()).unwrap_err();
        assert_eq!(err.code(), "not_a_pdf", "{err}");
    }

    #[test]
    fn file_names_and_content_types_name_formats() {
        assert_eq!(DocFormat::from_file_name("Invoice.PDF"), Some(DocFormat::Pdf));
        assert_eq!(DocFormat::from_file_name("scan.jpg"), Some(DocFormat::Jpeg));
        assert_eq!(DocFormat::from_file_name("notes.txt"), None);
        assert_eq!(DocFormat::from_content_type("image/png"), Some(DocFormat::Png));
    }
}
