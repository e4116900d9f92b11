//! Onboarding: an enterprise registers itself, an administrator approves or returns the registration.
//!
//! # Layout
//! - this file: the steps ([`register`], [`resubmit`], [`decide`]), each inside the caller's write
//!   transaction with its receipt and audit entry (`receipts::record_change`).
//! - [`store`]: `enterprise_registrations` in SQLite.
//! - [`error`]: `OnboardingError`, why a step was refused (mapped to HTTP in `crate::error`).
//! - [`http`]: the public registration, the registrant's own view and amendment, the administrator's queue.
//!
//! A registration creates the enterprise row and its legal person's account at once, the account
//! `pending`: receipts need an enterprise to belong to, and the registrant needs a login to follow the
//! decision. A pending legal person's session reaches only its registration (`auth::caller::Restriction`);
//! approval makes the account active, and with it everything the legal person may do. Operators the legal
//! person adds later are `orgs`' (pending until confirmed, initial password changed at the first login).

pub mod error;
pub mod http;
pub mod store;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{
    audit::Actor,
    db::{StoreError, Tx},
    domain::{
        AccountStatus, CreditRating, CustomsCode, DistrictCode, Line, RegistrationState, Role, Uscc,
        events::{Event, RegistrationEvent},
        time::rfc3339,
    },
    orgs::{self, NewEnterprise, NewUser, store as orgs_store},
    receipts::{self, About},
};
use error::OnboardingError;

/// How to reach the enterprise about its registration.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    pub name: Line<100>,
    /// Digits, spaces and `+-()`, 5 to 32 characters.
    pub phone: Line<32>,
    pub email: Line<254>,
}

/// What an enterprise says about itself; amended as a whole when a registration comes back.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistrationDetails {
    pub customs_code: CustomsCode,
    /// Checked against its GB 32100 check character.
    pub uscc: Uscc,
    pub name: Line<200>,
    /// District code of the customs unit the enterprise registers with.
    pub unit_code: DistrictCode,
    /// The legal person's name (法定代表人).
    pub legal_person: Line<100>,
    pub contact: Contact,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRegistration {
    pub enterprise: RegistrationDetails,
    /// The legal person's login; it works at once, for the registration only, until approval.
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Registration {
    pub id: i64,
    pub enterprise_id: i64,
    pub customs_code: String,
    pub uscc: String,
    pub name: String,
    pub unit_code: Option<String>,
    pub legal_person: String,
    pub contact: Contact,
    /// The legal person's username.
    pub username: String,
    pub state: RegistrationState,
    /// The administrator's opinion on the last decision.
    pub opinion: Option<String>,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub submitted_at: i64,
    #[serde(with = "rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub decided_at: Option<i64>,
    #[serde(skip)]
    pub legal_user_id: i64,
}

/// An administrator's decision on a pending registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Return,
}

/// The contact must be reachable: a phone of digits and `+-() `, an address with one `@` and a dot after.
fn check_contact(c: &Contact) -> Result<(), OnboardingError> {
    if c.name.trim().is_empty() {
        return Err(OnboardingError::Empty { field: "contact.name", name: "contact.name" });
    }
    let digits = c.phone.chars().filter(char::is_ascii_digit).count();
    if !(5..=32).contains(&c.phone.len())
        || digits < 5
        || !c.phone.chars().all(|ch| ch.is_ascii_digit() || "+-() ".contains(ch))
    {
        return Err(OnboardingError::InvalidPhone);
    }
    let email_ok = match c.email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !c.email.contains(char::is_whitespace)
                && !domain.contains('@')
        }
        None => false,
    };
    if !email_ok {
        return Err(OnboardingError::InvalidEmail);
    }
    Ok(())
}

