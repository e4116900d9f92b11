//! Supervisor monitoring end to end (issue 13): figures against a hand-computed fixture, overdue work
//! under the manual clock, list filters, officers, CSV, scoping, and the live event stream.

use std::time::{Duration, Instant};

use fieldcheck_tests::{
    Api, TestServer,
    field::{Handheld, dispatched, items},
    monitoring::{EventStream, FixtureInstruction, SseEvent, insert_instructions},
    rfc3339,
};
use serde_json::{Value, json};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// 2026-12-01T00:00:00Z in ms: the fixture's "now".
const T0: i64 = 1_796_083_200_000;

fn fixture(
    site: &'static str,
    state: &'static str,
    created_ago: i64,
    deadline_after: i64,
    since_after: i64,
) -> FixtureInstruction {
    let created_at = T0 - created_ago;
    FixtureInstruction {
        site,
        state,
        created_at,
        deadline: created_at + deadline_after,
        due_at: None,
        state_since: created_at + since_after,
        verdict: None,
        officers: &[],
    }
}

/// The fixture (instructions A–L) and, by hand, what supervisor1 (Shanghai 2200: sites 2201, 2202)
/// must see at T0 over the period [T0 − 10 days, T0 + 1 day).
fn the_fixture() -> Vec<FixtureInstruction> {
    let approved = |site, ago, took, verdict| FixtureInstruction {
        verdict: Some(verdict),
        ..fixture(site, "approved", ago, 72 * HOUR, took)
    };
    vec![
        // A, B, C at 2201: approved after 10 h, 80 h (late, non-conforming), 20 h.
        FixtureInstruction { officers: &["officer1"], ..approved("2201", 5 * DAY, 10 * HOUR, "conforming") },
        approved("2201", 5 * DAY, 80 * HOUR, "non_conforming"),
        approved("2201", 4 * DAY, 20 * HOUR, "conforming"),
        // D at 2202: approved after 30 h.
        approved("2202", 3 * DAY, 30 * HOUR, "conforming"),
        // E at 2201: in progress, deadline a day ago → overdue (deadline).
        FixtureInstruction {
            officers: &["officer1"],
            ..fixture("2201", "in_progress", 4 * DAY, 72 * HOUR, HOUR)
        },
        // F at 2202: submitted 25 h ago, deadline tomorrow → overdue (waiting for approval > 24 h).
        FixtureInstruction {
            officers: &["officer1"],
            ..fixture("2202", "submitted", 2 * DAY, 72 * HOUR, 23 * HOUR)
        },
        // G at 2202: assigned, its booked slot began 25 h ago with no result → overdue (slot).
        FixtureInstruction {
            due_at: Some(T0 - 25 * HOUR),
            officers: &["officer2"],
            ..fixture("2202", "assigned", 2 * DAY, 72 * HOUR, HOUR)
        },
        // H at 2201 force-released, I at 2202 cancelled, J at 2201 issued an hour ago.
        fixture("2201", "force_released", 6 * DAY, 72 * HOUR, DAY),
        fixture("2202", "cancelled", 6 * DAY, 72 * HOUR, DAY),
        fixture("2201", "issued", HOUR, 72 * HOUR, 0),
        // K: approved, but created before the period. L: Shenzhen's, not supervisor1's.
        approved("2201", 20 * DAY, 10 * HOUR, "conforming"),
        approved("5301", 2 * DAY, 5 * HOUR, "conforming"),
    ]
}

async fn server_with_fixture() -> (TestServer, Vec<i64>) {
    let mut server = TestServer::start();
    server.stop();
    let ids = insert_instructions(server.data_dir(), &the_fixture());
    server.restart();
    server.set_clock(T0 / 1000).await;
    (server, ids)
}

fn period() -> String {
    format!("from={}&to={}", rfc3339((T0 - 10 * DAY) / 1000), rfc3339((T0 + DAY) / 1000))
}

fn site<'a>(figures: &'a Value, code: &str) -> &'a Value {
    figures["sites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["code"] == code)
        .unwrap_or_else(|| panic!("{figures}"))
}

fn close(v: &Value, expected: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - expected).abs() < 1e-9)
}

