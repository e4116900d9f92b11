//! Organisations and people: the customs unit hierarchy, enterprises, user accounts.
//!
//! The functions here are the one place these rows change; both the HTTP API and the `fieldcheck admin`
//! commands call them, each inside one transaction that also writes the audit entry. Who may see which
//! units, enterprises and operators is decided here too (`visible_units`, `visible_enterprise`,
//! `own_operator`), for a [`Principal`], not in the handlers.

pub mod error;
pub mod http;
pub mod store;

use crate::db::{Conn, Tx};
use base64::{Engine, engine::general_purpose::STANDARD};
use error::OrgsError;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{
    audit::{self, Actor},
    domain::events::{AccountEvent, Event},
    domain::{
        AccountStatus, CreditRating, CustomsCode, DistrictCode, Line, Principal, Role, UnitKind, Uscc,
        UserStatus,
        time::{Period, rfc3339},
    },
    error::StoreError,
    receipts,
};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Unit {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub kind: UnitKind,
    pub parent_id: Option<i64>,
    pub timezone: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Enterprise {
    pub id: i64,
    pub customs_code: String,
    pub uscc: String,
    pub name: String,
    pub credit_rating: CreditRating,
    pub unit_id: Option<i64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub unit_id: Option<i64>,
    pub enterprise_id: Option<i64>,
    pub status: AccountStatus,
    /// `null` = no end.
    #[serde(with = "rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub valid_until: Option<i64>,
    pub has_signing_key: bool,
    /// Its password was set by someone else: the first login may only change it.
    pub must_change_password: bool,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUnit {
    pub code: DistrictCode,
    pub name: Line<200>,
    pub kind: UnitKind,
    /// District code of the parent unit; required for all but the headquarters.
    pub parent_code: Option<DistrictCode>,
    /// An IANA time zone such as `Asia/Shanghai` (the default).
    pub timezone: Option<Line<64>>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEnterprise {
    pub customs_code: CustomsCode,
    pub uscc: Uscc,
    pub name: Line<200>,
    pub credit_rating: CreditRating,
    /// District code of the customs unit the enterprise is registered with.
    pub unit_code: Option<DistrictCode>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub username: String,
    pub display_name: Line<200>,
    pub password: String,
    pub role: Role,
    /// For customs roles: the unit's district code.
    pub unit_code: Option<DistrictCode>,
    /// For enterprise roles: the enterprise's customs code.
    pub enterprise_code: Option<CustomsCode>,
    /// When the account stops working; absent = no end.
    #[serde(default, with = "rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub valid_until: Option<i64>,
}

fn nonempty(field: &'static str, value: &str, max: usize) -> Result<(), OrgsError> {
    let n = value.trim().chars().count();
    if n == 0 || n > max {
        return Err(OrgsError::InvalidText { field, max });
    }
    Ok(())
}

pub fn check_username(name: &str) -> Result<(), OrgsError> {
    let ok = (3..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok { Ok(()) } else { Err(OrgsError::InvalidUsername) }
}

pub fn create_unit(tx: &Tx<'_>, now: i64, actor: &Actor, new: NewUnit) -> Result<Unit, OrgsError> {
    nonempty("name", &new.name, 200)?;
    let timezone = new.timezone.map_or_else(|| "Asia/Shanghai".into(), Line::into_string);
    if jiff::tz::TimeZone::get(&timezone).is_err() {
        return Err(OrgsError::UnknownTimezone(timezone));
    }
    let parent_id = match (&new.parent_code, new.kind) {
        (None, UnitKind::Headquarters) => None,
        (None, _) => {
            return Err(OrgsError::MissingParent);
        }
        (Some(code), _) => Some(
            store::unit_by_code(tx, code.as_str())?
                .ok_or_else(|| OrgsError::UnknownUnit { field: "parent_code", code: code.to_string() })?
                .id,
        ),
    };
    if store::unit_by_code(tx, new.code.as_str())?.is_some() {
        return Err(OrgsError::DuplicateUnit(new.code.to_string()));
    }
    let id = store::insert_unit(tx, new.code.as_str(), &new.name, new.kind, parent_id, &timezone, now)?;
    audit::append(
        tx,
        now,
        actor,
        audit::Action::UnitCreate,
        &audit::Subject::Unit(id),
        json!({"code": new.code}),
    )?;
    store::unit(tx, id)?.ok_or(OrgsError::NotFound("the unit"))
}

pub fn create_enterprise(
    tx: &Tx<'_>,
    now: i64,
    actor: &Actor,
    new: NewEnterprise,
) -> Result<Enterprise, OrgsError> {
    nonempty("name", &new.name, 200)?;
    let unit_id = match &new.unit_code {
        None => None,
        Some(code) => Some(
            store::unit_by_code(tx, code.as_str())?
                .ok_or_else(|| OrgsError::UnknownUnit { field: "unit_code", code: code.to_string() })?
                .id,
        ),
    };
    if store::enterprise_by_code(tx, new.customs_code.as_str())?.is_some() {
        return Err(OrgsError::DuplicateEnterprise(new.customs_code.to_string()));
    }
    let id = store::insert_enterprise(tx, &new, unit_id, now).map_err(|e| match e {
        StoreError::Conflict(_) => OrgsError::DuplicateCreditCode,
        other => other.into(),
    })?;
    audit::append(
        tx,
        now,
        actor,
        audit::Action::EnterpriseCreate,
        &audit::Subject::Enterprise(id),
        json!({"customs_code": new.customs_code}),
    )?;
    store::enterprise(tx, id)?.ok_or(OrgsError::NotFound("the enterprise"))
}

/// Creates a user whose password hash was computed beforehand (off the executor), starting as `start` says.
pub fn create_user(
    tx: &Tx<'_>,
    now: i64,
    actor: &Actor,
    new: &NewUser,
    password_hash: &str,
    start: store::Start,
) -> Result<User, OrgsError> {
    check_username(&new.username)?;
    nonempty("display_name", &new.display_name, 200)?;
    Period::new(now, new.valid_until, now)?;
    let (unit_id, enterprise_id) = if new.role.is_enterprise() {
        let code = new.enterprise_code.as_ref().ok_or(OrgsError::MissingEnterprise)?;
        let e = store::enterprise_by_code(tx, code.as_str())?
            .ok_or_else(|| OrgsError::UnknownEnterprise(code.to_string()))?;
        (None, Some(e.id))
    } else {
        let code = new.unit_code.as_ref().ok_or(OrgsError::MissingUnit)?;
        let u = store::unit_by_code(tx, code.as_str())?
            .ok_or_else(|| OrgsError::UnknownUnit { field: "unit_code", code: code.to_string() })?;
        (Some(u.id), None)
    };
    if store::user_by_name(tx, &new.username)?.is_some() {
        return Err(OrgsError::DuplicateUsername(new.username.clone()));
    }
    let id = store::insert_user(tx, new, password_hash, unit_id, enterprise_id, start, now)?;
    audit::append(
        tx,
        now,
        actor,
        audit::Action::UserCreate,
        &audit::Subject::User(id),
        json!({"username": new.username, "role": new.role}),
    )?;
    store::user(tx, id)?.ok_or(OrgsError::NotFound("the user")).map(|u| u.public())
}

/// An operator account's receipt (to its enterprise) and audit entry.
pub fn record_operator(
    tx: &Tx<'_>,
    now: i64,
    actor: &Actor,
    user: &User,
    event: AccountEvent,
) -> Result<i64, OrgsError> {
    let enterprise_id = user.enterprise_id.ok_or(OrgsError::OperatorWithoutEnterprise(user.id))?;
    Ok(receipts::record_change(
        tx,
        now,
        actor,
        receipts::Change {
            event: Event::Account(event),
            subject_id: user.id,
            enterprise_id,
            inspection_no: None,
            state: user.status.as_str(),
            from: None,
            opinion: None,
            details: json!({"username": user.username, "display_name": user.display_name}),
        },
    )?)
}

/// The legal person confirms a pending operator: it becomes active and may log in (and must change
/// the initial password first).
pub fn confirm_operator(tx: &Tx<'_>, now: i64, actor: &Actor, user_id: i64) -> Result<User, OrgsError> {
    let user = store::user(tx, user_id)?.ok_or(OrgsError::NotFound("the operator"))?;
    if user.status != AccountStatus::Pending {
        return Err(OrgsError::NotPending(user.status));
    }
    store::update_user_status(tx, user_id, AccountStatus::Active)?;
    let user = store::user(tx, user_id)?.ok_or(OrgsError::NotFound("the operator"))?.public();
    record_operator(tx, now, actor, &user, AccountEvent::OperatorConfirmed)?;
    Ok(user)
}

/// Freezes, unfreezes or reports an account lost; a frozen or lost account's sessions end at once.
pub fn set_user_status(
    tx: &Tx<'_>,
    now: i64,
    actor: &Actor,
    user_id: i64,
    status: UserStatus,
    reason: &str,
) -> Result<User, OrgsError> {
    let user = store::user(tx, user_id)?.ok_or(OrgsError::NotFound("the user"))?;
    if user.status == AccountStatus::Lost && status != UserStatus::Lost {
        return Err(OrgsError::AccountLost);
    }
    // Only confirmation (or a registration's approval) ends `pending`; a pending account may be reported
    // lost, but not frozen, since unfreezing would then make it active unconfirmed.
    if user.status == AccountStatus::Pending && status != UserStatus::Lost {
        return Err(OrgsError::AccountPending);
    }
    store::update_user_status(tx, user_id, status.into())?;
    if status != UserStatus::Active {
        crate::auth::store::revoke_user_sessions(tx, user_id, now, &format!("account {status}"))?;
    }
    audit::append(
        tx,
        now,
        actor,
        audit::Action::UserStatus,
        &audit::Subject::User(user_id),
        json!({"from": user.status, "to": status, "reason": reason}),
    )?;
    store::user(tx, user_id)?.ok_or(OrgsError::NotFound("the user")).map(|u| u.public())
}

pub fn set_user_validity(
    tx: &Tx<'_>,
    now: i64,
    actor: &Actor,
    user_id: i64,
    valid_until: Option<i64>,
) -> Result<User, OrgsError> {
    store::user(tx, user_id)?.ok_or(OrgsError::NotFound("the user"))?;
    Period::new(now, valid_until, now)?;
    store::update_user_validity(tx, user_id, valid_until)?;
    audit::append(
        tx,
        now,
        actor,
        audit::Action::UserValidity,
        &audit::Subject::User(user_id),
        json!({"valid_until": valid_until}),
    )?;
    store::user(tx, user_id)?.ok_or(OrgsError::NotFound("the user")).map(|u| u.public())
}

/// Registers the Ed25519 public key (base64, 32 bytes) that the user's strong logins are verified with.
pub fn set_signing_key(
    tx: &Tx<'_>,
    now: i64,
    actor: &Actor,
    user_id: i64,
    public_key_b64: &str,
) -> Result<User, OrgsError> {
    let key = parse_public_key(public_key_b64)?;
    store::user(tx, user_id)?.ok_or(OrgsError::NotFound("the user"))?;
    store::update_signing_key(tx, user_id, &key)?;
    audit::append(
        tx,
        now,
        actor,
        audit::Action::UserSigningKey,
        &audit::Subject::User(user_id),
        json!({"public_key": public_key_b64}),
    )?;
    store::user(tx, user_id)?.ok_or(OrgsError::NotFound("the user")).map(|u| u.public())
}

pub fn parse_public_key(b64: &str) -> Result<[u8; 32], OrgsError> {
    let bytes = STANDARD
        .decode(b64.trim())
        .map_err(|_| OrgsError::InvalidPublicKey("`public_key` must be standard base64"))?;
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|_| OrgsError::InvalidPublicKey("`public_key` must be a 32-byte Ed25519 public key"))?;
    ed25519_dalek::VerifyingKey::from_bytes(&key)
        .map_err(|_| OrgsError::InvalidPublicKey("`public_key` is not a valid Ed25519 point"))?;
    Ok(key)
}

/// The units `principal` may list: every unit for an administrator, their own subtree for other customs
/// users; enterprise users are refused.
pub fn visible_units(c: &Conn, principal: &Principal) -> Result<Vec<Unit>, OrgsError> {
    match (principal.role, principal.unit_id) {
        (Role::Admin, _) => Ok(store::all_units(c)?),
        (_, Some(unit)) => Ok(store::subtree(c, unit)?),
        (_, None) => Err(OrgsError::UnitsForCustomsOnly),
    }
}

/// An enterprise `principal` may see: any, for customs users; for enterprise users their own and those
/// delegating to them. Another enterprise's record answers "not found", not "forbidden": its existence is
/// not ours to tell.
pub fn visible_enterprise(
    c: &Conn,
    principal: &Principal,
    id: i64,
    now: i64,
) -> Result<Enterprise, OrgsError> {
    let visible = !principal.role.is_enterprise() || crate::delegations::may_see(c, principal, id, now)?;
    store::enterprise(c, id)?.filter(|_| visible).ok_or(OrgsError::NotFound("the enterprise"))
}

/// Is `id` one of `principal`'s own enterprise's operators? Anything else is "not found".
pub fn own_operator(c: &Conn, principal: &Principal, id: i64) -> Result<(), OrgsError> {
    store::user(c, id)?
        .filter(|u| u.enterprise_id == principal.enterprise_id && u.role == Role::EnterpriseOperator)
        .map(|_| ())
        .ok_or(OrgsError::NotFound("the operator"))
}
