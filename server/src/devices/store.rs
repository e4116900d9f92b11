//! The devices' tables (`devices`, `device_actors`): every SQL statement of the module, answering
//! [`StoreError`] (not found, already exists, other), never HTTP.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::Device;
use crate::{db::StoreError, domain::UserStatus};

const COLS: &str = "id, officer_id, name, actor_id, status, registered_at, last_seen_at";

fn row(r: &Row<'_>) -> rusqlite::Result<Device> {
    Ok(Device {
        id: r.get(0)?,
        officer_id: r.get(1)?,
        name: r.get(2)?,
        actor_id: r.get(3)?,
        status: r.get(4)?,
        registered_at: r.get(5)?,
        last_seen_at: r.get(6)?,
    })
}

pub fn get(c: &Connection, id: &str) -> Result<Option<Device>, StoreError> {
    Ok(c.prepare_cached(&format!("SELECT {COLS} FROM devices WHERE id = ?1"))?
        .query_row([id], row)
        .optional()?)
}

/// The device, or [`StoreError::NotFound`].
pub fn existing(c: &Connection, id: &str) -> Result<Device, StoreError> {
    get(c, id)?.ok_or(StoreError::NotFound("the device"))
}

pub fn all(c: &Connection) -> Result<Vec<Device>, StoreError> {
    let mut stmt = c.prepare(&format!("SELECT {COLS} FROM devices ORDER BY registered_at"))?;
    Ok(stmt.query_map([], row)?.collect::<Result<_, _>>()?)
}

pub fn of_officer(c: &Connection, officer_id: i64) -> Result<Vec<Device>, StoreError> {
    let mut stmt =
        c.prepare(&format!("SELECT {COLS} FROM devices WHERE officer_id = ?1 ORDER BY registered_at"))?;
    Ok(stmt.query_map([officer_id], row)?.collect::<Result<_, _>>()?)
}

/// Devices of officers anywhere in the subtree of `unit`.
pub fn in_unit_subtree(c: &Connection, unit: i64) -> Result<Vec<Device>, StoreError> {
    let mut stmt = c.prepare(&format!(
        "SELECT {} FROM devices d JOIN users u ON u.id = d.officer_id WHERE {} ORDER BY d.registered_at",
        COLS.split(", ").map(|c| format!("d.{c}")).collect::<Vec<_>>().join(", "),
        crate::db::scope::unit_in_subtree("u.unit_id")
    ))?;
    Ok(stmt.query_map([unit], row)?.collect::<Result<_, _>>()?)
}

/// A new device with its first actor; a device id already taken is a conflict.
pub fn insert(
    tx: &Transaction<'_>,
    now: i64,
    id: &str,
    officer_id: i64,
    name: &str,
    actor_id: &str,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO devices (id, officer_id, name, actor_id, registered_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![id, officer_id, name, actor_id, now])
    .map_err(|e| StoreError::unique(e, "the device"))?;
    tx.prepare_cached("INSERT INTO device_actors (actor_id, device_id, issued_at) VALUES (?1, ?2, ?3)")?
        .execute(params![actor_id, id, now])?;
    Ok(())
}

/// Retires the device's current actor and makes `actor_id` its actor.
pub fn replace_actor(
    tx: &Transaction<'_>,
    now: i64,
    device_id: &str,
    actor_id: &str,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE device_actors SET retired_at = ?1 WHERE device_id = ?2 AND retired_at IS NULL",
    )?
    .execute(params![now, device_id])?;
    tx.prepare_cached("INSERT INTO device_actors (actor_id, device_id, issued_at) VALUES (?1, ?2, ?3)")?
        .execute(params![actor_id, device_id, now])?;
    tx.prepare_cached("UPDATE devices SET actor_id = ?1 WHERE id = ?2")?
        .execute(params![actor_id, device_id])?;
    Ok(())
}

/// When `actor` (hex) was retired from `device_id`, if it is a retired actor of that device.
pub fn retired_at(c: &Connection, device_id: &str, actor: &str) -> Result<Option<i64>, StoreError> {
    Ok(c.prepare_cached("SELECT retired_at FROM device_actors WHERE device_id = ?1 AND actor_id = ?2 AND retired_at IS NOT NULL")?.query_row(params![device_id, actor],
        |r| r.get(0),
    )
    .optional()?)
}

/// The device synced at `now`.
pub fn seen(tx: &Transaction<'_>, device_id: &str, now: i64) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE devices SET last_seen_at = ?1 WHERE id = ?2")?
        .execute(params![now, device_id])?;
    Ok(())
}

/// What the device said it still holds unsent (`pending` of a batch sync, or the WebSocket peer metadata),
/// kept with the time it said so.
pub fn pending_reported(
    tx: &Transaction<'_>,
    device_id: &str,
    pending: fieldcheck_sync::batch::Pending,
    now: i64,
) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE devices SET pending_changes = ?1, pending_photos = ?2, pending_reported_at = ?3 WHERE id = ?4")?.execute(params![pending.changes, pending.photos, now, device_id],
    )?;
    Ok(())
}

pub fn set_status(tx: &Transaction<'_>, device_id: &str, status: UserStatus) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE devices SET status = ?1 WHERE id = ?2")?.execute(params![status, device_id])?;
    Ok(())
}
