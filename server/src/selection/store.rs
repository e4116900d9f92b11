//! SQL for `selections`: one stored decision per application (seed, inputs and explanation as JSON text).

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::{domain::SelectionOutcome, error::StoreError};

/// A stored decision as its row holds it; the caller parses the JSON and replays it.
pub struct SelectionRow {
    pub outcome: SelectionOutcome,
    pub seed: String,
    pub inputs: String,
    pub explanation: String,
    pub decided_at: i64,
}

/// Stores the decision for `row`'s application, replacing an earlier one (a re-approval decides again).
pub fn upsert(tx: &Transaction<'_>, application_id: i64, row: &SelectionRow) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO selections (application_id, outcome, seed, inputs, explanation, decided_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (application_id) DO UPDATE SET outcome = excluded.outcome, seed = excluded.seed,
             inputs = excluded.inputs, explanation = excluded.explanation, decided_at = excluded.decided_at",
        params![application_id, row.outcome, row.seed, row.inputs, row.explanation, row.decided_at],
    )?;
    Ok(())
}

pub fn get(c: &Connection, application_id: i64) -> Result<Option<SelectionRow>, StoreError> {
    Ok(c.query_row(
        "SELECT outcome, seed, inputs, explanation, decided_at FROM selections WHERE application_id = ?1",
        [application_id],
        |r| {
            Ok(SelectionRow {
                outcome: r.get(0)?,
                seed: r.get(1)?,
                inputs: r.get(2)?,
                explanation: r.get(3)?,
                decided_at: r.get(4)?,
            })
        },
    )
    .optional()?)
}
