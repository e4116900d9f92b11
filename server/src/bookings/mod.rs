//! Inspection slot booking (预约查检, flow step 5): an enterprise (or its delegate holding the bookings
//! scope) books a slot at the instruction's site; customs confirms, or declines with feedback and proposed
//! alternatives; either side reschedules or cancels within the rules.
//!
//! **Capacity.** A request takes its place in the slot at once, whether or not it is confirmed yet: a
//! `requested` booking holds capacity until customs confirms it (the place stays) or declines it (the place
//! is freed). So however many requests race, at most `capacity` of them get a place, and confirmation can
//! never fail for want of room. The place is taken in the request's own write transaction, guarded by
//! `used < capacity` on the slot's `slot_usage` row (with a CHECK constraint behind it); the writer is
//! serialised (`BEGIN IMMEDIATE`), so nothing is counted in memory. A site whose calendar says
//! `auto_confirm` confirms a request with a place immediately.
//!
//! **The instruction.** A confirmed booking sets the instruction's `due_at` to the slot start; an `issued`
//! instruction becomes `booked`, an `assigned` one stays `assigned`. Losing the confirmation (cancel,
//! no-show, a reschedule awaiting confirmation) clears `due_at` and moves `booked` back to `issued`.

pub mod calendar;
pub mod http;

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use serde::Serialize;
use serde_json::json;

use crate::domain::events::BookingEvent;
use crate::{
    audit::{self, Actor},
    auth::Caller,
    config::BookingSettings,
    db::scope,
    delegations,
    domain::{BookingState, InstructionState, Role, Scope, UnitKind, time::rfc3339},
    error::{ApiError, invalid},
    instructions::{self, Instruction},
    orgs::store as orgs_store,
    receipts::{self, Change},
};
pub use calendar::{Calendar, CalendarSpec, Rules, SlotTime};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Booking {
    pub id: i64,
    pub instruction_id: i64,
    pub inspection_no: String,
    pub enterprise_id: i64,
    pub site_id: i64,
    pub site_code: String,
    pub state: BookingState,
    pub slot: SlotTime,
    /// Customs' feedback on a decline, or the reason recorded with a cancel or reschedule.
    pub feedback: Option<String>,
    /// Slots customs proposed when declining; take one with `accept-alternative`.
    pub alternatives: Vec<SlotTime>,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}

const COLS: &str = "b.id, b.instruction_id, i.inspection_no, b.enterprise_id, b.site_id, u.code, b.state,
                    b.starts_at, b.ends_at, u.timezone, b.feedback, b.alternatives, b.created_at, b.updated_at";
const FROM: &str =
    "bookings b JOIN instructions i ON i.id = b.instruction_id JOIN customs_units u ON u.id = b.site_id";

/// A booking row with the raw slot instants the rules need.
struct Stored {
    booking: Booking,
    starts_at: i64,
    ends_at: i64,
}

/// A stored slot the calendar cannot read, as the row's error for column `idx` (like `db::json_column`).
fn damaged(idx: usize, e: calendar::StoredTimeError) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
}

fn row(r: &Row<'_>) -> rusqlite::Result<Stored> {
    let timezone: String = r.get(9)?;
    let starts_at: i64 = r.get(7)?;
    let ends_at: i64 = r.get(8)?;
    let length = ends_at - starts_at;
    let alternatives: Vec<i64> = crate::db::json_column(r, 11)?;
    Ok(Stored {
        booking: Booking {
            id: r.get(0)?,
            instruction_id: r.get(1)?,
            inspection_no: r.get(2)?,
            enterprise_id: r.get(3)?,
            site_id: r.get(4)?,
            site_code: r.get(5)?,
            state: r.get(6)?,
            slot: SlotTime::new(starts_at, ends_at, &timezone).map_err(|e| damaged(9, e))?,
            feedback: r.get(10)?,
            alternatives: alternatives
                .iter()
                .map(|s| SlotTime::new(*s, s + length, &timezone))
                .collect::<Result<_, _>>()
                .map_err(|e| damaged(11, e))?,
            created_at: r.get(12)?,
            updated_at: r.get(13)?,
        },
        starts_at,
        ends_at,
    })
}

fn load(c: &Connection, id: i64) -> Result<Option<Stored>, ApiError> {
    Ok(c.query_row(&format!("SELECT {COLS} FROM {FROM} WHERE b.id = ?1"), [id], row).optional()?)
}

fn is_customs_manager(role: Role) -> bool {
    matches!(role, Role::Supervisor | Role::Admin)
}

