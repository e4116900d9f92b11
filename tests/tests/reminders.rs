//! Reminders in the receipts feed, on the manual clock: each appears exactly once when the clock passes its
//! threshold, and a restart does not send it again.

use std::time::Duration;

use fieldcheck_tests::{
    Api, TestServer,
    booking::{DAY, HOUR, MONDAY, issue_instructions, set_calendar, slots},
    photos::sha256_hex,
    repo_root,
};
use serde_json::{Value, json};

const SWEEPS: &str = "fieldcheck_reminder_sweeps_total";

/// Waits until the server has finished `n` more reminder sweeps (a sweep that started before counts
/// only if it ends after): what it could send by then, it has sent.
async fn sweeps(server: &TestServer, n: f64) {
    let target = server.metric(SWEEPS).await + n + 1.0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while server.metric(SWEEPS).await < target {
        assert!(tokio::time::Instant::now() < deadline, "the reminder sweeps stopped");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The enterprise's receipts of `kind` (logged in afresh: the clock moves past access tokens' lifetimes).
async fn reminders(server: &TestServer, kind: &str) -> Vec<Value> {
    let api: Api = server.login("ent1-operator").await;
    let (status, page) = api.get("/api/v1/receipts?after=0&limit=500").await;
    assert_eq!(status, 200, "{page}");
    page["receipts"].as_array().unwrap().iter().filter(|r| r["kind"] == kind).cloned().collect()
}

#[tokio::test]
async fn each_reminder_appears_once_when_the_clock_passes_its_threshold_also_after_a_restart() {
    let mut server = TestServer::start_with(&[("FIELDCHECK__REMINDERS__SWEEP_SECS", "1")]);
    server.set_clock(MONDAY).await;
    set_calendar(&server, 1, true, &[]).await;
    let ent = server.login("ent1-operator").await;
    let instruction = issue_instructions(&server, &ent, 1).await[0];
    // Tuesday 09:00 Shanghai: 25 hours after Monday 00:00 UTC; the instruction's deadline is 72 hours out.
    let start = slots(&ent, "2026-12-01", "2026-12-04", 1).await.remove(0);
    let (status, booking) =
        ent.post("/api/v1/bookings", json!({"instruction_id": instruction, "starts_at": start})).await;
    assert_eq!((status, booking["state"].as_str()), (201, Some("confirmed")), "{booking}");

    sweeps(&server, 2.0).await;
    assert!(
        reminders(&server, "reminder_booking_soon").await.is_empty(),
        "25 hours ahead is not tomorrow yet"
    );
    assert!(reminders(&server, "reminder_deadline_near").await.is_empty());

    server.set_clock(MONDAY + 2 * HOUR).await;
    sweeps(&server, 2.0).await;
    let sent = reminders(&server, "reminder_booking_soon").await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        (sent[0]["subject"].as_str(), sent[0]["subject_id"].as_i64()),
        (Some("booking"), booking["id"].as_i64())
    );
    assert_eq!(sent[0]["details"]["starts_at"], start);

    server.stop();
    server.restart();
    server.set_clock(MONDAY + 3 * HOUR).await;
    sweeps(&server, 2.0).await;
    assert_eq!(
        reminders(&server, "reminder_booking_soon").await.len(),
        1,
        "not sent again after the restart"
    );

    server.set_clock(MONDAY + 49 * HOUR).await;
    sweeps(&server, 2.0).await;
    let sent = reminders(&server, "reminder_deadline_near").await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        (sent[0]["subject"].as_str(), sent[0]["subject_id"].as_i64()),
        (Some("instruction"), Some(instruction))
    );
    server.set_clock(MONDAY + 50 * HOUR).await;
    sweeps(&server, 2.0).await;
    assert_eq!(reminders(&server, "reminder_deadline_near").await.len(), 1);
}

