//! Applications through review, selection, instructions and assignment; receipts; scoping; validation.

use std::collections::BTreeSet;

use fieldcheck_tests::{Api, TestServer, now_secs, rfc3339};
use serde_json::{Value, json};

const ENT1: &str = "3101960001";
const ENT2: &str = "4403960002";

fn goods(hs: &str, unit: &str) -> Value {
    json!({"hs_code": hs, "name": "goods", "quantity": 1000.0, "unit": unit, "net_weight_kg": 1000.0,
           "value_usd": 5000.0, "origin_country": "CN"})
}

fn application(applicant: &str, goods: Vec<Value>) -> Value {
    json!({"direction": "export", "district_code": "2200", "site_code": "2201", "applicant_code": applicant,
           "consignor_code": applicant, "consignee_name": "Tokyo Fresh KK", "destination_country": "JP",
           "goods": goods, "certificates": ["phytosanitary"]})
}

/// Frozen fish: an always-inspect rule in the fixtures, so approval always yields an instruction.
fn frozen_fish(applicant: &str) -> Value {
    application(applicant, vec![goods("0303630000", "kg")])
}

async fn draft(api: &Api, body: Value) -> Value {
    let (status, app) = api.post("/api/v1/applications", body).await;
    assert_eq!(status, 201, "{app}");
    app
}

async fn submit(api: &Api, id: &Value) -> (u16, Value) {
    api.post(&format!("/api/v1/applications/{id}/submit"), json!({})).await
}

async fn review(api: &Api, id: &Value, action: &str, opinion: Option<&str>) -> (u16, Value) {
    api.post(&format!("/api/v1/applications/{id}/review"), json!({"action": action, "opinion": opinion}))
        .await
}

async fn receipts(api: &Api, after: i64) -> Vec<Value> {
    let (status, page) = api.get(&format!("/api/v1/receipts?after={after}&limit=500")).await;
    assert_eq!(status, 200, "{page}");
    page["receipts"].as_array().unwrap().clone()
}

