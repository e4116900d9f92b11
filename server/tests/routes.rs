//! The fast tier: route-level tests that run the whole router in this process (`tower::ServiceExt::oneshot`),
//! on a fresh data dir with demo data, without a socket or a child process. Each test costs the demo load
//! (tens of milliseconds) instead of a server start; what needs the real binary, the real socket or a
//! SIGKILL stays in `tests/` (the end-to-end tier).

use std::net::SocketAddr;

use axum::{
    Router,
    body::{Body, to_bytes},
    extract::connect_info::MockConnectInfo,
    http::{Method, Request},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use ed25519_dalek::{Signer, SigningKey};
use fieldcheck_server::{auth::keys, config::Settings, db::StoreError, demo, router, state::AppState};
use serde_json::{Value, json};
use tower::ServiceExt;

/// The router over a fresh data dir with demo data, as `serve --demo` builds it; dropped with its dir.
struct App {
    router: Router,
    state: AppState,
    dir: tempfile::TempDir,
}

impl App {
    fn demo() -> App {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::default();
        settings.storage.data_dir = dir.path().to_path_buf();
        settings.demo.enabled = true;
        settings.demo.fixtures_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures").into();
        settings.testing.manual_clock = true;
        // The OWASP minimum is far too slow for a debug build; these tests do not measure password strength.
        settings.auth.argon2_memory_kib = 1024;
        let state = fieldcheck_server::prepare(settings).unwrap();
        let router =
            router::app(state.clone()).layer(MockConnectInfo(SocketAddr::from(([127, 0, 0, 1], 4000))));
        App { router, state, dir }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req.header("content-type", "application/json").body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        };
        let response = self.router.clone().oneshot(req.unwrap()).await.unwrap();
        let status = response.status().as_u16();
        let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, token, Some(body)).await
    }

    async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    /// A password login of demo user `username`: `(access token, refresh token)`.
    async fn login(&self, username: &str) -> (String, String) {
        let (status, body) = self
            .post("/api/v1/auth/login", None, json!({"username": username, "password": demo::DEMO_PASSWORD}))
            .await;
        assert_eq!(status, 200, "{body}");
        (body["access_token"].as_str().unwrap().into(), body["refresh_token"].as_str().unwrap().into())
    }

    async fn token(&self, username: &str) -> String {
        self.login(username).await.0
    }

    /// A challenge for `username` and its signature with the demo key: `(challenge_id, signature)`.
    async fn signed_challenge(&self, username: &str) -> (String, String) {
        let (status, c) = self.post("/api/v1/auth/challenge", None, json!({"username": username})).await;
        assert_eq!(status, 200, "{c}");
        let seed = keys::read_seed(&demo::key_path(self.dir.path(), username)).unwrap();
        let signature = SigningKey::from_bytes(&seed).sign(c["challenge"].as_str().unwrap().as_bytes());
        (c["challenge_id"].as_str().unwrap().into(), STANDARD.encode(signature.to_bytes()))
    }
}

