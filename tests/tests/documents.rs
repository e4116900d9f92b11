//! Supporting documents: an enterprise attaches files to its application, a reviewer asks for one again,
//! the enterprise sends a replacement and the history keeps both; refused files store nothing.

use fieldcheck_tests::{
    Api, TestServer,
    dispatch::frozen_fish_application,
    photos::{fixture, sha256_hex},
    repo_root,
};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

fn document(name: &str) -> Vec<u8> {
    let path = repo_root().join("fixtures/documents").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

async fn draft(api: &Api) -> i64 {
    let (status, app) = api.post("/api/v1/applications", frozen_fish_application()).await;
    assert_eq!(status, 201, "{app}");
    app["id"].as_i64().unwrap()
}

/// `PUT /api/v1/applications/{id}/documents/{sha}?{query}` with `bytes` named by their own hash.
async fn attach(api: &Api, app: i64, query: &str, content_type: &str, bytes: &[u8]) -> (u16, Value) {
    attach_named(api, app, &sha256_hex(bytes), query, content_type, bytes).await
}

async fn attach_named(
    api: &Api,
    app: i64,
    sha: &str,
    query: &str,
    content_type: &str,
    bytes: &[u8],
) -> (u16, Value) {
    let path = format!("/api/v1/applications/{app}/documents/{sha}?{query}");
    let headers = [("content-type", content_type.to_string())];
    let (status, _, body) = api.bytes(Method::PUT, &path, &headers, Some(bytes.to_vec().into())).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::String(String::from_utf8_lossy(&body).into())))
}

async fn receipts(api: &Api) -> Vec<Value> {
    let (status, body) = api.get("/api/v1/receipts").await;
    assert_eq!(status, 200, "{body}");
    body["receipts"].as_array().or(body.as_array()).cloned().unwrap_or_default()
}

/// Every file under the data dir's document store.
fn stored_files(server: &TestServer) -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() { walk(&p, out) } else { out.push(p) }
        }
    }
    let mut out = Vec::new();
    walk(&server.data_dir().join("documents"), &mut out);
    walk(&server.data_dir().join("photos/tmp"), &mut out);
    out
}

#[tokio::test]
async fn a_reviewer_asks_for_a_document_again_and_the_resent_file_keeps_the_first_in_the_history() {
    let server = TestServer::start();
    let operator = server.login("ent1-operator").await;
    let app = draft(&operator).await;
    let invoice = document("invoice.pdf");

    let (status, first) =
        attach(&operator, app, "kind=invoice&file_name=invoice.pdf", "application/pdf", &invoice).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!((first["format"].as_str(), first["pages"].as_i64()), (Some("pdf"), Some(2)), "{first}");
    assert_eq!(first["sha256"], sha256_hex(&invoice));
    let first_id = first["id"].as_i64().unwrap();
    let (status, again) =
        attach(&operator, app, "kind=invoice&file_name=invoice.pdf", "application/pdf", &invoice).await;
    assert_eq!(
        (status, again["id"].as_i64()),
        (200, Some(first_id)),
        "the same file again is the same attachment"
    );

    let reviewer = server.login("reviewer1").await;
    let (status, _, bytes) =
        reviewer.bytes(Method::GET, &format!("/api/v1/documents/{first_id}"), &[], None).await;
    assert_eq!((status, bytes == invoice), (200, true), "the reviewer downloads the file byte for byte");
    let opinion = "发票金额不清晰 The invoice total is unreadable; send a clearer scan";
    let (status, request) = reviewer
        .post(&format!("/api/v1/documents/{first_id}/request-again"), json!({"opinion": opinion}))
        .await;
    assert_eq!(status, 201, "{request}");
    let (status, body) = reviewer
        .post(&format!("/api/v1/documents/{first_id}/request-again"), json!({"opinion": opinion}))
        .await;
    assert_eq!((status, body["code"].as_str()), (409, Some("already_requested")), "{body}");
    let asked = receipts(&operator).await;
    let asked =
        asked.iter().find(|r| r["kind"] == "document_requested").expect("a receipt asks for the file");
    assert_eq!((asked["subject"].as_str(), asked["subject_id"].as_i64()), (Some("application"), Some(app)));
    assert_eq!(asked["opinion"], opinion);
    assert_eq!(asked["details"]["attachment_id"], first_id);

    let scan = fixture("Canon_40D.jpg");
    let query = format!("kind=invoice&file_name=invoice-scan.jpg&replaces={first_id}");
    let (status, second) = attach(&operator, app, &query, "image/jpeg", &scan).await;
    assert_eq!(status, 201, "{second}");
    assert_eq!((second["replaces"].as_i64(), second["format"].as_str()), (Some(first_id), Some("jpeg")));
    let (status, body) = attach(&operator, app, &query, "image/jpeg", &fixture("Nikon_D70.jpg")).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("already_replaced")), "{body}");

    let (status, history) = operator.get(&format!("/api/v1/applications/{app}/documents")).await;
    assert_eq!(status, 200, "{history}");
    let history = history.as_array().unwrap();
    assert_eq!(history.len(), 2, "both files stay: {history:?}");
    assert_eq!(history[0]["replaced_by"], second["id"]);
    assert_eq!(history[0]["requests"][0]["answered_by"], second["id"]);
    assert_eq!(history[0]["requests"][0]["opinion"], opinion);
    let kinds: Vec<String> =
        receipts(&operator).await.iter().map(|r| r["kind"].as_str().unwrap_or("").to_owned()).collect();
    assert!(
        kinds.contains(&"document_attached".into()) && kinds.contains(&"document_resent".into()),
        "{kinds:?}"
    );
    let (status, body) = reviewer
        .post(&format!("/api/v1/documents/{first_id}/request-again"), json!({"opinion": "again"}))
        .await;
    assert_eq!((status, body["code"].as_str()), (409, Some("already_replaced")), "{body}");
}

