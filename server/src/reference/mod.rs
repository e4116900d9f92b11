//! Reference data the rules run on: the HS code table, producer-qualification rules, registered producers,
//! risk rules, sampling ratios and checklist templates. Rules are data: they come from
//! `fieldcheck admin import-reference DIR` ([`import`]; the demo loads the built-in [`embedded`] copy of
//! `fixtures/`) or an administrator's edits, never from code.

pub mod embedded;
pub mod http;
pub mod import;

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};

use crate::domain::{CreditRating, Direction};

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

pub fn hs(c: &Connection, code: &str) -> rusqlite::Result<Option<HsEntry>> {
    c.query_row(
        "SELECT code, chapter, description_en, description_zh, unit, category FROM hs_codes WHERE code = ?1",
        [code],
        |r| {
            Ok(HsEntry {
                code: r.get(0)?,
                chapter: r.get(1)?,
                description_en: r.get(2)?,
                description_zh: r.get(3)?,
                unit: r.get(4)?,
                category: r.get(5)?,
            })
        },
    )
    .optional()
}

/// The producer rules whose prefix the HS code starts with and that apply in this direction.
pub fn producer_rules_for(
    c: &Connection,
    hs_code: &str,
    direction: Direction,
) -> rusqlite::Result<Vec<ProducerRule>> {
    let mut stmt = c.prepare(
        "SELECT id, hs_prefix, reason_en, reason_zh FROM producer_rules
         WHERE ?1 LIKE hs_prefix || '%' AND (direction IS NULL OR direction = ?2) ORDER BY id",
    )?;
    stmt.query_map(params![hs_code, direction], |r| {
        Ok(ProducerRule { id: r.get(0)?, hs_prefix: r.get(1)?, reason_en: r.get(2)?, reason_zh: r.get(3)? })
    })?
    .collect()
}

/// Is `registration_no` a producer registered for `hs_prefix`, valid at `now`?
pub fn producer_registered_for(
    c: &Connection,
    registration_no: &str,
    hs_prefix: &str,
    now: i64,
) -> rusqlite::Result<bool> {
    let row: Option<(String, i64)> = c
        .query_row(
            "SELECT hs_prefixes, valid_until FROM registered_producers WHERE registration_no = ?1",
            [registration_no],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(row.is_some_and(|(prefixes, until)| {
        until > now && prefixes.split(',').any(|p| hs_prefix.starts_with(p) || p.starts_with(hs_prefix))
    }))
}

pub fn risk_rules(c: &Connection) -> rusqlite::Result<Vec<RiskRule>> {
    let mut stmt = c.prepare("SELECT id, kind, value, reason_en FROM risk_rules ORDER BY id")?;
    stmt.query_map([], |r| {
        Ok(RiskRule { id: r.get(0)?, kind: r.get(1)?, value: r.get(2)?, reason_en: r.get(3)? })
    })?
    .collect()
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SamplingRatio {
    /// Two-digit HS chapter.
    pub chapter: String,
    pub credit_rating: CreditRating,
    /// Share of consignments inspected on site, 0 to 1.
    pub ratio: f64,
}

/// Every sampling ratio, by chapter and credit rating.
pub fn sampling_ratios(c: &Connection) -> rusqlite::Result<Vec<SamplingRatio>> {
    let mut stmt = c.prepare(
        "SELECT chapter, credit_rating, ratio FROM sampling_ratios ORDER BY chapter, credit_rating",
    )?;
    stmt.query_map([], |r| {
        Ok(SamplingRatio { chapter: r.get(0)?, credit_rating: r.get(1)?, ratio: r.get(2)? })
    })?
    .collect()
}

pub fn sampling_ratio(c: &Connection, chapter: &str, rating: CreditRating) -> rusqlite::Result<Option<f64>> {
    c.query_row(
        "SELECT ratio FROM sampling_ratios WHERE chapter = ?1 AND credit_rating = ?2",
        params![chapter, rating],
        |r| r.get(0),
    )
    .optional()
}

pub fn set_sampling_ratio(
    tx: &Transaction<'_>,
    chapter: &str,
    rating: CreditRating,
    ratio: f64,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO sampling_ratios (chapter, credit_rating, ratio) VALUES (?1, ?2, ?3)
         ON CONFLICT (chapter, credit_rating) DO UPDATE SET ratio = excluded.ratio",
        params![chapter, rating, ratio],
    )?;
    Ok(())
}

pub fn document_check_share(c: &Connection) -> rusqlite::Result<f64> {
    Ok(c.query_row("SELECT value FROM settings_kv WHERE key = 'document_check_share'", [], |r| {
        r.get::<_, String>(0)
    })
    .optional()?
    .and_then(|v| v.parse().ok())
    .unwrap_or(DEFAULT_DOCUMENT_CHECK_SHARE))
}

pub fn checklist_template(c: &Connection, category: &str) -> rusqlite::Result<Option<Vec<CheckItem>>> {
    let items: Option<String> = c
        .query_row("SELECT items FROM checklist_templates WHERE category = ?1", [category], |r| r.get(0))
        .optional()?;
    items
        .map(|j| crate::db::parse_stored(&j, "checklist_templates.items", category).map_err(|e| e.at(0)))
        .transpose()
}
