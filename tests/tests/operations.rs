//! Health, readiness, metrics, request ids, configuration and the OpenAPI document.

use fieldcheck_tests::{TestServer, binary};
use reqwest::Method;

#[tokio::test]
async fn health_and_readiness_answer() {
    let server = TestServer::start();
    assert_eq!(server.api().get("/healthz").await.0, 200);
    let (status, body) = server.api().get("/readyz").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")));
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    let server = TestServer::start();
    let api = server.login("reviewer1").await;
    api.get("/api/v1/enterprises/1").await;
    api.get("/api/v1/enterprises/2").await;
    let (status, text) = server.api().get("/metrics").await;
    assert_eq!(status, 200);
    let text = text.as_str().unwrap();
    assert!(
        text.contains(
            r#"fieldcheck_http_requests_total{method="GET",route="/api/v1/enterprises/{id}",status="200"} 2"#
        ),
        "{text}"
    );
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let server = TestServer::start();
    let resp = reqwest::get(format!("{}/healthz", server.base)).await.unwrap();
    let id = resp.headers().get("x-request-id").expect("request id").to_str().unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let resp = reqwest::Client::new()
        .get(format!("{}/healthz", server.base))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["x-request-id"],
        "trace-me-42",
        "a caller's id is kept for tracing across systems"
    );
}

#[tokio::test]
async fn the_openapi_document_covers_every_route_the_server_answers() {
    let server = TestServer::start();
    let (status, doc) = server.api().get("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 25, "{}", paths.len());
    let mut checked = 0;
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let concrete = path.replace("{id}", "1");
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (status, body) = server.api().send(m, &concrete, None).await;
            assert!(
                body["code"] != "no_route" && status != 405,
                "{method} {path} is documented but not routed: {status} {body}"
            );
            checked += 1;
        }
    }
    // And the other way round: routes the document does not list answer "no route".
    let (status, body) = server.api().get("/api/v1/undocumented").await;
    assert_eq!((status, body["code"].as_str()), (404, Some("no_route")));
    assert!(checked >= 28);
}

#[test]
fn default_config_prints_a_config_the_server_accepts() {
    let out = std::process::Command::new(binary("fieldcheck")).arg("default-config").output().unwrap();
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fieldcheck.toml");
    std::fs::write(&file, &out.stdout).unwrap();
    // `admin verify-audit` loads the settings and opens the data dir: a config it rejects would fail here.
    let check = std::process::Command::new(binary("fieldcheck"))
        .args(["admin", "verify-audit", "--config"])
        .arg(&file)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    let mut bad = String::from_utf8(out.stdout).unwrap();
    bad.push_str("\n[server]\nlisten_on = \"x\"\n");
    std::fs::write(&file, bad).unwrap();
    let check = std::process::Command::new(binary("fieldcheck"))
        .args(["admin", "verify-audit", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!check.status.success(), "a mistyped key is an error, not silently ignored");
}
