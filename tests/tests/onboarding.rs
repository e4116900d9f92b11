//! Onboarding through the real server: an enterprise registers itself (its credit code's check character
//! verified), an administrator returns and approves it with receipts and audit; registrations per client
//! address are limited; an operator waits for its legal person and must change its initial password.

use fieldcheck_tests::{Api, TestServer};
use serde_json::{Value, json};

/// A unified social credit code whose check character is right (GB 32100), and one whose is not.
const USCC: &str = "91440300708461136T";
const USCC_BAD_CHECK: &str = "91440300708461136A";
const USCC_OTHER: &str = "91110000100000589A";

fn registration(customs_code: &str, uscc: &str, username: &str) -> Value {
    json!({
        "enterprise": {
            "customs_code": customs_code,
            "uscc": uscc,
            "name": "Pearl River Ceramics Co., Ltd.",
            "unit_code": "5300",
            "legal_person": "Liang Hui",
            "contact": {"name": "Liang Hui", "phone": "+86 755 5555 0101", "email": "liang.hui@example.cn"}
        },
        "username": username,
        "password": "registering-password"
    })
}

async fn login(server: &TestServer, username: &str, password: &str) -> (u16, Value) {
    server.api().post("/api/v1/auth/login", json!({"username": username, "password": password})).await
}

async fn receipts(api: &Api) -> Vec<Value> {
    let (status, page) = api.get("/api/v1/receipts?after=0&limit=500").await;
    assert_eq!(status, 200, "{page}");
    page["receipts"].as_array().unwrap().clone()
}

#[tokio::test]
async fn an_enterprise_registers_itself_is_returned_with_an_opinion_amends_and_is_approved() {
    let server = TestServer::start();
    let admin = server.login("admin").await;

    let (status, err) = server
        .api()
        .post("/api/v1/registrations", registration("4403961001", USCC_BAD_CHECK, "pearl-legal"))
        .await;
    assert_eq!(status, 422, "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("should be `T`"),
        "the check character is named: {err}"
    );
    let (status, body) = admin.get("/api/v1/admin/registrations").await;
    assert_eq!((status, body.as_array().map(Vec::len)), (200, Some(0)), "nothing written: {body}");
    assert_eq!(login(&server, "pearl-legal", "registering-password").await.0, 401);

    let (status, reg) =
        server.api().post("/api/v1/registrations", registration("4403961001", USCC, "pearl-legal")).await;
    assert_eq!((status, reg["state"].as_str()), (201, Some("pending")), "{reg}");
    let (status, dup) =
        server.api().post("/api/v1/registrations", registration("4403961002", USCC, "pearl-legal-2")).await;
    assert_eq!((status, dup["code"].as_str()), (409, Some("duplicate_enterprise")), "{dup}");

    // The pending legal person logs in, but reaches only the registration.
    let (status, tokens) = login(&server, "pearl-legal", "registering-password").await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(
        (tokens["registration_pending"].as_bool(), tokens["password_change_required"].as_bool()),
        (Some(true), Some(false))
    );
    let legal = server.api().with_token(tokens["access_token"].as_str().unwrap());
    let (status, own) = legal.get("/api/v1/registration").await;
    assert_eq!((status, own["id"].clone()), (200, reg["id"].clone()), "{own}");
    let (status, err) = legal.get("/api/v1/receipts").await;
    assert_eq!((status, err["code"].as_str()), (403, Some("registration_pending")), "{err}");
    let (status, err) = legal.get("/api/v1/enterprise/operators").await;
    assert_eq!((status, err["code"].as_str()), (403, Some("registration_pending")), "{err}");

    let id = reg["id"].as_i64().unwrap();
    let (status, queue) = admin.get("/api/v1/admin/registrations?state=pending").await;
    assert_eq!((status, queue[0]["id"].as_i64()), (200, Some(id)), "{queue}");
    let (status, err) = admin.post(&format!("/api/v1/admin/registrations/{id}/return"), json!({})).await;
    assert_eq!((status, err["code"].as_str()), (422, Some("missing_opinion")), "{err}");
    let (status, err) =
        legal.put("/api/v1/registration", registration("4403961001", USCC, "x")["enterprise"].clone()).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (409, Some("not_returned")),
        "a pending one is not amended: {err}"
    );
    let opinion = "the contact phone is not the enterprise's";
    let (status, returned) =
        admin.post(&format!("/api/v1/admin/registrations/{id}/return"), json!({"opinion": opinion})).await;
    assert_eq!(
        (status, returned["state"].as_str(), returned["opinion"].as_str()),
        (200, Some("returned"), Some(opinion))
    );

    let mut amended = registration("4403961001", USCC, "x")["enterprise"].clone();
    amended["contact"]["phone"] = json!("+86 755 5555 0199");
    amended["uscc"] = json!(USCC_BAD_CHECK);
    let (status, _) = legal.put("/api/v1/registration", amended.clone()).await;
    assert_eq!(status, 422, "the amendment's credit code is checked too");
    amended["uscc"] = json!(USCC);
    let (status, again) = legal.put("/api/v1/registration", amended).await;
    assert_eq!((status, again["state"].as_str()), (200, Some("pending")), "{again}");
    assert_eq!(again["contact"]["phone"], "+86 755 5555 0199");

    let (status, approved) =
        admin.post(&format!("/api/v1/admin/registrations/{id}/approve"), json!({"opinion": "welcome"})).await;
    assert_eq!((status, approved["state"].as_str()), (200, Some("approved")), "{approved}");
    let (status, err) = admin.post(&format!("/api/v1/admin/registrations/{id}/approve"), json!({})).await;
    assert_eq!((status, err["code"].as_str()), (409, Some("not_pending")), "{err}");

    // The same session reaches everything now: the restriction is read from the account each request.
    let kinds: Vec<(String, String)> = receipts(&legal)
        .await
        .iter()
        .map(|r| (r["subject"].as_str().unwrap().to_owned(), r["kind"].as_str().unwrap().to_owned()))
        .collect();
    let expected = [
        "registration_submitted",
        "registration_returned",
        "registration_resubmitted",
        "registration_approved",
    ];
    assert_eq!(kinds, expected.iter().map(|k| ("enterprise".to_owned(), k.to_string())).collect::<Vec<_>>());
    let (status, me) = legal.get("/api/v1/me").await;
    assert_eq!((status, me["user"]["status"].as_str()), (200, Some("active")), "{me}");

    let (status, audit) = admin.get("/api/v1/admin/audit?after=0&limit=1000").await;
    assert_eq!(status, 200, "{audit}");
    let actions: Vec<&str> = audit.as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    for action in [
        "enterprise.registration_submitted",
        "enterprise.registration_returned",
        "enterprise.registration_approved",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    let (status, chain) = admin.get("/api/v1/admin/audit/verify").await;
    assert_eq!((status, &chain["first_broken"]), (200, &Value::Null), "{chain}");
}