#[tokio::test]
async fn an_application_goes_from_draft_through_review_to_an_assigned_instruction() {
    let server = TestServer::start();
    let operator = server.login("ent1-operator").await;
    let reviewer = server.login("reviewer1").await;
    let supervisor = server.login("supervisor1").await;

    let app = draft(&operator, frozen_fish(ENT1)).await;
    assert_eq!(app["state"], "draft");
    assert_eq!(app["inspection_no"], Value::Null);
    let (status, app) = submit(&operator, &app["id"]).await;
    assert_eq!(status, 200, "{app}");
    assert_eq!(app["state"], "submitted");
    let no = app["inspection_no"].as_str().unwrap();
    assert_eq!(no.len(), 15);
    assert!(no.starts_with('2'), "export numbers start with 2: {no}");
    assert_eq!(&no[4..8], "2200");

    let (status, approved) = review(&reviewer, &app["id"], "approve", None).await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["state"], "inspection");
    assert_eq!(approved["disposition"], "on_site");

    let (status, selection) = reviewer.get(&format!("/api/v1/applications/{}/selection", app["id"])).await;
    assert_eq!(status, 200, "{selection}");
    assert_eq!(selection["explanation"]["rule"], "frozen-fish-0303");
    assert_eq!(selection["reproduced"], true, "the stored seed and inputs replay to the stored outcome");

    let (_, instructions) = operator.get("/api/v1/instructions").await;
    let instruction =
        instructions.as_array().unwrap().iter().find(|i| i["application_id"] == app["id"]).unwrap().clone();
    assert_eq!(instruction["state"], "issued");
    assert_eq!(instruction["inspection_no"], no);
    // Lists carry summaries; the checklist is on the item.
    let (_, full) = operator.get(&format!("/api/v1/instructions/{}", instruction["id"])).await;
    let checklist = full["checklist"].as_array().unwrap();
    assert_eq!(instruction["checks"].as_u64(), Some(checklist.len() as u64));
    assert!((8..=20).contains(&checklist.len()), "a frozen-aquatic checklist: {}", checklist.len());
    assert!(checklist.iter().all(|c| c["item_id"].as_str().is_some() && c["title_en"].as_str().is_some()));

    let officer1 = server.login("officer1").await;
    let officer2 = server.login("officer2").await;
    let o1 = officer1.get("/api/v1/me").await.1["user"]["id"].clone();
    let o2 = officer2.get("/api/v1/me").await.1["user"]["id"].clone();
    let (status, assigned) = supervisor
        .post(&format!("/api/v1/instructions/{}/assign", instruction["id"]), json!({"officer_ids": [o1, o2]}))
        .await;
    assert_eq!(status, 200, "{assigned}");
    assert_eq!(assigned["state"], "assigned");
    assert_eq!(assigned["officers"].as_array().unwrap().len(), 2);
    assert_eq!(officer1.get("/api/v1/instructions").await.1.as_array().unwrap().len(), 1);
    let officer3 = server.login("officer3").await;
    assert_eq!(officer3.get("/api/v1/instructions").await.1.as_array().unwrap().len(), 0);
    assert_eq!(officer3.get(&format!("/api/v1/instructions/{}", instruction["id"])).await.0, 404);

    let kinds: Vec<String> = receipts(&operator, 0)
        .await
        .iter()
        .map(|r| format!("{}:{}", r["subject"], r["kind"]).replace('"', ""))
        .collect();
    for expected in [
        "application:drafted",
        "application:submitted",
        "application:approved",
        "instruction:inspection_notice",
        "instruction:assigned",
    ] {
        assert!(kinds.contains(&expected.to_string()), "missing receipt {expected}: {kinds:?}");
    }

    // Another district's supervisor cannot assign it, and an officer of another site cannot be assigned.
    let other = server.login("supervisor2").await;
    let (status, _) = other
        .post(&format!("/api/v1/instructions/{}/assign", instruction["id"]), json!({"officer_ids": [o1]}))
        .await;
    assert_eq!(status, 404);
    let o3 = officer3.get("/api/v1/me").await.1["user"]["id"].clone();
    let (status, body) = supervisor
        .post(&format!("/api/v1/instructions/{}/assign", instruction["id"]), json!({"officer_ids": [o3]}))
        .await;
    assert_eq!((status, body["code"].as_str()), (422, Some("not_an_officer_here")));
}

#[tokio::test]
async fn a_returned_application_is_amended_and_resubmitted_keeping_its_number_and_history() {
    let server = TestServer::start();
    let operator = server.login("ent1-operator").await;
    let reviewer = server.login("reviewer1").await;
    let app = draft(&operator, frozen_fish(ENT1)).await;
    let (_, submitted) = submit(&operator, &app["id"]).await;
    let no = submitted["inspection_no"].clone();

    let (status, body) = review(&reviewer, &app["id"], "return", None).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("missing_opinion")));
    let (status, returned) =
        review(&reviewer, &app["id"], "return", Some("net weight does not match the invoice")).await;
    assert_eq!(status, 200, "{returned}");
    assert_eq!(returned["state"], "returned");
    let opinion_receipt = receipts(&operator, 0).await.into_iter().find(|r| r["kind"] == "returned").unwrap();
    assert_eq!(opinion_receipt["opinion"], "net weight does not match the invoice");

    let mut amended = frozen_fish(ENT1);
    amended["goods"][0]["net_weight_kg"] = json!(980.0);
    let (status, updated) = operator.put(&format!("/api/v1/applications/{}", app["id"]), amended).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["version"], 2);
    let (status, resubmitted) = submit(&operator, &app["id"]).await;
    assert_eq!(status, 200, "{resubmitted}");
    assert_eq!(resubmitted["inspection_no"], no, "the number is kept");

    let (_, history) = operator.get(&format!("/api/v1/applications/{}/history", app["id"])).await;
    let actions: Vec<&str> =
        history.as_array().unwrap().iter().map(|h| h["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["drafted", "submitted", "returned", "amended", "submitted"]);
    assert_eq!(history[2]["content"]["goods"][0]["net_weight_kg"], 1000.0, "the content as it stood is kept");

    // Suspend and resume; a submitted application cannot be edited.
    assert_eq!(
        review(&reviewer, &app["id"], "suspend", Some("waiting for lab results")).await.1["state"],
        "suspended"
    );
    let (status, _) = operator.put(&format!("/api/v1/applications/{}", app["id"]), frozen_fish(ENT1)).await;
    assert_eq!(status, 409);
    assert_eq!(review(&reviewer, &app["id"], "resume", None).await.1["state"], "submitted");
    let (status, body) = review(&reviewer, &app["id"], "resume", None).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("wrong_state")));
}

