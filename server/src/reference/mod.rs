//! Reference data the rules run on: the HS code table, producer-qualification rules, registered producers,
//! risk rules, sampling ratios and checklist templates. Rules are data: they come from
//! `fieldcheck admin import-reference DIR` ([`import`]; the demo loads the built-in [`embedded`] copy of
//! `fixtures/`) or an administrator's edits, never from code.
//!
//! # Layout
//! - this file: the reference types; the readers are re-exported from [`store`].
//! - [`import`]: reading, checking and planning an import. [`store`]: every reference SQL statement.
//! - [`error`]: why an import wrote nothing (its problems, or the failing callee's error); a leaf.
//! - [`embedded`]: the compiled-in `fixtures/`. [`http`]: the handlers.

pub mod embedded;
pub mod error;
pub mod http;
pub mod import;
pub mod store;

use serde::{Deserialize, Serialize};

use crate::domain::CreditRating;

pub use store::{
    checklist_template, document_check_share, hs, producer_registered_for, producer_rules_for, risk_rules,
    sampling_ratio, sampling_ratios, set_sampling_ratio,
};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HsEntry {
    pub code: String,
    pub chapter: String,
    pub description_en: String,
    pub description_zh: String,
    /// Legal unit of quantity: goods lines must be declared in it.
    pub unit: String,
    /// Checklist template category, if any.
    pub category: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CheckItem {
    pub item_id: String,
    pub title_en: String,
    pub title_zh: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guidance_en: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProducerRule {
    pub id: String,
    pub hs_prefix: String,
    pub reason_en: String,
    pub reason_zh: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RiskRule {
    pub id: String,
    /// `hs_prefix` or `origin`.
    pub kind: String,
    pub value: String,
    pub reason_en: String,
}

/// Used when no ratio is configured for a chapter and rating: inspect one in ten.
pub const DEFAULT_RATIO: f64 = 0.1;
/// Used when `document_check_share` is not configured.
pub const DEFAULT_DOCUMENT_CHECK_SHARE: f64 = 0.3;

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SamplingRatio {
    /// Two-digit HS chapter.
    pub chapter: String,
    pub credit_rating: CreditRating,
    /// Share of consignments inspected on site, 0 to 1.
    pub ratio: f64,
}
