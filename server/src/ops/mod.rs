//! Operations: health, readiness, metrics, the allocator's set-up, and the test-only clock.

pub mod allocator;
pub mod metrics;

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    domain::time::rfc3339,
    error::{ApiError, ApiJson},
    state::AppState,
};

#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "the process is up")))]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready: the database answers and holds the reference data the workflow needs. Not ready says why.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "the database answers and the reference data is loaded"),
        (status = 503, description = "it does not, or reference data is missing; `reason` says which")))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match state.db.read(crate::reference::import::missing).await {
        Ok(missing) if missing.is_empty() => (StatusCode::OK, Json(json!({"status": "ready"}))),
        Ok(missing) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "not_ready",
                "reason": format!(
                    "reference data is missing ({}): load it with `fieldcheck admin import-reference DIR`",
                    missing.join(", ")
                ),
                "missing": missing,
            })),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "not_ready", "reason": "the database does not answer"})),
            )
        }
    }
}

#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    use std::{fmt::Write as _, sync::atomic::Ordering};
    let mut text = state.metrics.render();
    // The writer's own counters live in `Db` (it runs without the registry); written in the same format.
    let counts = state.db.writer_counts();
    for (name, help, value) in [
        ("fieldcheck_db_writes_total", "Write transactions run by the group-commit writer", &counts.writes),
        ("fieldcheck_db_commits_total", "Commits (fsyncs) of groups of writes", &counts.commits),
    ] {
        let _ = write!(
            text,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
            value.load(Ordering::Relaxed)
        );
    }
    let engine = state.sync_engine.counts();
    for (name, help, value) in [
        (
            "fieldcheck_sync_cache_hits_total",
            "Sync rounds that found their document in the engine's cache",
            engine.hits,
        ),
        (
            "fieldcheck_sync_cache_misses_total",
            "Sync rounds that read their document from SQLite",
            engine.misses,
        ),
        (
            "fieldcheck_sync_cache_stale_total",
            "Cache misses that found a copy some write had made stale",
            engine.stale,
        ),
        (
            "fieldcheck_sync_redone_total",
            "Messages run again inside the writer because something moved",
            engine.redone,
        ),
        (
            "fieldcheck_sync_rounds_without_write_total",
            "Sync rounds that needed no write at all",
            engine.unwritten,
        ),
    ] {
        let _ = write!(text, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n");
    }
    let _ = write!(
        text,
        "# HELP fieldcheck_sync_cache_bytes Bytes the cached documents are charged\n# TYPE fieldcheck_sync_cache_bytes gauge\nfieldcheck_sync_cache_bytes {}\n",
        engine.cached_bytes
    );
    let _ = write!(
        text,
        "# HELP fieldcheck_sync_waiting Batch syncs waiting in line for a slot\n# TYPE fieldcheck_sync_waiting gauge\nfieldcheck_sync_waiting {}\n",
        state.sync_admission.waiting()
    );
    let _ = write!(
        text,
        "# HELP fieldcheck_db_write_queue Writes waiting for the writer\n# TYPE fieldcheck_db_write_queue gauge\nfieldcheck_db_write_queue {}\n",
        state.db.write_queue()
    );
    ([("content-type", "text/plain; version=0.0.4")], text)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetClock {
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub now: i64,
}

/// Moves the manual clock. Routed only when `testing.manual_clock` is on.
#[utoipa::path(put, path = "/api/v1/testing/clock", tag = "operations", request_body = SetClock,
    responses((status = 200, description = "the clock now reads `now`")))]
pub async fn set_clock(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<SetClock>,
) -> Result<Json<Value>, ApiError> {
    let to = jiff::Timestamp::from_millisecond(req.now)
        .map_err(|e| ApiError::bad_request("invalid_time", e.to_string()))?;
    if !state.clock.set(to) {
        return Err(ApiError::not_found("the manual clock"));
    }
    Ok(Json(json!({"now": to.to_string()})))
}