#[tokio::test]
async fn registrations_beyond_the_hourly_limit_of_one_address_are_refused_before_any_work() {
    let server = TestServer::start_with(&[("FIELDCHECK__ONBOARDING__REGISTRATIONS_PER_HOUR", "2")]);
    let first = server.api_from([127, 0, 0, 21]);
    for (code, uscc, user) in
        [("4403961011", USCC, "first-legal"), ("4403961012", USCC_OTHER, "second-legal")]
    {
        let (status, body) = first.post("/api/v1/registrations", registration(code, uscc, user)).await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, headers, body) = first
        .bytes(
            reqwest::Method::POST,
            "/api/v1/registrations",
            &[("content-type", "application/json".to_string())],
            Some(registration("4403961013", "91310000MA1FL1KQ9E", "third-legal").to_string().into()),
        )
        .await;
    let err: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((status, err["code"].as_str()), (429, Some("too_many_registrations")), "{err}");
    let wait: u64 = headers.get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&wait), "{wait}");
    assert_eq!(login(&server, "third-legal", "registering-password").await.0, 401, "nothing written");

    let other = server.api_from([127, 0, 0, 22]);
    let (status, body) = other
        .post("/api/v1/registrations", registration("4403961013", "91310000MA1FL1KQ9E", "third-legal"))
        .await;
    assert_eq!(status, 201, "another address is not held back: {body}");

    let mut long = registration("4403961014", USCC, "fourth-legal");
    long["enterprise"]["name"] = json!("x".repeat(201));
    let (status, body) = other.post("/api/v1/registrations", long).await;
    assert_eq!(status, 422, "{body}");
    let mut long = registration("4403961014", USCC, "fourth-legal");
    long["password"] = json!("p".repeat(257));
    let (status, body) = other.post("/api/v1/registrations", long).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("password_too_long")), "{body}");
}

