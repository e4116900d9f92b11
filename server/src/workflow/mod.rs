//! The workflow: the only code that crosses modules (flow steps 6–9).
//!
//! # Layout
//! - this file: every instruction event, applied in the caller's transaction: the state machine
//!   ([`instructions::machine`]) decides, [`instruction_event`] writes the new state, the receipt and
//!   the audit entry in one place, and what follows in other modules happens here too — assignment opens
//!   the record, cancelling releases the booking and closes the application, record progress moves the
//!   instruction, approval seals the record and releases the goods or sends the disposal notice.
//! - [`http`]: the supervisor's endpoints for those events; each commits, then wakes receipt listeners.
//!
//! Modules below (instructions, bookings, records, photos, applications) never call up into this one:
//! they answer what happened (a booking's `due_at`, a record's [`Progress`]) and the workflow moves on.

pub mod error;
pub mod http;

use crate::db::Tx;
use fieldcheck_sync::schema::{Review, Stamp, Verdict};
use serde_json::{Value, json};

use crate::domain::events::ApplicationEvent;
use crate::{
    applications::{self, AppChange, store as app_store},
    audit::{self, Actor},
    bookings,
    domain::Principal,
    domain::{ApplicationState, InstructionState, time::rfc3339},
    instructions::{
        self, Instruction,
        machine::{self, InstructionEvent},
    },
    receipts::{self, Change},
    records::{self, projection::Progress},
};
use error::{BlankText, WorkflowError};

/// Applies `event` to `i`: checks the transition, writes the state, the enterprise's receipt and the audit
/// entry, all in `tx`. Answers the new state.
pub fn instruction_event(
    tx: &Tx<'_>,
    now: i64,
    actor: &Actor,
    i: &Instruction,
    event: InstructionEvent,
    opinion: Option<&str>,
    details: Value,
) -> Result<InstructionState, WorkflowError> {
    let to = machine::next(i.state, event)?;
    instructions::set_state(tx, now, i.id, to)?;
    let change = Change {
        event: event.into(),
        subject_id: i.id,
        enterprise_id: i.enterprise_id,
        inspection_no: Some(&i.inspection_no),
        state: to.as_str(),
        from: Some(i.state.as_str()),
        opinion,
        details,
    };
    receipts::record_change(tx, now, actor, change)?;
    Ok(to)
}

fn instruction(tx: &Tx<'_>, id: i64) -> Result<Instruction, WorkflowError> {
    instructions::get(tx, id)?.ok_or(WorkflowError::InstructionNotFound)
}

fn application_of(tx: &Tx<'_>, i: &Instruction) -> Result<applications::Application, WorkflowError> {
    app_store::get(tx, i.application_id)?.ok_or(WorkflowError::ApplicationNotFound)
}

/// A supervisor assigns officers: the instruction becomes `assigned` and the record document is created
/// (first time) and put in each new officer's assignment index.
pub fn assign(
    tx: &Tx<'_>,
    now: i64,
    caller: &Principal,
    id: i64,
    officers: &[i64],
) -> Result<Instruction, WorkflowError> {
    let i = instructions::supervised(tx, caller, id)?;
    machine::next(i.state, InstructionEvent::Assigned)?;
    let a = instructions::assign_officers(tx, now, caller, i, officers)?;
    let details = json!({"officers": a.after.len()});
    let actor = Actor::User(caller.user_id);
    instruction_event(tx, now, &actor, &a.instruction, InstructionEvent::Assigned, None, details)?;
    records::on_assign(tx, now, &a.instruction, &a.before, &a.after)?;
    instruction(tx, id)
}

/// Customs cancels an instruction: its live booking is cancelled (freeing the place), its record is
/// sealed, and the application closes as `cancelled`.
pub fn cancel(
    tx: &Tx<'_>,
    now: i64,
    caller: &Principal,
    id: i64,
    reason: &str,
) -> Result<Instruction, WorkflowError> {
    let i = instructions::supervised(tx, caller, id)?;
    let actor = Actor::User(caller.user_id);
    instruction_event(tx, now, &actor, &i, InstructionEvent::Cancelled, Some(reason), json!({}))?;
    bookings::instruction_cancelled(tx, now, &actor, id)?;
    // Officers' handhelds stop listing it; edits still pending there are refused as for any sealed record.
    records::remove_from_indexes(tx, now, id, &i.officers)?;
    let mut app = application_of(tx, &i)?;
    if app.state == ApplicationState::Inspection {
        applications::transition(
            tx,
            now,
            &actor,
            &mut app,
            ApplicationState::Cancelled,
            ApplicationEvent::Cancelled,
            Some(reason),
        )?;
    }
    instruction(tx, id)
}

