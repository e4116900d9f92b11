//! Monitoring's SQL: every read the figures, the overdue table, the officers' load, the map and the event
//! stream make, and the one write (a site's location). Nothing above this folder names the database.
//!
//! # Layout
//! - this file: the scope as SQL (the subtree CTEs and the supervisor rule) and [`Reach`], what a request
//!   learns of its scope once before it reads.
//! - [`rules`]: the overdue rules as SQL ([`OverdueRules`]), shared with the instruction list's filter.
//! - [`figures`]: the reads behind `monitoring::figures` (tallies, overdue counts, durations, officers,
//!   handhelds, conflicts, the overdue table, photo and site points).
//! - [`events`]: the receipts as stream events, and the subtree's unit ids for the per-event check.
//!
//! Every function answers [`StoreError`]; the query texts (and so their plans, tuned in issue 13 and
//! measured in docs/monitoring.md) are the ones the figures always ran.

pub mod events;
pub mod figures;
pub mod rules;

pub use rules::OverdueRules;

use super::Scope;
use crate::{db::Conn, error::StoreError};

/// CTEs naming the subtree `t(id)` and `tu(id)`, the districts whose instructions may be in scope: the
/// subtree's own plus those with instructions at one of its sites (`site_districts`, a few pairs). Their
/// one parameter is [`Scope::root`].
pub const SUBTREE: &str = "WITH RECURSIVE t(id) AS (SELECT ? UNION ALL \
     SELECT u.id FROM customs_units u JOIN t ON u.parent_id = t.id), \
     tu(id) AS (SELECT id FROM t UNION SELECT sd.unit_id FROM site_districts sd WHERE sd.site_id IN t)";

/// The one supervisor rule (`db::scope::instruction_in_subtree`: district OR site in the subtree) for the
/// row aliased `alias` (an instruction or a day tally, both with `unit_id` and `site_id`), under
/// [`SUBTREE`]. Written as "district in `tu`" first so every query keeps the indexes that lead with the
/// district; for a district's supervisor `tu` is the subtree and the second term always holds.
fn instruction_rule(alias: &str) -> String {
    format!("{alias}.unit_id IN tu AND ({alias}.unit_id IN t OR {alias}.site_id IN t)")
}

/// A scope as its reads need it: the subtree's root, and whether the subtree's sites take instructions of
/// a district outside it (`tu` is more than `t`, only a site supervisor's). Asked once per request
/// ([`reach`]), then every query of that request builds its scope term from it.
#[derive(Debug, Clone, Copy)]
pub struct Reach {
    pub root: i64,
    outside: bool,
}

/// Looks up the [`Reach`] of `scope`: one small query over the subtree.
pub fn reach(c: &Conn, scope: Scope) -> Result<Reach, StoreError> {
    let mut stmt =
        c.prepare_cached(&format!("{SUBTREE} SELECT EXISTS (SELECT 1 FROM tu WHERE id NOT IN t)"))?;
    let outside = stmt.query_row([scope.root], |r| r.get(0))?;
    Ok(Reach { root: scope.root, outside })
}

impl Reach {
    /// The supervisor rule as this scope needs it: only when the subtree's sites take instructions of a
    /// district outside it does a row need the second term; for a district's supervisor or the
    /// administrator `tu` is `t` and "district in the subtree" is the whole rule, one lookup per row
    /// instead of three (docs/monitoring.md has the benchmark).
    pub fn instruction(&self, alias: &str) -> String {
        if self.outside { instruction_rule(alias) } else { format!("{alias}.unit_id IN t") }
    }

    /// Rows of the districts outside the subtree whose site lies in it (only a site supervisor's): the part
    /// of the rule that tallies kept per district cannot answer. For any other scope a constant false, which
    /// SQLite does not run at all.
    pub fn outside(&self, alias: &str) -> String {
        if self.outside {
            format!("{alias}.unit_id IN tu AND {alias}.unit_id NOT IN t AND {alias}.site_id IN t")
        } else {
            "0".to_owned()
        }
    }
}
