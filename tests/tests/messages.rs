//! Signed message exchange against the real server: one message, refusals with the rule named, resends,
//! a batch of 1,000, signed receipts, and the reference sender (`fieldcheck message send`).

use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use fieldcheck_tests::{Api, TestServer, certificates, now_secs, rfc3339, strong};
use serde_json::{Value, json};

const ENT1: &str = "3101960001";
const ENT2: &str = "4403960002";
const AGENT: &str = "3101980003";

fn demo_key(server: &TestServer, username: &str) -> SigningKey {
    let seed = std::fs::read_to_string(server.data_dir().join(format!("demo-keys/{username}.seed"))).unwrap();
    SigningKey::from_bytes(&hex::decode(seed.trim()).unwrap().try_into().unwrap())
}

/// A compact JWS over `payload`'s bytes, as any integrator's JOSE library would make it.
fn sign(key: &SigningKey, kid: &str, payload: &[u8]) -> String {
    let header = json!({"alg": "EdDSA", "kid": kid, "typ": "fieldcheck-message+jws"}).to_string();
    let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes()).to_bytes()))
}

fn application(applicant: &str, hs: &str, unit: &str) -> Value {
    json!({"direction": "export", "district_code": "2200", "site_code": "2201", "applicant_code": applicant,
           "consignor_code": applicant, "consignee_name": "Tokyo Fresh KK", "destination_country": "JP",
           "goods": [{"hs_code": hs, "name": "goods", "quantity": 1000.0, "unit": unit, "net_weight_kg": 1000.0,
                      "value_usd": 5000.0, "origin_country": "CN"}],
           "certificates": ["phytosanitary"]})
}

fn submit_message(id: &str, enterprise: &str) -> Value {
    json!({"type": "application.submit", "id": id, "enterprise": enterprise,
           "content": application(enterprise, "0303630000", "kg")})
}

async fn post_one(server: &TestServer, jws: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/messages", server.base))
        .header("content-type", "application/jose")
        .body(jws.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

/// Every application the admin sees (all of them), counted through the API.
async fn application_count(admin: &Api) -> usize {
    let mut n = 0;
    loop {
        let (status, page) = admin.get(&format!("/api/v1/applications?limit=500&offset={n}")).await;
        assert_eq!(status, 200, "{page}");
        let got = page.as_array().unwrap().len();
        n += got;
        if got < 500 {
            return n;
        }
    }
}

/// The first audit entry with `action`, paging through the log.
async fn audit_entry(admin: &Api, action: &str) -> Value {
    let mut after = 0;
    loop {
        let (status, page) = admin.get(&format!("/api/v1/admin/audit?after={after}&limit=1000")).await;
        assert_eq!(status, 200, "{page}");
        let entries = page.as_array().expect("a list of entries");
        if let Some(e) = entries.iter().find(|e| e["action"] == action) {
            return e.clone();
        }
        after = entries.last().unwrap_or_else(|| panic!("no audit entry {action}"))["seq"].as_i64().unwrap();
    }
}

#[tokio::test]
async fn a_signed_application_message_creates_a_numbered_submitted_application_with_its_evidence() {
    let server = TestServer::start();
    let admin = server.login("admin").await;
    let key = demo_key(&server, "ent1-operator");
    let payload = submit_message("erp-0001", ENT1).to_string();
    let jws = sign(&key, "ent1-operator", payload.as_bytes());

    let (status, answer) = post_one(&server, &jws).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["outcome"], "accepted");
    let result = &answer["result"];
    assert_eq!(
        (result["subject"].as_str(), result["state"].as_str()),
        (Some("application"), Some("submitted"))
    );
    let no = result["inspection_no"].as_str().unwrap();
    assert_eq!((no.len(), &no[4..8]), (15, "2200"), "{no}");

    let operator = server.login("ent1-operator").await;
    let (status, app) = operator.get(&format!("/api/v1/applications/{}", result["id"])).await;
    assert_eq!(status, 200, "{app}");
    assert_eq!((app["state"].as_str(), app["inspection_no"].as_str()), (Some("submitted"), Some(no)));

    // The signed message is kept beside what it created, byte for byte, and the audit entry names both.
    let (status, evidence) = operator.get(&format!("/api/v1/messages/{}", result["evidence_id"])).await;
    assert_eq!(status, 200, "{evidence}");
    assert_eq!(evidence["envelope"], jws);
    assert_eq!((evidence["subject"].as_str(), &evidence["subject_id"]), (Some("application"), &result["id"]));
    let entry = audit_entry(&admin, "message.application.submit").await;
    let details: Value = match &entry["details"] {
        Value::String(s) => serde_json::from_str(s).unwrap(),
        v => v.clone(),
    };
    assert_eq!(details["message_id"], "erp-0001");
    assert_eq!(details["created"], format!("application:{}", result["id"]));

    // A resend (a retry after a lost answer) gets the original answer and creates nothing.
    let before = application_count(&admin).await;
    let (status, again) = post_one(&server, &jws).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["outcome"], "replayed");
    assert_eq!(again["result"], answer["result"]);
    assert_eq!(application_count(&admin).await, before);

    // The same id with another payload is a conflict that names the original.
    let mut changed = submit_message("erp-0001", ENT1);
    changed["content"]["consignee_name"] = json!("Osaka Fresh KK");
    let (status, conflict) =
        post_one(&server, &sign(&key, "ent1-operator", changed.to_string().as_bytes())).await;
    assert_eq!((status, conflict["code"].as_str()), (409, Some("message_id_reused")), "{conflict}");
    assert_eq!(conflict["details"]["message_id"], "erp-0001");
    assert_eq!(conflict["details"]["original"]["evidence_id"], result["evidence_id"]);
    assert_eq!(application_count(&admin).await, before);
}

