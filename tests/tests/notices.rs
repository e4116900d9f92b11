//! Printed notices: the inspection notice, the booking confirmation, the disposal notice and the release
//! slip, read back with poppler (`pdftotext`, `pdftoppm`) and their QR codes decoded with `zbarimg` to a
//! URL the server verifies.

use std::process::Command;

use fieldcheck_tests::{
    Api, TestServer,
    booking::{MONDAY, issue_instructions, set_calendar, slots},
    certificates::released,
    field::{Handheld, dispatched, items},
};
use serde_json::{Value, json};

/// Runs a command-line tool that must succeed; answers its standard output.
fn tool(program: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} is missing ({e}): scripts/test.sh installs it"));
    assert!(out.status.success(), "{program} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// What a printed notice shows: its number (header), its text and the URL its QR code decodes to.
struct Printed {
    number: String,
    text: String,
    url: String,
}

async fn print(api: &Api, kind: &str, id: i64) -> (u16, Result<Printed, Value>) {
    let path = format!("/api/v1/notices/{kind}/{id}/print");
    let (status, headers, body) = api.bytes(reqwest::Method::POST, &path, &[], None).await;
    if status != 200 {
        return (status, Err(serde_json::from_slice(&body).unwrap_or(Value::Null)));
    }
    assert_eq!(headers["content-type"], "application/pdf");
    let number = headers["x-notice-number"].to_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notice.pdf");
    std::fs::write(&file, &body).unwrap();
    let file = file.to_str().unwrap();
    let text = String::from_utf8(tool("pdftotext", &["-layout", file, "-"])).unwrap();
    let prefix = dir.path().join("page");
    tool("pdftoppm", &["-r", "150", "-f", "1", "-l", "1", "-png", file, prefix.to_str().unwrap()]);
    let png = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "png"))
        .expect("pdftoppm wrote a PNG");
    let url = String::from_utf8(tool("zbarimg", &["--quiet", "--raw", png.to_str().unwrap()])).unwrap();
    (status, Ok(Printed { number, text, url: url.trim().to_owned() }))
}

