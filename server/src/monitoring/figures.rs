//! The figures a supervisor asks for, read from what the workflow wrote. Every query is scoped to one
//! unit subtree ([`Scope`]) and, where it says so, to instructions created in a [`Period`].
//!
//! Counts by state come from the day tallies `instruction_day_counts` and `officer_day_counts` (migration
//! 0020, kept by triggers in the transaction of every change) for the whole days of a period, and from
//! the instructions themselves for the partial days at its edges ([`DaySplit`]): exact, and the cost no
//! longer grows with the instructions in the period. What depends on the clock (overdue) is read from
//! open work and held goods only; the median and p90 read the approved instructions' durations.

use std::collections::{BTreeMap, HashMap};

use rusqlite::{Connection, params_from_iter, types::Value};
use serde::Serialize;

use super::{OverdueReason, OverdueRules, Period, Scope, distance_km, quantile, rate};
use crate::{domain::time::rfc3339, error::ApiError};

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

/// Instructions of one unit and site in one state, with the approved ones' on-time and non-conforming
/// counts.
struct StateTally {
    state: String,
    instructions: i64,
    on_time: i64,
    non_conforming: i64,
}

const DAY_MS: i64 = 86_400_000;

/// A period cut into the whole UTC days that `instruction_day_counts` answers (`days`, a half-open range
/// of day numbers, possibly empty) and the partial days at either edge, read from the instructions
/// themselves (`edges`, two half-open time ranges, possibly empty). Together they cover the period
/// exactly once.
struct DaySplit {
    days: (i64, i64),
    edges: [(i64, i64); 2],
}

impl DaySplit {
    fn of(period: Period) -> DaySplit {
        let first = period.from.div_euclid(DAY_MS) + i64::from(period.from.rem_euclid(DAY_MS) != 0);
        let end = period.to.div_euclid(DAY_MS);
        if first >= end {
            return DaySplit { days: (0, 0), edges: [(period.from, period.to), (period.to, period.to)] };
        }
        DaySplit { days: (first, end), edges: [(period.from, first * DAY_MS), (end * DAY_MS, period.to)] }
    }
}

#[derive(Debug, Clone)]
pub struct UnitName {
    pub code: String,
    pub name: String,
}