#[tokio::test]
async fn refused_messages_name_the_rule_and_create_nothing() {
    let server = TestServer::start();
    let admin = server.login("admin").await;
    let key = demo_key(&server, "ent1-operator");

    // A platform signer of the agent enterprise, which ENT1 has not delegated to.
    let platform_key = SigningKey::from_bytes(&[42u8; 32]);
    let (status, platform) = admin
        .post(
            "/api/v1/admin/platform-signers",
            json!({"enterprise_code": AGENT, "username": "harbour-platform", "display_name": "Harbour platform",
                   "public_key": STANDARD.encode(platform_key.verifying_key().as_bytes())}),
        )
        .await;
    assert_eq!(status, 201, "{platform}");

    let good = submit_message("m-1", ENT1).to_string();
    let tampered = {
        let jws = sign(&key, "ent1-operator", good.as_bytes());
        let parts: Vec<&str> = jws.split('.').collect();
        let other = good.replace("Tokyo Fresh KK", "Tokyo Fresh KL");
        format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(other), parts[2])
    };
    let stranger = SigningKey::from_bytes(&[3u8; 32]);
    let cases = [
        ("tampered payload", tampered, 401, "bad_signature"),
        ("unknown key", sign(&stranger, "nobody-here", good.as_bytes()), 401, "unknown_key"),
        ("a key not the signer's", sign(&stranger, "ent1-operator", good.as_bytes()), 401, "bad_signature"),
        (
            "platform without delegation",
            sign(&platform_key, "harbour-platform", good.as_bytes()),
            403,
            "not_delegated",
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"ent1-operator"}"#),
                URL_SAFE_NO_PAD.encode(&good)
            ),
            400,
            "unsupported_alg",
        ),
        (
            "certificate application without its fields",
            sign(
                &key,
                "ent1-operator",
                json!({"type": "certificate.apply", "id": "c-1", "enterprise": ENT1, "content": {}})
                    .to_string()
                    .as_bytes(),
            ),
            422,
            "invalid_content",
        ),
    ];
    let before = application_count(&admin).await;
    for (name, jws, status, rule) in cases {
        let (got, body) = post_one(&server, &jws).await;
        assert_eq!((got, body["code"].as_str()), (status, Some(rule)), "{name}: {body}");
        assert_eq!(body["details"]["rule"], rule, "{name}: the rule is named in the details too");
    }
    assert_eq!(application_count(&admin).await, before, "nothing was created");

    // A frozen operator's key signs nothing, even a correct signature.
    let legal = server.login("ent1-legal").await;
    let (_, operators) = legal.get("/api/v1/enterprise/operators").await;
    let operator_id =
        operators.as_array().unwrap().iter().find(|u| u["username"] == "ent1-operator").unwrap()["id"]
            .clone();
    let (status, body) = legal
        .post(
            &format!("/api/v1/enterprise/operators/{operator_id}/status"),
            json!({"status": "frozen", "reason": "card reported stolen"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post_one(&server, &sign(&key, "ent1-operator", good.as_bytes())).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("signer_frozen")), "{body}");
    assert_eq!(application_count(&admin).await, before);

    // Once ENT1 delegates applications to the agent, the platform's message goes through.
    let (status, d) = legal
        .post(
            "/api/v1/delegations",
            json!({"agent_customs_code": AGENT, "scopes": ["applications"],
                                              "valid_until": rfc3339(now_secs() + 86_400)}),
        )
        .await;
    assert_eq!(status, 201, "{d}");
    let (status, body) = post_one(&server, &sign(&platform_key, "harbour-platform", good.as_bytes())).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(application_count(&admin).await, before + 1);
}