async fn verified(url: &str) -> (u16, Value) {
    let resp = reqwest::Client::new().get(url).header("accept", "application/json").send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

fn contains_all(text: &str, expected: &[&str]) {
    for e in expected {
        assert!(text.contains(e), "`{e}` is not in the printed text:\n{text}");
    }
}

#[tokio::test]
async fn an_inspection_notice_and_a_booking_confirmation_print_bilingually_with_a_qr_code_that_verifies() {
    let server = TestServer::start();
    server.set_clock(MONDAY).await;
    set_calendar(&server, 1, true, &[]).await;
    let ent = server.login("ent1-operator").await;
    let instruction = issue_instructions(&server, &ent, 1).await[0];
    let (_, i) = ent.get(&format!("/api/v1/instructions/{instruction}")).await;
    let inspection_no = i["inspection_no"].as_str().unwrap().to_owned();

    let (status, notice) = print(&ent, "inspection_notice", instruction).await;
    let notice = notice.unwrap_or_else(|e| panic!("{status}: {e}"));
    assert_eq!(notice.number, format!("IN{inspection_no}01"));
    contains_all(
        &notice.text,
        &[
            "查检通知书",
            "Inspection Notice",
            &notice.number,
            &inspection_no,
            "Frozen sockeye salmon",
            "查检地点",
            "Inspection site",
            "完成期限",
            "Deadline",
            "Eastern Orchard Export",
        ],
    );
    assert!(
        notice.url.starts_with(&format!("{}/verify/{}?digest=", server.base, notice.number)),
        "{}",
        notice.url
    );
    let (status, v) = verified(&notice.url).await;
    assert_eq!(
        (status, v["status"].as_str(), v["type"].as_str()),
        (200, Some("valid"), Some("inspection_notice")),
        "{v}"
    );
    assert_eq!(v["title_zh"], "查检通知书");
    // A reprint of the same facts is the same notice; customs may print it too.
    let (_, again) = print(&server.login("supervisor1").await, "inspection_notice", instruction).await;
    assert_eq!(again.unwrap().number, notice.number);
    // A changed digest is not this notice.
    let altered = notice.url.replace("digest=", "digest=00");
    assert_eq!(verified(&altered).await.0, 404);
    // Another enterprise learns nothing.
    let (status, body) = print(&server.login("ent2-operator").await, "inspection_notice", instruction).await;
    assert_eq!((status, body.err().unwrap()["code"].as_str()), (404, Some("not_found")));

    let start = slots(&ent, "2026-12-01", "2026-12-04", 1).await.remove(0);
    let (status, booking) =
        ent.post("/api/v1/bookings", json!({"instruction_id": instruction, "starts_at": start})).await;
    assert_eq!((status, booking["state"].as_str()), (201, Some("confirmed")), "{booking}");
    let booking_id = booking["id"].as_i64().unwrap();
    let (status, confirmation) = print(&ent, "booking_confirmation", booking_id).await;
    let confirmation = confirmation.unwrap_or_else(|e| panic!("{status}: {e}"));
    contains_all(
        &confirmation.text,
        &[
            "预约查检确认书",
            "Inspection Booking Confirmation",
            &confirmation.number,
            "查检时段",
            "Inspection slot",
            "2026-12-01T09:00:00+08:00",
        ],
    );
    let (status, v) = verified(&confirmation.url).await;
    assert_eq!((status, v["status"].as_str()), (200, Some("valid")), "{v}");
    // Cancelled, the booking's confirmation no longer holds, and says so.
    let (status, body) = ent.post(&format!("/api/v1/bookings/{booking_id}/cancel"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    let (status, v) = verified(&confirmation.url).await;
    assert_eq!((status, v["status"].as_str(), v["valid"].as_bool()), (200, Some("void"), Some(false)), "{v}");
    let (status, body) = print(&ent, "booking_confirmation", booking_id).await;
    assert_eq!((status, body.err().unwrap()["code"].as_str()), (409, Some("not_confirmed")));
    let (status, body) = print(&ent, "passport", booking_id).await;
    assert_eq!((status, body.err().unwrap()["code"].as_str()), (422, Some("unknown_notice_kind")));
}

#[tokio::test]
async fn released_goods_print_a_release_slip_and_non_conforming_goods_a_disposal_notice() {
    let server = TestServer::start();
    let ent = server.login("ent1-operator").await;
    let goods = released(&server).await;
    let (_, record) = ent.get(&format!("/api/v1/applications/{}/e-record", goods.application_id)).await;
    let e_record = record["number"].as_str().unwrap().to_owned();
    let (status, slip) = print(&ent, "release_slip", goods.application_id).await;
    let slip = slip.unwrap_or_else(|e| panic!("{status}: {e}"));
    assert!(slip.number.starts_with("RS"), "{}", slip.number);
    contains_all(
        &slip.text,
        &["电子底账放行单", "E-record Release Slip", &e_record, "正常 normal", "放行时间", "Released at"],
    );
    let (status, v) = verified(&slip.url).await;
    assert_eq!(
        (status, v["status"].as_str(), v["type"].as_str()),
        (200, Some("valid"), Some("release_slip")),
        "{v}"
    );
    let (status, body) = print(&ent, "disposal_notice", goods.application_id).await;
    assert_eq!((status, body.err().unwrap()["code"].as_str()), (409, Some("no_disposal")));

    let instruction = dispatched(&server, &["officer1"]).await;
    let id = instruction.to_string();
    let officer = Handheld::new(&server, "officer1");
    officer.sync();
    for item in items(&server, instruction).await {
        officer.ok(&["check", &id, &item, "pass"]);
    }
    officer.ok(&["verdict", &id, "non_conforming", "--disposal", "destruction"]);
    officer.ok(&["complete", &id]);
    officer.sync();
    let supervisor = server.login("supervisor1").await;
    let (status, body) =
        supervisor.post(&format!("/api/v1/instructions/{instruction}/approve"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    let app = body["application_id"].as_i64().unwrap();
    let (status, body) = print(&ent, "release_slip", app).await;
    assert_eq!((status, body.err().unwrap()["code"].as_str()), (409, Some("not_released")));
    let (status, notice) = print(&ent, "disposal_notice", app).await;
    let notice = notice.unwrap_or_else(|e| panic!("{status}: {e}"));
    contains_all(
        &notice.text,
        &["处置通知书", "Disposal Notice", "不合格 Non-conforming", "销毁", "destruction", "Record digest"],
    );
    let (status, v) = verified(&notice.url).await;
    assert_eq!((status, v["status"].as_str()), (200, Some("valid")), "{v}");
}