/// May the caller see this booking? Enterprises: their own and those delegated in the bookings scope;
/// supervisors and reviewers: their unit's subtree; officers: bookings of instructions assigned to them.
fn visible(c: &Connection, caller: &Caller, b: &Stored, now: i64) -> Result<bool, ApiError> {
    Ok(match caller.role {
        Role::Admin => true,
        Role::EnterpriseLegal | Role::EnterpriseOperator => {
            delegations::may_act_for(c, caller, b.booking.enterprise_id, Scope::Bookings, now)?
        }
        Role::Supervisor | Role::Reviewer => orgs_store::in_subtree(c, caller.unit()?, b.booking.site_id)?,
        Role::Officer => scope::is_assigned(c, b.booking.instruction_id, caller.user_id)?,
    })
}

fn visible_booking(c: &Connection, caller: &Caller, id: i64, now: i64) -> Result<Stored, ApiError> {
    match load(c, id)? {
        Some(b) if visible(c, caller, &b, now)? => Ok(b),
        _ => Err(ApiError::not_found("the booking")),
    }
}

pub fn get(c: &Connection, caller: &Caller, id: i64, now: i64) -> Result<Booking, ApiError> {
    Ok(visible_booking(c, caller, id, now)?.booking)
}

pub struct ListFilter {
    pub state: Option<BookingState>,
    pub instruction_id: Option<i64>,
    pub limit: i64,
    pub offset: i64,
}

pub fn list(c: &Connection, caller: &Caller, f: &ListFilter, now: i64) -> Result<Vec<Booking>, ApiError> {
    let mut values: Vec<rusqlite::types::Value> = Vec::new();
    let scope = match caller.role {
        Role::Admin => "1 = 1".to_string(),
        Role::EnterpriseLegal | Role::EnterpriseOperator => {
            let mut ids = vec![caller.enterprise()?];
            ids.extend(
                delegations::principals_of(c, caller, now)?
                    .into_iter()
                    .filter(|(_, scopes)| scopes.contains(&Scope::Bookings))
                    .map(|(id, _)| id),
            );
            let marks = ids.iter().map(|_| "?").collect::<Vec<_>>().join(",");
            values.extend(ids.into_iter().map(Into::into));
            format!("b.enterprise_id IN ({marks})")
        }
        Role::Supervisor | Role::Reviewer => {
            values.push(caller.unit()?.into());
            scope::unit_in_subtree("b.site_id")
        }
        Role::Officer => {
            values.push(caller.user_id.into());
            scope::instruction_assigned_to("b.instruction_id")
        }
    };
    let mut sql = format!("SELECT {COLS} FROM {FROM} WHERE {scope}");
    if let Some(s) = f.state {
        sql.push_str(" AND b.state = ?");
        values.push(s.as_str().to_string().into());
    }
    if let Some(i) = f.instruction_id {
        sql.push_str(" AND b.instruction_id = ?");
        values.push(i.into());
    }
    sql.push_str(" ORDER BY b.id DESC LIMIT ? OFFSET ?");
    values.push(f.limit.into());
    values.push(f.offset.into());
    let mut stmt = c.prepare(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(values), row)?;
    Ok(rows.map(|r| r.map(|s| s.booking)).collect::<Result<_, _>>()?)
}

/// The site by code, which must be an inspection site.
pub fn site_by_code(c: &Connection, field: &str, code: &str) -> Result<crate::orgs::Unit, ApiError> {
    match orgs_store::unit_by_code(c, code)? {
        Some(u) if u.kind == UnitKind::Site => Ok(u),
        Some(u) => Err(invalid(
            field,
            "not_a_site",
            format!("unit {code} ({}) is a {}, not an inspection site", u.name, u.kind),
        )),
        None => Err(invalid(field, "unknown_site", format!("no inspection site has the code `{code}`"))),
    }
}

fn rules_of(c: &Connection, site_id: i64) -> Result<Rules, ApiError> {
    calendar::rules(c, site_id)?.ok_or_else(|| {
        ApiError::conflict("no_calendar", "this site has no slot calendar yet, so it takes no bookings")
    })
}

/// One slot's free capacity, as availability shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SlotFree {
    pub slot: SlotTime,
    pub capacity: i64,
    pub used: i64,
    pub free: i64,
    /// Free, and far enough ahead to be booked now.
    pub bookable: bool,
}

/// Slot usage in `[from, to)`: one range scan of `slot_usage`'s primary key.
pub const USAGE_SQL: &str = "SELECT starts_at, used, capacity FROM slot_usage WHERE site_id = ?1 AND starts_at >= ?2 AND starts_at < ?3";