fn code(body: &Value) -> &str {
    body["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn a_password_login_is_answered_with_tokens_and_me_names_the_user() {
    let app = App::demo();
    let token = app.token("ent1-operator").await;
    let (status, me) = app.get("/api/v1/me", &token).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(
        (me["user"]["username"].as_str(), me["aal"].as_str()),
        (Some("ent1-operator"), Some("password"))
    );
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_answer() {
    let app = App::demo();
    let wrong = app
        .post("/api/v1/auth/login", None, json!({"username": "ent1-operator", "password": "nope-nope"}))
        .await;
    let unknown = app
        .post("/api/v1/auth/login", None, json!({"username": "nobody-here", "password": "nope-nope"}))
        .await;
    assert_eq!(wrong, unknown);
    assert_eq!((wrong.0, code(&wrong.1)), (401, "invalid_credentials"));
}

#[tokio::test]
async fn a_refresh_token_rotates_once_and_its_reuse_ends_the_session() {
    let app = App::demo();
    let (_, refresh) = app.login("ent1-legal").await;
    let (status, rotated) = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": refresh})).await;
    assert_eq!(status, 200, "{rotated}");
    let (status, reused) = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": refresh})).await;
    assert_eq!((status, code(&reused)), (401, "refresh_token_reused"));
    let newer = rotated["refresh_token"].as_str().unwrap();
    let (status, ended) = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": newer})).await;
    assert_eq!(
        (status, code(&ended)),
        (401, "session_ended"),
        "the reuse ended the session for every token of it"
    );
    let (status, unknown) = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": "made-up"})).await;
    assert_eq!((status, code(&unknown)), (401, "invalid_refresh_token"));
}

#[tokio::test]
async fn a_signed_challenge_gives_a_strong_login_once_and_every_refusal_is_audited() {
    let app = App::demo();
    let (id, signature) = app.signed_challenge("ent1-legal").await;
    let body = json!({"challenge_id": id, "signature": signature});
    let (status, strong) = app.post("/api/v1/auth/strong-login", None, body.clone()).await;
    assert_eq!((status, strong["aal"].as_str()), (200, Some("strong")), "{strong}");
    let (status, again) = app.post("/api/v1/auth/strong-login", None, body).await;
    assert_eq!((status, code(&again)), (401, "invalid_challenge"), "a challenge is spent by its first use");

    let (id, _) = app.signed_challenge("ent1-legal").await;
    let (_, other_users) = app.signed_challenge("ent2-legal").await;
    let (status, forged) = app
        .post("/api/v1/auth/strong-login", None, json!({"challenge_id": id, "signature": other_users}))
        .await;
    assert_eq!((status, code(&forged)), (401, "invalid_signature"));
    let (status, unknown) = app
        .post("/api/v1/auth/strong-login", None, json!({"challenge_id": "no-such", "signature": other_users}))
        .await;
    assert_eq!((status, code(&unknown)), (401, "invalid_challenge"));
    let (status, nokey) = app.post("/api/v1/auth/challenge", None, json!({"username": "nobody-here"})).await;
    assert_eq!((status, code(&nokey)), (401, "no_signing_key"));

    let admin = app.token("admin").await;
    let (status, log) = app.get("/api/v1/admin/audit?limit=1000", &admin).await;
    assert_eq!(status, 200, "{log}");
    let reasons: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "auth.strong_login_failed")
        .map(|e| e["details"]["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["challenge spent or expired", "bad signature", "unknown challenge"]);
    let (status, chain) = app.get("/api/v1/admin/audit/verify", &admin).await;
    assert_eq!((status, &chain["first_broken"]), (200, &Value::Null), "{chain}");
}

#[tokio::test]
async fn sampling_ratios_are_listed_and_an_administrator_changes_one_with_an_audit_entry() {
    let app = App::demo();
    let admin = app.token("admin").await;
    let (status, before) = app.get("/api/v1/sampling-ratios", &admin).await;
    assert_eq!(status, 200, "{before}");
    let first = before.as_array().unwrap().first().expect("demo ratios").clone();
    let changed = json!({"chapter": first["chapter"], "credit_rating": first["credit_rating"], "ratio": 0.5});
    let (status, body) =
        app.call(Method::PUT, "/api/v1/admin/sampling-ratios", Some(&admin), Some(changed.clone())).await;
    assert_eq!(status, 200, "{body}");
    let (_, after) = app.get("/api/v1/sampling-ratios", &admin).await;
    assert_eq!(after.as_array().unwrap()[0], changed);
    let (_, log) = app.get("/api/v1/admin/audit?limit=1000", &admin).await;
    let entry = log.as_array().unwrap().iter().rfind(|e| e["action"] == "reference.sampling_ratio").unwrap();
    assert_eq!(entry["details"], json!({"from": first["ratio"], "to": 0.5}));
    let bad = json!({"chapter": "8", "credit_rating": first["credit_rating"], "ratio": 0.5});
    let (status, body) =
        app.call(Method::PUT, "/api/v1/admin/sampling-ratios", Some(&admin), Some(bad)).await;
    assert_eq!((status, code(&body)), (422, "invalid_chapter"));
}

#[tokio::test]
async fn an_enterprise_never_sees_another_enterprises_application() {
    let app = App::demo();
    let fish = json!({"direction": "export", "district_code": "2200", "site_code": "2201",
        "applicant_code": "3101960001", "consignor_code": "3101960001",
        "consignee_name": "Tokyo Fish Market Co.", "destination_country": "JP",
        "goods": [{"hs_code": "0303110000", "name": "Frozen sockeye salmon", "quantity": 1000.0,
                   "unit": "kg", "net_weight_kg": 1000.0, "value_usd": 8000.0, "origin_country": "CN"}]});
    let ent1 = app.token("ent1-operator").await;
    let (status, created) = app.post("/api/v1/applications", Some(&ent1), fish).await;
    assert_eq!(status, 201, "{created}");
    let path = format!("/api/v1/applications/{}", created["id"]);
    assert_eq!(app.get(&path, &ent1).await.0, 200);
    let ent2 = app.token("ent2-operator").await;
    let (status, body) = app.get(&path, &ent2).await;
    assert_eq!((status, code(&body)), (404, "not_found"), "not 403: existence does not leak");
}

#[tokio::test]
async fn bad_input_is_answered_in_the_one_error_shape() {
    let app = App::demo();
    let token = app.token("ent1-operator").await;
    let (status, body) =
        app.post("/api/v1/applications", Some(&token), json!({"direction": "sideways"})).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()) && body.get("details").is_some(),
        "{body}"
    );
    let (status, body) = app.get("/api/v1/no-such-thing", &token).await;
    assert_eq!((status, code(&body)), (404, "no_route"));
    let (status, body) = app.call(Method::GET, "/api/v1/me", None, None).await;
    assert_eq!((status, code(&body)), (401, "missing_token"));
    assert!(app.state.db.path().exists(), "the data dir is this test's own");
}

/// ent1's frozen-fish application for district 2200, site 2201 (Yangshan), submitted and approved for
/// on-site inspection: the instruction's id.
async fn instruction_at_yangshan(app: &App) -> i64 {
    let fish = json!({"direction": "export", "district_code": "2200", "site_code": "2201",
        "applicant_code": "3101960001", "consignor_code": "3101960001",
        "consignee_name": "Tokyo Fish Market Co.", "destination_country": "JP",
        "goods": [{"hs_code": "0303110000", "name": "Frozen sockeye salmon", "quantity": 1000.0,
                   "unit": "kg", "net_weight_kg": 1000.0, "value_usd": 8000.0, "origin_country": "CN"}]});
    let operator = app.token("ent1-operator").await;
    let (_, created) = app.post("/api/v1/applications", Some(&operator), fish).await;
    let id = created["id"].as_i64().expect("application id");
    let (status, body) =
        app.post(&format!("/api/v1/applications/{id}/submit"), Some(&operator), json!({})).await;
    assert_eq!(status, 200, "{body}");
    let reviewer = app.token("reviewer1").await;
    let (status, body) = app
        .post(&format!("/api/v1/applications/{id}/review"), Some(&reviewer), json!({"action": "approve"}))
        .await;
    assert_eq!((status, body["disposition"].as_str()), (200, Some("on_site")), "{body}");
    let supervisor = app.token("supervisor1").await;
    let (_, list) = app.get("/api/v1/instructions", &supervisor).await;
    list[0]["id"].as_i64().expect("the instruction")
}

#[tokio::test]
async fn a_damaged_stored_checklist_is_an_error_never_an_empty_checklist() {
    let app = App::demo();
    let id = instruction_at_yangshan(&app).await;
    let supervisor = app.token("supervisor1").await;
    let path = format!("/api/v1/instructions/{id}");
    let (status, whole) = app.get(&path, &supervisor).await;
    assert!(status == 200 && !whole["checklist"].as_array().unwrap().is_empty(), "{whole}");

    app.state
        .db
        .write(|tx| {
            Ok::<_, StoreError>(tx.execute("UPDATE instructions SET checklist = '[{\"item_id\": '", [])?)
        })
        .await
        .unwrap();
    let log = Log::default();
    let (status, body) = {
        let _capture = tracing::subscriber::set_default(
            tracing_subscriber::fmt().with_writer(log.clone()).with_ansi(false).finish(),
        );
        app.get(&path, &supervisor).await
    };
    assert_eq!((status, code(&body)), (500, "internal"), "{body}");
    let log = log.text();
    assert!(log.contains(&format!("stored instructions.checklist of row {id} is damaged")), "{log}");
}

/// Log lines written while a test's subscriber is the default, to check what an operator would read.
#[derive(Clone, Default)]
struct Log(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Log {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Log {
    type Writer = Log;
    fn make_writer(&'a self) -> Log {
        self.clone()
    }
}

#[tokio::test]
async fn a_supervisor_acts_on_exactly_the_instructions_they_see_in_their_units_subtree() {
    let app = App::demo();
    let id = instruction_at_yangshan(&app).await;
    // supervisor2 moves to Yangshan (the instruction's site, below its district 2200), reviewer1 to
    // Waigaoqiao (a sibling site of the same district) and becomes a supervisor there.
    app.state
        .db
        .write(|tx| -> Result<(), StoreError> {
            tx.execute_batch(
                "UPDATE users SET unit_id = (SELECT id FROM customs_units WHERE code = '2201')
                   WHERE username = 'supervisor2';
                 UPDATE users SET role = 'supervisor', unit_id = (SELECT id FROM customs_units WHERE code = '2202')
                   WHERE username = 'reviewer1';",
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let listed = |list: &Value| -> Vec<i64> {
        list.as_array().unwrap().iter().filter_map(|i| i["id"].as_i64()).collect()
    };

    let site = app.token("supervisor2").await;
    let (status, list) = app.get("/api/v1/instructions", &site).await;
    assert_eq!((status, listed(&list)), (200, vec![id]), "the site's supervisor lists it");
    assert_eq!(app.get(&format!("/api/v1/instructions/{id}"), &site).await.0, 200);
    let (status, assigned) = app
        .post(&format!("/api/v1/instructions/{id}/assign"), Some(&site), json!({"officers": ["officer1"]}))
        .await;
    assert_eq!((status, assigned["state"].as_str()), (200, Some("assigned")), "{assigned}");

    let sibling = app.token("reviewer1").await;
    let (status, list) = app.get("/api/v1/instructions", &sibling).await;
    assert_eq!((status, listed(&list)), (200, vec![]), "a sibling site's supervisor lists nothing");
    for (action, body) in [
        ("assign", json!({"officers": ["officer2"]})),
        ("cancel", json!({"reason": "not mine"})),
        ("approve", json!({})),
    ] {
        let (status, refused) =
            app.post(&format!("/api/v1/instructions/{id}/{action}"), Some(&sibling), body).await;
        assert_eq!((status, code(&refused)), (404, "not_found"), "{action}: {refused}");
    }

    let district = app.token("supervisor1").await;
    let (status, list) = app.get("/api/v1/instructions", &district).await;
    assert_eq!((status, listed(&list)), (200, vec![id]), "the district's supervisor lists it");
    let (status, cancelled) = app
        .post(&format!("/api/v1/instructions/{id}/cancel"), Some(&district), json!({"reason": "duplicate"}))
        .await;
    assert_eq!((status, cancelled["state"].as_str()), (200, Some("cancelled")), "{cancelled}");
}
