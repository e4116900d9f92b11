//! What happens to the things an enterprise owns, as closed vocabularies: each [`Event`] names its
//! receipt's subject and kind and its audit action, so no code builds those strings with `format!`.
//! The spellings are the stored ones (`receipts.subject`, `receipts.kind`, `audit_log.action`,
//! `application_history.action`); a new event is a new variant here, and `receipts::record_change`
//! writes its receipt and audit entry.

use serde::Serialize;

vocabulary!(
    /// What a receipt is about (`receipts.subject`).
    Subject {
        Application = "application",
        Instruction = "instruction",
        Booking = "booking",
        Certificate = "certificate",
        /// An enterprise's own registration (onboarding).
        Enterprise = "enterprise",
        /// An account of an enterprise: an operator, as its legal person manages it.
        User = "user",
        Delegation = "delegation",
    }
);

impl Subject {
    /// The audit log's name for one of them, `<prefix>:<id>` (a certificate's receipts are about its
    /// application for a certificate).
    pub const fn audit_prefix(self) -> &'static str {
        match self {
            Subject::Application => "application",
            Subject::Instruction => "instruction",
            Subject::Booking => "booking",
            Subject::Certificate => "certificate_application",
            Subject::Enterprise => "enterprise",
            Subject::User => "user",
            Subject::Delegation => "delegation",
        }
    }
}

vocabulary!(
    /// What happens to an application: its receipt kind and its history action.
    ApplicationEvent {
        Drafted = "drafted",
        Copied = "copied",
        Amended = "amended",
        Submitted = "submitted",
        Approved = "approved",
        Returned = "returned",
        Suspended = "suspended",
        Resumed = "resumed",
        Released = "released",
        ForceReleased = "force_released",
        Cancelled = "cancelled",
        DisposalNotice = "disposal_notice",
        DisposalDone = "disposal_done",
        /// A reviewer revoked the approval before anything followed from it (issue 18).
        ApprovalRevoked = "approval_revoked",
    }
);

vocabulary!(
    /// Everything that can happen to an instruction after it is issued (the state machine's events,
    /// `instructions::machine`); the receipt kind.
    InstructionEvent {
        /// A booking for the instruction was confirmed.
        Booked = "booked",
        /// The confirmed booking went away (cancelled, declined after a reschedule, no-show).
        BookingWithdrawn = "booking_withdrawn",
        /// A supervisor assigned (or re-assigned) officers.
        Assigned = "assigned",
        /// The first officer change reached the server.
        InspectionStarted = "inspection_started",
        /// The record became ready: complete, no open conflict, every photo present.
        ResultSubmitted = "result_submitted",
        /// A submitted record stopped being ready (an officer changed it, a conflict appeared).
        ResultReopened = "result_reopened",
        /// A supervisor approved the result; the record is sealed.
        ResultApproved = "result_approved",
        /// A supervisor returned the result to the officers with an opinion.
        ResultReturned = "result_returned",
        /// A supervisor released the goods without an approved result (强制放行).
        ForceReleased = "force_released",
        /// Customs cancelled the instruction.
        Cancelled = "cancelled",
        /// Customs moved the deadline later, with a reason; the state stays.
        DeadlineExtended = "deadline_extended",
    }
);

vocabulary!(
    /// What happens to a booking: the receipt kind (`booking_…`).
    BookingEvent {
        Requested = "booking_requested",
        Confirmed = "booking_confirmed",
        Declined = "booking_declined",
        Rescheduled = "booking_rescheduled",
        Cancelled = "booking_cancelled",
        NoShow = "booking_no_show",
    }
);

vocabulary!(
    /// What happens to an application for a certificate (or to its certificate): the receipt kind.
    CertificateEvent {
        Drafted = "drafted",
        Amended = "amended",
        Withdrawn = "withdrawn",
        Queued = "queued",
        Rejected = "rejected",
        Issued = "issued",
        Revoked = "revoked",
        Replaced = "replaced",
    }
);

vocabulary!(
    /// What happens to a supporting document of an application or a certificate application: the receipt
    /// kind (`documents`).
    DocumentEvent {
        Attached = "document_attached",
        /// A reviewer asked for the file again, with an opinion.
        Requested = "document_requested",
        /// The enterprise sent a replacement for a file asked for again.
        Resent = "document_resent",
    }
);

