//! Supervisor monitoring (业务监控, flow step 11): what a supervisor's unit subtree is doing, live.
//!
//! # Layout
//! - this file: the caller's scope (a unit subtree), the period, why work is overdue.
//! - [`figures`]: figures per unit and per site (states, overdue, completion, on-time, issue → approved
//!   median and p90, non-conformance, forced releases), officers' workload, open conflicts, silent
//!   handhelds, the overdue table, photo locations for the map. Reads only.
//! - [`events`]: the live event stream: the receipts every workflow commit writes, numbered by their id,
//!   pumped after commit into a broadcast; backlog after `Last-Event-ID`, then live, scoped per subscriber.
//! - [`lists`]: the rows of those lists as the API answers them (a leaf the store builds and the figures
//!   complete).
//! - [`error`]: why a period or a stream token was refused (a leaf, mapped to HTTP in `error.rs`).
//! - [`hub`]: the broadcast and the stream tokens, held in `AppState` (apart from `events`, which takes it).
//! - [`csv`]: the CSV form of the lists and figures (`Accept: text/csv`).
//! - [`http`]: figures, overdue, officers, the event stream and its short-lived tokens.
//! - [`dashboard`]: `GET /dashboard`, server-rendered (askama) with a little plain JavaScript.
//! - [`store`]: all of monitoring's SQL, answering `StoreError`: the scope as SQL, the overdue rules
//!   ([`OverdueRules`], re-exported here: the one source for the figures, the overdue table and the
//!   instruction list's `overdue` filter), the figures' and the event stream's reads.
//!
//! Monitoring writes nothing but stream tokens (in memory): it reads what the workflow wrote.

pub mod csv;
pub mod dashboard;
pub mod error;
pub mod events;
pub mod figures;
pub mod http;
pub mod hub;
pub mod lists;
pub mod store;

use serde::Serialize;

pub use error::MonitoringError;
pub use store::OverdueRules;

use crate::domain::{NotAllowed, Principal, Role, time::rfc3339};

/// The units a caller monitors: the subtree under `root` (a supervisor's unit; an administrator's too,
/// which is headquarters in practice). Enterprises and officers never get here (the router's policy).
#[derive(Debug, Clone, Copy)]
pub struct Scope {
    pub root: i64,
}

impl Scope {
    pub fn of(principal: &Principal) -> Result<Scope, NotAllowed> {
        principal.require_role(&[Role::Supervisor, Role::Admin])?;
        Ok(Scope { root: principal.unit()? })
    }
}

/// Instructions created in `[from, to)`.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct Period {
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub from: i64,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub to: i64,
}

/// The default period: the last 30 days up to now.
pub const DEFAULT_PERIOD_DAYS: i64 = 30;
/// The longest period one query may cover, so a figure request's cost stays bounded.
pub const MAX_PERIOD_DAYS: i64 = 366 * 5;

impl Period {
    /// Parses `from`/`to` (RFC 3339); missing ends default to the last 30 days up to `now`.
    pub fn parse(from: Option<&str>, to: Option<&str>, now: i64) -> Result<Period, MonitoringError> {
        let parse = |field: &'static str, v: Option<&str>| -> Result<Option<i64>, MonitoringError> {
            v.map(|s| rfc3339::parse(s).map_err(|message| MonitoringError::InvalidTime { field, message }))
                .transpose()
        };
        let to = parse("to", to)?.unwrap_or(now.saturating_add(1));
        let from = parse("from", from)?.unwrap_or(to - DEFAULT_PERIOD_DAYS * 86_400_000);
        if from >= to {
            return Err(MonitoringError::BackwardsPeriod);
        }
        if to - from > MAX_PERIOD_DAYS * 86_400_000 {
            return Err(MonitoringError::PeriodTooLong { max_days: MAX_PERIOD_DAYS });
        }
        Ok(Period { from, to })
    }
}

/// Why an instruction is overdue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OverdueReason {
    /// The deadline passed and there is no approved result (nor a forced release or cancellation).
    DeadlinePassed,
    /// The booked slot began more than `slot_result_hours` ago and no result was submitted.
    SlotPassed,
    /// The result has waited for approval longer than `approval_wait_hours`.
    ApprovalWaiting,
    /// A non-conforming result was approved more than `disposal_wait_days` ago and the disposal (technical
    /// treatment, return, destruction) is still not recorded as done: the goods are held too long.
    GoodsHeld,
}

impl OverdueReason {
    pub const ALL: [OverdueReason; 4] = [
        OverdueReason::DeadlinePassed,
        OverdueReason::SlotPassed,
        OverdueReason::ApprovalWaiting,
        OverdueReason::GoodsHeld,
    ];

    /// The rules that apply to open work only ([`OverdueRules::OPEN`]); [`OverdueReason::GoodsHeld`] is
    /// about approved work.
    pub(crate) const OPEN_WORK: [OverdueReason; 3] =
        [OverdueReason::DeadlinePassed, OverdueReason::SlotPassed, OverdueReason::ApprovalWaiting];

    pub fn as_str(self) -> &'static str {
        match self {
            OverdueReason::DeadlinePassed => "deadline_passed",
            OverdueReason::SlotPassed => "slot_passed",
            OverdueReason::ApprovalWaiting => "approval_waiting",
            OverdueReason::GoodsHeld => "goods_held",
        }
    }
}

/// Nearest-rank quantile of sorted values: the smallest value with at least `p` of all at or below it.
pub fn quantile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// A share, or nothing when there is nothing to share out.
pub fn rate(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// Great-circle distance in kilometres (haversine on a 6371 km sphere; metres of error do not matter here).
pub fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lon1) = (a.0.to_radians(), a.1.to_radians());
    let (lat2, lon2) = (b.0.to_radians(), b.1.to_radians());
    let h =
        ((lat2 - lat1) / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_and_p90_are_nearest_rank_values_of_the_sorted_durations() {
        let v: Vec<i64> = (1..=10).collect();
        assert_eq!(quantile(&v, 0.5), Some(5));
        assert_eq!(quantile(&v, 0.9), Some(9));
        assert_eq!(quantile(&[7], 0.9), Some(7));
        assert_eq!(quantile(&[3, 9], 0.5), Some(3));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn a_rate_of_nothing_is_no_rate_rather_than_zero() {
        assert_eq!(rate(0, 0), None);
        assert_eq!(rate(1, 4), Some(0.25));
    }

    #[test]
    fn shanghai_to_shenzhen_is_about_twelve_hundred_kilometres() {
        let d = distance_km((31.23, 121.47), (22.54, 114.06));
        assert!((1150.0..1250.0).contains(&d), "{d}");
        assert!(distance_km((30.0, 120.0), (30.0, 120.0)) < 1e-9);
    }

    #[test]
    fn a_period_must_run_forwards_and_not_too_long() {
        let now = 1_800_000_000_000;
        let p = Period::parse(None, None, now).unwrap();
        assert_eq!(p.to - p.from, DEFAULT_PERIOD_DAYS * 86_400_000);
        assert!(Period::parse(Some("2026-02-01T00:00:00Z"), Some("2026-01-01T00:00:00Z"), now).is_err());
        assert!(Period::parse(Some("2000-01-01T00:00:00Z"), Some("2026-01-01T00:00:00Z"), now).is_err());
        assert!(Period::parse(Some("yesterday"), None, now).is_err());
    }
}
