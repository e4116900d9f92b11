//! Result approval, release and disposal end to end (issue 10): the real server, real `handheld`
//! processes, and the enterprise's receipts.

use fieldcheck_tests::{
    Api, TestServer, binary,
    field::{Handheld, TwoOfficers, dispatched, items, record, two_officers},
    strong,
};
use serde_json::{Value, json};

/// An instruction inspected by officer1 and synced until it is `submitted`, with `verdict` (the
/// `handheld verdict` arguments). Answers the instruction, its application and the handheld.
async fn submitted(server: &TestServer, verdict: &[&str]) -> (i64, i64, Handheld) {
    let instruction = dispatched(server, &["officer1"]).await;
    let items = items(server, instruction).await;
    let id = instruction.to_string();
    let one = Handheld::new(server, "officer1");
    one.sync();
    for item in &items {
        one.ok(&["check", &id, item, "pass"]);
    }
    let mut args = vec!["verdict", id.as_str()];
    args.extend_from_slice(verdict);
    one.ok(&args);
    one.ok(&["complete", &id]);
    one.sync();
    let supervisor = server.login("supervisor1").await;
    let view = record(&supervisor, instruction).await;
    assert_eq!(view["state"], "submitted", "{view}");
    let (_, i) = supervisor.get(&format!("/api/v1/instructions/{instruction}")).await;
    (instruction, i["application_id"].as_i64().unwrap(), one)
}

async fn receipts(operator: &Api) -> Vec<Value> {
    let (status, page) = operator.get("/api/v1/receipts?after=0&limit=500").await;
    assert_eq!(status, 200, "{page}");
    page["receipts"].as_array().unwrap().clone()
}

async fn application(server: &TestServer, id: i64) -> Value {
    let (status, app) = server.login("ent1-operator").await.get(&format!("/api/v1/applications/{id}")).await;
    assert_eq!(status, 200, "{app}");
    app
}

fn refused_rules(report: &Value) -> Vec<&str> {
    report["errors"].as_array().unwrap().iter().map(|e| e[1].as_str().unwrap()).collect()
}

#[tokio::test]
async fn an_approved_conforming_result_seals_the_record_and_releases_the_goods_with_an_e_record() {
    let server = TestServer::start();
    let (instruction, app_id, one) = submitted(&server, &["conforming"]).await;
    let id = instruction.to_string();
    let supervisor = server.login("supervisor1").await;
    let before = record(&supervisor, instruction).await;

    let (status, body) =
        supervisor.post(&format!("/api/v1/instructions/{instruction}/approve"), json!({})).await;
    assert_eq!((status, body["state"].as_str()), (200, Some("approved")), "{body}");

    // The audit entry carries the content digest and the heads that were approved.
    let (_, audit) = server.login("admin").await.get("/api/v1/admin/audit?limit=1000").await;
    let entry = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "instruction.result_approved")
        .unwrap_or_else(|| panic!("no approval in the audit log: {audit}"));
    let digest = entry["details"]["details"]["digest"].as_str().unwrap();
    assert_eq!(digest.len(), 64, "{entry}");
    assert_eq!(entry["details"]["details"]["heads"], before["heads"]);

    // The goods are released: the electronic record is numbered from the inspection number, `normal`.
    let app = application(&server, app_id).await;
    assert_eq!(app["state"], "released", "{app}");
    let operator = server.login("ent1-operator").await;
    let (status, e_record) = operator.get(&format!("/api/v1/applications/{app_id}/e-record")).await;
    assert_eq!(status, 200, "{e_record}");
    assert_eq!(e_record["number"], format!("E{}", app["inspection_no"].as_str().unwrap()));
    assert_eq!((e_record["status"].as_str(), e_record["forced"].as_bool()), (Some("normal"), Some(false)));
    let receipts = receipts(&operator).await;
    let released = receipts
        .iter()
        .find(|r| r["subject"] == "application" && r["kind"] == "released")
        .unwrap_or_else(|| panic!("no released receipt: {receipts:?}"));
    assert_eq!(released["details"]["e_record_no"], e_record["number"]);
    assert!(receipts.iter().any(|r| r["kind"] == "result_approved" && r["state"] == "approved"));

    // The record is sealed: a later change from the handheld is refused and the server copy stays.
    let items = items(&server, instruction).await;
    one.ok(&["check", &id, &items[1], "fail"]);
    let report = one.sync_refused();
    assert_eq!(refused_rules(&report), vec!["sealed_record"], "{report}");
    assert_eq!(one.ok(&["status"])["pending_edits"], 1, "a refused edit stays pending");
    let after = record(&supervisor, instruction).await;
    assert_eq!(after["heads"], before["heads"]);
}

