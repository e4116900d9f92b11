//! The handheld's WebSocket transport end to end: the real server binary on a real socket, a real SQLite
//! file, and real `handheld` processes syncing with `--transport ws` (automerge-repo's protocol on
//! `GET /api/v1/sync/ws`), alone and mixed with the batch transport.

use fieldcheck_tests::{
    TestServer,
    field::{Handheld, TwoOfficers, dispatched, items, record, two_officers},
};
use serde_json::{Value, json};

const WS: [&str; 3] = ["sync", "--transport", "ws"];

fn ws_sync(h: &Handheld) -> Value {
    let report = h.ok(&WS);
    assert_eq!(report["transport"], "ws", "{report}");
    assert!(report["ws"]["connections"].as_u64().unwrap() >= 1, "{report}");
    report
}

#[tokio::test]
async fn a_handheld_syncing_over_the_websocket_gets_its_records_and_the_supervisor_sees_its_edit() {
    let server = TestServer::start();
    let instruction = dispatched(&server, &["officer1"]).await;
    let items = items(&server, instruction).await;
    let id = instruction.to_string();
    let one = Handheld::new(&server, "officer1");

    let first = ws_sync(&one);
    assert_eq!(first["records"], 1, "{first}");
    assert_eq!(one.ok(&["list"])[0]["instruction_id"], instruction);
    assert_eq!(one.ok(&["show", &id])["record"]["checks"].as_object().unwrap().len(), items.len());

    one.ok(&["check", &id, &items[0], "fail"]);
    one.ok(&["note", &id, "Carton 4 thawed."]);
    let report = ws_sync(&one);
    assert!(report["accepted"].as_u64().unwrap() >= 2, "{report}");
    assert_eq!(report["errors"], json!([]), "{report}");
    assert_eq!(one.ok(&["status"])["pending_edits"], 0);

    let view = record(&server.login("supervisor1").await, instruction).await;
    assert_eq!(view["record"]["checks"][&items[0]]["result"], "fail", "{view}");
    assert_eq!(view["record"]["notes"][0]["text"], "Carton 4 thawed.", "{view}");
    assert_eq!(view["state"], "in_progress", "the workflow ran as for a batch sync");
    assert_eq!(one.ok(&["show", &id])["record"], view["record"], "the handheld holds what the server holds");
}

#[tokio::test]
async fn an_edit_another_officer_synced_over_batch_arrives_over_the_websocket() {
    let server = TestServer::start();
    let TwoOfficers { id, items, one, two, .. } = two_officers(&server).await;
    ws_sync(&one);
    two.sync();
    two.ok(&["check", &id, &items[1], "pass"]);
    two.sync();
    assert_eq!(one.ok(&["show", &id])["record"]["checks"][&items[1]]["result"], Value::Null);
    ws_sync(&one);
    let shown = one.ok(&["show", &id]);
    assert_eq!(shown["record"]["checks"][&items[1]]["result"], "pass", "{shown}");
    assert_eq!(shown["record"]["checks"][&items[1]]["last_edit"]["by"], "officer2", "{shown}");
}

