//! Slot calendars: a site's weekly working hours in its own zone, the slot length, the capacity per slot
//! and its closed days. Slots are not stored; they are generated from the calendar, so changing the hours
//! changes the offer without a migration of rows. Only the *use* of a slot is stored (`slot_usage`).

use std::collections::{BTreeMap, BTreeSet};

use jiff::{civil::Date, tz::TimeZone};

pub use super::calendar_data::{Calendar, CalendarSpec, ClosedDay, SlotTime, StoredTimeError};
use super::{
    calendar_data::{zone, zoned},
    error::BookingError,
    store,
};
use crate::{
    audit::Actor,
    db::{Conn, Tx},
};

pub const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const MINUTE_MS: i64 = 60_000;

/// A working window in minutes after local midnight, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    start: i64,
    end: i64,
}

/// The calendar in the form the rules work on.
#[derive(Debug, Clone)]
pub struct Rules {
    pub site_id: i64,
    pub timezone: String,
    tz: TimeZone,
    pub slot_minutes: i64,
    pub capacity: i64,
    pub auto_confirm: bool,
    week: [Vec<Window>; 7],
    closed: BTreeSet<Date>,
}

fn parse_hhmm(s: &str) -> Option<i64> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    // 24:00 is allowed as the end of a day that works until midnight.
    ((0..=23).contains(&h) && (0..=59).contains(&m) || (h == 24 && m == 0)).then_some(h * 60 + m)
}

fn parse_week(
    hours: &BTreeMap<String, Vec<String>>,
    slot_minutes: i64,
) -> Result<[Vec<Window>; 7], BookingError> {
    let mut week: [Vec<Window>; 7] = Default::default();
    for (day, windows) in hours {
        let Some(index) = WEEKDAYS.iter().position(|d| d == day) else {
            return Err(BookingError::InvalidWeekday(day.clone()));
        };
        let mut parsed = Vec::new();
        for w in windows {
            let window = w
                .split_once('-')
                .and_then(|(a, b)| Some(Window { start: parse_hhmm(a)?, end: parse_hhmm(b)? }))
                .filter(|w| w.start < w.end)
                .ok_or_else(|| BookingError::InvalidHours { window: w.clone(), day: day.clone() })?;
            if (window.end - window.start) % slot_minutes != 0 {
                return Err(BookingError::WindowNotWholeSlots {
                    window: w.clone(),
                    day: day.clone(),
                    slot_minutes,
                });
            }
            parsed.push(window);
        }
        parsed.sort_by_key(|w| w.start);
        if parsed.windows(2).any(|p| p[1].start < p[0].end) {
            return Err(BookingError::OverlappingHours(day.clone()));
        }
        week[index] = parsed;
    }
    Ok(week)
}

pub fn parse_date(field: &'static str, s: &str) -> Result<Date, BookingError> {
    crate::domain::time::parse_date(s).map_err(|message| BookingError::InvalidDate { field, message })
}

impl CalendarSpec {
    /// Checks every part; the first broken rule is reported with the field to fix.
    pub fn check(&self) -> Result<(), BookingError> {
        if !(5..=720).contains(&self.slot_minutes) {
            return Err(BookingError::InvalidSlotMinutes);
        }
        if !(1..=1000).contains(&self.capacity) {
            return Err(BookingError::InvalidCapacity);
        }
        parse_week(&self.hours, self.slot_minutes)?;
        for d in &self.closed_days {
            parse_date("closed_days", &d.date)?;
            if d.reason.trim().is_empty() {
                return Err(BookingError::ClosedDayWithoutReason(d.date.clone()));
            }
        }
        Ok(())
    }
}

impl Rules {
    pub fn slot_ms(&self) -> i64 {
        self.slot_minutes * MINUTE_MS
    }

    pub fn slot_time(&self, start: i64) -> Result<SlotTime, StoredTimeError> {
        SlotTime::in_zone(start, start + self.slot_ms(), &self.tz, &self.timezone)
    }

    fn local_date(&self, ms: i64) -> Result<Date, StoredTimeError> {
        Ok(zoned(ms, &self.tz)?.date())
    }

    /// Starts of the slots on one local date (none on a closed day).
    fn slots_on(&self, date: Date) -> Vec<i64> {
        if self.closed.contains(&date) {
            return Vec::new();
        }
        let weekday = date.weekday().to_monday_zero_offset() as usize;
        let mut out = Vec::new();
        for w in &self.week[weekday] {
            let mut m = w.start;
            while m + self.slot_minutes <= w.end {
                let start = date
                    .at((m / 60) as i8, (m % 60) as i8, 0, 0)
                    .to_zoned(self.tz.clone())
                    .map(|z| z.timestamp().as_millisecond());
                if let Ok(start) = start {
                    out.push(start);
                }
                m += self.slot_minutes;
            }
        }
        out
    }

    /// Starts of every slot starting in `[from, to)`, in order.
    pub fn slots_between(&self, from: i64, to: i64) -> Result<Vec<i64>, StoredTimeError> {
        let mut out = Vec::new();
        let mut date = self.local_date(from)?;
        let last = self.local_date(to)?;
        while date <= last {
            out.extend(self.slots_on(date).into_iter().filter(|s| (from..to).contains(s)));
            match date.tomorrow() {
                Ok(d) => date = d,
                Err(_) => break,
            }
        }
        Ok(out)
    }

