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
use super::error::BookingError;
use super::store::{self, Booking};
use crate::{
    audit::Actor,
    config::BookingSettings,
    delegations,
    domain::{BookingState, InstructionState, Principal, Scope, events::BookingEvent, time::rfc3339},
    instructions::Instruction,
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
) -> Result<Vec<SlotFree>, BookingError> {
    let usage = Usage::read(c, rules, from, to)?;
    rules
        .slots_between(from, to)?
        .into_iter()
        .map(|start| {
            let (used, capacity) = usage.of(start);
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

/// The used places and capacity of the slots in a range, by slot start: a slot without a `slot_usage`
/// row has none used of the calendar's capacity.
struct Usage {
    rows: std::collections::HashMap<i64, (i64, i64)>,
    capacity: i64,
}

impl Usage {
    fn read(c: &Conn, rules: &Rules, from: i64, to: i64) -> Result<Usage, BookingError> {
        let rows = store::usage(c, rules.site_id, from, to)?;
        Ok(Usage {
            rows: rows.into_iter().map(|(s, u, cap)| (s, (u, cap))).collect(),
            capacity: rules.capacity,
        })
    }

    fn of(&self, start: i64) -> (i64, i64) {
        self.rows.get(&start).copied().unwrap_or((0, self.capacity))
    }

    fn is_free(&self, start: i64) -> bool {
        let (used, capacity) = self.of(start);
        used < capacity
    }
}

/// Up to `n` free slots nearest to `around`, none before `earliest` nor after `latest` (the instruction's
/// deadline: a later slot would be refused as `after_deadline`), in time order. The same slots
/// availability calls bookable, found without showing each one (formatting every slot's local time was
/// most of a `slot_full` answer's cost).
pub(super) fn alternatives(
    c: &Conn,
    rules: &Rules,
    settings: &BookingSettings,
    around: i64,
    earliest: i64,
    latest: i64,
) -> Result<Vec<i64>, BookingError> {
    let horizon = settings.alternatives_horizon_days * DAY_MS;
    let (from, to) = (earliest.max(around - horizon), around + horizon);
    let usage = Usage::read(c, rules, from, to)?;
    let mut free: Vec<i64> = rules
        .slots_between(from, to)?
        .into_iter()
        .filter(|s| *s >= earliest && *s != around && *s <= latest && usage.is_free(*s))
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
) -> BookingError {
    let shown = alternatives(c, rules, settings, start, earliest, latest).and_then(|alts| {
        let alts = alts.iter().map(|s| rules.slot_time(*s)).collect::<Result<Vec<_>, _>>()?;
        Ok((rules.slot_time(start)?, alts))
    });
    match shown {
        Ok((slot, alternatives)) => BookingError::SlotFull { slot: Box::new(slot), alternatives },
        Err(e) => e,
    }
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
) -> Result<(), BookingError> {
    if start > deadline {
        return Err(BookingError::AfterDeadline {
            slot: rules.slot_time(start)?.local_starts_at,
            deadline: rules.slot_time(deadline)?.local_starts_at,
            deadline_utc: rfc3339::to_string(deadline),
        });
    }
    if start <= now {
        return Err(BookingError::SlotInPast(rules.slot_time(start)?.local_starts_at));
    }
    if enterprise && start < now + settings.min_lead_hours * HOUR_MS {
        return Err(BookingError::TooSoon {
            hours: settings.min_lead_hours,
            earliest: rfc3339::to_string(now + settings.min_lead_hours * HOUR_MS),
        });
    }
    rules.check_slot("starts_at", start)
}

pub(super) fn earliest(settings: &BookingSettings, now: i64) -> i64 {
    now + settings.min_lead_hours * HOUR_MS
}

#[derive(Debug, Clone)]
pub struct NewBooking {
    pub instruction_id: i64,
    pub site_code: Option<String>,
    pub starts_at: i64,
}

/// A request that passed every check but the slot's capacity: what taking the place needs.
pub struct Checked {
    instruction: Instruction,
    rules: Rules,
}

/// The slot a request found full, with what its refusal (and the alternatives it names) needs.
pub struct FullSlot {
    rules: Rules,
    start: i64,
    earliest: i64,
    deadline: i64,
}

impl FullSlot {
    /// The `409 slot_full` answer, naming the nearest free slots as `c` sees them.
    pub fn refusal(&self, c: &Conn, settings: &BookingSettings) -> BookingError {
        slot_full(c, &self.rules, settings, self.start, self.earliest, self.deadline)
    }
}

/// What a request came to in the writer: booked, or the slot was full (nothing written).
pub enum Taken {
    Booked(Booking),
    Full(FullSlot),
}

/// Every check of a request but capacity, in the order the caller sees their refusals: the
/// instruction (another enterprise's answers 404), the site, its state, a live booking, no-shows, the
/// slot itself.
pub fn check_request(
    c: &Conn,
    now: i64,
    caller: &Principal,
    settings: &BookingSettings,
    new: &NewBooking,
) -> Result<Checked, BookingError> {
    let i = bookable_instruction(c, caller, new.instruction_id, now)?;
    if let Some(code) = &new.site_code {
        let site = site_by_code(c, "site_code", code)?;
        if site.id != i.site_id {
            return Err(BookingError::WrongSite { instruction: i.id, code: code.clone() });
        }
    }
    if !matches!(i.state, InstructionState::Issued | InstructionState::Booked | InstructionState::Assigned) {
        return Err(BookingError::InstructionNotBookable(i.state));
    }
    let live = store::live_of(c, i.id)?.map(|l| l.id);
    if let Some(existing) = live {
        return Err(BookingError::AlreadyBooked { instruction: i.id, booking: existing });
    }
    if settings.max_no_shows > 0 {
        let since = now - settings.no_show_window_days * DAY_MS;
        let count = store::no_shows_within(c, i.enterprise_id, since)?;
        if count >= settings.max_no_shows {
            return Err(BookingError::TooManyNoShows {
                count,
                window_days: settings.no_show_window_days,
                limit: settings.max_no_shows,
            });
        }
    }
    let rules = rules_of(c, i.site_id)?;
    check_new_slot(&rules, settings, now, new.starts_at, i.deadline, true)?;
    Ok(Checked { instruction: i, rules })
}

impl Checked {
    /// The slot is full as `c` sees it (a reader's snapshot, or the writer's transaction).
    pub fn full(
        &self,
        c: &Conn,
        settings: &BookingSettings,
        now: i64,
        start: i64,
    ) -> Result<Option<FullSlot>, BookingError> {
        let (used, capacity) =
            store::used_of(c, self.rules.site_id, start)?.unwrap_or((0, self.rules.capacity));
        Ok((used >= capacity).then(|| self.full_slot(settings, now, start)))
    }

    fn full_slot(&self, settings: &BookingSettings, now: i64, start: i64) -> FullSlot {
        FullSlot {
            rules: self.rules.clone(),
            start,
            earliest: earliest(settings, now),
            deadline: self.instruction.deadline,
        }
    }
}

/// A request's checks on a reader, before it queues on the writer: every check of [`take`] and the slot's
/// capacity, in one snapshot. A refusal found here (a full slot included, with its alternatives) is what
/// the writer would have answered at that moment, so it is answered at once: in a burst for few places,
/// most requests never wait for the writer. A request that passes is checked again by [`take`] in the
/// writer, which alone takes places.
pub fn precheck(
    c: &Conn,
    now: i64,
    caller: &Principal,
    settings: &BookingSettings,
    new: &NewBooking,
) -> Result<(), BookingError> {
    crate::db::in_snapshot(c, || {
        match check_request(c, now, caller, settings, new)?.full(c, settings, now, new.starts_at)? {
            Some(full) => Err(full.refusal(c, settings)),
            None => Ok(()),
        }
    })
}

/// An enterprise asks for a slot: the place is taken at once (see the module notes). A full slot is
/// refused with its alternatives.
pub fn request(
    tx: &Tx<'_>,
    now: i64,
    caller: &Principal,
    settings: &BookingSettings,
    new: NewBooking,
) -> Result<Booking, BookingError> {
    match take(tx, now, caller, settings, new)? {
        Taken::Booked(b) => Ok(b),
        Taken::Full(full) => Err(full.refusal(tx, settings)),
    }
}

/// [`request`], answering a full slot as [`Taken::Full`] instead of the refusal: the writer only finds
/// that the slot is full, and the alternatives are looked up afterwards on a reader.
pub fn take(
    tx: &Tx<'_>,
    now: i64,
    caller: &Principal,
    settings: &BookingSettings,
    new: NewBooking,
) -> Result<Taken, BookingError> {
    let Checked { instruction: i, rules } = check_request(tx, now, caller, settings, &new)?;
    if !store::take_place(tx, rules.site_id, rules.capacity, new.starts_at)? {
        let full = Checked { instruction: i, rules }.full_slot(settings, now, new.starts_at);
        return Ok(Taken::Full(full));
    }
    let state = if rules.auto_confirm { BookingState::Confirmed } else { BookingState::Requested };
    let id =
        store::insert(tx, now, &i, new.starts_at, new.starts_at + rules.slot_ms(), state, caller.user_id)?;
    let actor = Actor::User(caller.user_id);
    let b = if state == BookingState::Confirmed {
        follow(tx, now, i.id, Some(new.starts_at))?;
        record(tx, now, &actor, id, BookingEvent::Confirmed, None, json!({"auto_confirmed": true}))?
    } else {
        record(tx, now, &actor, id, BookingEvent::Requested, None, json!({}))?
    };
    Ok(Taken::Booked(b))
}

pub fn confirm(tx: &Tx<'_>, now: i64, caller: &Principal, id: i64) -> Result<Booking, BookingError> {
    let b = managed(tx, caller, id)?;
    expect_state(&b, &[BookingState::Requested], "confirmed")?;
    if b.starts_at <= now {
        return Err(BookingError::SlotPassed);
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
    caller: &Principal,
    settings: &BookingSettings,
    id: i64,
    feedback: &str,
    proposed: Option<Vec<i64>>,
) -> Result<Booking, BookingError> {
    let b = managed(tx, caller, id)?;
    expect_state(&b, &[BookingState::Requested], "declined")?;
    let rules = rules_of(tx, b.booking.site_id)?;
    store::release_place(tx, b.booking.site_id, b.starts_at)?;
    let deadline = deadline_of(tx, b.booking.instruction_id)?;
    let alts = match proposed {
        Some(list) => {
            for start in &list {
                check_new_slot(&rules, settings, now, *start, deadline, false).map_err(|e| {
                    BookingError::ProposedSlot { slot: rfc3339::to_string(*start), source: Box::new(e) }
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
    caller: &Principal,
    settings: &BookingSettings,
    id: i64,
    start: i64,
) -> Result<Booking, BookingError> {
    let b = store::existing(tx, id)?;
    if !delegations::may_act_for(tx, caller, b.booking.enterprise_id, Scope::Bookings, now)? {
        return Err(BookingError::NotFound("the booking"));
    }
    expect_state(&b, &[BookingState::Declined], "moved to an alternative")?;
    let proposed: Vec<i64> =
        b.booking.alternatives.iter().filter_map(|s| rfc3339::parse(&s.starts_at).ok()).collect();
    if !proposed.contains(&start) {
        return Err(BookingError::NotProposed(b.booking.alternatives));
    }
    let live = store::live_of(tx, b.booking.instruction_id)?.is_some();
    if live {
        return Err(BookingError::BookedMeanwhile);
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
