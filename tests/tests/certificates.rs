//! Cloud-issued certificates end to end (issue 12): a consignment released through real handhelds, the
//! enterprise's strong login, the intelligent review, the printed PDF read back with poppler and its QR
//! code decoded with zbarimg, public verification, revoke and replace, and the SPS message.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use fieldcheck_tests::{
    Api, TestServer,
    certificates::{apply, issued, released, request},
    photos::sha256_hex,
    strong,
};
use serde_json::{Value, json};

/// Runs a command-line tool that must succeed; answers its standard output.
fn tool(program: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} is missing ({e}): scripts/test.sh installs it"));
    assert!(out.status.success(), "{program} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

async fn pdf(api: &Api, id: i64) -> (u16, Vec<u8>) {
    let (status, _, body) =
        api.bytes(reqwest::Method::POST, &format!("/api/v1/certificates/{id}/print"), &[], None).await;
    (status, body)
}

/// The certificate-signing key published beside the JWKS.
async fn published_key(server: &TestServer) -> VerifyingKey {
    let (status, jwks) = server.api().get("/.well-known/certificate-keys.json").await;
    assert_eq!(status, 200, "{jwks}");
    let x = URL_SAFE_NO_PAD.decode(jwks["keys"][0]["x"].as_str().unwrap()).unwrap();
    VerifyingKey::from_bytes(&x.try_into().unwrap()).unwrap()
}

fn signature_holds(key: &VerifyingKey, content: &[u8], signature: &str) -> bool {
    let sig = Signature::from_slice(&STANDARD.decode(signature).unwrap()).unwrap();
    key.verify(content, &sig).is_ok()
}

/// `GET url` with an Accept header; answers status and body text.
async fn fetch(url: &str, accept: &str) -> (u16, String) {
    let resp = reqwest::Client::new().get(url).header("accept", accept).send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// The kinds of the certificate receipts the caller can read, in order.
async fn certificate_receipts(api: &Api) -> Vec<String> {
    let (status, page) = api.get("/api/v1/receipts?after=0&limit=500").await;
    assert_eq!(status, 200, "{page}");
    page["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["subject"] == "certificate")
        .map(|r| r["kind"].as_str().unwrap().to_owned())
        .collect()
}

async fn verify(server: &TestServer, number: &str, digest: Option<&str>) -> (u16, Value) {
    let query = digest.map(|d| format!("?digest={d}")).unwrap_or_default();
    let (status, body) = fetch(&format!("{}/verify/{number}{query}", server.base), "application/json").await;
    (status, serde_json::from_str(&body).unwrap())
}

#[tokio::test]
async fn a_released_consignment_gets_its_certificate_with_no_human_step_printed_with_a_qr_code_that_verifies()
{
    let server = TestServer::start_with(&[("FIELDCHECK__CERTIFICATES__MAX_PRINTS", "2")]);
    let operator = strong(&server, "ent1-operator").await;
    let (released, cert) = issued(&server, &operator).await;
    let id = cert["id"].as_i64().unwrap();
    assert_eq!(
        (cert["status"].as_str(), cert["issued_by"].as_str()),
        (Some("valid"), Some("system")),
        "{cert}"
    );

    // The stored content is what the digest and the signature cover, and it names its evidence: the
    // sealed record's heads and digest and the photo.
    let content_text = cert["content"].as_str().unwrap();
    assert_eq!(sha256_hex(content_text.as_bytes()), cert["digest"].as_str().unwrap());
    let key = published_key(&server).await;
    assert!(signature_holds(&key, content_text.as_bytes(), cert["signature"].as_str().unwrap()));
    let content: Value = serde_json::from_str(content_text).unwrap();
    let supervisor = server.login("supervisor1").await;
    let (_, record) =
        supervisor.get(&format!("/api/v1/instructions/{}/record", released.instruction_id)).await;
    assert_eq!(content["evidence"]["record_heads"], record["heads"], "{content}");
    assert_eq!(content["evidence"]["record_digest"].as_str().unwrap().len(), 64);
    assert_eq!(content["evidence"]["photo_hashes"], json!([released.photo]));
    assert_eq!(content["goods"][0]["quantity"], 1000.0);

    // The enterprise's receipts tell the story.
    let kinds = certificate_receipts(&operator).await;
    assert_eq!(kinds, ["drafted", "issued"]);

    // The self-printed PDF: its text in both languages, only embedded subset fonts.
    let dir = tempfile::tempdir().unwrap();
    let (status, bytes) = pdf(&operator, id).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    let file = dir.path().join("certificate.pdf");
    std::fs::write(&file, &bytes).unwrap();
    let file = file.to_str().unwrap();
    let text = String::from_utf8(tool("pdftotext", &["-layout", file, "-"])).unwrap();
    for expected in [
        "卫生证书",
        "Health Certificate",
        "收货人",
        "Consignee",
        "Osaka Seafood KK",
        "冻红大麻哈鱼",
        "Frozen sockeye salmon",
        "货物适合人类食用",
        "fit for human consumption",
        cert["number"].as_str().unwrap(),
        "copy 1",
    ] {
        assert!(text.contains(expected), "`{expected}` is not in the PDF text:\n{text}");
    }
    let fonts = String::from_utf8(tool("pdffonts", &[file])).unwrap();
    let rows: Vec<&str> = fonts.lines().skip(2).collect();
    assert!(!rows.is_empty(), "{fonts}");
    for row in &rows {
        let cols: Vec<&str> = row.split_whitespace().collect();
        // name type [encoding…] emb sub uni object ID: the three flags sit before the object number.
        let n = cols.len();
        assert!(cols[0].contains('+'), "a subset font's name has a tag prefix: {row}");
        assert_eq!(&cols[n - 5..n - 2], ["yes", "yes", "yes"], "embedded, subset, unicode-mapped: {row}");
    }

    // Page 1 rendered to pixels: the QR code decodes to a URL this server answers `valid` for.
    let prefix = dir.path().join("page");
    tool("pdftoppm", &["-r", "150", "-f", "1", "-l", "1", "-png", file, prefix.to_str().unwrap()]);
    let png = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "png"))
        .expect("pdftoppm wrote a PNG");
    let decoded = String::from_utf8(tool("zbarimg", &["--quiet", "--raw", png.to_str().unwrap()])).unwrap();
    let url = decoded.trim();
    assert!(url.starts_with(&format!("{}/verify/", server.base)), "{url}");
    assert!(url.contains(cert["digest"].as_str().unwrap()), "the QR code carries the digest: {url}");
    let (status, body) = fetch(url, "application/json").await;
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (status, answer["status"].as_str(), answer["valid"].as_bool()),
        (200, Some("valid"), Some(true)),
        "{body}"
    );
    let (status, html) = fetch(url, "text/html,application/xhtml+xml;q=0.9").await;
    assert_eq!(status, 200);
    assert!(html.contains("Valid certificate") && html.contains(cert["number"].as_str().unwrap()), "{html}");

    // Prints are counted, numbered and limited (two allowed here).
    let (status, second) = pdf(&operator, id).await;
    assert_eq!(status, 200);
    std::fs::write(dir.path().join("second.pdf"), &second).unwrap();
    let text = String::from_utf8(tool("pdftotext", &[dir.path().join("second.pdf").to_str().unwrap(), "-"]))
        .unwrap();
    assert!(text.contains("copy 2"), "{text}");
    let (status, body) = operator.post(&format!("/api/v1/certificates/{id}/print"), json!({})).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("print_limit_reached")), "{body}");
    let (_, after) = operator.get(&format!("/api/v1/certificates/{id}")).await;
    assert_eq!(after["prints"], 2);
    let (_, audit) = server.login("admin").await.get("/api/v1/admin/audit?limit=1000").await;
    let printed = audit.as_array().unwrap().iter().filter(|e| e["action"] == "certificate.printed").count();
    assert_eq!(printed, 2);

    // The SPS message went out through the outbox to the directory sender.
    let number = cert["number"].as_str().unwrap();
    let outbox = server.data_dir().join("sps-outbox");
    let deadline = Instant::now() + Duration::from_secs(10);
    let delivered = loop {
        let (_, view) = operator.get(&format!("/api/v1/certificates/{id}")).await;
        if view["sps_delivery"]["state"] == "delivered" {
            break view;
        }
        assert!(Instant::now() < deadline, "the SPS message was not delivered: {view}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(delivered["sps_delivery"]["status"], "issued");
    let written = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n.starts_with(number) && n.ends_with("-issued.xml"));
    assert!(written.is_some(), "no message for {number} in {}", outbox.display());
}

