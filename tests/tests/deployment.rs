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
fn a_demo_start_without_its_fixtures_fails_before_touching_the_data_dir_and_names_the_setting() {
    let elsewhere = tempfile::tempdir().unwrap();
    let data_dir = elsewhere.path().join("data");
    let out = std::process::Command::new(binary("fieldcheck"))
        .current_dir(elsewhere.path())
        .env_remove("FIELDCHECK__DEMO__FIXTURES_DIR")
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data_dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("FIELDCHECK__DEMO__FIXTURES_DIR"), "{stderr}");
    assert!(!data_dir.exists(), "nothing was created");
}