#[tokio::test]
async fn the_figures_match_a_hand_computed_fixture() {
    let (server, _) = server_with_fixture().await;
    let supervisor = server.login("supervisor1").await;
    let (status, f) = supervisor.get(&format!("/api/v1/monitoring/figures?{}", period())).await;
    assert_eq!(status, 200, "{f}");

    let t = &f["total"];
    assert_eq!(t["instructions"], 10, "{t}");
    assert_eq!(
        t["by_state"],
        json!({"approved": 4, "in_progress": 1, "submitted": 1, "assigned": 1, "force_released": 1,
               "cancelled": 1, "issued": 1})
    );
    assert_eq!((t["overdue"].as_i64(), t["approved"].as_i64()), (Some(3), Some(4)));
    assert!(close(&t["completion_rate"], 4.0 / 9.0), "{t}");
    assert!(close(&t["on_time_rate"], 0.75), "{t}");
    // Durations 10, 20, 30, 80 h: nearest-rank median 20 h, p90 80 h.
    assert_eq!(t["issue_to_approved_median_secs"], 20 * 3600);
    assert_eq!(t["issue_to_approved_p90_secs"], 80 * 3600);
    assert_eq!(t["non_conforming"], 1);
    assert!(close(&t["non_conformance_rate"], 0.25), "{t}");
    assert_eq!(t["forced_releases"], 1);

    let yangshan = site(&f, "2201");
    assert_eq!((yangshan["instructions"].as_i64(), yangshan["overdue"].as_i64()), (Some(6), Some(1)));
    assert!(
        close(&yangshan["completion_rate"], 0.5) && close(&yangshan["on_time_rate"], 2.0 / 3.0),
        "{yangshan}"
    );
    assert_eq!(yangshan["issue_to_approved_median_secs"], 20 * 3600);
    assert_eq!(yangshan["issue_to_approved_p90_secs"], 80 * 3600);
    let waigaoqiao = site(&f, "2202");
    assert_eq!((waigaoqiao["instructions"].as_i64(), waigaoqiao["overdue"].as_i64()), (Some(4), Some(2)));
    assert!(close(&waigaoqiao["completion_rate"], 1.0 / 3.0), "{waigaoqiao}");
    assert_eq!(waigaoqiao["issue_to_approved_median_secs"], 30 * 3600);
    assert!(waigaoqiao["non_conformance_rate"].as_f64() == Some(0.0), "{waigaoqiao}");
    let units = f["units"].as_array().unwrap();
    assert_eq!(units.len(), 1, "only Shanghai's district: {units:?}");
    assert_eq!((units[0]["code"].as_str(), units[0]["instructions"].as_i64()), (Some("2200"), Some(10)));

    let officer = |name: &str| {
        f["officers"].as_array().unwrap().iter().find(|o| o["username"] == name).unwrap().clone()
    };
    let one = officer("officer1");
    assert_eq!(
        (
            one["assigned"].as_i64(),
            one["in_progress"].as_i64(),
            one["submitted"].as_i64(),
            one["done"].as_i64(),
            one["overdue"].as_i64()
        ),
        (Some(0), Some(1), Some(1), Some(1), Some(2)),
        "{one}"
    );
    let two = officer("officer2");
    assert_eq!((two["assigned"].as_i64(), two["overdue"].as_i64()), (Some(1), Some(1)), "{two}");
    assert_eq!(one["handhelds"][0]["device_id"], "demo-handheld-officer1");
    assert!(
        f["officers"].as_array().unwrap().iter().all(|o| o["username"] != "officer3"),
        "Shenzhen's officer"
    );

    // Demo handhelds never synced: all of Shanghai's are silent, none of Shenzhen's is listed.
    let silent: Vec<&str> =
        f["silent_handhelds"].as_array().unwrap().iter().map(|h| h["device_id"].as_str().unwrap()).collect();
    assert_eq!(silent, ["demo-handheld-officer1", "demo-handheld-officer2"]);

    // Shenzhen's supervisor sees only L.
    let (_, other) =
        server.login("supervisor2").await.get(&format!("/api/v1/monitoring/figures?{}", period())).await;
    assert_eq!(other["total"]["instructions"], 1, "{other}");
}

#[tokio::test]
async fn the_figures_and_the_instruction_list_come_as_csv_when_asked() {
    let (server, _) = server_with_fixture().await;
    let supervisor = server.login("supervisor1").await;
    let accept = [("accept", "text/csv".to_string())];
    let (status, headers, body) = supervisor
        .bytes(reqwest::Method::GET, &format!("/api/v1/monitoring/figures?{}", period()), &accept, None)
        .await;
    assert_eq!(status, 200);
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    let text = String::from_utf8(body).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("level,code,name,instructions,issued,booked"), "{text}");
    assert!(lines[1].starts_with("subtree,,,10,1,0,1,1,1,4,1,1,3,4,"), "{text}");
    assert_eq!(lines.len(), 1 + 1 + 1 + 2, "subtree, one unit, two sites: {text}");

    let (status, _, body) = supervisor
        .bytes(reqwest::Method::GET, "/api/v1/instructions?overdue=true&site=2202", &accept, None)
        .await;
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    assert_eq!(text.lines().count(), 1 + 2, "F and G: {text}");
}

fn ids(list: &Value) -> Vec<i64> {
    let mut v: Vec<i64> = list
        .as_array()
        .unwrap_or_else(|| panic!("{list}"))
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    v.sort_unstable();
    v
}