#[tokio::test]
async fn a_signed_certificate_message_gets_released_goods_their_certificate_and_is_listed_as_evidence() {
    let server = TestServer::start();
    let key = demo_key(&server, "ent1-operator");
    let released = certificates::released(&server).await;
    let app = released.application_id;
    let operator = strong(&server, "ent1-operator").await;

    // Before release nothing can be applied for: a refusal with the rule, and nothing written.
    let (status, draft) = operator.post("/api/v1/applications", application(ENT1, "0303630000", "kg")).await;
    assert_eq!(status, 201, "{draft}");
    let early = json!({"type": "certificate.apply", "id": "cert-early", "enterprise": ENT1,
                       "content": certificates::request(draft["id"].as_i64().unwrap())});
    let (status, body) = post_one(&server, &sign(&key, "ent1-operator", early.to_string().as_bytes())).await;
    assert_eq!(status / 100, 4, "{body}");
    assert_eq!(body["details"]["message_id"], "cert-early", "{body}");
    let (_, none) = operator.get(&format!("/api/v1/applications/{}/messages", draft["id"])).await;
    assert_eq!(none["messages"], json!([]), "a refused message is no evidence");

    let message = json!({"type": "certificate.apply", "id": "cert-1", "enterprise": ENT1,
                         "content": certificates::request(app)});
    let jws = sign(&key, "ent1-operator", message.to_string().as_bytes());
    let (status, answer) = post_one(&server, &jws).await;
    assert_eq!((status, answer["outcome"].as_str()), (201, Some("accepted")), "{answer}");
    let result = &answer["result"];
    assert_eq!(
        (result["subject"].as_str(), result["state"].as_str()),
        (Some("certificate_application"), Some("issued")),
        "every review rule passes, so the certificate is issued with no human step: {answer}"
    );
    let (status, ca) = operator.get(&format!("/api/v1/certificate-applications/{}", result["id"])).await;
    assert_eq!((status, ca["state"].as_str()), (200, Some("issued")), "{ca}");
    let (status, cert) = operator.get(&format!("/api/v1/certificates/{}", ca["certificate_id"])).await;
    assert_eq!((status, cert["status"].as_str()), (200, Some("valid")), "{cert}");
    let (_, i) = operator.get(&format!("/api/v1/applications/{app}")).await;
    assert_eq!(result["inspection_no"], i["inspection_no"]);

    // A resend answers the same and issues nothing more.
    let (status, again) = post_one(&server, &jws).await;
    assert_eq!((status, again["outcome"].as_str()), (200, Some("replayed")), "{again}");
    assert_eq!(again["result"], answer["result"]);

    // The application lists the message as its evidence; the envelope is the one sent.
    let (status, page) = operator.get(&format!("/api/v1/applications/{app}/messages")).await;
    assert_eq!(status, 200, "{page}");
    let listed = page["messages"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{page}");
    assert_eq!(
        (listed[0]["message_id"].as_str(), listed[0]["type"].as_str(), listed[0]["signer"].as_str()),
        (Some("cert-1"), Some("certificate.apply"), Some("ent1-operator"))
    );
    assert_eq!(listed[0]["evidence_id"], result["evidence_id"]);
    assert_eq!(page["next_cursor"], Value::Null);
    let (_, evidence) = operator.get(&format!("/api/v1/messages/{}", result["evidence_id"])).await;
    assert_eq!(evidence["envelope"].as_str(), Some(jws.as_str()));

    // Another enterprise is told the application does not exist; bad paging is a 422 naming the field.
    let other = server.login("ent2-operator").await;
    let (status, body) = other.get(&format!("/api/v1/applications/{app}/messages")).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = operator.get(&format!("/api/v1/applications/{app}/messages?limit=0")).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("invalid_limit")), "{body}");
}

