//! What a slot and a site's calendar look like, as stored and as shown: the values `store` builds from
//! rows and `calendar`'s rules work on. A leaf (it calls neither), so the store and the rules do not import
//! each other in a circle.

use std::collections::BTreeMap;

use jiff::{Timestamp, tz::TimeZone};
use serde::{Deserialize, Serialize};

use crate::domain::{Line, time::rfc3339};

/// A slot as clients see it: the UTC instants and the site's wall time with its zone name.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SlotTime {
    /// UTC, RFC 3339 — the value to send back when booking this slot.
    #[schema(example = "2026-12-01T01:00:00Z")]
    pub starts_at: String,
    #[schema(example = "2026-12-01T02:00:00Z")]
    pub ends_at: String,
    /// The same instant as the site's wall time, with its UTC offset.
    #[schema(example = "2026-12-01T09:00:00+08:00")]
    pub local_starts_at: String,
    #[schema(example = "2026-12-01T10:00:00+08:00")]
    pub local_ends_at: String,
    /// IANA zone of the site.
    #[schema(example = "Asia/Shanghai")]
    pub timezone: String,
}

/// A stored zone or instant the calendar cannot read. Damage, never a default: a slot shown in UTC
/// instead of the site's zone, or with an empty local time, would send the enterprise and the officers
/// to the wrong hour. The request answers a logged 500 (mapped in `error.rs`) and changes nothing.
#[derive(Debug, thiserror::Error)]
pub enum StoredTimeError {
    #[error("the stored time zone `{0}` is unknown")]
    UnknownZone(String),
    #[error("the stored instant {0} (Unix ms) is out of range")]
    OutOfRange(i64),
    #[error("the stored closed day `{0}` is not a date")]
    BadDate(String),
}

pub(super) fn zone(name: &str) -> Result<TimeZone, StoredTimeError> {
    TimeZone::get(name).map_err(|_| StoredTimeError::UnknownZone(name.to_string()))
}

pub(super) fn zoned(ms: i64, tz: &TimeZone) -> Result<jiff::Zoned, StoredTimeError> {
    Timestamp::from_millisecond(ms)
        .map(|t| t.to_zoned(tz.clone()))
        .map_err(|_| StoredTimeError::OutOfRange(ms))
}

impl SlotTime {
    /// The slot `[starts_at, ends_at)` as shown in the zone named `tz_name` (the site's, as stored).
    pub fn new(starts_at: i64, ends_at: i64, tz_name: &str) -> Result<SlotTime, StoredTimeError> {
        Self::in_zone(starts_at, ends_at, &zone(tz_name)?, tz_name)
    }

    pub(super) fn in_zone(
        starts_at: i64,
        ends_at: i64,
        tz: &TimeZone,
        tz_name: &str,
    ) -> Result<SlotTime, StoredTimeError> {
        let local = |ms: i64| zoned(ms, tz).map(|z| z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string());
        Ok(SlotTime {
            starts_at: rfc3339::to_string(starts_at),
            ends_at: rfc3339::to_string(ends_at),
            local_starts_at: local(starts_at)?,
            local_ends_at: local(ends_at)?,
            timezone: tz_name.to_string(),
        })
    }
}

/// A closed day (holiday, works) as the site's local date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClosedDay {
    #[schema(example = "2027-01-01")]
    pub date: String,
    pub reason: Line<200>,
}

/// What a supervisor sends to set a site's calendar; it replaces the previous one whole.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarSpec {
    /// Length of every slot, 5 to 720 minutes; each working window must be a whole number of slots.
    pub slot_minutes: i64,
    /// Bookings per slot, 1 to 1000.
    pub capacity: i64,
    /// `true`: a request with free capacity is confirmed at once. `false`: it holds its place until a
    /// supervisor confirms or declines it.
    #[serde(default)]
    pub auto_confirm: bool,
    /// Weekday (`mon` … `sun`) → working windows in the site's zone, e.g. `["09:00-12:00", "13:00-17:00"]`.
    /// A weekday left out is closed.
    #[schema(value_type = Object, example = json!({"mon": ["09:00-12:00", "13:00-17:00"]}))]
    pub hours: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub closed_days: Vec<ClosedDay>,
}

/// A site's calendar as stored and shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Calendar {
    pub site_id: i64,
    pub site_code: String,
    pub timezone: String,
    pub slot_minutes: i64,
    pub capacity: i64,
    pub auto_confirm: bool,
    #[schema(value_type = Object)]
    pub hours: BTreeMap<String, Vec<String>>,
    pub closed_days: Vec<ClosedDay>,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}
