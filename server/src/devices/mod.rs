//! Registered handhelds: each is bound to one officer and carries the automerge actor id the server
//! assigned it, so every change in a record document can be traced to a device and an officer.

pub mod http;

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use serde::Serialize;
use serde_json::json;

use crate::{
    audit::{self, Actor},
    auth::store::revoke_device_sessions,
    domain::{UserStatus, time::rfc3339},
    error::ApiError,
};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Device {
    pub id: String,
    pub officer_id: i64,
    pub name: String,
    /// Hex automerge actor id: the handheld must write its changes as this actor.
    pub actor_id: String,
    pub status: UserStatus,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub registered_at: i64,
    #[serde(with = "rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_seen_at: Option<i64>,
}

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

pub fn get(c: &Connection, id: &str) -> rusqlite::Result<Option<Device>> {
    c.query_row(&format!("SELECT {COLS} FROM devices WHERE id = ?1"), [id], row).optional()
}

pub fn all(c: &Connection) -> rusqlite::Result<Vec<Device>> {
    let mut stmt = c.prepare(&format!("SELECT {COLS} FROM devices ORDER BY registered_at"))?;
    stmt.query_map([], row)?.collect()
}

pub fn of_officer(c: &Connection, officer_id: i64) -> rusqlite::Result<Vec<Device>> {
    let mut stmt =
        c.prepare(&format!("SELECT {COLS} FROM devices WHERE officer_id = ?1 ORDER BY registered_at"))?;
    stmt.query_map([officer_id], row)?.collect()
}

/// Devices of officers anywhere in the subtree of `unit`.
pub fn in_unit_subtree(c: &Connection, unit: i64) -> rusqlite::Result<Vec<Device>> {
    let mut stmt = c.prepare(&format!(
        "SELECT {} FROM devices d JOIN users u ON u.id = d.officer_id WHERE {} ORDER BY d.registered_at",
        COLS.split(", ").map(|c| format!("d.{c}")).collect::<Vec<_>>().join(", "),
        crate::db::scope::unit_in_subtree("u.unit_id")
    ))?;
    stmt.query_map([unit], row)?.collect()
}

/// 16 random bytes, hex: the form automerge's `ActorId` takes.
pub fn new_actor_id() -> Result<String, ApiError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::Internal(anyhow::anyhow!("no randomness: {e}")))?;
    Ok(hex::encode(bytes))
}

pub fn register(
    tx: &Transaction<'_>,
    now: i64,
    officer_id: i64,
    name: &str,
    id: Option<&str>,
) -> Result<Device, ApiError> {
    let n = name.trim().chars().count();
    if n == 0 || n > 100 {
        return Err(crate::error::invalid("name", "invalid_text", "`name` must have 1 to 100 characters"));
    }
    let id = id.map(str::to_string).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let actor_id = new_actor_id()?;
    tx.execute(
        "INSERT INTO devices (id, officer_id, name, actor_id, registered_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, officer_id, name.trim(), actor_id, now],
    )?;
    tx.execute(
        "INSERT INTO device_actors (actor_id, device_id, issued_at) VALUES (?1, ?2, ?3)",
        params![actor_id, id, now],
    )?;
    audit::append(
        tx,
        now,
        &Actor::User(officer_id),
        audit::Action::DeviceRegister,
        &format!("device:{id}"),
        json!({"actor_id": actor_id, "name": name}),
    )?;
    get(tx, &id)?.ok_or_else(|| ApiError::not_found("the device"))
}

/// A new registration of an existing device (a second local store, a reinstalled app): the device
/// gets a new automerge actor and the old one is retired, so two copies of the device can never write
/// as one actor; every session of the device ends (the other copy's tokens and live connection).
/// Only the device's own officer claims it, and only while it is active.
pub fn claim(tx: &Transaction<'_>, now: i64, officer_id: i64, device_id: &str) -> Result<Device, ApiError> {
    check_usable_by(tx, device_id, officer_id).map_err(|_| ApiError::not_found("the device"))?;
    let device = get(tx, device_id)?.ok_or_else(|| ApiError::not_found("the device"))?;
    let actor_id = new_actor_id()?;
    tx.execute(
        "UPDATE device_actors SET retired_at = ?1 WHERE device_id = ?2 AND retired_at IS NULL",
        params![now, device_id],
    )?;
    tx.execute(
        "INSERT INTO device_actors (actor_id, device_id, issued_at) VALUES (?1, ?2, ?3)",
        params![actor_id, device_id, now],
    )?;
    tx.execute("UPDATE devices SET actor_id = ?1 WHERE id = ?2", params![actor_id, device_id])?;
    let ended = revoke_device_sessions(tx, device_id, now, "device registered again")?;
    audit::append(
        tx,
        now,
        &Actor::User(officer_id),
        audit::Action::DeviceClaim,
        &format!("device:{device_id}"),
        json!({"retired_actor_id": device.actor_id, "actor_id": actor_id, "sessions_ended": ended}),
    )?;
    get(tx, device_id)?.ok_or_else(|| ApiError::not_found("the device"))
}

/// When `actor` (hex) was retired from `device_id`, if it is a retired actor of that device.
pub fn retired_at(c: &Connection, device_id: &str, actor: &str) -> rusqlite::Result<Option<i64>> {
    c.query_row(
        "SELECT retired_at FROM device_actors WHERE device_id = ?1 AND actor_id = ?2 AND retired_at IS NOT NULL",
        params![device_id, actor],
        |r| r.get(0),
    )
    .optional()
}

/// A device may open a session only for its own officer and only while active.
pub fn check_usable_by(c: &Connection, device_id: &str, user_id: i64) -> Result<(), ApiError> {
    let device = get(c, device_id)?.filter(|d| d.officer_id == user_id).ok_or_else(|| {
        ApiError::unauthorized("unknown_device", "this device is not registered to you; register it first")
    })?;
    match device.status {
        UserStatus::Active => Ok(()),
        UserStatus::Frozen => Err(ApiError::unauthorized("device_frozen", "this device is frozen")),
        UserStatus::Lost => Err(ApiError::unauthorized("device_lost", "this device was reported lost")),
    }
}

/// The device synced at `now` (supervisors see handhelds that have not synced for hours).
pub fn seen(tx: &Transaction<'_>, device_id: &str, now: i64) -> rusqlite::Result<()> {
    tx.execute("UPDATE devices SET last_seen_at = ?1 WHERE id = ?2", params![now, device_id])?;
    Ok(())
}

/// Changes a device's status; freezing or losing it ends its sessions in the same transaction.
pub fn set_status(
    tx: &Transaction<'_>,
    now: i64,
    actor: &Actor,
    device_id: &str,
    status: UserStatus,
    reason: &str,
) -> Result<Device, ApiError> {
    let device = get(tx, device_id)?.ok_or_else(|| ApiError::not_found("the device"))?;
    if device.status == UserStatus::Lost && status != UserStatus::Lost {
        return Err(ApiError::conflict(
            "device_lost",
            "a lost device stays lost; register the replacement handheld as a new device",
        ));
    }
    tx.execute("UPDATE devices SET status = ?1 WHERE id = ?2", params![status, device_id])?;
    let ended = if status == UserStatus::Active {
        0
    } else {
        revoke_device_sessions(tx, device_id, now, &format!("device {status}"))?
    };
    audit::append(
        tx,
        now,
        actor,
        audit::Action::DeviceStatus,
        &format!("device:{device_id}"),
        json!({"from": device.status, "to": status, "reason": reason, "sessions_ended": ended}),
    )?;
    get(tx, device_id)?.ok_or_else(|| ApiError::not_found("the device"))
}