#[tokio::test]
async fn a_refused_edit_over_the_websocket_exits_2_naming_the_rule_and_nothing_is_stored() {
    let server = TestServer::start();
    let first_instruction = dispatched(&server, &["officer1"]).await;
    let second_instruction = dispatched(&server, &["officer1"]).await;
    let item = items(&server, first_instruction).await[0].clone();
    // `Handheld::new` registers a store with the officer's demo device id, claiming the device.
    let register = || {
        let h = Handheld::new(&server, "officer1");
        ws_sync(&h);
        h
    };
    let old = register();
    // Offline edits on both records by this copy; then another store claims the device, which retires
    // this copy's actor: every change it wrote is refused by rule.
    for instruction in [first_instruction, second_instruction] {
        old.ok(&["check", &instruction.to_string(), &item, "fail"]);
    }
    let _new = register();
    old.ok(&["login", "--password", "demo-password"]);
    let supervisor = server.login("supervisor1").await;
    let before =
        [record(&supervisor, first_instruction).await, record(&supervisor, second_instruction).await];

    let out = old.run(&WS);
    assert_eq!(
        out.status.code(),
        Some(fieldcheck_handheld::cli::REFUSED_EXIT_CODE),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Both records are reported with the rule: after the first refusal closed the connection, the rest
    // of the round went out again on a new one.
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{report}");
    assert!(errors.iter().all(|e| e[1] == "retired_actor"), "{report}");
    assert!(report["ws"]["connections"].as_u64().unwrap() >= 2, "{report}");
    for (instruction, before) in [first_instruction, second_instruction].into_iter().zip(before) {
        let after = record(&supervisor, instruction).await;
        assert_eq!(after["heads"], before["heads"], "nothing stored");
    }
    assert_eq!(old.ok(&["status"])["pending_edits"], 2, "the refused edits stay on the device");
}

#[tokio::test]
async fn a_lost_devices_token_cannot_connect_to_the_sync_websocket() {
    let server = TestServer::start();
    let instruction = dispatched(&server, &["officer1"]).await;
    let item = items(&server, instruction).await[0].clone();
    let one = Handheld::new(&server, "officer1");
    ws_sync(&one);
    one.ok(&["check", &instruction.to_string(), &item, "pass"]);
    let before = record(&server.login("supervisor1").await, instruction).await;

    let officer = server.login("officer1").await;
    let (status, body) = officer
        .post(
            "/api/v1/devices/demo-handheld-officer1/status",
            json!({"status": "lost", "reason": "left in a taxi"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let out = one.run(&WS);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("401"), "the upgrade and the token refresh are refused: {stderr}");
    let after = record(&server.login("supervisor1").await, instruction).await;
    assert_eq!(after["heads"], before["heads"]);
    assert_eq!(one.ok(&["status"])["pending_edits"], 1);
}

#[tokio::test]
async fn switching_transports_between_syncs_loses_nothing() {
    let server = TestServer::start();
    let TwoOfficers { instruction, id, items, one, two } = two_officers(&server).await;
    // Each officer alternates transports; every sync brings the other's latest edit.
    let steps: [(&Handheld, &str, &str, &str); 6] = [
        (&one, "ws", &items[0], "pass"),
        (&two, "batch", &items[1], "fail"),
        (&one, "batch", &items[2], "pass"),
        (&two, "ws", &items[3], "not_applicable"),
        (&one, "ws", &items[4], "fail"),
        (&two, "batch", &items[5], "pass"),
    ];
    one.ok(&["sync", "--transport", "batch"]);
    two.ok(&WS);
    for (h, transport, item, result) in steps {
        h.ok(&["check", &id, item, result]);
        let report = h.ok(&["sync", "--transport", transport]);
        assert_eq!(report["errors"], json!([]), "{report}");
        assert_eq!(h.ok(&["status"])["pending_edits"], 0, "acknowledged over {transport}");
    }
    one.ok(&WS);
    two.ok(&["sync", "--transport", "batch"]);

    let view = record(&server.login("supervisor1").await, instruction).await;
    for (_, _, item, result) in steps {
        assert_eq!(view["record"]["checks"][item]["result"], result, "{item}: {view}");
    }
    assert_eq!(view["conflicts"], json!([]));
    for h in [&one, &two] {
        assert_eq!(h.ok(&["show", &id])["record"], view["record"]);
    }
    // A sync with nothing new settles over either transport with nothing refused.
    assert_eq!(ws_sync(&one)["accepted"], 0);
    assert_eq!(one.ok(&["sync", "--transport", "batch"])["accepted"], 0);
}

#[tokio::test]
async fn work_stranded_by_a_cancellation_is_kept_and_reported_over_the_websocket_as_over_batch() {
    let server = TestServer::start();
    let instruction = dispatched(&server, &["officer1"]).await;
    let items = items(&server, instruction).await;
    let id = instruction.to_string();
    let one = Handheld::new(&server, "officer1");
    ws_sync(&one);
    one.ok(&["check", &id, &items[0], "pass"]);
    ws_sync(&one);
    let supervisor = server.login("supervisor1").await;
    let (status, body) = supervisor
        .post(&format!("/api/v1/instructions/{instruction}/cancel"), json!({"reason": "goods withdrawn"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let before = record(&supervisor, instruction).await;

    one.ok(&["check", &id, &items[1], "fail"]);
    let out = one.run(&WS);
    assert_eq!(
        out.status.code(),
        Some(fieldcheck_handheld::cli::STRANDED_EXIT_CODE),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["errors"], json!([]), "a record that left the index is not a refusal: {report}");
    assert_eq!(report["stranded"][0]["reason"], "cancelled", "{report}");
    assert_eq!(report["stranded"][0]["edits"], 1, "{report}");
    assert_eq!(one.ok(&["status"])["pending_edits"], 1, "the unsent edit stays on the device");
    assert_eq!(record(&supervisor, instruction).await["heads"], before["heads"]);

    // The pending counts went to the server in a `join`: supervisors see the edit kept back.
    let (_, officers) = supervisor.get("/api/v1/officers").await;
    let officer1 = officers.as_array().unwrap().iter().find(|o| o["username"] == "officer1").unwrap();
    assert_eq!(officer1["pending_changes"], 1, "{officer1}");
}
