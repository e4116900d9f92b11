//! The booking request's refusals found before the writer (a reader's snapshot of the same checks and of
//! the slot's capacity) against the real server: they agree with the writer's, a freed place is bookable
//! at once, and nothing about them is kept in memory that a restart could lose or a cancellation leave
//! stale.

use fieldcheck_tests::{
    Api, TestServer,
    booking::{DAY, HOUR, MONDAY, issue_instructions, race, set_calendar},
    rfc3339,
};
use serde_json::{Value, json};

/// The UTC instant of `hour`:00 Shanghai time, `day` days after Monday 2026-11-30.
fn local(day: i64, hour: i64) -> String {
    rfc3339(MONDAY + day * DAY + (hour - 8) * HOUR)
}

async fn book(api: &Api, instruction: i64, starts_at: &str) -> (u16, Value) {
    api.post("/api/v1/bookings", json!({"instruction_id": instruction, "starts_at": starts_at})).await
}

/// Asserts a `409 slot_full` for `starts_at` and answers the alternatives it names.
fn refused_as_full(status: u16, body: &Value, starts_at: &str) -> Vec<String> {
    assert_eq!((status, body["code"].as_str()), (409, Some("slot_full")), "{body}");
    assert_eq!(body["details"]["slot"]["starts_at"], starts_at, "{body}");
    body["details"]["alternatives"]
        .as_array()
        .expect("alternatives")
        .iter()
        .map(|a| a["starts_at"].as_str().unwrap().to_string())
        .collect()
}

async fn bookings_of(api: &Api, instruction: i64) -> Vec<Value> {
    let (status, body) = api.get(&format!("/api/v1/bookings?instruction_id={instruction}")).await;
    assert_eq!(status, 200, "{body}");
    body.as_array().expect("a list of bookings").clone()
}

#[tokio::test]
async fn a_full_slot_is_refused_until_a_cancellation_frees_a_place_and_a_restart_changes_nothing_of_that() {
    let mut server = TestServer::start();
    server.set_clock(MONDAY).await;
    set_calendar(&server, 2, true, &[]).await;
    let ent = server.login("ent1-operator").await;
    let ids = issue_instructions(&server, &ent, 5).await;
    let slot = local(2, 10);

    let mut booked = Vec::new();
    for id in &ids[..2] {
        let (status, b) = book(&ent, *id, &slot).await;
        assert_eq!(status, 201, "{b}");
        booked.push(b["id"].as_i64().unwrap());
    }
    let (status, body) = book(&ent, ids[2], &slot).await;
    let alternatives = refused_as_full(status, &body, &slot);
    assert_eq!(alternatives.len(), 3, "the nearest free slots: {body}");
    assert!(!alternatives.contains(&slot), "the full slot is no alternative: {body}");
    assert!(bookings_of(&ent, ids[2]).await.is_empty(), "a refused request leaves no booking");
    assert_eq!(bookings_of(&ent, ids[0]).await.len(), 1, "the list does show a booked instruction's booking");

    // A cancellation frees a place: the next request gets it, the one after is refused again.
    let (status, body) = ent.post(&format!("/api/v1/bookings/{}/cancel", booked[0]), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(book(&ent, ids[2], &slot).await.0, 201, "the freed place is bookable at once");
    let (status, body) = book(&ent, ids[3], &slot).await;
    refused_as_full(status, &body, &slot);

    // After a restart the slot is as full as the database says, and a place freed then is bookable.
    server.stop();
    server.restart();
    server.set_clock(MONDAY).await;
    let ent = server.login("ent1-operator").await;
    let (status, body) = book(&ent, ids[3], &slot).await;
    refused_as_full(status, &body, &slot);
    let (status, body) = ent.post(&format!("/api/v1/bookings/{}/cancel", booked[1]), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(book(&ent, ids[3], &slot).await.0, 201, "the place freed after the restart is bookable");
    let (status, body) = book(&ent, ids[4], &slot).await;
    refused_as_full(status, &body, &slot);
}

#[tokio::test]
async fn racing_requests_for_one_slot_are_refused_alike_whether_found_full_before_or_in_the_writer() {
    let server = TestServer::start_with(&[fieldcheck_tests::booking::LONG_DEADLINE]);
    server.set_clock(MONDAY).await;
    set_calendar(&server, 3, true, &[]).await;
    let ent = server.login("ent1-operator").await;
    let ids = issue_instructions(&server, &ent, 40).await;
    let slot = local(2, 10);

    let attempts = race(&ent, &ids, std::slice::from_ref(&slot)).await;
    let confirmed = attempts.iter().filter(|a| a.status == 201).count();
    assert_eq!(confirmed, 3, "exactly the capacity is booked");
    // Some of the refusals were found on a reader, others in the writer (the slot filled while they
    // queued): every one names the same slot and the same alternatives.
    let mut alternatives = attempts
        .iter()
        .filter(|a| a.status != 201)
        .map(|a| refused_as_full(a.status, &a.body, &slot))
        .collect::<Vec<_>>();
    assert_eq!(alternatives.len(), 37);
    alternatives.dedup();
    assert_eq!(alternatives.len(), 1, "every refusal names the same alternatives: {alternatives:?}");
    assert_eq!(alternatives[0].len(), 3);
}
