//! Health, readiness, metrics, request ids, configuration and the OpenAPI document.

use std::collections::BTreeSet;

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

/// The `{name}` variables of a path template, in order.
fn template_variables(path: &str) -> Vec<String> {
    path.split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}'))
        .map(|(name, _)| name.to_string())
        .collect()
}

/// The fields a query extractor expects, read from its refusal of an unknown field (every query type
/// denies unknown fields): "unknown field `x`, expected `a`", "… expected `a` or `b`", "… expected one of
/// `a`, `b`, `c`".
fn expected_fields(message: &str) -> Option<BTreeSet<String>> {
    let (_, expected) = message.split_once("unknown field `fc_probe`, expected")?;
    Some(expected.split('`').skip(1).step_by(2).map(str::to_string).collect())
}

#[tokio::test]
async fn every_declared_parameter_sits_where_its_extractor_reads_it() {
    let server = TestServer::start();
    let (_, doc) = server.api().get("/api/v1/openapi.json").await;
    let mut callers = Vec::new();
    for user in ["admin", "reviewer1", "supervisor1", "officer1", "ent1-legal", "ent1-operator"] {
        callers.push(server.login(user).await);
    }
    let mut probed = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let variables: BTreeSet<String> = template_variables(path).into_iter().collect();
        for (method, op) in item.as_object().unwrap() {
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let declared = |place: &str| -> BTreeSet<String> {
                params
                    .iter()
                    .filter(|p| p["in"] == place)
                    .map(|p| p["name"].as_str().unwrap().to_string())
                    .collect()
            };
            for p in &params {
                assert!(
                    ["path", "query", "header"].contains(&p["in"].as_str().unwrap_or_default()),
                    "{method} {path}: parameter {p} has no known location"
                );
            }
            assert_eq!(
                declared("path"),
                variables,
                "{method} {path}: path parameters must be exactly the template's variables"
            );
            let query = declared("query");
            // Ask the handler itself which query fields it reads. Only GETs (no side effects) and
            // operations that declare a query: their query extractor refuses the probe before anything runs.
            if method != "get" && query.is_empty() {
                continue;
            }
            let concrete = variables.iter().fold(path.clone(), |p, v| p.replace(&format!("{{{v}}}"), "1"));
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let mut answer = None;
            for caller in &callers {
                let (status, body) = caller.send(m.clone(), &format!("{concrete}?fc_probe=1"), None).await;
                if status != 401 && status != 403 {
                    answer = Some((status, body));
                    break;
                }
            }
            let (status, body) =
                answer.unwrap_or_else(|| panic!("{method} {path}: no demo user may call it"));
            let read = if status == 400 && body["code"] == "invalid_query" {
                expected_fields(body["message"].as_str().unwrap())
                    .unwrap_or_else(|| panic!("{method} {path}: {body}"))
            } else {
                BTreeSet::new()
            };
            assert_eq!(query, read, "{method} {path}: declared query parameters vs. the extractor's fields");
            probed += 1;
        }
    }
    assert!(probed >= 30, "{probed}");
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