#[tokio::test]
async fn a_batch_of_1000_with_10_bad_messages_creates_exactly_990_and_answers_all_1000() {
    let server = TestServer::start();
    let admin = server.login("admin").await;
    let key = demo_key(&server, "ent1-operator");
    let stranger = SigningKey::from_bytes(&[3u8; 32]);
    let mut messages = Vec::new();
    let mut bad = Vec::new();
    for i in 0..1000 {
        let id = format!("batch-{i:04}");
        // Two bad messages in each fifth of the batch, one kind per fifth: a signature by another key; an
        // unknown HS code; an enterprise not delegated; an id used earlier in the same batch for another
        // payload; a malformed envelope.
        let kind = i / 200;
        let jws = if i % 100 != 7 + 10 * kind {
            sign(&key, "ent1-operator", submit_message(&id, ENT1).to_string().as_bytes())
        } else {
            bad.push(i);
            match kind {
                0 => sign(&stranger, "ent1-operator", submit_message(&id, ENT1).to_string().as_bytes()),
                1 => {
                    let mut m = submit_message(&id, ENT1);
                    m["content"]["goods"][0]["hs_code"] = json!("9999999999");
                    sign(&key, "ent1-operator", m.to_string().as_bytes())
                }
                2 => sign(&key, "ent1-operator", submit_message(&id, ENT2).to_string().as_bytes()),
                3 => {
                    let mut m = submit_message("batch-0000", ENT1);
                    m["content"]["consignee_name"] = json!(format!("other {i}"));
                    sign(&key, "ent1-operator", m.to_string().as_bytes())
                }
                _ => "not.a-jws".to_string(),
            }
        };
        messages.push(Value::String(jws));
    }
    assert_eq!(bad.len(), 10);
    let before = application_count(&admin).await;
    let (status, body) = server.api().post("/api/v1/messages", json!({"messages": messages})).await;
    assert_eq!(status, 200, "{body}");
    let answers = body["answers"].as_array().unwrap();
    assert_eq!(answers.len(), 1000);
    assert_eq!((body["accepted"].as_u64(), body["refused"].as_u64()), (Some(990), Some(10)));
    let refused: Vec<usize> =
        answers.iter().enumerate().filter(|(_, a)| a["outcome"] == "refused").map(|(i, _)| i).collect();
    assert_eq!(refused, bad);
    let rules: Vec<&str> = refused.iter().map(|&i| answers[i]["error"]["code"].as_str().unwrap()).collect();
    assert_eq!(
        rules,
        [
            "bad_signature",
            "bad_signature",
            "submission_rules",
            "submission_rules",
            "not_delegated",
            "not_delegated",
            "message_id_reused",
            "message_id_reused",
            "malformed_envelope",
            "malformed_envelope"
        ]
    );
    assert_eq!(application_count(&admin).await, before + 990);
    let numbers: std::collections::BTreeSet<&str> =
        answers.iter().filter_map(|a| a["result"]["inspection_no"].as_str()).collect();
    assert_eq!(numbers.len(), 990, "every accepted message has its own inspection number");

    // Resending the whole batch creates nothing: 990 replays, the same 10 refusals.
    let (status, again) = server.api().post("/api/v1/messages", json!({"messages": messages})).await;
    assert_eq!(status, 200);
    assert_eq!((again["replayed"].as_u64(), again["refused"].as_u64()), (Some(990), Some(10)));
    assert_eq!(application_count(&admin).await, before + 990);
}

