//! The rows the monitoring lists answer (officers' load, handhelds, open conflicts, the overdue table, the
//! map's sites), as the API shows them: built by [`super::store::figures`], completed by
//! [`super::figures`], which re-exports them. A leaf below both, so neither imports the other back.

use serde::Serialize;

use super::OverdueReason;
use crate::domain::time::rfc3339;

#[derive(Debug, Clone)]
pub struct UnitName {
    pub code: String,
    pub name: String,
}

/// A handheld as a supervisor sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HandheldSeen {
    pub device_id: String,
    pub name: String,
    pub status: String,
    /// Its last sync; null if it never synced.
    #[serde(with = "rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_seen_at: Option<i64>,
    /// What it said it still holds unsent at `pending_reported_at`; null when it never said (an older
    /// handheld, or a WebSocket client without the peer metadata).
    #[serde(flatten)]
    pub pending: PendingReport,
}

/// A handheld's own count of edits and photos not yet on the server, and when it gave it.
#[derive(Debug, Clone, Copy, Default, Serialize, utoipa::ToSchema)]
pub struct PendingReport {
    pub pending_changes: Option<i64>,
    pub pending_photos: Option<i64>,
    #[serde(with = "rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub pending_reported_at: Option<i64>,
}

/// An officer a supervisor may see (and, when active, assign), with the work they carry.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OfficerLoad {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub unit_code: String,
    /// `active` officers may be assigned.
    pub status: String,
    /// Instructions assigned and not started.
    pub assigned: i64,
    /// Being inspected (`in_progress`).
    pub in_progress: i64,
    /// Results waiting for approval.
    pub submitted: i64,
    /// Approved results.
    pub done: i64,
    pub overdue: i64,
    /// Photos the officer's open records (not yet approved, cancelled or released) name, not withdrawn,
    /// that have not reached the server yet. A record is only submitted with all its photos present.
    pub photos_missing: i64,
    /// Edits still pending on the officer's handhelds, as they last reported it (summed); null when none
    /// of them ever reported (see each handheld's `pending_reported_at` for how current it is).
    pub pending_changes: Option<i64>,
    /// Photos still waiting on the officer's handhelds for upload, as they last reported it.
    pub pending_photos: Option<i64>,
    pub handhelds: Vec<HandheldSeen>,
}

/// An active handheld that has not synced for the asked number of hours (or never).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SilentHandheld {
    pub device_id: String,
    pub name: String,
    pub officer: String,
    #[serde(with = "rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_seen_at: Option<i64>,
    /// What it said it still held unsent when it last reported (null: never said).
    #[serde(flatten)]
    pub pending: PendingReport,
}

/// A record with open conflicts: the instruction cannot be submitted until someone resolves them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OpenConflict {
    pub instruction_id: i64,
    pub inspection_no: String,
    pub site_code: String,
    pub state: String,
    pub open_conflicts: i64,
    /// Every conflicting value with the officer who wrote it (as `GET …/record` shows them).
    pub conflicts: serde_json::Value,
}

/// An overdue instruction, with every rule it breaks.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Overdue {
    pub instruction_id: i64,
    pub inspection_no: String,
    pub site_code: String,
    pub state: String,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub deadline: i64,
    #[serde(with = "rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub due_at: Option<i64>,
    pub reasons: Vec<OverdueReason>,
    pub officers: Vec<String>,
}

/// A site's known location, for the map.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SitePoint {
    pub code: String,
    pub name: String,
    pub latitude: f64,
    pub longitude: f64,
}
