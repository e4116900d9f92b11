//! Undoing a decision: a reviewer revokes an approval while nothing has followed from it; a decision with
//! consequences or one that sealed evidence is refused. And an amendment writes its receipt.

use fieldcheck_tests::{
    Api, TestServer,
    certificates::released,
    dispatch::{dispatched, frozen_fish_application},
};
use serde_json::{Value, json};

async fn receipts(api: &Api) -> Vec<Value> {
    let (status, page) = api.get("/api/v1/receipts?after=0&limit=500").await;
    assert_eq!(status, 200, "{page}");
    page["receipts"].as_array().unwrap().clone()
}

async fn audit_actions(server: &TestServer) -> Vec<String> {
    let (status, entries) = server.login("admin").await.get("/api/v1/admin/audit?limit=1000").await;
    assert_eq!(status, 200, "{entries}");
    entries.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap_or("").to_owned()).collect()
}

#[tokio::test]
async fn an_approval_is_revoked_while_its_instruction_is_issued_and_the_application_is_reviewed_again() {
    let server = TestServer::start();
    let operator = server.login("ent1-operator").await;
    let reviewer = server.login("reviewer1").await;
    let (_, app) = operator.post("/api/v1/applications", frozen_fish_application()).await;
    let id = app["id"].as_i64().unwrap();
    let (status, body) = operator.post(&format!("/api/v1/applications/{id}/submit"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) =
        reviewer.post(&format!("/api/v1/applications/{id}/review"), json!({"action": "approve"})).await;
    assert_eq!((status, body["state"].as_str()), (200, Some("inspection")), "{body}");
    let (_, list) = operator.get("/api/v1/instructions").await;
    let instruction =
        list.as_array().unwrap().iter().find(|i| i["application_id"] == id).unwrap()["id"].as_i64().unwrap();

    let path = format!("/api/v1/applications/{id}/revoke-approval");
    let (status, body) = reviewer.post(&path, json!({"opinion": "  "})).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("missing_opinion")), "{body}");
    let (status, body) = operator.post(&path, json!({"opinion": "undo"})).await;
    assert_eq!(status, 403, "the enterprise does not revoke customs' decisions: {body}");
    let (status, body) = server.login("supervisor2").await.post(&path, json!({"opinion": "undo"})).await;
    assert_eq!(status, 404, "another district's reviewer learns nothing: {body}");

    let opinion = "批准有误，产地证明待核 Approved in error: the origin proof is still being checked";
    let (status, body) = reviewer.post(&path, json!({"opinion": opinion})).await;
    assert_eq!((status, body["state"].as_str()), (200, Some("submitted")), "{body}");
    assert!(body["disposition"].is_null(), "{body}");
    let (_, i) = operator.get(&format!("/api/v1/instructions/{instruction}")).await;
    assert_eq!(i["state"], "cancelled", "{i}");
    let all = receipts(&operator).await;
    let revoked = all.iter().find(|r| r["kind"] == "approval_revoked").expect("the enterprise is told");
    assert_eq!(
        (revoked["subject"].as_str(), revoked["state"].as_str()),
        (Some("application"), Some("submitted"))
    );
    assert_eq!(revoked["opinion"], opinion);
    let cancelled =
        all.iter().find(|r| r["subject"] == "instruction" && r["kind"] == "cancelled").expect("{all:?}");
    assert_eq!(cancelled["opinion"], opinion);
    let actions = audit_actions(&server).await;
    assert!(actions.contains(&"application.approval_revoked".to_owned()), "{actions:?}");
    assert!(actions.contains(&"instruction.cancelled".to_owned()), "{actions:?}");
    let (status, body) = reviewer.post(&path, json!({"opinion": opinion})).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("not_revocable")), "{body}");

    // Reviewed again and approved: the same instruction is issued anew.
    let (status, body) =
        reviewer.post(&format!("/api/v1/applications/{id}/review"), json!({"action": "approve"})).await;
    assert_eq!((status, body["state"].as_str()), (200, Some("inspection")), "{body}");
    let (_, i) = operator.get(&format!("/api/v1/instructions/{instruction}")).await;
    assert_eq!(i["state"], "issued", "{i}");
    let notices = receipts(&operator).await.iter().filter(|r| r["kind"] == "inspection_notice").count();
    assert_eq!(notices, 2, "an inspection notice for each issue");
}

#[tokio::test]
async fn an_approval_with_consequences_or_one_that_sealed_evidence_is_not_revoked() {
    let server = TestServer::start();
    let reviewer = server.login("reviewer1").await;
    let assigned = dispatched(&server, &["officer1"]).await;
    let (_, i) = reviewer.get(&format!("/api/v1/instructions/{assigned}")).await;
    let path = format!("/api/v1/applications/{}/revoke-approval", i["application_id"]);
    let (status, body) = reviewer.post(&path, json!({"opinion": "undo"})).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("approval_has_consequences")), "{body}");
    let (_, i) = reviewer.get(&format!("/api/v1/instructions/{assigned}")).await;
    assert_eq!(i["state"], "assigned", "nothing changed: {i}");

    let goods = released(&server).await;
    let path = format!("/api/v1/applications/{}/revoke-approval", goods.application_id);
    let (status, body) = reviewer.post(&path, json!({"opinion": "undo"})).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("sealed_decision")), "{body}");
    let (_, app) = reviewer.get(&format!("/api/v1/applications/{}", goods.application_id)).await;
    assert_eq!(app["state"], "released", "{app}");
}

#[tokio::test]
async fn amending_a_draft_writes_a_receipt() {
    let server = TestServer::start();
    let operator = server.login("ent1-operator").await;
    let (_, app) = operator.post("/api/v1/applications", frozen_fish_application()).await;
    let mut content = frozen_fish_application();
    content["goods"][0]["net_weight_kg"] = json!(990.0);
    let (status, body) = operator.put(&format!("/api/v1/applications/{}", app["id"]), content).await;
    assert_eq!((status, body["version"].as_i64()), (200, Some(2)), "{body}");
    let kinds: Vec<Value> = receipts(&operator).await.iter().map(|r| r["kind"].clone()).collect();
    assert_eq!(kinds, [json!("drafted"), json!("amended")]);
    let amended = receipts(&operator).await.pop().unwrap();
    assert_eq!((amended["state"].as_str(), amended["details"]["version"].as_i64()), (Some("draft"), Some(2)));
}
