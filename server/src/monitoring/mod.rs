//! Supervisor monitoring (业务监控, flow step 11): what a supervisor's unit subtree is doing, live.
//!
//! # Layout
//! - this file: the caller's scope (a unit subtree), the period, the overdue rules as SQL (one source for
//!   the figures, the overdue table and the instruction list's `overdue` filter).
//! - [`figures`]: figures per unit and per site (states, overdue, completion, on-time, issue → approved
//!   median and p90, non-conformance, forced releases), officers' workload, open conflicts, silent
//!   handhelds, the overdue table, photo locations for the map. Reads only.
//! - [`events`]: the live event stream: the receipts every workflow commit writes, numbered by their id,
//!   pumped after commit into a broadcast; backlog after `Last-Event-ID`, then live, scoped per subscriber.
//! - [`hub`]: the broadcast and the stream tokens, held in `AppState` (apart from `events`, which takes it).
//! - [`csv`]: the CSV form of the lists and figures (`Accept: text/csv`).
//! - [`http`]: figures, overdue, officers, the event stream and its short-lived tokens.
//! - [`dashboard`]: `GET /dashboard`, server-rendered (askama) with a little plain JavaScript.
//!
//! Monitoring writes nothing but stream tokens (in memory): it reads what the workflow wrote.

pub mod csv;
pub mod dashboard;
pub mod events;
pub mod figures;
pub mod http;
pub mod hub;

use rusqlite::{Connection, types::Value};
use serde::Serialize;

use crate::{
    auth::Caller,
    config::MonitoringSettings,
    domain::{Role, time::rfc3339},
    error::{ApiError, invalid},
};

/// The units a caller monitors: the subtree under `root` (a supervisor's unit; an administrator's too,
/// which is headquarters in practice). Enterprises and officers never get here (the router's policy).
#[derive(Debug, Clone, Copy)]
pub struct Scope {
    pub root: i64,
}

impl Scope {
    pub fn of(caller: &Caller) -> Result<Scope, ApiError> {
        caller.require_role(&[Role::Supervisor, Role::Admin])?;
        Ok(Scope { root: caller.unit()? })
    }

    /// CTEs naming the subtree `t(id)` and `tu(id)`, the districts whose instructions may be in scope:
    /// the subtree's own plus those with instructions at one of its sites (`site_districts`, a few pairs).
    /// Their one parameter is [`Scope::root`].
    pub const SUBTREE: &'static str = "WITH RECURSIVE t(id) AS (SELECT ? UNION ALL \
         SELECT u.id FROM customs_units u JOIN t ON u.parent_id = t.id), \
         tu(id) AS (SELECT id FROM t UNION SELECT sd.unit_id FROM site_districts sd WHERE sd.site_id IN t)";

    /// The one supervisor rule (`db::scope::instruction_in_subtree`: district OR site in the subtree) for
    /// the row aliased `alias` (an instruction or a day tally, both with `unit_id` and `site_id`), under
    /// [`Scope::SUBTREE`]. Written as "district in `tu`" first so every query keeps the indexes that lead
    /// with the district; for a district's supervisor `tu` is the subtree and the second term always holds.
    pub fn instruction(alias: &str) -> String {
        format!("{alias}.unit_id IN tu AND ({alias}.unit_id IN t OR {alias}.site_id IN t)")
    }

    /// [`Scope::instruction`] as this scope needs it: only when the subtree's sites take instructions of a
    /// district outside it (a site supervisor's) does a row need the second term; for a district's
    /// supervisor or the administrator `tu` is `t` and "district in the subtree" is the whole rule, one
    /// lookup per row instead of three (docs/monitoring.md has the benchmark).
    pub fn instruction_in(&self, c: &Connection, alias: &str) -> Result<String, ApiError> {
        Ok(if self.takes_outside(c)? { Scope::instruction(alias) } else { format!("{alias}.unit_id IN t") })
    }

    /// Whether the subtree's sites take instructions of a district outside it (`tu` is more than `t`):
    /// only then do reads need [`Scope::instruction_outside`]'s rows at all.
    pub fn takes_outside(&self, c: &Connection) -> Result<bool, ApiError> {
        let mut stmt = c.prepare_cached(&format!(
            "{} SELECT EXISTS (SELECT 1 FROM tu WHERE id NOT IN t)",
            Scope::SUBTREE
        ))?;
        Ok(stmt.query_row([self.root], |r| r.get(0))?)
    }