vocabulary!(
    /// A reminder in the receipts feed (`reminders`): the receipt kind.
    ReminderEvent {
        BookingSoon = "reminder_booking_soon",
        DeadlineNear = "reminder_deadline_near",
        DocumentOutstanding = "reminder_document_outstanding",
        /// A delegation the enterprise gave ends soon (to the principal).
        DelegationExpiring = "reminder_delegation_expiring",
        /// An operator's validity ends soon (to the operator's enterprise).
        OperatorExpiring = "reminder_operator_expiring",
        /// A producer registration an open application names ends soon.
        ProducerExpiring = "reminder_producer_expiring",
    }
);

vocabulary!(
    /// What happens to an enterprise's own registration (onboarding): the receipt kind.
    RegistrationEvent {
        Submitted = "registration_submitted",
        /// An administrator approved it: the enterprise and its legal person are active.
        Approved = "registration_approved",
        /// An administrator returned it with an opinion; the legal person may amend and resubmit.
        Returned = "registration_returned",
        Resubmitted = "registration_resubmitted",
    }
);

vocabulary!(
    /// What happens to an enterprise's operator account: the receipt kind.
    AccountEvent {
        /// The legal person created it; it is pending until confirmed.
        OperatorCreated = "operator_created",
        /// The legal person confirmed it: it may log in.
        OperatorConfirmed = "operator_confirmed",
    }
);

/// A state change an enterprise is told of: one receipt and one audit entry. Serialises as its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Application(ApplicationEvent),
    /// The instruction was issued: the notice of on-site inspection (查验通知).
    InspectionNotice,
    Instruction(InstructionEvent),
    Booking(BookingEvent),
    Certificate(CertificateEvent),
    /// About a supporting document of the subject (an application or a certificate application).
    Document(Subject, DocumentEvent),
    /// A reminder about the subject.
    Reminder(Subject, ReminderEvent),
    Registration(RegistrationEvent),
    Account(AccountEvent),
}

impl Event {
    pub const fn subject(self) -> Subject {
        match self {
            Event::Application(_) => Subject::Application,
            Event::InspectionNotice | Event::Instruction(_) => Subject::Instruction,
            Event::Booking(_) => Subject::Booking,
            Event::Certificate(_) => Subject::Certificate,
            Event::Document(s, _) | Event::Reminder(s, _) => s,
            Event::Registration(_) => Subject::Enterprise,
            Event::Account(_) => Subject::User,
        }
    }

    /// The receipt's `kind`.
    pub fn kind(self) -> &'static str {
        match self {
            Event::Application(e) => e.as_str(),
            Event::InspectionNotice => "inspection_notice",
            Event::Instruction(e) => e.as_str(),
            Event::Booking(e) => e.as_str(),
            Event::Certificate(e) => e.as_str(),
            Event::Document(_, e) => e.as_str(),
            Event::Reminder(_, e) => e.as_str(),
            Event::Registration(e) => e.as_str(),
            Event::Account(e) => e.as_str(),
        }
    }

    /// The audit log's `action`: `<subject>.<what>`, spelled as it has always been stored.
    pub const fn audit_action(self) -> &'static str {
        use ApplicationEvent as A;
        use BookingEvent as B;
        use CertificateEvent as C;
        use InstructionEvent as I;
        match self {
            Event::Application(e) => match e {
                A::Drafted => "application.drafted",
                A::Copied => "application.copied",
                A::Amended => "application.amended",
                A::Submitted => "application.submitted",
                A::Approved => "application.approved",
                A::Returned => "application.returned",
                A::Suspended => "application.suspended",
                A::Resumed => "application.resumed",
                A::Released => "application.released",
                A::ForceReleased => "application.force_released",
                A::Cancelled => "application.cancelled",
                A::DisposalNotice => "application.disposal_notice",
                A::DisposalDone => "application.disposal_done",
                A::ApprovalRevoked => "application.approval_revoked",
            },
            Event::InspectionNotice => "instruction.issue",
            Event::Instruction(e) => match e {
                I::Booked => "instruction.booked",
                I::BookingWithdrawn => "instruction.booking_withdrawn",
                I::Assigned => "instruction.assigned",
                I::InspectionStarted => "instruction.inspection_started",
                I::ResultSubmitted => "instruction.result_submitted",
                I::ResultReopened => "instruction.result_reopened",
                I::ResultApproved => "instruction.result_approved",
                I::ResultReturned => "instruction.result_returned",
                I::ForceReleased => "instruction.force_released",
                I::Cancelled => "instruction.cancelled",
                I::DeadlineExtended => "instruction.deadline_extended",
            },
            Event::Booking(e) => match e {
                B::Requested => "booking.requested",
                B::Confirmed => "booking.confirmed",
                B::Declined => "booking.declined",
                B::Rescheduled => "booking.rescheduled",
                B::Cancelled => "booking.cancelled",
                B::NoShow => "booking.no_show",
            },
            Event::Certificate(e) => match e {
                C::Drafted => "certificate.drafted",
                C::Amended => "certificate.amended",
                C::Withdrawn => "certificate.withdrawn",
                C::Queued => "certificate.queued",
                C::Rejected => "certificate.rejected",
                C::Issued => "certificate.issued",
                C::Revoked => "certificate.revoked",
                C::Replaced => "certificate.replaced",
            },
            Event::Document(_, e) => match e {
                DocumentEvent::Attached => "document.attached",
                DocumentEvent::Requested => "document.requested",
                DocumentEvent::Resent => "document.resent",
            },
            Event::Reminder(_, e) => match e {
                ReminderEvent::BookingSoon => "reminder.booking_soon",
                ReminderEvent::DeadlineNear => "reminder.deadline_near",
                ReminderEvent::DocumentOutstanding => "reminder.document_outstanding",
                ReminderEvent::DelegationExpiring => "reminder.delegation_expiring",
                ReminderEvent::OperatorExpiring => "reminder.operator_expiring",
                ReminderEvent::ProducerExpiring => "reminder.producer_expiring",
            },
            Event::Registration(e) => match e {
                RegistrationEvent::Submitted => "enterprise.registration_submitted",
                RegistrationEvent::Approved => "enterprise.registration_approved",
                RegistrationEvent::Returned => "enterprise.registration_returned",
                RegistrationEvent::Resubmitted => "enterprise.registration_resubmitted",
            },
            Event::Account(e) => match e {
                AccountEvent::OperatorCreated => "user.operator_created",
                AccountEvent::OperatorConfirmed => "user.operator_confirmed",
            },
        }
    }
}

