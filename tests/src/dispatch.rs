//! The steps most end-to-end tests start from, written once: the always-inspected application (frozen
//! fish, HS 0303: a rule selects it for on-site inspection every time), a demo user's id, and an
//! instruction dispatched the way production does it — `ent1-operator` files and submits, `reviewer1`
//! approves, `supervisor1` assigns the officers.

use serde_json::{Value, json};

use crate::{
    TestServer,
    booking::{DISTRICT, ENT1_CODE, SITE},
};

/// An export of frozen salmon by ent1 from Yangshan Port: always inspected on site.
pub fn frozen_fish_application() -> Value {
    json!({
        "direction": "export",
        "district_code": DISTRICT,
        "site_code": SITE,
        "applicant_code": ENT1_CODE,
        "consignor_code": ENT1_CODE,
        "consignee_name": "Tokyo Fish Market Co.",
        "destination_country": "JP",
        "goods": [{
            "hs_code": "0303110000",
            "name": "Frozen sockeye salmon",
            "quantity": 1000.0,
            "unit": "kg",
            "net_weight_kg": 1000.0,
            "value_usd": 8000.0,
            "origin_country": "CN"
        }]
    })
}

/// The id of demo user `username`, as they see themselves.
pub async fn user_id(server: &TestServer, username: &str) -> i64 {
    let (status, me) = server.login(username).await.get("/api/v1/me").await;
    assert_eq!(status, 200, "{me}");
    me["user"]["id"].as_i64().expect("user id")
}

/// Files, approves and dispatches one frozen-fish instruction to `officers` (demo usernames); answers its id.
pub async fn dispatched(server: &TestServer, officers: &[&str]) -> i64 {
    dispatched_with(server, officers, frozen_fish_application()).await
}

/// [`dispatched`] for an application of `content` (an on-site one: its goods must be always inspected).
pub async fn dispatched_with(server: &TestServer, officers: &[&str], content: Value) -> i64 {
    let operator = server.login("ent1-operator").await;
    let (status, app) = operator.post("/api/v1/applications", content).await;
    assert_eq!(status, 201, "create application: {app}");
    let app_id = app["id"].as_i64().unwrap();
    let (status, body) = operator.post(&format!("/api/v1/applications/{app_id}/submit"), json!({})).await;
    assert_eq!(status, 200, "submit: {body}");
    let reviewer = server.login("reviewer1").await;
    let (status, body) =
        reviewer.post(&format!("/api/v1/applications/{app_id}/review"), json!({"action": "approve"})).await;
    assert_eq!(status, 200, "approve: {body}");
    assert_eq!(body["disposition"], "on_site", "frozen fish is always inspected on site: {body}");
    let supervisor = server.login("supervisor1").await;
    let (status, list) = supervisor.get("/api/v1/instructions").await;
    assert_eq!(status, 200, "{list}");
    let instruction = list
        .as_array()
        .expect("instruction list")
        .iter()
        .find(|i| i["application_id"] == app_id)
        .unwrap_or_else(|| panic!("no instruction for application {app_id}: {list}"))["id"]
        .as_i64()
        .unwrap();
    let mut ids = Vec::new();
    for officer in officers {
        ids.push(user_id(server, officer).await);
    }
    let (status, body) = supervisor
        .post(&format!("/api/v1/instructions/{instruction}/assign"), json!({"officer_ids": ids}))
        .await;
    assert_eq!(status, 200, "assign: {body}");
    instruction
}