    /// Rows of the districts outside the subtree whose site lies in it (only a site supervisor's): the part
    /// of [`Scope::instruction`] that tallies kept per district cannot answer.
    pub fn instruction_outside(alias: &str) -> String {
        format!("{alias}.unit_id IN tu AND {alias}.unit_id NOT IN t AND {alias}.site_id IN t")
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
    pub fn parse(from: Option<&str>, to: Option<&str>, now: i64) -> Result<Period, ApiError> {
        let parse = |field: &str, v: Option<&str>| -> Result<Option<i64>, ApiError> {
            v.map(|s| rfc3339::parse(s).map_err(|m| invalid(field, "invalid_time", m))).transpose()
        };
        let to = parse("to", to)?.unwrap_or(now.saturating_add(1));
        let from = parse("from", from)?.unwrap_or(to - DEFAULT_PERIOD_DAYS * 86_400_000);
        if from >= to {
            return Err(invalid("from", "invalid_range", "`from` must be before `to`"));
        }
        if to - from > MAX_PERIOD_DAYS * 86_400_000 {
            return Err(invalid("from", "range_too_long", format!("at most {MAX_PERIOD_DAYS} days at once"))
                .with_details(serde_json::json!({"field": "from", "max_days": MAX_PERIOD_DAYS})));
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
    const OPEN_WORK: [OverdueReason; 3] =
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

/// The overdue rules at `now`, as SQL over `instructions i` with positional parameters: the one
/// definition the figures, the overdue table and the list filter all use.
#[derive(Debug, Clone, Copy)]
pub struct OverdueRules {
    pub now: i64,
    pub slot_result_ms: i64,
    pub approval_wait_ms: i64,
    pub disposal_wait_ms: i64,
}

impl OverdueRules {
    pub fn new(settings: &MonitoringSettings, now: i64) -> OverdueRules {
        OverdueRules {
            now,
            slot_result_ms: settings.slot_result_hours * 3_600_000,
            approval_wait_ms: settings.approval_wait_hours * 3_600_000,
            disposal_wait_ms: settings.disposal_wait_days * 86_400_000,
        }
    }

    /// One rule: its SQL condition and the parameters it takes, in order.
    pub fn rule(&self, reason: OverdueReason) -> (&'static str, Vec<Value>) {
        match reason {
            OverdueReason::DeadlinePassed => (
                "(i.state IN ('issued','booked','assigned','in_progress','submitted') AND i.deadline < ?)",
                vec![self.now.into()],
            ),
            OverdueReason::SlotPassed => (
                "(i.state IN ('booked','assigned','in_progress') AND i.due_at IS NOT NULL AND i.due_at + ? < ?)",
                vec![self.slot_result_ms.into(), self.now.into()],
            ),
            OverdueReason::ApprovalWaiting => (
                "(i.state = 'submitted' AND i.state_since + ? < ?)",
                vec![self.approval_wait_ms.into(), self.now.into()],
            ),
            // Approval moved the instruction to `approved` (state_since) and the application to
            // `not_released`; `disposal_done` moves the application on.
            OverdueReason::GoodsHeld => (
                "(i.state = 'approved' AND i.state_since + ? < ? AND i.application_id IN \
                  (SELECT a.id FROM applications a WHERE a.state = 'not_released'))",
                vec![self.disposal_wait_ms.into(), self.now.into()],
            ),
        }
    }

    /// The rules' SQL and all their parameters, in the order given.
    fn all(&self, reasons: &[OverdueReason]) -> (Vec<&'static str>, Vec<Value>) {
        let mut sql = Vec::new();
        let mut values = Vec::new();
        for &reason in reasons {
            let (s, v) = self.rule(reason);
            sql.push(s);
            values.extend(v);
        }
        (sql, values)
    }

    /// The states whose instructions the deadline, slot and approval rules can catch, as the partial
    /// index `instructions_open` (migration 0020) spells them, so a query naming it may use that index.
    pub const OPEN: &'static str = "i.state IN ('issued', 'booked', 'assigned', 'in_progress', 'submitted')";

    /// Any rule that applies to open work ([`OverdueRules::OPEN`]): the figures count those over the
    /// partial index.
    pub fn open_any(&self) -> (String, Vec<Value>) {
        let (sql, values) = self.all(&OverdueReason::OPEN_WORK);
        (format!("({})", sql.join(" OR ")), values)
    }

    /// Any rule: `(a OR b OR c OR d)`.
    pub fn any(&self) -> (String, Vec<Value>) {
        let (sql, values) = self.all(&OverdueReason::ALL);
        (format!("({})", sql.join(" OR ")), values)
    }

    /// The rules as 0/1 columns, in [`OverdueReason::ALL`] order.
    pub fn columns(&self) -> (String, Vec<Value>) {
        let (sql, values) = self.all(&OverdueReason::ALL);
        (sql.join(", "), values)
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

    #[test]
    fn every_overdue_rule_takes_as_many_parameters_as_it_has_placeholders() {
        let rules = OverdueRules { now: 10, slot_result_ms: 1, approval_wait_ms: 2, disposal_wait_ms: 3 };
        for reason in OverdueReason::ALL {
            let (sql, values) = rules.rule(reason);
            assert_eq!(sql.matches('?').count(), values.len(), "{}", reason.as_str());
        }
    }
}
