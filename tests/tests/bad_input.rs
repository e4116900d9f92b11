//! A table of malformed and invalid requests: each gets the documented 4xx and code, and nothing is written.

use fieldcheck_tests::TestServer;
use reqwest::Method;
use serde_json::{Value, json};

struct Case {
    name: &'static str,
    method: Method,
    path: &'static str,
    /// Log in as this demo user first; `None` = anonymous.
    user: Option<&'static str>,
    content_type: &'static str,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
    /// A fragment the message must contain, so it says what to fix.
    says: &'static str,
}

fn json_body(v: Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

fn enterprise(customs_code: &str, uscc: &str, rating: &str) -> Vec<u8> {
    json_body(
        json!({"customs_code": customs_code, "uscc": uscc, "name": "Test Co.", "credit_rating": rating}),
    )
}

fn user(username: &str, password: &str) -> Vec<u8> {
    json_body(
        json!({"username": username, "display_name": "T", "password": password, "role": "reviewer", "unit_code": "2200"}),
    )
}

/// A draft application of ent1 with one goods line.
fn draft(consignee: &str, goods_name: &str) -> Value {
    json!({"direction": "export", "district_code": "2200", "site_code": "2201", "applicant_code": "3101960001",
           "consignor_code": "3101960001", "consignee_name": consignee, "destination_country": "JP",
           "goods": [{"hs_code": "0303630000", "name": goods_name, "quantity": 1.0, "unit": "kg",
                      "net_weight_kg": 1.0, "value_usd": 1.0, "origin_country": "CN"}]})
}

fn cases() -> Vec<Case> {
    use Method as M;
    let j = "application/json";
    let c = |name, method, path, user, content_type, body, status, code, says| Case {
        name,
        method,
        path,
        user,
        content_type,
        body,
        status,
        code,
        says,
    };
    vec![
        c(
            "truncated JSON",
            M::POST,
            "/api/v1/auth/login",
            None,
            j,
            b"{\"username\":".to_vec(),
            400,
            "invalid_json",
            "not valid JSON",
        ),
        c(
            "missing field",
            M::POST,
            "/api/v1/auth/login",
            None,
            j,
            json_body(json!({"username": "admin"})),
            422,
            "invalid_field",
            "password",
        ),
        c(
            "unknown field",
            M::POST,
            "/api/v1/auth/login",
            None,
            j,
            json_body(json!({"username": "a", "password": "b", "otp": 1})),
            422,
            "unknown_field",
            "otp",
        ),
        c(
            "wrong content type",
            M::POST,
            "/api/v1/auth/login",
            None,
            "text/plain",
            b"username=admin".to_vec(),
            415,
            "unsupported_media_type",
            "application/json",
        ),
        c(
            "oversized body",
            M::POST,
            "/api/v1/auth/login",
            None,
            j,
            vec![b' '; 2 * 1024 * 1024],
            413,
            "payload_too_large",
            "larger",
        ),
        c(
            "wrong type",
            M::POST,
            "/api/v1/auth/login",
            None,
            j,
            json_body(json!({"username": 5, "password": "b"})),
            422,
            "invalid_field",
            "username",
        ),
        c(
            "9-digit customs code",
            M::POST,
            "/api/v1/admin/enterprises",
            Some("admin"),
            j,
            enterprise("310196000", "91320100MA1N2K3P45", "general"),
            422,
            "invalid_field",
            "exactly 10 digits",
        ),
        c(
            "USCC check character",
            M::POST,
            "/api/v1/admin/enterprises",
            Some("admin"),
            j,
            enterprise("3101960099", "91320100MA1N2K3P46", "general"),
            422,
            "invalid_field",
            "should be `5`",
        ),
        c(
            "USCC forbidden letter",
            M::POST,
            "/api/v1/admin/enterprises",
            Some("admin"),
            j,
            enterprise("3101960099", "9132010OMA1N2K3P45", "general"),
            422,
            "invalid_field",
            "position 8",
        ),
        c(
            "unknown credit rating",
            M::POST,
            "/api/v1/admin/enterprises",
            Some("admin"),
            j,
            enterprise("3101960099", "91320100MA1N2K3P45", "AAA"),
            422,
            "invalid_field",
            "credit_rating",
        ),
        c(
            "duplicate enterprise",
            M::POST,
            "/api/v1/admin/enterprises",
            Some("admin"),
            j,
            enterprise("3101960001", "91320100MA1N2K3P45", "general"),
            409,
            "duplicate_enterprise",
            "3101960001",
        ),
        c(
            "district code with a letter",
            M::POST,
            "/api/v1/admin/units",
            Some("admin"),
            j,
            json_body(json!({"code": "22A1", "name": "X", "kind": "site", "parent_code": "2200"})),
            422,
            "invalid_field",
            "4 digits",
        ),
        c(
            "unknown parent unit",
            M::POST,
            "/api/v1/admin/units",
            Some("admin"),
            j,
            json_body(json!({"code": "2299", "name": "X", "kind": "site", "parent_code": "9999"})),
            422,
            "unknown_unit",
            "9999",
        ),
        c(
            "site without parent",
            M::POST,
            "/api/v1/admin/units",
            Some("admin"),
            j,
            json_body(json!({"code": "2299", "name": "X", "kind": "site"})),
            422,
            "missing_parent",
            "parent_code",
        ),
        c(
            "unknown time zone",
            M::POST,
            "/api/v1/admin/units",
            Some("admin"),
            j,
            json_body(
                json!({"code": "2299", "name": "X", "kind": "site", "parent_code": "2200", "timezone": "Mars/Olympus"}),
            ),
            422,
            "unknown_timezone",
            "Mars/Olympus",
        ),
        c(
            "weak password",
            M::POST,
            "/api/v1/admin/users",
            Some("admin"),
            j,
            user("newreviewer", "short"),
            422,
            "weak_password",
            "10 characters",
        ),
        c(
            "bad username",
            M::POST,
            "/api/v1/admin/users",
            Some("admin"),
            j,
            user("has space", "long-enough-pw"),
            422,
            "invalid_username",
            "3 to 64",
        ),
        c(
            "duplicate username",
            M::POST,
            "/api/v1/admin/users",
            Some("admin"),
            j,
            user("officer1", "long-enough-pw"),
            409,
            "duplicate_username",
            "officer1",
        ),
        c(
            "enterprise role without enterprise",
            M::POST,
            "/api/v1/admin/users",
            Some("admin"),
            j,
            json_body(
                json!({"username": "e-op", "display_name": "E", "password": "long-enough-pw", "role": "enterprise_operator"}),
            ),
            422,
            "missing_enterprise",
            "enterprise_code",
        ),
        c(
            "non-numeric path id",
            M::GET,
            "/api/v1/enterprises/abc",
            Some("reviewer1"),
            j,
            vec![],
            400,
            "invalid_path",
            "abc",
        ),
        c(
            "bad query parameter",
            M::GET,
            "/api/v1/admin/audit?limit=many",
            Some("admin"),
            j,
            vec![],
            400,
            "invalid_query",
            "limit",
        ),
        c(
            "time without offset",
            M::POST,
            "/api/v1/delegations",
            Some("ent1-legal"),
            j,
            json_body(
                json!({"agent_customs_code": "3101980003", "scopes": ["bookings"], "valid_until": "2030-01-01 08:00"}),
            ),
            422,
            "invalid_field",
            "RFC 3339",
        ),
        c(
            "unknown scope",
            M::POST,
            "/api/v1/delegations",
            Some("ent1-legal"),
            j,
            json_body(
                json!({"agent_customs_code": "3101980003", "scopes": ["everything"], "valid_until": "2030-01-01T00:00:00Z"}),
            ),
            422,
            "invalid_field",
            "everything",
        ),
        c(
            "status change without reason",
            M::POST,
            "/api/v1/devices/demo-handheld-officer1/status",
            Some("supervisor1"),
            j,
            json_body(json!({"status": "frozen", "reason": " "})),
            422,
            "missing_reason",
            "why",
        ),
        c(
            "signature not base64",
            M::POST,
            "/api/v1/auth/strong-login",
            None,
            j,
            json_body(json!({"challenge_id": "x", "signature": "%%%"})),
            422,
            "invalid_signature",
            "base64",
        ),
        c(
            "public key of wrong length",
            M::PUT,
            "/api/v1/admin/users/1/signing-key",
            Some("admin"),
            j,
            json_body(json!({"public_key": "AAAA"})),
            422,
            "invalid_public_key",
            "32-byte",
        ),
        c(
            "availability in the year 9999",
            M::GET,
            "/api/v1/sites/2201/availability?from=9999-12-01&to=9999-12-31",
            Some("ent1-operator"),
            j,
            vec![],
            422,
            "invalid_date",
            "outside the years 1970 to 2999",
        ),
        c(
            "statistics from the year 1",
            M::GET,
            "/api/v1/stats?from=0001-01-01T00:00:00Z",
            Some("reviewer1"),
            j,
            vec![],
            422,
            "invalid_time",
            "outside the years 1970 to 2999",
        ),
        c(
            "applications created before the year 5000",
            M::GET,
            "/api/v1/applications?to=5000-01-01T00:00:00Z",
            Some("ent1-operator"),
            j,
            vec![],
            422,
            "invalid_time",
            "outside the years 1970 to 2999",
        ),
        c(
            "delegation until the year 5000",
            M::POST,
            "/api/v1/delegations",
            Some("ent1-legal"),
            j,
            json_body(
                json!({"agent_customs_code": "3101980003", "scopes": ["bookings"], "valid_until": "5000-01-01T00:00:00Z"}),
            ),
            422,
            "invalid_field",
            "outside the years 1970 to 2999",
        ),
        c(
            "a 1 MB consignee name",
            M::POST,
            "/api/v1/applications",
            Some("ent1-operator"),
            j,
            json_body(draft("x".repeat(1_000_000).as_str(), "frozen fish")),
            422,
            "invalid_field",
            "consignee_name: is 1000000 characters long; at most 200",
        ),
        c(
            "NUL in a goods name",
            M::POST,
            "/api/v1/applications",
            Some("ent1-operator"),
            j,
            json_body(draft("Tokyo Fresh KK", "frozen\0fish")),
            422,
            "invalid_field",
            "goods[0].name: contains the control character U+0000",
        ),
        c(
            "a bidi override in a review opinion",
            M::POST,
            "/api/v1/applications/1/review",
            Some("reviewer1"),
            j,
            json_body(json!({"action": "return", "opinion": "fine \u{202E}gnp.exe"})),
            422,
            "invalid_field",
            "opinion: contains the bidirectional control U+202E",
        ),
        c(
            "an escape sequence in a device name",
            M::POST,
            "/api/v1/devices",
            Some("officer1"),
            j,
            json_body(json!({"name": "\u{1b}[31mred"})),
            422,
            "invalid_field",
            "name: contains the control character U+001B",
        ),
        c(
            "delegation from 1969",
            M::POST,
            "/api/v1/delegations",
            Some("ent1-legal"),
            j,
            json_body(
                json!({"agent_customs_code": "3101980003", "scopes": ["bookings"], "valid_from": "1969-07-20T20:17:00Z", "valid_until": "2030-01-01T00:00:00Z"}),
            ),
            422,
            "invalid_field",
            "valid_from: `1969-07-20T20:17:00Z` is outside the years 1970 to 2999",
        ),
        c(
            "delegation back-dated to 2001",
            M::POST,
            "/api/v1/delegations",
            Some("ent1-legal"),
            j,
            json_body(
                json!({"agent_customs_code": "3101980003", "scopes": ["bookings"], "valid_from": "2001-01-01T00:00:00Z", "valid_until": "2030-01-01T00:00:00Z"}),
            ),
            422,
            "invalid_period",
            "more than a day before now",
        ),
        c(
            "operator created already expired",
            M::POST,
            "/api/v1/enterprise/operators",
            Some("ent1-legal"),
            j,
            json_body(
                json!({"username": "ent1-late", "display_name": "Late", "password": "long-enough-pw", "valid_until": "2001-01-01T00:00:00Z"}),
            ),
            422,
            "invalid_period",
            "not in the future",
        ),
        c("unknown route", M::GET, "/api/v1/nothing-here", None, j, vec![], 404, "no_route", "openapi.json"),
        c(
            "wrong method",
            M::DELETE,
            "/api/v1/auth/login",
            None,
            j,
            vec![],
            405,
            "method_not_allowed",
            "method",
        ),
        c(
            "wrong role",
            M::POST,
            "/api/v1/admin/units",
            Some("reviewer1"),
            j,
            json_body(json!({"code": "2299", "name": "X", "kind": "site", "parent_code": "2200"})),
            403,
            "forbidden",
            "admin",
        ),
    ]
}

#[tokio::test]
async fn bad_inputs_get_the_documented_4xx_and_write_nothing() {
    let server = TestServer::start();
    let admin = server.login("admin").await;
    let (_, users_before) = admin.get("/api/v1/admin/users").await;
    let (_, audit_before) = admin.get("/api/v1/admin/audit?limit=1000").await;
    let cases = cases();
    assert!(cases.len() >= 15);
    for case in cases {
        let api = match case.user {
            Some(u) => server.login(u).await,
            None => server.api(),
        };
        let (status, body) = api.raw(case.method.clone(), case.path, case.content_type, case.body).await;
        assert_eq!(status, case.status, "{}: {body}", case.name);
        assert_eq!(body["code"], case.code, "{}: {body}", case.name);
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(case.says),
            "{}: message {message:?} should mention {:?}",
            case.name,
            case.says
        );
        assert!(body.get("details").is_some(), "{}: every error has `details`", case.name);
    }
    let (_, users_after) = admin.get("/api/v1/admin/users").await;
    assert_eq!(users_before, users_after, "no refused request created a user");
    let (_, audit_after) = admin.get("/api/v1/admin/audit?limit=1000").await;
    let new_actions: Vec<&str> = audit_after.as_array().unwrap()[audit_before.as_array().unwrap().len()..]
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        new_actions.iter().all(|a| *a == "auth.login" || a.starts_with("auth.")),
        "only logins were audited: {new_actions:?}"
    );
}
