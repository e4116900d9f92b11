//! Demo data: `fieldcheck serve --demo` fills an empty data dir from `fixtures/demo/demo.json` and the
//! reference data (HS table, rules, checklist templates) from `fixtures/hs` and `fixtures/checklists`.

use std::path::Path;

use anyhow::Context;
use base64::{Engine, engine::general_purpose::STANDARD};
use serde::Deserialize;

use crate::{
    audit::Actor,
    auth::{keys, password},
    bookings,
    config::Settings,
    db::Db,
    devices,
    orgs::{self, NewEnterprise, NewUnit, NewUser, store},
};

/// The one password every demo account has. Demo mode only: nothing else ever sets it.
pub const DEMO_PASSWORD: &str = "demo-password";
pub const DEMO_KEYS_DIR: &str = "demo-keys";

#[derive(Deserialize)]
struct DemoFile {
    units: Vec<NewUnit>,
    enterprises: Vec<NewEnterprise>,
    users: Vec<DemoUser>,
    devices: Vec<DemoDevice>,
    #[serde(default)]
    calendars: Vec<DemoCalendar>,
    #[serde(default)]
    site_locations: Vec<DemoSiteLocation>,
}

/// Where a site is, so the dashboard's map can flag photos taken elsewhere.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoSiteLocation {
    site_code: String,
    latitude: f64,
    longitude: f64,
}

/// A site's slot calendar: the site's code plus what a supervisor would `PUT`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoCalendar {
    site_code: String,
    slot_minutes: i64,
    capacity: i64,
    auto_confirm: bool,
    hours: std::collections::BTreeMap<String, Vec<String>>,
    closed_days: Vec<bookings::calendar::ClosedDay>,
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
    if db.write_blocking(|tx| Ok(store::count_users(tx)?))? > 0 {
        return Ok(false);
    }
    let path = settings.demo.fixtures_dir.join("demo/demo.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading demo fixtures {}", path.display()))?;
    let demo: DemoFile =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    // One hash for all demo users: argon2 is slow on purpose and they share the password anyway.
    let hash = password::hash_blocking(DEMO_PASSWORD, settings.auth.argon2_memory_kib)?;
    let keys_dir = settings.storage.data_dir.join(DEMO_KEYS_DIR);
    let mut seeds = Vec::new();
    for u in &demo.users {
        seeds.push((u.username.clone(), keys::random_seed()?));
    }
    db.write_blocking(|tx| {
        crate::reference::load(tx, &settings.demo.fixtures_dir).map_err(crate::error::ApiError::Internal)?;
        crate::certificates::types::load(tx, &settings.demo.fixtures_dir)
            .map_err(crate::error::ApiError::Internal)?;
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
            let user = orgs::create_user(tx, now, &system, &new, &hash)?;
            let public = ed25519_dalek::SigningKey::from_bytes(seed).verifying_key();
            orgs::set_signing_key(tx, now, &system, user.id, &STANDARD.encode(public.as_bytes()))?;
        }
        for d in demo.devices {
            let officer = store::user_by_name(tx, &d.officer)?
                .ok_or_else(|| crate::error::ApiError::not_found(&format!("demo officer {}", d.officer)))?;
            devices::register(tx, now, officer.id, &d.name, Some(&d.id))?;
        }
        for cal in demo.calendars {
            let site = bookings::site_by_code(tx, "calendars.site_code", &cal.site_code)?;
            let spec = bookings::CalendarSpec {
                slot_minutes: cal.slot_minutes,
                capacity: cal.capacity,
                auto_confirm: cal.auto_confirm,
                hours: cal.hours,
                closed_days: cal.closed_days,
            };
            bookings::calendar::put(tx, now, site.id, &spec, "system")?;
        }
        for l in demo.site_locations {
            let site = bookings::site_by_code(tx, "site_locations.site_code", &l.site_code)?;
            crate::monitoring::figures::set_site_location(tx, site.id, l.latitude, l.longitude)?;
        }
        Ok(())
    })
    .map_err(|e| anyhow::anyhow!("loading demo data: {e}"))?;
    for (username, seed) in seeds {
        keys::write_secret(&keys_dir.join(format!("{username}.seed")), hex::encode(seed).as_bytes())?;
    }
    Ok(true)
}

/// Where a demo user's signing seed is written.
pub fn key_path(data_dir: &Path, username: &str) -> std::path::PathBuf {
    data_dir.join(DEMO_KEYS_DIR).join(format!("{username}.seed"))
}
