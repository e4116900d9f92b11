//! Inspection slot booking against the real server: capacity under a 500-way race, the confirm/decline
//! flow, rescheduling, cut-off and no-show rules on the manual clock, scoping and bad input.

use std::collections::HashMap;

use fieldcheck_tests::{
    Api, TestServer,
    booking::{self, DAY, HOUR, MONDAY, SITE, issue_instructions, race, set_calendar},
    dispatch::user_id,
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

/// `(used, free)` of the slot starting at `starts_at`, from the availability endpoint.
async fn usage(api: &Api, starts_at: &str) -> (i64, i64) {
    let (status, body) =
        api.get(&format!("/api/v1/sites/{SITE}/availability?from=2026-11-30&to=2026-12-11")).await;
    assert_eq!(status, 200, "{body}");
    let slot = body["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["slot"]["starts_at"] == starts_at)
        .unwrap_or_else(|| panic!("no slot at {starts_at}"));
    (slot["used"].as_i64().unwrap(), slot["free"].as_i64().unwrap())
}

async fn instruction(api: &Api, id: i64) -> Value {
    let (status, body) = api.get(&format!("/api/v1/instructions/{id}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn code(body: &Value) -> &str {
    body["code"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_racing_requests_for_twenty_slots_of_five_confirm_exactly_one_hundred() {
    let server = TestServer::start_with(&[booking::LONG_DEADLINE]);
    server.set_clock(MONDAY).await;
    set_calendar(&server, 5, true, &[]).await;
    let ent = server.login("ent1-operator").await;
    let instructions = issue_instructions(&server, &ent, 500).await;
    let slots = booking::slots(&ent, "2026-12-01", "2026-12-04", 20).await;

    let attempts = race(&ent, &instructions, &slots).await;

    let won: Vec<&Value> = attempts.iter().filter(|a| a.status == 201).map(|a| &a.body).collect();
    assert_eq!(won.len(), 100, "exactly capacity × slots succeed");
    let mut per_slot: HashMap<&str, usize> = HashMap::new();
    for b in &won {
        assert_eq!(b["state"], "confirmed", "the calendar confirms automatically: {b}");
        *per_slot.entry(b["slot"]["starts_at"].as_str().unwrap()).or_default() += 1;
    }
    assert_eq!(per_slot.len(), 20);
    assert!(per_slot.values().all(|n| *n == 5), "{per_slot:?}");
    for a in attempts.iter().filter(|a| a.status != 201) {
        assert_eq!((a.status, code(&a.body)), (409, "slot_full"), "{}", a.body);
        let alternatives = a.body["details"]["alternatives"].as_array().expect("alternatives named");
        assert!(!alternatives.is_empty(), "{}", a.body);
        assert!(alternatives.iter().all(|s| s["starts_at"] != a.body["details"]["slot"]["starts_at"]));
    }
    for s in &slots {
        assert_eq!(usage(&ent, s).await, (5, 0), "slot {s}");
    }
    let (_, confirmed) = ent.get("/api/v1/bookings?state=confirmed&limit=500").await;
    assert_eq!(confirmed.as_array().unwrap().len(), 100);
    let (_, requested) = ent.get("/api/v1/bookings?state=requested&limit=500").await;
    assert_eq!(requested.as_array().unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_killed_during_a_booking_burst_keeps_every_acknowledged_booking_and_never_overbooks() {
    const WRITERS: usize = 12;
    let mut server = TestServer::start_with(&[booking::LONG_DEADLINE]);
    server.set_clock(MONDAY).await;
    set_calendar(&server, 5, true, &[]).await;
    let ent = server.login("ent1-operator").await;
    let instructions = issue_instructions(&server, &ent, 240).await;
    let slots = booking::slots(&ent, "2026-12-01", "2026-12-04", 20).await;
    // (instruction, slot) of every booking answered 201, and whether a writer was cut off by the kill.
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(i64, String)>::new()));
    let cut_off = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = instructions
        .chunks(instructions.len() / WRITERS)
        .enumerate()
        .map(|(w, mine)| {
            let (ent, slots, mine) = (ent.clone(), slots.clone(), mine.to_vec());
            let (acknowledged, cut_off) = (acknowledged.clone(), cut_off.clone());
            tokio::spawn(async move {
                // One request in flight per writer until the server dies.
                for (k, id) in mine.into_iter().enumerate() {
                    let slot = slots[(w + k * WRITERS) % slots.len()].clone();
                    let body = json!({"instruction_id": id, "starts_at": slot});
                    match ent.try_send(reqwest::Method::POST, "/api/v1/bookings", Some(body)).await {
                        Ok((201, _)) => acknowledged.lock().unwrap().push((id, slot)),
                        Ok((409, b)) if code(&b) == "slot_full" => {}
                        Ok((status, b)) => panic!("booking {id}: {status} {b}"),
                        Err(_) => {
                            cut_off.store(true, std::sync::atomic::Ordering::SeqCst);
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while acknowledged.lock().unwrap().len() < 2 * WRITERS {
        assert!(std::time::Instant::now() < deadline, "the bookings did not start");
        tokio::task::yield_now().await;
    }
    server.kill();
    for w in writers {
        w.await.unwrap();
    }
    assert!(
        cut_off.load(std::sync::atomic::Ordering::SeqCst),
        "the kill came after the burst, not during it"
    );
    let acknowledged = acknowledged.lock().unwrap().clone();

    server.restart();
    let ent = server.login("ent1-operator").await;
    let (status, stored) = ent.get("/api/v1/bookings?state=confirmed&limit=500").await;
    assert_eq!(status, 200, "{stored}");
    let stored: HashMap<i64, String> = stored
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["instruction_id"].as_i64().unwrap(), b["slot"]["starts_at"].as_str().unwrap().to_owned()))
        .collect();
    for (id, slot) in &acknowledged {
        assert_eq!(
            stored.get(id),
            Some(slot),
            "the booking of instruction {id} was acknowledged but is gone"
        );
    }
    // In flight when killed: at most one request per writer, kept whole or not at all.
    assert!(
        stored.len() <= acknowledged.len() + WRITERS,
        "{} stored, {} acknowledged",
        stored.len(),
        acknowledged.len()
    );
    let mut per_slot: HashMap<&str, i64> = HashMap::new();
    for slot in stored.values() {
        *per_slot.entry(slot.as_str()).or_default() += 1;
    }
    for s in &slots {
        let booked = per_slot.get(s.as_str()).copied().unwrap_or(0);
        assert!(booked <= 5, "slot {s} holds {booked} bookings, capacity 5");
        assert_eq!(usage(&ent, s).await, (booked, 5 - booked), "slot {s}: the count matches the bookings");
    }
    // Nothing half-written: an instruction is booked for its slot exactly when its booking is stored.
    for id in &instructions {
        let i = instruction(&ent, *id).await;
        match stored.get(id) {
            Some(slot) => {
                assert_eq!((i["state"].as_str(), i["due_at"].as_str()), (Some("booked"), Some(slot.as_str())))
            }
            None => assert_eq!((i["state"].as_str(), i["due_at"].as_str()), (Some("issued"), None), "{i}"),
        }
    }
}

#[tokio::test]
async fn a_held_request_is_confirmed_or_declined_with_alternatives_and_the_enterprise_can_take_one() {
    let server = TestServer::start();
    server.set_clock(MONDAY).await;
    set_calendar(&server, 1, false, &[]).await;
    let ent = server.login("ent1-operator").await;
    let supervisor = server.login("supervisor1").await;
    let ids = issue_instructions(&server, &ent, 2).await;
    let (a, b) = (ids[0], ids[1]);
    // Assigned before booking: the booking must not undo the assignment.
    let officer1 = user_id(&server, "officer1").await;
    let (status, body) = supervisor
        .post(&format!("/api/v1/instructions/{a}/assign"), json!({"officer_ids": [officer1]}))
        .await;
    assert_eq!(status, 200, "{body}");

    let (status, held) = book(&ent, a, &local(1, 9)).await;
    assert_eq!((status, held["state"].as_str()), (201, Some("requested")), "{held}");
    assert_eq!(held["slot"]["local_starts_at"], "2026-12-01T09:00:00+08:00");
    assert_eq!(held["slot"]["timezone"], "Asia/Shanghai");
    assert!(instruction(&ent, a).await["due_at"].is_null(), "not confirmed yet");
    let (status, full) = book(&ent, b, &local(1, 9)).await;
    assert_eq!((status, code(&full)), (409, "slot_full"), "a held request takes its place: {full}");

    let held_id = held["id"].as_i64().unwrap();
    let (status, confirmed) =
        supervisor.post(&format!("/api/v1/bookings/{held_id}/confirm"), json!({})).await;
    assert_eq!((status, confirmed["state"].as_str()), (200, Some("confirmed")), "{confirmed}");
    let officer = server.login("officer1").await;
    let seen = instruction(&officer, a).await;
    assert_eq!(seen["state"], "assigned", "an assigned instruction stays assigned");
    assert_eq!(seen["due_at"], local(1, 9), "the assigned officer sees the booked slot");

    let (status, asked) = book(&ent, b, &local(1, 10)).await;
    assert_eq!(status, 201, "{asked}");
    let asked_id = asked["id"].as_i64().unwrap();
    let proposed = [local(2, 9), local(2, 10)];
    let (status, declined) = supervisor
        .post(
            &format!("/api/v1/bookings/{asked_id}/decline"),
            json!({"feedback": "the cold store is being defrosted that morning", "alternatives": proposed}),
        )
        .await;
    assert_eq!((status, declined["state"].as_str()), (200, Some("declined")), "{declined}");
    assert_eq!(declined["feedback"], "the cold store is being defrosted that morning");
    let alternatives: Vec<&Value> =
        declined["alternatives"].as_array().unwrap().iter().map(|s| &s["starts_at"]).collect();
    assert_eq!(alternatives, [&json!(proposed[0]), &json!(proposed[1])]);
    assert_eq!(usage(&ent, &local(1, 10)).await, (0, 1), "a decline frees the place");

    let path = format!("/api/v1/bookings/{asked_id}/accept-alternative");
    let (status, body) = ent.post(&path, json!({"starts_at": local(2, 11)})).await;
    assert_eq!((status, code(&body)), (422, "not_proposed"), "{body}");
    let (status, taken) = ent.post(&path, json!({"starts_at": proposed[1]})).await;
    assert_eq!((status, taken["state"].as_str()), (200, Some("confirmed")), "{taken}");
    let i = instruction(&ent, b).await;
    assert_eq!((i["state"].as_str(), i["due_at"].as_str()), (Some("booked"), Some(proposed[1].as_str())));

    let (_, page) = ent.get("/api/v1/receipts?limit=500").await;
    let kinds: Vec<&str> = page["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["subject"] == "booking")
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "booking_requested",
            "booking_confirmed",
            "booking_requested",
            "booking_declined",
            "booking_confirmed"
        ]
    );
}

#[tokio::test]
async fn rescheduling_moves_the_place_and_keeps_capacity_right() {
    let server = TestServer::start();
    server.set_clock(MONDAY).await;
    set_calendar(&server, 2, true, &[]).await;
    let ent = server.login("ent1-operator").await;
    let ids = issue_instructions(&server, &ent, 3).await;
    let (s1, s2, s3) = (local(1, 9), local(1, 10), local(1, 11));
    let mut bookings = Vec::new();
    for (id, slot) in [(ids[0], &s1), (ids[1], &s1), (ids[2], &s2)] {
        let (status, b) = book(&ent, id, slot).await;
        assert_eq!(status, 201, "{b}");
        bookings.push(b["id"].as_i64().unwrap());
    }
    let move_to = |booking: i64, slot: &str| {
        let ent = ent.clone();
        let slot = slot.to_string();
        async move {
            ent.post(&format!("/api/v1/bookings/{booking}/reschedule"), json!({"starts_at": slot})).await
        }
    };

    let (status, moved) = move_to(bookings[0], &s2).await;
    assert_eq!((status, moved["slot"]["starts_at"].as_str()), (200, Some(s2.as_str())), "{moved}");
    let (status, full) = move_to(bookings[1], &s2).await;
    assert_eq!((status, code(&full)), (409, "slot_full"), "{full}");
    let (_, stayed) = ent.get(&format!("/api/v1/bookings/{}", bookings[1])).await;
    assert_eq!(stayed["slot"]["starts_at"], s1, "a refused move leaves the booking where it was");
    assert_eq!([usage(&ent, &s1).await, usage(&ent, &s2).await], [(1, 1), (2, 0)]);

    assert_eq!(move_to(bookings[0], &s3).await.0, 200);
    assert_eq!(move_to(bookings[1], &s2).await.0, 200);
    assert_eq!(
        [usage(&ent, &s1).await, usage(&ent, &s2).await, usage(&ent, &s3).await],
        [(0, 2), (2, 0), (1, 1)],
        "every place follows its booking"
    );
    assert_eq!(instruction(&ent, ids[0]).await["due_at"], s3, "the due time follows the booking");
    let (status, same) = move_to(bookings[0], &s3).await;
    assert_eq!((status, code(&same)), (422, "same_slot"));
}

#[tokio::test]
async fn cancelling_after_the_cutoff_or_missing_the_slot_is_a_no_show_and_three_block_new_bookings() {
    let server = TestServer::start_with(&[booking::LONG_DEADLINE]);
    server.set_clock(MONDAY).await;
    set_calendar(&server, 5, true, &[]).await;
    let ent = server.login("ent1-operator").await;
    let ids = issue_instructions(&server, &ent, 5).await;
    let mut booked = Vec::new();
    for (id, slot) in
        [(ids[0], local(2, 9)), (ids[1], local(2, 10)), (ids[2], local(2, 11)), (ids[3], local(3, 9))]
    {
        let (status, b) = book(&ent, id, &slot).await;
        assert_eq!(status, 201, "{b}");
        booked.push(b["id"].as_i64().unwrap());
    }
    let path = |b: i64, action: &str| format!("/api/v1/bookings/{b}/{action}");

    // Tuesday 08:00: every slot is more than 24 hours away.
    server.set_clock(MONDAY + DAY).await;
    let ent = server.login("ent1-operator").await;
    let (status, cancelled) = ent.post(&path(booked[2], "cancel"), json!({})).await;
    assert_eq!((status, cancelled["state"].as_str()), (200, Some("cancelled")), "{cancelled}");
    assert_eq!(instruction(&ent, ids[2]).await["state"], "issued", "the instruction can be booked again");

    // Tuesday 10:00: Wednesday 09:00 is past its cut-off (Tuesday 09:00).
    server.set_clock(MONDAY + DAY + 2 * HOUR).await;
    let ent = server.login("ent1-operator").await;
    let (status, body) = ent.post(&path(booked[0], "reschedule"), json!({"starts_at": local(3, 10)})).await;
    assert_eq!((status, code(&body)), (409, "past_cutoff"), "{body}");
    let (status, late) = ent.post(&path(booked[0], "cancel"), json!({"reason": "truck broke down"})).await;
    assert_eq!(
        (status, late["state"].as_str()),
        (200, Some("no_show")),
        "a late cancel is a no-show: {late}"
    );
    assert_eq!(usage(&ent, &local(2, 9)).await, (0, 5), "its place is freed for others");
    let i = instruction(&ent, ids[0]).await;
    assert_eq!((i["state"].as_str(), i["due_at"].as_str()), (Some("issued"), None));

    // Wednesday 10:30: nobody came to the 10:00 slot; Thursday's has not begun.
    server.set_clock(MONDAY + 2 * DAY + 2 * HOUR + 1800).await;
    let supervisor = server.login("supervisor1").await;
    let (status, body) = supervisor.post(&path(booked[3], "no-show"), json!({})).await;
    assert_eq!((status, code(&body)), (409, "slot_not_begun"), "{body}");
    let (status, missed) = supervisor.post(&path(booked[1], "no-show"), json!({})).await;
    assert_eq!((status, missed["state"].as_str()), (200, Some("no_show")), "{missed}");

    // A third no-show: book again, miss it.
    let ent = server.login("ent1-operator").await;
    let (status, again) = book(&ent, ids[2], &local(4, 9)).await;
    assert_eq!(status, 201, "two no-shows do not block yet: {again}");
    server.set_clock(MONDAY + 4 * DAY + 2 * HOUR).await;
    let supervisor = server.login("supervisor1").await;
    assert_eq!(supervisor.post(&path(again["id"].as_i64().unwrap(), "no-show"), json!({})).await.0, 200);
    let ent = server.login("ent1-operator").await;
    let (status, body) = book(&ent, ids[4], &local(7, 9)).await;
    assert_eq!((status, code(&body)), (409, "too_many_no_shows"), "{body}");
    assert_eq!(body["details"]["no_shows"], 3);

    // 91 days after the last no-show the window has passed (Monday 2027-03-08).
    server.set_clock(MONDAY + 98 * DAY).await;
    let ent = server.login("ent1-operator").await;
    let (status, body) = book(&ent, ids[4], &local(99, 9)).await;
    assert_eq!(status, 201, "old no-shows no longer count: {body}");
}

#[tokio::test]
async fn customs_reschedules_and_cancels_any_time_but_only_with_a_recorded_reason() {
    let server = TestServer::start();
    server.set_clock(MONDAY).await;
    set_calendar(&server, 5, true, &[]).await;
    let ent = server.login("ent1-operator").await;
    let ids = issue_instructions(&server, &ent, 1).await;
    let (_, b) = book(&ent, ids[0], &local(1, 9)).await;
    let id = b["id"].as_i64().unwrap();
    let supervisor = server.login("supervisor1").await;
    let other_district = server.login("supervisor2").await;

    let path = format!("/api/v1/bookings/{id}/reschedule");
    let (status, body) = supervisor.post(&path, json!({"starts_at": local(1, 14)})).await;
    assert_eq!((status, code(&body)), (422, "missing_reason"), "{body}");
    let (status, body) =
        other_district.post(&path, json!({"starts_at": local(1, 14), "reason": "not mine"})).await;
    assert_eq!(status, 404, "another district's supervisor does not see it: {body}");
    let (status, moved) = supervisor
        .post(&path, json!({"starts_at": local(1, 14), "reason": "officers needed at the port"}))
        .await;
    assert_eq!((status, moved["state"].as_str()), (200, Some("confirmed")), "{moved}");
    assert_eq!(moved["feedback"], "officers needed at the port");
    assert_eq!(instruction(&ent, ids[0]).await["due_at"], local(1, 14));

    // Tuesday 13:30, after the enterprise's cut-off: customs may still cancel, with a reason.
    server.set_clock(MONDAY + DAY + 5 * HOUR + 1800).await;
    let supervisor = server.login("supervisor1").await;
    let cancel = format!("/api/v1/bookings/{id}/cancel");
    let (status, body) = supervisor.post(&cancel, json!({})).await;
    assert_eq!((status, code(&body)), (422, "missing_reason"), "{body}");
    let (status, cancelled) =
        supervisor.post(&cancel, json!({"reason": "site closed by typhoon warning"})).await;
    assert_eq!((status, cancelled["state"].as_str()), (200, Some("cancelled")), "not a no-show: {cancelled}");

    let ent = server.login("ent1-operator").await;
    let (_, page) = ent.get("/api/v1/receipts?limit=500").await;
    let last = page["receipts"].as_array().unwrap().iter().rev().find(|r| r["subject"] == "booking").unwrap();
    assert_eq!(
        (last["kind"].as_str(), last["opinion"].as_str()),
        (Some("booking_cancelled"), Some("site closed by typhoon warning"))
    );
    let admin = server.login("admin").await;
    let (status, log) = admin.get("/api/v1/admin/audit?limit=1000").await;
    assert_eq!(status, 200, "{log}");
    let entries = log.as_array().expect("audit entries");
    let cancel = entries.iter().find(|e| e["action"] == "booking.cancelled").expect("the cancel is audited");
    assert_eq!(cancel["subject"], format!("booking:{id}"));
    assert_eq!(cancel["details"]["opinion"], "site closed by typhoon warning");
}

#[tokio::test]
async fn only_the_enterprise_and_a_delegate_holding_the_bookings_scope_book_or_see_its_instructions() {
    let server = TestServer::start();
    server.set_clock(MONDAY).await;
    set_calendar(&server, 5, true, &[]).await;
    let ent = server.login("ent1-operator").await;
    let ids = issue_instructions(&server, &ent, 3).await;
    let (_, own) = book(&ent, ids[0], &local(1, 9)).await;
    let own_id = own["id"].as_i64().unwrap();

    let other = server.login("ent2-operator").await;
    let (status, body) = book(&other, ids[1], &local(1, 9)).await;
    assert_eq!((status, code(&body)), (404, "not_found"), "another enterprise cannot book: {body}");
    assert_eq!(other.get(&format!("/api/v1/bookings/{own_id}")).await.0, 404);
    assert_eq!(other.get("/api/v1/bookings").await.1, json!([]));
    assert_eq!(other.post(&format!("/api/v1/bookings/{own_id}/cancel"), json!({})).await.0, 404);

    let legal = server.login("ent1-legal").await;
    let until = rfc3339(MONDAY + 30 * DAY);
    let (status, d) = legal
        .post(
            "/api/v1/delegations",
            json!({"agent_customs_code": "3101980003", "scopes": ["applications"], "valid_until": until}),
        )
        .await;
    assert_eq!(status, 201, "{d}");
    let agent = server.login("agent-legal").await;
    let (status, body) = book(&agent, ids[1], &local(1, 9)).await;
    assert_eq!(status, 404, "the applications scope does not cover bookings: {body}");
    assert_eq!(agent.get(&format!("/api/v1/bookings/{own_id}")).await.0, 404);

    let (status, _) = legal.post(&format!("/api/v1/delegations/{}/revoke", d["id"]), json!({})).await;
    assert_eq!(status, 200);
    let (status, d) = legal
        .post(
            "/api/v1/delegations",
            json!({"agent_customs_code": "3101980003", "scopes": ["bookings"], "valid_until": until}),
        )
        .await;
    assert_eq!(status, 201, "{d}");
    let (status, body) = book(&agent, ids[1], &local(1, 9)).await;
    assert_eq!(status, 201, "the delegate books: {body}");
    assert_eq!(
        agent.get(&format!("/api/v1/bookings/{own_id}")).await.0,
        200,
        "and sees the principal's bookings"
    );
    let agent_operator = server.login("agent-operator").await;
    let (status, _) = book(&agent_operator, ids[2], &local(1, 9)).await;
    assert_eq!(status, 404, "the agent's operator holds no grant");
}

#[tokio::test]
async fn bad_slot_requests_get_a_4xx_that_says_what_is_wrong() {
    let server = TestServer::start_with(&[booking::LONG_DEADLINE]);
    server.set_clock(MONDAY).await;
    set_calendar(&server, 5, true, &["2026-12-02"]).await;
    let ent = server.login("ent1-operator").await;
    let ids = issue_instructions(&server, &ent, 1).await;
    let id = ids[0];

    let cases: &[(&str, Value, u16, &str)] = &[
        ("past date", json!({"instruction_id": id, "starts_at": local(-3, 9)}), 422, "slot_in_past"),
        ("under the lead time", json!({"instruction_id": id, "starts_at": local(0, 10)}), 422, "too_soon"),
        ("closed day", json!({"instruction_id": id, "starts_at": local(2, 9)}), 422, "closed_day"),
        (
            "off the slot grid",
            json!({"instruction_id": id, "starts_at": rfc3339(MONDAY + DAY + HOUR + 1800)}),
            422,
            "not_on_slot_boundary",
        ),
        (
            "after hours",
            json!({"instruction_id": id, "starts_at": local(1, 18)}),
            422,
            "outside_working_hours",
        ),
        ("weekend", json!({"instruction_id": id, "starts_at": local(5, 9)}), 422, "outside_working_hours"),
        (
            "unknown site",
            json!({"instruction_id": id, "starts_at": local(1, 9), "site_code": "9999"}),
            422,
            "unknown_site",
        ),
        (
            "not a site",
            json!({"instruction_id": id, "starts_at": local(1, 9), "site_code": "2200"}),
            422,
            "not_a_site",
        ),
        (
            "another site",
            json!({"instruction_id": id, "starts_at": local(1, 9), "site_code": "2202"}),
            422,
            "wrong_site",
        ),
        ("not a time", json!({"instruction_id": id, "starts_at": "next tuesday"}), 422, "invalid_time"),
        (
            "unknown instruction",
            json!({"instruction_id": 999_999, "starts_at": local(1, 9)}),
            404,
            "not_found",
        ),
        (
            "unknown field",
            json!({"instruction_id": id, "starts_at": local(1, 9), "slot": 1}),
            422,
            "unknown_field",
        ),
    ];
    for (name, body, status, expected) in cases {
        let (got, answer) = ent.post("/api/v1/bookings", body.clone()).await;
        assert_eq!((got, code(&answer)), (*status, *expected), "{name}: {answer}");
        assert!(answer["message"].as_str().is_some_and(|m| m.len() > 10), "{name}: {answer}");
    }
    let (_, off_grid) = book(&ent, id, &rfc3339(MONDAY + DAY + HOUR + 1800)).await;
    assert_eq!(off_grid["details"]["nearest"].as_array().map(Vec::len), Some(2), "{off_grid}");

    let (status, body) = ent.get("/api/v1/sites/9999/availability?from=2026-12-01&to=2026-12-02").await;
    assert_eq!((status, code(&body)), (404, "unknown_site"), "{body}");
    let (status, body) =
        ent.get(&format!("/api/v1/sites/{SITE}/availability?from=2026-12-05&to=2026-12-01")).await;
    assert_eq!((status, code(&body)), (422, "invalid_range"), "{body}");
    let (status, body) =
        ent.get(&format!("/api/v1/sites/{SITE}/availability?from=2026-12-01&to=2027-06-01")).await;
    assert_eq!((status, code(&body)), (422, "range_too_long"), "{body}");
    let (status, body) =
        ent.get(&format!("/api/v1/sites/{SITE}/availability?from=1.12.2026&to=2026-12-02")).await;
    assert_eq!((status, code(&body)), (422, "invalid_date"), "{body}");

    let supervisor = server.login("supervisor1").await;
    let bad_hours = json!({"slot_minutes": 60, "capacity": 5, "hours": {"mon": ["09:00-25:00"]}});
    let (status, body) = supervisor.put(&format!("/api/v1/sites/{SITE}/calendar"), bad_hours).await;
    assert_eq!((status, code(&body)), (422, "invalid_hours"), "{body}");
    let (status, body) = supervisor
        .put("/api/v1/sites/5301/calendar", json!({"slot_minutes": 60, "capacity": 5, "hours": {}}))
        .await;
    assert_eq!(status, 403, "Shenzhen's site is not under Shanghai: {body}");
    assert_eq!(ent.put(&format!("/api/v1/sites/{SITE}/calendar"), json!({})).await.0, 403);
}

#[tokio::test]
async fn the_demo_sites_have_calendars_with_holidays() {
    let server = TestServer::start();
    let ent = server.login("ent1-operator").await;
    for site in ["2201", "2202", "5301", "5302"] {
        let (status, cal) = ent.get(&format!("/api/v1/sites/{site}/calendar")).await;
        assert_eq!(status, 200, "{site}: {cal}");
        assert_eq!(cal["timezone"], "Asia/Shanghai");
        assert!(cal["closed_days"].as_array().unwrap().iter().any(|d| d["date"] == "2027-01-01"), "{cal}");
    }
}

#[tokio::test]
async fn cancelling_an_instruction_cancels_its_booking_and_frees_the_place() {
    let server = TestServer::start();
    server.set_clock(MONDAY).await;
    set_calendar(&server, 1, true, &[]).await;
    let ent = server.login("ent1-operator").await;
    let ids = issue_instructions(&server, &ent, 2).await;
    let (_, b) = book(&ent, ids[0], &local(1, 9)).await;
    assert_eq!(usage(&ent, &local(1, 9)).await, (1, 0));

    let supervisor = server.login("supervisor1").await;
    let (status, body) = supervisor
        .post(&format!("/api/v1/instructions/{}/cancel", ids[0]), json!({"reason": "goods withdrawn"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, after) = ent.get(&format!("/api/v1/bookings/{}", b["id"])).await;
    assert_eq!(after["state"], "cancelled");
    assert_eq!(usage(&ent, &local(1, 9)).await, (0, 1));
    assert_eq!(book(&ent, ids[1], &local(1, 9)).await.0, 201, "the freed place can be booked");
}

#[tokio::test]
async fn a_slot_after_the_deadline_is_refused_until_customs_extends_the_deadline_with_a_reason() {
    let server = TestServer::start();
    server.set_clock(MONDAY).await;
    set_calendar(&server, 4, true, &[]).await;
    let ent = server.login("ent1-operator").await;
    let supervisor = server.login("supervisor1").await;
    let id = issue_instructions(&server, &ent, 1).await[0];
    let deadline = instruction(&ent, id).await["deadline"].as_str().unwrap().to_string();
    assert_eq!(deadline, rfc3339(MONDAY + 3 * DAY), "72 hours after issue");

    // A week later is past the deadline: refused, with the deadline named.
    let (status, late) = book(&ent, id, &local(7, 9)).await;
    assert_eq!((status, code(&late)), (422, "after_deadline"), "{late}");
    assert_eq!(late["details"]["deadline"], deadline.as_str());

    // Only customs extends, only later, and only with a reason.
    let extend = |to: i64, reason: &str| json!({"deadline": rfc3339(to), "reason": reason});
    let path = format!("/api/v1/instructions/{id}/deadline");
    assert_eq!(ent.post(&path, extend(MONDAY + 10 * DAY, "please")).await.0, 403);
    let (status, body) = supervisor.post(&path, extend(MONDAY + DAY, "earlier")).await;
    assert_eq!((status, code(&body)), (422, "not_an_extension"), "{body}");
    let (status, body) = supervisor.post(&path, extend(MONDAY + 10 * DAY, "  ")).await;
    assert_eq!((status, code(&body)), (422, "missing_reason"), "{body}");
    let (status, body) =
        supervisor.post(&path, extend(MONDAY + 10 * DAY, "cold store closed for repairs")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deadline"], rfc3339(MONDAY + 10 * DAY));
    let (_, page) = ent.get("/api/v1/receipts").await;
    let receipt = page["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "deadline_extended")
        .unwrap_or_else(|| panic!("no deadline receipt: {page}"))
        .clone();
    assert_eq!(receipt["opinion"], "cold store closed for repairs");

    // Now the slot is taken, and an assigned officer's record shows slot and deadline.
    let (status, booked) = book(&ent, id, &local(7, 9)).await;
    assert_eq!((status, booked["state"].as_str()), (201, Some("confirmed")), "{booked}");
    let officer1 = user_id(&server, "officer1").await;
    let (status, body) = supervisor
        .post(&format!("/api/v1/instructions/{id}/assign"), json!({"officer_ids": [officer1]}))
        .await;
    assert_eq!(status, 200, "{body}");
    let record = fieldcheck_tests::field::record(&supervisor, id).await;
    let part = &record["record"]["instruction"];
    assert_eq!(part["slot"]["starts_at"].as_i64(), Some((MONDAY + 7 * DAY + HOUR) * 1000), "{record}");
    assert_eq!(part["deadline"].as_i64(), Some((MONDAY + 10 * DAY) * 1000), "{record}");
}

#[tokio::test]
async fn lists_carry_summaries_and_out_of_range_paging_is_refused_with_the_allowed_range() {
    let server = TestServer::start();
    let ent = server.login("ent1-operator").await;
    let id = issue_instructions(&server, &ent, 1).await[0];
    let (status, list) = ent.get("/api/v1/instructions").await;
    assert_eq!(status, 200);
    let item = &list.as_array().unwrap()[0];
    assert!(item.get("checklist").is_none(), "no checklist in lists: {item}");
    let full = instruction(&ent, id).await;
    assert_eq!(item["checks"].as_u64(), Some(full["checklist"].as_array().unwrap().len() as u64));

    for (path, field, max) in [
        ("/api/v1/instructions?limit=1000", "limit", 500),
        ("/api/v1/instructions?limit=0", "limit", 500),
        ("/api/v1/receipts?limit=501", "limit", 500),
        ("/api/v1/receipts?wait=61", "wait", 60),
        ("/api/v1/bookings?limit=9999", "limit", 500),
    ] {
        let (status, body) = ent.get(path).await;
        assert_eq!((status, code(&body)), (422, "out_of_range"), "{path}: {body}");
        assert_eq!(body["details"]["field"], field, "{path}");
        assert_eq!(body["details"]["max"], max, "{path}");
    }
}

#[tokio::test]
async fn a_full_slot_offers_only_alternatives_by_the_instructions_deadline() {
    // Issued on Monday 08:00 with a 52-hour deadline: Wednesday 12:00 is the last slot it may take.
    let server = TestServer::start_with(&[("FIELDCHECK__WORKFLOW__INSPECTION_DEADLINE_HOURS", "52")]);
    server.set_clock(MONDAY).await;
    set_calendar(&server, 1, true, &[]).await;
    let ent = server.login("ent1-operator").await;
    let ids = issue_instructions(&server, &ent, 4).await;
    for (id, hour) in ids.iter().zip([9, 10, 11]) {
        let (status, b) = book(&ent, *id, &local(2, hour)).await;
        assert_eq!(status, 201, "{b}");
    }
    // The nearest free slots to Wednesday 11:00 are 12:00, then 13:00 and 14:00 — after the deadline.
    let (status, full) = book(&ent, ids[3], &local(2, 11)).await;
    assert_eq!((status, code(&full)), (409, "slot_full"), "{full}");
    let offered: Vec<&str> = full["details"]["alternatives"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["starts_at"].as_str().unwrap())
        .collect();
    assert_eq!(offered, [local(1, 15), local(1, 16), local(2, 12)], "{full}");
}
