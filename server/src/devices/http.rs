//! Handheld registration and status.

use axum::{Json, extract::State, http::StatusCode};
use serde::Deserialize;

use super::Device;
use crate::{
    audit::Actor,
    auth::Caller,
    domain::{Line, Paragraph, Role, UserStatus},
    error::{ApiError, ApiJson, ApiPath, ErrorBody, invalid},
    orgs::store as orgs_store,
    state::AppState,
};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterDevice {
    /// A name the officer recognises, e.g. "Zhang's handheld".
    pub name: Line<100>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceStatusChange {
    pub status: UserStatus,
    pub reason: Paragraph<2000>,
}

#[utoipa::path(post, path = "/api/v1/devices", tag = "devices", request_body = RegisterDevice,
    security(("bearer" = [])),
    responses((status = 201, body = Device), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn register(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<RegisterDevice>,
) -> Result<(StatusCode, Json<Device>), ApiError> {
    let now = state.now_ms();
    let device = state.db.write(move |tx| super::register(tx, now, caller.user_id, &req.name, None)).await?;
    Ok((StatusCode::CREATED, Json(device)))
}

/// Registers this copy of the handheld as the device: a new actor for it, the old copy retired.
#[utoipa::path(post, path = "/api/v1/devices/{id}/claim", tag = "devices", security(("bearer" = [])),
    params(("id" = String, Path, description = "device id")),
    responses((status = 200, body = Device), (status = 404, body = ErrorBody)))]
pub async fn claim(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Device>, ApiError> {
    let now = state.now_ms();
    let device_id = id.clone();
    let device = state.db.write(move |tx| super::claim(tx, now, caller.user_id, &id)).await?;
    // The retired copy's live connection ends with its sessions.
    state.sync_peers.disconnect(&device_id, "device_claimed", "this device was registered again elsewhere");
    Ok(Json(device))
}

#[utoipa::path(get, path = "/api/v1/devices", tag = "devices", security(("bearer" = [])),
    responses((status = 200, body = Vec<Device>)))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<Device>>, ApiError> {
    let devices = state
        .db
        .read(move |c| -> Result<_, ApiError> {
            Ok(match caller.role {
                Role::Admin => super::all(c)?,
                Role::Supervisor => super::in_unit_subtree(c, caller.unit()?)?,
                _ => super::of_officer(c, caller.user_id)?,
            })
        })
        .await?;
    Ok(Json(devices))
}

#[utoipa::path(post, path = "/api/v1/devices/{id}/status", tag = "devices", request_body = DeviceStatusChange,
    security(("bearer" = [])), params(("id" = String, Path, description = "device id")),
    responses((status = 200, body = Device), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn set_status(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<DeviceStatusChange>,
) -> Result<Json<Device>, ApiError> {
    if req.reason.trim().is_empty() {
        return Err(invalid("reason", "missing_reason", "say why the device status changes"));
    }
    let now = state.now_ms();
    let device = state
        .db
        .write(move |tx| {
            let device = super::store::existing(tx, &id)?;
            match caller.role {
                Role::Admin => {}
                Role::Supervisor => {
                    let officer = orgs_store::user(tx, device.officer_id)?;
                    let inside = match officer.and_then(|o| o.unit_id) {
                        Some(unit) => orgs_store::in_subtree(tx, caller.unit()?, unit)?,
                        None => false,
                    };
                    if !inside {
                        return Err(ApiError::not_found("the device"));
                    }
                }
                Role::Officer if device.officer_id == caller.user_id => {
                    if req.status != UserStatus::Lost {
                        return Err(ApiError::forbidden(
                            "an officer can report their own device lost; freezing and unfreezing is for a supervisor",
                        ));
                    }
                }
                _ => return Err(ApiError::not_found("the device")),
            }
            Ok(super::set_status(tx, now, &Actor::User(caller.user_id), &id, req.status, &req.reason)?)
        })
        .await?;
    if device.status != UserStatus::Active {
        // Its sessions ended in the transaction; its live sync connection ends now, not at its next check.
        state.sync_peers.disconnect(
            &device.id,
            "device_status",
            &format!("this device is {}", device.status),
        );
    }
    Ok(Json(device))
}
