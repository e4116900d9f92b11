//! Every SQL statement on the applications' tables (`applications`, `application_history`, `e_records`,
//! `inspection_serials`).

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::{Application, ApplicationContent, ERecord};
use crate::{db, domain::time::rfc3339, error::StoreError};

const COLS: &str = "id, enterprise_id, state, inspection_no, version, copied_from, disposition, content, \
                    created_at, updated_at, submitted_at, district_unit, site_unit";

fn row(r: &Row<'_>) -> rusqlite::Result<Application> {
    Ok(Application {
        id: r.get(0)?,
        enterprise_id: r.get(1)?,
        state: r.get(2)?,
        inspection_no: r.get(3)?,
        version: r.get(4)?,
        copied_from: r.get(5)?,
        disposition: r.get(6)?,
        content: db::stored_json(r, 7, "applications.content", r.get::<_, i64>(0)?)?,
        created_at: r.get(8)?,
        updated_at: r.get(9)?,
        submitted_at: r.get(10)?,
        district_unit: r.get(11)?,
        site_unit: r.get(12)?,
    })
}

// `prepare_cached` on the submit path (`get`, `insert`, `update_state`, `insert_history`): a bulk of signed
// messages runs each of them thousands of times in one transaction, and preparing was a quarter of it.
pub fn get(c: &Connection, id: i64) -> Result<Option<Application>, StoreError> {
    Ok(c.prepare_cached(&format!("SELECT {COLS} FROM applications WHERE id = ?1"))?
        .query_row([id], row)
        .optional()?)
}

pub fn by_inspection_no(c: &Connection, no: &str) -> rusqlite::Result<Option<Application>> {
    c.query_row(&format!("SELECT {COLS} FROM applications WHERE inspection_no = ?1"), [no], row).optional()
}

pub struct NewRow<'a> {
    pub enterprise_id: i64,
    pub created_by: i64,
    pub content: &'a ApplicationContent,
    pub district_unit: i64,
    pub site_unit: i64,
    pub copied_from: Option<i64>,
}

/// `applications.content` as stored: the JSON text of the typed content.
fn content_text(content: &ApplicationContent) -> Result<String, StoreError> {
    serde_json::to_string(content)
        .map_err(|e| StoreError::Other(rusqlite::Error::ToSqlConversionFailure(e.into())))
}

pub fn insert(c: &Connection, n: NewRow<'_>, now: i64) -> Result<i64, StoreError> {
    c.prepare_cached(
        "INSERT INTO applications (enterprise_id, created_by, direction, state, district_unit, site_unit, content,
                                   copied_from, created_at, updated_at)
         VALUES (?1, ?2, ?3, 'draft', ?4, ?5, ?6, ?7, ?8, ?8)",
    )?
    .execute(params![
            n.enterprise_id,
            n.created_by,
            n.content.direction,
            n.district_unit,
            n.site_unit,
            content_text(n.content)?,
            n.copied_from,
            now
    ])?;
    Ok(c.last_insert_rowid())
}

pub fn update_content(c: &Connection, app: &Application) -> Result<(), StoreError> {
    c.execute(
        "UPDATE applications SET content = ?1, direction = ?2, district_unit = ?3, site_unit = ?4, enterprise_id = ?5,
                version = ?6, updated_at = ?7 WHERE id = ?8",
        params![
            content_text(&app.content)?,
            app.content.direction,
            app.district_unit,
            app.site_unit,
            app.enterprise_id,
            app.version,
            app.updated_at,
            app.id
        ],
    )?;
    Ok(())
}

pub fn update_state(c: &Connection, app: &Application) -> Result<(), StoreError> {
    c.prepare_cached(
        "UPDATE applications SET state = ?1, inspection_no = ?2, disposition = ?3, updated_at = ?4, submitted_at = ?5
         WHERE id = ?6",
    )?
    .execute(params![app.state, app.inspection_no, app.disposition, app.updated_at, app.submitted_at, app.id])?;
    Ok(())
}

pub fn insert_history(
    c: &Connection,
    app: &Application,
    action: &str,
    opinion: Option<&str>,
    actor: &str,
    now: i64,
) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO application_history (application_id, version, state, action, opinion, actor, at, content)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
            app.id,
            app.version,
            app.state,
            action,
            opinion,
            actor,
            now,
            content_text(&app.content)?
    ])?;
    Ok(())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    pub version: i64,
    pub state: String,
    pub action: String,
    pub opinion: Option<String>,
    pub actor: String,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: i64,
    pub content: serde_json::Value,
}

