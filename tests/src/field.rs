//! Offline-sync fixtures shared by the end-to-end tests: an instruction dispatched the way production
//! does it (filed, approved, on-site, assigned) and real `handheld` processes with their own data dirs.
//!
//! The dispatch itself is [`crate::dispatch`]; the officers sync with the demo handhelds.

use std::{
    path::Path,
    process::{Command, Output},
};

use serde_json::Value;

use crate::{Api, TestServer, binary};

/// The application every field test files (kept under its old name for the tests that use it).
pub use crate::dispatch::{dispatched, dispatched_with, frozen_fish_application as content, user_id};

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

    /// Runs a command that must succeed, without `--json`: what an officer reads.
    pub fn text(&self, args: &[&str]) -> String {
        let out =
            Command::new(binary("handheld")).arg("--dir").arg(self.dir.path()).args(args).output().unwrap();
        assert!(out.status.success(), "handheld {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("UTF-8 output")
    }

    pub fn sync(&self) -> Value {
        self.ok(&["sync"])
    }

    /// A sync the server refused something of: it must exit with status 2 and still print its report.
    pub fn sync_refused(&self) -> Value {
        let out = self.run(&["sync"]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "a sync with refusals exits 2:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("handheld --json prints JSON")
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// An instruction dispatched to officer1 and officer2, each with a registered handheld (not yet synced).
pub struct TwoOfficers {
    pub instruction: i64,
    /// The instruction id as the handheld commands take it.
    pub id: String,
    pub items: Vec<String>,
    pub one: Handheld,
    pub two: Handheld,
}

pub async fn two_officers(server: &TestServer) -> TwoOfficers {
    let instruction = dispatched(server, &["officer1", "officer2"]).await;
    let items = items(server, instruction).await;
    let (one, two) = (Handheld::new(server, "officer1"), Handheld::new(server, "officer2"));
    TwoOfficers { instruction, id: instruction.to_string(), items, one, two }
}