/// A refused upload: what it is, its bytes, the query, the declared type, and the expected status and code.
type Refused = (&'static str, Vec<u8>, &'static str, &'static str, u16, &'static str);

#[tokio::test]
async fn refused_files_answer_the_error_shape_and_nothing_is_stored() {
    let server = TestServer::start();
    let operator = server.login("ent1-operator").await;
    let app = draft(&operator).await;
    let invoice = document("invoice.pdf");
    let text = b"Commercial invoice, typed as plain text".to_vec();
    let cases: Vec<Refused> = vec![
        (
            "text named .pdf",
            text.clone(),
            "kind=invoice&file_name=invoice.pdf",
            "application/octet-stream",
            422,
            "not_a_pdf",
        ),
        ("text sent as a PDF", text, "kind=invoice", "application/pdf", 422, "not_a_pdf"),
        (
            "encrypted PDF",
            document("encrypted.pdf"),
            "kind=contract",
            "application/pdf",
            422,
            "encrypted_pdf",
        ),
        (
            "truncated PDF",
            invoice[..invoice.len() / 2].to_vec(),
            "kind=contract",
            "application/pdf",
            422,
            "malformed_pdf",
        ),
        (
            "JPEG named .pdf",
            fixture("Canon_40D.jpg"),
            "kind=other&file_name=scan.pdf",
            "image/jpeg",
            422,
            "not_a_pdf",
        ),
        ("broken JPEG", fixture("corrupted.jpg"), "kind=other", "image/jpeg", 422, "corrupt_photo"),
        (
            "a word document",
            b"PK\x03\x04 word/document.xml".to_vec(),
            "kind=other",
            "application/msword",
            415,
            "unsupported_document_format",
        ),
        ("an unknown kind", invoice.clone(), "kind=passport", "application/pdf", 400, "invalid_query"),
    ];
    for (what, bytes, query, content_type, status, code) in cases {
        let (got, body) = attach(&operator, app, query, content_type, &bytes).await;
        assert_eq!((got, body["code"].as_str()), (status, Some(code)), "{what}: {body}");
        assert!(
            body["message"].is_string() && body.get("details").is_some(),
            "{what}: the error shape: {body}"
        );
    }
    let (status, body) =
        attach_named(&operator, app, &"0".repeat(64), "kind=invoice", "application/pdf", &invoice).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("hash_mismatch")), "{body}");

    // 21 MiB: refused on its declared length before a byte of the body is read (spoken by hand: a client
    // library would still be sending and see a broken pipe) …
    let big = 21 * 1024 * 1024;
    let addr = server.base.trim_start_matches("http://").to_string();
    let token = operator.token.clone().unwrap();
    let head = |extra: &str| {
        format!(
            "PUT /api/v1/applications/{app}/documents/{}?kind=invoice HTTP/1.1\r\nhost: {addr}\r\n\
             authorization: Bearer {token}\r\ncontent-type: application/pdf\r\n{extra}\r\n",
            "c".repeat(64)
        )
    };
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(head(&format!("content-length: {big}\r\n")).as_bytes()).await.unwrap();
    let answer = fieldcheck_tests::read_http_answer(&mut tcp).await;
    assert!(answer.starts_with("HTTP/1.1 413") && answer.contains("document_too_large"), "{answer}");
    // … and, sent without a length (chunked), cut off when it passes 20 MiB.
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    tcp.write_all(head("transfer-encoding: chunked\r\n").as_bytes()).await.unwrap();
    let (mut reader, mut writer) = tcp.into_split();
    let sender = tokio::spawn(async move {
        let chunk = vec![b'%'; 1024 * 1024];
        for _ in 0..21 {
            let frame = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
            if writer.write_all(&frame).await.is_err() {
                return;
            }
        }
        let _ = writer.write_all(b"0\r\n\r\n").await;
    });
    let answer = fieldcheck_tests::read_http_answer(&mut reader).await;
    assert!(answer.starts_with("HTTP/1.1 413") && answer.contains("document_too_large"), "{answer}");
    sender.abort();

    let (status, list) = operator.get(&format!("/api/v1/applications/{app}/documents")).await;
    assert_eq!((status, list.as_array().map(Vec::len)), (200, Some(0)), "{list}");
    assert_eq!(stored_files(&server), Vec::<std::path::PathBuf>::new(), "no file was kept");
    let kinds: Vec<Value> = receipts(&operator).await.iter().map(|r| r["kind"].clone()).collect();
    assert!(!kinds.contains(&json!("document_attached")), "{kinds:?}");
}

