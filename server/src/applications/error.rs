//! Why an application step was refused. A leaf, mapped to HTTP in `error.rs` (the codes and sentences
//! clients already see).

use serde::{Deserialize, Serialize};

use crate::{
    db::error::StoreError,
    delegations::error::DelegationError,
    domain::{ApplicationState, NotAllowed},
};

#[derive(Debug, thiserror::Error)]
pub enum ApplicationError {
    /// Not there, or not visible to the caller (the two are not told apart).
    #[error("the application was not found")]
    NotFound,
    #[error("applications are filed by enterprises")]
    NotEnterprise,
    #[error("officers work from instructions, not applications")]
    OfficerList,
    /// The applicant is neither the caller's enterprise nor one delegating applications to it.
    #[error(
        "you may not file applications for the enterprise {0}: it is not yours and has not delegated applications to you"
    )]
    NotYourApplicant(String),
    #[error("{0} is not a customs district")]
    UnknownDistrict(String),
    #[error("{site} is not an inspection site of district {district}")]
    UnknownSite { site: String, district: String },
    #[error("an application that is {0} cannot be changed; only drafts and returned ones")]
    NotEditable(ApplicationState),
    #[error(
        "direction, district and applicant cannot change once the application has its inspection number; copy it instead"
    )]
    NumberedFieldsFixed,
    #[error("an application that is {0} cannot be submitted")]
    NotSubmittable(ApplicationState),
    /// Released or numbered work needs the inspection number a submission assigns.
    #[error("not submitted")]
    NotNumbered,
    /// A typed inspection number that is not one (shape, check digit, or a district not ours).
    #[error("{0}")]
    InvalidInspectionNo(String),
    #[error("district {0} has used all serials for this year")]
    SerialsExhausted(String),
    /// Every broken submission rule, in the order checked.
    #[error(
        "{} rule(s) broken: {}",
        .0.len(),
        .0.iter().map(|v| v.message.as_str()).collect::<Vec<_>>().join("; ")
    )]
    SubmissionRules(Vec<Violation>),
    #[error(transparent)]
    NotAllowed(#[from] NotAllowed),
    #[error(transparent)]
    Delegation(#[from] DelegationError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One broken rule, named so a program can act on it and phrased so a person can fix it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Violation {
    pub field: String,
    pub rule: String,
    pub message: String,
}