fn check_details(d: &RegistrationDetails) -> Result<(), OnboardingError> {
    if d.name.trim().is_empty() {
        return Err(OnboardingError::Empty { field: "enterprise.name", name: "name" });
    }
    if d.legal_person.trim().is_empty() {
        return Err(OnboardingError::Empty { field: "enterprise.legal_person", name: "legal_person" });
    }
    check_contact(&d.contact)
}

/// Checks what can be checked without the database, before the password is hashed.
pub fn check_new(new: &NewRegistration) -> Result<(), OnboardingError> {
    orgs::check_username(&new.username)?;
    crate::auth::password::check_strength(&new.password)?;
    check_details(&new.enterprise)
}

/// Refuses a registration from `client` when `per_hour` came from there in the last hour: a 429 that says
/// when the next one is accepted.
pub fn check_rate(c: &crate::db::Conn, client: &str, per_hour: i64, now: i64) -> Result<(), OnboardingError> {
    const HOUR_MS: i64 = 3_600_000;
    let (count, earliest) = store::recent_from(c, client, now - HOUR_MS)?;
    if count < per_hour {
        return Ok(());
    }
    let wait_secs = earliest.map_or(3600, |t| ((t + HOUR_MS - now) / 1000).max(1)) as u64;
    Err(OnboardingError::TooManyRegistrations { per_hour, retry_after_secs: wait_secs })
}

/// Registers an enterprise and its pending legal person (password hashed beforehand, off the executor).
pub fn register(
    tx: &Tx<'_>,
    now: i64,
    client: &str,
    per_hour: i64,
    new: &NewRegistration,
    password_hash: &str,
) -> Result<Registration, OnboardingError> {
    check_rate(tx, client, per_hour, now)?;
    let d = &new.enterprise;
    // A taken customs code, credit code or username is a 409 from `orgs`, and the savepoint of this
    // write takes back whatever was created before it.
    let enterprise = orgs::create_enterprise(
        tx,
        now,
        &Actor::Anonymous,
        NewEnterprise {
            customs_code: d.customs_code.clone(),
            uscc: d.uscc.clone(),
            name: d.name.clone(),
            // Customs rates an enterprise later; a new one starts as general.
            credit_rating: CreditRating::General,
            unit_code: Some(d.unit_code.clone()),
        },
    )?;
    let legal = NewUser {
        username: new.username.clone(),
        display_name: Line::parse(d.legal_person.to_string())
            .map_err(|e| OnboardingError::InvalidLegalPerson(e.to_string()))?,
        password: String::new(),
        role: Role::EnterpriseLegal,
        unit_code: None,
        enterprise_code: Some(d.customs_code.clone()),
        valid_until: None,
    };
    let start = orgs_store::Start { status: AccountStatus::Pending, must_change_password: false };
    let user = orgs::create_user(tx, now, &Actor::Anonymous, &legal, password_hash, start)?;
    let row = store::NewRow {
        enterprise_id: enterprise.id,
        legal_user_id: user.id,
        legal_person: &d.legal_person,
        contact: &d.contact,
        client,
    };
    let id = store::insert(tx, &row, now)?;
    let registration = store::get(tx, id)?.ok_or(OnboardingError::NotFound("the registration"))?;
    record(tx, now, &Actor::User(user.id), &registration, RegistrationEvent::Submitted, None)?;
    Ok(registration)
}

/// The legal person amends a returned registration; it is pending again.
pub fn resubmit(
    tx: &Tx<'_>,
    now: i64,
    user_id: i64,
    enterprise_id: i64,
    d: &RegistrationDetails,
) -> Result<Registration, OnboardingError> {
    check_details(d)?;
    let current =
        store::of_enterprise(tx, enterprise_id)?.ok_or(OnboardingError::NotFound("your registration"))?;
    if current.state != RegistrationState::Returned {
        return Err(OnboardingError::NotReturned(current.state));
    }
    let unit = orgs_store::unit_by_code(tx, d.unit_code.as_str())?
        .ok_or_else(|| OnboardingError::UnknownUnit(d.unit_code.to_string()))?;
    store::amend_enterprise(tx, enterprise_id, d, unit.id).map_err(|e| match e {
        StoreError::Conflict(_) => OnboardingError::DuplicateEnterprise,
        other => other.into(),
    })?;
    store::resubmit(tx, current.id, &d.legal_person, &d.contact, now)?;
    let registration = store::get(tx, current.id)?.ok_or(OnboardingError::NotFound("your registration"))?;
    record(tx, now, &Actor::User(user_id), &registration, RegistrationEvent::Resubmitted, None)?;
    Ok(registration)
}

