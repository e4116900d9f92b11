//! `handheld watch` end to end: a real `handheld` process kept connected to the real server's WebSocket,
//! other real processes (a colleague's handheld, an edit command on the same device, a supervisor's
//! dispatch) changing things meanwhile, and what the watch prints and stores.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Stdio},
    sync::mpsc,
    time::Duration,
};

use fieldcheck_tests::{
    TestServer,
    field::{Handheld, TwoOfficers, dispatched, items, record, two_officers},
};
use serde_json::Value;

/// How long any one expected line may take: generous, it only bounds a failing test.
const DEADLINE: Duration = Duration::from_secs(60);

/// A running `handheld --json watch …`, its lines read as they come.
struct Watching {
    child: Child,
    lines: mpsc::Receiver<Value>,
    seen: Vec<Value>,
}

impl Watching {
    fn start(h: &Handheld, args: &[&str]) -> Watching {
        let mut child = h.command(args).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        Watching { child, lines, seen: Vec::new() }
    }

    /// The next line whose `event` is `event` (earlier lines are kept in `seen`).
    fn until(&mut self, event: &str) -> Value {
        loop {
            match self.lines.recv_timeout(DEADLINE) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line["event"] == event {
                        return line;
                    }
                }
                Err(e) => panic!("no `{event}` line ({e}); the watch printed: {:#?}", self.seen),
            }
        }
    }

    /// Waits for the watch to end by itself: its last line, and a successful exit.
    fn ended(mut self) -> Value {
        let last = self.until("ended");
        let status = self.child.wait().unwrap();
        assert!(status.success(), "the watch exited with {status}: {:#?}", self.seen);
        last
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_watching_handheld_takes_a_colleagues_edit_as_soon_as_it_is_stored_and_keeps_it() {
    let server = TestServer::start();
    let TwoOfficers { instruction, id, items, one, two } = two_officers(&server).await;
    two.sync();
    let mut watch = Watching::start(&one, &["watch", "--changes", "1", "--for", "120"]);
    assert_eq!(watch.until("synced")["records"], 1);
    assert_eq!(watch.until("watching")["records"], 1);

    two.ok(&["check", &id, &items[1], "pass"]);
    two.sync();
    let changed = watch.until("changed");
    assert_eq!(changed["instruction_id"], id, "{changed}");
    assert_eq!(changed["record"]["checks_done"], 1, "{changed}");
    let ended = watch.ended();
    assert_eq!(ended["ended"], "changes", "{ended}");
    assert_eq!(ended["connections"], 1, "{ended}");

    // Stored on the device before it was printed: the record as the server holds it.
    let shown = one.ok(&["show", &id]);
    assert_eq!(shown["record"]["checks"][&items[1]]["result"], "pass", "{shown}");
    assert_eq!(shown["record"]["checks"][&items[1]]["last_edit"]["by"], "officer2", "{shown}");
    let view = record(&server.login("supervisor1").await, instruction).await;
    assert_eq!(shown["record"], view["record"]);
}

#[tokio::test]
async fn an_edit_made_beside_a_watch_goes_out_by_itself_and_a_new_assignment_arrives_with_its_record() {
    let server = TestServer::start();
    let instruction = dispatched(&server, &["officer1"]).await;
    let items = items(&server, instruction).await;
    let id = instruction.to_string();
    let one = Handheld::new(&server, "officer1");
    let mut watch = Watching::start(&one, &["watch", "--for", "120"]);
    watch.until("watching");

    // The watch leaves the store unlocked while it waits: an edit command runs beside it.
    one.ok(&["check", &id, &items[0], "fail"]);
    let sent = watch.until("sent");
    assert_eq!((sent["records"].as_u64(), sent["changes"].as_u64()), (Some(1), Some(1)), "{sent}");
    let view = record(&server.login("supervisor1").await, instruction).await;
    assert_eq!(view["record"]["checks"][&items[0]]["result"], "fail", "the server stored it: {view}");

    let second = dispatched(&server, &["officer1"]).await;
    let assigned = watch.until("assigned");
    assert_eq!(assigned["instruction_ids"], serde_json::json!([second.to_string()]), "{assigned}");
    // Stopped as an officer stops it (the process killed): what it printed was stored before.
    drop(watch);

    let listed: Vec<i64> =
        one.ok(&["list"]).as_array().unwrap().iter().map(|r| r["instruction_id"].as_i64().unwrap()).collect();
    assert_eq!(listed, vec![instruction, second], "the new record came with the assignment");
    let status = one.ok(&["status"]);
    assert_eq!(status["pending_edits"], 0, "the edit sent while watching is acknowledged: {status}");
}

#[tokio::test]
async fn a_watch_ends_when_its_time_is_up_having_changed_nothing() {
    let server = TestServer::start();
    let instruction = dispatched(&server, &["officer1"]).await;
    let one = Handheld::new(&server, "officer1");
    let watch = Watching::start(&one, &["watch", "--for", "1"]);
    let ended = watch.ended();
    assert_eq!((ended["ended"].as_str(), ended["changes"].as_u64()), (Some("time"), Some(0)), "{ended}");
    assert_eq!(one.ok(&["list"])[0]["instruction_id"], instruction);
}

#[tokio::test]
async fn a_watch_whose_connection_a_sync_of_the_same_device_replaced_connects_again_and_misses_nothing() {
    let server = TestServer::start();
    let TwoOfficers { id, items, one, two, .. } = two_officers(&server).await;
    two.sync();
    let mut watch = Watching::start(&one, &["watch", "--for", "120"]);
    assert_eq!(watch.until("watching")["connection"], 1);

    // One live connection per device: the sync's takes the watch's place, and the watch comes back.
    one.ok(&["sync", "--transport", "ws"]);
    let gone = watch.until("disconnected");
    assert!(gone["reason"].as_str().unwrap().contains("replaced"), "{gone}");
    assert!(watch.until("watching")["connection"].as_u64().unwrap() >= 2);

    two.ok(&["check", &id, &items[2], "fail"]);
    two.sync();
    let changed = watch.until("changed");
    assert_eq!(changed["record"]["checks_done"], 1, "{changed}");
    drop(watch);
    assert_eq!(one.ok(&["show", &id])["record"]["checks"][&items[2]]["result"], "fail");
}
