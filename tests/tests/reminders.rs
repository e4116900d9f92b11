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
