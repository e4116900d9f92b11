//! The certificate tables and their SQL (`certificate_applications`, `certificates`, `certificate_types`,
//! `sps_outbox`, …). Knows nothing of HTTP or of the rules.

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;

use super::{CertApplication, CertificateRequest, outbox::Delivery, types::CertificateType};
use crate::{
    db::{StoreError, stored_json},
    domain::{CertState, time::rfc3339},
};

const APP_COLS: &str =
    "id, application_id, enterprise_id, created_by, type_code, state, content, version, failed_rules,
                        opinion, certificate_id, created_at, updated_at";

fn app_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CertApplication> {
    let id: i64 = r.get(0)?;
    Ok(CertApplication {
        id,
        application_id: r.get(1)?,
        enterprise_id: r.get(2)?,
        created_by: r.get(3)?,
        type_code: r.get(4)?,
        state: r.get(5)?,
        request: stored_json::<CertificateRequest>(r, 6, "certificate_applications.content", id)?,
        version: r.get(7)?,
        failed_rules: stored_json(r, 8, "certificate_applications.failed_rules", id)?,
        opinion: r.get(9)?,
        certificate_id: r.get(10)?,
        created_at: r.get(11)?,
        updated_at: r.get(12)?,
    })
}

pub fn get_application(c: &Connection, id: i64) -> Result<Option<CertApplication>, StoreError> {
    Ok(c.query_row(&format!("SELECT {APP_COLS} FROM certificate_applications WHERE id = ?1"), [id], app_row)
        .optional()?)
}

/// A column's JSON text; a value that cannot be written as JSON fails like any value SQLite cannot take.
fn json<T: Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Other(rusqlite::Error::ToSqlConversionFailure(e.into())))
}

pub fn insert_application(
    tx: &Transaction<'_>,
    now: i64,
    by: i64,
    enterprise_id: i64,
    type_code: &str,
    req: &CertificateRequest,
) -> Result<i64, StoreError> {
    tx.execute(
        "INSERT INTO certificate_applications (application_id, enterprise_id, created_by, type_code, state, content,
                                               created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, 'draft', ?5, ?6, ?6)",
        params![req.application_id, enterprise_id, by, type_code, json(req)?, now],
    )?;
    Ok(tx.last_insert_rowid())
}

pub fn update_application(tx: &Transaction<'_>, now: i64, ca: &CertApplication) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE certificate_applications SET type_code = ?2, state = ?3, content = ?4, version = ?5, failed_rules = ?6,
                opinion = ?7, certificate_id = ?8, updated_at = ?9 WHERE id = ?1",
        params![
            ca.id,
            ca.type_code,
            ca.state.as_str(),
            json(&ca.request)?,
            ca.version,
            json(&ca.failed_rules)?,
            ca.opinion,
            ca.certificate_id,
            now
        ],
    )?;
    Ok(())
}

