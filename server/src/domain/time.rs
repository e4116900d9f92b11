//! Time on the wire: the database keeps Unix milliseconds (UTC); the API speaks RFC 3339.
//!
//! `#[serde(with = "rfc3339")]` on an `i64` field (or `rfc3339::option` on `Option<i64>`) keeps the Rust
//! side in milliseconds while clients see and send `2026-11-23T08:00:00Z`.
//!
//! Times and dates from clients lie within the years 1970 to 2999 ([`EARLIEST_MS`], [`LATEST_MS`]): wide
//! enough for any plan, and far enough inside the time library's range (years -9999 to 9999) that every
//! calculation on them (the next day, a site's zone offset, a search horizon of weeks) stays valid. A
//! year-9999 date is a client's mistake, answered 422, never a 500 from arithmetic at the edge.

use jiff::civil::Date;

/// 1970-01-01T00:00:00Z: nothing in fieldcheck happened before the Unix epoch.
pub const EARLIEST_MS: i64 = 0;
/// 2999-12-31T23:59:59.999Z.
pub const LATEST_MS: i64 = 32_503_680_000_000 - 1;
const EARLIEST_YEAR: i16 = 1970;
const LATEST_YEAR: i16 = 2999;

/// A civil date (`2026-12-01`) within the years 1970 to 2999.
pub fn parse_date(s: &str) -> Result<Date, String> {
    let date = s.parse::<Date>().map_err(|_| format!("`{s}` is not a date like 2026-12-01"))?;
    if !(EARLIEST_YEAR..=LATEST_YEAR).contains(&date.year()) {
        return Err(format!("`{s}` is outside the years {EARLIEST_YEAR} to {LATEST_YEAR}"));
    }
    Ok(date)
}

/// How long before now a validity period may start: a period "from today" recorded later that day.
/// Longer back-dating would make a record claim an authority that did not exist when it was given.
pub const MAX_BACKDATE_MS: i64 = 24 * 3_600_000;

/// A validity period a client asks for (a delegation, an account): it starts at most a day before now, and
/// it ends (if it ends) after its start and after now: a period already over when created is a mistake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: i64,
    pub until: Option<i64>,
}

/// Why a validity period was refused; each names the field to fix (`error.rs` answers 422 `invalid_period`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error("`valid_from` is more than a day before now; a validity period cannot be back-dated further")]
    BackDated,
    #[error("`valid_until` is not in the future: the period would be over before it is recorded")]
    Over,
    #[error("`valid_until` must be after `valid_from`")]
    EndsBeforeStart,
}

impl PeriodError {
    /// The request field at fault.
    pub fn field(self) -> &'static str {
        match self {
            PeriodError::BackDated => "valid_from",
            PeriodError::Over | PeriodError::EndsBeforeStart => "valid_until",
        }
    }
}

impl Period {
    pub fn new(from: i64, until: Option<i64>, now: i64) -> Result<Period, PeriodError> {
        if from < now - MAX_BACKDATE_MS {
            return Err(PeriodError::BackDated);
        }
        if let Some(until) = until {
            if until <= now {
                return Err(PeriodError::Over);
            }
            if until <= from {
                return Err(PeriodError::EndsBeforeStart);
            }
        }
        Ok(Period { from, until })
    }
}

pub mod rfc3339 {
    use jiff::Timestamp;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn to_string(ms: i64) -> String {
        Timestamp::from_millisecond(ms).map(|t| t.to_string()).unwrap_or_else(|_| ms.to_string())
    }

    /// An RFC 3339 time with an offset, within the years 1970 to 2999 (UTC), as Unix milliseconds.
    pub fn parse(s: &str) -> Result<i64, String> {
        let ms = s.parse::<Timestamp>().map(|t| t.as_millisecond()).map_err(|e| {
            format!("`{s}` is not an RFC 3339 time with an offset, e.g. 2026-11-23T08:00:00Z ({e})")
        })?;
        if !(super::EARLIEST_MS..=super::LATEST_MS).contains(&ms) {
            return Err(format!("`{s}` is outside the years 1970 to 2999 (UTC)"));
        }
        Ok(ms)
    }

    pub fn serialize<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_string(*ms))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map_err(D::Error::custom)
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
            match ms {
                Some(ms) => s.serialize_str(&to_string(*ms)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
            match Option::<String>::deserialize(d)? {
                Some(s) => parse(&s).map(Some).map_err(D::Error::custom),
                None => Ok(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_790_000_000_000;
    const HOUR: i64 = 3_600_000;

    /// The refusal and the field it names (`error.rs` turns both into the 422 `invalid_period`).
    fn refusal(r: Result<Period, PeriodError>) -> (PeriodError, &'static str) {
        let e = r.unwrap_err();
        (e, e.field())
    }

    #[test]
    fn a_period_may_start_earlier_today_and_end_in_the_future_or_never() {
        assert!(Period::new(NOW - 23 * HOUR, Some(NOW + HOUR), NOW).is_ok());
        assert!(Period::new(NOW, None, NOW).is_ok());
        assert!(Period::new(NOW + 48 * HOUR, Some(NOW + 72 * HOUR), NOW).is_ok());
    }

    #[test]
    fn a_period_starting_in_1969_or_more_than_a_day_ago_is_refused() {
        let r = refusal(Period::new(-86_400_000, Some(NOW + HOUR), NOW));
        assert_eq!(r, (PeriodError::BackDated, "valid_from"));
        assert!(Period::new(NOW - 25 * HOUR, Some(NOW + HOUR), NOW).is_err());
    }

    #[test]
    fn a_period_already_over_or_ending_before_it_starts_is_refused() {
        assert_eq!(refusal(Period::new(NOW, Some(NOW - 1), NOW)).1, "valid_until");
        assert_eq!(refusal(Period::new(NOW, Some(NOW), NOW)).1, "valid_until");
        assert_eq!(refusal(Period::new(NOW + 10 * HOUR, Some(NOW + HOUR), NOW)).1, "valid_until");
    }

    #[test]
    fn the_bounds_are_the_first_and_last_millisecond_of_the_accepted_years() {
        assert_eq!(rfc3339::to_string(EARLIEST_MS), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339::to_string(LATEST_MS), "2999-12-31T23:59:59.999Z");
    }

    #[test]
    fn times_outside_the_years_1970_to_2999_are_refused_and_the_edges_are_accepted() {
        assert_eq!(rfc3339::parse("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(rfc3339::parse("2999-12-31T23:59:59.999Z"), Ok(LATEST_MS));
        for s in
            ["1969-12-31T23:59:59Z", "3000-01-01T00:00:00Z", "5000-06-01T00:00:00Z", "0001-01-01T00:00:00Z"]
        {
            let err = rfc3339::parse(s).unwrap_err();
            assert!(err.contains("outside the years 1970 to 2999"), "{s}: {err}");
        }
        // An offset moves an instant across the edge: it is the UTC instant that counts.
        assert!(rfc3339::parse("1970-01-01T07:59:59+08:00").is_err());
    }

    #[test]
    fn dates_outside_the_years_1970_to_2999_are_refused_and_every_accepted_date_has_a_next_day() {
        assert!(parse_date("9999-12-31").unwrap_err().contains("outside the years"));
        assert!(parse_date("1969-12-31").is_err());
        assert!(parse_date("2026-02-30").unwrap_err().contains("not a date"));
        let last = parse_date("2999-12-31").unwrap();
        let tz = jiff::tz::TimeZone::get("Pacific/Kiritimati").unwrap();
        assert!(last.tomorrow().and_then(|d| d.to_zoned(tz)).is_ok());
    }
}
