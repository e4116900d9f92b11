//! Why a booking step was refused. A leaf, mapped to HTTP once in `error.rs` (the codes, sentences and
//! details clients already see); it imports only the domain, the store's error and `calendar_data.rs`,
//! none of which imports `error.rs`.

use crate::{
    db::error::{EngineError, StoreError},
    domain::{BookingState, InstructionState, NotAllowed, UnitKind},
};

use super::calendar_data::SlotTime;
/// Named here so that `error.rs` maps it through this leaf, not through `calendar.rs` (which imports
/// modules that import `error.rs`).
pub use super::calendar_data::StoredTimeError;

#[derive(Debug, thiserror::Error)]
pub enum BookingError {
    /// Not there, or not the caller's to see or act on (the two are not told apart); the text names what
    /// was looked for ("the booking", "the instruction", "the calendar").
    #[error("{0} was not found")]
    NotFound(&'static str),
    /// A site code in a body field or query (`field`) that no inspection site has.
    #[error("no inspection site has the code `{code}`")]
    UnknownSite { field: &'static str, code: String },
    /// The same, where the site is named in the path: a 404 rather than a field error (see `as_not_found`).
    #[error("no inspection site has the code `{0}`")]
    SiteNotFound(String),
    #[error("unit {code} ({name}) is a {kind}, not an inspection site")]
    NotASite { field: &'static str, code: String, name: String, kind: UnitKind },
    #[error("this site has no slot calendar yet, so it takes no bookings")]
    NoCalendar,
    /// The action (as the sentence spells it, e.g. `rescheduled`) does not apply in the booking's state.
    #[error("a booking that is {state} cannot be {action}")]
    WrongState { state: BookingState, action: &'static str },
    #[error("only the enterprise, its delegate or a supervisor of the site may change a booking")]
    MayNotChange,
    #[error("customs must record why it changes an enterprise's booking")]
    MissingReason,
    /// An enterprise past the cut-off; `until` is the cut-off instant (RFC 3339).
    #[error("bookings can be {action} until {hours} hours before the slot ({until}); ask the site")]
    PastCutoff { action: &'static str, hours: i64, until: String },
    #[error("the booking is already in that slot")]
    SameSlot,
    /// The slot has no place left; `alternatives` are the nearest free slots. (Boxed: the slot's five
    /// strings would make every booking result large.)
    #[error("the slot at {} has no free capacity; {}", slot.local_starts_at, free_nearby(alternatives))]
    SlotFull { slot: Box<SlotTime>, alternatives: Vec<SlotTime> },
    #[error("the slot begins at {0}; a no-show can only be recorded once it has begun")]
    SlotNotBegun(String),
    #[error("site {0} is outside your unit's subtree")]
    SiteOutsideSubtree(String),
    #[error("{date} has {} live bookings; reschedule or cancel them before closing the day", booking_ids.len())]
    BookingsOnClosedDay { date: String, booking_ids: Vec<i64> },
    /// `slot` and `deadline` are the site's wall times; `deadline_utc` goes into the details.
    #[error(
        "{slot} is after the instruction's deadline {deadline}; choose an earlier slot, or ask customs to extend the deadline"
    )]
    AfterDeadline { slot: String, deadline: String, deadline_utc: String },
    #[error("{0} is in the past; choose a future slot")]
    SlotInPast(String),
    #[error("slots must be booked at least {hours} hours ahead; the earliest you can book now is {earliest}")]
    TooSoon { hours: i64, earliest: String },
    #[error("instruction {instruction} is inspected at another site than {code}")]
    WrongSite { instruction: i64, code: String },
    #[error("an instruction that is {0} takes no booking")]
    InstructionNotBookable(InstructionState),
    #[error("instruction {instruction} already has booking {booking}; reschedule or cancel that one")]
    AlreadyBooked { instruction: i64, booking: i64 },
    /// Taking a proposed alternative while the instruction got another live booking.
    #[error("the instruction has another live booking meanwhile")]
    BookedMeanwhile,
    #[error(
        "the enterprise has {count} no-shows in the last {window_days} days (limit {limit}); new bookings are blocked — contact the site"
    )]
    TooManyNoShows { count: i64, window_days: i64, limit: i64 },
    #[error("the slot has begun; decline or reschedule instead")]
    SlotPassed,
    /// The slot is not among `alternatives`, the ones customs proposed.
    #[error("that slot is not one of the alternatives customs proposed")]
    NotProposed(Vec<SlotTime>),
    /// A slot customs proposes when declining is refused for the reason inside; the details name the
    /// proposed slot (`slot`, RFC 3339) instead of the reason's own.
    #[error("{source}")]
    ProposedSlot { slot: String, source: Box<BookingError> },
    /// A time `field` that is not a slot start at this site (`closed_day`).
    #[error("the site is closed on {date} (local date in {timezone})")]
    ClosedDay { field: &'static str, date: String, timezone: String },
    /// `hours` are the day's working windows (`09:00-12:00`), empty when the site is closed that weekday.
    #[error(
        "{local} is outside the site's working hours on {weekday} ({})",
        if hours.is_empty() { "closed".to_string() } else { hours.join(", ") }
    )]
    OutsideWorkingHours { field: &'static str, local: String, weekday: &'static str, hours: Vec<String> },
    #[error(
        "{local} is not the start of a slot; slots are {slot_minutes} minutes long from the start of each working window"
    )]
    NotOnSlotBoundary { field: &'static str, local: String, slot_minutes: i64, nearest: Vec<SlotTime> },
    /// A calendar's `hours` names something that is not a weekday.
    #[error("`{0}` is not a weekday; use mon, tue, wed, thu, fri, sat, sun")]
    InvalidWeekday(String),
    #[error("`{window}` on {day} is not a window like 09:00-12:00 (start before end)")]
    InvalidHours { window: String, day: String },
    #[error("`{window}` on {day} is not a whole number of {slot_minutes}-minute slots")]
    WindowNotWholeSlots { window: String, day: String, slot_minutes: i64 },
    #[error("the windows on {0} overlap")]
    OverlappingHours(String),
    /// A date `field` that is not one; `message` is the parser's sentence.
    #[error("{message}")]
    InvalidDate { field: &'static str, message: String },
    #[error("slot_minutes must be 5 to 720")]
    InvalidSlotMinutes,
    #[error("capacity must be 1 to 1000 bookings per slot")]
    InvalidCapacity,
    /// A closed day (its date) without a reason.
    #[error("say why {0} is closed")]
    ClosedDayWithoutReason(String),
    #[error(transparent)]
    NotAllowed(#[from] NotAllowed),
    /// A stored zone, instant or closed day the calendar cannot read (a logged 500).
    #[error(transparent)]
    StoredTime(#[from] StoredTimeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A local date range the site's zone cannot place (a logged 500).
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

fn free_nearby(alternatives: &[SlotTime]) -> String {
    if alternatives.is_empty() {
        "no other slot is free in the next days".to_string()
    } else {
        format!("{} nearby slots are free (details.alternatives)", alternatives.len())
    }
}

/// The orgs store (site lookups, the unit subtree) still answers the engine's error.
impl From<EngineError> for BookingError {
    fn from(e: EngineError) -> Self {
        BookingError::Store(e.into())
    }
}
