//! Why a certificate step was refused. A leaf, mapped to HTTP once in `error.rs` (the codes and sentences
//! clients already see).

use crate::{
    db::error::{EngineError, StoreError},
    domain::{ApplicationState, CertState, NotAllowed},
    notices::error::NoticeError,
};

#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    /// Not there, or not the caller's to see (the two are not told apart); the text names what
    /// ("the certificate application", "the certificate", "the district", …).
    #[error("{0} was not found")]
    NotFound(&'static str),
    #[error("`{code}` is not a certificate type")]
    UnknownType { code: String, known: Vec<String> },
    #[error(
        "you may not apply for certificates of this application's enterprise: it is not yours and has not delegated certificates to you"
    )]
    NotYourEnterprise,
    #[error("the application is {0}; certificates are applied for after release")]
    NotReleased(ApplicationState),
    #[error("name 1 to {max} goods lines")]
    GoodsCount { max: usize },
    #[error("at most {max} additional declarations")]
    TooManyDeclarations { max: usize },
    /// The same limit, as a replacement's corrections are told it.
    #[error("at most {max}")]
    TooManyReplacementDeclarations { max: usize },
    /// `index` is the position in the request's `goods`; `lines` how many the application has.
    #[error("the application has goods lines 1 to {lines}")]
    UnknownGoodsLine { index: usize, lines: usize },
    #[error("name each goods line once")]
    DuplicateGoodsLine { index: usize },
    #[error("the quantity must be positive")]
    NotPositive { index: usize },
    #[error(
        "line {line} was declared and inspected as {inspected} {unit}; a certificate cannot cover {asked}"
    )]
    QuantityExceedsInspected { index: usize, line: usize, inspected: f64, unit: String, asked: f64 },
    /// A character the certificate font has no glyph for, in the named field.
    #[error(
        "the character {glyph:?} (U+{:04X}) cannot be printed on a certificate; write it another way",
        code_point(.glyph)
    )]
    Unprintable { field: String, glyph: char },
    #[error("certificate applications are changed by their enterprise")]
    ChangedByEnterprise,
    #[error("queued certificates are decided by customs reviewers")]
    DecidedByCustoms,
    #[error("certificates are revoked and replaced by customs")]
    RevokedByCustoms,
    /// `action` is the verb's stem as the sentence ends it ("amend" → "amended", "issu" → "issued").
    #[error("a certificate application that is {} cannot be {action}ed", state.as_str())]
    Illegal { state: CertState, action: &'static str },
    #[error("an amendment keeps the application; apply anew for another")]
    ApplicationChanged,
    /// A reviewer's issue of goods no longer released.
    #[error("only released goods are certified")]
    ReleasedOnly,
    #[error("no electronic record")]
    NoElectronicRecord,
    #[error("certificate {0} of this type is already valid; replace it instead")]
    DuplicateCertificate(String),
    #[error("enterprise {0}, named by the application, is not on record")]
    UnknownEnterprise(String),
    #[error("goods line {line}: HS code {hs} is no longer in the reference tables")]
    UnknownHsCode { line: usize, hs: String },
    #[error("this year's certificate numbers are used up")]
    SerialsExhausted,
    #[error("certificate {number} is {status}; only a valid one can be revoked or replaced")]
    NotValid { number: String, status: String },
    #[error("certificate {number} was printed {prints} times, the most allowed")]
    PrintLimitReached { number: String, prints: i64, max_prints: i64 },
    #[error("another print of this certificate just happened; ask again")]
    PrintInProgress,
    /// `GET /verify/{number}`: an unknown number, or a printout whose digest does not match; `why` says
    /// which (a 404, the same for both, so that the answer tells a forger nothing more).
    #[error("{number} is not a valid certificate or notice: {why}")]
    NotAValidCertificate { number: String, why: &'static str },
    /// A notice's standing could not be read (at `GET /verify/{number}`).
    #[error(transparent)]
    Notice(#[from] NoticeError),
    /// Stored data that cannot be what it should (a released application without a number, stored
    /// content that does not parse): a logged 500.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
    #[error(transparent)]
    NotAllowed(#[from] NotAllowed),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<EngineError> for CertificateError {
    fn from(e: EngineError) -> Self {
        CertificateError::Store(e.into())
    }
}

fn code_point(c: &char) -> u32 {
    u32::from(*c)
}