#[tokio::test]
async fn a_copy_is_a_new_draft_with_the_old_content() {
    let server = TestServer::start();
    let operator = server.login("ent1-operator").await;
    let app = draft(&operator, frozen_fish(ENT1)).await;
    submit(&operator, &app["id"]).await;
    let (status, copy) = operator.post(&format!("/api/v1/applications/{}/copy", app["id"]), json!({})).await;
    assert_eq!(status, 201, "{copy}");
    assert_eq!(copy["state"], "draft");
    assert_eq!(copy["copied_from"], app["id"]);
    assert_eq!(copy["inspection_no"], Value::Null);
    assert_eq!(copy["content"], app["content"]);
}

async fn expect_violation(api: &Api, body: Value, rule: &str, field: &str) {
    let app = draft(api, body).await;
    let (status, err) = submit(api, &app["id"]).await;
    assert_eq!((status, err["code"].as_str()), (422, Some("submission_rules")), "{err}");
    let violations = err["details"]["violations"].as_array().unwrap();
    assert!(
        violations.iter().any(|v| v["rule"] == rule && v["field"] == field),
        "expected {rule} at {field}: {violations:?}"
    );
    let (_, still) = api.get(&format!("/api/v1/applications/{}", app["id"])).await;
    assert_eq!(
        (still["state"].as_str(), &still["inspection_no"]),
        (Some("draft"), &Value::Null),
        "nothing half-written"
    );
}

#[tokio::test]
async fn every_submission_rule_refuses_with_its_name_and_field() {
    let server = TestServer::start();
    let op = server.login("ent1-operator").await;
    expect_violation(
        &op,
        application(ENT1, vec![goods("0805109999", "kg")]),
        "unknown_hs_code",
        "goods[0].hs_code",
    )
    .await;
    expect_violation(
        &op,
        application(ENT1, vec![goods("0805100000", "piece")]),
        "wrong_unit",
        "goods[0].unit",
    )
    .await;
    expect_violation(
        &op,
        application(ENT1, vec![goods("9403609900", "piece"), goods("4419121000", "kg")]),
        "producer_not_registered",
        "goods[1].producer_registration_no",
    )
    .await;
    let mut zero = goods("0805100000", "kg");
    zero["quantity"] = json!(0);
    expect_violation(&op, application(ENT1, vec![zero]), "not_positive", "goods[0].quantity").await;
    expect_violation(&op, application(ENT1, vec![]), "goods_count", "goods").await;
    let mut consignor = application(ENT1, vec![goods("0805100000", "kg")]);
    consignor["consignor_code"] = json!("9999999999");
    expect_violation(&op, consignor, "unknown_enterprise", "consignor_code").await;
    let mut consignee = application(ENT1, vec![goods("0805100000", "kg")]);
    consignee["consignee_name"] = json!("  ");
    expect_violation(&op, consignee, "required", "consignee_name").await;
    let mut unnamed = goods("0805100000", "kg");
    unnamed["name"] = json!("");
    expect_violation(&op, application(ENT1, vec![unnamed]), "invalid_text", "goods[0].name").await;
    let mut negative = goods("0805100000", "kg");
    negative["value_usd"] = json!(-5);
    expect_violation(&op, application(ENT1, vec![negative]), "not_positive", "goods[0].value_usd").await;
    // Several broken rules come back together, so the filer fixes them in one go.
    let app =
        draft(&op, application(ENT1, vec![goods("0805109999", "kg"), goods("0805100000", "piece")])).await;
    let (_, err) = submit(&op, &app["id"]).await;
    assert_eq!(err["details"]["violations"].as_array().unwrap().len(), 2, "{err}");
}

