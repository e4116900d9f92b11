//! Certificate fixtures: an export of frozen salmon to Japan that requested a health certificate,
//! inspected by `officer1` with a real `handheld` (every check passed, one photo, conforming), approved by
//! `supervisor1` and so released; and the certificate request that passes every review rule.

use serde_json::{Value, json};

use crate::{
    Api, TestServer,
    field::{self, Handheld, dispatched_with, items},
    repo_root,
};

/// The released application in the state the certificate review reads.
pub struct Released {
    pub application_id: i64,
    pub instruction_id: i64,
    /// SHA-256 of the photo the officer attached.
    pub photo: String,
}

/// The application's content: the field kit's, to the consignee the certificate names, requesting a
/// health certificate.
pub fn content() -> Value {
    let mut c = field::content();
    c["consignee_name"] = json!("Osaka Seafood KK");
    c["certificates"] = json!(["sanitary"]);
    c
}

/// Files, inspects (with a photo) and approves a conforming result; the goods are released.
pub async fn released(server: &TestServer) -> Released {
    let instruction = dispatched_with(server, &["officer1"], content()).await;
    let id = instruction.to_string();
    let one = Handheld::new(server, "officer1");
    one.sync();
    for item in items(server, instruction).await {
        one.ok(&["check", &id, &item, "pass"]);
    }
    let photo_path = repo_root().join("fixtures/photos/Canon_40D.jpg");
    one.ok(&["attach", &id, photo_path.to_str().unwrap(), "--caption", "cartons in the cold store"]);
    one.ok(&["verdict", &id, "conforming"]);
    one.ok(&["complete", &id]);
    one.sync();
    let supervisor = server.login("supervisor1").await;
    let (status, body) =
        supervisor.post(&format!("/api/v1/instructions/{instruction}/approve"), json!({})).await;
    assert_eq!((status, body["state"].as_str()), (200, Some("approved")), "{body}");
    let (_, i) = supervisor.get(&format!("/api/v1/instructions/{instruction}")).await;
    let photo = crate::photos::sha256_hex(&std::fs::read(&photo_path).unwrap());
    Released { application_id: i["application_id"].as_i64().unwrap(), instruction_id: instruction, photo }
}

/// A health-certificate request that meets every rule: the released goods (all 1000 kg),
/// the application's consignee and destination, and the additional declaration Japan requires.
pub fn request(application_id: i64) -> Value {
    json!({
        "application_id": application_id,
        "type": "sanitary",
        "consignee": {"name": "Osaka Seafood KK", "address": "1-2-3 Nanko-kita, Suminoe-ku, Osaka 大阪"},
        "destination_country": "JP",
        "transport": {"mode": "sea", "means": "COSCO TAURUS 012E", "port_of_loading": "CNSHA 上海",
                      "port_of_unloading": "JPOSA"},
        "goods": [{"line": 1, "quantity": 1000.0, "packages": "100 cartons 纸箱"}],
        "additional_declarations": ["The goods are fit for human consumption. 货物适合人类食用。"]
    })
}

/// Drafts and submits `request` as `enterprise` (a strong login); answers the submitted application.
pub async fn apply(enterprise: &Api, request: Value) -> Value {
    let (status, draft) = enterprise.post("/api/v1/certificate-applications", request).await;
    assert_eq!((status, draft["state"].as_str()), (201, Some("draft")), "{draft}");
    let (status, submitted) =
        enterprise.post(&format!("/api/v1/certificate-applications/{}/submit", draft["id"]), json!({})).await;
    assert_eq!(status, 200, "{submitted}");
    submitted
}

/// A released consignment with its certificate issued automatically; answers the certificate view.
pub async fn issued(server: &TestServer, enterprise: &Api) -> (Released, Value) {
    let released = released(server).await;
    let submitted = apply(enterprise, request(released.application_id)).await;
    assert_eq!(submitted["state"], "issued", "{submitted}");
    let (status, cert) =
        enterprise.get(&format!("/api/v1/certificates/{}", submitted["certificate_id"])).await;
    assert_eq!(status, 200, "{cert}");
    (released, cert)
}
