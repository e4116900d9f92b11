//! Document review (单证审核): approve, return with an opinion, suspend, resume; the document check of
//! consignments the risk engine sent there; and the per-unit auto-review switch.
//!
//! Approval runs the risk engine in the same transaction: the application leaves review as `released`,
//! `document_check` or `inspection` (with its instruction issued), never half-way.

pub mod error;
pub mod http;
pub mod store;

use crate::db::{Conn, Tx};
use serde::{Deserialize, Serialize};
use serde_json::json;

pub use error::ReviewError;
pub use store::auto_review_enabled;

use crate::domain::events::ApplicationEvent;
use crate::{
    applications::{self, Application, ApplicationError, store as app_store},
    audit::{self, Actor},
    domain::Principal,
    domain::{ApplicationState, Role, SelectionOutcome},
    instructions, orgs, selection,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Approve,
    Return,
    Suspend,
    Resume,
    /// Document check passed: release.
    DocumentsPass,
    /// Document check failed: back to the enterprise with the opinion.
    DocumentsFail,
}

impl Action {
    /// As clients spell it (`approve`, `documents_pass`, …), for the refusal's sentence.
    fn name(self) -> &'static str {
        match self {
            Action::Approve => "approve",
            Action::Return => "return",
            Action::Suspend => "suspend",
            Action::Resume => "resume",
            Action::DocumentsPass => "documents_pass",
            Action::DocumentsFail => "documents_fail",
        }
    }

    fn needs_opinion(self) -> bool {
        matches!(self, Action::Return | Action::Suspend | Action::DocumentsFail)
    }
}

/// May this customs user review applications of `district_unit`?
pub fn may_review(c: &Conn, caller: &Principal, district_unit: i64) -> Result<bool, ReviewError> {
    Ok(caller.role == Role::Admin
        || (matches!(caller.role, Role::Reviewer | Role::Supervisor)
            && orgs::store::in_subtree(c, caller.unit()?, district_unit)?))
}

/// Applies one review action; `actor` is the reviewer, or the system for auto-review.
pub fn apply(
    tx: &Tx<'_>,
    now: i64,
    actor: &Actor,
    app: &mut Application,
    action: Action,
    opinion: Option<&str>,
    deadline_ms: i64,
) -> Result<(), ReviewError> {
    let opinion = opinion.map(str::trim).filter(|o| !o.is_empty());
    if action.needs_opinion() && opinion.is_none() {
        return Err(ReviewError::MissingOpinion);
    }
    let from = app.state;
    let wrong_state = || ReviewError::WrongState { action: action.name(), from };
    match action {
        Action::Approve => {
            if from != ApplicationState::Submitted {
                return Err(wrong_state());
            }
            let explanation = selection::select(tx, app, now)?;
            app.disposition = Some(explanation.outcome.as_str().to_string());
            let state = match explanation.outcome {
                SelectionOutcome::Release => ApplicationState::Released,
                SelectionOutcome::DocumentCheck => ApplicationState::DocumentCheck,
                SelectionOutcome::OnSite => ApplicationState::Inspection,
            };
            if state == ApplicationState::Released {
                applications::release(tx, now, actor, app, ApplicationEvent::Approved, opinion, false)?;
            } else {
                applications::transition(tx, now, actor, app, state, ApplicationEvent::Approved, opinion)?;
            }
            if explanation.outcome == SelectionOutcome::OnSite {
                instructions::create_for(tx, app, now + deadline_ms, now)?;
            }
        }
        Action::Return => {
            if !matches!(from, ApplicationState::Submitted | ApplicationState::Suspended) {
                return Err(wrong_state());
            }
            applications::transition(
                tx,
                now,
                actor,
                app,
                ApplicationState::Returned,
                ApplicationEvent::Returned,
                opinion,
            )?;
        }
        Action::Suspend => {
            if from != ApplicationState::Submitted {
                return Err(wrong_state());
            }
            applications::transition(
                tx,
                now,
                actor,
                app,
                ApplicationState::Suspended,
                ApplicationEvent::Suspended,
                opinion,
            )?;
        }
        Action::Resume => {
            if from != ApplicationState::Suspended {
                return Err(wrong_state());
            }
            applications::transition(
                tx,
                now,
                actor,
                app,
                ApplicationState::Submitted,
                ApplicationEvent::Resumed,
                opinion,
            )?;
        }
        Action::DocumentsPass | Action::DocumentsFail => {
            if from != ApplicationState::DocumentCheck {
                return Err(wrong_state());
            }
            if action == Action::DocumentsPass {
                applications::release(tx, now, actor, app, ApplicationEvent::Released, opinion, false)?;
            } else {
                applications::transition(
                    tx,
                    now,
                    actor,
                    app,
                    ApplicationState::Returned,
                    ApplicationEvent::Returned,
                    opinion,
                )?;
            }
        }
    }
    Ok(())
}

/// One reviewer action on one application, inside the caller's transaction.
pub fn review_one(
    tx: &Tx<'_>,
    now: i64,
    caller: &Principal,
    id: i64,
    action: Action,
    opinion: Option<&str>,
    deadline_ms: i64,
) -> Result<Application, ReviewError> {
    let mut app = app_store::get(tx, id)?.ok_or(ApplicationError::NotFound)?;
    if !may_review(tx, caller, app.district_unit)? {
        return Err(ApplicationError::NotFound.into());
    }
    apply(tx, now, &Actor::User(caller.user_id), &mut app, action, opinion, deadline_ms)?;
    Ok(app)
}

/// Switches auto-review for the caller's own unit. The seeds' hierarchy rule: a unit decides for its own
/// queue only; a parent unit cannot switch it on (or off) for a child.
pub fn set_auto_review(
    tx: &Tx<'_>,
    now: i64,
    caller: &Principal,
    unit: i64,
    enabled: bool,
) -> Result<(), ReviewError> {
    if caller.unit_id != Some(unit) {
        return Err(ReviewError::NotOwnUnit);
    }
    store::set_auto_review(tx, now, unit, enabled, caller.user_id)?;
    audit::append(
        tx,
        now,
        &Actor::User(caller.user_id),
        audit::Action::ReviewAutoReview,
        &audit::Subject::Unit(unit),
        json!({"enabled": enabled}),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Action;

    #[test]
    fn an_action_is_named_in_a_refusal_as_clients_spell_it() {
        for a in [
            Action::Approve,
            Action::Return,
            Action::Suspend,
            Action::Resume,
            Action::DocumentsPass,
            Action::DocumentsFail,
        ] {
            assert_eq!(serde_json::to_value(a).unwrap(), a.name());
        }
    }
}
