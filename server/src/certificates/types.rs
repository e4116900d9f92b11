//! Certificate types as reference data (fixtures/certificates/types.json): titles, the SPS document type,
//! the HS chapters a type may cover, the fields it requires and the destination rules that apply.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateType {
    /// `phytosanitary`, `sanitary`, `general`, …
    pub code: String,
    pub title_en: String,
    pub title_zh: String,
    /// UN/EDIFACT 1001 document name code carried as the SPS message's `TypeCode`.
    pub sps_type_code: String,
    /// Two-digit HS chapters the type may certify; empty = any goods.
    pub hs_chapters: Vec<String>,
    /// Fields an application for this type must fill: `consignee`, `destination_country`, `transport`,
    /// `port_of_unloading`.
    pub required: Vec<String>,
    pub destination_rules: Vec<DestinationRule>,
}

/// An import requirement of a destination country that the certificate must show.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DestinationRule {
    pub id: String,
    /// ISO 3166 alpha-2.
    pub country: String,
    /// `treatment` or `additional_declaration`.
    pub requires: String,
    pub message_en: String,
    pub message_zh: String,
}

impl CertificateType {
    /// Two letters in the certificate number: `PH`, `SA`, `GE`.
    pub fn number_tag(&self) -> String {
        self.code.chars().take(2).collect::<String>().to_ascii_uppercase()
    }

    pub fn covers_chapter(&self, chapter: &str) -> bool {
        self.hs_chapters.is_empty() || self.hs_chapters.iter().any(|c| c == chapter)
    }

    /// What an import checks beyond the shape (reference::import).
    pub fn check(&self) -> Result<(), String> {
        for rule in &self.destination_rules {
            if !matches!(rule.requires.as_str(), "treatment" | "additional_declaration") {
                return Err(format!(
                    "destination rule {} of {} requires `{}`; only treatment and additional_declaration are known",
                    rule.id, self.code, rule.requires
                ));
            }
        }
        Ok(())
    }

    pub fn requires(&self, field: &str) -> bool {
        self.required.iter().any(|f| f == field)
    }
}

pub use super::store::{certificate_type as get, certificate_types as all};