/// Applications in `state` whose enterprise is one of `enterprises` (enterprise callers) or whose
/// application's district lies under `unit` (customs callers); newest first.
pub fn list_applications(
    c: &Connection,
    enterprises: Option<&[i64]>,
    unit: Option<i64>,
    state: Option<CertState>,
    limit: i64,
) -> Result<Vec<CertApplication>, StoreError> {
    let mut sql = format!(
        "SELECT {} FROM certificate_applications ca WHERE (?1 IS NULL OR ca.state = ?1)",
        APP_COLS.split(", ").map(|c| format!("ca.{}", c.trim())).collect::<Vec<_>>().join(", ")
    );
    let mut values: Vec<rusqlite::types::Value> = vec![state.map(|s| s.as_str().to_owned()).into()];
    if let Some(ids) = enterprises {
        let marks = ids.iter().map(|_| "?").collect::<Vec<_>>().join(",");
        sql.push_str(&format!(" AND ca.enterprise_id IN ({marks})"));
        values.extend(ids.iter().map(|i| rusqlite::types::Value::from(*i)));
    }
    if let Some(unit) = unit {
        sql.push_str(
            " AND EXISTS (WITH RECURSIVE up(id, parent_id) AS (
                 SELECT u.id, u.parent_id FROM customs_units u JOIN applications a ON a.district_unit = u.id
                 WHERE a.id = ca.application_id
                 UNION ALL SELECT u.id, u.parent_id FROM customs_units u JOIN up ON u.id = up.parent_id)
               SELECT 1 FROM up WHERE id = ?)",
        );
        values.push(unit.into());
    }
    sql.push_str(" ORDER BY ca.id DESC LIMIT ?");
    values.push(limit.into());
    let mut stmt = c.prepare(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(values), app_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Bumps and answers the last serial of (district, year, type); the first is 1.
pub fn next_serial(
    tx: &Transaction<'_>,
    district: &str,
    year: i16,
    type_code: &str,
) -> Result<i64, StoreError> {
    Ok(tx.query_row(
        "INSERT INTO certificate_serials (district, year, type_code, last) VALUES (?1, ?2, ?3, 1)
         ON CONFLICT (district, year, type_code) DO UPDATE SET last = last + 1 RETURNING last",
        params![district, year, type_code],
        |r| r.get(0),
    )?)
}

/// An issued certificate row.
#[derive(Debug, Clone)]
pub struct Certificate {
    pub id: i64,
    pub number: String,
    pub cert_application_id: i64,
    pub application_id: i64,
    pub enterprise_id: i64,
    pub district_unit: i64,
    pub type_code: String,
    pub content: String,
    pub digest: String,
    pub signature: String,
    pub key_id: String,
    pub status: String,
    pub replaces: Option<i64>,
    pub replaced_by: Option<i64>,
    pub status_reason: Option<String>,
    pub status_changed_at: Option<i64>,
    pub issued_by: String,
    pub issued_at: i64,
    pub prints: i64,
}

const CERT_COLS: &str =
    "id, number, cert_application_id, application_id, enterprise_id, district_unit, type_code,
                         content, digest, signature, key_id, status, replaces, replaced_by, status_reason,
                         status_changed_at, issued_by, issued_at, prints";

fn cert_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Certificate> {
    Ok(Certificate {
        id: r.get(0)?,
        number: r.get(1)?,
        cert_application_id: r.get(2)?,
        application_id: r.get(3)?,
        enterprise_id: r.get(4)?,
        district_unit: r.get(5)?,
        type_code: r.get(6)?,
        content: r.get(7)?,
        digest: r.get(8)?,
        signature: r.get(9)?,
        key_id: r.get(10)?,
        status: r.get(11)?,
        replaces: r.get(12)?,
        replaced_by: r.get(13)?,
        status_reason: r.get(14)?,
        status_changed_at: r.get(15)?,
        issued_by: r.get(16)?,
        issued_at: r.get(17)?,
        prints: r.get(18)?,
    })
}

pub fn certificate(c: &Connection, id: i64) -> Result<Option<Certificate>, StoreError> {
    Ok(c.query_row(&format!("SELECT {CERT_COLS} FROM certificates WHERE id = ?1"), [id], cert_row)
        .optional()?)
}

pub fn by_number(c: &Connection, number: &str) -> Result<Option<Certificate>, StoreError> {
    Ok(c.query_row(&format!("SELECT {CERT_COLS} FROM certificates WHERE number = ?1"), [number], cert_row)
        .optional()?)
}

pub fn number_of(c: &Connection, id: i64) -> Result<Option<String>, StoreError> {
    Ok(c.query_row("SELECT number FROM certificates WHERE id = ?1", [id], |r| r.get(0)).optional()?)
}

/// The number of a valid certificate of `type_code` for the application, other than `except`'s.
pub fn valid_certificate_for(
    c: &Connection,
    application_id: i64,
    type_code: &str,
    except_application: Option<i64>,
) -> Result<Option<String>, StoreError> {
    Ok(c.query_row(
        "SELECT number FROM certificates WHERE application_id = ?1 AND type_code = ?2 AND status = 'valid'
           AND (?3 IS NULL OR cert_application_id != ?3) LIMIT 1",
        params![application_id, type_code, except_application],
        |r| r.get(0),
    )
    .optional()?)
}

pub struct NewCertificate<'a> {
    pub number: &'a str,
    pub cert_application_id: i64,
    pub application_id: i64,
    pub enterprise_id: i64,
    pub district_unit: i64,
    pub type_code: &'a str,
    pub content: &'a str,
    pub digest: &'a str,
    pub signature: &'a str,
    pub key_id: &'a str,
    pub replaces: Option<i64>,
    pub issued_by: &'a str,
    pub issued_at: i64,
}

pub fn insert_certificate(tx: &Transaction<'_>, n: &NewCertificate<'_>) -> Result<i64, StoreError> {
    tx.execute(
        "INSERT INTO certificates (number, cert_application_id, application_id, enterprise_id, district_unit, type_code,
                                   content, digest, signature, key_id, status, replaces, issued_by, issued_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'valid', ?11, ?12, ?13)",
        params![
            n.number,
            n.cert_application_id,
            n.application_id,
            n.enterprise_id,
            n.district_unit,
            n.type_code,
            n.content,
            n.digest,
            n.signature,
            n.key_id,
            n.replaces,
            n.issued_by,
            n.issued_at
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

pub fn set_replaces(tx: &Transaction<'_>, id: i64, replaces: i64) -> Result<(), StoreError> {
    tx.execute("UPDATE certificates SET replaces = ?2 WHERE id = ?1", params![id, replaces])?;
    Ok(())
}

pub fn set_status(
    tx: &Transaction<'_>,
    id: i64,
    status: &str,
    replaced_by: Option<i64>,
    reason: &str,
    now: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE certificates SET status = ?2, replaced_by = ?3, status_reason = ?4, status_changed_at = ?5 WHERE id = ?1",
        params![id, status, replaced_by, reason, now],
    )?;
    Ok(())
}

/// Bumps the print count from `from`; false when another print got there first.
pub fn bump_prints(tx: &Transaction<'_>, id: i64, from: i64) -> Result<bool, StoreError> {
    Ok(tx.execute(
        "UPDATE certificates SET prints = prints + 1 WHERE id = ?1 AND prints = ?2",
        params![id, from],
    )? == 1)
}

pub fn insert_print(tx: &Transaction<'_>, id: i64, copy: i64, by: i64, now: i64) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO certificate_prints (certificate_id, copy, printed_by, printed_at) VALUES (?1, ?2, ?3, ?4)",
        params![id, copy, by, now],
    )?;
    Ok(())
}