#[tokio::test]
async fn a_batch_over_the_configured_size_is_refused_before_any_work() {
    let server = TestServer::start_with(&[("FIELDCHECK__MESSAGES__MAX_PER_REQUEST", "3")]);
    let admin = server.login("admin").await;
    let key = demo_key(&server, "ent1-operator");
    let messages: Vec<String> = (0..4)
        .map(|i| sign(&key, "ent1-operator", submit_message(&format!("x-{i}"), ENT1).to_string().as_bytes()))
        .collect();
    let before = application_count(&admin).await;
    let (status, body) = server.api().post("/api/v1/messages", json!({"messages": messages})).await;
    assert_eq!((status, body["code"].as_str()), (413, Some("too_many_messages")), "{body}");
    assert_eq!(application_count(&admin).await, before);
}

#[tokio::test]
async fn a_signed_receipt_verifies_with_the_published_key_and_fails_after_one_changed_byte() {
    let server = TestServer::start();
    let key = demo_key(&server, "ent1-operator");
    let (status, _) =
        post_one(&server, &sign(&key, "ent1-operator", submit_message("r-1", ENT1).to_string().as_bytes()))
            .await;
    assert_eq!(status, 201);
    let operator = server.login("ent1-operator").await;
    let (status, page) = operator.get("/api/v1/receipts/signed?after=0").await;
    assert_eq!(status, 200, "{page}");
    let receipt = page["receipts"].as_array().unwrap().last().unwrap()["jws"].as_str().unwrap().to_string();

    let (status, jwks) = server.api().get("/.well-known/receipts-jwks.json").await;
    assert_eq!(status, 200);
    let jwk = &jwks["keys"][0];
    assert_eq!((jwk["kty"].as_str(), jwk["crv"].as_str()), (Some("OKP"), Some("Ed25519")));
    let public: [u8; 32] = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap().try_into().unwrap();
    let public = VerifyingKey::from_bytes(&public).unwrap();

    let verify = |jws: &str| -> Result<Value, String> {
        let parts: Vec<&str> = jws.split('.').collect();
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!((header["alg"].as_str(), &header["kid"]), (Some("EdDSA"), &jwk["kid"]));
        let signature =
            ed25519_dalek::Signature::from_slice(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap()).unwrap();
        public
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .map_err(|e| e.to_string())?;
        Ok(serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).map_err(|e| e.to_string())?).unwrap())
    };
    let payload = verify(&receipt).expect("the receipt verifies");
    assert_eq!(payload["receipt"]["state"], "submitted");
    assert_eq!(payload["receipt"]["subject"], "application");

    let parts: Vec<&str> = receipt.split('.').collect();
    let mut bytes = URL_SAFE_NO_PAD.decode(parts[1]).unwrap();
    let at = bytes.iter().position(|&b| b == b'1').expect("a digit to change");
    bytes[at] = b'2';
    let changed = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(&bytes), parts[2]);
    assert!(verify(&changed).is_err(), "one changed byte breaks the signature");
}

#[tokio::test]
async fn the_reference_sender_signs_and_sends_a_payload_file() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let payload = dir.path().join("draft.json");
    std::fs::write(
        &payload,
        json!({"type": "application.draft", "id": "cli-1", "enterprise": ENT1,
               "content": application(ENT1, "0303630000", "kg")})
        .to_string(),
    )
    .unwrap();
    let key = server.data_dir().join("demo-keys/ent1-operator.seed");
    let out = std::process::Command::new(fieldcheck_tests::binary("fieldcheck"))
        .args(["message", "send", "--kid", "ent1-operator", "--server", &server.base, "--key"])
        .arg(&key)
        .arg(&payload)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let answer: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        (answer["outcome"].as_str(), answer["result"]["state"].as_str()),
        (Some("accepted"), Some("draft"))
    );
}

