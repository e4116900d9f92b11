//! Why a document step was refused, and why a received file is not a supporting document. A leaf,
//! mapped to HTTP once in `error.rs` (the codes and sentences clients already see).

use crate::{
    applications::error::ApplicationError,
    certificates::error::CertificateError,
    db::error::{EngineError, StoreError},
    delegations::error::DelegationError,
    photos::inspect as image_check,
    review::error::ReviewError,
};

/// Why a received file is not accepted as a supporting document. Each has a stable code.
#[derive(Debug, thiserror::Error)]
pub enum DocRefusal {
    #[error("the file is empty")]
    Empty,
    #[error("the file is not a PDF, JPEG or PNG (its first bytes match none of them)")]
    UnsupportedFormat,
    #[error("the file is declared as {declared} (by its type or its name) but its bytes are {actual}")]
    Mismatch { declared: &'static str, actual: &'static str },
    #[error("the PDF is encrypted; send it without a password or restrictions")]
    Encrypted,
    #[error("the file is not a well-formed PDF: {0}")]
    MalformedPdf(String),
    #[error("the PDF has no pages")]
    NoPages,
    #[error(transparent)]
    Image(#[from] image_check::Refusal),
}

impl DocRefusal {
    pub fn code(&self) -> &'static str {
        match self {
            DocRefusal::Empty => "empty_document",
            DocRefusal::UnsupportedFormat => "unsupported_document_format",
            DocRefusal::Mismatch { declared: "pdf", .. } => "not_a_pdf",
            DocRefusal::Mismatch { .. } => "content_type_mismatch",
            DocRefusal::Encrypted => "encrypted_pdf",
            DocRefusal::MalformedPdf(_) => "malformed_pdf",
            DocRefusal::NoPages => "pdf_without_pages",
            DocRefusal::Image(r) => r.code(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// Not there, or not the caller's to see (the two are not told apart): "the document", "the application".
    #[error("{0} was not found")]
    NotFound(&'static str),
    #[error("supporting documents are attached by the enterprise")]
    AttachedByEnterprise,
    #[error("customs asks for documents again, not the enterprise")]
    AskedByCustoms,
    /// The attachment an upload says it replaces is not one of the subject's.
    #[error("document {0} is not attached here")]
    UnknownAttachment(i64),
    #[error("document {old} was already replaced by document {by}")]
    AlreadyReplaced { old: i64, by: i64 },
    /// `kind` is the replaced attachment's kind, as the API spells it.
    #[error("document {old} is a {kind}; its replacement must be one too")]
    KindMismatch { old: i64, kind: &'static str },
    /// A reviewer asked for a replaced file again: the replacement is the one to ask for.
    #[error("document {attachment} was replaced by document {by}; ask for that one")]
    AskForReplacement { attachment: i64, by: i64 },
    #[error("document {attachment} was asked for again already and not sent yet")]
    AlreadyRequested { attachment: i64, request: i64 },
    #[error(transparent)]
    Application(#[from] ApplicationError),
    #[error(transparent)]
    Certificate(#[from] CertificateError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Whether the caller may review the application (`review::may_review`) could not be told.
    #[error(transparent)]
    Review(#[from] ReviewError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<EngineError> for DocumentError {
    fn from(e: EngineError) -> Self {
        DocumentError::Store(e.into())
    }
}

impl DocumentError {
    /// A failure of the server (the database, damaged data) rather than a refusal a client is told: the
    /// visibility check of a document passes failures on and tells every refusal as "not found".
    pub fn is_failure(&self) -> bool {
        use ApplicationError as A;
        use CertificateError as C;
        let store = StoreError::is_failure;
        match self {
            DocumentError::Store(e) => store(e),
            DocumentError::Application(A::Store(e) | A::Delegation(DelegationError::Store(e))) => store(e),
            DocumentError::Certificate(C::Store(e)) => store(e),
            DocumentError::Certificate(C::Internal(_)) | DocumentError::Internal(_) => true,
            _ => false,
        }
    }
}