impl Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.kind())
    }
}

impl From<ApplicationEvent> for Event {
    fn from(e: ApplicationEvent) -> Event {
        Event::Application(e)
    }
}

impl From<InstructionEvent> for Event {
    fn from(e: InstructionEvent) -> Event {
        Event::Instruction(e)
    }
}

impl From<BookingEvent> for Event {
    fn from(e: BookingEvent) -> Event {
        Event::Booking(e)
    }
}

impl From<CertificateEvent> for Event {
    fn from(e: CertificateEvent) -> Event {
        Event::Certificate(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_event() -> Vec<Event> {
        let mut all = vec![Event::InspectionNotice];
        all.extend(ApplicationEvent::ALL.iter().map(|&e| Event::from(e)));
        all.extend(InstructionEvent::ALL.iter().map(|&e| Event::from(e)));
        all.extend(BookingEvent::ALL.iter().map(|&e| Event::from(e)));
        all.extend(CertificateEvent::ALL.iter().map(|&e| Event::from(e)));
        all.extend(RegistrationEvent::ALL.iter().map(|&e| Event::Registration(e)));
        all.extend(AccountEvent::ALL.iter().map(|&e| Event::Account(e)));
        all
    }

    #[test]
    fn every_audit_action_is_its_subject_then_the_kind_as_stored_before_the_enums() {
        for event in every_event() {
            // The spellings the `format!` calls built before: `application.{kind}`,
            // `booking.{kind without booking_}`, `certificate.{kind}`, `instruction.{kind}`.
            let expected = match event {
                Event::InspectionNotice => "instruction.issue".to_string(),
                Event::Certificate(e) => format!("certificate.{e}"),
                Event::Booking(e) => format!("booking.{}", e.as_str().trim_start_matches("booking_")),
                e => format!("{}.{}", e.subject(), e.kind()),
            };
            assert_eq!(event.audit_action(), expected, "{event:?}");
        }
    }

    #[test]
    fn audit_actions_are_distinct_and_receipt_kinds_are_distinct_per_subject() {
        let all = every_event();
        let actions: std::collections::BTreeSet<_> = all.iter().map(|e| e.audit_action()).collect();
        let kinds: std::collections::BTreeSet<_> = all.iter().map(|e| (e.subject(), e.kind())).collect();
        assert_eq!((actions.len(), kinds.len()), (all.len(), all.len()));
    }

    #[test]
    fn an_event_serialises_as_its_receipt_kind() {
        for event in every_event() {
            assert_eq!(serde_json::to_value(event).unwrap(), event.kind(), "{event:?}");
        }
    }
}