    /// Is `start` the start of a slot? If not, a 422 that says why: closed day, outside the hours, or off
    /// the slot grid (naming the nearest slots that day).
    pub fn check_slot(&self, field: &'static str, start: i64) -> Result<(), BookingError> {
        let date = self.local_date(start)?;
        if self.closed.contains(&date) {
            return Err(BookingError::ClosedDay {
                field,
                date: date.to_string(),
                timezone: self.timezone.clone(),
            });
        }
        let day = self.slots_on(date);
        if day.contains(&start) {
            return Ok(());
        }
        let local = self.slot_time(start)?.local_starts_at;
        let weekday = date.weekday().to_monday_zero_offset() as usize;
        let z = zoned(start, &self.tz)?;
        let minute = i64::from(z.hour()) * 60 + i64::from(z.minute());
        let inside = self.week[weekday].iter().any(|w| (w.start..w.end).contains(&minute));
        if !inside {
            let hours: Vec<String> = self.week[weekday]
                .iter()
                .map(|w| {
                    format!("{:02}:{:02}-{:02}:{:02}", w.start / 60, w.start % 60, w.end / 60, w.end % 60)
                })
                .collect();
            return Err(BookingError::OutsideWorkingHours {
                field,
                local,
                weekday: WEEKDAYS[weekday],
                hours,
            });
        }
        let mut nearest = day.clone();
        nearest.sort_by_key(|s| (s - start).abs());
        nearest.truncate(2);
        nearest.sort_unstable();
        Err(BookingError::NotOnSlotBoundary {
            field,
            local,
            slot_minutes: self.slot_minutes,
            nearest: nearest.iter().map(|s| self.slot_time(*s)).collect::<Result<Vec<_>, _>>()?,
        })
    }
}

/// The site's calendar in rule form, or `None` if it takes no bookings.
pub fn rules(c: &Conn, site_id: i64) -> Result<Option<Rules>, BookingError> {
    let Some(row) = store::calendar_rules(c, site_id)? else { return Ok(None) };
    let week = parse_week(&row.hours, row.slot_minutes)?;
    let tz = zone(&row.timezone)?;
    let closed = store::closed_dates(c, site_id)?
        .into_iter()
        .map(|d| d.parse::<Date>().map_err(|_| StoredTimeError::BadDate(d)))
        .collect::<Result<_, _>>()?;
    Ok(Some(Rules {
        site_id,
        timezone: row.timezone,
        tz,
        slot_minutes: row.slot_minutes,
        capacity: row.capacity,
        auto_confirm: row.auto_confirm,
        week,
        closed,
    }))
}

pub fn get(c: &Conn, site_id: i64) -> Result<Option<Calendar>, BookingError> {
    Ok(store::calendar(c, site_id)?)
}

/// Replaces the calendar of `site_id`. Existing bookings keep their slots; capacity already used above a
/// lowered capacity is honoured (the slot just takes no more).
/// `actor` is stored as its label (`user:<id>`, or `system` for a reference import).
pub fn put(
    tx: &Tx<'_>,
    now: i64,
    site_id: i64,
    spec: &CalendarSpec,
    actor: &Actor,
) -> Result<(), BookingError> {
    spec.check()?;
    let closed = spec
        .closed_days
        .iter()
        .map(|d| Ok((parse_date("closed_days", &d.date)?.to_string(), d.reason.trim())))
        .collect::<Result<Vec<_>, BookingError>>()?;
    store::put_calendar(tx, now, site_id, spec, &actor.label())?;
    store::replace_closed_days(tx, site_id, &closed)?;
    Ok(())
}