/// A reviewer revokes an application's approval while nothing has followed from it yet — its instruction
/// still `issued`, neither booked nor assigned: the instruction is cancelled and the application is
/// `submitted` again (to be reviewed anew), with receipts and audit entries for both. A decision that
/// sealed evidence (an approved result, a release) is never undone: it is corrected by a new decision.
pub fn revoke_approval(
    tx: &Tx<'_>,
    now: i64,
    caller: &Principal,
    application_id: i64,
    opinion: &str,
) -> Result<applications::Application, WorkflowError> {
    let mut app = app_store::get(tx, application_id)?.ok_or(WorkflowError::ApplicationNotFound)?;
    if !crate::review::may_review(tx, caller, app.district_unit)? {
        return Err(WorkflowError::ApplicationNotFound);
    }
    let i = instructions::by_application(tx, application_id)?;
    let i = match i {
        Some(i) if app.state == ApplicationState::Inspection && i.state == InstructionState::Issued => i,
        Some(i) if matches!(i.state, InstructionState::Approved | InstructionState::ForceReleased) => {
            return Err(WorkflowError::SealedDecision { instruction: i.id, state: i.state });
        }
        Some(i) if app.state == ApplicationState::Inspection => {
            return Err(WorkflowError::ApprovalHasConsequences { instruction: i.id, state: i.state });
        }
        _ => {
            return Err(WorkflowError::NotRevocable { application: application_id, state: app.state });
        }
    };
    let actor = Actor::User(caller.user_id);
    let details = json!({"approval_revoked": true, "application_id": application_id});
    instruction_event(tx, now, &actor, &i, InstructionEvent::Cancelled, Some(opinion), details)?;
    app.disposition = None;
    let change = AppChange {
        state: ApplicationState::Submitted,
        action: ApplicationEvent::ApprovalRevoked,
        opinion: Some(opinion),
        details: json!({"version": app.version, "instruction_id": i.id, "revoked_disposition": "on_site"}),
    };
    applications::transition_as(tx, now, &actor, &mut app, change)?;
    Ok(app)
}

/// The instruction follows its booking after any booking change: a confirmed slot (`due_at` set) books an
/// issued instruction; losing it withdraws a booked one. Later states keep their officers' work.
pub fn booking_changed(
    tx: &Tx<'_>,
    now: i64,
    actor: &Actor,
    instruction_id: i64,
) -> Result<(), WorkflowError> {
    let i = instruction(tx, instruction_id)?;
    schedule_to_record(tx, now, &i)?;
    let event = match (i.due_at, i.state) {
        (Some(_), InstructionState::Issued) => InstructionEvent::Booked,
        (None, InstructionState::Booked) => InstructionEvent::BookingWithdrawn,
        _ => return Ok(()),
    };
    let details = json!({"due_at": i.due_at.map(rfc3339::to_string)});
    instruction_event(tx, now, actor, &i, event, None, details)?;
    Ok(())
}

/// The record's server-owned part follows the instruction's schedule: the confirmed slot (or none) and
/// the deadline, so officers see both offline. A sealed record is left as it was sealed.
fn schedule_to_record(tx: &Tx<'_>, now: i64, i: &Instruction) -> Result<(), WorkflowError> {
    if machine::is_sealed(i.state) || records::store::record_of(tx, i.id)?.is_none() {
        return Ok(());
    }
    let slot = bookings::confirmed_slot(tx, i.id)?;
    records::server_edit(tx, now, i.id, |r| r.set_schedule(slot, i.deadline, now))?;
    Ok(())
}

/// Customs extends an instruction's deadline, with a reason: a slot up to the new deadline can then be
/// booked. The enterprise gets a receipt; the record shows the new deadline.
pub fn extend_deadline(
    tx: &Tx<'_>,
    now: i64,
    caller: &Principal,
    id: i64,
    deadline: i64,
    reason: &str,
) -> Result<Instruction, WorkflowError> {
    let i = instructions::supervised(tx, caller, id)?;
    machine::next(i.state, InstructionEvent::DeadlineExtended)?;
    if deadline <= i.deadline {
        return Err(WorkflowError::NotAnExtension { current: rfc3339::to_string(i.deadline) });
    }
    instructions::set_deadline(tx, now, id, deadline)?;
    let details = json!({"from": rfc3339::to_string(i.deadline), "to": rfc3339::to_string(deadline)});
    let change = Change {
        event: InstructionEvent::DeadlineExtended.into(),
        subject_id: i.id,
        enterprise_id: i.enterprise_id,
        inspection_no: Some(&i.inspection_no),
        state: i.state.as_str(),
        from: Some(i.state.as_str()),
        opinion: Some(reason),
        details,
    };
    receipts::record_change(tx, now, &Actor::User(caller.user_id), change)?;
    let i = instruction(tx, id)?;
    schedule_to_record(tx, now, &i)?;
    Ok(i)
}