#[tokio::test]
async fn a_registered_producer_makes_wood_goods_acceptable_until_its_registration_lapses() {
    let server = TestServer::start();
    let op = server.login("ent2-operator").await;
    let mut line = goods("4419121000", "kg");
    line["producer_registration_no"] = json!("3702ZMC0158");
    let app = draft(&op, application(ENT2, vec![line.clone()])).await;
    let (status, body) = submit(&op, &app["id"]).await;
    // ent2's district is 5300 in the demo, but any district may receive an application; 2200 here.
    assert_eq!(status, 200, "{body}");
    // A nursery registration that lapses at the end of 2026 (fixtures): valid now, refused after.
    let mut plants = goods("0602909200", "piece");
    plants["producer_registration_no"] = json!("4401ZMY0032");
    let plants_app = draft(&op, application(ENT2, vec![plants])).await;
    server.set_clock(1_798_761_600 + 86_400).await; // 2027-01-02
    let op = server.login("ent2-operator").await;
    let (status, err) = submit(&op, &plants_app["id"]).await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["details"]["violations"][0]["rule"], "producer_not_registered");
}

#[tokio::test]
async fn drafts_check_the_applicant_district_and_site_at_once() {
    let server = TestServer::start();
    let op = server.login("ent1-operator").await;
    let (status, err) = op.post("/api/v1/applications", frozen_fish(ENT2)).await;
    assert_eq!((status, err["code"].as_str()), (403, Some("forbidden")), "not ours to file for");
    let mut bad_site = frozen_fish(ENT1);
    bad_site["site_code"] = json!("5301");
    let (status, err) = op.post("/api/v1/applications", bad_site).await;
    assert_eq!((status, err["code"].as_str()), (422, Some("unknown_site")));
    let mut bad_district = frozen_fish(ENT1);
    bad_district["district_code"] = json!("2201");
    let (status, err) = op.post("/api/v1/applications", bad_district).await;
    assert_eq!((status, err["code"].as_str()), (422, Some("unknown_district")));
    let mut bad_hs = frozen_fish(ENT1);
    bad_hs["goods"][0]["hs_code"] = json!("03036300");
    let (status, err) = op.post("/api/v1/applications", bad_hs).await;
    assert_eq!(status, 422);
    assert!(err["message"].as_str().unwrap().contains("exactly 10 digits"), "{err}");
    let mut bad_country = frozen_fish(ENT1);
    bad_country["destination_country"] = json!("Japan");
    assert_eq!(op.post("/api/v1/applications", bad_country).await.0, 422);
    let mut bad_code = frozen_fish(ENT1);
    bad_code["consignor_code"] = json!("31019600");
    let (status, err) = op.post("/api/v1/applications", bad_code).await;
    assert_eq!(status, 422);
    assert!(err["message"].as_str().unwrap().contains("exactly 10 digits"), "{err}");
    let mut bad_certificate = frozen_fish(ENT1);
    bad_certificate["certificates"] = json!(["gold_star"]);
    assert_eq!(op.post("/api/v1/applications", bad_certificate).await.0, 422);
}

