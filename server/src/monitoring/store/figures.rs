//! The figures' reads. Counts by state come from the day tallies `instruction_day_counts` and
//! `officer_day_counts` (migration 0020, kept by triggers in the transaction of every change) for the
//! whole days of a period, and from the instructions themselves for the partial days at its edges
//! ([`DaySplit`]). Each query names the index it was tuned for (issue 13, docs/monitoring.md).

use std::collections::HashMap;

use rusqlite::{Row, params, params_from_iter};

use super::{OverdueRules, Reach, SUBTREE};
use crate::{
    db::{Conn, SqlValue as Value, stored_json},
    error::StoreError,
    monitoring::{
        OverdueReason, Period,
        lists::{
            HandheldSeen, OfficerLoad, OpenConflict, Overdue, PendingReport, SilentHandheld, SitePoint,
            UnitName,
        },
    },
};

const DAY_MS: i64 = 86_400_000;

/// A period cut into the whole UTC days that the day tallies answer (`days`, a half-open range of day
/// numbers, possibly empty) and the partial days at either edge, read from the instructions themselves
/// (`edges`, two half-open time ranges, possibly empty). Together they cover the period exactly once.
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

/// A value counted for one district (`unit_id`) and one site.
#[derive(Debug, Clone)]
pub struct AtPlace<T> {
    pub unit_id: i64,
    pub site_id: i64,
    pub value: T,
}

/// Instructions of one unit and site in one state, with the approved ones' on-time and non-conforming
/// counts.
#[derive(Debug, Clone)]
pub struct StateTally {
    pub state: String,
    pub instructions: i64,
    pub on_time: i64,
    pub non_conforming: i64,
}

/// How many instructions are in one state.
#[derive(Debug, Clone)]
pub struct InState {
    pub state: String,
    pub instructions: i64,
}

/// A value counted for one officer.
#[derive(Debug, Clone)]
pub struct ForOfficer<K, T> {
    pub officer: K,
    pub value: T,
}