/// Moves an instruction after a sync changed its record: `in_progress` at the first officer change,
/// `submitted` once ready (see `Progress::ready`), reopened by any change after submission. Answers
/// whether a receipt was written.
pub fn record_progressed(
    tx: &Tx<'_>,
    now: i64,
    actor: &Actor,
    by: &str,
    instruction_id: i64,
    progress: &Progress,
) -> Result<bool, WorkflowError> {
    let mut i = instruction(tx, instruction_id)?;
    let mut wrote = false;
    if i.state == InstructionState::Assigned {
        let details = json!({"officer": by});
        i.state = instruction_event(tx, now, actor, &i, InstructionEvent::InspectionStarted, None, details)?;
        wrote = true;
    }
    // Any officer change after submission reopens the result, so the change is on the record (receipt,
    // audit) rather than slipped under a submission that did not contain it; still ready, it is
    // submitted again at once, as it stands now.
    if i.state == InstructionState::Submitted {
        let details = progress.details.clone();
        i.state = instruction_event(tx, now, actor, &i, InstructionEvent::ResultReopened, None, details)?;
        wrote = true;
    }
    if i.state == InstructionState::InProgress && progress.ready {
        let details = progress.details.clone();
        instruction_event(tx, now, actor, &i, InstructionEvent::ResultSubmitted, None, details)?;
        wrote = true;
    }
    Ok(wrote)
}

/// A photo arrived in the store: an instruction waiting only for it is submitted now. Answers whether a
/// receipt was written.
pub fn photo_arrived(
    tx: &Tx<'_>,
    now: i64,
    actor: &Actor,
    instruction_id: i64,
) -> Result<bool, WorkflowError> {
    let Some(i) = instructions::get(tx, instruction_id)? else { return Ok(false) };
    if i.state != InstructionState::InProgress || !records::projection::ready(tx, instruction_id)? {
        return Ok(false);
    }
    let details = json!({"open_conflicts": 0, "signed": true, "photos_present": true, "missing": []});
    instruction_event(tx, now, actor, &i, InstructionEvent::ResultSubmitted, None, details)?;
    Ok(true)
}

/// A supervisor approves a submitted result: the record's heads and content digest are stored (the
/// record is sealed from now on), and the goods are released (conforming) or the enterprise gets the
/// disposal notice (non-conforming).
pub fn approve(tx: &Tx<'_>, now: i64, caller: &Principal, id: i64) -> Result<Instruction, WorkflowError> {
    let i = instructions::supervised(tx, caller, id)?;
    machine::next(i.state, InstructionEvent::ResultApproved)?;
    let seal = records::seal(tx, now, caller.user_id, id)?;
    let Some(verdict) = seal.verdict else {
        return Err(WorkflowError::NoVerdict);
    };
    let actor = Actor::User(caller.user_id);
    let details = json!({"digest": seal.digest, "heads": seal.heads, "verdict": verdict.value_str()});
    instruction_event(tx, now, &actor, &i, InstructionEvent::ResultApproved, None, details)?;
    let mut app = application_of(tx, &i)?;
    match verdict {
        Verdict::Conforming => {
            applications::release(tx, now, &actor, &mut app, ApplicationEvent::Released, None, false)?;
        }
        Verdict::NonConforming { disposal } => {
            let change = AppChange {
                state: ApplicationState::NotReleased,
                action: ApplicationEvent::DisposalNotice,
                opinion: None,
                details: json!({"disposal": disposal.as_str(), "instruction_id": id}),
            };
            applications::transition_as(tx, now, &actor, &mut app, change)?;
        }
    }
    instruction(tx, id)
}