#[tokio::test]
async fn two_hundred_concurrent_submissions_get_unique_gapless_serials() {
    let server = TestServer::start();
    let op = server.login("ent1-operator").await;
    let mut ids = Vec::new();
    for _ in 0..200 {
        ids.push(draft(&op, frozen_fish(ENT1)).await["id"].clone());
    }
    let submissions = ids.iter().map(|id| {
        let op = op.clone();
        let id = id.clone();
        tokio::spawn(async move { submit(&op, &id).await })
    });
    let mut serials = Vec::new();
    for handle in submissions {
        let (status, app) = handle.await.unwrap();
        assert_eq!(status, 200, "{app}");
        serials.push(app["inspection_no"].as_str().unwrap()[8..].parse::<u32>().unwrap());
    }
    serials.sort_unstable();
    assert_eq!(serials, (1..=200).collect::<Vec<u32>>(), "unique and gapless");
}

#[tokio::test]
async fn a_batch_review_applies_each_item_on_its_own() {
    let server = TestServer::start();
    let op = server.login("ent1-operator").await;
    let reviewer = server.login("reviewer1").await;
    let a = draft(&op, frozen_fish(ENT1)).await;
    let b = draft(&op, frozen_fish(ENT1)).await;
    submit(&op, &a["id"]).await;
    // b stays a draft: approving it must fail without undoing a.
    let (status, results) = reviewer
        .post("/api/v1/reviews", json!({"application_ids": [a["id"], b["id"], 999_999], "action": "approve"}))
        .await;
    assert_eq!(status, 200, "{results}");
    assert_eq!(results[0]["state"], "inspection");
    assert_eq!(results[1]["error"]["code"], "wrong_state");
    assert_eq!(results[2]["error"]["code"], "not_found");
}

#[tokio::test]
async fn auto_review_approves_on_submission_and_a_unit_switches_only_its_own_queue() {
    let server = TestServer::start();
    let supervisor = server.login("supervisor1").await;
    let (_, units) = supervisor.get("/api/v1/units").await;
    let unit_id =
        |code: &str| units.as_array().unwrap().iter().find(|u| u["code"] == code).unwrap()["id"].clone();
    let (status, _) = supervisor
        .put(&format!("/api/v1/units/{}/auto-review", unit_id("2201")), json!({"enabled": true}))
        .await;
    assert_eq!(status, 403, "a parent cannot switch a child's queue");
    let other = server.login("supervisor2").await;
    let (status, _) =
        other.put(&format!("/api/v1/units/{}/auto-review", unit_id("2200")), json!({"enabled": true})).await;
    assert_eq!(status, 403, "nor another unit's");
    let (status, _) = supervisor
        .put(&format!("/api/v1/units/{}/auto-review", unit_id("2200")), json!({"enabled": true}))
        .await;
    assert_eq!(status, 200);

    let op = server.login("ent1-operator").await;
    let app = draft(&op, frozen_fish(ENT1)).await;
    let (status, done) = submit(&op, &app["id"]).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["state"], "inspection", "approved by the system at submission");
    let (_, history) = op.get(&format!("/api/v1/applications/{}/history", app["id"])).await;
    let last = history.as_array().unwrap().last().unwrap();
    assert_eq!((last["action"].as_str(), last["actor"].as_str()), (Some("approved"), Some("system")));
}