#[tokio::test]
async fn a_returned_result_is_in_progress_again_with_the_opinion_on_the_handheld_until_resubmitted() {
    let server = TestServer::start();
    let (instruction, _, one) = submitted(&server, &["conforming"]).await;
    let id = instruction.to_string();
    let supervisor = server.login("supervisor1").await;
    let path = format!("/api/v1/instructions/{instruction}/return");

    let (status, body) = supervisor.post(&path, json!({"opinion": "  "})).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("missing_opinion")), "{body}");
    let opinion = "Photograph the carton labels and measure the core temperature.";
    let (status, body) = supervisor.post(&path, json!({"opinion": opinion})).await;
    assert_eq!((status, body["state"].as_str()), (200, Some("in_progress")), "{body}");
    let operator = server.login("ent1-operator").await;
    let returned = receipts(&operator).await.into_iter().find(|r| r["kind"] == "result_returned").unwrap();
    assert_eq!(returned["opinion"], opinion);

    one.sync();
    let shown = one.ok(&["show", &id]);
    assert_eq!(shown["record"]["review"]["decision"], "returned", "{shown}");
    assert_eq!(shown["record"]["review"]["opinion"], opinion);
    assert_eq!(shown["record"]["review"]["by"], "supervisor1");
    let text = std::process::Command::new(binary("handheld"))
        .arg("--dir")
        .arg(one.path())
        .args(["show", &id])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(&format!("RETURNED by supervisor1: {opinion}")), "{text}");

    // The officer acts on it: the change voids the signature, so the result waits for a new one.
    let items = items(&server, instruction).await;
    one.ok(&["measure", &id, &items[1], "-18.5", "°C"]);
    one.sync();
    let view = record(&supervisor, instruction).await;
    assert_eq!(view["state"], "in_progress", "{view}");
    assert_eq!(view["missing"], json!(["officer1 must sign again: the content changed after signing"]));
    one.ok(&["complete", &id]);
    one.sync();
    assert_eq!(record(&supervisor, instruction).await["state"], "submitted");
}

#[tokio::test]
async fn a_non_conforming_result_sends_a_disposal_notice_and_disposal_done_closes_the_case() {
    let server = TestServer::start();
    let (instruction, app_id, _one) =
        submitted(&server, &["non_conforming", "--disposal", "destruction"]).await;
    let supervisor = server.login("supervisor1").await;
    let done = format!("/api/v1/instructions/{instruction}/disposal-done");

    // Nothing to dispose of before approval.
    let (status, body) = supervisor.post(&done, json!({})).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("no_disposal_pending")), "{body}");

    let (status, body) =
        supervisor.post(&format!("/api/v1/instructions/{instruction}/approve"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(application(&server, app_id).await["state"], "not_released");
    let operator = server.login("ent1-operator").await;
    let notice = receipts(&operator).await.into_iter().find(|r| r["kind"] == "disposal_notice").unwrap();
    assert_eq!(
        (notice["state"].as_str(), notice["details"]["disposal"].as_str()),
        (Some("not_released"), Some("destruction"))
    );
    let (status, _) = operator.get(&format!("/api/v1/applications/{app_id}/e-record")).await;
    assert_eq!(status, 404, "non-conforming goods get no electronic record");

    let (status, body) = supervisor.post(&done, json!({"note": "destroyed at the site incinerator"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(application(&server, app_id).await["state"], "disposed");
    let closed = receipts(&operator).await.into_iter().find(|r| r["kind"] == "disposal_done").unwrap();
    assert_eq!(closed["opinion"], "destroyed at the site incinerator");
    let (status, body) = supervisor.post(&done, json!({})).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("no_disposal_pending")), "done once: {body}");
}

#[tokio::test]
async fn forced_release_needs_a_strong_login_and_a_reason_and_tells_the_enterprise() {
    let server = TestServer::start();
    let instruction = dispatched(&server, &["officer1"]).await;
    let path = format!("/api/v1/instructions/{instruction}/force-release");

    let password = server.login("supervisor1").await;
    let (status, body) = password.post(&path, json!({"reason": "perishable goods, port congestion"})).await;
    assert_eq!((status, body["details"]["required_aal"].as_str()), (403, Some("strong")), "{body}");

    let strong = strong(&server, "supervisor1").await;
    let (status, body) = strong.post(&path, json!({"reason": " "})).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("missing_reason")), "{body}");
    let (status, body) = strong.post(&path, json!({})).await;
    assert_eq!(status, 422, "the reason is mandatory: {body}");

    let (status, body) = strong.post(&path, json!({"reason": "perishable goods, port congestion"})).await;
    assert_eq!((status, body["state"].as_str()), (200, Some("force_released")), "{body}");
    let app_id = body["application_id"].as_i64().unwrap();
    assert_eq!(application(&server, app_id).await["state"], "released");
    let operator = server.login("ent1-operator").await;
    let (_, e_record) = operator.get(&format!("/api/v1/applications/{app_id}/e-record")).await;
    assert_eq!((e_record["status"].as_str(), e_record["forced"].as_bool()), (Some("normal"), Some(true)));
    let told = receipts(&operator)
        .await
        .into_iter()
        .find(|r| r["kind"] == "force_released" && r["subject"] == "application");
    assert_eq!(told.unwrap()["opinion"], "perishable goods, port congestion");
    let (_, audit) = server.login("admin").await.get("/api/v1/admin/audit?limit=1000").await;
    let entry =
        audit.as_array().unwrap().iter().find(|e| e["action"] == "instruction.force_released").unwrap();
    assert_eq!(entry["details"]["opinion"], "perishable goods, port congestion");
    assert_eq!(
        entry["details"]["details"]["digest"].as_str().map(str::len),
        Some(64),
        "sealed as it stood: {entry}"
    );

    // Released once is released: a second forced release is refused.
    let (status, body) = strong.post(&path, json!({"reason": "again"})).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("not_releasable")), "{body}");
}