/// The units of the subtree by id, and the districts whose instructions are at its sites, for naming figures.
pub fn unit_names(c: &Connection, scope: Scope) -> Result<HashMap<i64, UnitName>, ApiError> {
    let mut stmt = c.prepare_cached(&format!(
        "{} SELECT u.id, u.code, u.name FROM customs_units u WHERE u.id IN tu",
        Scope::SUBTREE
    ))?;
    let rows =
        stmt.query_map([scope.root], |r| Ok((r.get(0)?, UnitName { code: r.get(1)?, name: r.get(2)? })))?;
    Ok(rows.collect::<Result<_, _>>()?)
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
    c: &Connection,
    scope: Scope,
    period: Period,
    rules: &OverdueRules,
) -> Result<UnitFigures, ApiError> {
    let names = unit_names(c, scope)?;
    let mut total = Figure::default();
    let mut units: BTreeMap<i64, Figure> = BTreeMap::new();
    let mut sites: BTreeMap<i64, Figure> = BTreeMap::new();
    let mut figures_of = |unit_id: i64, site_id: i64, each: &mut dyn FnMut(&mut Figure)| {
        each(&mut total);
        each(units.entry(unit_id).or_insert_with(|| Figure::named(names.get(&unit_id), unit_id)));
        each(sites.entry(site_id).or_insert_with(|| Figure::named(names.get(&site_id), site_id)));
    };

    let split = DaySplit::of(period);
    let si = scope.instruction_in(c, "i")?;
    let sd = scope.instruction_in(c, "d")?;
    let edge = format!(
        "SELECT i.unit_id, i.site_id, i.state, 1,
                       i.state = 'approved' AND coalesce(i.state_since, i.created_at) <= i.deadline,
                       i.state = 'approved' AND EXISTS (SELECT 1 FROM record_seals s
                                                        WHERE s.instruction_id = i.id AND s.verdict = 'non_conforming')
                FROM instructions i INDEXED BY instructions_monitoring
                WHERE {si} AND i.created_at >= ? AND i.created_at < ?"
    );
    let mut stmt = c.prepare_cached(&format!(
        "{}, tallies(unit_id, site_id, state, n, on_time, non_conforming) AS (
             SELECT d.unit_id, d.site_id, d.state, d.instructions, d.on_time, d.non_conforming
             FROM instruction_day_counts d WHERE {sd} AND d.day >= ? AND d.day < ?
             UNION ALL {edge} UNION ALL {edge})
         SELECT unit_id, site_id, state, sum(n), sum(on_time), sum(non_conforming) FROM tallies
         GROUP BY 1, 2, 3 HAVING sum(n) > 0",
        Scope::SUBTREE
    ))?;
    let [(a, b), (y, z)] = split.edges;
    let mut rows = stmt.query(rusqlite::params![scope.root, split.days.0, split.days.1, a, b, y, z])?;
    while let Some(r) = rows.next()? {
        let tally = StateTally {
            state: r.get(2)?,
            instructions: r.get(3)?,
            on_time: r.get(4)?,
            non_conforming: r.get(5)?,
        };
        figures_of(r.get(0)?, r.get(1)?, &mut |f| f.add(&tally));
    }

    let (late, late_values) = rules.open_any();
    let mut values: Vec<Value> = vec![scope.root.into(), period.from.into(), period.to.into()];
    values.extend(late_values);
    let mut stmt = c.prepare_cached(&format!(
        "{} SELECT i.unit_id, i.site_id, count(*) FROM instructions i INDEXED BY instructions_open
         WHERE {si} AND i.created_at >= ? AND i.created_at < ? AND {} AND {late}
         GROUP BY 1, 2",
        Scope::SUBTREE,
        OverdueRules::OPEN,
    ))?;
    let mut rows = stmt.query(params_from_iter(values))?;
    while let Some(r) = rows.next()? {
        let n: i64 = r.get(2)?;
        figures_of(r.get(0)?, r.get(1)?, &mut |f| f.overdue += n);
    }
    // Goods held too long are approved work, disjoint from the open work above; found from the few
    // applications still awaiting disposal rather than from every approved instruction.
    let (held, held_values) = rules.rule(OverdueReason::GoodsHeld);
    let mut values: Vec<Value> = vec![scope.root.into(), period.from.into(), period.to.into()];
    values.extend(held_values);
    let mut stmt = c.prepare_cached(&format!(
        "{} SELECT i.unit_id, i.site_id, count(*)
         FROM applications a INDEXED BY applications_state_time JOIN instructions i ON i.application_id = a.id
         WHERE a.state = 'not_released' AND {si} AND i.created_at >= ? AND i.created_at < ? AND {held}
         GROUP BY 1, 2",
        Scope::SUBTREE
    ))?;
    let mut rows = stmt.query(params_from_iter(values))?;
    while let Some(r) = rows.next()? {
        let n: i64 = r.get(2)?;
        figures_of(r.get(0)?, r.get(1)?, &mut |f| f.overdue += n);
    }

    let mut stmt = c.prepare_cached(&format!(
        "{} SELECT i.unit_id, i.site_id, coalesce(i.state_since, i.created_at) - i.created_at
         FROM instructions i INDEXED BY instructions_approved
         WHERE i.state = 'approved' AND {si} AND i.created_at >= ? AND i.created_at < ?",
        Scope::SUBTREE
    ))?;
    let mut rows = stmt.query(rusqlite::params![scope.root, period.from, period.to])?;
    while let Some(r) = rows.next()? {
        let secs = r.get::<_, i64>(2)? / 1000;
        figures_of(r.get(0)?, r.get(1)?, &mut |f| f.durations.push(secs));
    }

    let by_code = |v: BTreeMap<i64, Figure>| {
        let mut v: Vec<Figure> = v.into_values().map(Figure::finish).collect();
        v.sort_by(|a, b| a.code.cmp(&b.code));
        v
    };
    Ok(UnitFigures { total: total.finish(), units: by_code(units), sites: by_code(sites) })
}

/// A handheld as a supervisor sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HandheldSeen {
    pub device_id: String,
    pub name: String,
    pub status: String,
    /// Its last sync; null if it never synced.
    #[serde(with = "rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_seen_at: Option<i64>,
    /// What it said it still holds unsent at `pending_reported_at`; null when it never said (an older
    /// handheld, or a WebSocket client without the peer metadata).
    #[serde(flatten)]
    pub pending: PendingReport,
}

