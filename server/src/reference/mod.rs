//! Reference data the rules run on: the HS code table, producer-qualification rules, registered producers,
//! risk rules, sampling ratios and checklist templates. Rules are data: they come from `fixtures/hs` and
//! `fixtures/checklists` (or an administrator's edits), never from code.

pub mod http;

use std::path::Path;

use anyhow::Context;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};

use crate::{
    domain::{CreditRating, Direction},
    error::ApiError,
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
    items.map(|j| crate::db::parse_json(0, &j)).transpose()
}

// ---- loading from fixtures ----

#[derive(Deserialize)]
struct HsFile {
    codes: Vec<HsRow>,
}
#[derive(Deserialize)]
struct HsRow {
    code: String,
    chapter: String,
    description_en: String,
    description_zh: String,
    unit: String,
    category: Option<String>,
}
#[derive(Deserialize)]
struct ProducerRulesFile {
    rules: Vec<ProducerRuleRow>,
}
#[derive(Deserialize)]
struct ProducerRuleRow {
    id: String,
    hs_prefix: String,
    requires: String,
    #[serde(default)]
    direction: Option<String>,
    reason_en: String,
    reason_zh: String,
}
#[derive(Deserialize)]
struct ProducersFile {
    producers: Vec<ProducerRow>,
}
#[derive(Deserialize)]
struct ProducerRow {
    registration_no: String,
    name: String,
    hs_prefixes: Vec<String>,
    valid_until: String,
}
#[derive(Deserialize)]
struct RiskFile {
    rules: Vec<RiskRow>,
}
#[derive(Deserialize)]
struct RiskRow {
    id: String,
    kind: String,
    value: String,
    reason_en: String,
}
#[derive(Deserialize)]
struct RatiosFile {
    ratios: Vec<RatioRow>,
    document_check_share: Option<f64>,
}
#[derive(Deserialize)]
struct RatioRow {
    chapter: String,
    credit_rating: String,
    ratio: f64,
}
#[derive(Deserialize)]
struct TemplateFile {
    category: String,
    version: i64,
    title_en: String,
    title_zh: String,
    items: Vec<CheckItem>,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Replaces the reference tables with the contents of `fixtures_root/hs` and `fixtures_root/checklists`.
pub fn load(tx: &Transaction<'_>, fixtures_root: &Path) -> anyhow::Result<()> {
    let hs_dir = fixtures_root.join("hs");
    let hs: HsFile = read_json(&hs_dir.join("hs-codes.json"))?;
    tx.execute("DELETE FROM hs_codes", [])?;
    for h in hs.codes {
        anyhow::ensure!(
            h.code.len() == 10
                && h.code.bytes().all(|b| b.is_ascii_digit())
                && h.code.starts_with(&h.chapter),
            "HS code {} in hs-codes.json is not 10 digits of its chapter",
            h.code
        );
        tx.execute(
            "INSERT INTO hs_codes (code, chapter, description_en, description_zh, unit, category) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![h.code, h.chapter, h.description_en, h.description_zh, h.unit, h.category],
        )?;
    }
    let rules: ProducerRulesFile = read_json(&hs_dir.join("producer-rules.json"))?;
    tx.execute("DELETE FROM producer_rules", [])?;
    for r in rules.rules.into_iter().filter(|r| r.requires == "registered_producer") {
        tx.execute(
            "INSERT INTO producer_rules (id, hs_prefix, requires, direction, reason_en, reason_zh)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![r.id, r.hs_prefix, r.requires, r.direction, r.reason_en, r.reason_zh],
        )?;
    }
    let producers: ProducersFile = read_json(&hs_dir.join("registered-producers.json"))?;
    tx.execute("DELETE FROM registered_producers", [])?;
    for p in producers.producers {
        let until = crate::domain::time::rfc3339::parse(&p.valid_until).map_err(anyhow::Error::msg)?;
        tx.execute(
            "INSERT INTO registered_producers (registration_no, name, hs_prefixes, valid_until) VALUES (?1, ?2, ?3, ?4)",
            params![p.registration_no, p.name, p.hs_prefixes.join(","), until],
        )?;
    }
    let risk: RiskFile = read_json(&hs_dir.join("risk-rules.json"))?;
    tx.execute("DELETE FROM risk_rules", [])?;
    for r in risk.rules {
        tx.execute(
            "INSERT INTO risk_rules (id, kind, value, reason_en) VALUES (?1, ?2, ?3, ?4)",
            params![r.id, r.kind, r.value, r.reason_en],
        )?;
    }
    let ratios: RatiosFile = read_json(&hs_dir.join("sampling-ratios.json"))?;
    tx.execute("DELETE FROM sampling_ratios", [])?;
    for r in ratios.ratios {
        let rating = CreditRating::parse(&r.credit_rating)
            .with_context(|| format!("unknown credit rating {} in sampling-ratios.json", r.credit_rating))?;
        set_sampling_ratio(tx, &r.chapter, rating, r.ratio)?;
    }
    if let Some(share) = ratios.document_check_share {
        tx.execute(
            "INSERT INTO settings_kv (key, value) VALUES ('document_check_share', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [share.to_string()],
        )?;
    }
    tx.execute("DELETE FROM checklist_templates", [])?;
    let mut entries: Vec<_> = std::fs::read_dir(fixtures_root.join("checklists"))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    entries.sort();
    for path in entries {
        let t: TemplateFile = read_json(&path)?;
        tx.execute(
            "INSERT INTO checklist_templates (category, version, title_en, title_zh, items) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![t.category, t.version, t.title_en, t.title_zh, serde_json::to_string(&t.items)?],
        )?;
    }
    Ok(())
}

pub fn is_loaded(c: &Connection) -> Result<bool, ApiError> {
    Ok(c.query_row("SELECT EXISTS (SELECT 1 FROM hs_codes)", [], |r| r.get(0))?)
}