#[tokio::test]
async fn sampling_ratios_are_data_an_administrator_edits() {
    let server = TestServer::start();
    let admin = server.login("admin").await;
    let (status, _) = admin
        .put(
            "/api/v1/admin/sampling-ratios",
            json!({"chapter": "08", "credit_rating": "advanced_certified", "ratio": 1.0}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, err) = admin
        .put(
            "/api/v1/admin/sampling-ratios",
            json!({"chapter": "08", "credit_rating": "general", "ratio": 1.5}),
        )
        .await;
    assert_eq!((status, err["code"].as_str()), (422, Some("invalid_ratio")));
    // ent1 is advanced-certified: with the ratio at 1, oranges are always inspected.
    let op = server.login("ent1-operator").await;
    let reviewer = server.login("reviewer1").await;
    let app = draft(&op, application(ENT1, vec![goods("0805100000", "kg")])).await;
    submit(&op, &app["id"]).await;
    let (_, approved) = review(&reviewer, &app["id"], "approve", None).await;
    assert_eq!(approved["disposition"], "on_site");
    let (_, selection) = reviewer.get(&format!("/api/v1/applications/{}/selection", app["id"])).await;
    assert_eq!(selection["explanation"]["ratio"], 1.0);
    assert_eq!(selection["explanation"]["ratio_source"], "chapter 08 × advanced_certified");
    // With the ratio at 0 it is never inspected: released or sent to a document check, which a reviewer passes.
    admin
        .put(
            "/api/v1/admin/sampling-ratios",
            json!({"chapter": "08", "credit_rating": "advanced_certified", "ratio": 0.0}),
        )
        .await;
    let app = draft(&op, application(ENT1, vec![goods("0805100000", "kg")])).await;
    submit(&op, &app["id"]).await;
    let (_, approved) = review(&reviewer, &app["id"], "approve", None).await;
    match approved["state"].as_str().unwrap() {
        "released" => {}
        "document_check" => {
            let (_, passed) = review(&reviewer, &app["id"], "documents_pass", None).await;
            assert_eq!(passed["state"], "released");
        }
        other => panic!("a zero ratio must not inspect on site: {other}"),
    }
}

#[tokio::test]
async fn an_enterprise_sees_only_its_own_and_delegated_applications() {
    let server = TestServer::start();
    let ent1 = server.login("ent1-operator").await;
    let app = draft(&ent1, frozen_fish(ENT1)).await;
    let ent2 = server.login("ent2-operator").await;
    assert_eq!(ent2.get(&format!("/api/v1/applications/{}", app["id"])).await.0, 404);
    assert!(ent2.get("/api/v1/applications").await.1.as_array().unwrap().is_empty());
    assert!(receipts(&ent2, 0).await.is_empty());

    // An agent with the applications scope files for ent1 and follows its receipts; bookings alone would not do.
    let legal = server.login("ent1-legal").await;
    let (status, _) = legal
        .post("/api/v1/delegations", json!({"agent_customs_code": "3101980003", "scopes": ["applications"], "valid_until": rfc3339(now_secs() + 86_400)}))
        .await;
    assert_eq!(status, 201);
    let agent = server.login("agent-legal").await;
    assert_eq!(agent.get(&format!("/api/v1/applications/{}", app["id"])).await.0, 200);
    let filed = draft(&agent, frozen_fish(ENT1)).await;
    assert_eq!(filed["enterprise_id"], app["enterprise_id"], "filed for the principal");
    assert!(receipts(&agent, 0).await.iter().any(|r| r["subject_id"] == app["id"]));
}

#[tokio::test]
async fn a_supervisor_sees_only_their_subtree() {
    let server = TestServer::start();
    let op = server.login("ent1-operator").await;
    let app = draft(&op, frozen_fish(ENT1)).await;
    submit(&op, &app["id"]).await;
    let shanghai = server.login("supervisor1").await;
    let shenzhen = server.login("supervisor2").await;
    assert_eq!(shanghai.get(&format!("/api/v1/applications/{}", app["id"])).await.0, 200);
    assert_eq!(shenzhen.get(&format!("/api/v1/applications/{}", app["id"])).await.0, 404);
    assert!(shenzhen.get("/api/v1/applications").await.1.as_array().unwrap().is_empty());
    assert_eq!(review(&shenzhen, &app["id"], "approve", None).await.0, 404);
    let (_, stats) = shanghai.get("/api/v1/stats").await;
    assert!(
        stats.as_array().unwrap().iter().any(|s| s["unit_code"] == "2200"
            && s["subject"] == "application"
            && s["state"] == "submitted"
            && s["count"] == 1),
        "{stats}"
    );
    let (_, stats) = shenzhen.get("/api/v1/stats").await;
    assert!(stats.as_array().unwrap().is_empty(), "{stats}");
}

#[tokio::test]
async fn receipt_paging_under_concurrent_writes_loses_and_repeats_nothing() {
    let server = TestServer::start();
    let op = server.login("ent1-operator").await;
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let op = op.clone();
            tokio::spawn(async move {
                for _ in 0..15 {
                    let app = draft(&op, frozen_fish(ENT1)).await;
                    submit(&op, &app["id"]).await;
                }
            })
        })
        .collect();
    let mut seen = Vec::new();
    let mut cursor = 0;
    let mut writers_done = false;
    loop {
        let (_, page) = op.get(&format!("/api/v1/receipts?after={cursor}&limit=7")).await;
        let batch = page["receipts"].as_array().unwrap();
        seen.extend(batch.iter().map(|r| r["id"].as_i64().unwrap()));
        cursor = page["next_cursor"].as_i64().unwrap();
        if batch.is_empty() && writers_done {
            break;
        }
        writers_done = writers.iter().all(|w| w.is_finished());
    }
    for w in writers {
        w.await.unwrap();
    }
    let unique: BTreeSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no receipt repeated");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "in cursor order");
    let all: Vec<i64> = receipts(&op, 0).await.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(seen, all, "none skipped");
    assert_eq!(all.len(), 4 * 15 * 2, "a drafted and a submitted receipt per application");
}