/// A handheld's own count of edits and photos not yet on the server, and when it gave it.
#[derive(Debug, Clone, Copy, Default, Serialize, utoipa::ToSchema)]
pub struct PendingReport {
    pub pending_changes: Option<i64>,
    pub pending_photos: Option<i64>,
    #[serde(with = "rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub pending_reported_at: Option<i64>,
}

impl PendingReport {
    /// Columns `pending_changes, pending_photos, pending_reported_at` from `at` on.
    fn read(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<PendingReport> {
        Ok(PendingReport {
            pending_changes: r.get(at)?,
            pending_photos: r.get(at + 1)?,
            pending_reported_at: r.get(at + 2)?,
        })
    }
}

/// An officer a supervisor may see (and, when active, assign), with the work they carry.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OfficerLoad {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub unit_code: String,
    /// `active` officers may be assigned.
    pub status: String,
    /// Instructions assigned and not started.
    pub assigned: i64,
    /// Being inspected (`in_progress`).
    pub in_progress: i64,
    /// Results waiting for approval.
    pub submitted: i64,
    /// Approved results.
    pub done: i64,
    pub overdue: i64,
    /// Photos the officer's open records (not yet approved, cancelled or released) name, not withdrawn,
    /// that have not reached the server yet. A record is only submitted with all its photos present.
    pub photos_missing: i64,
    /// Edits still pending on the officer's handhelds, as they last reported it (summed); null when none
    /// of them ever reported (see each handheld's `pending_reported_at` for how current it is).
    pub pending_changes: Option<i64>,
    /// Photos still waiting on the officer's handhelds for upload, as they last reported it.
    pub pending_photos: Option<i64>,
    pub handhelds: Vec<HandheldSeen>,
}