/// (element path, text) pairs of an XML document in order; entity references (`&amp;`) are resolved into the
/// element's text.
fn sps_elements(xml: &[u8]) -> Vec<(String, String)> {
    use quick_xml::{Reader, events::Event};
    let mut reader = Reader::from_reader(xml);
    let (mut stack, mut out, mut buf, mut text) = (Vec::new(), Vec::new(), Vec::new(), String::new());
    loop {
        match reader.read_event_into(&mut buf).expect("the SPS message is well-formed XML") {
            Event::Start(s) => {
                stack.push(String::from_utf8(s.name().as_ref().to_vec()).unwrap());
                text.clear();
            }
            Event::Text(t) => text.push_str(&t.decode().unwrap()),
            Event::GeneralRef(r) => {
                let name = String::from_utf8(r.into_inner().into_owned()).unwrap();
                text.push_str(&quick_xml::escape::unescape(&format!("&{name};")).unwrap());
            }
            Event::End(_) => {
                if !text.trim().is_empty() {
                    out.push((stack.join("/"), text.trim().to_owned()));
                }
                stack.pop();
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    out
}

#[tokio::test]
async fn the_sps_export_parses_back_with_the_required_elements() {
    let server = TestServer::start();
    let operator = strong(&server, "ent1-operator").await;
    let (_, cert) = issued(&server, &operator).await;
    let (status, _, xml) = operator
        .bytes(reqwest::Method::GET, &format!("/api/v1/certificates/{}/sps.xml", cert["id"]), &[], None)
        .await;
    assert_eq!(status, 200);
    let text = String::from_utf8(xml.clone()).unwrap();
    assert!(text.contains("xmlns:rsm=\"urn:un:unece:uncefact:data:standard:SPSCertificate:17\""), "{text}");
    let elements = sps_elements(&xml);
    let value = |path: &str| elements.iter().find(|(p, _)| p == path).map(|(_, v)| v.as_str());
    let doc = "rsm:SPSCertificate/rsm:SPSExchangedDocument";
    let line =
        "rsm:SPSCertificate/rsm:SPSConsignment/ram:IncludedSPSConsignmentItem/ram:IncludedSPSTradeLineItem";
    assert_eq!(value(&format!("{doc}/ram:ID")), cert["number"].as_str());
    assert_eq!(value(&format!("{doc}/ram:TypeCode")), Some("852"));
    assert_eq!(value(&format!("{doc}/ram:StatusCode")), Some("70"));
    assert!(value(&format!("{doc}/ram:IssueDateTime/udt:DateTimeString")).is_some());
    assert_eq!(value(&format!("{doc}/ram:IssuerSPSParty/ram:Name")), Some("Demo Shanghai Customs"));
    assert_eq!(
        value("rsm:SPSCertificate/rsm:SPSConsignment/ram:ConsigneeSPSParty/ram:Name"),
        Some("Osaka Seafood KK")
    );
    assert_eq!(value("rsm:SPSCertificate/rsm:SPSConsignment/ram:ImportSPSCountry/ram:ID"), Some("JP"));
    assert_eq!(value(&format!("{line}/ram:SequenceNumeric")), Some("1"));
    assert_eq!(value(&format!("{line}/ram:ApplicableSPSClassification/ram:ClassCode")), Some("0303110000"));
    assert_eq!(value(&format!("{line}/ram:NetWeightMeasure")), Some("1000"));
}

#[tokio::test]
async fn a_failing_rule_queues_the_certificate_with_every_failed_rule_named_and_a_reviewer_issues_it() {
    let server = TestServer::start();
    let operator = strong(&server, "ent1-operator").await;
    let released = released(&server).await;
    let mut req = request(released.application_id);
    req["consignee"]["name"] = json!("Kobe Fish Trading KK");
    req["additional_declarations"] = json!([]);
    let queued = apply(&operator, req).await;
    assert_eq!(queued["state"], "queued", "{queued}");
    let failed: Vec<(&str, &str)> = queued["failed_rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["field"].as_str().unwrap(), r["rule"].as_str().unwrap()))
        .collect();
    assert_eq!(
        failed,
        [("consignee.name", "parties_match"), ("additional_declarations", "destination_requirement")],
        "{queued}"
    );
    assert!(queued["certificate_id"].is_null());
    let id = queued["id"].as_i64().unwrap();

    // The enterprise cannot issue it; the reviewer sees it in the queue and does.
    let (status, _) = operator.post(&format!("/api/v1/certificate-applications/{id}/issue"), json!({})).await;
    assert_eq!(status, 403);
    let reviewer = server.login("reviewer1").await;
    let (status, queue) = reviewer.get("/api/v1/certificate-applications?state=queued").await;
    assert_eq!(status, 200, "{queue}");
    assert!(queue.as_array().unwrap().iter().any(|q| q["id"] == id), "{queue}");
    let (status, decided) = reviewer
        .post(
            &format!("/api/v1/certificate-applications/{id}/issue"),
            json!({"opinion": "consignee is the buyer's agent; declaration on the contract"}),
        )
        .await;
    assert_eq!((status, decided["state"].as_str()), (200, Some("issued")), "{decided}");
    let (status, cert) = operator.get(&format!("/api/v1/certificates/{}", decided["certificate_id"])).await;
    assert_eq!(status, 200, "{cert}");
    assert!(cert["issued_by"].as_str().unwrap().starts_with("user:"), "{cert}");
    let content: Value = serde_json::from_str(cert["content"].as_str().unwrap()).unwrap();
    assert_eq!(content["consignee"]["name"], "Kobe Fish Trading KK");

    // A second application of the same type is queued: one valid certificate per type and consignment.
    let again = apply(&operator, request(released.application_id)).await;
    let rules: Vec<&str> =
        again["failed_rules"].as_array().unwrap().iter().map(|r| r["rule"].as_str().unwrap()).collect();
    assert_eq!((again["state"].as_str(), rules), (Some("queued"), vec!["unique_certificate"]), "{again}");
}

#[tokio::test]
async fn certificate_work_needs_a_strong_login_and_bad_requests_are_refused_with_nothing_written() {
    let server = TestServer::start();
    let released = released(&server).await;
    let app = released.application_id;

    // A password login is refused, naming the level required.
    let password = server.login("ent1-operator").await;
    let (status, body) = password.post("/api/v1/certificate-applications", request(app)).await;
    assert_eq!((status, body["details"]["required_aal"].as_str()), (403, Some("strong")), "{body}");
    assert_eq!(body["code"], "forbidden");

    let operator = strong(&server, "ent1-operator").await;
    let refused = |mut edit: Box<dyn FnMut(&mut Value)>| {
        let mut req = request(app);
        edit(&mut req);
        req
    };
    let cases: Vec<(&str, Value, u16, &str, Option<&str>)> = vec![
        (
            "quantities over the inspected ones",
            refused(Box::new(|r| r["goods"][0]["quantity"] = json!(1200.5))),
            422,
            "quantity_exceeds_inspected",
            Some("goods[0].quantity"),
        ),
        (
            "an unknown type",
            refused(Box::new(|r| r["type"] = json!("fishing_licence"))),
            422,
            "unknown_certificate_type",
            Some("type"),
        ),
        (
            "a goods line the application lacks",
            refused(Box::new(|r| r["goods"][0]["line"] = json!(2))),
            422,
            "unknown_goods_line",
            Some("goods[0].line"),
        ),
        (
            "text the certificate font cannot print",
            refused(Box::new(|r| r["consignee"]["name"] = json!("Osaka 🐟"))),
            422,
            "unprintable_text",
            Some("consignee.name"),
        ),
        ("a misspelt field", refused(Box::new(|r| r["consignees"] = json!({}))), 422, "unknown_field", None),
        (
            "an application that does not exist",
            refused(Box::new(|r| r["application_id"] = json!(999_999))),
            404,
            "not_found",
            None,
        ),
    ];
    for (case, req, status, code, field) in cases {
        let (got, body) = operator.post("/api/v1/certificate-applications", req).await;
        assert_eq!((got, body["code"].as_str()), (status, Some(code)), "{case}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{case}: {body}");
        if let Some(field) = field {
            assert_eq!(body["details"]["field"], field, "{case}: {body}");
        }
    }

    // Another enterprise, strongly logged in, may not apply for this consignment, nor learn it exists.
    let other = strong(&server, "ent2-legal").await;
    let (status, body) = other.post("/api/v1/certificate-applications", request(app)).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")), "{body}");
    // An agent that files this enterprise's applications but holds no `certificates` scope sees the
    // application and is told it may not apply.
    let legal = server.login("ent1-legal").await;
    let (status, body) = legal
        .post(
            "/api/v1/delegations",
            json!({"agent_customs_code": "3101980003", "scopes": ["applications"],
                   "valid_until": fieldcheck_tests::rfc3339(fieldcheck_tests::now_secs() + 30 * 86_400)}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let agent = strong(&server, "agent-legal").await;
    let (status, body) = agent.post("/api/v1/certificate-applications", request(app)).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")), "{body}");

    // Goods not released yet: a fresh draft application.
    let (_, draft) = password.post("/api/v1/applications", fieldcheck_tests::certificates::content()).await;
    let (status, body) =
        operator.post("/api/v1/certificate-applications", request(draft["id"].as_i64().unwrap())).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("not_released")), "{body}");

    // Nothing of the refused requests was written.
    let (status, list) = operator.get("/api/v1/certificate-applications").await;
    assert_eq!((status, list), (200, json!([])));
    assert_eq!(certificate_receipts(&operator).await, Vec::<String>::new());
}

#[tokio::test]
async fn verification_tells_altered_content_unknown_numbers_and_revoked_and_replaced_certificates_apart() {
    let server = TestServer::start();
    let operator = strong(&server, "ent1-operator").await;
    let (_, cert) = issued(&server, &operator).await;
    let number = cert["number"].as_str().unwrap();
    let digest = cert["digest"].as_str().unwrap();
    let content = cert["content"].as_str().unwrap();

    let (status, v) = verify(&server, number, Some(digest)).await;
    assert_eq!((status, v["status"].as_str()), (200, Some("valid")), "{v}");
    assert_eq!((v["digest"].as_str(), v["issuer"].as_str()), (Some(digest), Some("Demo Shanghai Customs")));

    // One changed byte of content: the signature fails against the published key, and the digest of the
    // altered content is not a valid certificate.
    let altered = content.replacen("1000", "9000", 1);
    assert_ne!(altered, content);
    let key = published_key(&server).await;
    assert!(!signature_holds(&key, altered.as_bytes(), cert["signature"].as_str().unwrap()));
    let (status, v) = verify(&server, number, Some(&sha256_hex(altered.as_bytes()))).await;
    assert_eq!((status, v["code"].as_str()), (404, Some("not_a_valid_certificate")), "{v}");
    assert!(v["message"].as_str().unwrap().contains("not a valid certificate"), "{v}");

    // An unknown number, for a program and for a person.
    let (status, v) = verify(&server, "220026SA999999", None).await;
    assert_eq!((status, v["code"].as_str()), (404, Some("not_a_valid_certificate")), "{v}");
    let (status, html) = fetch(&format!("{}/verify/220026SA999999", server.base), "text/html").await;
    assert_eq!(status, 404);
    assert!(html.contains("Not a valid certificate"), "{html}");

    // Replaced: the old number points to the new certificate, which names the one it replaces.
    let reviewer = server.login("reviewer1").await;
    let (status, new) = reviewer
        .post(
            &format!("/api/v1/certificates/{}/replace", cert["id"]),
            json!({"reason": "consignee's address corrected", "consignee": {"name": "Osaka Seafood KK", "address": "4-5-6 Nanko"}}),
        )
        .await;
    assert_eq!((status, new["status"].as_str()), (201, Some("valid")), "{new}");
    let new_number = new["number"].as_str().unwrap();
    assert_ne!(new_number, number);
    assert_eq!(new["replaces"], number);
    let (status, v) = verify(&server, number, Some(digest)).await;
    assert_eq!(
        (status, v["status"].as_str(), v["valid"].as_bool()),
        (200, Some("replaced"), Some(false)),
        "{v}"
    );
    assert_eq!(v["replaced_by"], new_number);
    let (status, html) = fetch(&format!("{}/verify/{number}", server.base), "text/html").await;
    assert_eq!(status, 200);
    assert!(html.contains("Replaced") && html.contains(new_number), "{html}");
    let new_content: Value = serde_json::from_str(new["content"].as_str().unwrap()).unwrap();
    assert_eq!(new_content["replaces"]["number"], number);
    assert_eq!(new_content["consignee"]["address"], "4-5-6 Nanko");
    let (status, _) = pdf(&operator, cert["id"].as_i64().unwrap()).await;
    assert_eq!(status, 409, "a replaced certificate is not printed");

    // Revoked: the replacement, with a reason; enterprises cannot revoke.
    let path = format!("/api/v1/certificates/{}/revoke", new["id"]);
    let (status, _) = operator.post(&path, json!({"reason": "mine"})).await;
    assert_eq!(status, 403);
    let (status, body) = reviewer.post(&path, json!({"reason": " "})).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("missing_reason")), "{body}");
    let (status, revoked) = reviewer.post(&path, json!({"reason": "goods re-exported elsewhere"})).await;
    assert_eq!((status, revoked["status"].as_str()), (200, Some("revoked")), "{revoked}");
    let (status, v) = verify(&server, new_number, None).await;
    assert_eq!(
        (status, v["status"].as_str(), v["status_reason"].as_str()),
        (200, Some("revoked"), Some("goods re-exported elsewhere"))
    );
    let (status, body) = reviewer.post(&path, json!({"reason": "again"})).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("not_valid")), "{body}");

    // The enterprise was told of both.
    let kinds = certificate_receipts(&operator).await;
    assert_eq!(kinds, ["drafted", "issued", "replaced", "revoked"]);
}

