//! The overdue rules as SQL over `instructions i`: the one definition the figures, the overdue table and
//! the instruction list's `overdue` filter all use.

use super::super::OverdueReason;
use crate::{config::MonitoringSettings, db::SqlValue as Value};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_overdue_rule_takes_as_many_parameters_as_it_has_placeholders() {
        let rules = OverdueRules { now: 10, slot_result_ms: 1, approval_wait_ms: 2, disposal_wait_ms: 3 };
        for reason in OverdueReason::ALL {
            let (sql, values) = rules.rule(reason);
            assert_eq!(sql.matches('?').count(), values.len(), "{}", reason.as_str());
        }
    }
}
