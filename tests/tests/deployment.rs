//! Deployment (issue 16): backups taken with `fieldcheck admin backup` while the server is under write load,
//! restored with `fieldcheck admin restore` into a new data dir and served again; a demo start from the wrong
//! folder that fails before touching the data dir.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, Ordering},
};

use fieldcheck_tests::{
    TestServer, binary,
    field::content,
    photos::{assigned_instruction, get_bytes, put_photo},
};
use sha2::{Digest, Sha256};

fn fieldcheck(args: &[&str], data_dir: &std::path::Path) -> std::process::Output {
    std::process::Command::new(binary("fieldcheck"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("run fieldcheck")
}

#[tokio::test]
async fn a_backup_taken_under_write_load_restores_every_write_acknowledged_before_it_and_a_valid_audit_chain()
{
    let server = TestServer::start();
    // A photo, so the backup carries the photo store as well as the database.
    let instruction = assigned_instruction(&server, &["officer1"]).await;
    let photo = std::fs::read(fieldcheck_tests::repo_root().join("fixtures/photos/Canon_40D.jpg")).unwrap();
    let sha = hex::encode(Sha256::digest(&photo));
    let (status, body) = put_photo(&server.login("officer1").await, instruction, &photo, "image/jpeg").await;
    assert_eq!(status, 201, "{body}");

    // Four writers keep filing drafts; every acknowledged id is recorded.
    let acked = Arc::new(Mutex::new(Vec::<i64>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for _ in 0..4 {
        let (api, acked, stop) = (server.login("ent1-operator").await, acked.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let (status, app) = api.post("/api/v1/applications", content()).await;
                assert_eq!(status, 201, "{app}");
                acked.lock().unwrap().push(app["id"].as_i64().unwrap());
            }
        }));
    }
    // Wait until the writers are well under way, then back up while they go on.
    while acked.lock().unwrap().len() < 40 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let before_backup = acked.lock().unwrap().clone();
    let backups = tempfile::tempdir().unwrap();
    let file = backups.path().join("fieldcheck.backup");
    let data_dir = server.data_dir().to_path_buf();
    let file_arg = file.clone();
    let out = tokio::task::spawn_blocking(move || {
        fieldcheck(&["admin", "backup", "--to", file_arg.to_str().unwrap()], &data_dir)
    })
    .await
    .unwrap();
    assert!(out.status.success(), "backup: {}", String::from_utf8_lossy(&out.stderr));
    let during = acked.lock().unwrap().len() - before_backup.len();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    assert!(during > 0, "the writers kept writing while the backup ran");

    // A second backup to the same name is refused: a backup never overwrites one.
    let again = fieldcheck(&["admin", "backup", "--to", file.to_str().unwrap()], server.data_dir());
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    // Restore into a new data dir and serve it.
    let restored = tempfile::tempdir().unwrap();
    let out = fieldcheck(&["admin", "restore", "--from", file.to_str().unwrap()], restored.path());
    assert!(out.status.success(), "restore: {}", String::from_utf8_lossy(&out.stderr));
    let out = fieldcheck(&["admin", "verify-audit"], restored.path());
    assert!(
        out.status.success(),
        "audit chain: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let copy = TestServer::start_on(restored);
    let operator = copy.login("ent1-operator").await;
    for id in &before_backup {
        let (status, app) = operator.get(&format!("/api/v1/applications/{id}")).await;
        assert_eq!(status, 200, "application {id}, acknowledged before the backup: {app}");
    }
    let officer = copy.login("officer1").await;
    let (status, _, bytes) = get_bytes(&officer, &format!("/api/v1/photos/{sha}")).await;
    assert_eq!(status, 200);
    assert_eq!(hex::encode(Sha256::digest(&bytes)), sha, "the photo comes back byte for byte");
    // The restored server takes new writes.
    let (status, body) = operator.post("/api/v1/applications", content()).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn a_damaged_backup_restores_nothing_and_says_so() {
    let server = TestServer::start();
    let backups = tempfile::tempdir().unwrap();
    let file = backups.path().join("fieldcheck.backup");
    let out = fieldcheck(&["admin", "backup", "--to", file.to_str().unwrap()], server.data_dir());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // One changed byte in the last part of the file: inside the database snapshot.
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() - 4096;
    bytes[at] ^= 0x55;
    std::fs::write(&file, &bytes).unwrap();
    let target = tempfile::tempdir().unwrap();
    let out = fieldcheck(&["admin", "restore", "--from", file.to_str().unwrap()], target.path());
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("does not match the backup's manifest"), "{stderr}");
    assert!(!target.path().join("fieldcheck.sqlite3").exists(), "no database from a damaged backup");

    // Restoring over a data dir that has a database is refused.
    let out = fieldcheck(&["admin", "restore", "--from", file.to_str().unwrap()], server.data_dir());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already holds a database"));
}

#[test]
fn a_demo_start_from_any_directory_uses_the_built_in_fixtures() {
    let elsewhere = tempfile::tempdir().unwrap();
    let data_dir = elsewhere.path().join("data");
    let mut child = std::process::Command::new(binary("fieldcheck"))
        .current_dir(elsewhere.path())
        .env_remove("FIELDCHECK__DEMO__FIXTURES_DIR")
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data_dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line)
        .unwrap();
    let base =
        line.trim().strip_prefix("fieldcheck listening on ").unwrap_or_else(|| panic!("{line}")).to_string();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (ready, hs) = runtime.block_on(async {
        let client = reqwest::Client::new();
        let ready = client.get(format!("{base}/readyz")).send().await.unwrap().status();
        let login: serde_json::Value = client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&serde_json::json!({"username": "ent1-operator", "password": "demo-password"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let hs = client
            .get(format!("{base}/api/v1/hs-codes/0303630000"))
            .bearer_auth(login["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .status();
        (ready, hs)
    });
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(ready, 200);
    assert_eq!(hs, 200, "the built-in HS table is loaded");
}

#[test]
fn a_demo_start_pointed_at_a_folder_without_fixtures_fails_before_touching_the_data_dir_and_names_the_setting()
 {
    let elsewhere = tempfile::tempdir().unwrap();
    let data_dir = elsewhere.path().join("data");
    let out = std::process::Command::new(binary("fieldcheck"))
        .current_dir(elsewhere.path())
        .env("FIELDCHECK__DEMO__FIXTURES_DIR", elsewhere.path().join("no-such-folder"))
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data_dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("FIELDCHECK__DEMO__FIXTURES_DIR"), "{stderr}");
    assert!(!data_dir.exists(), "nothing was created");
}

/// Copies the repository's reference folders (not the demo's people) into a new folder.
fn reference_copy() -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for folder in ["hs", "checklists", "certificates", "sites"] {
        std::fs::create_dir_all(to.path().join(folder)).unwrap();
        for entry in std::fs::read_dir(fieldcheck_tests::repo_root().join("fixtures").join(folder)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), to.path().join(folder).join(entry.file_name())).unwrap();
        }
    }
    to
}

/// The units the fixtures' site calendars name, created as an administrator would.
fn create_sites(data_dir: &std::path::Path) {
    create_sites_with(&binary("fieldcheck"), data_dir, None)
}

fn create_sites_with(bin: &std::path::Path, data_dir: &std::path::Path, cwd: Option<&std::path::Path>) {
    for (code, kind, parent) in [
        ("0000", "headquarters", None),
        ("2200", "customs", Some("0000")),
        ("2201", "site", Some("2200")),
        ("2202", "site", Some("2200")),
        ("5300", "customs", Some("0000")),
        ("5301", "site", Some("5300")),
        ("5302", "site", Some("5300")),
    ] {
        let mut args = vec!["admin", "create-unit", "--code", code, "--name", code, "--kind", kind];
        if let Some(p) = parent {
            args.extend(["--parent", p]);
        }
        let out = run_in(bin, cwd, &args, data_dir, &[]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

fn run_in(
    bin: &std::path::Path,
    cwd: Option<&std::path::Path>,
    args: &[&str],
    data_dir: &std::path::Path,
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut c = std::process::Command::new(bin);
    if let Some(dir) = cwd {
        c.current_dir(dir);
    }
    c.args(args).arg("--data-dir").arg(data_dir).envs(env.iter().copied()).output().expect("run fieldcheck")
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn reference_data_is_checked_whole_before_anything_is_written_imported_once_and_readyz_waits_for_it() {
    let server = TestServer::start_deployed(tempfile::tempdir().unwrap());
    let (status, ready) = server.api().get("/readyz").await;
    assert_eq!(status, 503);
    let reason = ready["reason"].as_str().unwrap();
    assert!(reason.contains("HS codes") && reason.contains("import-reference"), "{reason}");

    create_sites(server.data_dir());
    // Two mistakes in different files: both are reported, and nothing is written.
    let broken = reference_copy();
    let hs_path = broken.path().join("hs/hs-codes.json");
    let hs = std::fs::read_to_string(&hs_path).unwrap();
    std::fs::write(&hs_path, hs.replacen("\"0303630000\"", "\"030363\"", 1)).unwrap();
    let ratios_path = broken.path().join("hs/sampling-ratios.json");
    let ratios = std::fs::read_to_string(&ratios_path).unwrap();
    std::fs::write(&ratios_path, ratios.replacen("\"general\"", "\"excellent\"", 1)).unwrap();
    let out = server.cli(&["admin", "import-reference", broken.path().to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("`030363` is not 10 digits"), "{stderr}");
    assert!(stderr.contains("unknown credit rating `excellent`"), "{stderr}");
    assert_eq!(server.api().get("/readyz").await.0, 503, "nothing was written");

    let good = reference_copy();
    let dir = good.path().to_str().unwrap();
    let dry = server.cli(&["admin", "import-reference", "--dry-run", dir]);
    assert!(stdout(&dry).contains("dry run, nothing written"), "{}", stdout(&dry));
    assert_eq!(server.api().get("/readyz").await.0, 503, "a dry run writes nothing");

    let first = server.cli(&["admin", "import-reference", dir]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert!(stdout(&first).contains("244 added"), "{}", stdout(&first));
    let (status, ready) = server.api().get("/readyz").await;
    assert_eq!(status, 200, "{ready}");

    let again = server.cli(&["admin", "import-reference", dir]);
    assert_eq!(stdout(&again).trim(), "reference data unchanged");

    // One changed description and one removed rule are reported as such.
    let hs = std::fs::read_to_string(good.path().join("hs/hs-codes.json")).unwrap();
    std::fs::write(good.path().join("hs/hs-codes.json"), hs.replacen("Frozen", "Deep-frozen", 1)).unwrap();
    let risk_path = good.path().join("hs/risk-rules.json");
    let mut risk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&risk_path).unwrap()).unwrap();
    risk["rules"].as_array_mut().unwrap().pop();
    std::fs::write(&risk_path, risk.to_string()).unwrap();
    let changed = stdout(&server.cli(&["admin", "import-reference", dir]));
    assert!(changed.lines().any(|l| l.contains("hs_codes") && l.contains("1 changed")), "{changed}");
    assert!(changed.lines().any(|l| l.contains("risk_rules") && l.contains("1 removed")), "{changed}");
    let audit = server.cli(&["admin", "verify-audit"]);
    assert!(audit.status.success(), "{}", stdout(&audit));
}

/// TLS is terminated in front of the server by a small proxy in the test (`fieldcheck_tests::tls`), as a
/// reverse proxy would in a deployment; its certificate comes from a throwaway private CA.
#[tokio::test]
async fn the_handheld_syncs_over_https_trusting_a_private_ca_file_and_refuses_the_server_without_it() {
    let server = TestServer::start();
    let instruction = fieldcheck_tests::dispatch::dispatched(&server, &["officer1"]).await;
    let tls = fieldcheck_tests::tls::terminate(&server.base);
    let ca = tempfile::tempdir().unwrap();
    let ca_file = ca.path().join("customs-ca.pem");
    std::fs::write(&ca_file, &tls.ca_pem).unwrap();
    let register = |h: &fieldcheck_tests::field::Handheld, extra: &[&str]| {
        let mut args = vec![
            "register",
            "--server",
            &tls.base,
            "--username",
            "officer1",
            "--password",
            "demo-password",
            "--device-id",
            "demo-handheld-officer1",
        ];
        args.extend(extra);
        h.run(&args)
    };
    let untrusting = fieldcheck_tests::field::Handheld { dir: tempfile::tempdir().unwrap() };
    let out = register(&untrusting, &["--attempts", "1"]);
    assert!(!out.status.success(), "a certificate from an unknown CA is refused");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");

    let handheld = fieldcheck_tests::field::Handheld { dir: tempfile::tempdir().unwrap() };
    let out = register(&handheld, &["--ca-file", ca_file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Later commands use the stored CA without being told again.
    handheld.sync();
    let list = handheld.ok(&["list"]);
    assert!(list.to_string().contains(&instruction.to_string()), "{list}");
    // The WebSocket transport goes through the same terminator (`wss://`), trusting the same CA.
    let item = fieldcheck_tests::field::items(&server, instruction).await[0].clone();
    handheld.ok(&["check", &instruction.to_string(), &item, "pass"]);
    let report = handheld.ok(&["sync", "--transport", "ws"]);
    assert_eq!(
        (report["ws"]["connections"].as_u64(), &report["errors"]),
        (Some(1), &serde_json::json!([])),
        "{report}"
    );
    assert!(report["accepted"].as_u64().unwrap() >= 1, "{report}");
}

#[tokio::test]
async fn a_cancelled_instruction_leaves_the_officers_list_and_show_gives_slot_and_deadline() {
    let server = TestServer::start();
    let instruction = fieldcheck_tests::dispatch::dispatched(&server, &["officer1"]).await;
    let id = instruction.to_string();
    let handheld = fieldcheck_tests::field::Handheld::new(&server, "officer1");
    handheld.sync();
    let listed = handheld.ok(&["list"]);
    assert_eq!(listed[0]["instruction_id"], instruction, "ids are numbers: {listed}");
    let shown = handheld.text(&["show", &id]);
    assert!(shown.contains("slot: not booked yet") && shown.contains("deadline: 20"), "{shown}");
    let status = handheld.text(&["status"]);
    assert!(!status.contains("unix ms") && status.contains("last sync: 20"), "{status}");

    let supervisor = server.login("supervisor1").await;
    let (code, body) = supervisor
        .post(
            &format!("/api/v1/instructions/{instruction}/cancel"),
            serde_json::json!({"reason": "goods withdrawn"}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    handheld.sync();
    assert_eq!(handheld.ok(&["list"]), serde_json::json!([]), "a cancelled instruction leaves the list");
}

#[tokio::test]
async fn edits_made_offline_to_an_instruction_cancelled_meanwhile_are_reported_by_sync_and_kept() {
    let server = TestServer::start();
    let instruction = fieldcheck_tests::dispatch::dispatched(&server, &["officer1"]).await;
    let id = instruction.to_string();
    let handheld = fieldcheck_tests::field::Handheld::new(&server, "officer1");
    handheld.sync();
    // Offline, the officer works on the record while customs cancels the instruction.
    handheld.ok(&["note", &id, "pallets 3 and 4 wet"]);
    handheld.ok(&["note", &id, "seal intact"]);
    let supervisor = server.login("supervisor1").await;
    let (code, body) = supervisor
        .post(
            &format!("/api/v1/instructions/{instruction}/cancel"),
            serde_json::json!({"reason": "goods withdrawn"}),
        )
        .await;
    assert_eq!(code, 200, "{body}");

    let out = handheld.run(&["sync"]);
    assert_eq!(
        out.status.code(),
        Some(fieldcheck_handheld::cli::STRANDED_EXIT_CODE),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let stranded = &report["stranded"][0];
    assert_eq!(stranded["instruction_id"], id.as_str(), "{report}");
    assert_eq!((stranded["edits"].as_i64(), stranded["reason"].as_str()), (Some(2), Some("cancelled")));
    assert!(stranded["inspection_no"].is_string(), "{report}");
    // In words, for the officer: which record, how many changes, why, and that they were kept, not sent.
    let text = std::process::Command::new(fieldcheck_tests::binary("handheld"))
        .arg("--dir")
        .arg(handheld.path())
        .arg("sync")
        .output()
        .unwrap();
    assert_eq!(text.status.code(), Some(fieldcheck_handheld::cli::STRANDED_EXIT_CODE));
    let said = String::from_utf8_lossy(&text.stdout);
    assert!(
        said.contains(&format!("NOT SENT: instruction {id} ("))
            && said.contains("2 change(s) and 0 photo(s) — the instruction was cancelled")
            && said.contains("kept on this device and were not sent"),
        "{said}"
    );

    // Nothing is lost: `list` leaves it out, `list --all` shows it with the work kept, `status` counts it.
    assert_eq!(handheld.ok(&["list"]), serde_json::json!([]));
    let all = handheld.ok(&["list", "--all"]);
    assert_eq!(
        (all[0]["instruction_id"].as_i64(), all[0]["assigned"].as_bool()),
        (Some(instruction), Some(false))
    );
    assert_eq!(all[0]["pending"], 2, "{all}");
    assert_eq!(handheld.ok(&["status"])["pending_edits"], 2);
    let shown = handheld.text(&["show", &id]);
    assert!(shown.contains("pallets 3 and 4 wet"), "{shown}");
    // The server has none of it.
    let (_, record) = supervisor.get(&format!("/api/v1/instructions/{instruction}/record")).await;
    assert!(!record.to_string().contains("pallets 3 and 4 wet"), "{record}");
}

/// The binary alone in an empty directory, as an IT team installs it: no repository, no demo. The
/// reference data comes from the repository's `fixtures/` as any customs' own folder would. Set
/// `FIELDCHECK_INSTALL_BINARY` to test another build (scripts/install-test.sh passes the release one).
#[tokio::test]
async fn the_binary_installed_alone_imports_reference_data_and_takes_an_application_to_an_instruction() {
    let install = tempfile::tempdir().unwrap();
    let built =
        std::env::var_os("FIELDCHECK_INSTALL_BINARY").map_or_else(|| binary("fieldcheck"), Into::into);
    let bin = install.path().join("fieldcheck");
    std::fs::copy(&built, &bin).unwrap();
    let data = install.path().join("data");
    let cwd = Some(install.path());
    let admin = |args: &[&str], env: &[(&str, &str)]| {
        let out = run_in(&bin, cwd, args, &data, env);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    create_sites_with(&bin, &data, cwd);
    admin(
        &[
            "admin",
            "create-enterprise",
            "--customs-code",
            "3101960001",
            "--uscc",
            "91320100MA1N2K3P45",
            "--name",
            "Eastern Orchard Export Co., Ltd.",
            "--credit-rating",
            "general",
            "--unit",
            "2200",
        ],
        &[],
    );
    let password = ("FIELDCHECK_PASSWORD", "a long installation password");
    for (user, role, org) in
        [("operator", "enterprise_operator", "--enterprise"), ("reviewer", "reviewer", "--unit")]
    {
        let org_code = if org == "--unit" { "2200" } else { "3101960001" };
        admin(
            &[
                "admin",
                "create-user",
                "--username",
                user,
                "--display-name",
                user,
                "--role",
                role,
                org,
                org_code,
            ],
            &[password],
        );
    }
    let fixtures = fieldcheck_tests::repo_root().join("fixtures");
    admin(&["admin", "import-reference", fixtures.to_str().unwrap()], &[]);

    let mut child = std::process::Command::new(&bin)
        .current_dir(install.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("FIELDCHECK__AUTH__ARGON2_MEMORY_KIB", "1024")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line)
        .unwrap();
    let base =
        line.trim().strip_prefix("fieldcheck listening on ").unwrap_or_else(|| panic!("{line}")).to_string();
    let api = |token: Option<&str>| {
        let api = fieldcheck_tests::Api::new(&base);
        match token {
            Some(t) => api.with_token(t),
            None => api,
        }
    };
    let login = |user: &'static str| {
        let api = api(None);
        async move {
            let (status, body) = api
                .post("/api/v1/auth/login", serde_json::json!({"username": user, "password": password.1}))
                .await;
            assert_eq!(status, 200, "{body}");
            body["access_token"].as_str().unwrap().to_string()
        }
    };
    assert_eq!(api(None).get("/readyz").await.0, 200);
    let operator = api(Some(&login("operator").await));
    let (status, app) =
        operator.post("/api/v1/applications", fieldcheck_tests::dispatch::frozen_fish_application()).await;
    assert_eq!(status, 201, "{app}");
    let app_id = app["id"].as_i64().unwrap();
    let (status, body) =
        operator.post(&format!("/api/v1/applications/{app_id}/submit"), serde_json::json!({})).await;
    assert_eq!(status, 200, "{body}");
    let reviewer = api(Some(&login("reviewer").await));
    let (status, body) = reviewer
        .post(&format!("/api/v1/applications/{app_id}/review"), serde_json::json!({"action": "approve"}))
        .await;
    assert_eq!((status, body["disposition"].as_str()), (200, Some("on_site")), "{body}");
    let (status, list) = operator.get("/api/v1/instructions").await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200);
    let instruction = list.as_array().unwrap().iter().find(|i| i["application_id"] == app_id);
    assert!(
        instruction.is_some_and(|i| i["checks"].as_i64() > Some(0)),
        "an instruction with its checklist: {list}"
    );
}

#[tokio::test]
async fn a_store_belongs_to_one_officer_and_switching_waits_for_the_previous_officers_edits_or_a_discard() {
    let server = TestServer::start();
    let instruction = fieldcheck_tests::dispatch::dispatched(&server, &["officer1"]).await;
    let items = fieldcheck_tests::field::items(&server, instruction).await;
    let id = instruction.to_string();
    let handheld = fieldcheck_tests::field::Handheld::new(&server, "officer1");
    handheld.sync();
    handheld.ok(&["check", &id, &items[0], "pass"]);
    let as_officer2 = |extra: &[&str]| {
        let mut args = vec![
            "register",
            "--server",
            &server.base,
            "--username",
            "officer2",
            "--password",
            "demo-password",
            "--device-id",
            "demo-handheld-officer2",
        ];
        args.extend(extra);
        handheld.run(&args)
    };
    let refused = as_officer2(&[]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("belongs to officer1") && stderr.contains("1 unsynced edit"), "{stderr}");
    assert_eq!(handheld.ok(&["status"])["pending_edits"], 1, "nothing was dropped");

    // Synced first, the switch leaves none of officer1's records behind, and officer2's sync is clean.
    handheld.sync();
    let out = as_officer2(&[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(handheld.ok(&["list"]), serde_json::json!([]));
    handheld.sync();
    assert_eq!(handheld.ok(&["status"])["pending_edits"], 0);

    // Back to officer1 with an edit of officer2's pending: --discard drops it, by choice.
    let other = fieldcheck_tests::dispatch::dispatched(&server, &["officer2"]).await;
    handheld.sync();
    let other_items = fieldcheck_tests::field::items(&server, other).await;
    handheld.ok(&["check", &other.to_string(), &other_items[0], "fail"]);
    let back = |extra: &[&str]| {
        let mut args = vec![
            "register",
            "--server",
            &server.base,
            "--username",
            "officer1",
            "--password",
            "demo-password",
            "--device-id",
            "demo-handheld-officer1",
        ];
        args.extend(extra);
        handheld.run(&args)
    };
    assert!(!back(&[]).status.success());
    let out = back(&["--discard"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    handheld.sync();
    let listed = handheld.ok(&["list"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "only officer1's instruction: {listed}");
    assert_eq!(listed[0]["instruction_id"], instruction);
}
