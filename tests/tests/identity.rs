//! Login, refresh rotation, logout, strong login and forged tokens, against the real server.

use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use ed25519_dalek::{Signer, SigningKey, pkcs8::EncodePrivateKey};
use fieldcheck_tests::{Api, TestServer, now_secs};
use serde_json::{Value, json};

async fn login_pair(server: &TestServer, username: &str) -> Value {
    let (status, body) = server
        .api()
        .post("/api/v1/auth/login", json!({"username": username, "password": "demo-password"}))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

fn token(body: &Value, key: &str) -> String {
    body[key].as_str().expect("token field").to_string()
}

#[tokio::test]
async fn a_login_gives_a_token_pair_that_works_until_logout() {
    let server = TestServer::start();
    let pair = login_pair(&server, "reviewer1").await;
    assert_eq!(pair["token_type"], "Bearer");
    assert_eq!(pair["expires_in"], 900);
    let api = server.api().with_token(&token(&pair, "access_token"));
    let (status, me) = api.get("/api/v1/me").await;
    assert_eq!(status, 200);
    assert_eq!(me["user"]["username"], "reviewer1");
    assert_eq!(me["aal"], "password");

    let (status, _) = api.post("/api/v1/auth/logout", json!({})).await;
    assert_eq!(status, 204);
    let (status, body) = api.get("/api/v1/me").await;
    assert_eq!((status, body["code"].as_str()), (401, Some("session_ended")));
    let (status, _) = server
        .api()
        .post("/api/v1/auth/refresh", json!({"refresh_token": token(&pair, "refresh_token")}))
        .await;
    assert_eq!(status, 401, "a logged-out session cannot be refreshed");
}

#[tokio::test]
async fn refresh_rotates_and_a_spent_refresh_token_ends_the_session() {
    let server = TestServer::start();
    let first = login_pair(&server, "officer1").await;
    let (status, second) = server
        .api()
        .post("/api/v1/auth/refresh", json!({"refresh_token": token(&first, "refresh_token")}))
        .await;
    assert_eq!(status, 200, "{second}");
    assert_ne!(token(&first, "refresh_token"), token(&second, "refresh_token"));
    let api = server.api().with_token(&token(&second, "access_token"));
    assert_eq!(api.get("/api/v1/me").await.0, 200);

    let (status, body) = server
        .api()
        .post("/api/v1/auth/refresh", json!({"refresh_token": token(&first, "refresh_token")}))
        .await;
    assert_eq!((status, body["code"].as_str()), (401, Some("refresh_token_reused")));
    // Reuse means the token leaked: the whole session ends, including the rotated pair.
    let (status, body) = api.get("/api/v1/me").await;
    assert_eq!((status, body["code"].as_str()), (401, Some("session_ended")));
    let (status, _) = server
        .api()
        .post("/api/v1/auth/refresh", json!({"refresh_token": token(&second, "refresh_token")}))
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_answer_for_the_same_work() {
    let server = TestServer::start();
    let hashes = server.metric("fieldcheck_password_hashes_total").await;
    let (s1, b1) = server
        .api()
        .post("/api/v1/auth/login", json!({"username": "admin", "password": "not-the-password"}))
        .await;
    assert_eq!(server.metric("fieldcheck_password_hashes_total").await, hashes + 1.0);
    let (s2, b2) = server
        .api()
        .post("/api/v1/auth/login", json!({"username": "nobody", "password": "not-the-password"}))
        .await;
    assert_eq!(
        server.metric("fieldcheck_password_hashes_total").await,
        hashes + 2.0,
        "one full hash as well"
    );
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(b1, b2);
    assert_eq!(b1["code"], "invalid_credentials");
}

#[tokio::test]
async fn an_access_token_expires_by_the_server_clock() {
    let server = TestServer::start();
    let api = server.login("supervisor1").await;
    assert_eq!(api.get("/api/v1/me").await.0, 200);
    server.set_clock(now_secs() + 901).await;
    let (status, body) = api.get("/api/v1/me").await;
    assert_eq!((status, body["code"].as_str()), (401, Some("token_expired")));
}

#[tokio::test]
async fn the_bearer_scheme_is_accepted_in_any_letter_case() {
    let server = TestServer::start();
    let pair = login_pair(&server, "reviewer1").await;
    let access = token(&pair, "access_token");
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let (status, _, body) = server
            .api()
            .bytes(
                reqwest::Method::GET,
                "/api/v1/me",
                &[("authorization", format!("{scheme} {access}"))],
                None,
            )
            .await;
        assert_eq!(status, 200, "{scheme}: {}", String::from_utf8_lossy(&body));
    }
}

fn decode_part(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[tokio::test]
async fn forged_tokens_are_refused() {
    let server = TestServer::start();
    let pair = login_pair(&server, "ent1-operator").await;
    let real = token(&pair, "access_token");
    let parts: Vec<&str> = real.split('.').collect();
    let mut claims = decode_part(parts[1]);

    // Tampered payload, original signature.
    claims["role"] = json!("admin");
    let tampered = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(claims.to_string()), parts[2]);
    // `alg: none`, no signature.
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let alg_none = format!("{none_header}.{}.", URL_SAFE_NO_PAD.encode(claims.to_string()));
    // Properly signed, but by a key that is not the server's.
    let stranger = SigningKey::from_bytes(&[7u8; 32]);
    let der = stranger.to_pkcs8_der().unwrap();
    let other_key = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA),
        &claims,
        &jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes()),
    )
    .unwrap();
    // HMAC with the public key as the secret: the classic algorithm-confusion attack.
    let (_, jwks) = server.api().get("/api/v1/auth/jwks").await;
    let public_x = jwks["keys"][0]["x"].as_str().unwrap().to_string();
    let confused = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(public_x.as_bytes()),
    )
    .unwrap();

    for (name, forged) in [
        ("tampered", tampered),
        ("alg none", alg_none),
        ("other key", other_key),
        ("hs256", confused),
        ("garbage", "abc.def".into()),
    ] {
        let (status, body) = server.api().with_token(&forged).get("/api/v1/me").await;
        assert_eq!((status, body["code"].as_str()), (401, Some("invalid_token")), "{name}: {body}");
    }
    let (status, body) = server.api().get("/api/v1/me").await;
    assert_eq!((status, body["code"].as_str()), (401, Some("missing_token")));
}

