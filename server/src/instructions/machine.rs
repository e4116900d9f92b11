//! The instruction's state machine: which event may happen in which state, and where it leads.
//!
//! Pure: no storage, no clock. The workflow asks [`next`] before it writes anything, so an event that
//! does not fit the state is refused with a named error and nothing is half-written.
//!
//! ```text
//! issued ──booked──▶ booked ──booking_withdrawn──▶ issued
//! issued | booked | assigned ──assigned──▶ assigned ──inspection_started──▶ in_progress
//! in_progress ──result_submitted──▶ submitted ──result_approved──▶ approved (sealed)
//! submitted ──result_returned | result_reopened──▶ in_progress
//! issued … submitted ──force_released──▶ force_released (sealed)
//! issued … in_progress ──cancelled──▶ cancelled (sealed)
//! ```

use crate::domain::InstructionState;

/// The events are a closed vocabulary beside the receipts' other events (`domain::events`).
pub use crate::domain::events::InstructionEvent;

/// An event that the instruction's state does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an instruction that is {state} cannot take the event {event}")]
pub struct IllegalTransition {
    pub state: InstructionState,
    pub event: InstructionEvent,
}

/// Where `event` leads from `state`, or why it cannot happen.
pub fn next(state: InstructionState, event: InstructionEvent) -> Result<InstructionState, IllegalTransition> {
    use InstructionEvent as E;
    use InstructionState as S;
    let to = match (state, event) {
        (S::Issued, E::Booked) => S::Booked,
        (S::Booked, E::BookingWithdrawn) => S::Issued,
        (S::Issued | S::Booked | S::Assigned, E::Assigned) => S::Assigned,
        (S::Assigned, E::InspectionStarted) => S::InProgress,
        (S::InProgress, E::ResultSubmitted) => S::Submitted,
        (S::Submitted, E::ResultReopened | E::ResultReturned) => S::InProgress,
        (S::Submitted, E::ResultApproved) => S::Approved,
        (S::Issued | S::Booked | S::Assigned | S::InProgress | S::Submitted, E::ForceReleased) => {
            S::ForceReleased
        }
        // A submitted result is decided by approval or return, not by cancelling the instruction.
        (S::Issued | S::Booked | S::Assigned | S::InProgress, E::Cancelled) => S::Cancelled,
        _ => return Err(IllegalTransition { state, event }),
    };
    Ok(to)
}

/// A sealed record refuses every new change: its heads are the evidence (approved, force-released),
/// or nobody is to inspect any more (cancelled).
pub fn is_sealed(state: InstructionState) -> bool {
    matches!(
        state,
        InstructionState::Approved | InstructionState::ForceReleased | InstructionState::Cancelled
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use InstructionEvent as E;
    use InstructionState as S;

    /// Every legal pair, written out once more by hand: the table above must match it exactly.
    const LEGAL: &[(S, E, S)] = &[
        (S::Issued, E::Booked, S::Booked),
        (S::Issued, E::Assigned, S::Assigned),
        (S::Issued, E::ForceReleased, S::ForceReleased),
        (S::Issued, E::Cancelled, S::Cancelled),
        (S::Booked, E::BookingWithdrawn, S::Issued),
        (S::Booked, E::Assigned, S::Assigned),
        (S::Booked, E::ForceReleased, S::ForceReleased),
        (S::Booked, E::Cancelled, S::Cancelled),
        (S::Assigned, E::Assigned, S::Assigned),
        (S::Assigned, E::InspectionStarted, S::InProgress),
        (S::Assigned, E::ForceReleased, S::ForceReleased),
        (S::Assigned, E::Cancelled, S::Cancelled),
        (S::InProgress, E::ResultSubmitted, S::Submitted),
        (S::InProgress, E::ForceReleased, S::ForceReleased),
        (S::InProgress, E::Cancelled, S::Cancelled),
        (S::Submitted, E::ResultReopened, S::InProgress),
        (S::Submitted, E::ResultReturned, S::InProgress),
        (S::Submitted, E::ResultApproved, S::Approved),
        (S::Submitted, E::ForceReleased, S::ForceReleased),
    ];

    #[test]
    fn every_state_and_event_pair_is_either_the_listed_transition_or_a_named_illegal_one() {
        let mut legal = 0;
        for &state in S::ALL {
            for &event in E::ALL {
                let expected =
                    LEGAL.iter().find(|(s, e, _)| *s == state && *e == event).map(|(_, _, to)| *to);
                match (next(state, event), expected) {
                    (Ok(to), Some(want)) => {
                        assert_eq!(to, want, "{state} × {event}");
                        legal += 1;
                    }
                    (Err(e), None) => {
                        assert_eq!(e, IllegalTransition { state, event });
                        assert_eq!(
                            e.to_string(),
                            format!("an instruction that is {state} cannot take the event {event}")
                        );
                    }
                    (got, want) => panic!("{state} × {event}: table says {got:?}, expected {want:?}"),
                }
            }
        }
        assert_eq!(legal, LEGAL.len());
    }

    #[test]
    fn sealed_states_take_no_event_at_all() {
        for &state in S::ALL.iter().filter(|s| is_sealed(**s)) {
            for &event in E::ALL {
                assert!(next(state, event).is_err(), "{state} × {event}");
            }
        }
    }

    #[test]
    fn every_state_but_a_sealed_one_can_still_reach_a_sealed_one() {
        for &state in S::ALL.iter().filter(|s| !is_sealed(**s)) {
            assert!(E::ALL.iter().any(|e| next(state, *e).is_ok_and(is_sealed)), "{state} is a dead end");
        }
    }
}