/// The certificate as its API answers it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CertificateView {
    pub id: i64,
    pub number: String,
    #[serde(rename = "type")]
    pub type_code: String,
    pub certificate_application_id: i64,
    pub application_id: i64,
    /// `valid`, `revoked` or `replaced`.
    pub status: String,
    pub status_reason: Option<String>,
    pub replaces: Option<String>,
    pub replaced_by: Option<String>,
    /// The canonical content exactly as signed (a JSON text: parse it, never re-serialise it to check).
    pub content: String,
    /// SHA-256 hex of `content`'s UTF-8 bytes.
    pub digest: String,
    /// Ed25519 over `content`'s bytes, base64; the key is `key_id` in `/.well-known/certificate-keys.json`.
    pub signature: String,
    pub key_id: String,
    pub issued_by: String,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub issued_at: i64,
    pub prints: i64,
    pub sps_delivery: Option<super::outbox::Delivery>,
}

pub fn view(c: &Connection, cert: Certificate) -> Result<CertificateView, StoreError> {
    let replaces = cert.replaces.map(|id| number_of(c, id)).transpose()?.flatten();
    let replaced_by = cert.replaced_by.map(|id| number_of(c, id)).transpose()?.flatten();
    let sps_delivery = super::outbox::latest(c, cert.id)?;
    Ok(CertificateView {
        id: cert.id,
        number: cert.number,
        type_code: cert.type_code,
        certificate_application_id: cert.cert_application_id,
        application_id: cert.application_id,
        status: cert.status,
        status_reason: cert.status_reason,
        replaces,
        replaced_by,
        content: cert.content,
        digest: cert.digest,
        signature: cert.signature,
        key_id: cert.key_id,
        issued_by: cert.issued_by,
        issued_at: cert.issued_at,
        prints: cert.prints,
        sps_delivery,
    })
}

/// The certificate type `code`; a stored body that does not parse is an error naming the type.
pub fn certificate_type(c: &Connection, code: &str) -> Result<Option<CertificateType>, StoreError> {
    let body: Option<String> =
        c.query_row("SELECT body FROM certificate_types WHERE code = ?1", [code], |r| r.get(0)).optional()?;
    Ok(body
        .map(|b| crate::db::parse_stored(&b, "certificate_types.body", code).map_err(|e| e.at(0)))
        .transpose()?)
}

/// Every certificate type, by code.
pub fn certificate_types(c: &Connection) -> Result<Vec<CertificateType>, StoreError> {
    let mut stmt = c.prepare("SELECT code, body FROM certificate_types ORDER BY code")?;
    let rows = stmt.query_map([], |r| {
        let code: String = r.get(0)?;
        crate::db::stored_json(r, 1, "certificate_types.body", code)
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Queues the SPS message of `certificate_id` carrying `status` for delivery.
pub fn enqueue(tx: &Transaction<'_>, now: i64, certificate_id: i64, status: &str) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO sps_outbox (certificate_id, status, state, created_at, updated_at) VALUES (?1, ?2, 'pending', ?3, ?3)",
        params![certificate_id, status, now],
    )?;
    Ok(())
}

/// The certificate's latest SPS message and how it stands.
pub fn latest(c: &Connection, certificate_id: i64) -> Result<Option<Delivery>, StoreError> {
    Ok(c.query_row(
        "SELECT id, status, state, attempts, last_error, updated_at FROM sps_outbox WHERE certificate_id = ?1
         ORDER BY id DESC LIMIT 1",
        [certificate_id],
        |r| {
            Ok(Delivery {
                id: r.get(0)?,
                status: r.get(1)?,
                state: r.get(2)?,
                attempts: r.get(3)?,
                last_error: r.get(4)?,
                updated_at: r.get(5)?,
            })
        },
    )
    .optional()?)
}

/// Entries to deliver now, oldest first, at most `limit`: pending ones, and failed ones with fewer than
/// `max_attempts` attempts. `(outbox id, certificate id, status)`.
pub fn due(c: &Connection, max_attempts: i64, limit: i64) -> Result<Vec<(i64, i64, String)>, StoreError> {
    let mut stmt = c.prepare(
        "SELECT id, certificate_id, status FROM sps_outbox
         WHERE state = 'pending' OR (state = 'failed' AND attempts < ?1) ORDER BY id LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![max_attempts, limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One delivery attempt of entry `id`: `delivered`, or `failed` with the sender's `error`.
pub fn attempted(tx: &Transaction<'_>, now: i64, id: i64, error: Option<&str>) -> Result<(), StoreError> {
    let state = if error.is_none() { "delivered" } else { "failed" };
    tx.execute(
        "UPDATE sps_outbox SET state = ?2, attempts = attempts + 1, last_error = ?3, updated_at = ?4 WHERE id = ?1",
        params![id, state, error, now],
    )?;
    Ok(())
}