/// The field officers of the subtree with their workload among the instructions created in `period`
/// (all of them when `None`), ordered by username.
pub fn officers(
    c: &Connection,
    scope: Scope,
    period: Option<Period>,
    rules: &OverdueRules,
) -> Result<Vec<OfficerLoad>, ApiError> {
    let mut stmt = c.prepare_cached(&format!(
        "{} SELECT u.id, u.username, u.display_name, cu.code, u.status FROM users u
         JOIN customs_units cu ON cu.id = u.unit_id
         WHERE u.role = 'officer' AND u.unit_id IN t ORDER BY u.username",
        Scope::SUBTREE
    ))?;
    let mut officers: Vec<OfficerLoad> = stmt
        .query_map([scope.root], |r| {
            Ok(OfficerLoad {
                id: r.get(0)?,
                username: r.get(1)?,
                display_name: r.get(2)?,
                unit_code: r.get(3)?,
                status: r.get(4)?,
                assigned: 0,
                in_progress: 0,
                submitted: 0,
                done: 0,
                overdue: 0,
                photos_missing: 0,
                pending_changes: None,
                pending_photos: None,
                handhelds: Vec::new(),
            })
        })?
        .collect::<Result<_, _>>()?;
    let index: HashMap<i64, usize> = officers.iter().enumerate().map(|(n, o)| (o.id, n)).collect();
    let by_name: HashMap<String, usize> =
        officers.iter().enumerate().map(|(n, o)| (o.username.clone(), n)).collect();

    // Counts by state from `officer_day_counts` (whole days) and the edge days' assignments; the overdue
    // ones from open work and held goods only, as in [`unit_figures`].
    let period = period.unwrap_or(Period { from: i64::MIN, to: i64::MAX });
    let split = DaySplit::of(period);
    // The officers' tallies are kept per district; a site supervisor's instructions of other districts
    // (`instruction_outside`) are read from the instructions over the whole days too. Any other scope has
    // none, and a constant-false branch is not run at all: searching the whole days' instructions of the
    // subtree only to drop every row cost the administrator's figures a third of their time.
    let si = scope.instruction_in(c, "i")?;
    let outside = if scope.takes_outside(c)? { Scope::instruction_outside("i") } else { "0".to_owned() };
    let assigned = "SELECT o.officer_id, i.state, 1 FROM instruction_officers o JOIN instructions i ON i.id = o.instruction_id";
    let edge = format!("{assigned} WHERE {si} AND i.created_at >= ? AND i.created_at < ?");
    let mut stmt = c.prepare_cached(&format!(
        "{}, tallies(officer_id, state, n) AS (
             SELECT d.officer_id, d.state, d.instructions FROM officer_day_counts d
             WHERE d.unit_id IN t AND d.day >= ? AND d.day < ?
             UNION ALL {assigned} WHERE {outside} AND i.created_at >= ? AND i.created_at < ?
             UNION ALL {edge} UNION ALL {edge})
         SELECT officer_id, state, sum(n) FROM tallies GROUP BY 1, 2",
        Scope::SUBTREE
    ))?;
    let [(a, b), (y, z)] = split.edges;
    let (d0, d1) = split.days;
    let mut rows = stmt.query(rusqlite::params![scope.root, d0, d1, d0 * DAY_MS, d1 * DAY_MS, a, b, y, z])?;
    while let Some(r) = rows.next()? {
        let Some(&n) = index.get(&r.get::<_, i64>(0)?) else { continue };
        let (state, count): (String, i64) = (r.get(1)?, r.get(2)?);
        let o = &mut officers[n];
        match state.as_str() {
            "assigned" => o.assigned += count,
            "in_progress" => o.in_progress += count,
            "submitted" => o.submitted += count,
            "approved" => o.done += count,
            _ => {}
        }
    }

    let (late, late_values) = rules.open_any();
    let (held, held_values) = rules.rule(OverdueReason::GoodsHeld);
    let mut values: Vec<Value> = vec![scope.root.into(), period.from.into(), period.to.into()];
    values.extend(late_values);
    values.extend([period.from.into(), period.to.into()]);
    values.extend(held_values);
    let mut stmt = c.prepare_cached(&format!(
        "{} SELECT o.officer_id, count(*) FROM instructions i INDEXED BY instructions_open
             JOIN instruction_officers o ON o.instruction_id = i.id
         WHERE {si} AND i.created_at >= ? AND i.created_at < ? AND {} AND {late} GROUP BY 1
         UNION ALL
         SELECT o.officer_id, count(*)
         FROM applications a INDEXED BY applications_state_time JOIN instructions i ON i.application_id = a.id
             JOIN instruction_officers o ON o.instruction_id = i.id
         WHERE a.state = 'not_released' AND {si} AND i.created_at >= ? AND i.created_at < ? AND {held}
         GROUP BY 1",
        Scope::SUBTREE,
        OverdueRules::OPEN,
    ))?;
    let mut rows = stmt.query(params_from_iter(values))?;
    while let Some(r) = rows.next()? {
        if let Some(&n) = index.get(&r.get::<_, i64>(0)?) {
            officers[n].overdue += r.get::<_, i64>(1)?;
        }
    }

    let mut stmt = c.prepare_cached(&format!(
        "{} SELECT rp.by_officer, count(*) FROM instructions i INDEXED BY instructions_open
         JOIN record_photos rp ON rp.instruction_id = i.id
         WHERE {si} AND {} AND NOT rp.withdrawn
           AND NOT EXISTS (SELECT 1 FROM photos p WHERE p.sha256 = rp.sha256)
         GROUP BY rp.by_officer",
        Scope::SUBTREE,
        OverdueRules::OPEN,
    ))?;
    let mut rows = stmt.query([scope.root])?;
    while let Some(r) = rows.next()? {
        if let Some(&n) = by_name.get(&r.get::<_, String>(0)?) {
            officers[n].photos_missing = r.get(1)?;
        }
    }

    let mut stmt = c.prepare_cached(&format!(
        "{} SELECT d.officer_id, d.id, d.name, d.status, d.last_seen_at,
                  d.pending_changes, d.pending_photos, d.pending_reported_at FROM devices d
         JOIN users u ON u.id = d.officer_id WHERE u.unit_id IN t ORDER BY d.id",
        Scope::SUBTREE
    ))?;
    let mut rows = stmt.query([scope.root])?;
    while let Some(r) = rows.next()? {
        if let Some(&n) = index.get(&r.get::<_, i64>(0)?) {
            let pending = PendingReport::read(r, 5)?;
            let o = &mut officers[n];
            let add = |sum: Option<i64>, n: Option<i64>| n.map(|n| sum.unwrap_or(0) + n).or(sum);
            o.pending_changes = add(o.pending_changes, pending.pending_changes);
            o.pending_photos = add(o.pending_photos, pending.pending_photos);
            o.handhelds.push(HandheldSeen {
                device_id: r.get(1)?,
                name: r.get(2)?,
                status: r.get(3)?,
                last_seen_at: r.get(4)?,
                pending,
            });
        }
    }
    Ok(officers)
}

