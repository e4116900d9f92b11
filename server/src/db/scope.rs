//! The visibility predicates, written once: which customs units lie in a unit's subtree (what a
//! supervisor or reviewer sees), and which instructions an officer is assigned to (what an officer sees).
//! Modules put the SQL fragments into their own list queries and call the functions for one object, so
//! a change to either rule (a unit moved, an assignment table reshaped) is made here and nowhere else.
//!
//! Each fragment takes exactly one `?` parameter, bound by the caller in its place among the others: the
//! root unit's id, or the officer's user id.

use rusqlite::Connection;

/// `column IN (every unit id of the subtree rooted at ?)`, the root included.
pub fn unit_in_subtree(column: &str) -> String {
    // The alias is not `u`: callers' own queries join `customs_units u`.
    format!(
        "{column} IN (WITH RECURSIVE subtree(id) AS (SELECT ? UNION ALL \
         SELECT below.id FROM customs_units below JOIN subtree ON below.parent_id = subtree.id) \
         SELECT id FROM subtree)"
    )
}

/// The instruction aliased `alias` lies in the subtree rooted at `?`: its district (`unit_id`) or its site
/// does. This is what a supervisor or reviewer sees and acts on: a district's supervisor has both, a
/// site's supervisor has the site's instructions only. Lists and single-object checks both use it, so
/// what a supervisor can list is exactly what they can assign, approve or cancel.
pub fn instruction_in_subtree(alias: &str) -> String {
    format!(
        "EXISTS (WITH RECURSIVE subtree(id) AS (SELECT ? UNION ALL \
         SELECT below.id FROM customs_units below JOIN subtree ON below.parent_id = subtree.id) \
         SELECT 1 FROM subtree WHERE subtree.id IN ({alias}.unit_id, {alias}.site_id))"
    )
}

/// Does instruction `instruction` lie in the subtree rooted at `root` ([`instruction_in_subtree`])?
pub fn instruction_in_subtree_of(c: &Connection, root: i64, instruction: i64) -> rusqlite::Result<bool> {
    c.query_row(
        &format!(
            "SELECT EXISTS (SELECT 1 FROM instructions i WHERE i.id = ? AND {})",
            instruction_in_subtree("i")
        ),
        [instruction, root],
        |r| r.get(0),
    )
}

/// `column IN (every instruction id assigned to the officer ?)`.
pub fn instruction_assigned_to(column: &str) -> String {
    format!("{column} IN (SELECT instruction_id FROM instruction_officers WHERE officer_id = ?)")
}

/// Is `unit` inside the subtree rooted at `root`? Walks up from `unit`, which is short in any real hierarchy.
pub fn in_subtree(c: &Connection, root: i64, unit: i64) -> rusqlite::Result<bool> {
    c.query_row(
        "WITH RECURSIVE up(id, parent_id) AS (
             SELECT id, parent_id FROM customs_units WHERE id = ?2
             UNION ALL SELECT u.id, u.parent_id FROM customs_units u JOIN up ON u.id = up.parent_id)
         SELECT EXISTS (SELECT 1 FROM up WHERE id = ?1)",
        [root, unit],
        |r| r.get(0),
    )
}

/// Is `officer` assigned to `instruction`?
pub fn is_assigned(c: &Connection, instruction: i64, officer: i64) -> rusqlite::Result<bool> {
    c.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM instruction_officers WHERE instruction_id = ?1 AND officer_id = ?2)",
    )?
    .query_row([instruction, officer], |r| r.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1 → 2 → 3, and 4 beside them; officer 7 assigned to instruction 10. Instruction 20 is district 2's
    /// at site 3, instruction 21 district 1's at site 2.
    fn db() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE customs_units (id INTEGER PRIMARY KEY, parent_id INTEGER);
             INSERT INTO customs_units VALUES (1, NULL), (2, 1), (3, 2), (4, NULL);
             CREATE TABLE instructions (id INTEGER PRIMARY KEY, unit_id INTEGER, site_id INTEGER);
             INSERT INTO instructions VALUES (20, 2, 3), (21, 1, 2);
             CREATE TABLE instruction_officers (instruction_id INTEGER, officer_id INTEGER);
             INSERT INTO instruction_officers VALUES (10, 7), (11, 8);",
        )
        .unwrap();
        c
    }

    #[test]
    fn the_subtree_fragment_and_the_walk_up_agree_on_every_pair_of_units() {
        let c = db();
        for root in 1..=4 {
            let listed: Vec<i64> = c
                .prepare(&format!("SELECT id FROM customs_units WHERE {} ORDER BY id", unit_in_subtree("id")))
                .unwrap()
                .query_map([root], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let walked: Vec<i64> = (1..=4).filter(|&u| in_subtree(&c, root, u).unwrap()).collect();
            assert_eq!(listed, walked, "subtree of {root}");
        }
        assert!(
            in_subtree(&c, 1, 3).unwrap() && !in_subtree(&c, 3, 1).unwrap() && !in_subtree(&c, 4, 2).unwrap()
        );
    }

    #[test]
    fn a_unit_sees_the_instructions_of_its_subtree_by_district_or_by_site_and_lists_and_checks_agree() {
        let c = db();
        for (root, expected) in [(1, vec![20, 21]), (2, vec![20, 21]), (3, vec![20]), (4, vec![])] {
            let listed: Vec<i64> = c
                .prepare(&format!(
                    "SELECT id FROM instructions i WHERE {} ORDER BY id",
                    instruction_in_subtree("i")
                ))
                .unwrap()
                .query_map([root], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(listed, expected, "listed under {root}");
            let checked: Vec<i64> =
                [20, 21].into_iter().filter(|&i| instruction_in_subtree_of(&c, root, i).unwrap()).collect();
            assert_eq!(checked, expected, "checked under {root}");
        }
    }

    #[test]
    fn an_officer_sees_only_the_instructions_assigned_to_them() {
        let c = db();
        let listed: Vec<i64> = c
            .prepare(&format!(
                "SELECT instruction_id FROM instruction_officers WHERE {}",
                instruction_assigned_to("instruction_id")
            ))
            .unwrap()
            .query_map([7], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(listed, [10]);
        assert!(is_assigned(&c, 10, 7).unwrap() && !is_assigned(&c, 11, 7).unwrap());
    }
}
