//! SQL for the reference tables: the readers the rules run on, and the generic table writes an import
//! plans (whole rows keyed by their key columns, within a table's scope).

use rusqlite::{Connection, OptionalExtension, Transaction, params, params_from_iter};

use super::{CheckItem, DEFAULT_DOCUMENT_CHECK_SHARE, HsEntry, ProducerRule, RiskRule, SamplingRatio};
use crate::{
    db::SqlValue,
    domain::{CreditRating, Direction},
    error::StoreError,
};

/// Cached, like the producer look-ups below: run for every goods line of every submission.
pub fn hs(c: &Connection, code: &str) -> Result<Option<HsEntry>, StoreError> {
    Ok(c.prepare_cached(
        "SELECT code, chapter, description_en, description_zh, unit, category FROM hs_codes WHERE code = ?1",
    )?
    .query_row([code], |r| {
        Ok(HsEntry {
            code: r.get(0)?,
            chapter: r.get(1)?,
            description_en: r.get(2)?,
            description_zh: r.get(3)?,
            unit: r.get(4)?,
            category: r.get(5)?,
        })
    })
    .optional()?)
}

/// The producer rules whose prefix the HS code starts with and that apply in this direction.
pub fn producer_rules_for(
    c: &Connection,
    hs_code: &str,
    direction: Direction,
) -> Result<Vec<ProducerRule>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT id, hs_prefix, reason_en, reason_zh FROM producer_rules
         WHERE ?1 LIKE hs_prefix || '%' AND (direction IS NULL OR direction = ?2) ORDER BY id",
    )?;
    Ok(stmt
        .query_map(params![hs_code, direction], |r| {
            Ok(ProducerRule {
                id: r.get(0)?,
                hs_prefix: r.get(1)?,
                reason_en: r.get(2)?,
                reason_zh: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?)
}

/// Is `registration_no` a producer registered for `hs_prefix`, valid at `now`?
pub fn producer_registered_for(
    c: &Connection,
    registration_no: &str,
    hs_prefix: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let row: Option<(String, i64)> = c
        .prepare_cached(
            "SELECT hs_prefixes, valid_until FROM registered_producers WHERE registration_no = ?1",
        )?
        .query_row([registration_no], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(row.is_some_and(|(prefixes, until)| {
        until > now && prefixes.split(',').any(|p| hs_prefix.starts_with(p) || p.starts_with(hs_prefix))
    }))
}

pub fn risk_rules(c: &Connection) -> Result<Vec<RiskRule>, StoreError> {
    let mut stmt = c.prepare("SELECT id, kind, value, reason_en FROM risk_rules ORDER BY id")?;
    Ok(stmt
        .query_map([], |r| {
            Ok(RiskRule { id: r.get(0)?, kind: r.get(1)?, value: r.get(2)?, reason_en: r.get(3)? })
        })?
        .collect::<Result<_, _>>()?)
}

/// Every sampling ratio, by chapter and credit rating.
pub fn sampling_ratios(c: &Connection) -> Result<Vec<SamplingRatio>, StoreError> {
    let mut stmt = c.prepare(
        "SELECT chapter, credit_rating, ratio FROM sampling_ratios ORDER BY chapter, credit_rating",
    )?;
    Ok(stmt
        .query_map([], |r| {
            Ok(SamplingRatio { chapter: r.get(0)?, credit_rating: r.get(1)?, ratio: r.get(2)? })
        })?
        .collect::<Result<_, _>>()?)
}

pub fn sampling_ratio(
    c: &Connection,
    chapter: &str,
    rating: CreditRating,
) -> Result<Option<f64>, StoreError> {
    Ok(c.query_row(
        "SELECT ratio FROM sampling_ratios WHERE chapter = ?1 AND credit_rating = ?2",
        params![chapter, rating],
        |r| r.get(0),
    )
    .optional()?)
}

pub fn set_sampling_ratio(
    tx: &Transaction<'_>,
    chapter: &str,
    rating: CreditRating,
    ratio: f64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO sampling_ratios (chapter, credit_rating, ratio) VALUES (?1, ?2, ?3)
         ON CONFLICT (chapter, credit_rating) DO UPDATE SET ratio = excluded.ratio",
        params![chapter, rating, ratio],
    )?;
    Ok(())
}

pub fn document_check_share(c: &Connection) -> Result<f64, StoreError> {
    Ok(c.query_row("SELECT value FROM settings_kv WHERE key = 'document_check_share'", [], |r| {
        r.get::<_, String>(0)
    })
    .optional()?
    .and_then(|v| v.parse().ok())
    .unwrap_or(DEFAULT_DOCUMENT_CHECK_SHARE))
}

pub fn checklist_template(c: &Connection, category: &str) -> Result<Option<Vec<CheckItem>>, StoreError> {
    let items: Option<String> = c
        .query_row("SELECT items FROM checklist_templates WHERE category = ?1", [category], |r| r.get(0))
        .optional()?;
    Ok(items
        .map(|j| crate::db::parse_stored(&j, "checklist_templates.items", category).map_err(|e| e.at(0)))
        .transpose()?)
}

/// Every row of `table` within `scope` (a condition naming no parameter), as the values of `key` followed
/// by those of `columns`.
pub fn rows(
    c: &Connection,
    table: &str,
    key: &[&str],
    scope: &str,
    columns: &[&str],
) -> Result<Vec<Vec<SqlValue>>, StoreError> {
    let mut wanted: Vec<&str> = key.to_vec();
    wanted.extend(columns);
    let sql = format!("SELECT {} FROM {table} WHERE {scope}", wanted.join(", "));
    let mut stmt = c.prepare(&sql)?;
    let rows = stmt.query_map([], |r| (0..wanted.len()).map(|i| r.get::<_, SqlValue>(i)).collect())?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Deletes the row of `table` within `scope` whose `key` columns hold `key_values`.
pub fn delete_row(
    tx: &Transaction<'_>,
    table: &str,
    key: &[&str],
    scope: &str,
    key_values: &[SqlValue],
) -> Result<(), StoreError> {
    let cond: Vec<String> = key.iter().enumerate().map(|(i, k)| format!("{k} = ?{}", i + 1)).collect();
    tx.execute(
        &format!("DELETE FROM {table} WHERE {} AND {scope}", cond.join(" AND ")),
        params_from_iter(key_values),
    )?;
    Ok(())
}

/// Inserts `row` (column, value) into `table`, or updates its non-key columns when its `key` exists.
pub fn upsert_row(
    tx: &Transaction<'_>,
    table: &str,
    key: &[&str],
    row: &[(&str, SqlValue)],
) -> Result<(), StoreError> {
    let cols: Vec<&str> = row.iter().map(|(c, _)| *c).collect();
    let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
    let updates: Vec<String> =
        cols.iter().filter(|c| !key.contains(c)).map(|c| format!("{c} = excluded.{c}")).collect();
    let sql = format!(
        "INSERT INTO {table} ({}) VALUES ({}) ON CONFLICT ({}) DO UPDATE SET {}",
        cols.join(", "),
        marks.join(", "),
        key.join(", "),
        updates.join(", ")
    );
    tx.execute(&sql, params_from_iter(row.iter().map(|(_, v)| v)))?;
    Ok(())
}

/// Does any certificate application use the certificate type `code`?
pub fn certificate_type_used(c: &Connection, code: &str) -> Result<bool, StoreError> {
    Ok(c.query_row(
        "SELECT EXISTS (SELECT 1 FROM certificate_applications WHERE type_code = ?1)",
        [code],
        |r| r.get(0),
    )?)
}

/// What `/readyz` and the start-up log name when reference data the workflow needs is missing.
pub fn missing(c: &Connection) -> Result<Vec<&'static str>, StoreError> {
    let mut out = Vec::new();
    for (table, what) in [
        ("hs_codes", "HS codes"),
        ("checklist_templates", "checklist templates"),
        ("certificate_types", "certificate types"),
    ] {
        let any: bool = c.query_row(&format!("SELECT EXISTS (SELECT 1 FROM {table})"), [], |r| r.get(0))?;
        if !any {
            out.push(what);
        }
    }
    Ok(out)
}
