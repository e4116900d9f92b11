//! Restarts, crashes and the audit chain: what was acknowledged stays, what was tampered with is found.

use fieldcheck_tests::TestServer;
use serde_json::json;

#[tokio::test]
async fn a_graceful_restart_keeps_accounts_sessions_and_keys() {
    let mut server = TestServer::start();
    let admin = server.login("admin").await;
    let (status, _) = admin
        .post(
            "/api/v1/admin/users",
            json!({"username": "reviewer9", "display_name": "R9", "password": "long-enough-pw",
            "role": "reviewer", "unit_code": "5300"}),
        )
        .await;
    assert_eq!(status, 201);
    let (_, pair) = server
        .api()
        .post("/api/v1/auth/login", json!({"username": "reviewer9", "password": "long-enough-pw"}))
        .await;

    assert!(server.stop().success(), "SIGTERM shuts down cleanly");
    server.restart();

    let (status, _) = server
        .api()
        .post("/api/v1/auth/login", json!({"username": "reviewer9", "password": "long-enough-pw"}))
        .await;
    assert_eq!(status, 200, "the user survived the restart");
    let old_access = server.api().with_token(pair["access_token"].as_str().unwrap());
    assert_eq!(
        old_access.get("/api/v1/me").await.0,
        200,
        "the signing key survived: old tokens still verify"
    );
    let (status, _) =
        server.api().post("/api/v1/auth/refresh", json!({"refresh_token": pair["refresh_token"]})).await;
    assert_eq!(status, 200, "the session survived");
    let (_, users) = server.login("admin").await.get("/api/v1/admin/users").await;
    assert_eq!(
        users.as_array().unwrap().iter().filter(|u| u["username"] == "officer1").count(),
        1,
        "demo data not loaded twice"
    );
}

#[tokio::test]
async fn a_killed_server_loses_nothing_it_acknowledged() {
    let mut server = TestServer::start();
    let admin = server.login("admin").await;
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let code = format!("{:04}", 6000 + i);
        let (status, unit) = admin
            .post(
                "/api/v1/admin/units",
                json!({"code": code, "name": format!("Site {i}"), "kind": "site", "parent_code": "5300"}),
            )
            .await;
        assert_eq!(status, 201);
        acknowledged.push(unit["code"].as_str().unwrap().to_string());
    }
    server.kill();
    server.restart();
    let (_, units) = server.login("admin").await.get("/api/v1/units").await;
    let codes: Vec<&str> = units.as_array().unwrap().iter().map(|u| u["code"].as_str().unwrap()).collect();
    for code in &acknowledged {
        assert!(codes.contains(&code.as_str()), "unit {code} was acknowledged but is gone");
    }
    let (_, report) = server.login("admin").await.get("/api/v1/admin/audit/verify").await;
    assert_eq!(report["first_broken"], serde_json::Value::Null);
}