/// An active handheld that has not synced for the asked number of hours (or never).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SilentHandheld {
    pub device_id: String,
    pub name: String,
    pub officer: String,
    #[serde(with = "rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_seen_at: Option<i64>,
    /// What it said it still held unsent when it last reported (null: never said).
    #[serde(flatten)]
    pub pending: PendingReport,
}

pub fn silent_handhelds(
    c: &Connection,
    scope: Scope,
    now: i64,
    hours: i64,
) -> Result<Vec<SilentHandheld>, ApiError> {
    let mut stmt = c.prepare_cached(&format!(
        "{} SELECT d.id, d.name, u.username, d.last_seen_at, d.pending_changes, d.pending_photos,
                  d.pending_reported_at FROM devices d JOIN users u ON u.id = d.officer_id
         WHERE u.unit_id IN t AND d.status = 'active' AND (d.last_seen_at IS NULL OR d.last_seen_at < ?)
         ORDER BY d.last_seen_at IS NOT NULL, d.last_seen_at, d.id",
        Scope::SUBTREE
    ))?;
    let rows = stmt.query_map(rusqlite::params![scope.root, now - hours * 3_600_000], |r| {
        Ok(SilentHandheld {
            device_id: r.get(0)?,
            name: r.get(1)?,
            officer: r.get(2)?,
            last_seen_at: r.get(3)?,
            pending: PendingReport::read(r, 4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A record with open conflicts: the instruction cannot be submitted until someone resolves them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OpenConflict {
    pub instruction_id: i64,
    pub inspection_no: String,
    pub site_code: String,
    pub state: String,
    pub open_conflicts: i64,
    /// Every conflicting value with the officer who wrote it (as `GET …/record` shows them).
    pub conflicts: serde_json::Value,
}

/// Driven from the few records with open conflicts (partial index `record_projection_conflicts`), not
/// from every instruction of the subtree, which the planner otherwise picks for the scope term.
pub fn open_conflicts(c: &Connection, scope: Scope) -> Result<Vec<OpenConflict>, ApiError> {
    let si = scope.instruction_in(c, "i")?;
    let mut stmt = c.prepare_cached(&format!(
        "{} SELECT i.id, i.inspection_no, s.code, i.state, p.open_conflicts, p.conflicts
         FROM record_projection p INDEXED BY record_projection_conflicts
         CROSS JOIN instructions i ON i.id = p.instruction_id
         JOIN customs_units s ON s.id = i.site_id
         WHERE p.open_conflicts > 0 AND {si} ORDER BY i.id",
        Scope::SUBTREE
    ))?;
    let rows = stmt.query_map([scope.root], |r| {
        let instruction_id: i64 = r.get(0)?;
        Ok(OpenConflict {
            instruction_id,
            inspection_no: r.get(1)?,
            site_code: r.get(2)?,
            state: r.get(3)?,
            open_conflicts: r.get(4)?,
            conflicts: crate::db::stored_json(r, 5, "record_projection.conflicts", instruction_id)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// An overdue instruction, with every rule it breaks.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Overdue {
    pub instruction_id: i64,
    pub inspection_no: String,
    pub site_code: String,
    pub state: String,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub deadline: i64,
    #[serde(with = "rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub due_at: Option<i64>,
    pub reasons: Vec<OverdueReason>,
    pub officers: Vec<String>,
}

/// The most this table answers at once; the instruction list (`overdue=true`) pages through the rest.
pub const OVERDUE_TABLE_LIMIT: i64 = 500;

/// Overdue instructions of the subtree, whenever created, oldest deadline first.
pub fn overdue(
    c: &Connection,
    scope: Scope,
    rules: &OverdueRules,
    limit: i64,
) -> Result<Vec<Overdue>, ApiError> {
    let si = scope.instruction_in(c, "i")?;
    let (columns, column_values) = rules.columns();
    let (open_any, open_values) = rules.open_any();
    let (held, held_values) = rules.rule(OverdueReason::GoodsHeld);
    let mut values: Vec<Value> = vec![scope.root.into()];
    values.extend(open_values);
    values.extend(held_values);
    values.extend(column_values);
    values.push(limit.into());
    // Open work and goods held are found apart: one OR across both (the held rule's subquery among
    // them) keeps SQLite from using the partial index `instructions_open` for the open part.
    let mut stmt = c.prepare_cached(&format!(
        "{}, hits(id) AS (
             SELECT i.id FROM instructions i WHERE {si} AND {open} AND {open_any}
             UNION
             SELECT i.id FROM instructions i WHERE {si} AND {held})
         SELECT i.id, i.inspection_no, s.code, i.state, i.deadline, i.due_at, {columns},
                (SELECT group_concat(u.username, ',') FROM instruction_officers o JOIN users u ON u.id = o.officer_id
                 WHERE o.instruction_id = i.id)
         FROM hits h JOIN instructions i ON i.id = h.id JOIN customs_units s ON s.id = i.site_id
         ORDER BY i.deadline, i.id LIMIT ?",
        Scope::SUBTREE,
        open = OverdueRules::OPEN,
    ))?;
    let rows = stmt.query_map(params_from_iter(values), |r| {
        let flags: [bool; 4] = [r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?];
        let officers: Option<String> = r.get(10)?;
        Ok(Overdue {
            instruction_id: r.get(0)?,
            inspection_no: r.get(1)?,
            site_code: r.get(2)?,
            state: r.get(3)?,
            deadline: r.get(4)?,
            due_at: r.get(5)?,
            reasons: OverdueReason::ALL.into_iter().zip(flags).filter(|(_, f)| *f).map(|(r, _)| r).collect(),
            officers: officers.map(|s| s.split(',').map(str::to_owned).collect()).unwrap_or_default(),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

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

pub fn photo_points(
    c: &Connection,
    scope: Scope,
    period: Period,
    far_km: f64,
) -> Result<Vec<PhotoPoint>, ApiError> {
    let si = scope.instruction_in(c, "i")?;
    let mut stmt = c.prepare_cached(&format!(
        "{} SELECT p.sha256, i.id, i.state, s.code, p.latitude, p.longitude, l.latitude, l.longitude
         FROM photo_links pl JOIN photos p ON p.sha256 = pl.sha256
         JOIN instructions i ON i.id = pl.instruction_id JOIN customs_units s ON s.id = i.site_id
         LEFT JOIN site_locations l ON l.unit_id = i.site_id
         WHERE {si} AND i.created_at >= ? AND i.created_at < ?
           AND p.latitude IS NOT NULL AND p.longitude IS NOT NULL
         ORDER BY pl.linked_at DESC LIMIT ?",
        Scope::SUBTREE
    ))?;
    let rows =
        stmt.query_map(rusqlite::params![scope.root, period.from, period.to, MAP_POINT_LIMIT], |r| {
            let (lat, lon): (f64, f64) = (r.get(4)?, r.get(5)?);
            let site: Option<(f64, f64)> = match (r.get::<_, Option<f64>>(6)?, r.get::<_, Option<f64>>(7)?) {
                (Some(a), Some(b)) => Some((a, b)),
                _ => None,
            };
            let km = site.map(|s| distance_km(s, (lat, lon)));
            Ok(PhotoPoint {
                sha256: r.get(0)?,
                instruction_id: r.get(1)?,
                state: r.get(2)?,
                site_code: r.get(3)?,
                latitude: lat,
                longitude: lon,
                km_from_site: km.map(|k| (k * 10.0).round() / 10.0),
                far: km.is_some_and(|k| k > far_km),
            })
        })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A site's known location, for the map.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SitePoint {
    pub code: String,
    pub name: String,
    pub latitude: f64,
    pub longitude: f64,
}

pub fn site_points(c: &Connection, scope: Scope) -> Result<Vec<SitePoint>, ApiError> {
    let mut stmt = c.prepare_cached(&format!(
        "{} SELECT u.code, u.name, l.latitude, l.longitude FROM site_locations l
         JOIN customs_units u ON u.id = l.unit_id WHERE u.id IN t ORDER BY u.code",
        Scope::SUBTREE
    ))?;
    let rows = stmt.query_map([scope.root], |r| {
        Ok(SitePoint { code: r.get(0)?, name: r.get(1)?, latitude: r.get(2)?, longitude: r.get(3)? })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Records a site's location (demo data and administrators' fixtures).
pub fn set_site_location(
    c: &Connection,
    unit_id: i64,
    latitude: f64,
    longitude: f64,
) -> Result<(), ApiError> {
    c.execute(
        "INSERT INTO site_locations (unit_id, latitude, longitude) VALUES (?1, ?2, ?3)
         ON CONFLICT (unit_id) DO UPDATE SET latitude = excluded.latitude, longitude = excluded.longitude",
        rusqlite::params![unit_id, latitude, longitude],
    )?;
    Ok(())
}
