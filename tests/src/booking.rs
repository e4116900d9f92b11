//! Shared by the booking tests and the `bench-booking` load generator: instructions to book (frozen fish
//! is always inspected on site, so each approved application yields one) and a site calendar.

use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::{Api, TestServer};

/// Yangshan Port, the demo site under Shanghai (2200) where ent1's goods are inspected.
pub const SITE: &str = "2201";
pub const DISTRICT: &str = "2200";
pub const ENT1_CODE: &str = "3101960001";

/// Monday 2026-11-30 00:00 UTC = 08:00 in Shanghai: the tests' "now".
pub const MONDAY: i64 = 1_795_996_800;
pub const HOUR: i64 = 3600;
pub const DAY: i64 = 24 * HOUR;

pub use crate::dispatch::frozen_fish_application;

/// A deadline far enough out for tests and the load generator that book days ahead: a slot after an
/// instruction's deadline is refused (`after_deadline`), which has its own test.
pub const LONG_DEADLINE: (&str, &str) = ("FIELDCHECK__WORKFLOW__INSPECTION_DEADLINE_HOURS", "2400");

/// Files and submits `n` applications as `enterprise` (concurrently), approves them as `reviewer1` in
/// batches, and answers the instructions' ids in application order.
pub async fn issue_instructions(server: &TestServer, enterprise: &Api, n: usize) -> Vec<i64> {
    let mut tasks = JoinSet::new();
    for k in 0..n {
        let api = enterprise.clone();
        tasks.spawn(async move {
            let (status, app) = api.post("/api/v1/applications", frozen_fish_application()).await;
            assert_eq!(status, 201, "create application: {app}");
            let id = app["id"].as_i64().expect("application id");
            let (status, body) = api.post(&format!("/api/v1/applications/{id}/submit"), json!({})).await;
            assert_eq!(status, 200, "submit: {body}");
            (k, id)
        });
    }
    let mut apps = tasks.join_all().await;
    apps.sort_unstable();
    let app_ids: Vec<i64> = apps.into_iter().map(|(_, id)| id).collect();
    let reviewer = server.login("reviewer1").await;
    for chunk in app_ids.chunks(200) {
        let (status, items) =
            reviewer.post("/api/v1/reviews", json!({"application_ids": chunk, "action": "approve"})).await;
        assert_eq!(status, 200, "batch approve: {items}");
        for item in items.as_array().expect("batch answer") {
            assert!(item["error"].is_null(), "approve failed: {item}");
        }
    }
    let mut by_app = std::collections::HashMap::new();
    let mut offset = 0;
    loop {
        let (status, page) = enterprise.get(&format!("/api/v1/instructions?limit=500&offset={offset}")).await;
        assert_eq!(status, 200, "instructions: {page}");
        let page = page.as_array().expect("instruction list").clone();
        for i in &page {
            by_app.insert(i["application_id"].as_i64().unwrap(), i["id"].as_i64().unwrap());
        }
        if page.len() < 500 {
            break;
        }
        offset += 500;
    }
    app_ids
        .iter()
        .map(|a| *by_app.get(a).unwrap_or_else(|| panic!("application {a} was not selected for inspection")))
        .collect()
}

/// Sets site [`SITE`]'s calendar as `supervisor1`: weekdays 09:00–17:00 Shanghai time in one-hour slots.
pub async fn set_calendar(server: &TestServer, capacity: i64, auto_confirm: bool, closed: &[&str]) -> Value {
    let supervisor = server.login("supervisor1").await;
    let day = json!(["09:00-17:00"]);
    let (status, cal) = supervisor
        .put(
            &format!("/api/v1/sites/{SITE}/calendar"),
            json!({
                "slot_minutes": 60,
                "capacity": capacity,
                "auto_confirm": auto_confirm,
                "hours": {"mon": day, "tue": day, "wed": day, "thu": day, "fri": day},
                "closed_days": closed.iter().map(|d| json!({"date": d, "reason": "test closure"})).collect::<Vec<_>>(),
            }),
        )
        .await;
    assert_eq!(status, 200, "set calendar: {cal}");
    cal
}

/// The first `n` slot starts (UTC, RFC 3339) from `from` (a local date) on, as availability lists them.
pub async fn slots(api: &Api, from: &str, to: &str, n: usize) -> Vec<String> {
    let (status, body) = api.get(&format!("/api/v1/sites/{SITE}/availability?from={from}&to={to}")).await;
    assert_eq!(status, 200, "availability: {body}");
    let starts: Vec<String> = body["slots"]
        .as_array()
        .expect("slots")
        .iter()
        .map(|s| s["slot"]["starts_at"].as_str().unwrap().to_string())
        .take(n)
        .collect();
    assert_eq!(starts.len(), n, "not enough slots from {from} to {to}: {body}");
    starts
}

/// One booking request's outcome and how long it took.
pub struct Attempt {
    pub status: u16,
    pub body: Value,
    pub latency: std::time::Duration,
}

/// Fires one booking request per instruction at once, instruction `k` asking for slot `k % slots.len()`.
pub async fn race(api: &Api, instructions: &[i64], slots: &[String]) -> Vec<Attempt> {
    let mut tasks = JoinSet::new();
    // Every task waits at the barrier, so the requests really leave together.
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(instructions.len()));
    for (k, id) in instructions.iter().enumerate() {
        let api = api.clone();
        let body = json!({"instruction_id": id, "starts_at": slots[k % slots.len()]});
        let barrier = barrier.clone();
        tasks.spawn(async move {
            barrier.wait().await;
            let started = std::time::Instant::now();
            let (status, body) = api.post("/api/v1/bookings", body).await;
            Attempt { status, body, latency: started.elapsed() }
        });
    }
    tasks.join_all().await
}