pub fn history(c: &Connection, id: i64) -> rusqlite::Result<Vec<HistoryEntry>> {
    let mut stmt = c.prepare(
        "SELECT version, state, action, opinion, actor, at, content FROM application_history
         WHERE application_id = ?1 ORDER BY id",
    )?;
    stmt.query_map([id], |r| {
        Ok(HistoryEntry {
            version: r.get(0)?,
            state: r.get(1)?,
            action: r.get(2)?,
            opinion: r.get(3)?,
            actor: r.get(4)?,
            at: r.get(5)?,
            content: db::json_column(r, 6)?,
        })
    })?
    .collect()
}

/// Filters for listing; `enterprises` / `district_units` carry the caller's scope and are always applied.
#[derive(Default)]
pub struct Filter {
    pub enterprises: Option<Vec<i64>>,
    pub district_units: Option<Vec<i64>>,
    pub state: Option<String>,
    pub inspection_no: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub enterprise: Option<i64>,
    pub limit: i64,
    pub offset: i64,
}

pub fn list(c: &Connection, f: &Filter) -> rusqlite::Result<Vec<Application>> {
    let mut sql = format!("SELECT {COLS} FROM applications WHERE 1 = 1");
    let mut values: Vec<rusqlite::types::Value> = Vec::new();
    let in_list = |sql: &mut String, col: &str, ids: &[i64], values: &mut Vec<rusqlite::types::Value>| {
        let marks = ids.iter().map(|_| "?").collect::<Vec<_>>().join(",");
        sql.push_str(&format!(" AND {col} IN ({marks})"));
        values.extend(ids.iter().map(|i| rusqlite::types::Value::from(*i)));
    };
    if let Some(ids) = &f.enterprises {
        in_list(&mut sql, "enterprise_id", ids, &mut values);
    }
    if let Some(ids) = &f.district_units {
        in_list(&mut sql, "district_unit", ids, &mut values);
    }
    if let Some(s) = &f.state {
        sql.push_str(" AND state = ?");
        values.push(s.clone().into());
    }
    if let Some(n) = &f.inspection_no {
        sql.push_str(" AND inspection_no = ?");
        values.push(n.clone().into());
    }
    if let Some(t) = f.from {
        sql.push_str(" AND created_at >= ?");
        values.push(t.into());
    }
    if let Some(t) = f.to {
        sql.push_str(" AND created_at < ?");
        values.push(t.into());
    }
    if let Some(e) = f.enterprise {
        sql.push_str(" AND enterprise_id = ?");
        values.push(e.into());
    }
    sql.push_str(" ORDER BY id DESC LIMIT ? OFFSET ?");
    values.push(f.limit.into());
    values.push(f.offset.into());
    let mut stmt = c.prepare(&sql)?;
    stmt.query_map(rusqlite::params_from_iter(values), row)?.collect()
}

pub fn e_record(c: &Connection, application_id: i64) -> rusqlite::Result<Option<ERecord>> {
    c.query_row(
        "SELECT application_id, number, status, forced, released_at FROM e_records WHERE application_id = ?1",
        [application_id],
        |r| {
            Ok(ERecord {
                application_id: r.get(0)?,
                number: r.get(1)?,
                status: r.get(2)?,
                forced: r.get(3)?,
                released_at: r.get(4)?,
            })
        },
    )
    .optional()
}

/// The released goods' electronic record, status `normal`.
pub fn insert_e_record(
    c: &Connection,
    application_id: i64,
    number: &str,
    forced: bool,
    now: i64,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO e_records (application_id, number, status, forced, released_at) VALUES (?1, ?2, 'normal', ?3, ?4)",
        params![application_id, number, forced, now],
    )?;
    Ok(())
}

/// Bumps and answers the last serial of (direction, year, district); the first is 1. Cached: every
/// submission numbers itself here.
pub fn next_serial(
    c: &Connection,
    direction: crate::domain::Direction,
    year: i16,
    district: &str,
) -> Result<i64, StoreError> {
    Ok(c.prepare_cached(
        "INSERT INTO inspection_serials (direction, year, district, last) VALUES (?1, ?2, ?3, 1)
         ON CONFLICT (direction, year, district) DO UPDATE SET last = last + 1
         RETURNING last",
    )?
    .query_row(params![direction, year, district], |r| r.get(0))?)
}