fn usage(c: &Connection, site_id: i64, from: i64, to: i64) -> Result<Vec<(i64, i64, i64)>, ApiError> {
    let mut stmt = c.prepare_cached(USAGE_SQL)?;
    let rows = stmt.query_map(params![site_id, from, to], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Free capacity of every slot starting in `[from, to)`.
pub fn availability(
    c: &Connection,
    rules: &Rules,
    from: i64,
    to: i64,
    earliest: i64,
) -> Result<Vec<SlotFree>, ApiError> {
    let used = usage(c, rules.site_id, from, to)?;
    rules
        .slots_between(from, to)?
        .into_iter()
        .map(|start| {
            let (used, capacity) = used
                .iter()
                .find(|(s, _, _)| *s == start)
                .map(|(_, u, cap)| (*u, *cap))
                .unwrap_or((0, rules.capacity));
            let free = (capacity - used).max(0);
            Ok(SlotFree {
                slot: rules.slot_time(start)?,
                capacity,
                used,
                free,
                bookable: free > 0 && start >= earliest,
            })
        })
        .collect()
}

/// Up to `n` free slots nearest to `around`, none before `earliest` nor after `latest` (the instruction's
/// deadline: a later slot would be refused as `after_deadline`), in time order.
fn alternatives(
    c: &Connection,
    rules: &Rules,
    settings: &BookingSettings,
    around: i64,
    earliest: i64,
    latest: i64,
) -> Result<Vec<i64>, ApiError> {
    let horizon = settings.alternatives_horizon_days * DAY_MS;
    let from = earliest.max(around - horizon);
    let mut free: Vec<i64> = availability(c, rules, from, around + horizon, earliest)?
        .into_iter()
        .filter(|s| s.bookable)
        .filter_map(|s| rfc3339::parse(&s.slot.starts_at).ok())
        .filter(|s| *s != around && *s <= latest)
        .collect();
    free.sort_by_key(|s| ((s - around).abs(), *s));
    free.truncate(settings.alternatives);
    free.sort_unstable();
    Ok(free)
}

fn slot_full(
    c: &Connection,
    rules: &Rules,
    settings: &BookingSettings,
    start: i64,
    earliest: i64,
    latest: i64,
) -> ApiError {
    let shown = alternatives(c, rules, settings, start, earliest, latest).and_then(|alts| {
        let alts = alts.iter().map(|s| rules.slot_time(*s)).collect::<Result<Vec<_>, _>>()?;
        Ok((rules.slot_time(start)?, alts))
    });
    let (slot, alts) = match shown {
        Ok(shown) => shown,
        Err(e) => return e,
    };
    let local = &slot.local_starts_at;
    ApiError::conflict(
        "slot_full",
        format!(
            "the slot at {local} has no free capacity; {}",
            if alts.is_empty() {
                "no other slot is free in the next days".to_string()
            } else {
                format!("{} nearby slots are free (details.alternatives)", alts.len())
            }
        ),
    )
    .with_details(json!({
        "slot": slot,
        "alternatives": alts,
    }))
}

/// Takes one place in the slot, or says it is full. Inside the caller's write transaction.
fn take_place(tx: &Transaction<'_>, rules: &Rules, start: i64) -> Result<bool, ApiError> {
    tx.execute(
        "INSERT INTO slot_usage (site_id, starts_at, used, capacity) VALUES (?1, ?2, 0, ?3)
         ON CONFLICT (site_id, starts_at) DO NOTHING",
        params![rules.site_id, start, rules.capacity],
    )?;
    let taken = tx.execute(
        "UPDATE slot_usage SET used = used + 1 WHERE site_id = ?1 AND starts_at = ?2 AND used < capacity",
        params![rules.site_id, start],
    )?;
    Ok(taken == 1)
}

fn release_place(tx: &Transaction<'_>, site_id: i64, start: i64) -> Result<(), ApiError> {
    tx.execute(
        "UPDATE slot_usage SET used = used - 1 WHERE site_id = ?1 AND starts_at = ?2 AND used > 0",
        params![site_id, start],
    )?;
    Ok(())
}

fn deadline_of(c: &Connection, instruction_id: i64) -> Result<i64, ApiError> {
    instructions::get(c, instruction_id)?
        .map(|i| i.deadline)
        .ok_or_else(|| ApiError::not_found("the instruction"))
}

/// The confirmed booking's slot of an instruction, for the record's server-owned part.
pub fn confirmed_slot(
    c: &Connection,
    instruction_id: i64,
) -> Result<Option<fieldcheck_sync::schema::Slot>, ApiError> {
    Ok(c.query_row(
        "SELECT starts_at, ends_at FROM bookings WHERE instruction_id = ?1 AND state = 'confirmed'",
        [instruction_id],
        |r| Ok(fieldcheck_sync::schema::Slot { starts_at: r.get(0)?, ends_at: r.get(1)? }),
    )
    .optional()?)
}

/// The slot must exist in the calendar, be in the future, start by the instruction's deadline (customs may
/// extend it: `POST /api/v1/instructions/{id}/deadline`) and, for enterprises, be far enough ahead.
fn check_new_slot(
    rules: &Rules,
    settings: &BookingSettings,
    now: i64,
    start: i64,
    deadline: i64,
    enterprise: bool,
) -> Result<(), ApiError> {
    if start > deadline {
        return Err(invalid(
            "starts_at",
            "after_deadline",
            format!(
                "{} is after the instruction's deadline {}; choose an earlier slot, or ask customs to extend the deadline",
                rules.slot_time(start)?.local_starts_at,
                rules.slot_time(deadline)?.local_starts_at
            ),
        )
        .with_details(json!({"field": "starts_at", "deadline": rfc3339::to_string(deadline)})));
    }
    if start <= now {
        return Err(invalid(
            "starts_at",
            "slot_in_past",
            format!("{} is in the past; choose a future slot", rules.slot_time(start)?.local_starts_at),
        ));
    }
    if enterprise && start < now + settings.min_lead_hours * HOUR_MS {
        return Err(invalid(
            "starts_at",
            "too_soon",
            format!(
                "slots must be booked at least {} hours ahead; the earliest you can book now is {}",
                settings.min_lead_hours,
                rfc3339::to_string(now + settings.min_lead_hours * HOUR_MS)
            ),
        ));
    }
    rules.check_slot("starts_at", start)
}

fn earliest(settings: &BookingSettings, now: i64) -> i64 {
    now + settings.min_lead_hours * HOUR_MS
}

/// Receipt and audit entry for one booking change.
fn record(
    tx: &Transaction<'_>,
    now: i64,
    actor: &Actor,
    id: i64,
    event: BookingEvent,
    opinion: Option<&str>,
    extra: serde_json::Value,
) -> Result<Booking, ApiError> {
    let b = load(tx, id)?.ok_or_else(|| ApiError::not_found("the booking"))?.booking;
    let details = json!({
        "instruction_id": b.instruction_id,
        "site_code": b.site_code,
        "slot": b.slot,
        "extra": extra,
    });
    let change = Change {
        event: event.into(),
        subject_id: b.id,
        enterprise_id: b.enterprise_id,
        inspection_no: Some(&b.inspection_no),
        state: b.state.as_str(),
        from: None,
        opinion,
        details,
    };
    receipts::record_change(tx, now, actor, change)?;
    Ok(b)
}

/// Writes the booked slot's start on the instruction (`None` when no confirmed booking holds it any more).
/// The instruction's state follows in the workflow (`workflow::booking_changed`), which reads `due_at`.
fn follow(tx: &Transaction<'_>, now: i64, instruction_id: i64, due: Option<i64>) -> Result<(), ApiError> {
    Ok(instructions::set_due_at(tx, now, instruction_id, due)?)
}

fn no_shows_within(tx: &Connection, enterprise_id: i64, since: i64) -> Result<i64, ApiError> {
    Ok(tx.query_row(
        "SELECT count(*) FROM no_shows WHERE enterprise_id = ?1 AND at >= ?2",
        params![enterprise_id, since],
        |r| r.get(0),
    )?)
}

fn record_no_show(tx: &Transaction<'_>, now: i64, b: &Booking, kind: &str) -> Result<(), ApiError> {
    tx.execute(
        "INSERT INTO no_shows (enterprise_id, booking_id, kind, at) VALUES (?1, ?2, ?3, ?4)",
        params![b.enterprise_id, b.id, kind, now],
    )?;
    Ok(())
}

/// The instruction, if the caller may book for it; another enterprise's answers 404.
fn bookable_instruction(
    tx: &Connection,
    caller: &Caller,
    id: i64,
    now: i64,
) -> Result<Instruction, ApiError> {
    match instructions::get(tx, id)? {
        Some(i) if delegations::may_act_for(tx, caller, i.enterprise_id, Scope::Bookings, now)? => Ok(i),
        _ => Err(ApiError::not_found("the instruction")),
    }
}

pub struct NewBooking {
    pub instruction_id: i64,
    pub site_code: Option<String>,
    pub starts_at: i64,
}

/// An enterprise asks for a slot: the place is taken at once (see the module notes).
pub fn request(
    tx: &Transaction<'_>,
    now: i64,
    caller: &Caller,
    settings: &BookingSettings,
    new: NewBooking,
) -> Result<Booking, ApiError> {
    let i = bookable_instruction(tx, caller, new.instruction_id, now)?;
    if let Some(code) = &new.site_code {
        let site = site_by_code(tx, "site_code", code)?;
        if site.id != i.site_id {
            return Err(invalid(
                "site_code",
                "wrong_site",
                format!("instruction {} is inspected at another site than {code}", i.id),
            ));
        }
    }
    if !matches!(i.state, InstructionState::Issued | InstructionState::Booked | InstructionState::Assigned) {
        return Err(ApiError::conflict(
            "instruction_not_bookable",
            format!("an instruction that is {} takes no booking", i.state),
        ));
    }
    let live: Option<i64> = tx
        .query_row(
            "SELECT id FROM bookings WHERE instruction_id = ?1 AND state IN ('requested', 'confirmed')",
            [i.id],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(existing) = live {
        return Err(ApiError::conflict(
            "already_booked",
            format!("instruction {} already has booking {existing}; reschedule or cancel that one", i.id),
        )
        .with_details(json!({"booking_id": existing})));
    }
    if settings.max_no_shows > 0 {
        let since = now - settings.no_show_window_days * DAY_MS;
        let count = no_shows_within(tx, i.enterprise_id, since)?;
        if count >= settings.max_no_shows {
            return Err(ApiError::conflict(
                "too_many_no_shows",
                format!(
                    "the enterprise has {count} no-shows in the last {} days (limit {}); new bookings are blocked — contact the site",
                    settings.no_show_window_days, settings.max_no_shows
                ),
            )
            .with_details(json!({"no_shows": count, "window_days": settings.no_show_window_days})));
        }
    }
    let rules = rules_of(tx, i.site_id)?;
    check_new_slot(&rules, settings, now, new.starts_at, i.deadline, true)?;
    if !take_place(tx, &rules, new.starts_at)? {
        return Err(slot_full(tx, &rules, settings, new.starts_at, earliest(settings, now), i.deadline));
    }
    let state = if rules.auto_confirm { BookingState::Confirmed } else { BookingState::Requested };
    tx.execute(
        "INSERT INTO bookings (instruction_id, enterprise_id, site_id, starts_at, ends_at, state, requested_by,
                               created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
        params![i.id, i.enterprise_id, i.site_id, new.starts_at, new.starts_at + rules.slot_ms(), state, caller.user_id, now],
    )?;
    let id = tx.last_insert_rowid();
    let actor = Actor::User(caller.user_id);
    if state == BookingState::Confirmed {
        follow(tx, now, i.id, Some(new.starts_at))?;
        record(tx, now, &actor, id, BookingEvent::Confirmed, None, json!({"auto_confirmed": true}))
    } else {
        record(tx, now, &actor, id, BookingEvent::Requested, None, json!({}))
    }
}

/// A supervisor of the site's subtree (or an admin) acting on a booking; others get 404.
fn managed(tx: &Connection, caller: &Caller, id: i64) -> Result<Stored, ApiError> {
    let b = load(tx, id)?.ok_or_else(|| ApiError::not_found("the booking"))?;
    if caller.role != Role::Admin && !orgs_store::in_subtree(tx, caller.unit()?, b.booking.site_id)? {
        return Err(ApiError::not_found("the booking"));
    }
    Ok(b)
}

fn expect_state(b: &Stored, allowed: &[BookingState], action: &str) -> Result<(), ApiError> {
    if allowed.contains(&b.booking.state) {
        Ok(())
    } else {
        Err(ApiError::conflict(
            "booking_state",
            format!("a booking that is {} cannot be {action}", b.booking.state),
        )
        .with_details(json!({"state": b.booking.state})))
    }
}

pub fn confirm(tx: &Transaction<'_>, now: i64, caller: &Caller, id: i64) -> Result<Booking, ApiError> {
    let b = managed(tx, caller, id)?;
    expect_state(&b, &[BookingState::Requested], "confirmed")?;
    if b.starts_at <= now {
        return Err(ApiError::conflict("slot_passed", "the slot has begun; decline or reschedule instead"));
    }
    set_state(tx, now, id, BookingState::Confirmed, None)?;
    let actor = Actor::User(caller.user_id);
    follow(tx, now, b.booking.instruction_id, Some(b.starts_at))?;
    record(tx, now, &actor, id, BookingEvent::Confirmed, None, json!({}))
}

fn set_state(
    tx: &Transaction<'_>,
    now: i64,
    id: i64,
    state: BookingState,
    feedback: Option<&str>,
) -> Result<(), ApiError> {
    tx.execute(
        "UPDATE bookings SET state = ?1, feedback = coalesce(?2, feedback), updated_at = ?3 WHERE id = ?4",
        params![state, feedback, now, id],
    )?;
    Ok(())
}

/// Customs declines a request with feedback, proposing alternatives (its own picks, or the nearest free
/// slots when it names none). The place is freed.
pub fn decline(
    tx: &Transaction<'_>,
    now: i64,
    caller: &Caller,
    settings: &BookingSettings,
    id: i64,
    feedback: &str,
    proposed: Option<Vec<i64>>,
) -> Result<Booking, ApiError> {
    let b = managed(tx, caller, id)?;
    expect_state(&b, &[BookingState::Requested], "declined")?;
    let rules = rules_of(tx, b.booking.site_id)?;
    release_place(tx, b.booking.site_id, b.starts_at)?;
    let deadline = deadline_of(tx, b.booking.instruction_id)?;
    let alts = match proposed {
        Some(list) => {
            for start in &list {
                check_new_slot(&rules, settings, now, *start, deadline, false).map_err(|e| {
                    e.with_details(json!({"field": "alternatives", "slot": rfc3339::to_string(*start)}))
                })?;
            }
            list
        }
        None => alternatives(tx, &rules, settings, b.starts_at, earliest(settings, now), deadline)?,
    };
    tx.execute(
        "UPDATE bookings SET state = 'declined', feedback = ?1, alternatives = ?2, updated_at = ?3 WHERE id = ?4",
        params![feedback, serde_json::to_string(&alts).map_err(anyhow::Error::from)?, now, id],
    )?;
    record(tx, now, &Actor::User(caller.user_id), id, BookingEvent::Declined, Some(feedback), json!({}))
}

/// The enterprise takes one of the alternatives customs proposed: customs already offered it, so it is
/// confirmed at once when it still has room.
pub fn accept_alternative(
    tx: &Transaction<'_>,
    now: i64,
    caller: &Caller,
    settings: &BookingSettings,
    id: i64,
    start: i64,
) -> Result<Booking, ApiError> {
    let b = load(tx, id)?.ok_or_else(|| ApiError::not_found("the booking"))?;
    if !delegations::may_act_for(tx, caller, b.booking.enterprise_id, Scope::Bookings, now)? {
        return Err(ApiError::not_found("the booking"));
    }
    expect_state(&b, &[BookingState::Declined], "moved to an alternative")?;
    let proposed: Vec<i64> =
        b.booking.alternatives.iter().filter_map(|s| rfc3339::parse(&s.starts_at).ok()).collect();
    if !proposed.contains(&start) {
        return Err(invalid(
            "starts_at",
            "not_proposed",
            "that slot is not one of the alternatives customs proposed",
        )
        .with_details(json!({"field": "starts_at", "alternatives": b.booking.alternatives})));
    }
    let live: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM bookings WHERE instruction_id = ?1 AND state IN ('requested', 'confirmed'))",
        [b.booking.instruction_id],
        |r| r.get(0),
    )?;
    if live {
        return Err(ApiError::conflict(
            "already_booked",
            "the instruction has another live booking meanwhile",
        ));
    }
    let rules = rules_of(tx, b.booking.site_id)?;
    let deadline = deadline_of(tx, b.booking.instruction_id)?;
    check_new_slot(&rules, settings, now, start, deadline, true)?;
    if !take_place(tx, &rules, start)? {
        return Err(slot_full(tx, &rules, settings, start, earliest(settings, now), deadline));
    }
    tx.execute(
        "UPDATE bookings SET state = 'confirmed', starts_at = ?1, ends_at = ?2, alternatives = '[]', updated_at = ?3
         WHERE id = ?4",
        params![start, start + rules.slot_ms(), now, id],
    )?;
    let actor = Actor::User(caller.user_id);
    follow(tx, now, b.booking.instruction_id, Some(start))?;
    record(tx, now, &actor, id, BookingEvent::Confirmed, None, json!({"alternative_taken": true}))
}

/// Who is acting on a live booking, and under which rules.
enum Side {
    /// The enterprise or its delegate: cut-off and lead time apply.
    Enterprise,
    /// A supervisor of the site's subtree or an admin: any time, with a recorded reason.
    Customs,
}

fn side(tx: &Connection, caller: &Caller, b: &Stored, now: i64) -> Result<Side, ApiError> {
    match caller.role {
        Role::EnterpriseLegal | Role::EnterpriseOperator => {
            if delegations::may_act_for(tx, caller, b.booking.enterprise_id, Scope::Bookings, now)? {
                Ok(Side::Enterprise)
            } else {
                Err(ApiError::not_found("the booking"))
            }
        }
        r if is_customs_manager(r) => {
            if r == Role::Admin || orgs_store::in_subtree(tx, caller.unit()?, b.booking.site_id)? {
                Ok(Side::Customs)
            } else {
                Err(ApiError::not_found("the booking"))
            }
        }
        _ => Err(ApiError::forbidden(
            "only the enterprise, its delegate or a supervisor of the site may change a booking",
        )),
    }
}

fn customs_reason(reason: Option<&str>) -> Result<&str, ApiError> {
    reason.map(str::trim).filter(|r| !r.is_empty()).ok_or_else(|| {
        invalid("reason", "missing_reason", "customs must record why it changes an enterprise's booking")
    })
}

fn past_cutoff(settings: &BookingSettings, b: &Stored, now: i64) -> bool {
    now >= b.starts_at - settings.cutoff_hours * HOUR_MS
}

/// Moves a live booking to another slot: the new place is taken before the old one is freed, in one
/// transaction, so a full target leaves the booking where it was.
pub fn reschedule(
    tx: &Transaction<'_>,
    now: i64,
    caller: &Caller,
    settings: &BookingSettings,
    id: i64,
    start: i64,
    reason: Option<&str>,
) -> Result<Booking, ApiError> {
    let b = load(tx, id)?.ok_or_else(|| ApiError::not_found("the booking"))?;
    let side = side(tx, caller, &b, now)?;
    expect_state(&b, &[BookingState::Requested, BookingState::Confirmed], "rescheduled")?;
    let reason = match side {
        Side::Customs => Some(customs_reason(reason)?),
        Side::Enterprise => {
            if past_cutoff(settings, &b, now) {
                return Err(cutoff_error(settings, &b, "rescheduled"));
            }
            reason.map(str::trim).filter(|r| !r.is_empty())
        }
    };
    if start == b.starts_at {
        return Err(invalid("starts_at", "same_slot", "the booking is already in that slot"));
    }
    let rules = rules_of(tx, b.booking.site_id)?;
    let deadline = deadline_of(tx, b.booking.instruction_id)?;
    check_new_slot(&rules, settings, now, start, deadline, matches!(side, Side::Enterprise))?;
    if !take_place(tx, &rules, start)? {
        return Err(slot_full(tx, &rules, settings, start, earliest(settings, now), deadline));
    }
    release_place(tx, b.booking.site_id, b.starts_at)?;
    // Customs chose the new time itself; an enterprise's new time needs confirming where the site confirms
    // by hand.
    let state = match side {
        Side::Customs => BookingState::Confirmed,
        Side::Enterprise if rules.auto_confirm => BookingState::Confirmed,
        Side::Enterprise => BookingState::Requested,
    };
    tx.execute(
        "UPDATE bookings SET state = ?1, starts_at = ?2, ends_at = ?3, feedback = coalesce(?4, feedback), updated_at = ?5
         WHERE id = ?6",
        params![state, start, start + rules.slot_ms(), reason, now, id],
    )?;
    let actor = Actor::User(caller.user_id);
    let due = (state == BookingState::Confirmed).then_some(start);
    follow(tx, now, b.booking.instruction_id, due)?;
    record(
        tx,
        now,
        &actor,
        id,
        BookingEvent::Rescheduled,
        reason,
        json!({
            "from": SlotTime::new(b.starts_at, b.ends_at, &b.booking.slot.timezone)?,
            "by": match side { Side::Customs => "customs", Side::Enterprise => "enterprise" },
        }),
    )
}

fn cutoff_error(settings: &BookingSettings, b: &Stored, action: &str) -> ApiError {
    ApiError::conflict(
        "past_cutoff",
        format!(
            "bookings can be {action} until {} hours before the slot ({}); ask the site",
            settings.cutoff_hours,
            rfc3339::to_string(b.starts_at - settings.cutoff_hours * HOUR_MS)
        ),
    )
}

/// Cancels a live booking and frees its place. An enterprise cancelling after the cut-off still cancels,
/// but it counts as a no-show (state `no_show`); customs cancels any time with a reason.
pub fn cancel(
    tx: &Transaction<'_>,
    now: i64,
    caller: &Caller,
    settings: &BookingSettings,
    id: i64,
    reason: Option<&str>,
) -> Result<Booking, ApiError> {
    let b = load(tx, id)?.ok_or_else(|| ApiError::not_found("the booking"))?;
    let side = side(tx, caller, &b, now)?;
    expect_state(&b, &[BookingState::Requested, BookingState::Confirmed], "cancelled")?;
    let (state, reason, late) = match side {
        Side::Customs => (BookingState::Cancelled, Some(customs_reason(reason)?), false),
        Side::Enterprise => {
            let late = past_cutoff(settings, &b, now) && b.booking.state == BookingState::Confirmed;
            let state = if late { BookingState::NoShow } else { BookingState::Cancelled };
            (state, reason.map(str::trim).filter(|r| !r.is_empty()), late)
        }
    };
    release_place(tx, b.booking.site_id, b.starts_at)?;
    set_state(tx, now, id, state, reason)?;
    if late {
        record_no_show(tx, now, &b.booking, "late_cancel")?;
    }
    let actor = Actor::User(caller.user_id);
    follow(tx, now, b.booking.instruction_id, None)?;
    let kind = if late { BookingEvent::NoShow } else { BookingEvent::Cancelled };
    record(
        tx,
        now,
        &actor,
        id,
        kind,
        reason,
        json!({
            "late_cancel": late,
            "by": match side { Side::Customs => "customs", Side::Enterprise => "enterprise" },
        }),
    )
}

/// Customs records that nobody came to a confirmed slot. The place stays used: the slot is over.
pub fn mark_no_show(tx: &Transaction<'_>, now: i64, caller: &Caller, id: i64) -> Result<Booking, ApiError> {
    let b = managed(tx, caller, id)?;
    expect_state(&b, &[BookingState::Confirmed], "marked as a no-show")?;
    if now < b.starts_at {
        return Err(ApiError::conflict(
            "slot_not_begun",
            format!(
                "the slot begins at {}; a no-show can only be recorded once it has begun",
                b.booking.slot.local_starts_at
            ),
        ));
    }
    set_state(tx, now, id, BookingState::NoShow, None)?;
    record_no_show(tx, now, &b.booking, "missed")?;
    let actor = Actor::User(caller.user_id);
    follow(tx, now, b.booking.instruction_id, None)?;
    record(tx, now, &actor, id, BookingEvent::NoShow, None, json!({"missed": true}))
}

/// When customs cancels an instruction, its live booking goes too and frees its place.
pub fn instruction_cancelled(
    tx: &Transaction<'_>,
    now: i64,
    actor: &Actor,
    instruction_id: i64,
) -> Result<bool, ApiError> {
    let live: Option<(i64, i64, i64)> = tx
        .query_row(
            "SELECT id, site_id, starts_at FROM bookings WHERE instruction_id = ?1 AND state IN ('requested', 'confirmed')",
            [instruction_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((id, site_id, start)) = live else { return Ok(false) };
    release_place(tx, site_id, start)?;
    set_state(tx, now, id, BookingState::Cancelled, Some("the instruction was cancelled"))?;
    record(
        tx,
        now,
        actor,
        id,
        BookingEvent::Cancelled,
        Some("the instruction was cancelled"),
        json!({"by": "customs"}),
    )?;
    Ok(true)
}

/// A supervisor of the site's subtree, or an admin, manages its calendar.
pub fn set_calendar(
    tx: &Transaction<'_>,
    now: i64,
    caller: &Caller,
    site_code: &str,
    spec: &CalendarSpec,
) -> Result<Calendar, ApiError> {
    let site = site_by_code(tx, "site_code", site_code).map_err(as_not_found)?;
    if caller.role != Role::Admin && !orgs_store::in_subtree(tx, caller.unit()?, site.id)? {
        return Err(ApiError::forbidden(format!("site {site_code} is outside your unit's subtree")));
    }
    spec.check()?;
    // Closing a day under live bookings would strand them: customs moves or cancels those first.
    for d in &spec.closed_days {
        let date = calendar::parse_date("closed_days", &d.date)?;
        let (from, to) = calendar::date_range_ms(&site.timezone, date, date)?;
        let mut stmt = tx.prepare(
            "SELECT id FROM bookings WHERE site_id = ?1 AND starts_at >= ?2 AND starts_at < ?3
             AND state IN ('requested', 'confirmed') ORDER BY id",
        )?;
        let ids: Vec<i64> =
            stmt.query_map(params![site.id, from, to], |r| r.get(0))?.collect::<Result<_, _>>()?;
        if !ids.is_empty() {
            return Err(ApiError::conflict(
                "bookings_on_closed_day",
                format!(
                    "{} has {} live bookings; reschedule or cancel them before closing the day",
                    d.date,
                    ids.len()
                ),
            )
            .with_details(json!({"date": d.date, "booking_ids": ids})));
        }
    }
    calendar::put(tx, now, site.id, spec, &format!("user:{}", caller.user_id))?;
    audit::append(
        tx,
        now,
        &Actor::User(caller.user_id),
        audit::Action::BookingCalendar,
        &format!("unit:{}", site.id),
        json!(spec),
    )?;
    calendar::get(tx, site.id)?.ok_or_else(|| ApiError::not_found("the calendar"))
}

/// A site named in the path that does not exist is a 404 naming it, not a body field error.
pub fn as_not_found(e: ApiError) -> ApiError {
    match e {
        ApiError::Client { code: "unknown_site", message, .. } => {
            ApiError::new(axum::http::StatusCode::NOT_FOUND, "unknown_site", message)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn availability_reads_slot_usage_through_its_primary_key() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::Db::open(dir.path(), 1).unwrap();
        let plan = db
            .write_blocking(|tx| {
                let mut stmt = tx.prepare(&format!("EXPLAIN QUERY PLAN {USAGE_SQL}"))?;
                let rows = stmt.query_map(params![1, 0, 1], |r| r.get::<_, String>(3))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?.join("\n"))
            })
            .unwrap();
        assert!(plan.contains("SEARCH slot_usage USING PRIMARY KEY"), "{plan}");
    }
}