/// `fieldcheck message send` as an integrator runs it against a deployment: HTTPS through the TLS proxy,
/// trusting the private CA of `--ca-file`. Without that CA the certificate is not trusted and nothing is
/// sent; with it the message is accepted.
#[tokio::test]
async fn the_reference_sender_sends_over_https_trusting_only_the_ca_file() {
    let server = TestServer::start();
    let tls = fieldcheck_tests::tls::terminate(&server.base);
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &tls.ca_pem).unwrap();
    let payload = dir.path().join("draft.json");
    std::fs::write(
        &payload,
        json!({"type": "application.draft", "id": "tls-1", "enterprise": ENT1,
               "content": application(ENT1, "0303630000", "kg")})
        .to_string(),
    )
    .unwrap();
    let key = server.data_dir().join("demo-keys/ent1-operator.seed");
    let send = |ca: Option<&std::path::Path>| {
        let mut cmd = std::process::Command::new(fieldcheck_tests::binary("fieldcheck"));
        cmd.args(["message", "send", "--kid", "ent1-operator", "--server", &tls.base, "--key"]).arg(&key);
        if let Some(ca) = ca {
            cmd.arg("--ca-file").arg(ca);
        }
        cmd.arg(&payload).output().unwrap()
    };

    let admin = server.login("admin").await;
    let before = application_count(&admin).await;
    let untrusted = send(None);
    let stderr = String::from_utf8_lossy(&untrusted.stderr);
    assert!(!untrusted.status.success() && stderr.contains(" CA"), "{stderr}");
    assert_eq!(application_count(&admin).await, before, "nothing sent without trusting the CA");

    let out = send(Some(ca_file.as_path()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let answer: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        (answer["outcome"].as_str(), answer["result"]["state"].as_str()),
        (Some("accepted"), Some("draft"))
    );
}

/// The JWK set's key named by a compact JWS's `kid`, and whether the JWS verifies with it.
fn verifies_with_its_kid(jwks: &Value, jws: &str) -> (String, bool) {
    let parts: Vec<&str> = jws.split('.').collect();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let kid = header["kid"].as_str().unwrap().to_string();
    let Some(jwk) = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == kid.as_str()) else {
        return (kid, false);
    };
    let x: [u8; 32] = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap().try_into().unwrap();
    let signature = ed25519_dalek::Signature::from_slice(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap()).unwrap();
    let ok = VerifyingKey::from_bytes(&x)
        .unwrap()
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
        .is_ok();
    (kid, ok)
}

/// The operator's receipts, signed.
async fn signed_receipts(server: &TestServer) -> Vec<String> {
    let (status, page) = server.login("ent1-operator").await.get("/api/v1/receipts/signed?after=0").await;
    assert_eq!(status, 200, "{page}");
    page["receipts"].as_array().unwrap().iter().map(|r| r["jws"].as_str().unwrap().to_string()).collect()
}

/// `fieldcheck admin rotate-receipt-key` on the data dir, then a restart: new receipts carry the new key's
/// `kid`, and a receipt signed before still verifies with the key the JWK set publishes under its own.
#[tokio::test]
async fn after_a_receipt_key_rotation_old_signed_receipts_still_verify_by_their_kid() {
    let mut server = TestServer::start();
    let key = demo_key(&server, "ent1-operator");
    let jws = sign(&key, "ent1-operator", submit_message("rot-1", ENT1).to_string().as_bytes());
    assert_eq!(post_one(&server, &jws).await.0, 201);
    let old = signed_receipts(&server).await.pop().unwrap();
    let (_, jwks) = server.api().get("/.well-known/receipts-jwks.json").await;
    let (old_kid, ok) = verifies_with_its_kid(&jwks, &old);
    assert!(ok);

    server.stop();
    let out = std::process::Command::new(fieldcheck_tests::binary("fieldcheck"))
        .args(["admin", "rotate-receipt-key", "--data-dir"])
        .arg(server.data_dir())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    server.restart();

    let (_, jwks) = server.api().get("/.well-known/receipts-jwks.json").await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2, "{jwks}");
    assert_eq!(verifies_with_its_kid(&jwks, &old), (old_kid.clone(), true), "the old receipt, by its kid");
    let new = signed_receipts(&server).await.pop().unwrap();
    let (new_kid, ok) = verifies_with_its_kid(&jwks, &new);
    assert!(ok && new_kid != old_kid && jwks["keys"][0]["kid"] == new_kid.as_str(), "{new_kid} {jwks}");
    let admin = server.login("admin").await;
    let entry = audit_entry(&admin, "receipt_key.rotate").await;
    assert_eq!(
        (entry["details"]["retired_kid"].as_str(), entry["details"]["kid"].as_str()),
        (Some(old_kid.as_str()), Some(new_kid.as_str()))
    );
}