#[tokio::test]
async fn approving_an_assigned_instruction_is_an_illegal_transition_naming_the_state_and_the_event() {
    let server = TestServer::start();
    let instruction = dispatched(&server, &["officer1"]).await;
    let supervisor = server.login("supervisor1").await;
    let (status, body) =
        supervisor.post(&format!("/api/v1/instructions/{instruction}/approve"), json!({})).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("illegal_transition")), "{body}");
    assert_eq!(body["details"], json!({"state": "assigned", "event": "result_approved"}));
    let (status, body) = supervisor
        .post(&format!("/api/v1/instructions/{instruction}/return"), json!({"opinion": "redo"}))
        .await;
    assert_eq!((status, body["details"]["event"].as_str()), (409, Some("result_returned")), "{body}");
    // Nothing was written: the instruction is still assigned.
    assert_eq!(record(&supervisor, instruction).await["state"], "assigned");
}

#[tokio::test]
async fn a_cancelled_instruction_closes_its_application_as_cancelled() {
    let server = TestServer::start();
    let instruction = dispatched(&server, &["officer1"]).await;
    let supervisor = server.login("supervisor1").await;
    let (status, body) = supervisor
        .post(&format!("/api/v1/instructions/{instruction}/cancel"), json!({"reason": "goods withdrawn"}))
        .await;
    assert_eq!(status, 200, "{body}");
    let app = application(&server, body["application_id"].as_i64().unwrap()).await;
    assert_eq!(app["state"], "cancelled", "{app}");
}

