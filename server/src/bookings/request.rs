//! Asking for a slot and customs' answer: availability, the nearest free alternatives, the checks on a
//! new slot, and request, confirm, decline and taking a proposed alternative.

use crate::db::{Conn, Tx};
use serde::Serialize;
use serde_json::json;

use super::booking::{
    DAY_MS, HOUR_MS, bookable_instruction, deadline_of, expect_state, follow, managed, record, rules_of,
    site_by_code,
};
use super::calendar::{Rules, SlotTime};
use super::store::{self, Booking};
use crate::{
    audit::Actor,
    auth::Caller,
    config::BookingSettings,
    delegations,
    domain::{BookingState, InstructionState, Scope, events::BookingEvent, time::rfc3339},
    error::{ApiError, invalid},
};

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

/// Free capacity of every slot starting in `[from, to)`.
pub fn availability(
    c: &Conn,
    rules: &Rules,
    from: i64,
    to: i64,
    earliest: i64,
) -> Result<Vec<SlotFree>, ApiError> {
    let used = store::usage(c, rules.site_id, from, to)?;
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
pub(super) fn alternatives(
    c: &Conn,
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

pub(super) fn slot_full(
    c: &Conn,
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

/// The slot must exist in the calendar, be in the future, start by the instruction's deadline (customs may
/// extend it: `POST /api/v1/instructions/{id}/deadline`) and, for enterprises, be far enough ahead.
pub(super) fn check_new_slot(
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

pub(super) fn earliest(settings: &BookingSettings, now: i64) -> i64 {
    now + settings.min_lead_hours * HOUR_MS
}

pub struct NewBooking {
    pub instruction_id: i64,
    pub site_code: Option<String>,
    pub starts_at: i64,
}

/// An enterprise asks for a slot: the place is taken at once (see the module notes).
pub fn request(
    tx: &Tx<'_>,
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
    let live = store::live_of(tx, i.id)?.map(|l| l.id);
    if let Some(existing) = live {
        return Err(ApiError::conflict(
            "already_booked",
            format!("instruction {} already has booking {existing}; reschedule or cancel that one", i.id),
        )
        .with_details(json!({"booking_id": existing})));
    }
    if settings.max_no_shows > 0 {
        let since = now - settings.no_show_window_days * DAY_MS;
        let count = store::no_shows_within(tx, i.enterprise_id, since)?;
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
    if !store::take_place(tx, rules.site_id, rules.capacity, new.starts_at)? {
        return Err(slot_full(tx, &rules, settings, new.starts_at, earliest(settings, now), i.deadline));
    }
    let state = if rules.auto_confirm { BookingState::Confirmed } else { BookingState::Requested };
    let id =
        store::insert(tx, now, &i, new.starts_at, new.starts_at + rules.slot_ms(), state, caller.user_id)?;
    let actor = Actor::User(caller.user_id);
    if state == BookingState::Confirmed {
        follow(tx, now, i.id, Some(new.starts_at))?;
        record(tx, now, &actor, id, BookingEvent::Confirmed, None, json!({"auto_confirmed": true}))
    } else {
        record(tx, now, &actor, id, BookingEvent::Requested, None, json!({}))
    }
}

pub fn confirm(tx: &Tx<'_>, now: i64, caller: &Caller, id: i64) -> Result<Booking, ApiError> {
    let b = managed(tx, caller, id)?;
    expect_state(&b, &[BookingState::Requested], "confirmed")?;
    if b.starts_at <= now {
        return Err(ApiError::conflict("slot_passed", "the slot has begun; decline or reschedule instead"));
    }
    store::set_state(tx, now, id, BookingState::Confirmed, None)?;
    let actor = Actor::User(caller.user_id);
    follow(tx, now, b.booking.instruction_id, Some(b.starts_at))?;
    record(tx, now, &actor, id, BookingEvent::Confirmed, None, json!({}))
}

/// Customs declines a request with feedback, proposing alternatives (its own picks, or the nearest free
/// slots when it names none). The place is freed.
pub fn decline(
    tx: &Tx<'_>,
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
    store::release_place(tx, b.booking.site_id, b.starts_at)?;
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
    store::set_declined(tx, now, id, feedback, &alts)?;
    record(tx, now, &Actor::User(caller.user_id), id, BookingEvent::Declined, Some(feedback), json!({}))
}

/// The enterprise takes one of the alternatives customs proposed: customs already offered it, so it is
/// confirmed at once when it still has room.
pub fn accept_alternative(
    tx: &Tx<'_>,
    now: i64,
    caller: &Caller,
    settings: &BookingSettings,
    id: i64,
    start: i64,
) -> Result<Booking, ApiError> {
    let b = store::existing(tx, id)?;
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
    let live = store::live_of(tx, b.booking.instruction_id)?.is_some();
    if live {
        return Err(ApiError::conflict(
            "already_booked",
            "the instruction has another live booking meanwhile",
        ));
    }
    let rules = rules_of(tx, b.booking.site_id)?;
    let deadline = deadline_of(tx, b.booking.instruction_id)?;
    check_new_slot(&rules, settings, now, start, deadline, true)?;
    if !store::take_place(tx, rules.site_id, rules.capacity, start)? {
        return Err(slot_full(tx, &rules, settings, start, earliest(settings, now), deadline));
    }
    store::take_alternative(tx, now, id, start, start + rules.slot_ms())?;
    let actor = Actor::User(caller.user_id);
    follow(tx, now, b.booking.instruction_id, Some(start))?;
    record(tx, now, &actor, id, BookingEvent::Confirmed, None, json!({"alternative_taken": true}))
}
