//! SQL for `enterprise_registrations`. Storage only: answers rusqlite's errors, never HTTP.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{Contact, Registration, RegistrationDetails};
use crate::{db::StoreError, domain::RegistrationState, orgs::store as orgs_store};

const COLS: &str = "r.id, r.enterprise_id, e.customs_code, e.uscc, e.name, u.code, r.legal_person, r.contact_name,
                    r.contact_phone, r.contact_email, a.username, r.state, r.opinion, r.submitted_at, r.decided_at,
                    r.legal_user_id";
const FROM: &str = "enterprise_registrations r JOIN enterprises e ON e.id = r.enterprise_id
                    JOIN users a ON a.id = r.legal_user_id LEFT JOIN customs_units u ON u.id = e.unit_id";

fn row(r: &Row<'_>) -> rusqlite::Result<Registration> {
    Ok(Registration {
        id: r.get(0)?,
        enterprise_id: r.get(1)?,
        customs_code: r.get(2)?,
        uscc: r.get(3)?,
        name: r.get(4)?,
        unit_code: r.get(5)?,
        legal_person: r.get(6)?,
        contact: Contact { name: r.get(7)?, phone: r.get(8)?, email: r.get(9)? },
        username: r.get(10)?,
        state: r.get(11)?,
        opinion: r.get(12)?,
        submitted_at: r.get(13)?,
        decided_at: r.get(14)?,
        legal_user_id: r.get(15)?,
    })
}

pub fn get(c: &Connection, id: i64) -> Result<Option<Registration>, StoreError> {
    Ok(c.query_row(&format!("SELECT {COLS} FROM {FROM} WHERE r.id = ?1"), [id], row).optional()?)
}

pub fn of_enterprise(c: &Connection, enterprise_id: i64) -> Result<Option<Registration>, StoreError> {
    Ok(c.query_row(&format!("SELECT {COLS} FROM {FROM} WHERE r.enterprise_id = ?1"), [enterprise_id], row)
        .optional()?)
}

/// Registrations in `state` (all when `None`) after id `after`, oldest first.
pub fn list(
    c: &Connection,
    state: Option<RegistrationState>,
    after: i64,
    limit: i64,
) -> Result<Vec<Registration>, StoreError> {
    let mut stmt = c.prepare(&format!(
        "SELECT {COLS} FROM {FROM} WHERE r.id > ?1 AND (?2 IS NULL OR r.state = ?2) ORDER BY r.id LIMIT ?3"
    ))?;
    Ok(stmt.query_map(params![after, state, limit], row)?.collect::<rusqlite::Result<_>>()?)
}

/// How many registrations came from `client` since `since`, and the earliest of them.
pub fn recent_from(c: &Connection, client: &str, since: i64) -> Result<(i64, Option<i64>), StoreError> {
    Ok(c.query_row(
        "SELECT count(*), min(submitted_at) FROM enterprise_registrations WHERE client_addr = ?1 AND submitted_at > ?2",
        params![client, since],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}

pub struct NewRow<'a> {
    pub enterprise_id: i64,
    pub legal_user_id: i64,
    pub legal_person: &'a str,
    pub contact: &'a Contact,
    pub client: &'a str,
}

pub fn insert(c: &Connection, n: &NewRow<'_>, now: i64) -> Result<i64, StoreError> {
    c.execute(
        "INSERT INTO enterprise_registrations (enterprise_id, legal_user_id, legal_person, contact_name, contact_phone,
                                               contact_email, state, client_addr, submitted_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?8)",
        params![
            n.enterprise_id,
            n.legal_user_id,
            n.legal_person,
            n.contact.name,
            n.contact.phone,
            n.contact.email,
            n.client,
            now
        ],
    )?;
    Ok(c.last_insert_rowid())
}

/// The amended details of a returned registration; it is pending again.
pub fn resubmit(
    c: &Connection,
    id: i64,
    legal_person: &str,
    contact: &Contact,
    now: i64,
) -> Result<(), StoreError> {
    c.execute(
        "UPDATE enterprise_registrations SET legal_person = ?1, contact_name = ?2, contact_phone = ?3,
                contact_email = ?4, state = 'pending', submitted_at = ?5, decided_by = NULL, decided_at = NULL
         WHERE id = ?6",
        params![legal_person, contact.name, contact.phone, contact.email, now, id],
    )?;
    Ok(())
}

pub fn decide(
    c: &Connection,
    id: i64,
    state: RegistrationState,
    opinion: Option<&str>,
    by: i64,
    now: i64,
) -> Result<(), StoreError> {
    c.execute(
        "UPDATE enterprise_registrations SET state = ?1, opinion = ?2, decided_by = ?3, decided_at = ?4 WHERE id = ?5",
        params![state, opinion, by, now, id],
    )?;
    Ok(())
}

/// The enterprise's identity as a returned registration amends it, through the orgs store (the
/// `enterprises` table is theirs). Any constraint it breaks (another enterprise's codes) is a
/// [`StoreError::Conflict`].
pub fn amend_enterprise(
    c: &Connection,
    enterprise_id: i64,
    d: &RegistrationDetails,
    unit_id: i64,
) -> Result<(), StoreError> {
    orgs_store::update_enterprise_identity(
        c,
        enterprise_id,
        d.customs_code.as_str(),
        d.uscc.as_str(),
        &d.name,
        unit_id,
    )
    .map_err(|e| match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
            StoreError::Conflict("the enterprise")
        }
        other => other.into(),
    })
}