/// The units of the subtree by id, and the districts whose instructions are at its sites, for naming figures.
pub fn unit_names(c: &Conn, reach: Reach) -> Result<HashMap<i64, UnitName>, StoreError> {
    let mut stmt = c.prepare_cached(&format!(
        "{} SELECT u.id, u.code, u.name FROM customs_units u WHERE u.id IN tu",
        SUBTREE
    ))?;
    let rows =
        stmt.query_map([reach.root], |r| Ok((r.get(0)?, UnitName { code: r.get(1)?, name: r.get(2)? })))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The instructions created in `period` by district, site and state: whole days from
/// `instruction_day_counts`, the edge days' rows from the instructions (`instructions_monitoring`).
pub fn state_tallies(c: &Conn, reach: Reach, period: Period) -> Result<Vec<AtPlace<StateTally>>, StoreError> {
    let split = DaySplit::of(period);
    let si = reach.instruction("i");
    let sd = reach.instruction("d");
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
        SUBTREE
    ))?;
    let [(a, b), (y, z)] = split.edges;
    let rows = stmt.query_map(params![reach.root, split.days.0, split.days.1, a, b, y, z], |r| {
        Ok(AtPlace {
            unit_id: r.get(0)?,
            site_id: r.get(1)?,
            value: StateTally {
                state: r.get(2)?,
                instructions: r.get(3)?,
                on_time: r.get(4)?,
                non_conforming: r.get(5)?,
            },
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn counted(r: &Row<'_>) -> rusqlite::Result<AtPlace<i64>> {
    Ok(AtPlace { unit_id: r.get(0)?, site_id: r.get(1)?, value: r.get(2)? })
}

/// How many instructions created in `period` are overdue now, by district and site: among open work
/// (partial index `instructions_open`), then among goods held too long. Goods held are approved work,
/// disjoint from the open work; they are found from the few applications still awaiting disposal
/// rather than from every approved instruction.
pub fn overdue_counts(
    c: &Conn,
    reach: Reach,
    period: Period,
    rules: &OverdueRules,
) -> Result<Vec<AtPlace<i64>>, StoreError> {
    let si = reach.instruction("i");
    let (late, late_values) = rules.open_any();
    let mut values: Vec<Value> = vec![reach.root.into(), period.from.into(), period.to.into()];
    values.extend(late_values);
    let mut stmt = c.prepare_cached(&format!(
        "{} SELECT i.unit_id, i.site_id, count(*) FROM instructions i INDEXED BY instructions_open
         WHERE {si} AND i.created_at >= ? AND i.created_at < ? AND {} AND {late}
         GROUP BY 1, 2",
        SUBTREE,
        OverdueRules::OPEN,
    ))?;
    let mut out = stmt.query_map(params_from_iter(values), counted)?.collect::<Result<Vec<_>, _>>()?;

    let (held, held_values) = rules.rule(OverdueReason::GoodsHeld);
    let mut values: Vec<Value> = vec![reach.root.into(), period.from.into(), period.to.into()];
    values.extend(held_values);
    let mut stmt = c.prepare_cached(&format!(
        "{} SELECT i.unit_id, i.site_id, count(*)
         FROM applications a INDEXED BY applications_state_time JOIN instructions i ON i.application_id = a.id
         WHERE a.state = 'not_released' AND {si} AND i.created_at >= ? AND i.created_at < ? AND {held}
         GROUP BY 1, 2",
        SUBTREE
    ))?;
    for row in stmt.query_map(params_from_iter(values), counted)? {
        out.push(row?);
    }
    Ok(out)
}

/// Issue → approved of every approved instruction created in `period`, in milliseconds, by district and
/// site (partial index `instructions_approved`): the median and p90 need them one by one.
pub fn approved_durations(c: &Conn, reach: Reach, period: Period) -> Result<Vec<AtPlace<i64>>, StoreError> {
    let si = reach.instruction("i");
    let mut stmt = c.prepare_cached(&format!(
        "{} SELECT i.unit_id, i.site_id, coalesce(i.state_since, i.created_at) - i.created_at
         FROM instructions i INDEXED BY instructions_approved
         WHERE i.state = 'approved' AND {si} AND i.created_at >= ? AND i.created_at < ?",
        SUBTREE
    ))?;
    let rows = stmt.query_map(params![reach.root, period.from, period.to], counted)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The field officers of the subtree, ordered by username, with nothing counted yet.
pub fn officers(c: &Conn, reach: Reach) -> Result<Vec<OfficerLoad>, StoreError> {
    let mut stmt = c.prepare_cached(&format!(
        "{} SELECT u.id, u.username, u.display_name, cu.code, u.status FROM users u
         JOIN customs_units cu ON cu.id = u.unit_id
         WHERE u.role = 'officer' AND u.unit_id IN t ORDER BY u.username",
        SUBTREE
    ))?;
    let rows = stmt.query_map([reach.root], |r| {
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
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The instructions assigned to each officer by state, among those created in `period`: whole days from
/// `officer_day_counts`, the edge days' assignments from the instructions. The officers' tallies are
/// kept per district; a site supervisor's instructions of other districts ([`Reach::outside`]) are read
/// from the instructions over the whole days too. Any other scope has none, and a constant-false branch
/// is not run at all: searching the whole days' instructions of the subtree only to drop every row cost
/// the administrator's figures a third of their time.
pub fn officer_tallies(
    c: &Conn,
    reach: Reach,
    period: Period,
) -> Result<Vec<ForOfficer<i64, InState>>, StoreError> {
    let split = DaySplit::of(period);
    let si = reach.instruction("i");
    let outside = reach.outside("i");
    let assigned = "SELECT o.officer_id, i.state, 1 FROM instruction_officers o JOIN instructions i ON i.id = o.instruction_id";
    let edge = format!("{assigned} WHERE {si} AND i.created_at >= ? AND i.created_at < ?");
    let mut stmt = c.prepare_cached(&format!(
        "{}, tallies(officer_id, state, n) AS (
             SELECT d.officer_id, d.state, d.instructions FROM officer_day_counts d
             WHERE d.unit_id IN t AND d.day >= ? AND d.day < ?
             UNION ALL {assigned} WHERE {outside} AND i.created_at >= ? AND i.created_at < ?
             UNION ALL {edge} UNION ALL {edge})
         SELECT officer_id, state, sum(n) FROM tallies GROUP BY 1, 2",
        SUBTREE
    ))?;
    let [(a, b), (y, z)] = split.edges;
    let (d0, d1) = split.days;
    let rows = stmt.query_map(params![reach.root, d0, d1, d0 * DAY_MS, d1 * DAY_MS, a, b, y, z], |r| {
        Ok(ForOfficer { officer: r.get(0)?, value: InState { state: r.get(1)?, instructions: r.get(2)? } })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// How many of each officer's instructions created in `period` are overdue now (open work and held goods,
/// as in [`overdue_counts`]).
pub fn officer_overdue(
    c: &Conn,
    reach: Reach,
    period: Period,
    rules: &OverdueRules,
) -> Result<Vec<ForOfficer<i64, i64>>, StoreError> {
    let si = reach.instruction("i");
    let (late, late_values) = rules.open_any();
    let (held, held_values) = rules.rule(OverdueReason::GoodsHeld);
    let mut values: Vec<Value> = vec![reach.root.into(), period.from.into(), period.to.into()];
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
        SUBTREE,
        OverdueRules::OPEN,
    ))?;
    let rows = stmt
        .query_map(params_from_iter(values), |r| Ok(ForOfficer { officer: r.get(0)?, value: r.get(1)? }))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Photos named by open records, not withdrawn and not yet on the server, by the username that took
/// them; driven from open work (`instructions_open`).
pub fn photos_missing(c: &Conn, reach: Reach) -> Result<Vec<ForOfficer<String, i64>>, StoreError> {
    let si = reach.instruction("i");
    let mut stmt = c.prepare_cached(&format!(
        "{} SELECT rp.by_officer, count(*) FROM instructions i INDEXED BY instructions_open
         JOIN record_photos rp ON rp.instruction_id = i.id
         WHERE {si} AND {} AND NOT rp.withdrawn
           AND NOT EXISTS (SELECT 1 FROM photos p WHERE p.sha256 = rp.sha256)
         GROUP BY rp.by_officer",
        SUBTREE,
        OverdueRules::OPEN,
    ))?;
    let rows = stmt.query_map([reach.root], |r| Ok(ForOfficer { officer: r.get(0)?, value: r.get(1)? }))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Columns `pending_changes, pending_photos, pending_reported_at` from `at` on.
fn pending_report(r: &Row<'_>, at: usize) -> rusqlite::Result<PendingReport> {
    Ok(PendingReport {
        pending_changes: r.get(at)?,
        pending_photos: r.get(at + 1)?,
        pending_reported_at: r.get(at + 2)?,
    })
}

/// The handhelds of the subtree's officers, by officer id, in device id order.
pub fn handhelds(c: &Conn, reach: Reach) -> Result<Vec<ForOfficer<i64, HandheldSeen>>, StoreError> {
    let mut stmt = c.prepare_cached(&format!(
        "{} SELECT d.officer_id, d.id, d.name, d.status, d.last_seen_at,
                  d.pending_changes, d.pending_photos, d.pending_reported_at FROM devices d
         JOIN users u ON u.id = d.officer_id WHERE u.unit_id IN t ORDER BY d.id",
        SUBTREE
    ))?;
    let rows = stmt.query_map([reach.root], |r| {
        Ok(ForOfficer {
            officer: r.get(0)?,
            value: HandheldSeen {
                device_id: r.get(1)?,
                name: r.get(2)?,
                status: r.get(3)?,
                last_seen_at: r.get(4)?,
                pending: pending_report(r, 5)?,
            },
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Active handhelds of the subtree that have not synced since `before` (or never), the longest silent
/// first.
pub fn silent_handhelds(c: &Conn, reach: Reach, before: i64) -> Result<Vec<SilentHandheld>, StoreError> {
    let mut stmt = c.prepare_cached(&format!(
        "{} SELECT d.id, d.name, u.username, d.last_seen_at, d.pending_changes, d.pending_photos,
                  d.pending_reported_at FROM devices d JOIN users u ON u.id = d.officer_id
         WHERE u.unit_id IN t AND d.status = 'active' AND (d.last_seen_at IS NULL OR d.last_seen_at < ?)
         ORDER BY d.last_seen_at IS NOT NULL, d.last_seen_at, d.id",
        SUBTREE
    ))?;
    let rows = stmt.query_map(params![reach.root, before], |r| {
        Ok(SilentHandheld {
            device_id: r.get(0)?,
            name: r.get(1)?,
            officer: r.get(2)?,
            last_seen_at: r.get(3)?,
            pending: pending_report(r, 4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Driven from the few records with open conflicts (partial index `record_projection_conflicts`), not
/// from every instruction of the subtree, which the planner otherwise picks for the scope term.
pub fn open_conflicts(c: &Conn, reach: Reach) -> Result<Vec<OpenConflict>, StoreError> {
    let si = reach.instruction("i");
    let mut stmt = c.prepare_cached(&format!(
        "{} SELECT i.id, i.inspection_no, s.code, i.state, p.open_conflicts, p.conflicts
         FROM record_projection p INDEXED BY record_projection_conflicts
         CROSS JOIN instructions i ON i.id = p.instruction_id
         JOIN customs_units s ON s.id = i.site_id
         WHERE p.open_conflicts > 0 AND {si} ORDER BY i.id",
        SUBTREE
    ))?;
    let rows = stmt.query_map([reach.root], |r| {
        let instruction_id: i64 = r.get(0)?;
        Ok(OpenConflict {
            instruction_id,
            inspection_no: r.get(1)?,
            site_code: r.get(2)?,
            state: r.get(3)?,
            open_conflicts: r.get(4)?,
            conflicts: stored_json(r, 5, "record_projection.conflicts", instruction_id)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Overdue instructions of the subtree, whenever created, oldest deadline first, at most `limit`.
pub fn overdue(c: &Conn, reach: Reach, rules: &OverdueRules, limit: i64) -> Result<Vec<Overdue>, StoreError> {
    let si = reach.instruction("i");
    let (columns, column_values) = rules.columns();
    let (open_any, open_values) = rules.open_any();
    let (held, held_values) = rules.rule(OverdueReason::GoodsHeld);
    let mut values: Vec<Value> = vec![reach.root.into()];
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
        SUBTREE,
        open = OverdueRules::OPEN,
    ))?;
    let rows = stmt.query_map(params_from_iter(values), |r| {
        let flags: [bool; 4] = [r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?];
        // NULL: no officer assigned yet (a derived value, not a damaged one).
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

/// Where a photo of an instruction was taken, with its site's location when known.
#[derive(Debug, Clone)]
pub struct PhotoTaken {
    pub sha256: String,
    pub instruction_id: i64,
    pub state: String,
    pub site_code: String,
    pub at: (f64, f64),
    pub site: Option<(f64, f64)>,
}

/// The located photos of the instructions created in `period`, newest link first, at most `limit`.
pub fn photos_taken(
    c: &Conn,
    reach: Reach,
    period: Period,
    limit: i64,
) -> Result<Vec<PhotoTaken>, StoreError> {
    let si = reach.instruction("i");
    let mut stmt = c.prepare_cached(&format!(
        "{} SELECT p.sha256, i.id, i.state, s.code, p.latitude, p.longitude, l.latitude, l.longitude
         FROM photo_links pl JOIN photos p ON p.sha256 = pl.sha256
         JOIN instructions i ON i.id = pl.instruction_id JOIN customs_units s ON s.id = i.site_id
         LEFT JOIN site_locations l ON l.unit_id = i.site_id
         WHERE {si} AND i.created_at >= ? AND i.created_at < ?
           AND p.latitude IS NOT NULL AND p.longitude IS NOT NULL
         ORDER BY pl.linked_at DESC LIMIT ?",
        SUBTREE
    ))?;
    let rows = stmt.query_map(params![reach.root, period.from, period.to, limit], |r| {
        Ok(PhotoTaken {
            sha256: r.get(0)?,
            instruction_id: r.get(1)?,
            state: r.get(2)?,
            site_code: r.get(3)?,
            at: (r.get(4)?, r.get(5)?),
            site: match (r.get::<_, Option<f64>>(6)?, r.get::<_, Option<f64>>(7)?) {
                (Some(a), Some(b)) => Some((a, b)),
                _ => None,
            },
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The subtree's sites with a known location, by code.
pub fn site_points(c: &Conn, reach: Reach) -> Result<Vec<SitePoint>, StoreError> {
    let mut stmt = c.prepare_cached(&format!(
        "{} SELECT u.code, u.name, l.latitude, l.longitude FROM site_locations l
         JOIN customs_units u ON u.id = l.unit_id WHERE u.id IN t ORDER BY u.code",
        SUBTREE
    ))?;
    let rows = stmt.query_map([reach.root], |r| {
        Ok(SitePoint { code: r.get(0)?, name: r.get(1)?, latitude: r.get(2)?, longitude: r.get(3)? })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Records a site's location (demo data and administrators' fixtures).
pub fn set_site_location(c: &Conn, unit_id: i64, latitude: f64, longitude: f64) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO site_locations (unit_id, latitude, longitude) VALUES (?1, ?2, ?3)
         ON CONFLICT (unit_id) DO UPDATE SET latitude = excluded.latitude, longitude = excluded.longitude",
        params![unit_id, latitude, longitude],
    )?;
    Ok(())
}