fn kinds(receipts: &[Value], instruction: i64) -> Vec<String> {
    receipts
        .iter()
        .filter(|r| r["subject"] == "instruction" && r["subject_id"] == instruction)
        .map(|r| r["kind"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn complete_on_an_untouched_record_is_not_a_submission_until_every_check_the_verdict_and_a_current_signature_are_there()
 {
    let server = TestServer::start();
    let instruction = dispatched(&server, &["officer1"]).await;
    let items = items(&server, instruction).await;
    let id = instruction.to_string();
    let one = Handheld::new(&server, "officer1");
    one.sync();
    let supervisor = server.login("supervisor1").await;

    one.ok(&["complete", &id]);
    one.sync();
    let view = record(&supervisor, instruction).await;
    assert_eq!(view["state"], "in_progress", "0 of {} checks, no verdict: {view}", items.len());
    // The handheld says exactly what is missing.
    let shown = one.ok(&["show", &id]);
    let without = format!("{} checks without result", items.len());
    assert_eq!(shown["missing"], json!([without, "no verdict"]), "{shown}");

    for item in &items[1..] {
        one.ok(&["check", &id, item, "pass"]);
    }
    one.ok(&["verdict", &id, "conforming"]);
    one.sync();
    assert_eq!(record(&supervisor, instruction).await["state"], "in_progress", "one check has no result");

    one.ok(&["check", &id, &items[0], "not_applicable"]);
    one.sync();
    // Everything is there, but the signature covers the empty record it was given on: it is void.
    let view = record(&supervisor, instruction).await;
    assert_eq!(view["state"], "in_progress");
    assert_eq!(view["missing"], json!(["officer1 must sign again: the content changed after signing"]));
    let status = one.ok(&["status"]);
    assert_eq!(status["records"][0]["missing"], view["missing"], "{status}");
    one.ok(&["complete", &id]);
    one.sync();
    assert_eq!(record(&supervisor, instruction).await["state"], "submitted");
    assert_eq!(one.ok(&["status"])["records"][0]["missing"], json!([]));
    let operator = server.login("ent1-operator").await;
    let submissions = kinds(&receipts(&operator).await, instruction);
    assert_eq!(submissions.iter().filter(|k| *k == "result_submitted").count(), 1, "{submissions:?}");
}

#[tokio::test]
async fn an_officers_change_after_submission_reopens_the_result_with_a_receipt_and_an_audit_entry() {
    let server = TestServer::start();
    let TwoOfficers { instruction, id, items, one, two } = two_officers(&server).await;
    one.sync();
    for item in &items {
        one.ok(&["check", &id, item, "pass"]);
    }
    one.ok(&["verdict", &id, "conforming"]);
    one.ok(&["complete", &id]);
    one.sync();
    let supervisor = server.login("supervisor1").await;
    // Finding 3: the first officer's `complete` is not the instruction's submission.
    let view = record(&supervisor, instruction).await;
    assert_eq!(view["state"], "in_progress", "{view}");
    assert_eq!(view["missing"], json!(["officer2 has not signed"]));
    two.sync();
    let shown = two.ok(&["show", &id]);
    assert_eq!(shown["missing"], json!(["officer2 has not signed"]), "{shown}");
    two.ok(&["complete", &id]);
    two.sync();
    assert_eq!(record(&supervisor, instruction).await["state"], "submitted");

    // officer2 changes a check after submission: reopened on the record, and both signatures are void, so
    // it stays open until both officers sign the new content.
    two.ok(&["check", &id, &items[0], "fail"]);
    two.sync();
    let operator = server.login("ent1-operator").await;
    let seen = kinds(&receipts(&operator).await, instruction);
    assert!(seen.ends_with(&["result_submitted".into(), "result_reopened".into()]), "{seen:?}");
    let view = record(&supervisor, instruction).await;
    assert_eq!(view["state"], "in_progress");
    assert_eq!(
        view["missing"],
        json!([
            "officer1 must sign again: the content changed after signing",
            "officer2 must sign again: the content changed after signing"
        ])
    );
    two.ok(&["complete", &id]);
    two.sync();
    assert_eq!(
        record(&supervisor, instruction).await["state"],
        "in_progress",
        "officer1 has not signed again"
    );
    one.sync();
    one.ok(&["complete", &id]);
    one.sync();
    assert_eq!(record(&supervisor, instruction).await["state"], "submitted");
    let (_, audit) = server.login("admin").await.get("/api/v1/admin/audit?limit=1000").await;
    let (_, me) = server.login("officer2").await.get("/api/v1/me").await;
    let reopened =
        audit.as_array().unwrap().iter().find(|e| e["action"] == "instruction.result_reopened").unwrap();
    assert_eq!(reopened["actor"], format!("user:{}", me["user"]["id"]));

    // A note is not content: it reopens the result on the record and submits it again at once.
    two.sync();
    two.ok(&["note", &id, "carton 3 checked twice"]);
    two.sync();
    let seen = kinds(&receipts(&operator).await, instruction);
    assert!(
        seen.ends_with(&["result_submitted".into(), "result_reopened".into(), "result_submitted".into()]),
        "{seen:?}"
    );
}

/// The first checklist item of `instruction` measured in `unit`.
async fn measured_item(server: &TestServer, instruction: i64, unit: &str) -> String {
    let (_, i) = server.login("supervisor1").await.get(&format!("/api/v1/instructions/{instruction}")).await;
    let item = i["checklist"].as_array().unwrap().iter().find(|c| c["unit"] == unit);
    item.unwrap_or_else(|| panic!("no item in {unit}: {i}"))["item_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_supervisor_resolves_a_measurement_conflict_and_both_handhelds_receive_the_choice() {
    let server = TestServer::start();
    let instruction = dispatched(&server, &["officer1", "officer2"]).await;
    let item = measured_item(&server, instruction, "°C").await;
    let id = instruction.to_string();
    let (one, two) = (Handheld::new(&server, "officer1"), Handheld::new(&server, "officer2"));
    one.sync();
    two.sync();

    // Finding 5: the unit is the checklist item's, checked before anything is written.
    let out = one.run(&["measure", &id, &item, "-2.2", "°F"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("checks.{item}.unit is in °F; this check item is measured in °C")),
        "{stderr}"
    );

    // Two readings taken offline: a conflict, not a silent pick.
    one.ok(&["measure", &id, &item, "-19", "°C"]);
    two.ok(&["measure", &id, &item, "-16.5", "°C"]);
    one.sync();
    two.sync();
    let supervisor = server.login("supervisor1").await;
    let view = record(&supervisor, instruction).await;
    let path = format!("checks.{item}.value");
    assert_eq!(view["conflicts"].as_array().unwrap().len(), 1, "{view}");
    assert_eq!(view["conflicts"][0]["path"], path.as_str());
    let mut seen: Vec<(String, String)> = view["conflicts"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["officer"].as_str().unwrap().to_owned(), v["value"].as_str().unwrap().to_owned()))
        .collect();
    seen.sort();
    assert_eq!(seen, [("officer1".into(), "-19".into()), ("officer2".into(), "-16.5".into())]);

    // Refused choices say what to fix and write nothing.
    let resolve = format!("/api/v1/instructions/{instruction}/resolve");
    let reason = "the second probe was calibrated this morning";
    let cases = [
        (
            json!({"path": "verdict.value", "value": {"value": "conforming"}, "reason": reason}),
            409,
            "no_such_conflict",
        ),
        (json!({"path": path, "value": "pass", "reason": reason}), 422, "invalid_value"),
        (json!({"path": path, "value": {"value": -16.5, "unit": "°F"}, "reason": reason}), 422, "wrong_unit"),
        (
            json!({"path": path, "value": {"value": -16.5, "unit": "°C"}, "reason": " "}),
            422,
            "missing_reason",
        ),
    ];
    for (body, status, code) in cases {
        let (got, answer) = supervisor.post(&resolve, body.clone()).await;
        assert_eq!((got, answer["code"].as_str()), (status, Some(code)), "{body} → {answer}");
    }
    assert_eq!(record(&supervisor, instruction).await["heads"], view["heads"], "nothing written");
    let (status, body) = server
        .login("officer1")
        .await
        .post(&resolve, json!({"path": path, "value": {"value": -19, "unit": "°C"}, "reason": reason}))
        .await;
    assert_eq!(status, 403, "officers do not resolve their own conflicts: {body}");

    let chosen = json!({"path": path, "value": {"value": -16.5, "unit": "°C"}, "reason": reason});
    let (status, body) = supervisor.post(&resolve, chosen).await;
    assert_eq!(status, 200, "{body}");
    let view = record(&supervisor, instruction).await;
    assert_eq!(view["conflicts"], json!([]), "{view}");
    assert_eq!(view["record"]["checks"][&item]["measurement"], json!({"value": -16.5, "unit": "°C"}));
    assert_eq!(view["record"]["checks"][&item]["last_edit"]["by"], "supervisor1");
    let (_, audit) = server.login("admin").await.get("/api/v1/admin/audit?limit=1000").await;
    let entry = audit.as_array().unwrap().iter().find(|e| e["action"] == "instruction.conflict_resolved");
    assert_eq!(entry.unwrap()["details"]["reason"], reason);

    // Both handhelds receive the resolution like any other change.
    for h in [&one, &two] {
        h.sync();
        let shown = h.ok(&["show", &id]);
        assert_eq!(shown["conflicts"], json!([]), "{shown}");
        assert_eq!(shown["record"]["checks"][&item]["measurement"]["value"], -16.5);
    }
}