/// A supervisor returns a submitted result with an opinion, which is written into the record so the
/// officers read it on their handhelds; the instruction is `in_progress` again.
pub fn return_result(
    tx: &Tx<'_>,
    now: i64,
    caller: &Principal,
    id: i64,
    opinion: &str,
) -> Result<Instruction, WorkflowError> {
    let i = instructions::supervised(tx, caller, id)?;
    machine::next(i.state, InstructionEvent::ResultReturned)?;
    let review =
        Review { decision: "returned".into(), opinion: opinion.into(), by: caller.username.clone(), at: now };
    records::write_review(tx, now, id, &review)?;
    let actor = Actor::User(caller.user_id);
    instruction_event(tx, now, &actor, &i, InstructionEvent::ResultReturned, Some(opinion), json!({}))?;
    instruction(tx, id)
}

/// A supervisor resolves an open conflict by choosing its value: the server writes it into the record as
/// a change stamped with the supervisor's name, which has seen every concurrent value and so closes the
/// conflict; officers' handhelds receive it on their next sync. Audited with the reason. The content
/// changed, so officers sign again unless the chosen value is the one they had signed.
pub fn resolve(
    tx: &Tx<'_>,
    now: i64,
    caller: &Principal,
    id: i64,
    path: &str,
    value: &Value,
    reason: &str,
) -> Result<Instruction, WorkflowError> {
    let i = instructions::supervised(tx, caller, id)?;
    if machine::is_sealed(i.state) {
        return Err(WorkflowError::Sealed(i.state));
    }
    let by = records::officer_id(&caller.username).ok_or(WorkflowError::UnusableUsername)?;
    let progress = records::resolve_conflict(tx, now, id, path, value, &Stamp { by, at: now })?;
    let actor = Actor::User(caller.user_id);
    let details =
        json!({"path": path, "value": value, "reason": reason, "digest": progress.details["digest"]});
    audit::append(
        tx,
        now,
        &actor,
        audit::Action::InstructionConflictResolved,
        &audit::Subject::Instruction(id),
        details,
    )?;
    record_progressed(tx, now, &actor, &caller.username, id, &progress)?;
    instruction(tx, id)
}

/// Forced release (强制放行): a supervisor with a strong login releases the goods with a reason, before
/// the result is approved (the record is sealed as it stands) or despite a non-conforming one.
pub fn force_release(
    tx: &Tx<'_>,
    now: i64,
    caller: &Principal,
    id: i64,
    reason: &str,
) -> Result<Instruction, WorkflowError> {
    let i = instructions::supervised(tx, caller, id)?;
    let mut app = application_of(tx, &i)?;
    if !matches!(app.state, ApplicationState::Inspection | ApplicationState::NotReleased) {
        return Err(WorkflowError::NotReleasable(app.state));
    }
    let actor = Actor::User(caller.user_id);
    if !machine::is_sealed(i.state) {
        // The record, if officers had one, is sealed as it stands: its heads and digest are the evidence
        // the goods were released on.
        let details = match records::store::record_of(tx, id)? {
            Some(_) => {
                let seal = records::seal(tx, now, caller.user_id, id)?;
                json!({"digest": seal.digest, "heads": seal.heads})
            }
            None => json!({}),
        };
        instruction_event(tx, now, &actor, &i, InstructionEvent::ForceReleased, Some(reason), details)?;
    }
    applications::release(tx, now, &actor, &mut app, ApplicationEvent::ForceReleased, Some(reason), true)?;
    instruction(tx, id)
}

/// Customs records that the disposal of non-conforming goods was carried out: the case closes.
pub fn disposal_done(
    tx: &Tx<'_>,
    now: i64,
    caller: &Principal,
    id: i64,
    note: Option<&str>,
) -> Result<Instruction, WorkflowError> {
    let i = instructions::supervised(tx, caller, id)?;
    let mut app = application_of(tx, &i)?;
    if app.state != ApplicationState::NotReleased {
        return Err(WorkflowError::NoDisposalPending(app.state));
    }
    let disposal = records::sealed(tx, id)?.and_then(|s| s.disposal);
    let change = AppChange {
        state: ApplicationState::Disposed,
        action: ApplicationEvent::DisposalDone,
        opinion: note,
        details: json!({"disposal": disposal, "instruction_id": id}),
    };
    applications::transition_as(tx, now, &Actor::User(caller.user_id), &mut app, change)?;
    instruction(tx, id)
}

/// A mandatory free-text field (a reason, an opinion), trimmed; blank is refused with `code`.
pub fn required_text<'a>(
    field: &'static str,
    code: &'static str,
    value: &'a str,
    what: &'static str,
) -> Result<&'a str, BlankText> {
    let v = value.trim();
    if v.is_empty() { Err(BlankText { field, code, what }) } else { Ok(v) }
}
