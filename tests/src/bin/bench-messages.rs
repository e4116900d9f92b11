//! `bench-messages`: bulk intake of signed messages against a real server, measured.
//!
//! Starts the `fieldcheck` binary next to this one (build both in the same profile; release for figures:
//! `cargo build --release --bin fieldcheck --bin bench-messages`), signs ROUNDS batches of BATCH
//! `application.submit` messages beforehand (signing is the sender's cost, not measured), then posts the
//! batches one after another and prints messages/s per batch and the median. Each message is verified,
//! validated, numbered, submitted and stored with its evidence, and the batch is committed durably
//! (SQLite `synchronous=FULL`) before the answer. Usage: `bench-messages [BATCH] [ROUNDS]`.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::{Signer, SigningKey};
use fieldcheck_tests::TestServer;
use serde_json::{Value, json};

fn sign(key: &SigningKey, kid: &str, payload: &[u8]) -> String {
    let header = json!({"alg": "EdDSA", "kid": kid}).to_string();
    let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes()).to_bytes()))
}

fn message(id: &str) -> Value {
    json!({"type": "application.submit", "id": id, "enterprise": "3101960001", "content": {
        "direction": "export", "district_code": "2200", "site_code": "2201", "applicant_code": "3101960001",
        "consignor_code": "3101960001", "consignee_name": "Tokyo Fresh KK", "destination_country": "JP",
        "goods": [{"hs_code": "0303630000", "name": "frozen cod", "quantity": 1000.0, "unit": "kg",
                   "net_weight_kg": 1000.0, "value_usd": 5000.0, "origin_country": "CN"}],
        "certificates": ["phytosanitary"]}})
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let batch: usize = args.next().map_or(1000, |a| a.parse().expect("BATCH is a number"));
    let rounds: usize = args.next().map_or(5, |a| a.parse().expect("ROUNDS is a number"));
    let server = TestServer::start_with(&[("FIELDCHECK__LOG__LEVEL", "warn")]);
    let seed = std::fs::read_to_string(server.data_dir().join("demo-keys/ent1-operator.seed")).unwrap();
    let key = SigningKey::from_bytes(&hex::decode(seed.trim()).unwrap().try_into().unwrap());
    let bodies: Vec<String> = (0..rounds)
        .map(|r| {
            let messages: Vec<String> = (0..batch)
                .map(|i| {
                    sign(&key, "ent1-operator", message(&format!("bench-{r}-{i}")).to_string().as_bytes())
                })
                .collect();
            json!({"messages": messages}).to_string()
        })
        .collect();
    let client = reqwest::Client::new();
    let mut rates = Vec::new();
    for (round, body) in bodies.into_iter().enumerate() {
        let started = std::time::Instant::now();
        let resp = client
            .post(format!("{}/api/v1/messages", server.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("post");
        let status = resp.status().as_u16();
        let answer: Value = resp.json().await.expect("a JSON answer");
        let wall = started.elapsed().as_secs_f64();
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["accepted"].as_u64(), Some(batch as u64), "every message accepted");
        let rate = batch as f64 / wall;
        println!("round {round}: {batch} messages in {:.0} ms = {rate:.0} messages/s", wall * 1e3);
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    println!("median        {:.0} messages/s (batch {batch}, {rounds} rounds)", rates[rates.len() / 2]);
}
