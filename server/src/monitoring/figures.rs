//! The figures a supervisor asks for, read from what the workflow wrote. Every query is scoped to one
//! unit subtree ([`Scope`]) and, where it says so, to instructions created in a [`Period`].
//!
//! Counts by state come from the day tallies `instruction_day_counts` and `officer_day_counts` (migration
//! 0020, kept by triggers in the transaction of every change) for the whole days of a period, and from
//! the instructions themselves for the partial days at its edges ([`DaySplit`]): exact, and the cost no
//! longer grows with the instructions in the period. What depends on the clock (overdue) is read from
//! open work and held goods only; the median and p90 read the approved instructions' durations.
//!
//! This file assembles; the queries are in [`super::store::figures`] (the pure lists are re-exported
//! here), each scoped by the [`Reach`] its request looked up once.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::{
    OverdueRules, Period, distance_km, quantile, rate,
    store::{
        Reach,
        figures::{self as store, StateTally},
    },
};
pub use super::{
    lists::{
        HandheldSeen, OfficerLoad, OpenConflict, Overdue, PendingReport, SilentHandheld, SitePoint, UnitName,
    },
    store::figures::{open_conflicts, overdue, set_site_location, silent_handhelds, site_points},
};
use crate::{db::Conn, error::StoreError};

/// A unit's or a site's figures (or the whole subtree's, with no unit named).
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Figure {
    pub unit_id: Option<i64>,
    pub code: Option<String>,
    pub name: Option<String>,
    /// Instructions created in the period.
    pub instructions: i64,
    /// Those instructions by their state now.
    pub by_state: BTreeMap<String, i64>,
    /// Overdue now, by any rule.
    pub overdue: i64,
    /// Approved results (the inspection is complete).
    pub approved: i64,
    /// approved / (instructions − cancelled).
    pub completion_rate: Option<f64>,
    /// Approved at or before the deadline / approved.
    pub on_time_rate: Option<f64>,
    /// Issue → approved, nearest-rank median and 90th percentile, in seconds.
    pub issue_to_approved_median_secs: Option<i64>,
    pub issue_to_approved_p90_secs: Option<i64>,
    /// Approved with a non-conforming verdict.
    pub non_conforming: i64,
    /// non_conforming / approved.
    pub non_conformance_rate: Option<f64>,
    pub forced_releases: i64,
    /// Approved ahead of the deadline; kept for the rate.
    #[serde(skip)]
    on_time: i64,
    #[serde(skip)]
    durations: Vec<i64>,
}

impl Figure {
    /// Adds a tally of instructions in one state (from the day counts or the edge rows).
    fn add(&mut self, tally: &StateTally) {
        self.instructions += tally.instructions;
        *self.by_state.entry(tally.state.clone()).or_default() += tally.instructions;
        match tally.state.as_str() {
            "approved" => {
                self.approved += tally.instructions;
                self.on_time += tally.on_time;
                self.non_conforming += tally.non_conforming;
            }
            "force_released" => self.forced_releases += tally.instructions,
            _ => {}
        }
    }

    fn finish(mut self) -> Figure {
        let cancelled = self.by_state.get("cancelled").copied().unwrap_or(0);
        self.completion_rate = rate(self.approved, self.instructions - cancelled);
        self.on_time_rate = rate(self.on_time, self.approved);
        self.non_conformance_rate = rate(self.non_conforming, self.approved);
        self.durations.sort_unstable();
        self.issue_to_approved_median_secs = quantile(&self.durations, 0.5);
        self.issue_to_approved_p90_secs = quantile(&self.durations, 0.9);
        self
    }

    fn named(unit: Option<&UnitName>, id: i64) -> Figure {
        Figure {
            unit_id: Some(id),
            code: unit.map(|u| u.code.clone()),
            name: unit.map(|u| u.name.clone()),
            ..Figure::default()
        }
    }
}

/// The whole subtree's, each unit's and each site's figures over the period.
pub struct UnitFigures {
    pub total: Figure,
    pub units: Vec<Figure>,
    pub sites: Vec<Figure>,
}

