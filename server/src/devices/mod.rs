//! Registered handhelds: each is bound to one officer and carries the automerge actor id the server
//! assigned it, so every change in a record document can be traced to a device and an officer.
//!
//! # Layout
//! - this file: `Device`, registration, claims, status changes and who may use a device (the rules).
//! - [`store`]: the module's SQL (`devices`, `device_actors`), answering `db::StoreError`.
//! - [`error`]: `DeviceError`, why a step was refused (mapped to HTTP in `crate::error`).
//! - [`http`]: the handlers.

pub mod error;
pub mod http;
pub mod store;

use crate::db::{Conn, Tx};
use serde::Serialize;
use serde_json::json;

use crate::{
    audit::{self, Actor},
    auth::store::revoke_device_sessions,
    domain::{UserStatus, time::rfc3339},
};
use error::DeviceError;

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

pub use store::{all, get, in_unit_subtree, of_officer, pending_reported, retired_at, seen};

/// 16 random bytes, hex: the form automerge's `ActorId` takes.
pub fn new_actor_id() -> Result<String, DeviceError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| DeviceError::Internal(anyhow::anyhow!("no randomness: {e}")))?;
    Ok(hex::encode(bytes))
}

pub fn register(
    tx: &Tx<'_>,
    now: i64,
    officer_id: i64,
    name: &str,
    id: Option<&str>,
) -> Result<Device, DeviceError> {
    let n = name.trim().chars().count();
    if n == 0 || n > 100 {
        return Err(DeviceError::InvalidName);
    }
    let id = id.map(str::to_string).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let actor_id = new_actor_id()?;
    store::insert(tx, now, &id, officer_id, name.trim(), &actor_id)?;
    audit::append(
        tx,
        now,
        &Actor::User(officer_id),
        audit::Action::DeviceRegister,
        &audit::Subject::Device(&id),
        json!({"actor_id": actor_id, "name": name}),
    )?;
    Ok(store::existing(tx, &id)?)
}

/// A new registration of an existing device (a second local store, a reinstalled app): the device
/// gets a new automerge actor and the old one is retired, so two copies of the device can never write
/// as one actor; every session of the device ends (the other copy's tokens and live connection).
/// Only the device's own officer claims it, and only while it is active.
pub fn claim(tx: &Tx<'_>, now: i64, officer_id: i64, device_id: &str) -> Result<Device, DeviceError> {
    check_usable_by(tx, device_id, officer_id).map_err(|_| DeviceError::NotFound("the device"))?;
    let device = store::existing(tx, device_id)?;
    let actor_id = new_actor_id()?;
    store::replace_actor(tx, now, device_id, &actor_id)?;
    let ended = revoke_device_sessions(tx, device_id, now, "device registered again")?;
    audit::append(
        tx,
        now,
        &Actor::User(officer_id),
        audit::Action::DeviceClaim,
        &audit::Subject::Device(device_id),
        json!({"retired_actor_id": device.actor_id, "actor_id": actor_id, "sessions_ended": ended}),
    )?;
    Ok(store::existing(tx, device_id)?)
}

/// A device may open a session only for its own officer and only while active.
pub fn check_usable_by(c: &Conn, device_id: &str, user_id: i64) -> Result<(), DeviceError> {
    let device = get(c, device_id)?.filter(|d| d.officer_id == user_id).ok_or(DeviceError::NotYours)?;
    match device.status {
        UserStatus::Active => Ok(()),
        UserStatus::Frozen => Err(DeviceError::Frozen),
        UserStatus::Lost => Err(DeviceError::Lost),
    }
}

/// Changes a device's status; freezing or losing it ends its sessions in the same transaction.
pub fn set_status(
    tx: &Tx<'_>,
    now: i64,
    actor: &Actor,
    device_id: &str,
    status: UserStatus,
    reason: &str,
) -> Result<Device, DeviceError> {
    let device = store::existing(tx, device_id)?;
    if device.status == UserStatus::Lost && status != UserStatus::Lost {
        return Err(DeviceError::StaysLost);
    }
    store::set_status(tx, device_id, status)?;
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
        &audit::Subject::Device(device_id),
        json!({"from": device.status, "to": status, "reason": reason, "sessions_ended": ended}),
    )?;
    Ok(store::existing(tx, device_id)?)
}