/// An administrator approves (the legal person becomes active) or returns (with an opinion) a pending
/// registration.
pub fn decide(
    tx: &Tx<'_>,
    now: i64,
    admin: i64,
    id: i64,
    decision: Decision,
    opinion: Option<&str>,
) -> Result<Registration, OnboardingError> {
    let current = store::get(tx, id)?.ok_or(OnboardingError::NotFound("the registration"))?;
    if current.state != RegistrationState::Pending {
        return Err(OnboardingError::NotPending(current.state));
    }
    let (state, event) = match decision {
        Decision::Approve => (RegistrationState::Approved, RegistrationEvent::Approved),
        Decision::Return => (RegistrationState::Returned, RegistrationEvent::Returned),
    };
    if decision == Decision::Return && opinion.is_none_or(|o| o.trim().is_empty()) {
        return Err(OnboardingError::MissingOpinion);
    }
    store::decide(tx, id, state, opinion, admin, now)?;
    if decision == Decision::Approve {
        orgs_store::update_user_status(tx, current.legal_user_id, AccountStatus::Active)?;
    }
    let registration = store::get(tx, id)?.ok_or(OnboardingError::NotFound("the registration"))?;
    record(tx, now, &Actor::User(admin), &registration, event, opinion)?;
    Ok(registration)
}

/// The registration's receipt (to the registering enterprise) and audit entry.
fn record(
    tx: &Tx<'_>,
    now: i64,
    actor: &Actor,
    r: &Registration,
    event: RegistrationEvent,
    opinion: Option<&str>,
) -> Result<i64, OnboardingError> {
    let about = About {
        subject_id: r.enterprise_id,
        enterprise_id: r.enterprise_id,
        inspection_no: None,
        state: r.state.as_str(),
    };
    let details = json!({"registration_id": r.id, "customs_code": r.customs_code, "uscc": r.uscc, "username": r.username});
    Ok(receipts::record_event(tx, now, actor, Event::Registration(event), about, opinion, details)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(phone: &str, email: &str) -> Contact {
        Contact {
            name: Line::parse("Li Wei").unwrap(),
            phone: Line::parse(phone).unwrap(),
            email: Line::parse(email).unwrap(),
        }
    }

    #[test]
    fn a_reachable_contact_is_accepted() {
        for (phone, email) in [("+86 21 5555-0101", "li.wei@example.cn"), ("13800138000", "a@b.co")] {
            assert!(check_contact(&contact(phone, email)).is_ok(), "{phone} {email}");
        }
    }

    #[test]
    fn a_phone_without_enough_digits_or_with_letters_and_a_malformed_email_are_refused() {
        for (phone, email, phone_wrong) in [
            ("12-34", "li@example.cn", true),
            ("call 13800138000", "li@example.cn", true),
            ("13800138000", "li.example.cn", false),
            ("13800138000", "li@example", false),
            ("13800138000", "li @example.cn", false),
            ("13800138000", "@example.cn", false),
        ] {
            let err = check_contact(&contact(phone, email)).unwrap_err();
            if phone_wrong {
                assert!(matches!(err, OnboardingError::InvalidPhone), "{phone} {email}: {err}");
            } else {
                assert!(matches!(err, OnboardingError::InvalidEmail), "{phone} {email}: {err}");
            }
        }
    }
}