/// Four reads, none of which visits every instruction of the period: the state tallies from
/// `instruction_day_counts` (whole days) plus the edge days' rows; the overdue ones among open work
/// (partial index `instructions_open`) and among goods awaiting disposal; and the approved ones'
/// durations, which the median and p90 need one by one (partial index `instructions_approved`).
pub fn unit_figures(
    c: &Conn,
    reach: Reach,
    period: Period,
    rules: &OverdueRules,
) -> Result<UnitFigures, StoreError> {
    let names = store::unit_names(c, reach)?;
    let mut total = Figure::default();
    let mut units: BTreeMap<i64, Figure> = BTreeMap::new();
    let mut sites: BTreeMap<i64, Figure> = BTreeMap::new();
    let mut figures_of = |unit_id: i64, site_id: i64, each: &mut dyn FnMut(&mut Figure)| {
        each(&mut total);
        each(units.entry(unit_id).or_insert_with(|| Figure::named(names.get(&unit_id), unit_id)));
        each(sites.entry(site_id).or_insert_with(|| Figure::named(names.get(&site_id), site_id)));
    };
    for t in store::state_tallies(c, reach, period)? {
        figures_of(t.unit_id, t.site_id, &mut |f| f.add(&t.value));
    }
    for n in store::overdue_counts(c, reach, period, rules)? {
        figures_of(n.unit_id, n.site_id, &mut |f| f.overdue += n.value);
    }
    for d in store::approved_durations(c, reach, period)? {
        figures_of(d.unit_id, d.site_id, &mut |f| f.durations.push(d.value / 1000));
    }

    let by_code = |v: BTreeMap<i64, Figure>| {
        let mut v: Vec<Figure> = v.into_values().map(Figure::finish).collect();
        v.sort_by(|a, b| a.code.cmp(&b.code));
        v
    };
    Ok(UnitFigures { total: total.finish(), units: by_code(units), sites: by_code(sites) })
}

/// The field officers of the subtree with their workload among the instructions created in `period`
/// (all of them when `None`), ordered by username.
pub fn officers(
    c: &Conn,
    reach: Reach,
    period: Option<Period>,
    rules: &OverdueRules,
) -> Result<Vec<OfficerLoad>, StoreError> {
    let mut officers = store::officers(c, reach)?;
    let index: HashMap<i64, usize> = officers.iter().enumerate().map(|(n, o)| (o.id, n)).collect();
    let by_name: HashMap<String, usize> =
        officers.iter().enumerate().map(|(n, o)| (o.username.clone(), n)).collect();

    // Counts by state from `officer_day_counts` (whole days) and the edge days' assignments; the overdue
    // ones from open work and held goods only, as in [`unit_figures`].
    let period = period.unwrap_or(Period { from: i64::MIN, to: i64::MAX });
    for t in store::officer_tallies(c, reach, period)? {
        let Some(&n) = index.get(&t.officer) else { continue };
        let count = t.value.instructions;
        let o = &mut officers[n];
        match t.value.state.as_str() {
            "assigned" => o.assigned += count,
            "in_progress" => o.in_progress += count,
            "submitted" => o.submitted += count,
            "approved" => o.done += count,
            _ => {}
        }
    }
    for late in store::officer_overdue(c, reach, period, rules)? {
        if let Some(&n) = index.get(&late.officer) {
            officers[n].overdue += late.value;
        }
    }
    for missing in store::photos_missing(c, reach)? {
        if let Some(&n) = by_name.get(&missing.officer) {
            officers[n].photos_missing = missing.value;
        }
    }
    for h in store::handhelds(c, reach)? {
        if let Some(&n) = index.get(&h.officer) {
            let o = &mut officers[n];
            let add = |sum: Option<i64>, n: Option<i64>| n.map(|n| sum.unwrap_or(0) + n).or(sum);
            o.pending_changes = add(o.pending_changes, h.value.pending.pending_changes);
            o.pending_photos = add(o.pending_photos, h.value.pending.pending_photos);
            o.handhelds.push(h.value);
        }
    }
    Ok(officers)
}

/// The most this table answers at once; the instruction list (`overdue=true`) pages through the rest.
pub const OVERDUE_TABLE_LIMIT: i64 = 500;

/// Where a photo of an instruction was taken (EXIF GPS), and how far that is from the instruction's site.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PhotoPoint {
    pub sha256: String,
    pub instruction_id: i64,
    pub state: String,
    pub site_code: String,
    pub latitude: f64,
    pub longitude: f64,
    /// Null when the site's location is not known.
    pub km_from_site: Option<f64>,
    /// Farther from the site than `monitoring.far_from_site_km`.
    pub far: bool,
}

/// The most points the map draws; more would not be readable anyway.
pub const MAP_POINT_LIMIT: i64 = 2000;

/// The located photos of the period's instructions, newest first, with their distance from the site.
pub fn photo_points(
    c: &Conn,
    reach: Reach,
    period: Period,
    far_km: f64,
) -> Result<Vec<PhotoPoint>, StoreError> {
    let taken = store::photos_taken(c, reach, period, MAP_POINT_LIMIT)?;
    Ok(taken
        .into_iter()
        .map(|p| {
            let km = p.site.map(|s| distance_km(s, p.at));
            PhotoPoint {
                sha256: p.sha256,
                instruction_id: p.instruction_id,
                state: p.state,
                site_code: p.site_code,
                latitude: p.at.0,
                longitude: p.at.1,
                km_from_site: km.map(|k| (k * 10.0).round() / 10.0),
                far: km.is_some_and(|k| k > far_km),
            }
        })
        .collect())
}
