//! Demo data: `fieldcheck serve --demo` fills an empty data dir from `demo/demo.json` and the reference
//! data (HS table, rules, checklist templates, certificate types, site calendars) the way
//! `admin import-reference` does, from the fixtures compiled into the binary or from `demo.fixtures_dir`.

use std::path::Path;

use anyhow::Context;
use base64::{Engine, engine::general_purpose::STANDARD};
use serde::Deserialize;

use crate::{
    audit::Actor,
    auth::{keys, password},
    config::Settings,
    db::Db,
    devices,
    orgs::{self, NewEnterprise, NewUnit, NewUser, store},
    reference::import::{ReferenceSet, Source},
};

/// The one password every demo account has. Demo mode only: nothing else ever sets it.
pub const DEMO_PASSWORD: &str = "demo-password";
pub const DEMO_KEYS_DIR: &str = "demo-keys";
const DEMO_FILE: &str = "demo/demo.json";

/// The demo's fixtures: `demo.fixtures_dir` when set, else the copy compiled into the binary.
pub fn source(settings: &Settings) -> Source {
    match &settings.demo.fixtures_dir {
        d if d.as_os_str().is_empty() => Source::Embedded,
        d => Source::Dir(d.clone()),
    }
}

/// Checked before the data dir is touched: a demo start pointed at the wrong folder must not leave a fresh,
/// empty database and keys behind.
pub fn check_source(settings: &Settings) -> anyhow::Result<()> {
    if let Source::Dir(d) = source(settings) {
        anyhow::ensure!(
            d.join(DEMO_FILE).exists(),
            "--demo with demo.fixtures_dir = {} needs {DEMO_FILE} in it, and there is none: point \
             demo.fixtures_dir (environment FIELDCHECK__DEMO__FIXTURES_DIR) at a folder laid out like the \
             repository's fixtures/, or leave it empty to use the fixtures built into fieldcheck",
            d.display()
        );
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoFile {
    #[serde(rename = "about")]
    _about: Option<String>,
    units: Vec<NewUnit>,
    enterprises: Vec<NewEnterprise>,
    users: Vec<DemoUser>,
    devices: Vec<DemoDevice>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoUser {
    username: String,
    display_name: crate::domain::Line<200>,
    role: crate::domain::Role,
    unit_code: Option<crate::domain::DistrictCode>,
    enterprise_code: Option<crate::domain::CustomsCode>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoDevice {
    id: String,
    officer: String,
    name: String,
}

/// Loads the demo fixtures unless the database already has users (a restart keeps what is there).
/// Returns whether anything was loaded.
pub fn load_if_empty(db: &Db, settings: &Settings, now: i64) -> anyhow::Result<bool> {
    if db.write_blocking(|tx| Ok::<_, crate::db::StoreError>(store::count_users(tx)?))? > 0 {
        return Ok(false);
    }
    let source = source(settings);
    let text = source
        .read(DEMO_FILE)
        .map_err(anyhow::Error::msg)?
        .with_context(|| format!("the demo fixtures have no {DEMO_FILE}"))?;
    let demo: DemoFile = serde_json::from_str(&text).with_context(|| format!("parsing {DEMO_FILE}"))?;
    let reference = ReferenceSet::read(&source)?;
    // One hash for all demo users: argon2 is slow on purpose and they share the password anyway.
    let hash = password::hash_blocking(DEMO_PASSWORD, settings.auth.argon2_memory_kib)?;
    let keys_dir = settings.storage.data_dir.join(DEMO_KEYS_DIR);
    let mut seeds = Vec::new();
    for u in &demo.users {
        seeds.push((u.username.clone(), keys::random_seed()?));
    }
    db.write_blocking(|tx| -> anyhow::Result<()> {
        let system = Actor::System;
        for unit in demo.units {
            orgs::create_unit(tx, now, &system, unit)?;
        }
        for e in demo.enterprises {
            orgs::create_enterprise(tx, now, &system, e)?;
        }
        for (u, (_, seed)) in demo.users.into_iter().zip(&seeds) {
            let new = NewUser {
                username: u.username,
                display_name: u.display_name,
                password: String::new(),
                role: u.role,
                unit_code: u.unit_code,
                enterprise_code: u.enterprise_code,
                valid_until: None,
            };
            let user = orgs::create_user(tx, now, &system, &new, &hash, orgs::store::Start::ACTIVE)?;
            let public = ed25519_dalek::SigningKey::from_bytes(seed).verifying_key();
            orgs::set_signing_key(tx, now, &system, user.id, &STANDARD.encode(public.as_bytes()))?;
        }
        for d in demo.devices {
            let officer = store::user_by_name(tx, &d.officer)?
                .ok_or_else(|| anyhow::anyhow!("demo officer {} was not found", d.officer))?;
            devices::register(tx, now, officer.id, &d.name, Some(&d.id))?;
        }
        // After the units: the calendars name sites.
        reference.apply(tx, now, &system)?;
        Ok(())
    })
    .map_err(|e| anyhow::anyhow!("loading demo data: {e:#}"))?;
    for (username, seed) in seeds {
        keys::write_secret(&keys_dir.join(format!("{username}.seed")), hex::encode(seed).as_bytes())?;
    }
    Ok(true)
}

/// Where a demo user's signing seed is written.
pub fn key_path(data_dir: &Path, username: &str) -> std::path::PathBuf {
    data_dir.join(DEMO_KEYS_DIR).join(format!("{username}.seed"))
}
