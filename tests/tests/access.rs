//! Who may see and do what: enterprise scoping, delegation, devices and operator accounts.

use fieldcheck_tests::{Api, TestServer, now_secs, rfc3339};
use serde_json::{Value, json};

const ENT1_CODE: &str = "3101960001";
const AGENT_CODE: &str = "3101980003";

async fn my_enterprise_id(api: &Api) -> i64 {
    api.get("/api/v1/me").await.1["user"]["enterprise_id"].as_i64().expect("enterprise user")
}

async fn user_id(api: &Api, username: &str) -> i64 {
    let (_, users) = api.get("/api/v1/enterprise/operators").await;
    users.as_array().unwrap().iter().find(|u| u["username"] == username).expect("operator listed")["id"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn an_enterprise_cannot_read_another_enterprises_data() {
    let server = TestServer::start();
    let ent1 = server.login("ent1-operator").await;
    let ent2 = server.login("ent2-operator").await;
    let ent1_id = my_enterprise_id(&ent1).await;

    let (status, own) = ent1.get(&format!("/api/v1/enterprises/{ent1_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(own["customs_code"], ENT1_CODE);
    let (status, body) = ent2.get(&format!("/api/v1/enterprises/{ent1_id}")).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    // Nor its operators, delegations or anything under /admin.
    let (_, ops) = ent2.get("/api/v1/enterprise/operators").await;
    assert!(ops.as_array().is_none(), "an operator is not a legal person: {ops}");
    assert_eq!(ent2.get("/api/v1/admin/users").await.0, 403);
    let reviewer = server.login("reviewer1").await;
    assert_eq!(
        reviewer.get(&format!("/api/v1/enterprises/{ent1_id}")).await.0,
        200,
        "customs staff see enterprises"
    );
}

#[tokio::test]
async fn a_delegation_works_for_its_scope_and_period_and_its_revocation_cascades() {
    let server = TestServer::start();
    let now = now_secs();
    let principal = server.login("ent1-legal").await;
    let agent_legal = server.login("agent-legal").await;
    let agent_operator = server.login("agent-operator").await;
    let ent1_id = my_enterprise_id(&principal).await;
    let ent1_path = format!("/api/v1/enterprises/{ent1_id}");

    assert_eq!(agent_legal.get(&ent1_path).await.0, 404, "no delegation yet");
    let (status, d) = principal
        .post(
            "/api/v1/delegations",
            json!({"agent_customs_code": AGENT_CODE, "scopes": ["applications", "bookings"],
            "valid_until": rfc3339(now + 30 * 86_400)}),
        )
        .await;
    assert_eq!(status, 201, "{d}");
    let d_id = d["id"].as_i64().unwrap();
    assert_eq!(agent_legal.get(&ent1_path).await.0, 200, "the agent's legal person holds the delegation");
    assert_eq!(agent_operator.get(&ent1_path).await.0, 404, "its operators need a grant");

    let operator_id = user_id(&agent_legal, "agent-operator").await;
    let (status, body) = agent_legal
        .post(
            &format!("/api/v1/delegations/{d_id}/grants"),
            json!({"user_id": operator_id, "scopes": ["certificates"]}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("scope_not_delegated")),
        "cannot pass on more than was given"
    );
    let (status, g) = agent_legal
        .post(
            &format!("/api/v1/delegations/{d_id}/grants"),
            json!({"user_id": operator_id, "scopes": ["bookings"]}),
        )
        .await;
    assert_eq!(status, 201, "{g}");
    assert_eq!(agent_operator.get(&ent1_path).await.0, 200);

    // Revoking the delegation takes the grant under it along.
    let (status, revoked) = principal.post(&format!("/api/v1/delegations/{d_id}/revoke"), json!({})).await;
    assert_eq!(status, 200, "{revoked}");
    assert_eq!(agent_legal.get(&ent1_path).await.0, 404);
    assert_eq!(agent_operator.get(&ent1_path).await.0, 404);
    let (_, grants) = agent_legal.get(&format!("/api/v1/delegations/{d_id}/grants")).await;
    assert!(grants[0]["revoked_at"].is_string(), "{grants}");
    let (status, _) = principal.post(&format!("/api/v1/delegations/{d_id}/revoke"), json!({})).await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn an_expired_delegation_stops_working_by_itself() {
    let server = TestServer::start();
    let now = now_secs();
    let principal = server.login("ent1-legal").await;
    let agent_legal = server.login("agent-legal").await;
    let ent1_path = format!("/api/v1/enterprises/{}", my_enterprise_id(&principal).await);
    let (status, _) = principal
        .post(
            "/api/v1/delegations",
            json!({"agent_customs_code": AGENT_CODE, "scopes": ["applications"],
            "valid_until": rfc3339(now + 600)}),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(agent_legal.get(&ent1_path).await.0, 200);
    server.set_clock(now + 601).await;
    assert_eq!(agent_legal.get(&ent1_path).await.0, 404);
}

#[tokio::test]
async fn only_a_legal_person_delegates_and_never_to_itself() {
    let server = TestServer::start();
    let until = rfc3339(now_secs() + 86_400);
    let operator = server.login("ent1-operator").await;
    let legal = server.login("ent1-legal").await;
    let body = json!({"agent_customs_code": AGENT_CODE, "scopes": ["applications"], "valid_until": until});
    assert_eq!(operator.post("/api/v1/delegations", body).await.0, 403);
    let (status, err) = legal
        .post(
            "/api/v1/delegations",
            json!({"agent_customs_code": ENT1_CODE, "scopes": ["applications"], "valid_until": until}),
        )
        .await;
    assert_eq!((status, err["code"].as_str()), (422, Some("self_delegation")));
    let (status, err) = legal
        .post(
            "/api/v1/delegations",
            json!({"agent_customs_code": AGENT_CODE, "scopes": [], "valid_until": until}),
        )
        .await;
    assert_eq!((status, err["code"].as_str()), (422, Some("missing_scopes")));
}

async fn device_login(server: &TestServer, username: &str, device: &str) -> (u16, Value) {
    server
        .api()
        .post(
            "/api/v1/auth/login",
            json!({"username": username, "password": "demo-password", "device_id": device}),
        )
        .await
}

#[tokio::test]
async fn a_lost_devices_token_is_refused_at_once_and_the_device_stays_lost() {
    let server = TestServer::start();
    let (status, pair) = device_login(&server, "officer1", "demo-handheld-officer1").await;
    assert_eq!(status, 200, "{pair}");
    let handheld = server.api().with_token(pair["access_token"].as_str().unwrap());
    let (_, me) = handheld.get("/api/v1/me").await;
    assert_eq!(me["device_id"], "demo-handheld-officer1");

    let (status, d) = handheld
        .post(
            "/api/v1/devices/demo-handheld-officer1/status",
            json!({"status": "lost", "reason": "left on a bus"}),
        )
        .await;
    assert_eq!(status, 200, "{d}");
    let (status, body) = handheld.get("/api/v1/me").await;
    assert_eq!((status, body["code"].as_str()), (401, Some("session_ended")));
    let (status, body) =
        server.api().post("/api/v1/auth/refresh", json!({"refresh_token": pair["refresh_token"]})).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = device_login(&server, "officer1", "demo-handheld-officer1").await;
    assert_eq!((status, body["code"].as_str()), (401, Some("device_lost")));

    let supervisor = server.login("supervisor1").await;
    let (status, body) = supervisor
        .post(
            "/api/v1/devices/demo-handheld-officer1/status",
            json!({"status": "active", "reason": "found it"}),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (409, Some("device_lost")));
}

#[tokio::test]
async fn a_supervisor_freezes_and_unfreezes_devices_of_their_subtree_only() {
    let server = TestServer::start();
    let (_, pair) = device_login(&server, "officer2", "demo-handheld-officer2").await;
    let handheld = server.api().with_token(pair["access_token"].as_str().unwrap());
    let other_unit = server.login("supervisor2").await;
    let body = json!({"status": "frozen", "reason": "audit"});
    assert_eq!(other_unit.post("/api/v1/devices/demo-handheld-officer2/status", body.clone()).await.0, 404);
    assert_eq!(handheld.get("/api/v1/me").await.0, 200);
    let (status, body_out) =
        handheld.post("/api/v1/devices/demo-handheld-officer2/status", body.clone()).await;
    assert_eq!(status, 403, "an officer cannot freeze: {body_out}");

    let supervisor = server.login("supervisor1").await;
    assert_eq!(supervisor.post("/api/v1/devices/demo-handheld-officer2/status", body).await.0, 200);
    assert_eq!(handheld.get("/api/v1/me").await.0, 401);
    assert_eq!(device_login(&server, "officer2", "demo-handheld-officer2").await.1["code"], "device_frozen");
    let (status, _) = supervisor
        .post(
            "/api/v1/devices/demo-handheld-officer2/status",
            json!({"status": "active", "reason": "audit done"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(device_login(&server, "officer2", "demo-handheld-officer2").await.0, 200);
    let (_, listed) = supervisor.get("/api/v1/devices").await;
    let ids: Vec<&str> = listed.as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"demo-handheld-officer2") && !ids.contains(&"demo-handheld-officer3"), "{ids:?}");
}

#[tokio::test]
async fn an_officer_registers_a_handheld_and_gets_its_own_actor_id() {
    let server = TestServer::start();
    let officer = server.login("officer3").await;
    let (status, a) = officer.post("/api/v1/devices", json!({"name": "spare handheld"})).await;
    assert_eq!(status, 201, "{a}");
    let (_, b) = officer.post("/api/v1/devices", json!({"name": "second spare"})).await;
    let actor = a["actor_id"].as_str().unwrap();
    assert_eq!(actor.len(), 32);
    assert_ne!(a["actor_id"], b["actor_id"]);
    assert_eq!(device_login(&server, "officer3", a["id"].as_str().unwrap()).await.0, 200);
    assert_eq!(
        device_login(&server, "officer1", a["id"].as_str().unwrap()).await.1["code"],
        "unknown_device"
    );
    let reviewer = server.login("reviewer1").await;
    assert_eq!(reviewer.post("/api/v1/devices", json!({"name": "x"})).await.0, 403);
}

#[tokio::test]
async fn a_legal_person_freezes_and_extends_its_operators_and_nobody_elses() {
    let server = TestServer::start();
    let legal = server.login("ent1-legal").await;
    let operator = server.login("ent1-operator").await;
    let id = user_id(&legal, "ent1-operator").await;
    let status_path = format!("/api/v1/enterprise/operators/{id}/status");

    let other_legal = server.login("ent2-legal").await;
    assert_eq!(other_legal.post(&status_path, json!({"status": "frozen", "reason": "x"})).await.0, 404);

    assert_eq!(legal.post(&status_path, json!({"status": "frozen", "reason": "on leave"})).await.0, 200);
    let (status, body) = operator.get("/api/v1/me").await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = server
        .api()
        .post("/api/v1/auth/login", json!({"username": "ent1-operator", "password": "demo-password"}))
        .await;
    assert_eq!((status, body["code"].as_str()), (401, Some("account_frozen")));
    assert_eq!(legal.post(&status_path, json!({"status": "active", "reason": "back"})).await.0, 200);

    // Validity: an end in the past stops the account; extending it brings it back.
    let now = now_secs();
    let validity = format!("/api/v1/enterprise/operators/{id}/validity");
    let fresh = server.login("ent1-operator").await;
    assert_eq!(legal.post(&validity, json!({"valid_until": rfc3339(now + 60)})).await.0, 200);
    server.set_clock(now + 61).await;
    assert_eq!(fresh.get("/api/v1/me").await.1["code"], "account_expired");
    assert_eq!(legal.post(&validity, json!({"valid_until": rfc3339(now + 86_400)})).await.0, 200);
    assert_eq!(server.login("ent1-operator").await.get("/api/v1/me").await.0, 200);
}

#[tokio::test]
async fn a_legal_person_creates_operators_for_its_own_enterprise() {
    let server = TestServer::start();
    let legal = server.login("ent2-legal").await;
    let (status, u) = legal
        .post(
            "/api/v1/enterprise/operators",
            json!({"username": "ent2-new", "display_name": "New clerk", "password": "long-enough-pw"}),
        )
        .await;
    assert_eq!(status, 201, "{u}");
    assert_eq!(u["role"], "enterprise_operator");
    assert_eq!(u["enterprise_id"], my_enterprise_id(&legal).await);
    let login = || async {
        server
            .api()
            .post("/api/v1/auth/login", json!({"username": "ent2-new", "password": "long-enough-pw"}))
            .await
    };
    let (status, body) = login().await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("account_pending")),
        "waits for its legal person: {body}"
    );
    let (status, body) =
        legal.post(&format!("/api/v1/enterprise/operators/{}/confirm", u["id"]), json!({})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = login().await;
    assert_eq!((status, body["password_change_required"].as_bool()), (200, Some(true)), "{body}");
}

#[tokio::test]
async fn an_enterprises_supporting_documents_are_hidden_from_other_enterprises_officers_and_other_districts()
{
    use fieldcheck_tests::{dispatch::frozen_fish_application, photos::sha256_hex};
    let server = TestServer::start();
    let ent1 = server.login("ent1-operator").await;
    let (_, app) = ent1.post("/api/v1/applications", frozen_fish_application()).await;
    let app = app["id"].as_i64().expect("a draft");
    let pdf = std::fs::read(fieldcheck_tests::repo_root().join("fixtures/documents/invoice.pdf")).unwrap();
    let path = format!("/api/v1/applications/{app}/documents/{}?kind=invoice", sha256_hex(&pdf));
    let headers = [("content-type", "application/pdf".to_string())];
    let (status, _, body) = ent1.bytes(reqwest::Method::PUT, &path, &headers, Some(pdf.clone().into())).await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let attachment = serde_json::from_slice::<Value>(&body).unwrap()["id"].as_i64().unwrap();
    let download = format!("/api/v1/documents/{attachment}");
    let list = format!("/api/v1/applications/{app}/documents");

    for user in ["ent2-operator", "ent2-legal", "agent-operator", "officer1", "supervisor2"] {
        let api = server.login(user).await;
        let (status, body) = api.get(&download).await;
        assert_eq!((status, body["code"].as_str()), (404, Some("not_found")), "{user} downloads: {body}");
        let (status, body) = api.get(&list).await;
        assert_eq!(status, 404, "{user} lists: {body}");
        let (status, _, _) = api.bytes(reqwest::Method::PUT, &path, &headers, Some(pdf.clone().into())).await;
        assert!(status == 404 || status == 403, "{user} attaches: {status}");
        let (status, _) =
            api.post(&format!("{download}/request-again"), json!({"opinion": "send it again"})).await;
        assert!(status == 404 || status == 403, "{user} asks again: {status}");
    }
    // Its own enterprise's legal person, customs of the district and administrators read it.
    for user in ["ent1-legal", "reviewer1", "supervisor1", "admin"] {
        let (status, _, bytes) =
            server.login(user).await.bytes(reqwest::Method::GET, &download, &[], None).await;
        assert_eq!((status, bytes == pdf), (200, true), "{user} reads it");
    }
}

#[tokio::test]
async fn the_legal_person_sees_every_account_and_delegate_that_can_act_on_the_enterprises_data() {
    let server = TestServer::start();
    let principal = server.login("ent1-legal").await;
    let agent_legal = server.login("agent-legal").await;
    let (status, d) = principal
        .post(
            "/api/v1/delegations",
            json!({"agent_customs_code": AGENT_CODE, "scopes": ["applications", "bookings"],
                   "valid_until": rfc3339(now_secs() + 30 * 86_400)}),
        )
        .await;
    assert_eq!(status, 201, "{d}");
    let operator_id = user_id(&agent_legal, "agent-operator").await;
    let (status, g) = agent_legal
        .post(
            &format!("/api/v1/delegations/{}/grants", d["id"]),
            json!({"user_id": operator_id, "scopes": ["bookings"]}),
        )
        .await;
    assert_eq!(status, 201, "{g}");

    let (status, access) = principal.get("/api/v1/enterprise/access").await;
    assert_eq!(status, 200, "{access}");
    let names: Vec<&str> =
        access["accounts"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert!(names.contains(&"ent1-legal") && names.contains(&"ent1-operator"), "{names:?}");
    assert!(!names.contains(&"agent-operator"), "the agent's accounts are listed under their delegation");
    let delegations = access["delegations"].as_array().unwrap();
    assert_eq!(delegations.len(), 1, "{access}");
    assert_eq!(
        (delegations[0]["agent_customs_code"].as_str(), delegations[0]["live"].as_bool()),
        (Some(AGENT_CODE), Some(true))
    );
    assert_eq!(delegations[0]["delegation"]["scopes"], json!(["applications", "bookings"]));
    assert_eq!(delegations[0]["grants"][0]["user_id"], operator_id);
    assert_eq!(delegations[0]["grants"][0]["scopes"], json!(["bookings"]));

    let (status, _) = server.login("ent1-operator").await.get("/api/v1/enterprise/access").await;
    assert_eq!(status, 403, "the legal person's view");
    let (_, theirs) = agent_legal.get("/api/v1/enterprise/access").await;
    assert_eq!(
        theirs["delegations"].as_array().map(Vec::len),
        Some(0),
        "the agent does not see it as its own: {theirs}"
    );
}