#[tokio::test]
async fn a_draft_is_amended_and_withdrawn_with_a_receipt_for_each_change() {
    let server = TestServer::start();
    let operator = strong(&server, "ent1-operator").await;
    let released = released(&server).await;
    let (status, draft) =
        operator.post("/api/v1/certificate-applications", request(released.application_id)).await;
    assert_eq!(status, 201, "{draft}");
    let id = draft["id"].as_i64().unwrap();
    let mut amended = request(released.application_id);
    amended["goods"][0]["quantity"] = json!(600.0);
    let (status, body) = operator.put(&format!("/api/v1/certificate-applications/{id}"), amended).await;
    assert_eq!((status, body["version"].as_i64()), (200, Some(2)), "{body}");
    assert_eq!(body["request"]["goods"][0]["quantity"], 600.0);
    let (status, body) =
        operator.post(&format!("/api/v1/certificate-applications/{id}/withdraw"), json!({})).await;
    assert_eq!((status, body["state"].as_str()), (200, Some("withdrawn")), "{body}");
    let (status, body) =
        operator.post(&format!("/api/v1/certificate-applications/{id}/submit"), json!({})).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("illegal_transition")), "{body}");
    let kinds = certificate_receipts(&operator).await;
    assert_eq!(kinds, ["drafted", "amended", "withdrawn"]);
}
