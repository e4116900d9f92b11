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
//!
//! # Layout
//! - `calendar.rs`: a site's slot calendar and the rules generated from it (slots are not stored).
//! - `calendar_data.rs`: what a slot and a calendar look like, stored and shown (the store builds them).
//! - `error.rs`: `BookingError`, why a step was refused (mapped to HTTP in the crate's `error.rs`).
//! - `store.rs`: every SQL statement on `bookings`, `slot_usage` and `no_shows`.
//! - `booking.rs`: who may see a booking and act on it; the receipt every change writes.
//! - `request.rs`: availability and alternatives; request, confirm, decline, take an alternative.
//! - `change.rs`: reschedule, cancel, no-show, a cancelled instruction's booking; the calendar's changes.
//! - `http.rs`: the thin handlers.

mod booking;
pub mod calendar;
mod calendar_data;
mod change;
pub mod error;
pub mod http;
mod request;
mod store;

use booking::rules_of;
pub use booking::{as_not_found, get, list, site_by_code};
pub use calendar::{Calendar, CalendarSpec, Rules, SlotTime};
pub use change::{cancel, instruction_cancelled, mark_no_show, reschedule, set_calendar};
pub use error::BookingError;
pub use request::{
    NewBooking, SlotFree, Taken, accept_alternative, availability, confirm, decline, precheck, request, take,
};
pub use store::{Booking, ListFilter, confirmed_slot, state_of};