/// `[start, end)` of a local date range in UTC ms, for queries over stored instants.
pub fn date_range_ms(timezone: &str, from: Date, to_inclusive: Date) -> Result<(i64, i64), BookingError> {
    let tz = TimeZone::get(timezone).map_err(anyhow::Error::from)?;
    let start = from.to_zoned(tz.clone()).map_err(anyhow::Error::from)?;
    let end = to_inclusive.tomorrow().and_then(|d| d.to_zoned(tz)).map_err(anyhow::Error::from)?;
    Ok((start.timestamp().as_millisecond(), end.timestamp().as_millisecond()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::time::rfc3339;

    fn shanghai(hours: &[(&str, &[&str])], closed: &[&str]) -> Rules {
        let hours: BTreeMap<String, Vec<String>> =
            hours.iter().map(|(d, w)| (d.to_string(), w.iter().map(|s| s.to_string()).collect())).collect();
        Rules {
            site_id: 1,
            timezone: "Asia/Shanghai".into(),
            tz: TimeZone::get("Asia/Shanghai").unwrap(),
            slot_minutes: 60,
            capacity: 5,
            auto_confirm: true,
            week: parse_week(&hours, 60).unwrap(),
            closed: closed.iter().map(|d| d.parse().unwrap()).collect(),
        }
    }

    fn ms(s: &str) -> i64 {
        rfc3339::parse(s).unwrap()
    }

    #[test]
    fn a_stored_zone_or_instant_that_cannot_be_read_is_an_error_never_utc_or_an_empty_time() {
        let shown = SlotTime::new(ms("2026-12-01T01:00:00Z"), ms("2026-12-01T02:00:00Z"), "Asia/Shanghai");
        assert_eq!(shown.unwrap().local_starts_at, "2026-12-01T09:00:00+08:00");
        assert!(matches!(
            SlotTime::new(0, 3_600_000, "Mars/Olympus_Mons"),
            Err(StoredTimeError::UnknownZone(z)) if z == "Mars/Olympus_Mons"
        ));
        assert!(matches!(SlotTime::new(i64::MAX - 1, i64::MAX, "UTC"), Err(StoredTimeError::OutOfRange(_))));
    }

    #[test]
    fn a_damaged_closed_day_or_zone_in_the_database_fails_loading_the_rules() {
        let c = Conn::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE customs_units (id INTEGER PRIMARY KEY, timezone TEXT);
             CREATE TABLE slot_calendars (site_id INTEGER, slot_minutes INTEGER, capacity INTEGER, hours TEXT,
                                          auto_confirm INTEGER);
             CREATE TABLE closed_days (site_id INTEGER, day TEXT);
             INSERT INTO customs_units VALUES (1, 'Asia/Shanghai');
             INSERT INTO slot_calendars VALUES (1, 60, 5, '{\"tue\": [\"09:00-12:00\"]}', 1);
             INSERT INTO closed_days VALUES (1, '2026-12-08');",
        )
        .unwrap();
        assert!(rules(&c, 1).unwrap().is_some());
        c.execute("INSERT INTO closed_days VALUES (1, 'next tuesday')", []).unwrap();
        assert!(matches!(rules(&c, 1), Err(BookingError::StoredTime(_))), "not skipped");
        c.execute("DELETE FROM closed_days WHERE day = 'next tuesday'", []).unwrap();
        c.execute("UPDATE customs_units SET timezone = 'Nowhere/Else'", []).unwrap();
        assert!(matches!(rules(&c, 1), Err(BookingError::StoredTime(_))), "not UTC");
    }

    #[test]
    fn slots_are_generated_in_the_sites_zone_and_skip_closed_days() {
        // 2026-12-01 is a Tuesday; 09:00 in Shanghai is 01:00 UTC.
        let rules = shanghai(&[("tue", &["09:00-11:00", "13:00-14:00"])], &["2026-12-08"]);
        let slots = rules.slots_between(ms("2026-11-30T00:00:00Z"), ms("2026-12-10T00:00:00Z")).unwrap();
        let shown: Vec<String> = slots.iter().map(|s| rfc3339::to_string(*s)).collect();
        assert_eq!(shown, ["2026-12-01T01:00:00Z", "2026-12-01T02:00:00Z", "2026-12-01T05:00:00Z"]);
        assert_eq!(rules.slot_time(slots[0]).unwrap().local_starts_at, "2026-12-01T09:00:00+08:00");
    }

    #[test]
    fn a_start_off_the_grid_outside_hours_or_on_a_closed_day_is_refused_with_its_reason() {
        let rules = shanghai(&[("tue", &["09:00-12:00"])], &["2026-12-08"]);
        let code = |s: &str| match rules.check_slot("starts_at", ms(s)) {
            Ok(()) => "ok",
            Err(BookingError::NotOnSlotBoundary { .. }) => "not_on_slot_boundary",
            Err(BookingError::OutsideWorkingHours { .. }) => "outside_working_hours",
            Err(BookingError::ClosedDay { .. }) => "closed_day",
            Err(e) => panic!("{e}"),
        };
        assert_eq!(code("2026-12-01T02:00:00Z"), "ok");
        assert_eq!(code("2026-12-01T02:30:00Z"), "not_on_slot_boundary");
        assert_eq!(code("2026-12-01T06:00:00Z"), "outside_working_hours");
        assert_eq!(code("2026-12-02T02:00:00Z"), "outside_working_hours");
        assert_eq!(code("2026-12-08T02:00:00Z"), "closed_day");
    }

    #[test]
    fn a_calendar_with_bad_hours_is_refused() {
        let spec = |hours: &[(&str, &str)], slot: i64| CalendarSpec {
            slot_minutes: slot,
            capacity: 5,
            auto_confirm: false,
            hours: hours.iter().map(|(d, w)| (d.to_string(), vec![w.to_string()])).collect(),
            closed_days: vec![],
        };
        assert!(spec(&[("mon", "09:00-12:00")], 60).check().is_ok());
        assert!(spec(&[("monday", "09:00-12:00")], 60).check().is_err());
        assert!(spec(&[("mon", "12:00-09:00")], 60).check().is_err());
        assert!(spec(&[("mon", "09:00-12:30")], 60).check().is_err(), "not whole slots");
        assert!(spec(&[("mon", "9-12")], 60).check().is_err());
        assert!(spec(&[("mon", "09:00-12:00")], 0).check().is_err());
    }
}