#[tokio::test]
async fn the_instruction_list_filters_by_officer_site_unit_state_period_and_overdue_and_pages() {
    let (server, f) = server_with_fixture().await;
    let s = server.login("supervisor1").await;
    let get = |q: String| {
        let s = s.clone();
        async move {
            let (status, body) = s.get(&format!("/api/v1/instructions?{q}")).await;
            assert_eq!(status, 200, "{q}: {body}");
            ids(&body)
        }
    };
    let (a, b, c, d, e, ff, g, h, i, j, k) =
        (f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10]);
    assert_eq!(get("officer=officer1".into()).await, [a, e, ff]);
    let officer2 = fieldcheck_tests::field::user_id(&server, "officer2").await;
    assert_eq!(get(format!("officer={officer2}")).await, [g]);
    assert_eq!(get("site=2202".into()).await, [d, ff, g, i]);
    assert_eq!(get("overdue=true".into()).await, [e, ff, g]);
    assert_eq!(get("overdue=true&site=2201".into()).await, [e]);
    assert_eq!(get("state=approved".into()).await, [a, b, c, d, k]);
    assert_eq!(get(format!("state=approved&{}", period())).await, [a, b, c, d]);
    assert_eq!(get("unit=2200&state=force_released".into()).await, [h]);
    assert!(get("unit=5300".into()).await.is_empty(), "another subtree's unit filters to nothing");
    assert_eq!(get("overdue=false&state=issued".into()).await, [j]);
    let first = get("limit=4&offset=0".into()).await;
    let second = get("limit=4&offset=4".into()).await;
    assert_eq!((first.len(), second.len()), (4, 4));
    assert!(first.iter().all(|x| !second.contains(x)), "pages do not overlap");

    for (query, code) in [
        ("site=9999", "unknown_unit"),
        ("officer=nobody", "unknown_officer"),
        ("from=yesterday", "invalid_time"),
    ] {
        let (status, body) = s.get(&format!("/api/v1/instructions?{query}")).await;
        assert_eq!((status, body["code"].as_str()), (422, Some(code)), "{query}: {body}");
    }
    let (status, body) = s.get("/api/v1/instructions?overdue=perhaps").await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn only_supervisors_and_administrators_see_monitoring_and_each_only_their_subtree() {
    let server = TestServer::start();
    for user in ["officer1", "ent1-operator", "reviewer1"] {
        let api = server.login(user).await;
        for path in
            ["/api/v1/monitoring/figures", "/api/v1/monitoring/overdue", "/api/v1/officers", "/api/v1/events"]
        {
            let (status, body) = api.get(path).await;
            assert_eq!(status, 403, "{user} {path}: {body}");
        }
        let (status, _) = api.post("/api/v1/events/token", json!({})).await;
        assert_eq!(status, 403, "{user} stream token");
    }
    let (status, body) = server.api().get("/api/v1/monitoring/figures").await;
    assert_eq!((status, body["code"].as_str()), (401, Some("missing_token")));

    let (_, two) = server.login("supervisor2").await.get("/api/v1/officers").await;
    let names: Vec<&str> = two.as_array().unwrap().iter().map(|o| o["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["officer3"]);
    let (_, all) = server.login("admin").await.get("/api/v1/officers").await;
    assert_eq!(all.as_array().unwrap().len(), 3, "{all}");
}

#[tokio::test]
async fn a_supervisor_lists_the_officers_to_assign_and_assigns_them_by_username() {
    let server = TestServer::start();
    let supervisor = server.login("supervisor1").await;
    let (status, officers) = supervisor.get("/api/v1/officers").await;
    assert_eq!(status, 200, "{officers}");
    let names: Vec<&str> =
        officers.as_array().unwrap().iter().map(|o| o["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["officer1", "officer2"]);
    assert!(officers.as_array().unwrap().iter().all(|o| o["status"] == "active"));

    let instruction = dispatched(&server, &["officer1"]).await;
    let path = format!("/api/v1/instructions/{instruction}/assign");
    let (status, body) = supervisor.post(&path, json!({"officers": ["officer1", "officer2"]})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["officers"].as_array().unwrap().len(), 2);
    for (req, code) in [
        (json!({"officers": ["officer3"]}), "not_an_officer_here"),
        (json!({"officers": ["nobody"]}), "not_an_officer_here"),
        (json!({"officers": ["reviewer1"]}), "not_an_officer_here"),
        (json!({"officers": []}), "officer_count"),
    ] {
        let (status, body) = supervisor.post(&path, req.clone()).await;
        assert_eq!((status, body["code"].as_str()), (422, Some(code)), "{req}: {body}");
    }
    let (_, after) = supervisor.get("/api/v1/officers").await;
    let two = after.as_array().unwrap().iter().find(|o| o["username"] == "officer2").unwrap();
    assert_eq!(two["assigned"], 1, "{two}");
}

#[tokio::test]
async fn an_instruction_becomes_overdue_when_the_clock_passes_its_deadline_and_leaves_the_list_when_approved()
{
    let server = TestServer::start();
    let start = fieldcheck_tests::now_secs();
    server.set_clock(start).await;
    let instruction = dispatched(&server, &["officer1"]).await;
    let id = instruction.to_string();
    let hand = Handheld::new(&server, "officer1");
    hand.sync();
    for item in items(&server, instruction).await {
        hand.ok(&["check", &id, &item, "pass"]);
    }
    hand.ok(&["verdict", &id, "conforming"]);
    hand.ok(&["complete", &id]);
    hand.sync();

    let overdue = |api: Api| async move {
        let (status, list) = api.get("/api/v1/monitoring/overdue").await;
        assert_eq!(status, 200, "{list}");
        list.as_array().unwrap().clone()
    };
    let supervisor = server.login("supervisor1").await;
    assert!(overdue(supervisor.clone()).await.is_empty(), "nothing is late yet");
    assert!(ids(&supervisor.get("/api/v1/instructions?overdue=true").await.1).is_empty());

    // 73 hours on: the 72 h deadline has passed and the result has waited more than 24 h.
    server.set_clock(start + 73 * 3600).await;
    let supervisor = server.login("supervisor1").await;
    let late = overdue(supervisor.clone()).await;
    assert_eq!(late.len(), 1, "{late:?}");
    assert_eq!(late[0]["instruction_id"], instruction);
    assert_eq!(late[0]["reasons"], json!(["deadline_passed", "approval_waiting"]));
    assert_eq!(late[0]["officers"], json!(["officer1"]));
    assert_eq!(ids(&supervisor.get("/api/v1/instructions?overdue=true").await.1), [instruction]);
    let (_, f) = supervisor.get("/api/v1/monitoring/figures").await;
    assert_eq!(f["total"]["overdue"], 1, "{f}");
    assert!(overdue(server.login("supervisor2").await).await.is_empty(), "not Shenzhen's");

    let (status, body) =
        supervisor.post(&format!("/api/v1/instructions/{instruction}/approve"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert!(overdue(supervisor.clone()).await.is_empty(), "approved work is not overdue");
    let (_, f) = supervisor.get("/api/v1/monitoring/figures?silent_hours=100").await;
    assert_eq!((f["total"]["overdue"].as_i64(), f["total"]["approved"].as_i64()), (Some(0), Some(1)), "{f}");
    assert_eq!(f["total"]["on_time_rate"], 0.0, "approved after the deadline");
    // officer1's handheld synced 73 hours ago: not silent for 100 hours; officer2's never synced.
    let silent: Vec<&str> =
        f["silent_handhelds"].as_array().unwrap().iter().map(|h| h["device_id"].as_str().unwrap()).collect();
    assert_eq!(silent, ["demo-handheld-officer2"], "{f}");
}

#[tokio::test]
async fn goods_held_past_the_disposal_wait_are_overdue_until_the_disposal_is_recorded_done() {
    let server = TestServer::start_with(&[("FIELDCHECK__MONITORING__DISPOSAL_WAIT_DAYS", "14")]);
    let start = fieldcheck_tests::now_secs();
    server.set_clock(start).await;
    let instruction = dispatched(&server, &["officer1"]).await;
    let id = instruction.to_string();
    let hand = Handheld::new(&server, "officer1");
    hand.sync();
    for item in items(&server, instruction).await {
        hand.ok(&["check", &id, &item, "fail"]);
    }
    hand.ok(&["verdict", &id, "non_conforming", "--disposal", "destruction"]);
    hand.ok(&["complete", &id]);
    hand.sync();
    let supervisor = server.login("supervisor1").await;
    let (status, body) =
        supervisor.post(&format!("/api/v1/instructions/{instruction}/approve"), json!({})).await;
    assert_eq!(status, 200, "{body}");

    let overdue = |api: Api| async move {
        let (status, list) = api.get("/api/v1/monitoring/overdue").await;
        assert_eq!(status, 200, "{list}");
        list.as_array().unwrap().clone()
    };
    // Thirteen days on, the goods wait for their destruction but are not yet held too long.
    server.set_clock(start + 13 * 86_400).await;
    let supervisor = server.login("supervisor1").await;
    assert!(overdue(supervisor.clone()).await.is_empty());

    server.set_clock(start + 15 * 86_400).await;
    let supervisor = server.login("supervisor1").await;
    let late = overdue(supervisor.clone()).await;
    assert_eq!(late.len(), 1, "{late:?}");
    assert_eq!(
        (late[0]["instruction_id"].as_i64(), &late[0]["reasons"]),
        (Some(instruction), &json!(["goods_held"]))
    );
    assert_eq!(ids(&supervisor.get("/api/v1/instructions?overdue=true").await.1), [instruction]);
    let (_, f) = supervisor.get("/api/v1/monitoring/figures").await;
    assert_eq!(f["total"]["overdue"], 1, "{f}");
    assert_eq!(f["total"]["non_conforming"], 1, "{f}");
    let officer1 = f["officers"].as_array().unwrap().iter().find(|o| o["username"] == "officer1").unwrap();
    assert_eq!((officer1["done"].as_i64(), officer1["overdue"].as_i64()), (Some(1), Some(1)), "{officer1}");

    let (status, body) = supervisor
        .post(&format!("/api/v1/instructions/{instruction}/disposal-done"), json!({"note": "destroyed"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(overdue(supervisor.clone()).await.is_empty(), "the disposal is done: nothing is held");
    let (_, f) = supervisor.get("/api/v1/monitoring/figures").await;
    assert_eq!(f["total"]["overdue"], 0, "{f}");
}

#[tokio::test]
async fn a_subscriber_that_falls_behind_the_live_buffer_is_told_to_resync_and_keeps_streaming() {
    // The smallest buffer (16 events); one signed batch of 200 drafts commits 200 events at once, which
    // the pump broadcasts in one go: no subscriber drains that in step, so it lags.
    let server = TestServer::start_with(&[("FIELDCHECK__MONITORING__STREAM_BUFFER", "16")]);
    let supervisor = server.login("supervisor1").await;
    let mut stream = EventStream::open(&supervisor, None).await;
    assert_eq!(stream.status, 200);

    let seed = std::fs::read_to_string(server.data_dir().join("demo-keys/ent1-operator.seed")).unwrap();
    let key = signing_key(&seed);
    let messages: Vec<String> = (0..200)
        .map(|n| {
            let payload = json!({"type": "application.draft", "id": format!("lag-{n}"), "enterprise": "3101960001",
                                 "content": fieldcheck_tests::field::content()});
            compact_jws(&key, "ent1-operator", payload.to_string().as_bytes())
        })
        .collect();
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/messages", server.base))
        .header("content-type", "application/json")
        .body(json!({"messages": messages}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["accepted"], 200, "{answer}");

    let got = stream.collect_until(Duration::from_secs(10), |e| e.event == "resync").await;
    let resync = got.last().unwrap();
    assert_eq!(resync.data["reason"], "fell_behind", "{resync:?}");
    assert!(got.len() < 200, "it did not get every event before being told: {}", got.len());

    // The stream goes on: the next change arrives as usual.
    let instruction = dispatched(&server, &["officer1"]).await;
    stream
        .collect_until(Duration::from_secs(5), |e| {
            e.data["kind"] == "assigned" && e.data["instruction_id"] == instruction
        })
        .await;
}

fn signing_key(seed_hex: &str) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&hex::decode(seed_hex.trim()).unwrap().try_into().unwrap())
}

fn compact_jws(key: &ed25519_dalek::SigningKey, kid: &str, payload: &[u8]) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use ed25519_dalek::Signer;
    let header = json!({"alg": "EdDSA", "kid": kid}).to_string();
    let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes()).to_bytes()))
}

fn kinds(events: &[SseEvent]) -> Vec<String> {
    events.iter().map(|e| e.data["kind"].as_str().unwrap_or("").to_string()).collect()
}

#[tokio::test]
async fn a_change_made_through_the_api_reaches_an_sse_subscriber_within_one_second() {
    let server = TestServer::start();
    let supervisor = server.login("supervisor1").await;
    let mut stream = EventStream::open(&supervisor, None).await;
    assert_eq!(stream.status, 200);
    assert!(stream.headers["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    assert_eq!(stream.headers["x-accel-buffering"], "no");

    let instruction = dispatched(&server, &["officer1"]).await;
    let assigned = stream
        .collect_until(Duration::from_secs(5), |e| {
            e.data["kind"] == "assigned" && e.data["instruction_id"] == instruction
        })
        .await;
    assert_eq!(kinds(&assigned), ["drafted", "submitted", "approved", "inspection_notice", "assigned"]);

    // One more change, timed from the request: the event is there within a second of it.
    let sent = Instant::now();
    let (status, body) = supervisor
        .post(&format!("/api/v1/instructions/{instruction}/cancel"), json!({"reason": "goods withdrawn"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let got = stream.next_before(sent + Duration::from_secs(1)).await.expect("the event within one second");
    assert_eq!((got.event.as_str(), got.data["kind"].as_str()), ("workflow", Some("cancelled")), "{got:?}");
    assert_eq!(got.data["state"], "cancelled");
    assert_eq!(got.id, got.data["id"].as_i64());
}

#[tokio::test]
async fn reconnecting_with_last_event_id_delivers_exactly_the_missed_events() {
    let server = TestServer::start();
    let supervisor = server.login("supervisor1").await;
    let mut steady = EventStream::open(&supervisor, None).await;
    let mut leaving = EventStream::open(&supervisor, None).await;

    let first = dispatched(&server, &["officer1"]).await;
    let is_assigned =
        |id: i64| move |e: &SseEvent| e.data["kind"] == "assigned" && e.data["instruction_id"] == id;
    steady.collect_until(Duration::from_secs(5), is_assigned(first)).await;
    let seen = leaving.collect_until(Duration::from_secs(5), is_assigned(first)).await;
    let last_seen = seen.last().unwrap().id.unwrap();
    drop(leaving);

    // While it is away: a second instruction, and a cancellation of the first.
    let second = dispatched(&server, &["officer2"]).await;
    let (status, _) = supervisor
        .post(&format!("/api/v1/instructions/{first}/cancel"), json!({"reason": "withdrawn"}))
        .await;
    assert_eq!(status, 200);
    // Cancelling writes the instruction's event, then its application's: wait for the last.
    let missed = steady
        .collect_until(Duration::from_secs(5), |e| {
            e.data["subject"] == "application" && e.data["state"] == "cancelled"
        })
        .await;
    assert!(missed.iter().any(|e| e.data["instruction_id"] == second));

    let mut back = EventStream::open(&supervisor, Some(last_seen)).await;
    let last = missed.last().unwrap().id;
    let replayed = back.collect_until(Duration::from_secs(5), |e| e.id == last).await;
    assert_eq!(replayed, missed, "the same events, in the same order, none repeated");
    // And nothing more: a new change arrives next, not a duplicate.
    let (status, _) = supervisor
        .post(&format!("/api/v1/instructions/{second}/cancel"), json!({"reason": "withdrawn too"}))
        .await;
    assert_eq!(status, 200);
    let next = back.next_before(Instant::now() + Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        (next.data["kind"].as_str(), next.data["instruction_id"].as_i64()),
        (Some("cancelled"), Some(second))
    );
    assert!(next.id > last);

    let (status, _, body) = supervisor
        .bytes(reqwest::Method::GET, "/api/v1/events", &[("last-event-id", "yesterday".to_string())], None)
        .await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
}

#[tokio::test]
async fn a_reconnect_that_missed_more_than_the_backlog_limit_is_told_to_resync() {
    let server = TestServer::start_with(&[("FIELDCHECK__MONITORING__MAX_BACKLOG", "2")]);
    let supervisor = server.login("supervisor1").await;
    dispatched(&server, &["officer1"]).await;
    let mut stream = EventStream::open(&supervisor, Some(0)).await;
    let first = stream.next_before(Instant::now() + Duration::from_secs(5)).await.expect("an event");
    assert_eq!(first.event, "resync", "{first:?}");
    assert!(first.id.is_some_and(|id| id >= 4), "resumes from the newest event: {first:?}");
}

#[tokio::test]
async fn other_units_events_never_reach_a_subscriber() {
    let server = TestServer::start();
    let shenzhen = server.login("supervisor2").await;
    let mut stream = EventStream::open(&shenzhen, None).await;

    // Shanghai's work first, then one Shenzhen application as the marker.
    let shanghai = dispatched(&server, &["officer1"]).await;
    let operator = server.login("ent2-operator").await;
    let mut content = fieldcheck_tests::field::content();
    content["district_code"] = json!("5300");
    content["site_code"] = json!("5301");
    content["applicant_code"] = json!("4403960002");
    content["consignor_code"] = json!("4403960002");
    let (status, app) = operator.post("/api/v1/applications", content).await;
    assert_eq!(status, 201, "{app}");
    let marker = app["id"].as_i64().unwrap();
    let (status, body) = operator.post(&format!("/api/v1/applications/{marker}/submit"), json!({})).await;
    assert_eq!(status, 200, "{body}");

    let got = stream
        .collect_until(Duration::from_secs(5), |e| {
            e.data["subject"] == "application" && e.data["subject_id"] == marker
        })
        .await;
    assert_eq!(got.len(), 1, "only the marker; Shanghai's events must not arrive: {got:#?}");
    assert!(got.iter().all(|e| e.data["instruction_id"] != shanghai));
}

#[tokio::test]
async fn a_stream_token_opens_the_stream_without_a_header_and_expires() {
    let server = TestServer::start();
    let start = fieldcheck_tests::now_secs();
    server.set_clock(start).await;
    let supervisor = server.login("supervisor1").await;
    let (status, token) = supervisor.post("/api/v1/events/token", json!({})).await;
    assert_eq!(status, 200, "{token}");
    let url = format!("{}/api/v1/events?token={}", server.base, token["token"].as_str().unwrap());
    let mut stream = EventStream::open_url(&url).await;
    assert_eq!(stream.status, 200);
    let instruction = dispatched(&server, &["officer1"]).await;
    stream
        .collect_until(Duration::from_secs(5), |e| {
            e.data["kind"] == "assigned" && e.data["instruction_id"] == instruction
        })
        .await;

    let bad = EventStream::open_url(&format!("{}/api/v1/events?token=forged", server.base)).await;
    assert_eq!(bad.status, 401);
    server.set_clock(start + 61).await;
    let expired = EventStream::open_url(&url).await;
    assert_eq!(expired.status, 401, "a stream token lives 60 s");
}

#[tokio::test]
async fn an_open_stream_ends_when_its_session_is_logged_out() {
    let server = TestServer::start_with(&[("FIELDCHECK__MONITORING__KEEP_ALIVE_SECS", "1")]);
    let supervisor = server.login("supervisor1").await;
    let mut stream = EventStream::open(&supervisor, None).await;
    assert_eq!(stream.status, 200);
    let (status, _) = supervisor.post("/api/v1/auth/logout", json!({})).await;
    assert!(status < 300, "logout: {status}");
    let ended = stream.next_before(Instant::now() + Duration::from_secs(10)).await.expect("an event");
    assert_eq!(
        (ended.event.as_str(), ended.data["code"].as_str()),
        ("session_ended", Some("session_ended")),
        "{ended:?}"
    );
    assert!(
        stream.next_before(Instant::now() + Duration::from_secs(10)).await.is_none(),
        "then the stream closes"
    );
}

#[tokio::test]
async fn the_dashboard_picks_a_period_signs_out_and_sends_an_ended_sign_in_to_a_login_that_says_so() {
    let server = TestServer::start();
    let supervisor = server.login("supervisor1").await;
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let resp = browser
        .post(format!("{}/dashboard/session", server.base))
        .bearer_auth(supervisor.token.as_deref().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let get = |path: &str| browser.get(format!("{}{path}", server.base)).header("cookie", &cookie).send();

    // The picker sends days; the page shows the period it was asked for, and the figures are of it.
    let resp = get("/dashboard?from=2026-11-01&to=2026-11-30").await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let page = resp.text().await.unwrap();
    assert!(page.contains(r#"name="from" value="2026-11-01""#), "{page}");
    assert!(page.contains(r#"name="to" value="2026-11-30""#), "{page}");
    assert!(page.contains("2026-11-01T00:00:00Z – 2026-12-01T00:00:00Z"), "{page}");
    let resp = get("/dashboard?from=2026-11-30&to=2026-11-01").await.unwrap();
    assert_eq!(resp.status().as_u16(), 422, "a backwards period is refused");

    // Signing out ends the session, clears the cookie and lands on the login page.
    let resp = browser
        .post(format!("{}/dashboard/logout", server.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(resp.headers()["location"], "/dashboard/login");
    assert!(resp.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    let (status, _) = supervisor.get("/api/v1/monitoring/figures").await;
    assert_eq!(status, 401, "the session's bearer token ended with it");

    // The old cookie brings the browser to a login page that says why.
    let resp = get("/dashboard").await.unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(resp.headers()["location"], "/dashboard/login?expired=1");
    let login = get("/dashboard/login?expired=1").await.unwrap().text().await.unwrap();
    assert!(login.contains("sign in again"), "{login}");

    // Without any cookie, the plain login page.
    let resp = browser.post(format!("{}/dashboard/logout", server.base)).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(resp.headers()["location"], "/dashboard/login");
}

/// Creates a supervisor of `unit` with the demo password, through the admin command line.
fn create_supervisor(server: &TestServer, username: &str, unit: &str) {
    let out = std::process::Command::new(fieldcheck_tests::binary("fieldcheck"))
        .args(["admin", "create-user", "--username", username, "--display-name", username])
        .args(["--role", "supervisor", "--unit", unit, "--data-dir"])
        .arg(server.data_dir())
        .env("FIELDCHECK_PASSWORD", "demo-password")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn a_site_supervisor_sees_the_figures_overdue_conflicts_and_events_of_the_site_whose_district_is_another_branch()
 {
    let server = TestServer::start();
    // Site 2201's supervisor: the site lies under district 2200, but the supervisor's subtree is the site
    // alone, so district 2200 is outside it. A sibling site's supervisor is the control.
    create_supervisor(&server, "yangshan-chief", "2201");
    create_supervisor(&server, "waigaoqiao-chief", "2202");
    let site = server.login("yangshan-chief").await;
    let sibling = server.login("waigaoqiao-chief").await;
    let mut stream = EventStream::open(&site, None).await;
    let mut sibling_stream = EventStream::open(&sibling, None).await;

    let instruction = dispatched(&server, &["officer1"]).await;
    let events = stream
        .collect_until(Duration::from_secs(5), |e| {
            e.data["kind"] == "assigned" && e.data["instruction_id"] == instruction
        })
        .await;
    assert_eq!(kinds(&events), ["drafted", "submitted", "approved", "inspection_notice", "assigned"]);

    let (status, figures) = site.get("/api/v1/monitoring/figures").await;
    assert_eq!(status, 200, "{figures}");
    assert_eq!(figures["total"]["instructions"], 1, "{figures}");
    assert_eq!(figures["sites"][0]["code"], "2201", "{figures}");
    // officer1 belongs to the site; the work they carry for district 2200 there counts.
    let officer1 = &figures["officers"][0];
    assert_eq!((officer1["username"].as_str(), officer1["assigned"].as_i64()), (Some("officer1"), Some(1)));
    assert_eq!(figures["units"][0]["code"], "2200", "the district is named: {figures}");
    let (_, listed) = site.get("/api/v1/instructions").await;
    assert_eq!(ids(&listed), [instruction], "the list and the figures follow one rule");

    // Past the deadline the site's supervisor sees it overdue (table and figures).
    let start = fieldcheck_tests::now_secs();
    server.set_clock(start + 40 * 24 * 3600).await;
    let site = server.login("yangshan-chief").await;
    let (_, overdue) = site.get("/api/v1/monitoring/overdue").await;
    assert_eq!(overdue[0]["instruction_id"], instruction, "{overdue}");
    let period = format!("from={}&to={}", rfc3339(start - 24 * 3600), rfc3339(start + 41 * 24 * 3600));
    let (_, figures) = site.get(&format!("/api/v1/monitoring/figures?{period}")).await;
    assert_eq!(figures["total"]["overdue"], 1, "{figures}");

    let sibling = server.login("waigaoqiao-chief").await;
    let (_, nothing) = sibling.get(&format!("/api/v1/monitoring/figures?{period}")).await;
    assert_eq!(nothing["total"]["instructions"], 0, "{nothing}");
    let (_, nothing) = sibling.get("/api/v1/monitoring/overdue").await;
    assert_eq!(nothing, json!([]));
    // The sibling site's stream gets its own site's application (the marker) and nothing of the other's.
    let operator = server.login("ent1-operator").await;
    let mut content = fieldcheck_tests::field::content();
    content["site_code"] = json!("2202");
    let (status, app) = operator.post("/api/v1/applications", content).await;
    assert_eq!(status, 201, "{app}");
    let marker = app["id"].as_i64().unwrap();
    let got = sibling_stream
        .collect_until(Duration::from_secs(5), |e| {
            e.data["subject"] == "application" && e.data["subject_id"] == marker
        })
        .await;
    assert_eq!(got.len(), 1, "only the marker reaches the sibling site: {got:#?}");
}

#[tokio::test]
async fn each_handhelds_pending_edits_and_photos_reach_the_officers_figures_and_the_silent_list() {
    let server = TestServer::start();
    let instruction = dispatched(&server, &["officer1"]).await;
    let items = items(&server, instruction).await;
    let id = instruction.to_string();
    let supervisor = server.login("supervisor1").await;
    let officer1 = |officers: &Value| {
        officers.as_array().unwrap().iter().find(|o| o["username"] == "officer1").unwrap().clone()
    };
    let (_, officers) = supervisor.get("/api/v1/officers").await;
    assert_eq!(officer1(&officers)["pending_changes"], Value::Null, "never reported: unknown");

    let one = Handheld::new(&server, "officer1");
    one.sync();
    let (_, officers) = supervisor.get("/api/v1/officers").await;
    let o = officer1(&officers);
    assert_eq!((o["pending_changes"].as_i64(), o["pending_photos"].as_i64()), (Some(0), Some(0)), "{o}");

    // Work kept back: a photo whose file cannot be read is refused locally and stays pending; the edit
    // made with it goes through.
    let photo = one.path().join("label.jpg");
    std::fs::copy(fieldcheck_tests::repo_root().join("fixtures/photos/Canon_40D.jpg"), &photo).unwrap();
    one.ok(&["attach", &id, photo.to_str().unwrap(), "--caption", "label", "--item", &items[0]]);
    std::fs::remove_file(&photo).unwrap();
    one.ok(&["check", &id, &items[0], "pass"]);
    one.sync_refused();
    let (_, officers) = supervisor.get("/api/v1/officers").await;
    let o = officer1(&officers);
    assert_eq!((o["pending_changes"].as_i64(), o["pending_photos"].as_i64()), (Some(0), Some(1)), "{o}");
    let handheld = &o["handhelds"][0];
    assert_eq!(handheld["pending_photos"], 1, "{handheld}");
    assert!(handheld["pending_reported_at"].is_string(), "{handheld}");
    // The record names the photo, the server has not got it: the officer's open work misses one photo,
    // until the officer withdraws it from the record.
    assert_eq!(o["photos_missing"], 1, "{o}");
    let label = std::fs::read(fieldcheck_tests::repo_root().join("fixtures/photos/Canon_40D.jpg")).unwrap();
    let sha = fieldcheck_tests::photos::sha256_hex(&label);
    one.ok(&["withdraw", &id, &sha[..12]]);
    // Whether the handheld still reports the unreadable file is its own business; the record reached us.
    let _ = one.run(&["sync"]);
    let (_, officers) = supervisor.get("/api/v1/officers").await;
    assert_eq!(officer1(&officers)["photos_missing"], 0, "a withdrawn photo is not awaited");

    // The silent list says what a handheld held when it went quiet.
    server.set_clock(fieldcheck_tests::now_secs() + 3 * 24 * 3600).await;
    let supervisor = server.login("supervisor1").await;
    let (_, figures) = supervisor.get("/api/v1/monitoring/figures").await;
    let silent = figures["silent_handhelds"].as_array().unwrap();
    let quiet = silent.iter().find(|h| h["officer"] == "officer1").expect("officer1's handheld is silent");
    assert_eq!((quiet["pending_changes"].as_i64(), quiet["pending_photos"].as_i64()), (Some(0), Some(1)));
}

#[tokio::test]
async fn the_dashboard_cookie_slides_with_use_past_the_tokens_lifetime_and_is_secure_behind_https() {
    let server =
        TestServer::start_with(&[("FIELDCHECK__SERVER__PUBLIC_URL", "https://fieldcheck.customs.example")]);
    let start = fieldcheck_tests::now_secs();
    server.set_clock(start).await;
    let supervisor = server.login("supervisor1").await;
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let resp = browser
        .post(format!("{}/dashboard/session", server.base))
        .bearer_auth(supervisor.token.as_deref().unwrap())
        .send()
        .await
        .unwrap();
    let set = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set.contains("; Secure") && set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
    let mut cookie = set.split(';').next().unwrap().to_string();
    let page = |cookie: String| {
        browser.get(format!("{}/dashboard?partial=1", server.base)).header("cookie", cookie).send()
    };

    // The access token lives 15 minutes. Used every 10 minutes, the dashboard stays signed in for an hour:
    // each request past half the token's life answers a fresh cookie of the same session.
    let (_, me) = supervisor.get("/api/v1/auth/me").await;
    for step in 1..=6 {
        server.set_clock(start + step * 600).await;
        let resp = page(cookie.clone()).await.unwrap();
        assert_eq!(resp.status().as_u16(), 200, "still signed in after {} minutes", step * 10);
        let fresh = resp.headers()["set-cookie"].to_str().unwrap();
        assert!(fresh.contains("; Secure") && fresh.contains("Max-Age=900"), "{fresh}");
        cookie = fresh.split(';').next().unwrap().to_string();
    }
    let _ = me;
    // Before half the token's life nothing is re-issued.
    server.set_clock(start + 6 * 600 + 60).await;
    let resp = page(cookie.clone()).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers().get("set-cookie").is_none());

    // Left alone longer than the token's life, the sign-in ends and the browser is sent to sign in again.
    server.set_clock(start + 6 * 600 + 60 + 16 * 60).await;
    let resp = page(cookie.clone()).await.unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    assert_eq!(resp.headers()["location"], "/dashboard/login?expired=1");

    // A session ended by logout does not slide: a renewed cookie of it is refused too.
    let (_, other) = (0, server.login("supervisor1").await);
    let resp = browser
        .post(format!("{}/dashboard/session", server.base))
        .bearer_auth(other.token.as_deref().unwrap())
        .send()
        .await
        .unwrap();
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let (status, _) = other.post("/api/v1/auth/logout", json!({})).await;
    assert_eq!(status, 204);
    let resp = page(cookie).await.unwrap();
    assert_eq!(resp.status().as_u16(), 303, "a logged-out session's cookie is refused");
}
