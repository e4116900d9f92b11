//! Offline-sync fixtures shared by the end-to-end tests: an instruction dispatched the way production
//! does it (filed, approved, on-site, assigned) and real `handheld` processes with their own data dirs.
//!
//! `ent1-operator` files and submits an export of frozen fish (HS 0303, always inspected), `reviewer1`
//! approves, `supervisor1` assigns the officers, who sync with the demo handhelds.

use std::{
    path::Path,
    process::{Command, Output},
};

use serde_json::{Value, json};

use crate::{Api, TestServer, binary};

pub fn content() -> Value {
    json!({
        "direction": "export",
        "district_code": "2200",
        "site_code": "2201",
        "applicant_code": "3101960001",
        "consignor_code": "3101960001",
        "consignee_name": "Osaka Seafood KK",
        "destination_country": "JP",
        "goods": [{
            "hs_code": "0303110000", "name": "frozen sockeye salmon", "quantity": 1200.0, "unit": "kg",
            "net_weight_kg": 1200.0, "value_usd": 9000.0, "origin_country": "CN"
        }],
        "certificates": []
    })
}

pub async fn user_id(server: &TestServer, username: &str) -> i64 {
    let (status, me) = server.login(username).await.get("/api/v1/me").await;
    assert_eq!(status, 200, "{me}");
    me["user"]["id"].as_i64().expect("user id")
}

/// Files, approves and dispatches one instruction to `officers`; answers its id.
pub async fn dispatched(server: &TestServer, officers: &[&str]) -> i64 {
    dispatched_with(server, officers, content()).await
}

/// [`dispatched`] for an application of `content` (an on-site one: its goods must be always inspected).
pub async fn dispatched_with(server: &TestServer, officers: &[&str], content: Value) -> i64 {
    let operator = server.login("ent1-operator").await;
    let (status, app) = operator.post("/api/v1/applications", content).await;
    assert_eq!(status, 201, "{app}");
    let app_id = app["id"].as_i64().unwrap();
    let (status, body) = operator.post(&format!("/api/v1/applications/{app_id}/submit"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    let reviewer = server.login("reviewer1").await;
    let (status, body) =
        reviewer.post(&format!("/api/v1/applications/{app_id}/review"), json!({"action": "approve"})).await;
    assert_eq!(status, 200, "{body}");
    let supervisor = server.login("supervisor1").await;
    let (status, list) = supervisor.get("/api/v1/instructions").await;
    assert_eq!(status, 200, "{list}");
    let instruction = list
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["application_id"] == app_id)
        .unwrap_or_else(|| panic!("no instruction for application {app_id}: {list}"))["id"]
        .as_i64()
        .unwrap();
    let mut ids = Vec::new();
    for officer in officers {
        ids.push(user_id(server, officer).await);
    }
    let (status, body) = supervisor
        .post(&format!("/api/v1/instructions/{instruction}/assign"), json!({"officer_ids": ids}))
        .await;
    assert_eq!(status, 200, "{body}");
    instruction
}

/// The checklist item ids of an instruction, in order.
pub async fn items(server: &TestServer, instruction: i64) -> Vec<String> {
    let (_, i) = server.login("supervisor1").await.get(&format!("/api/v1/instructions/{instruction}")).await;
    i["checklist"].as_array().unwrap().iter().map(|c| c["item_id"].as_str().unwrap().to_owned()).collect()
}

pub async fn record(supervisor: &Api, instruction: i64) -> Value {
    let (status, view) = supervisor.get(&format!("/api/v1/instructions/{instruction}/record")).await;
    assert_eq!(status, 200, "{view}");
    view
}

/// One `handheld` process's data dir.
pub struct Handheld {
    pub dir: tempfile::TempDir,
}

impl Handheld {
    /// Registers the demo handheld of `officer` against `server`.
    pub fn new(server: &TestServer, officer: &str) -> Handheld {
        let h = Handheld { dir: tempfile::tempdir().unwrap() };
        h.ok(&[
            "register",
            "--server",
            &server.base,
            "--username",
            officer,
            "--password",
            "demo-password",
            "--device-id",
            &format!("demo-handheld-{officer}"),
        ]);
        h
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(binary("handheld"));
        c.arg("--dir").arg(self.dir.path()).arg("--json").args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run handheld")
    }

    /// Runs a command that must succeed; answers its JSON output.
    pub fn ok(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "handheld {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("handheld --json prints JSON")
    }

    pub fn sync(&self) -> Value {
        self.ok(&["sync"])
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}