#[tokio::test]
async fn a_certificate_application_takes_documents_lists_and_serves_them_to_its_owner_only_and_refuses_a_fake_pdf()
 {
    let server = TestServer::start();
    let released = fieldcheck_tests::certificates::released(&server).await;
    let legal = fieldcheck_tests::strong(&server, "ent1-legal").await;
    let (status, draft) = legal
        .post(
            "/api/v1/certificate-applications",
            fieldcheck_tests::certificates::request(released.application_id),
        )
        .await;
    assert_eq!(status, 201, "{draft}");
    let cert_app = draft["id"].as_i64().unwrap();
    let operator = server.login("ent1-operator").await;
    let put = |sha: String, query: &'static str, content_type: &'static str, bytes: Vec<u8>| {
        let operator = operator.clone();
        async move {
            let path = format!("/api/v1/certificate-applications/{cert_app}/documents/{sha}?{query}");
            let headers = [("content-type", content_type.to_string())];
            let (status, _, body) = operator.bytes(Method::PUT, &path, &headers, Some(bytes.into())).await;
            (status, serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null))
        }
    };

    let invoice = document("invoice.pdf");
    let (status, attached) =
        put(sha256_hex(&invoice), "kind=invoice&file_name=invoice.pdf", "application/pdf", invoice.clone())
            .await;
    assert_eq!((status, attached["pages"].as_i64()), (201, Some(2)), "{attached}");
    let before = stored_files(&server);

    let fake = b"GIF89a this is no PDF at all".to_vec();
    let (status, err) =
        put(sha256_hex(&fake), "kind=invoice&file_name=scan.pdf", "application/pdf", fake).await;
    assert_eq!(status, 422, "{err}");
    assert!(err["code"].is_string() && err["message"].is_string(), "the error shape: {err}");
    assert_eq!(stored_files(&server), before, "nothing stored of the refused file");

    let (status, list) =
        operator.get(&format!("/api/v1/certificate-applications/{cert_app}/documents")).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["id"], attached["id"]);
    let download = format!("/api/v1/documents/{}", attached["id"]);
    let (status, _, bytes) = operator.bytes(Method::GET, &download, &[], None).await;
    assert_eq!((status, bytes == invoice), (200, true), "downloaded byte for byte");
    let (status, _, _) = server.login("reviewer1").await.bytes(Method::GET, &download, &[], None).await;
    assert_eq!(status, 200, "customs staff in scope read it");

    let other = server.login("ent2-operator").await;
    let (status, _) = other.get(&format!("/api/v1/certificate-applications/{cert_app}/documents")).await;
    assert_eq!(status, 404, "another enterprise does not see the list");
    let (status, _, _) = other.bytes(Method::GET, &download, &[], None).await;
    assert_eq!(status, 404, "nor the file");
}