#[tokio::test]
async fn a_long_poll_returns_when_a_receipt_arrives() {
    let server = TestServer::start();
    let op = server.login("ent1-operator").await;
    let app = draft(&op, frozen_fish(ENT1)).await;
    let cursor = receipts(&op, 0).await.last().unwrap()["id"].as_i64().unwrap();
    let poller = {
        let op = op.clone();
        tokio::spawn(async move { op.get(&format!("/api/v1/receipts?after={cursor}&wait=60")).await })
    };
    submit(&op, &app["id"]).await;
    let (status, page) = poller.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(page["receipts"][0]["kind"], "submitted");
}

#[tokio::test]
async fn a_long_poll_longer_than_the_request_timeout_ends_with_an_empty_page_not_a_408() {
    let server = TestServer::start_with(&[("FIELDCHECK__SERVER__REQUEST_TIMEOUT_SECS", "2")]);
    let op = server.login("ent1-operator").await;
    let (status, page) = op.get("/api/v1/receipts?after=1000000&wait=60").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["receipts"], json!([]));
    assert_eq!(page["next_cursor"], 1_000_000);
}

#[tokio::test]
async fn an_inspection_number_with_a_typo_is_refused_when_searching() {
    let server = TestServer::start();
    let op = server.login("ent1-operator").await;
    let app = draft(&op, frozen_fish(ENT1)).await;
    let (_, app) = submit(&op, &app["id"]).await;
    let no = app["inspection_no"].as_str().unwrap();
    let (_, found) = op.get(&format!("/api/v1/applications?inspection_no={no}")).await;
    assert_eq!(found.as_array().unwrap().len(), 1);
    let (status, err) = op.get("/api/v1/applications?inspection_no=12345").await;
    assert_eq!((status, err["code"].as_str()), (422, Some("invalid_inspection_no")));
    // Two neighbouring digits swapped: caught by the check digit, and the message says so.
    let mut swapped: Vec<char> = no.chars().collect();
    let i = (9..14).find(|i| swapped[*i] != swapped[i + 1]).unwrap_or(4);
    swapped.swap(i, i + 1);
    let swapped: String = swapped.into_iter().collect();
    let (status, err) = op.get(&format!("/api/v1/applications?inspection_no={swapped}")).await;
    assert_eq!((status, err["code"].as_str()), (422, Some("invalid_inspection_no")), "{swapped}");
    assert!(err["message"].as_str().unwrap().contains("check digit"), "{err}");
}