#[tokio::test]
async fn an_operator_waits_for_its_legal_person_and_its_first_login_may_only_change_the_initial_password() {
    let server = TestServer::start();
    let legal = server.login("ent1-legal").await;
    let (status, op) = legal
        .post(
            "/api/v1/enterprise/operators",
            json!({"username": "ent1-new-operator", "display_name": "New operator", "password": "initial-password"}),
        )
        .await;
    assert_eq!(
        (status, op["status"].as_str(), op["must_change_password"].as_bool()),
        (201, Some("pending"), Some(true)),
        "{op}"
    );
    let (status, err) = login(&server, "ent1-new-operator", "initial-password").await;
    assert_eq!((status, err["code"].as_str()), (401, Some("account_pending")), "{err}");

    let id = op["id"].as_i64().unwrap();
    let freeze = json!({"status": "frozen", "reason": "unfreezing later must not skip the confirmation"});
    let (status, err) = legal.post(&format!("/api/v1/enterprise/operators/{id}/status"), freeze).await;
    assert_eq!((status, err["code"].as_str()), (409, Some("account_pending")), "{err}");
    let (status, err) = server
        .login("ent2-legal")
        .await
        .post(&format!("/api/v1/enterprise/operators/{id}/confirm"), json!({}))
        .await;
    assert_eq!(status, 404, "another enterprise's legal person cannot confirm it: {err}");
    let (status, confirmed) =
        legal.post(&format!("/api/v1/enterprise/operators/{id}/confirm"), json!({})).await;
    assert_eq!((status, confirmed["status"].as_str()), (200, Some("active")), "{confirmed}");
    let (status, err) = legal.post(&format!("/api/v1/enterprise/operators/{id}/confirm"), json!({})).await;
    assert_eq!((status, err["code"].as_str()), (409, Some("not_pending")), "{err}");

    let (status, tokens) = login(&server, "ent1-new-operator", "initial-password").await;
    assert_eq!((status, tokens["password_change_required"].as_bool()), (200, Some(true)), "{tokens}");
    let first = server.api().with_token(tokens["access_token"].as_str().unwrap());
    let (status, err) = first.get("/api/v1/applications").await;
    assert_eq!((status, err["code"].as_str()), (403, Some("password_change_required")), "{err}");
    let change = |current: &str, new: &str| json!({"current_password": current, "new_password": new});
    let (status, err) =
        first.post("/api/v1/auth/password", change("wrong-password", "my-own-password")).await;
    assert_eq!(status, 401, "{err}");
    let (status, err) = first.post("/api/v1/auth/password", change("initial-password", "short")).await;
    assert_eq!((status, err["code"].as_str()), (422, Some("weak_password")), "{err}");
    let (status, fresh) =
        first.post("/api/v1/auth/password", change("initial-password", "my-own-password")).await;
    assert_eq!((status, fresh["password_change_required"].as_bool()), (200, Some(false)), "{fresh}");

    let (status, err) = first.get("/api/v1/me").await;
    assert_eq!((status, err["code"].as_str()), (401, Some("session_ended")), "the old session ended: {err}");
    let operator = server.api().with_token(fresh["access_token"].as_str().unwrap());
    assert_eq!(operator.get("/api/v1/applications").await.0, 200);
    assert_eq!(login(&server, "ent1-new-operator", "initial-password").await.0, 401);
    assert_eq!(login(&server, "ent1-new-operator", "my-own-password").await.0, 200);

    let seen: Vec<(String, String, i64)> = receipts(&legal)
        .await
        .iter()
        .filter(|r| r["subject"] == "user")
        .map(|r| {
            (
                r["kind"].as_str().unwrap().into(),
                r["state"].as_str().unwrap().into(),
                r["subject_id"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("operator_created".into(), "pending".into(), id),
            ("operator_confirmed".into(), "active".into(), id)
        ]
    );
    let (status, access) = legal.get("/api/v1/enterprise/access").await;
    assert_eq!(status, 200, "{access}");
    assert!(
        access.to_string().contains("ent1-new-operator"),
        "the legal person's one list shows it: {access}"
    );
}

#[tokio::test]
async fn a_registering_enterprise_is_named_as_consignor_or_agent_only_once_approved() {
    let server = TestServer::start();
    let (status, reg) =
        server.api().post("/api/v1/registrations", registration("4403961001", USCC, "pearl-legal")).await;
    assert_eq!(status, 201, "{reg}");
    let operator = server.login("ent1-operator").await;
    let legal = server.login("ent1-legal").await;
    let mut content = fieldcheck_tests::field::content();
    content["consignor_code"] = json!("4403961001");
    let (status, app) = operator.post("/api/v1/applications", content).await;
    assert_eq!(status, 201, "{app}");
    let submit = format!("/api/v1/applications/{}/submit", app["id"]);
    let until = fieldcheck_tests::rfc3339(fieldcheck_tests::now_secs() + 30 * 86_400);
    let delegation =
        json!({"agent_customs_code": "4403961001", "scopes": ["applications"], "valid_until": until});

    let (status, err) = operator.post(&submit, json!({})).await;
    assert_eq!((status, err["code"].as_str()), (422, Some("submission_rules")), "{err}");
    let violations = err["details"]["violations"].as_array().unwrap();
    assert!(
        violations.iter().any(|v| v["rule"] == "unknown_enterprise" && v["field"] == "consignor_code"),
        "a pending registration is not yet an enterprise on record: {violations:?}"
    );
    let (status, err) = legal.post("/api/v1/delegations", delegation.clone()).await;
    assert_eq!((status, err["code"].as_str()), (422, Some("unknown_enterprise")), "{err}");

    let admin = server.login("admin").await;
    let id = reg["id"].as_i64().unwrap();
    let (status, approved) =
        admin.post(&format!("/api/v1/admin/registrations/{id}/approve"), json!({})).await;
    assert_eq!(status, 200, "{approved}");
    let (status, submitted) = operator.post(&submit, json!({})).await;
    assert_eq!(status, 200, "approved, it may be named: {submitted}");
    let (status, d) = legal.post("/api/v1/delegations", delegation).await;
    assert_eq!(status, 201, "{d}");
}