#[tokio::test]
async fn a_document_asked_for_again_and_not_sent_is_reminded_of_once() {
    let server = TestServer::start_with(&[("FIELDCHECK__REMINDERS__SWEEP_SECS", "1")]);
    server.set_clock(MONDAY).await;
    let ent = server.login("ent1-operator").await;
    let (_, app) =
        ent.post("/api/v1/applications", fieldcheck_tests::dispatch::frozen_fish_application()).await;
    let pdf = std::fs::read(repo_root().join("fixtures/documents/invoice.pdf")).unwrap();
    let path = format!("/api/v1/applications/{}/documents/{}?kind=invoice", app["id"], sha256_hex(&pdf));
    let headers = [("content-type", "application/pdf".to_string())];
    let (status, _, body) = ent.bytes(reqwest::Method::PUT, &path, &headers, Some(pdf.into())).await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let attachment = serde_json::from_slice::<Value>(&body).unwrap()["id"].as_i64().unwrap();
    let reviewer = server.login("reviewer1").await;
    let (status, body) = reviewer
        .post(
            &format!("/api/v1/documents/{attachment}/request-again"),
            json!({"opinion": "the stamp is missing"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    server.set_clock(MONDAY + DAY).await;
    sweeps(&server, 2.0).await;
    assert!(reminders(&server, "reminder_document_outstanding").await.is_empty(), "48 hours have not passed");
    server.set_clock(MONDAY + 2 * DAY + HOUR).await;
    sweeps(&server, 2.0).await;
    let sent = reminders(&server, "reminder_document_outstanding").await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        (sent[0]["subject"].as_str(), sent[0]["subject_id"].clone()),
        (Some("application"), app["id"].clone())
    );
    assert_eq!(sent[0]["details"]["attachment_id"], attachment);
    server.set_clock(MONDAY + 3 * DAY).await;
    sweeps(&server, 2.0).await;
    assert_eq!(reminders(&server, "reminder_document_outstanding").await.len(), 1);
}

/// `username`'s receipts of `kind` (logged in afresh).
async fn reminders_of(server: &TestServer, username: &str, kind: &str) -> Vec<Value> {
    let api: Api = server.login(username).await;
    let (status, page) = api.get("/api/v1/receipts?after=0&limit=500").await;
    assert_eq!(status, 200, "{page}");
    page["receipts"].as_array().unwrap().iter().filter(|r| r["kind"] == kind).cloned().collect()
}

#[tokio::test]
async fn a_delegation_an_operators_validity_and_a_producer_registration_ending_soon_are_reminded_once_also_after_a_restart()
 {
    let mut server = TestServer::start_with(&[("FIELDCHECK__REMINDERS__SWEEP_SECS", "1")]);
    server.set_clock(MONDAY).await;
    let legal = server.login("ent1-legal").await;
    let ends = fieldcheck_tests::rfc3339(MONDAY + 20 * DAY);
    let (status, delegation) = legal
        .post(
            "/api/v1/delegations",
            json!({"agent_customs_code": "3101980003", "scopes": ["bookings"], "valid_until": ends}),
        )
        .await;
    assert_eq!(status, 201, "{delegation}");
    let operator = fieldcheck_tests::dispatch::user_id(&server, "ent1-operator").await;
    let (status, body) = legal
        .post(&format!("/api/v1/enterprise/operators/{operator}/validity"), json!({"valid_until": ends}))
        .await;
    assert_eq!(status, 200, "{body}");
    // A nursery registration that lapses at 2027-01-01 (fixtures), 32 days after MONDAY, named by a draft.
    let mut content = fieldcheck_tests::dispatch::frozen_fish_application();
    content["applicant_code"] = json!("4403960002");
    content["consignor_code"] = json!("4403960002");
    content["goods"][0] = json!({"hs_code": "0602909200", "name": "nursery plants", "quantity": 100.0,
        "unit": "piece", "net_weight_kg": 100.0, "value_usd": 500.0, "origin_country": "CN",
        "producer_registration_no": "4401ZMY0032"});
    let (status, app) = server.login("ent2-operator").await.post("/api/v1/applications", content).await;
    assert_eq!(status, 201, "{app}");

    sweeps(&server, 2.0).await;
    assert!(
        reminders_of(&server, "ent1-legal", "reminder_delegation_expiring").await.is_empty(),
        "20 days out"
    );
    assert!(reminders_of(&server, "ent1-legal", "reminder_operator_expiring").await.is_empty());
    assert!(
        reminders_of(&server, "ent2-operator", "reminder_producer_expiring").await.is_empty(),
        "32 days out"
    );

    server.set_clock(MONDAY + 7 * DAY).await;
    sweeps(&server, 2.0).await;
    let sent = reminders_of(&server, "ent1-legal", "reminder_delegation_expiring").await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        (sent[0]["subject"].as_str(), &sent[0]["subject_id"]),
        (Some("delegation"), &delegation["id"])
    );
    assert_eq!(sent[0]["details"]["valid_until"], ends);
    let sent = reminders_of(&server, "ent1-legal", "reminder_operator_expiring").await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!((sent[0]["subject"].as_str(), sent[0]["subject_id"].as_i64()), (Some("user"), Some(operator)));
    let sent = reminders_of(&server, "ent2-operator", "reminder_producer_expiring").await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!((sent[0]["subject"].as_str(), &sent[0]["subject_id"]), (Some("application"), &app["id"]));
    assert_eq!(sent[0]["details"]["producer_registration_nos"], json!(["4401ZMY0032"]));
    assert!(
        reminders_of(&server, "agent-legal", "reminder_delegation_expiring").await.is_empty(),
        "the principal is reminded, not the agent"
    );

    server.stop();
    server.restart();
    server.set_clock(MONDAY + 8 * DAY).await;
    sweeps(&server, 2.0).await;
    for (user, kind) in [
        ("ent1-legal", "reminder_delegation_expiring"),
        ("ent1-legal", "reminder_operator_expiring"),
        ("ent2-operator", "reminder_producer_expiring"),
    ] {
        assert_eq!(
            reminders_of(&server, user, kind).await.len(),
            1,
            "{kind} not sent again after the restart"
        );
    }
}

#[tokio::test]
async fn a_deadline_near_reaches_the_assigned_officers_handheld_and_the_supervisors_live_stream() {
    let server = TestServer::start_with(&[("FIELDCHECK__REMINDERS__SWEEP_SECS", "1")]);
    server.set_clock(MONDAY).await;
    let instruction = fieldcheck_tests::dispatch::dispatched(&server, &["officer1"]).await;
    let handheld = fieldcheck_tests::field::Handheld::new(&server, "officer1");
    let report = handheld.sync();
    assert_eq!(report["reminders"], json!({}), "no reminder yet: {report}");

    let supervisor = server.login("supervisor1").await;
    let mut stream = fieldcheck_tests::monitoring::EventStream::open(&supervisor, None).await;
    assert_eq!(stream.status, 200);
    // The deadline is 72 hours after the instruction; 49 hours on, it is within the 24-hour threshold.
    server.set_clock(MONDAY + 49 * HOUR).await;
    let events =
        stream.collect_until(Duration::from_secs(30), |e| e.data["kind"] == "reminder_deadline_near").await;
    let reminder = &events.last().unwrap().data;
    assert_eq!(
        (reminder["subject"].as_str(), reminder["subject_id"].as_i64()),
        (Some("instruction"), Some(instruction))
    );

    let report = handheld.sync();
    let reminders = report["reminders"].as_object().unwrap_or_else(|| panic!("{report}"));
    let entry = &reminders[&instruction.to_string()];
    assert_eq!(entry["kind"], "deadline_near", "{report}");
    let (_, i) = server.login("supervisor1").await.get(&format!("/api/v1/instructions/{instruction}")).await;
    assert_eq!(fieldcheck_tests::rfc3339(entry["due_at"].as_i64().unwrap() / 1000), i["deadline"], "{i}");
}