/// Writers sent concurrently are committed in groups (one fsync for several). A SIGKILL while groups are
/// being committed must leave every acknowledged write of every group stored, and of the writes that were
/// in flight only whole ones: each unit stored is one that was sent, with its audit entry (the chain
/// verifies).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_killed_during_group_commits_keeps_every_acknowledged_write_and_nothing_half_written() {
    const WRITERS: usize = 12;
    let mut server = TestServer::start();
    let admin = server.login("admin").await;
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sent = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (admin, acknowledged, sent) = (admin.clone(), acknowledged.clone(), sent.clone());
            tokio::spawn(async move {
                // Until the server dies: each writer keeps one request in flight.
                for i in 0..200 {
                    let code = format!("{}", 7000 + w * 200 + i);
                    sent.lock().unwrap().push(code.clone());
                    let answer = admin
                        .try_send(
                            reqwest::Method::POST,
                            "/api/v1/admin/units",
                            Some(json!({"code": code, "name": format!("Grouped {code}"), "kind": "site",
                                        "parent_code": "5300"})),
                        )
                        .await;
                    match answer {
                        Ok((201, _)) => acknowledged.lock().unwrap().push(code),
                        Ok((status, body)) => panic!("unit {code}: {status} {body}"),
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    // Kill once groups are being committed: more writes than commits, and some acknowledged.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let writes = server.metric("fieldcheck_db_writes_total").await;
        let commits = server.metric("fieldcheck_db_commits_total").await;
        if acknowledged.lock().unwrap().len() >= 3 * WRITERS && writes > commits {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no group formed ({writes} writes, {commits} commits)");
        tokio::task::yield_now().await;
    }
    server.kill();
    for w in writers {
        w.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    server.restart();
    let admin = server.login("admin").await;
    let (_, units) = admin.get("/api/v1/units").await;
    let stored: Vec<String> = units
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["name"].as_str().is_some_and(|n| n.starts_with("Grouped ")))
        .map(|u| u["code"].as_str().unwrap().to_owned())
        .collect();
    for code in &acknowledged {
        assert!(stored.contains(code), "unit {code} was acknowledged but is gone");
    }
    // In flight when killed: at most one request per writer, stored whole or not at all; nothing that
    // was never sent.
    let sent = sent.lock().unwrap().clone();
    assert!(stored.iter().all(|code| sent.contains(code)), "a unit nobody sent is stored");
    assert!(
        stored.len() <= acknowledged.len() + WRITERS,
        "{} stored, {} acknowledged",
        stored.len(),
        acknowledged.len()
    );
    let (_, report) = admin.get("/api/v1/admin/audit/verify").await;
    assert_eq!(report["first_broken"], serde_json::Value::Null);
}

#[tokio::test]
async fn the_audit_chain_verifies_and_a_tampered_row_is_named() {
    let mut server = TestServer::start();
    let (status, _) = server
        .api()
        .post("/api/v1/auth/login", json!({"username": "admin", "password": "wrong-password"}))
        .await;
    assert_eq!(status, 401);
    let admin = server.login("admin").await;
    let (_, entries) = admin.get("/api/v1/admin/audit?limit=1000").await;
    let actions: Vec<&str> =
        entries.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"auth.login_failed"), "failed logins are audited: {actions:?}");
    assert!(actions.contains(&"device.register") && actions.contains(&"user.create"));
    let (_, report) = admin.get("/api/v1/admin/audit/verify").await;
    assert_eq!(report["first_broken"], serde_json::Value::Null);
    let entries_count = report["entries"].as_i64().unwrap();
    assert!(server.stop().success());

    let ok = server.cli(&["admin", "verify-audit"]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains(&format!("{entries_count} entries")));

    let db = rusqlite::Connection::open(server.data_dir().join("fieldcheck.sqlite3")).unwrap();
    let refused = db.execute("UPDATE audit_log SET actor = 'user:999' WHERE seq = 7", []);
    assert!(refused.is_err(), "the log refuses SQL updates");
    // Someone with file access works around the trigger; the chain still catches it.
    db.execute_batch(
        "DROP TRIGGER audit_log_no_update; UPDATE audit_log SET actor = 'user:999' WHERE seq = 7;",
    )
    .unwrap();
    drop(db);
    let broken = server.cli(&["admin", "verify-audit"]);
    assert_eq!(broken.status.code(), Some(2));
    let out = String::from_utf8_lossy(&broken.stdout);
    assert!(out.contains("BROKEN at entry 7"), "{out}");
}

#[tokio::test]
async fn admin_commands_work_on_the_data_dir_and_the_server_sees_them() {
    let mut server = TestServer::start();
    assert!(server.stop().success());
    let out = server.cli(&[
        "admin",
        "create-unit",
        "--code",
        "7100",
        "--name",
        "Demo Guangzhou",
        "--kind",
        "customs",
        "--parent",
        "0000",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = std::process::Command::new(fieldcheck_tests::binary("fieldcheck"))
        .args([
            "admin",
            "create-user",
            "--username",
            "sup-gz",
            "--display-name",
            "GZ chief",
            "--role",
            "supervisor",
            "--unit",
            "7100",
            "--data-dir",
        ])
        .arg(server.data_dir())
        .env("FIELDCHECK_PASSWORD", "long-enough-pw")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bad = server.cli(&[
        "admin",
        "create-enterprise",
        "--customs-code",
        "12",
        "--uscc",
        "x",
        "--name",
        "n",
        "--credit-rating",
        "general",
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("10 digits"));

    server.restart();
    let (status, body) = server
        .api()
        .post("/api/v1/auth/login", json!({"username": "sup-gz", "password": "long-enough-pw"}))
        .await;
    assert_eq!(status, 200, "{body}");
}
