//! Offline sync end to end: the real server and real `handheld` processes, each with its own data dir.
//!
//! An instruction to inspect comes the way it does in production: `ent1-operator` files and submits an
//! export of frozen fish (HS 0303, always inspected), `reviewer1` approves, `supervisor1` assigns
//! officer1 and officer2, who sync with the demo handhelds.

use automerge::{AutoCommit, ROOT, ReadDoc, sync::SyncDoc, transaction::Transactable};
use fieldcheck_sync::batch::{self, Bytes, DocMessage, SyncRequest, SyncResponse};
use fieldcheck_tests::{
    Api, TestServer,
    field::{Handheld, TwoOfficers, content, dispatched, items, record, two_officers, user_id},
};
use serde_json::{Value, json};

#[tokio::test]
async fn two_officers_editing_offline_merge_notes_and_different_check_items() {
    let server = TestServer::start();
    let TwoOfficers { instruction, id, items, one, two } = two_officers(&server).await;
    one.sync();
    two.sync();
    let listed = one.ok(&["list"]);
    assert_eq!(listed[0]["instruction_id"], instruction, "{listed}");

    // Offline, each inspects different items and writes notes.
    one.ok(&["check", &id, &items[0], "pass"]);
    one.ok(&["note", &id, "Officer 1: cold chain intact."]);
    two.ok(&["check", &id, &items[1], "fail"]);
    two.ok(&["measure", &id, &items[1], "-12.5", "°C"]);
    two.ok(&["note", &id, "Officer 2: one carton thawed."]);
    two.ok(&[
        "sample",
        &id,
        "S-1",
        "--description",
        "one fish",
        "--quantity",
        "1",
        "--unit",
        "pcs",
        "--seal",
        "SEAL-9",
    ]);
    assert_eq!(one.ok(&["status"])["pending_edits"], 2);

    let report = one.sync();
    assert!(report["accepted"].as_u64().unwrap() >= 2, "{report}");
    assert_eq!(one.ok(&["status"])["pending_edits"], 0);
    two.sync();
    one.sync();

    let supervisor = server.login("supervisor1").await;
    let view = record(&supervisor, instruction).await;
    assert_eq!(view["state"], "in_progress", "{view}");
    let checks = &view["record"]["checks"];
    assert_eq!(checks[&items[0]]["result"], "pass");
    assert_eq!(checks[&items[1]]["result"], "fail");
    assert_eq!(checks[&items[1]]["measurement"]["value"], -12.5);
    // Finding 4: two officers' offline notes stay two notes, each with its author.
    let mut notes: Vec<(&str, &str)> = view["record"]["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["by"].as_str().unwrap(), n["text"].as_str().unwrap()))
        .collect();
    notes.sort();
    assert_eq!(
        notes,
        [("officer1", "Officer 1: cold chain intact."), ("officer2", "Officer 2: one carton thawed.")],
        "{view}"
    );
    assert_eq!(view["conflicts"], json!([]));
    // Both handhelds hold what the server holds.
    for h in [&one, &two] {
        let shown = h.ok(&["show", &id]);
        assert_eq!(shown["record"]["notes"], view["record"]["notes"]);
        assert_eq!(shown["record"]["samples"]["S-1"]["seal_no"], "SEAL-9");
    }
}

#[tokio::test]
async fn the_same_check_or_verdict_set_differently_is_an_open_conflict_until_a_later_write_resolves_it() {
    let server = TestServer::start();
    let TwoOfficers { instruction, id, items, one, two } = two_officers(&server).await;
    one.sync();
    two.sync();

    for item in &items {
        one.ok(&["check", &id, item, "pass"]);
    }
    one.ok(&["verdict", &id, "conforming"]);
    one.ok(&["complete", &id]);
    two.ok(&["check", &id, &items[0], "fail"]);
    two.ok(&["verdict", &id, "non_conforming", "--disposal", "return"]);
    one.sync();
    two.sync();

    let supervisor = server.login("supervisor1").await;
    let view = record(&supervisor, instruction).await;
    let mut paths: Vec<&str> =
        view["conflicts"].as_array().unwrap().iter().map(|c| c["path"].as_str().unwrap()).collect();
    paths.sort();
    let check_path = format!("checks.{}.result", items[0]);
    assert_eq!(paths, vec![check_path.as_str(), "verdict.value"], "{view}");
    let officers: Vec<&str> = view["conflicts"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["officer"].as_str().unwrap())
        .collect();
    assert!(officers.contains(&"officer1") && officers.contains(&"officer2"), "{view}");
    // The officer reads each colleague's value by name, the verdict in words, and what to do.
    one.sync();
    let shown = one.text(&["show", &id]);
    assert!(shown.contains("officer1 says pass") && shown.contains("officer2 says fail"), "{shown}");
    assert!(shown.contains("to resolve:"), "{shown}");
    assert!(
        shown.contains("verdict: conforming") || shown.contains("verdict: non-conforming, disposal: return"),
        "{shown}"
    );
    // Complete, but conflicted: not submitted.
    assert_eq!(view["record"]["completion"]["complete"], true);
    assert_eq!(view["state"], "in_progress");
    let (_, listed) = supervisor.get("/api/v1/instructions?state=submitted").await;
    assert_eq!(listed, json!([]));

    // Officer 2 sees both values, agrees with officer 1: a write that has seen both resolves them.
    two.sync();
    let shown = two.ok(&["show", &id]);
    assert_eq!(shown["conflicts"].as_array().unwrap().len(), 2, "{shown}");
    two.ok(&["check", &id, &items[0], "pass"]);
    two.ok(&["verdict", &id, "conforming"]);
    two.sync();

    let view = record(&supervisor, instruction).await;
    assert_eq!(view["conflicts"], json!([]), "{view}");
    assert_eq!(view["record"]["verdict"]["value"], "conforming");
    // officer1 signed this very content (its values won); officer2 has still to sign it.
    assert_eq!(view["missing"], json!(["officer2 has not signed"]), "{view}");
    two.ok(&["complete", &id]);
    two.sync();
    let view = record(&supervisor, instruction).await;
    assert_eq!(view["state"], "submitted", "signed, no conflict, no photos pending: {view}");
}

#[tokio::test]
async fn a_record_with_a_refused_photo_is_not_submitted_until_the_photo_is_withdrawn() {
    let server = TestServer::start();
    let instruction = dispatched(&server, &["officer1"]).await;
    let items = items(&server, instruction).await;
    let id = instruction.to_string();
    let one = Handheld::new(&server, "officer1");
    one.sync();
    // Finding 6: a file that is not a photo is refused on the handheld, before it reaches the record.
    let readme = fieldcheck_tests::repo_root().join("README.md");
    let out = one.run(&["attach", &id, readme.to_str().unwrap(), "--caption", "notes"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not a JPEG, PNG or WebP image"), "{stderr}");
    assert_eq!(one.ok(&["status"])["pending_edits"], 0);

    // A damaged JPEG passes the handheld's look at its first bytes; the server refuses its bytes.
    let photo = one.path().join("carton.jpg");
    std::fs::copy(fieldcheck_tests::repo_root().join("fixtures/photos/corrupted.jpg"), &photo).unwrap();
    let attached =
        one.ok(&["attach", &id, photo.to_str().unwrap(), "--caption", "thawed carton", "--item", &items[0]]);
    let sha = attached["extra"]["sha256"].as_str().unwrap().to_owned();
    for item in &items {
        one.ok(&["check", &id, item, "pass"]);
    }
    one.ok(&["verdict", &id, "conforming"]);
    one.ok(&["complete", &id]);
    let report = one.sync_refused();
    assert_eq!(report["photos_refused"][0][1], "corrupt_photo", "{report}");
    assert_eq!(one.ok(&["status"])["pending_photos"], json!([sha]));

    let supervisor = server.login("supervisor1").await;
    let view = record(&supervisor, instruction).await;
    assert_eq!(view["pending_photos"], json!([sha]));
    assert_eq!(view["state"], "in_progress", "a referenced photo is not in the photo store: {view}");
    assert_eq!(view["missing"], json!(["1 photo not yet in the photo store"]));

    // The officer withdraws it: kept in the record's history, no longer awaited. The content changed
    // (the photo is withdrawn), so the officer signs again and the result is submitted.
    one.ok(&["withdraw", &id, &sha[..10]]);
    one.ok(&["complete", &id]);
    one.sync();
    let view = record(&supervisor, instruction).await;
    assert_eq!(view["state"], "submitted", "{view}");
    assert_eq!(view["record"]["photos"][&sha]["withdrawn"], true);
    assert_eq!(view["pending_photos"], json!([]));
}

#[tokio::test]
async fn a_real_photo_attached_offline_is_uploaded_on_sync_and_completes_the_record() {
    let server = TestServer::start();
    let instruction = dispatched(&server, &["officer1"]).await;
    let items = items(&server, instruction).await;
    let id = instruction.to_string();
    let one = Handheld::new(&server, "officer1");
    one.sync();
    let photo = fieldcheck_tests::repo_root().join("fixtures/photos/gps_DSCN0010.jpg");
    // The camera wrote its local time without a zone: the handheld reads it in its own zone (UTC here).
    let out = one
        .command(&["attach", &id, photo.to_str().unwrap(), "--caption", "carton label", "--item", &items[0]])
        .env("TZ", "UTC")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let attached: Value = serde_json::from_slice(&out.stdout).unwrap();
    let sha = attached["extra"]["sha256"].as_str().unwrap().to_owned();
    let warned = String::from_utf8_lossy(&out.stderr);
    assert!(warned.contains("long before this inspection"), "a 2008 photo is flagged: {warned}");
    // Taken in Tuscany, about 9,000 km from Yangshan (site 2201, radius 1,500 m in fixtures/sites): a
    // warning with the distance, and the photo is attached all the same.
    assert!(
        warned.contains("km (") && warned.contains("from the site (30.62700, 122.06500; more than 1500 m"),
        "the far-from-site warning: {warned}"
    );
    let warnings = attached["extra"]["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 2, "{attached}");
    let metres: f64 = warned.split(" km (").nth(1).unwrap().split(" m)").next().unwrap().parse().unwrap();
    assert!((8_500_000.0..9_500_000.0).contains(&metres), "{metres}");
    let shown = one.text(&["show", &id]);
    assert!(shown.contains("at 30.62700, 122.06500 (photos farther than 1500 m are flagged)"), "{shown}");
    assert!(shown.contains("carton label"), "the far photo is attached: {shown}");
    for item in &items {
        one.ok(&["check", &id, item, "pass"]);
    }
    one.ok(&["verdict", &id, "conforming"]);
    one.ok(&["complete", &id]);
    let report = one.ok(&["sync"]);
    assert_eq!(report["photos_uploaded"], 1, "{report}");
    assert_eq!(one.ok(&["status"])["pending_photos"], json!([]));

    let supervisor = server.login("supervisor1").await;
    let view = record(&supervisor, instruction).await;
    assert_eq!(view["pending_photos"], json!([]), "{view}");
    // Capture time and position come from the photo's EXIF (2008-10-22T16:28:39, 43.467° N 11.885° E).
    let entry = &view["record"]["photos"][&sha];
    assert_eq!(entry["taken_at"], 1_224_692_919_000_i64, "{entry}");
    assert!((entry["location"]["lat"].as_f64().unwrap() - 43.467_448).abs() < 1e-5, "{entry}");
    assert!((entry["location"]["lon"].as_f64().unwrap() - 11.885_127).abs() < 1e-5, "{entry}");
    assert_eq!(view["state"], "submitted", "complete, no conflict, every photo present: {view}");
    let (status, meta) = supervisor.get(&format!("/api/v1/photos/{sha}/metadata")).await;
    assert_eq!(status, 200, "{meta}");
    assert_eq!(meta["make"], "NIKON");
    // Syncing again sends nothing twice.
    assert_eq!(one.ok(&["sync"])["photos_uploaded"], 0);
}

#[tokio::test]
async fn the_last_photo_arriving_after_the_final_sync_submits_the_record() {
    let server = TestServer::start();
    let instruction = dispatched(&server, &["officer1"]).await;
    let items = items(&server, instruction).await;
    let id = instruction.to_string();
    let one = Handheld::new(&server, "officer1");
    one.sync();
    // A copy the handheld can lose: the reference syncs, the bytes cannot be read at first.
    let photo = one.path().join("label.jpg");
    std::fs::copy(fieldcheck_tests::repo_root().join("fixtures/photos/Canon_40D.jpg"), &photo).unwrap();
    let attached =
        one.ok(&["attach", &id, photo.to_str().unwrap(), "--caption", "label", "--item", &items[0]]);
    let sha = attached["extra"]["sha256"].as_str().unwrap().to_owned();
    for item in &items {
        one.ok(&["check", &id, item, "pass"]);
    }
    one.ok(&["verdict", &id, "conforming"]);
    one.ok(&["complete", &id]);
    let bytes = std::fs::read(&photo).unwrap();
    std::fs::remove_file(&photo).unwrap();
    let report = one.sync_refused();
    assert_eq!(report["photos_refused"][0][1], "unreadable_file", "{report}");
    let supervisor = server.login("supervisor1").await;
    assert_eq!(record(&supervisor, instruction).await["state"], "in_progress");

    // The bytes arrive by another way (a colleague's upload, a retry): the record submits then and there.
    let (status, body) = server
        .api()
        .post("/api/v1/auth/login", json!({"username": "officer1", "password": "demo-password"}))
        .await;
    assert_eq!(status, 200);
    let officer = server.api().with_token(body["access_token"].as_str().unwrap());
    let (status, _) = officer
        .raw(
            reqwest::Method::PUT,
            &format!("/api/v1/photos/{sha}?instruction={instruction}"),
            "image/jpeg",
            bytes,
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(record(&supervisor, instruction).await["state"], "submitted");
}

#[tokio::test]
async fn an_interrupted_photo_upload_is_resumed_by_the_next_sync_and_ends_byte_identical() {
    let server = TestServer::start();
    let instruction = dispatched(&server, &["officer1"]).await;
    let items = items(&server, instruction).await;
    let id = instruction.to_string();
    let one = Handheld::new(&server, "officer1");
    one.sync();
    let photo = fieldcheck_tests::repo_root().join("fixtures/photos/mobile_jolla.jpg");
    let bytes = std::fs::read(&photo).unwrap();
    let attached =
        one.ok(&["attach", &id, photo.to_str().unwrap(), "--caption", "pallet", "--item", &items[0]]);
    let sha = attached["extra"]["sha256"].as_str().unwrap().to_owned();

    // The link dropped after the first 300 KB of an earlier attempt: the server holds them.
    let (_, body) = server
        .api()
        .post("/api/v1/auth/login", json!({"username": "officer1", "password": "demo-password"}))
        .await;
    let officer = server.api().with_token(body["access_token"].as_str().unwrap());
    let (status, started) = officer
        .post(
            &format!("/api/v1/photos/{sha}/uploads"),
            json!({"instruction_id": instruction, "size": bytes.len()}),
        )
        .await;
    assert_eq!(status, 201, "{started}");
    let upload = started["upload_id"].as_str().unwrap();
    let (status, _, _) = officer
        .bytes(
            reqwest::Method::PATCH,
            &format!("/api/v1/photo-uploads/{upload}"),
            &[("upload-offset", "0".into()), ("content-type", "application/offset+octet-stream".into())],
            Some(bytes[..300_000].to_vec().into()),
        )
        .await;
    assert_eq!(status, 204);

    let out = one.run(&["sync"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["photos_uploaded"], 1, "{report}");
    // The officer is told how the upload went: only what this sync sent (the rest of the 0.8 MB), of the whole.
    let progress = String::from_utf8_lossy(&out.stderr);
    let sent = bytes.len() - 300_000;
    let shown = format!(
        "photo {}: sent {} KiB of {} KiB",
        &sha[..12],
        sent / 1024 + usize::from(sent % 1024 >= 512),
        bytes.len() / 1024 + usize::from(bytes.len() % 1024 >= 512)
    );
    assert!(progress.contains(&shown), "{shown:?} in {progress}");
    let supervisor = server.login("supervisor1").await;
    let (status, _, stored) =
        supervisor.bytes(reqwest::Method::GET, &format!("/api/v1/photos/{sha}"), &[], None).await;
    assert_eq!(status, 200);
    assert!(stored == bytes, "the stored photo is byte-identical to the file");
}

/// A device that speaks the batch protocol directly, to send what a well-behaved handheld never would.
struct RawDevice {
    api: Api,
    http: reqwest::Client,
}

impl RawDevice {
    async fn login(server: &TestServer, officer: &str) -> RawDevice {
        let (status, body) = server
            .api()
            .post(
                "/api/v1/auth/login",
                json!({"username": officer, "password": "demo-password", "device_id": format!("demo-handheld-{officer}")}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        RawDevice {
            api: server.api().with_token(body["access_token"].as_str().unwrap()),
            http: reqwest::Client::new(),
        }
    }

    async fn actor(&self) -> automerge::ActorId {
        let (_, devices) = self.api.get("/api/v1/devices").await;
        devices[0]["actor_id"].as_str().unwrap().parse().unwrap()
    }

    async fn post(&self, body: Vec<u8>) -> (u16, Vec<u8>) {
        let resp = self
            .http
            .post(format!("{}/api/v1/sync", self.api.base))
            .bearer_auth(self.api.token.as_ref().unwrap())
            .header("content-type", batch::CONTENT_TYPE)
            .body(body)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
    }

    async fn batch(&self, messages: Vec<(String, Vec<u8>)>) -> SyncResponse {
        let request = SyncRequest {
            v: batch::VERSION,
            messages: messages.into_iter().map(|(doc, m)| DocMessage { doc, data: Bytes(m) }).collect(),
            pending: None,
        };
        let (status, body) = self.post(batch::encode(&request)).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        batch::decode(&body).unwrap()
    }

    /// Syncs `doc` into `local` until settled; answers the last refusal, if any.
    async fn sync(&self, doc_id: &str, local: &mut AutoCommit) -> Option<String> {
        let mut state = automerge::sync::State::new();
        for _ in 0..10 {
            let message = local.sync().generate_sync_message(&mut state)?;
            let response = self.batch(vec![(doc_id.to_owned(), message.encode())]).await;
            let result = &response.results[0];
            if let Some(error) = &result.error {
                return Some(error.code.clone());
            }
            let Some(reply) = &result.data else { return None };
            local
                .sync()
                .receive_sync_message(&mut state, automerge::sync::Message::decode(&reply.0).unwrap())
                .unwrap();
        }
        panic!("the raw sync did not settle")
    }
}

fn hex_heads(doc: &mut AutoCommit) -> Vec<String> {
    doc.get_heads().iter().map(|h| h.to_string()).collect()
}

#[tokio::test]
async fn unassigned_officers_server_owned_edits_and_unknown_actors_are_refused_and_the_server_copy_is_unchanged()
 {
    let server = TestServer::start();
    let instruction = dispatched(&server, &["officer1"]).await;
    let items = items(&server, instruction).await;
    let supervisor = server.login("supervisor1").await;
    let before = record(&supervisor, instruction).await;
    let doc_id = before["record_doc"].as_str().unwrap().to_owned();

    // officer2 is not assigned: refused without learning anything.
    let outsider = RawDevice::login(&server, "officer2").await;
    let mut empty = AutoCommit::new();
    assert_eq!(outsider.sync(&doc_id, &mut empty).await.as_deref(), Some("not_assigned"));
    assert_eq!(empty.get_heads(), vec![]);

    // officer1 fetches the record, then edits the server-owned instruction part.
    let device = RawDevice::login(&server, "officer1").await;
    let mut local = AutoCommit::new().with_actor(device.actor().await);
    assert_eq!(device.sync(&doc_id, &mut local).await, None);
    assert_eq!(
        hex_heads(&mut local),
        before["heads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    );
    let mut tampered = local.fork().with_actor(device.actor().await);
    let (_, instruction_obj) = tampered.get(ROOT, "instruction").unwrap().unwrap();
    tampered.put(&instruction_obj, "site", "somewhere cheaper").unwrap();
    tampered.commit();
    assert_eq!(device.sync(&doc_id, &mut tampered).await.as_deref(), Some("server_owned_path"));

    // An actor no device is bound to writes a well-formed check result.
    let mut stranger = local.fork();
    let (_, checks) = stranger.get(ROOT, "checks").unwrap().unwrap();
    let (_, entry) = stranger.get(&checks, items[0].as_str()).unwrap().unwrap();
    stranger.put(&entry, "result", "pass").unwrap();
    stranger.put(&entry, "by", "officer1").unwrap();
    stranger.put(&entry, "at", 1_750_000_000_000i64).unwrap();
    stranger.commit();
    assert_eq!(device.sync(&doc_id, &mut stranger).await.as_deref(), Some("unknown_actor"));

    let after = record(&supervisor, instruction).await;
    assert_eq!(after["heads"], before["heads"]);
    assert_eq!(after["record"], before["record"]);
    assert_eq!(after["state"], "assigned", "refused changes do not start the inspection");
}

/// Puts a well-formed, stamped check result into `doc` as whatever actor `doc` writes as.
fn stamped_result(doc: &mut AutoCommit, item: &str, result: &str, by: &str) {
    let (_, checks) = doc.get(ROOT, "checks").unwrap().unwrap();
    let (_, entry) = doc.get(&checks, item).unwrap().unwrap();
    doc.put(&entry, "result", result).unwrap();
    doc.put(&entry, "by", by).unwrap();
    doc.put(&entry, "at", 1_750_000_000_000i64).unwrap();
    doc.commit();
}

#[tokio::test]
async fn an_officer_cannot_write_under_a_co_assigned_colleagues_device_actor() {
    let server = TestServer::start();
    let instruction = dispatched(&server, &["officer1", "officer2"]).await;
    let items = items(&server, instruction).await;
    let supervisor = server.login("supervisor1").await;
    let before = record(&supervisor, instruction).await;
    let doc_id = before["record_doc"].as_str().unwrap().to_owned();
    let officer1 = RawDevice::login(&server, "officer1").await;
    // The colleague's actor id is no secret: it is in every change of the record's history.
    let officer2_actor = RawDevice::login(&server, "officer2").await.actor().await;

    // officer1's device fetches the record, then writes as officer2's device, in officer2's name.
    let mut local = AutoCommit::new().with_actor(officer1.actor().await);
    assert_eq!(officer1.sync(&doc_id, &mut local).await, None);
    let mut forged = local.fork().with_actor(officer2_actor);
    stamped_result(&mut forged, &items[12], "fail", "officer2");
    assert_eq!(officer1.sync(&doc_id, &mut forged).await.as_deref(), Some("foreign_actor"));

    let after = record(&supervisor, instruction).await;
    assert_eq!(after["heads"], before["heads"], "the server copy is untouched");
    assert_eq!(after["record"]["checks"][&items[12]]["result"], Value::Null);

    // The same edit under officer1's own actor and name goes through.
    stamped_result(&mut local, &items[12], "fail", "officer1");
    assert_eq!(officer1.sync(&doc_id, &mut local).await, None);
    let check = &record(&supervisor, instruction).await["record"]["checks"][&items[12]];
    assert_eq!(check["result"], "fail");
    assert_eq!(check["last_edit"]["by"], "officer1");
}

/// Peak resident memory of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_sync_message_that_inflates_to_gigabytes_is_refused_before_it_is_inflated() {
    use std::io::Write;

    // One "compressed change" chunk (automerge's type 2) whose DEFLATE data is 256 MiB of zeros:
    // a quarter of a megabyte on the wire. Inflated and applied, it would take about a gigabyte.
    // Compressed first: seconds of CPU on the test's one thread would keep its client from noticing that
    // the server closed an idle connection (`server.header_read_timeout_secs`), and it would reuse it.
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..256 {
        encoder.write_all(&zeros).unwrap();
    }
    let deflated = encoder.finish().unwrap();

    let server = TestServer::start();
    let instruction = dispatched(&server, &["officer1"]).await;
    let supervisor = server.login("supervisor1").await;
    let before = record(&supervisor, instruction).await;
    let doc_id = before["record_doc"].as_str().unwrap().to_owned();
    let device = RawDevice::login(&server, "officer1").await;
    let mut local = AutoCommit::new().with_actor(device.actor().await);
    assert_eq!(device.sync(&doc_id, &mut local).await, None);

    let mut chunk = vec![0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 2];
    let mut len = deflated.len();
    while len >= 0x80 {
        chunk.push((len as u8 & 0x7f) | 0x80);
        len >>= 7;
    }
    chunk.push(len as u8);
    chunk.extend(&deflated);
    let mut state = automerge::sync::State::new();
    let mut bomb = local.sync().generate_sync_message(&mut state).unwrap();
    bomb.changes = automerge::sync::ChunkList::from(vec![chunk]);
    let bomb = bomb.encode();
    assert!(bomb.len() < 2 << 20, "the bomb is small: {} bytes", bomb.len());

    let response = device.batch(vec![(doc_id.clone(), bomb)]).await;
    let error = response.results[0].error.as_ref().expect("the bomb is refused");
    assert_eq!(error.code, "inflates_too_far", "{}", error.message);
    assert!(error.message.contains("limit"), "{}", error.message);
    let peak_mib = peak_rss_kib(server.pid()) / 1024;
    assert!(peak_mib < 256, "the server peaked at {peak_mib} MiB");
    assert_eq!(record(&supervisor, instruction).await["heads"], before["heads"]);
}

#[tokio::test]
async fn garbage_truncated_replayed_and_reordered_batches_are_refused_or_harmless() {
    let server = TestServer::start();
    let instruction = dispatched(&server, &["officer1"]).await;
    let items = items(&server, instruction).await;
    let supervisor = server.login("supervisor1").await;
    let doc_id = record(&supervisor, instruction).await["record_doc"].as_str().unwrap().to_owned();
    let device = RawDevice::login(&server, "officer1").await;

    // Not CBOR, truncated CBOR, wrong version, wrong content type: the whole request is refused.
    let (status, body) = device.post(b"\xff\xfe garbage".to_vec()).await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let good = batch::encode(&SyncRequest {
        v: batch::VERSION,
        messages: vec![DocMessage { doc: doc_id.clone(), data: Bytes(vec![0x42; 40]) }],
        pending: None,
    });
    let (status, _) = device.post(good[..good.len() - 7].to_vec()).await;
    assert_eq!(status, 400);
    let (status, body) =
        device.post(batch::encode(&SyncRequest { v: 9, messages: vec![], pending: None })).await;
    assert_eq!(status, 400);
    let error: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["code"], "unsupported_version");
    let (status, _) =
        device.api.raw(reqwest::Method::POST, "/api/v1/sync", "application/json", good.clone()).await;
    assert_eq!(status, 415);
    // Declared larger than the sync route's 16 MiB limit: refused as too large on its length, before a
    // byte of it is read (the body is read only once the request holds a place in the sync line).
    let addr = device.api.base.trim_start_matches("http://").to_string();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/v1/sync HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {}\r\n\
         content-type: {}\r\ncontent-length: {}\r\n\r\n",
        device.api.token.as_ref().unwrap(),
        batch::CONTENT_TYPE,
        17 * 1024 * 1024
    );
    tokio::io::AsyncWriteExt::write_all(&mut tcp, head.as_bytes()).await.unwrap();
    let answer = fieldcheck_tests::read_http_answer(&mut tcp).await;
    assert!(answer.starts_with("HTTP/1.1 413") && answer.contains("payload_too_large"), "{answer}");

    // Well-framed but not sync messages, and an unknown document: refused per document, the rest goes on.
    let mut local = AutoCommit::new().with_actor(device.actor().await);
    let mut state = automerge::sync::State::new();
    let opening = local.sync().generate_sync_message(&mut state).unwrap().encode();
    let response = device
        .batch(vec![
            (doc_id.clone(), vec![0x42; 40]),
            (doc_id.clone(), opening[..opening.len() / 2].to_vec()),
            ("0123456789abcdef0123456789abcdef".into(), opening.clone()),
            (doc_id.clone(), opening.clone()),
        ])
        .await;
    let codes: Vec<Option<&str>> =
        response.results.iter().map(|r| r.error.as_ref().map(|e| e.code.as_str())).collect();
    assert_eq!(
        codes,
        vec![Some("malformed_message"), Some("malformed_message"), Some("unknown_document"), None]
    );
    assert!(response.results[3].data.is_some(), "the good message is answered");
    assert!(!response.index_doc.is_empty());

    // Fetch the record, make an edit, and send the same change-carrying batch three times, then an
    // old message after a newer one.
    assert_eq!(device.sync(&doc_id, &mut local).await, None);
    let (_, checks) = local.get(ROOT, "checks").unwrap().unwrap();
    let (_, entry) = local.get(&checks, items[0].as_str()).unwrap().unwrap();
    local.put(&entry, "result", "pass").unwrap();
    local.put(&entry, "by", "officer1").unwrap();
    local.put(&entry, "at", 1_750_000_000_000i64).unwrap();
    local.commit();
    let change = local.get_last_local_change().unwrap().raw_bytes().to_vec();
    // A message carrying the change regardless of what the server has: heads plus the change.
    let mut fresh = automerge::sync::State::new();
    let first = local.sync().generate_sync_message(&mut fresh).unwrap();
    let mut carrying = first.clone();
    carrying.changes = automerge::sync::ChunkList::from(vec![change]);
    let carrying = carrying.encode();
    let mut accepted = 0;
    for _ in 0..3 {
        let response = device.batch(vec![(doc_id.clone(), carrying.clone())]).await;
        assert_eq!(response.results[0].error, None);
        accepted += response.results[0].accepted;
    }
    assert_eq!(accepted, 1, "a replayed change is stored once");
    let stale = device.batch(vec![(doc_id.clone(), first.encode())]).await;
    assert_eq!(stale.results[0].error, None, "an old message after a newer one is harmless");

    let view = record(&supervisor, instruction).await;
    assert_eq!(view["record"]["checks"][&items[0]]["result"], "pass");
    assert_eq!(view["state"], "in_progress");
    // What the server stored reloads to the same heads as the device's copy.
    assert_eq!(view["heads"], json!(hex_heads(&mut local)));
}

#[tokio::test]
async fn a_batch_followed_by_trailing_bytes_or_a_second_batch_is_refused_whole() {
    let server = TestServer::start();
    let device = RawDevice::login(&server, "officer1").await;
    let good = batch::encode(&SyncRequest { v: batch::VERSION, messages: vec![], pending: None });
    let (status, _) = device.post(good.clone()).await;
    assert_eq!(status, 200, "the body alone is a valid batch");

    let mut noise = [0u8; 100];
    getrandom::fill(&mut noise).unwrap();
    let padded = [good.as_slice(), noise.as_slice()].concat();
    let twice = [good.as_slice(), good.as_slice()].concat();
    for (name, body, trailing) in [("100 random bytes", padded, 100), ("a second batch", twice, good.len())] {
        let (status, body) = device.post(body).await;
        assert_eq!(status, 400, "{name}: {}", String::from_utf8_lossy(&body));
        let error: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(error["code"], "invalid_batch", "{name}: {error}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(&format!("{trailing} trailing bytes")), "{name}: {message}");
    }
}

#[tokio::test]
async fn a_server_killed_mid_batch_keeps_every_acknowledged_change_and_the_handheld_resumes() {
    let mut server = TestServer::start();
    let instruction = dispatched(&server, &["officer1"]).await;
    let items = items(&server, instruction).await;
    let id = instruction.to_string();
    let one = Handheld::new(&server, "officer1");
    one.sync();
    one.ok(&["check", &id, &items[0], "pass"]);
    one.ok(&["note", &id, "acknowledged before the crash"]);
    one.sync();
    assert_eq!(one.ok(&["status"])["pending_edits"], 0);

    // More edits; the server dies while the handheld syncs them.
    for item in &items[1..] {
        one.ok(&["check", &id, item, "not_applicable"]);
    }
    one.ok(&["note", &id, "sent around the crash"]);
    let mut syncing = one.command(&["--attempts", "1", "sync"]).spawn().unwrap();
    server.kill();
    // Whether it finished before the kill or failed after it, it must not hang.
    let _ = syncing.wait();
    server.restart();

    let view = record(&server.login("supervisor1").await, instruction).await;
    assert_eq!(view["record"]["checks"][&items[0]]["result"], "pass", "acknowledged before the kill: {view}");
    assert_eq!(note_texts(&view)[0], "acknowledged before the crash");

    // The handheld resumes against the restarted server (a new port) and nothing is doubled.
    one.ok(&["--use-server", &server.base, "sync"]);
    assert_eq!(one.ok(&["status"])["pending_edits"], 0);
    let view = record(&server.login("supervisor1").await, instruction).await;
    for item in &items[1..] {
        assert_eq!(view["record"]["checks"][item]["result"], "not_applicable");
    }
    assert_eq!(note_texts(&view), ["acknowledged before the crash", "sent around the crash"]);
}

#[tokio::test]
async fn a_handheld_killed_mid_sync_resumes_without_duplicates() {
    let server = TestServer::start();
    let instruction = dispatched(&server, &["officer1"]).await;
    let items = items(&server, instruction).await;
    let id = instruction.to_string();
    let one = Handheld::new(&server, "officer1");
    one.sync();
    for (n, item) in items.iter().enumerate() {
        one.ok(&["check", &id, item, "pass"]);
        one.ok(&["note", &id, &format!("line {n}")]);
    }
    one.ok(&[
        "sample",
        &id,
        "S-1",
        "--description",
        "one fish",
        "--quantity",
        "1",
        "--unit",
        "pcs",
        "--seal",
        "SEAL-1",
    ]);

    // Kill the sync at whatever point it has reached; every point must be safe.
    let mut child = one.command(&["sync"]).spawn().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    one.sync();
    one.sync();

    let view = record(&server.login("supervisor1").await, instruction).await;
    let expected: Vec<String> = (0..items.len()).map(|n| format!("line {n}")).collect();
    assert_eq!(note_texts(&view), expected);
    assert_eq!(view["record"]["samples"].as_object().unwrap().len(), 1);
    assert_eq!(one.ok(&["status"])["pending_edits"], 0);
    assert_eq!(one.ok(&["show", &id])["record"], view["record"]);
}

/// The texts of a record view's notes, in their order.
fn note_texts(view: &Value) -> Vec<String> {
    view["record"]["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap().to_owned())
        .collect()
}

/// Files, approves and assigns `n` instructions to officer1, eight requests in flight at a time.
async fn dispatched_many(server: &TestServer, n: usize) -> Vec<i64> {
    let operator = server.login("ent1-operator").await;
    let mut filing = tokio::task::JoinSet::new();
    let mut apps = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(8) {
        for _ in chunk {
            let operator = operator.clone();
            filing.spawn(async move {
                let (status, app) = operator.post("/api/v1/applications", content()).await;
                assert_eq!(status, 201, "{app}");
                let id = app["id"].as_i64().unwrap();
                let (status, body) =
                    operator.post(&format!("/api/v1/applications/{id}/submit"), json!({})).await;
                assert_eq!(status, 200, "{body}");
                id
            });
        }
        while let Some(id) = filing.join_next().await {
            apps.push(id.unwrap());
        }
    }
    let reviewer = server.login("reviewer1").await;
    for chunk in apps.chunks(200) {
        let (status, body) =
            reviewer.post("/api/v1/reviews", json!({"application_ids": chunk, "action": "approve"})).await;
        assert_eq!(status, 200, "{body}");
    }
    let supervisor = server.login("supervisor1").await;
    let officer = user_id(server, "officer1").await;
    let mut instructions = Vec::new();
    let mut offset = 0;
    loop {
        let (_, page) = supervisor.get(&format!("/api/v1/instructions?limit=500&offset={offset}")).await;
        let page = page.as_array().unwrap().clone();
        offset += page.len();
        instructions.extend(page.iter().map(|i| i["id"].as_i64().unwrap()));
        if page.is_empty() {
            break;
        }
    }
    assert_eq!(instructions.len(), n);
    let mut assigning = tokio::task::JoinSet::new();
    for chunk in instructions.chunks(8) {
        for id in chunk {
            let (supervisor, id) = (supervisor.clone(), *id);
            assigning.spawn(async move {
                let (status, body) = supervisor
                    .post(&format!("/api/v1/instructions/{id}/assign"), json!({"officer_ids": [officer]}))
                    .await;
                assert_eq!(status, 200, "{body}");
            });
        }
        while let Some(done) = assigning.join_next().await {
            done.unwrap();
        }
    }
    instructions
}

#[tokio::test]
async fn a_handheld_with_a_thousand_records_syncs_in_a_bounded_number_of_round_trips() {
    const RECORDS: usize = 1_000;
    let server = TestServer::start();
    let instructions = dispatched_many(&server, RECORDS).await;
    let one = Handheld::new(&server, "officer1");

    // First sync from empty. The bound: the index takes at most 3 requests; the records at most
    // 4 rounds (3, plus one for a bloom-filter false positive) of ceil(1000 / 250) = 4 requests.
    let report = one.sync();
    assert_eq!(report["records"], RECORDS, "{report}");
    assert_eq!(report["errors"], json!([]));
    let requests = report["requests"].as_u64().unwrap();
    eprintln!("first sync of {RECORDS} records: {} rounds, {requests} requests", report["rounds"]);
    assert!(requests <= 3 + 4 * 4, "took {requests} requests: {report}");
    assert_eq!(one.ok(&["list"]).as_array().unwrap().len(), RECORDS);

    // Edits on fifty records go up in one round (issue 15): every opening message carries its changes
    // since the shared heads and the server answers with its own, so the index and the thousand
    // records settle in ceil(1001 / 250) = 5 requests.
    for id in &instructions[..50] {
        one.ok(&["note", &id.to_string(), "seen"]);
    }
    let report = one.sync();
    assert_eq!(report["rounds"], 1, "{report}");
    assert_eq!(report["requests"], 5, "{report}");
    assert_eq!(report["accepted"], 50, "{report}");
    assert_eq!(report["errors"], json!([]));
    assert_eq!(one.ok(&["status"])["pending_edits"], 0);

    // The server holds every edit: a second device of another officer would see them; here the
    // supervisor's view of the first record carries the note.
    let supervisor = server.login("supervisor1").await;
    let view = record(&supervisor, instructions[0]).await;
    assert_eq!(note_texts(&view), ["seen"], "{view}");

    // Nothing new on either side: still one round, and the server writes nothing for it.
    let unwritten = || async {
        let (_, metrics) = server.api().get("/metrics").await;
        metrics
            .as_str()
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("fieldcheck_sync_rounds_without_write_total ")?.parse::<u64>().ok())
            .unwrap()
    };
    let before = unwritten().await;
    let report = one.sync();
    assert_eq!((report["rounds"].as_u64(), report["accepted"].as_u64()), (Some(1), Some(0)), "{report}");
    assert_eq!(unwritten().await - before, 5, "five requests, none of them written: {report}");
}

#[tokio::test]
async fn reassignment_moves_the_record_from_the_dropped_officers_index_to_the_new_one() {
    let server = TestServer::start();
    let instruction = dispatched(&server, &["officer1"]).await;
    let (one, two) = (Handheld::new(&server, "officer1"), Handheld::new(&server, "officer2"));
    one.sync();
    assert_eq!(one.ok(&["list"]).as_array().unwrap().len(), 1);

    let officer2 = user_id(&server, "officer2").await;
    let supervisor = server.login("supervisor1").await;
    let (status, body) = supervisor
        .post(&format!("/api/v1/instructions/{instruction}/assign"), json!({"officer_ids": [officer2]}))
        .await;
    assert_eq!(status, 200, "{body}");

    one.sync();
    assert_eq!(one.ok(&["list"]), json!([]));
    two.sync();
    assert_eq!(two.ok(&["list"])[0]["instruction_id"], instruction);
    // The dropped officer's device may no longer write to it.
    let device = RawDevice::login(&server, "officer1").await;
    let doc_id = record(&supervisor, instruction).await["record_doc"].as_str().unwrap().to_owned();
    assert_eq!(device.sync(&doc_id, &mut AutoCommit::new()).await.as_deref(), Some("not_assigned"));
}

#[tokio::test]
async fn a_cancelled_instructions_record_refuses_new_changes() {
    let server = TestServer::start();
    let instruction = dispatched(&server, &["officer1"]).await;
    let items = items(&server, instruction).await;
    let id = instruction.to_string();
    let one = Handheld::new(&server, "officer1");
    one.sync();
    one.ok(&["check", &id, &items[0], "pass"]);
    one.sync();
    let supervisor = server.login("supervisor1").await;
    let (status, body) = supervisor
        .post(&format!("/api/v1/instructions/{instruction}/cancel"), json!({"reason": "goods withdrawn"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let before = record(&supervisor, instruction).await;

    one.ok(&["check", &id, &items[1], "fail"]);
    // The cancelled instruction left the officer's index: the handheld's one-round first request still
    // carries the record and the server refuses it (a sealed record: results.rs, `sealed_record`), so the
    // edit stays pending on the device, the list drops it, and the sync says so with its own exit status
    // (deployment.rs has the whole report).
    let out = one.run(&["sync"]);
    assert_eq!(out.status.code(), Some(fieldcheck_handheld::cli::STRANDED_EXIT_CODE));
    assert_eq!(one.ok(&["list"]), json!([]));
    assert_eq!(one.ok(&["status"])["pending_edits"], 1, "the unsent edit stays on the device");
    let after = record(&supervisor, instruction).await;
    assert_eq!(after["heads"], before["heads"]);
    assert_eq!(after["state"], "cancelled");
}

#[tokio::test]
async fn a_second_store_registered_with_a_device_id_in_use_retires_the_first_and_its_edit_is_refused_cleanly()
{
    let server = TestServer::start();
    let instruction = dispatched(&server, &["officer1"]).await;
    let item = items(&server, instruction).await[0].clone();
    let id = instruction.to_string();
    let register = || {
        let h = Handheld { dir: tempfile::tempdir().unwrap() };
        let registered = h.ok(&[
            "register",
            "--server",
            &server.base,
            "--username",
            "officer1",
            "--password",
            "demo-password",
            "--device-id",
            "demo-handheld-officer1",
        ]);
        h.sync();
        (h, registered["actor_id"].clone())
    };
    let (first, first_actor) = register();
    // The finding: a second local store registered with the same device id. It gets its own actor.
    let (second, second_actor) = register();
    assert_ne!(first_actor, second_actor);

    // Both edit offline; the second syncs first and is stored.
    first.ok(&["check", &id, &item, "fail"]);
    second.ok(&["check", &id, &item, "pass"]);
    second.sync();
    // The first copy's sessions ended with the claim; logged in again, its edit is refused by rule (not
    // by automerge's duplicate seq, which left it pending for ever), and the exit status says so.
    assert!(!first.run(&["sync"]).status.success(), "the retired copy's token no longer works");
    first.ok(&["login", "--password", "demo-password"]);
    let report = first.sync_refused();
    assert_eq!(report["errors"][0][1], "retired_actor", "{report}");
    let view = record(&server.login("supervisor1").await, instruction).await;
    assert_eq!(view["record"]["checks"][&item]["result"], "pass", "{view}");
    assert_eq!(view["conflicts"], json!([]));
}

#[tokio::test]
async fn handhelds_contending_for_one_sync_slot_wait_in_line_and_every_edit_is_stored_without_a_503() {
    // One sync at a time, a line of up to 5 s: the others wait their turn instead of being turned away.
    let server = TestServer::start_with(&[
        ("FIELDCHECK__STORAGE__MAX_SYNCS_IN_FLIGHT", "1"),
        ("FIELDCHECK__STORAGE__MAX_SYNC_WAIT_MS", "5000"),
    ]);
    let officers = ["officer1", "officer2"];
    let instruction = dispatched(&server, &officers).await;
    let handhelds: Vec<Handheld> = officers.iter().map(|o| Handheld::new(&server, o)).collect();
    let all_sync = |handhelds: &[Handheld]| {
        std::thread::scope(|s| {
            let running: Vec<_> =
                handhelds.iter().map(|h| s.spawn(|| h.ok(&["--attempts", "1", "sync"]))).collect();
            running.into_iter().map(|r| r.join().unwrap()).collect::<Vec<Value>>()
        })
    };
    all_sync(&handhelds);
    for (n, h) in handhelds.iter().enumerate() {
        h.ok(&["note", &instruction.to_string(), &format!("note from handheld {n}")]);
    }
    for report in all_sync(&handhelds) {
        assert_eq!(report["errors"], json!([]), "{report}");
    }
    for h in &handhelds {
        assert_eq!(h.ok(&["status"])["pending_edits"], 0);
    }
    let view = record(&server.login("supervisor1").await, instruction).await;
    let mut notes = note_texts(&view);
    notes.sort();
    assert_eq!(notes, ["note from handheld 0", "note from handheld 1"], "{view}");

    let refused = sync_503s(&server).await;
    assert_eq!(refused, 0.0, "a short line is waited in, not answered 503");
}

#[tokio::test]
async fn a_saturated_server_answers_503_with_retry_after_and_the_handheld_waits_a_bounded_number_of_times() {
    // No sync slots at all: every batch is turned away before any work.
    let server = TestServer::start_with(&[("FIELDCHECK__STORAGE__MAX_SYNCS_IN_FLIGHT", "0")]);
    dispatched(&server, &["officer1"]).await;
    let handheld = Handheld::new(&server, "officer1");
    let out = handheld.run(&["--attempts", "1", "sync"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("503") && stderr.contains("saturated"), "{stderr}");

    let refused = sync_503s(&server).await;
    // Four 503s waited out per attempt (they did no work), then the fifth ends the sync.
    assert_eq!(refused, 5.0, "the handheld's retries after 503 are bounded");

    let (status, tokens) = server
        .api()
        .post(
            "/api/v1/auth/login",
            json!({"username": "officer1", "password": "demo-password", "device_id": "demo-handheld-officer1"}),
        )
        .await;
    assert_eq!(status, 200, "{tokens}");
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/sync", server.base))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .header("content-type", batch::CONTENT_TYPE)
        .body(batch::encode(&SyncRequest { v: batch::VERSION, messages: vec![], pending: None }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "1");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "saturated");
}

/// How many batch syncs the server has answered `503` so far (its `/metrics`).
async fn sync_503s(server: &TestServer) -> f64 {
    let (_, metrics) = server.api().get("/metrics").await;
    metrics
        .as_str()
        .unwrap()
        .lines()
        .filter(|l| l.contains("route=\"/api/v1/sync\"") && l.contains("status=\"503\""))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}