async fn strong_login(server: &TestServer, username: &str) -> Value {
    let (status, ch) = server.api().post("/api/v1/auth/challenge", json!({"username": username})).await;
    assert_eq!(status, 200, "{ch}");
    let seed = std::fs::read_to_string(server.data_dir().join(format!("demo-keys/{username}.seed"))).unwrap();
    let key = SigningKey::from_bytes(&hex::decode(seed.trim()).unwrap().try_into().unwrap());
    let signature = key.sign(ch["challenge"].as_str().unwrap().as_bytes());
    let (status, body) = server
        .api()
        .post(
            "/api/v1/auth/strong-login",
            json!({"challenge_id": ch["challenge_id"], "signature": STANDARD.encode(signature.to_bytes())}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["aal"], "strong");
    // The same challenge cannot be answered twice.
    let (status, again) = server
        .api()
        .post(
            "/api/v1/auth/strong-login",
            json!({"challenge_id": ch["challenge_id"], "signature": STANDARD.encode(signature.to_bytes())}),
        )
        .await;
    assert_eq!((status, again["code"].as_str()), (401, Some("invalid_challenge")));
    body
}

#[tokio::test]
async fn a_signed_challenge_gives_a_strong_login_that_strong_routes_require() {
    let server = TestServer::start();
    let password_api = server.login("ent1-legal").await;
    let (_, operators) = password_api.get("/api/v1/enterprise/operators").await;
    let operator_id =
        operators.as_array().unwrap().iter().find(|u| u["username"] == "ent1-operator").unwrap()["id"]
            .clone();
    let new_key = STANDARD.encode(SigningKey::from_bytes(&[9u8; 32]).verifying_key().as_bytes());
    let path = format!("/api/v1/enterprise/operators/{operator_id}/signing-key");

    let (status, body) = password_api.put(&path, json!({"public_key": new_key})).await;
    assert_eq!(status, 403, "a password login is not enough: {body}");
    assert_eq!(body["details"]["required_aal"], "strong");

    let strong = strong_login(&server, "ent1-legal").await;
    let strong_api = server.api().with_token(&token(&strong, "access_token"));
    assert_eq!(strong_api.get("/api/v1/me").await.1["aal"], "strong");
    let (status, body) = strong_api.put(&path, json!({"public_key": new_key})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["has_signing_key"], true);
}

#[tokio::test]
async fn a_challenge_signed_with_the_wrong_key_is_refused() {
    let server = TestServer::start();
    let (_, ch) = server.api().post("/api/v1/auth/challenge", json!({"username": "ent1-legal"})).await;
    let wrong = SigningKey::from_bytes(&[3u8; 32]).sign(ch["challenge"].as_str().unwrap().as_bytes());
    let (status, body) = server
        .api()
        .post(
            "/api/v1/auth/strong-login",
            json!({"challenge_id": ch["challenge_id"], "signature": STANDARD.encode(wrong.to_bytes())}),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (401, Some("invalid_signature")));
}

#[tokio::test]
async fn the_jwks_endpoint_publishes_the_key_that_verifies_issued_tokens() {
    let server = TestServer::start();
    let pair = login_pair(&server, "admin").await;
    let (_, jwks) = server.api().get("/.well-known/jwks.json").await;
    let jwk = &jwks["keys"][0];
    assert_eq!((jwk["kty"].as_str(), jwk["crv"].as_str()), (Some("OKP"), Some("Ed25519")));
    let key = jsonwebtoken::DecodingKey::from_ed_components(jwk["x"].as_str().unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.validate_exp = false;
    let data = jsonwebtoken::decode::<Value>(&token(&pair, "access_token"), &key, &validation).unwrap();
    assert_eq!(data.claims["username"], "admin");
    assert_eq!(data.header.kid.as_deref(), jwk["kid"].as_str());
}

/// Password logins from one client address, all sent at once; answers the statuses, in order of arrival.
async fn burst(api: &Api, username: &str, password: &str, n: usize) -> Vec<u16> {
    let body = json!({"username": username, "password": password});
    let logins = (0..n).map(|_| api.post("/api/v1/auth/login", body.clone()));
    futures_util::future::join_all(logins).await.into_iter().map(|(status, _)| status).collect()
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|&&s| s == status).count()
}

/// A login's status and `Retry-After` header.
async fn login_waits(api: &Api, username: &str, password: &str) -> (u16, Option<String>) {
    let body = json!({"username": username, "password": password}).to_string();
    let (status, headers, _) = api
        .bytes(
            reqwest::Method::POST,
            "/api/v1/auth/login",
            &[("content-type", "application/json".into())],
            Some(body.into()),
        )
        .await;
    (status, headers.get("retry-after").map(|v| v.to_str().unwrap().to_string()))
}

#[tokio::test]
async fn wrong_passwords_make_each_further_attempt_from_that_address_wait_longer() {
    let server = TestServer::start();
    let t0 = now_secs() + 60;
    server.set_clock(t0).await;
    let attacker = server.api_from([127, 0, 0, 2]);
    for _ in 0..5 {
        assert_eq!(login_waits(&attacker, "officer2", "guess-guess").await.0, 401);
    }
    let (status, retry_after) = login_waits(&attacker, "officer2", "demo-password").await;
    assert_eq!((status, retry_after.as_deref()), (429, Some("1")), "even the right password waits its turn");
    let (_, body) = attacker
        .post("/api/v1/auth/login", json!({"username": "officer2", "password": "demo-password"}))
        .await;
    assert_eq!(
        (body["code"].as_str(), body["details"]["retry_after_secs"].as_i64()),
        (Some("too_many_attempts"), Some(1))
    );

    server.set_clock(t0 + 1).await;
    assert_eq!(login_waits(&attacker, "officer2", "guess-guess").await.0, 401);
    assert_eq!(login_waits(&attacker, "officer2", "demo-password").await, (429, Some("2".into())));
    server.set_clock(t0 + 3).await;
    assert_eq!(login_waits(&attacker, "officer2", "guess-guess").await.0, 401);
    assert_eq!(login_waits(&attacker, "officer2", "demo-password").await, (429, Some("4".into())));
    // Other accounts from the same address are not held up; after the wait the right password works.
    assert_eq!(login_waits(&attacker, "officer1", "demo-password").await.0, 200);
    server.set_clock(t0 + 7).await;
    assert_eq!(login_waits(&attacker, "officer2", "demo-password").await.0, 200);
    assert_eq!(
        login_waits(&attacker, "officer2", "guess-guess").await.0,
        401,
        "a success starts the count over"
    );
}

#[tokio::test]
async fn a_burst_of_parallel_wrong_passwords_gets_no_more_checks_than_the_allowance() {
    // A queue long enough for the whole burst, so the login limit and not the hashing queue answers.
    let server = TestServer::start_with(&[("FIELDCHECK__AUTH__PASSWORD_HASH_QUEUE", "1000")]);
    let hashes_before = server.metric("fieldcheck_password_hashes_total").await;
    let statuses = burst(&server.api_from([127, 0, 0, 2]), "ent2-operator", "guess-guess", 100).await;
    assert_eq!((count(&statuses, 401), count(&statuses, 429)), (5, 95), "{statuses:?}");
    assert_eq!(server.metric("fieldcheck_password_hashes_total").await - hashes_before, 5.0);

    let admin = server.login("admin").await;
    let (_, entries) = admin.get("/api/v1/admin/audit?limit=1000").await;
    let failed = entries.as_array().unwrap().iter().filter(|e| e["action"] == "auth.login_failed").count();
    assert_eq!(failed, 5, "one audit entry per password actually checked");
}

#[tokio::test]
async fn the_owner_logs_in_from_another_address_while_an_attacker_waits() {
    let server = TestServer::start_with(&[("FIELDCHECK__AUTH__PASSWORD_HASH_QUEUE", "1000")]);
    let attacker = server.api_from([127, 0, 0, 2]);
    burst(&attacker, "ent2-operator", "guess-guess", 100).await;
    let (status, retry_after) = login_waits(&attacker, "ent2-operator", "demo-password").await;
    assert_eq!(status, 429);
    assert!(retry_after.is_some());
    let owner = server.api_from([127, 0, 0, 3]);
    assert_eq!(login_waits(&owner, "ent2-operator", "demo-password").await.0, 200);
}

#[tokio::test]
async fn a_strong_login_works_while_password_logins_for_the_account_wait() {
    let server = TestServer::start_with(&[("FIELDCHECK__AUTH__PASSWORD_HASH_QUEUE", "1000")]);
    let api = server.api();
    burst(&api, "ent2-legal", "guess-guess", 100).await;
    assert_eq!(login_waits(&api, "ent2-legal", "demo-password").await.0, 429);
    let strong = strong_login(&server, "ent2-legal").await;
    let me = server.api().with_token(&token(&strong, "access_token")).get("/api/v1/me").await.1;
    assert_eq!((me["user"]["username"].as_str(), me["aal"].as_str()), (Some("ent2-legal"), Some("strong")));
}

#[tokio::test]
async fn one_address_trying_many_usernames_waits_as_a_whole() {
    let server = TestServer::start();
    let sprayer = server.api_from([127, 0, 0, 5]);
    for i in 0..20 {
        assert_eq!(login_waits(&sprayer, &format!("nobody-{i}"), "guess-guess").await.0, 401);
    }
    assert_eq!(login_waits(&sprayer, "nobody-20", "guess-guess").await, (429, Some("1".into())));
    assert_eq!(
        login_waits(&sprayer, "officer1", "demo-password").await.0,
        429,
        "the address waits, whoever it names"
    );
    assert_eq!(login_waits(&server.api_from([127, 0, 0, 6]), "officer1", "demo-password").await.0, 200);
}
