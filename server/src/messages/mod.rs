//! Signed message exchange for enterprise systems (报文交换): an ERP or a third-party platform sends
//! JWS-signed messages that draft, submit and amend applications, request or cancel bookings and apply for
//! certificates; customs
//! answers each, and serves receipts as signed messages too. See `docs/messages.md`.
//!
//! One message, in order: the envelope is parsed within its size limit; the signer is found by `kid` in
//! the key registry (an operator's strong-login key, or a platform signer's); the signature is checked
//! before anything about the signer is told; the signer must be live; a message id already used by this
//! signer answers the original answer (same payload) or 409 (different payload); the signer must be
//! allowed to act for the named enterprise; then the same domain step the JSON API runs is applied inside
//! a savepoint, with the envelope stored beside what it created and an audit entry naming both. Any
//! refusal rolls the savepoint back: nothing half-written, and the other messages of a batch go on.
//!
//! # Layout
//! - [`envelope`]: the JWS envelope: parse (compact, flattened, general), bounded sizes, EdDSA verify.
//! - [`signing`]: customs' receipt-signing key and its published JWK set.
//! - [`store`]: the `messages` and `platform_signers` tables.
//! - [`error`]: `MessageError`, each refusal with its rule (mapped to HTTP in `crate::error`).
//! - [`http`]: `POST /api/v1/messages` (one or a batch), signed receipts, platform signer registration.
//! - [`sender`]: the reference sender behind `fieldcheck message sign|send`.

pub mod envelope;
pub mod error;
pub mod http;
pub mod sender;
pub mod signing;
pub mod store;

use std::{collections::HashMap, sync::Arc};

use crate::db::{Conn, Tx};
use axum::http::StatusCode;
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{
    applications::{self, Application, ApplicationContent},
    audit::{self, Actor},
    bookings::{
        self, Booking, NewBooking,
        http::{BookingRequest, CancelRequest},
    },
    certificates::{self, CertApplication, CertificateRequest, keys::CertificateKey},
    config::BookingSettings,
    delegations,
    domain::{AccountStatus, CustomsCode, Principal, Role, Scope, time::rfc3339},
    instructions,
    orgs::store::{self as orgs_store, UserRow},
    workflow,
};
use envelope::Envelope;
use error::MessageError;

/// The `typ` a sender puts in the protected header (optional; a receipt's `typ` is refused).
pub const MESSAGE_TYP: &str = "fieldcheck-message+jws";

/// What a message asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum MessageKind {
    #[serde(rename = "application.draft")]
    ApplicationDraft,
    /// With `content`: filed and submitted in one step. With `application_id`: that draft is submitted.
    #[serde(rename = "application.submit")]
    ApplicationSubmit,
    #[serde(rename = "application.amend")]
    ApplicationAmend,
    #[serde(rename = "booking.request")]
    BookingRequest,
    #[serde(rename = "booking.cancel")]
    BookingCancel,
    /// A certificate application (`content` as `POST /api/v1/certificate-applications`), drafted and
    /// submitted in one step: issued at once, or queued for a reviewer with its failed rules.
    #[serde(rename = "certificate.apply")]
    CertificateApply,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::ApplicationDraft => "application.draft",
            MessageKind::ApplicationSubmit => "application.submit",
            MessageKind::ApplicationAmend => "application.amend",
            MessageKind::BookingRequest => "booking.request",
            MessageKind::BookingCancel => "booking.cancel",
            MessageKind::CertificateApply => "certificate.apply",
        }
    }

    /// The audit action of an accepted message: `message.<kind>`.
    pub fn audit_action(self) -> &'static str {
        match self {
            MessageKind::ApplicationDraft => "message.application.draft",
            MessageKind::ApplicationSubmit => "message.application.submit",
            MessageKind::ApplicationAmend => "message.application.amend",
            MessageKind::BookingRequest => "message.booking.request",
            MessageKind::BookingCancel => "message.booking.cancel",
            MessageKind::CertificateApply => "message.certificate.apply",
        }
    }

    fn scope(self) -> Scope {
        match self {
            MessageKind::ApplicationDraft
            | MessageKind::ApplicationSubmit
            | MessageKind::ApplicationAmend => Scope::Applications,
            MessageKind::BookingRequest | MessageKind::BookingCancel => Scope::Bookings,
            MessageKind::CertificateApply => Scope::Certificates,
        }
    }
}

/// The sender's id for a message: 1 to 128 of `A-Z a-z 0-9 . _ : -`, unique per signer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "erp-2026-000117")]
pub struct MessageId(String);

impl TryFrom<String> for MessageId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let ok = (1..=128).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
        if ok {
            Ok(MessageId(s))
        } else {
            Err("a message `id` has 1 to 128 characters: letters, digits, `.`, `_`, `:` or `-`".into())
        }
    }
}

impl From<MessageId> for String {
    fn from(m: MessageId) -> String {
        m.0
    }
}

impl MessageId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The signed payload. `content` is in the JSON API's schema for the message type.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Payload {
    #[serde(rename = "type")]
    pub kind: MessageKind,
    pub id: MessageId,
    /// The customs code of the enterprise the message is sent for.
    pub enterprise: CustomsCode,
    /// For `application.submit` of an existing draft and `application.amend`.
    #[serde(default)]
    pub application_id: Option<i64>,
    /// For `booking.cancel`.
    #[serde(default)]
    pub booking_id: Option<i64>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub content: Option<Value>,
}

/// What an accepted message created or changed; a resend answers it again.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Accepted {
    pub message_id: String,
    #[serde(rename = "type")]
    pub kind: MessageKind,
    /// `application`, `booking` or `certificate_application`.
    pub subject: String,
    pub id: i64,
    pub inspection_no: Option<String>,
    pub state: String,
    /// The signed message kept as evidence: `GET /api/v1/messages/{evidence_id}`.
    pub evidence_id: i64,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub received_at: i64,
}

/// One message's answer: accepted (first time or resent) or refused (`http` answers the refusal in the
/// error shape, its details naming the message id when the payload told it).
#[derive(Debug)]
pub enum Answer {
    Accepted { accepted: Accepted, status: StatusCode, replayed: bool },
    Refused { message_id: Option<String>, error: MessageError },
}

/// What applying messages needs besides the transaction.
#[derive(Debug, Clone)]
pub struct Intake {
    pub now: i64,
    /// The year inspection numbers are counted in.
    pub year: i16,
    pub inspection_deadline_ms: i64,
    pub booking: BookingSettings,
    pub max_message_bytes: usize,
    /// Signs the certificates that `certificate.apply` messages get issued at once.
    pub certificate_key: Arc<CertificateKey>,
}

/// A signer from the key registry: an enterprise user with a registered key, or a platform signer.
#[derive(Debug, Clone)]
struct Signer {
    user: SignerAccount,
    key: Option<VerifyingKey>,
    platform: bool,
}

/// The account fields a message needs (not the password hash, which stays out of memory and logs).
#[derive(Debug, Clone)]
struct SignerAccount {
    id: i64,
    username: String,
    role: Role,
    enterprise_id: Option<i64>,
    status: AccountStatus,
    valid_until: Option<i64>,
}

impl From<&UserRow> for SignerAccount {
    fn from(u: &UserRow) -> SignerAccount {
        SignerAccount {
            id: u.id,
            username: u.username.clone(),
            role: u.role,
            enterprise_id: u.enterprise_id,
            status: u.status,
            valid_until: u.valid_until,
        }
    }
}

impl Signer {
    /// Who the domain steps see acting. A platform signer acts as its enterprise does through delegation
    /// (like that enterprise's legal person): a delegation to the platform enterprise is what lets it act.
    fn principal(&self) -> Principal {
        Principal {
            user_id: self.user.id,
            username: self.user.username.clone(),
            role: if self.platform { Role::EnterpriseLegal } else { self.user.role },
            enterprise_id: self.user.enterprise_id,
            unit_id: None,
        }
    }
}

/// Signers looked up once per batch.
#[derive(Default)]
pub struct Signers(HashMap<String, Option<Signer>>);

/// A message whose envelope parsed and whose signature held under `key`, checked before the write
/// transaction on reader threads, in parallel: the writer, which serialises every write of the server,
/// then only checks that `key` is still the signer's instead of verifying again.
pub struct Verified {
    env: Envelope,
    key: [u8; 32],
    signed: Signed,
}

/// What follows from the signed bytes alone (no database): worked out ahead with the signature, so the
/// writer does not. The payload's parse error, if any, is only told once the signer is known to be live,
/// as without it.
struct Signed {
    payload: Result<Payload, MessageError>,
    digest: [u8; 32],
    /// The envelope in compact form, as stored for evidence.
    compact: String,
}

impl Signed {
    fn of(env: &Envelope) -> Signed {
        Signed {
            payload: serde_json::from_slice(&env.payload)
                .map_err(|e| MessageError::InvalidPayload(e.to_string())),
            digest: Sha256::digest(&env.payload).into(),
            compact: env.compact(),
        }
    }
}

/// Parses and verifies `raw` ahead of the write, against the committed key registry. `None` when
/// anything fails: the writer then runs every check itself and answers with the rule that failed.
pub fn verify_ahead(c: &Conn, signers: &mut Signers, raw: &Value, max_bytes: usize) -> Option<Verified> {
    let env = Envelope::parse(raw, max_bytes).ok()?;
    let key = signer(c, signers, &env.kid).ok()?.key?;
    env.verify(&key).ok()?;
    let signed = Signed::of(&env);
    Some(Verified { env, key: key.to_bytes(), signed })
}

/// Receives one message in `tx`: verified, authorised, applied, stored; or refused with nothing written.
/// `ahead` is what [`verify_ahead`] found, if anything.
pub fn receive(
    tx: &Tx<'_>,
    intake: &Intake,
    signers: &mut Signers,
    raw: &Value,
    ahead: Option<Verified>,
) -> Answer {
    let mut message_id = None;
    match receive_inner(tx, intake, signers, raw, ahead, &mut message_id) {
        Ok(answer) => answer,
        Err(error) => Answer::Refused { error, message_id },
    }
}

fn receive_inner(
    tx: &Tx<'_>,
    intake: &Intake,
    signers: &mut Signers,
    raw: &Value,
    ahead: Option<Verified>,
    message_id: &mut Option<String>,
) -> Result<Answer, MessageError> {
    let (env, verified_with, signed) = match ahead {
        Some(v) => (v.env, Some(v.key), Some(v.signed)),
        None => (Envelope::parse(raw, intake.max_message_bytes).map_err(MessageError::Envelope)?, None, None),
    };
    if env.header.typ.as_deref().is_some_and(|t| t != MESSAGE_TYP) {
        return Err(MessageError::WrongTyp { expected: MESSAGE_TYP });
    }
    let signer = signer(tx, signers, &env.kid)?;
    let key = signer.key.ok_or_else(|| unknown_key(&env.kid))?;
    // Verified ahead with the key the signer still has (a key changed since is checked again here).
    if verified_with != Some(key.to_bytes()) {
        env.verify(&key).map_err(MessageError::Envelope)?;
    }
    // Only now, with the signature good, may the answer say anything about the signer's account.
    signer_live(&signer.user, intake.now)?;
    let Signed { payload, digest, compact } = signed.unwrap_or_else(|| Signed::of(&env));
    let payload = payload?;
    *message_id = Some(payload.id.as_str().to_string());

    if let Some(seen) = store::find(tx, signer.user.id, payload.id.as_str())? {
        if seen.payload_sha256 == digest {
            return Ok(Answer::Accepted { accepted: seen.answer, status: StatusCode::OK, replayed: true });
        }
        return Err(MessageError::MessageIdReused(Box::new(error::Reuse {
            id: payload.id.as_str().to_owned(),
            username: signer.user.username,
            received_at: rfc3339::to_string(seen.received_at),
            evidence_id: seen.answer.evidence_id,
            original_sha256: hex::encode(seen.payload_sha256),
            payload_sha256: hex::encode(digest),
        })));
    }

    let enterprise = orgs_store::enterprise_by_code(tx, payload.enterprise.as_str())?
        .ok_or_else(|| MessageError::UnknownEnterprise(payload.enterprise.to_string()))?;
    let caller = signer.principal();
    let scope = payload.kind.scope();
    if !delegations::may_act_for(tx, &caller, enterprise.id, scope, intake.now)? {
        return Err(MessageError::NotDelegated {
            username: signer.user.username,
            enterprise: payload.enterprise.to_string(),
            scope,
        });
    }

    // A refused message leaves nothing behind, whatever of it was already written.
    let accepted = crate::db::in_savepoint(tx, || -> Result<Accepted, MessageError> {
        let subject = apply(tx, intake, &caller, &payload, enterprise.id)?;
        let evidence_id = store::next_id(tx)?;
        let accepted = Accepted {
            message_id: payload.id.as_str().to_string(),
            kind: payload.kind,
            subject: subject.subject.to_string(),
            id: subject.id,
            inspection_no: subject.inspection_no,
            state: subject.state,
            evidence_id,
            received_at: intake.now,
        };
        store::insert(
            tx,
            &store::NewMessage {
                id: evidence_id,
                signer_id: signer.user.id,
                message_id: payload.id.as_str(),
                payload_sha256: &digest,
                kind: payload.kind.as_str(),
                enterprise_id: enterprise.id,
                subject: subject.subject,
                subject_id: subject.id,
                application_id: subject.application_id,
                envelope: &compact,
                received_at: intake.now,
                status: StatusCode::CREATED.as_u16(),
                answer: &accepted,
            },
        )?;
        audit::append(
            tx,
            intake.now,
            &Actor::User(signer.user.id),
            audit::Action::Message(payload.kind.audit_action()),
            &audit::Subject::Message(evidence_id),
            json!({"message_id": payload.id.as_str(), "payload_sha256": hex::encode(digest),
                   "enterprise": payload.enterprise.as_str(), "platform": signer.platform,
                   "created": format!("{}:{}", subject.subject, subject.id)}),
        )?;
        Ok(accepted)
    })?;
    Ok(Answer::Accepted { accepted, status: StatusCode::CREATED, replayed: false })
}

fn unknown_key(kid: &str) -> MessageError {
    MessageError::UnknownKey(kid.to_owned())
}

fn signer(c: &Conn, signers: &mut Signers, kid: &str) -> Result<Signer, MessageError> {
    if !signers.0.contains_key(kid) {
        let found = match orgs_store::user_by_name(c, kid)? {
            Some(user) => {
                let platform = store::is_platform_signer(c, user.id)?;
                Some(Signer { key: user.verifying_key(), user: SignerAccount::from(&user), platform })
            }
            None => None,
        };
        signers.0.insert(kid.to_string(), found);
    }
    signers.0[kid].clone().ok_or_else(|| unknown_key(kid))
}

fn signer_live(user: &SignerAccount, now: i64) -> Result<(), MessageError> {
    let name = || user.username.clone();
    match user.status {
        AccountStatus::Active => {}
        AccountStatus::Pending => return Err(MessageError::SignerPending(name())),
        AccountStatus::Frozen => return Err(MessageError::SignerFrozen(name())),
        AccountStatus::Lost => return Err(MessageError::SignerLost(name())),
    }
    if user.valid_until.is_some_and(|t| t <= now) {
        return Err(MessageError::SignerExpired(name()));
    }
    if !user.role.is_enterprise() {
        return Err(MessageError::SignerNotEnterprise);
    }
    Ok(())
}

/// What a message created or changed.
struct Subject {
    subject: &'static str,
    id: i64,
    /// The application it belongs to, under which its evidence is listed.
    application_id: i64,
    enterprise_id: i64,
    inspection_no: Option<String>,
    state: String,
}

impl From<Application> for Subject {
    fn from(a: Application) -> Subject {
        Subject {
            subject: "application",
            id: a.id,
            application_id: a.id,
            enterprise_id: a.enterprise_id,
            inspection_no: a.inspection_no,
            state: a.state.as_str().to_string(),
        }
    }
}

impl Subject {
    fn booking(tx: &Tx<'_>, b: Booking) -> Result<Subject, MessageError> {
        let instruction =
            instructions::get(tx, b.instruction_id)?.ok_or(MessageError::NotFound("the instruction"))?;
        Ok(Subject {
            subject: "booking",
            id: b.id,
            application_id: instruction.application_id,
            enterprise_id: b.enterprise_id,
            inspection_no: Some(b.inspection_no),
            state: b.state.as_str().to_string(),
        })
    }

    fn certificate(tx: &Tx<'_>, ca: CertApplication) -> Result<Subject, MessageError> {
        let app = applications::store::get(tx, ca.application_id)?
            .ok_or(MessageError::NotFound("the application"))?;
        Ok(Subject {
            subject: "certificate_application",
            id: ca.id,
            application_id: ca.application_id,
            enterprise_id: ca.enterprise_id,
            inspection_no: app.inspection_no,
            state: ca.state.as_str().to_string(),
        })
    }
}

fn content<T: serde::de::DeserializeOwned>(payload: &Payload) -> Result<T, MessageError> {
    let value = payload.content.clone().ok_or(MessageError::MissingContent(payload.kind.as_str()))?;
    serde_json::from_value(value).map_err(|e| MessageError::InvalidContent(e.to_string()))
}

fn required(value: Option<i64>, field: &'static str, kind: MessageKind) -> Result<i64, MessageError> {
    value.ok_or(MessageError::MissingField { kind: kind.as_str(), field })
}

/// Runs the domain step of the JSON API for the message, as `caller`.
fn apply(
    tx: &Tx<'_>,
    intake: &Intake,
    caller: &Principal,
    payload: &Payload,
    enterprise_id: i64,
) -> Result<Subject, MessageError> {
    use applications::filing::{amend, create_draft, submit_in};
    let now = intake.now;
    let (year, deadline) = (intake.year, intake.inspection_deadline_ms);
    let subject: Subject = match payload.kind {
        MessageKind::ApplicationDraft => {
            create_draft(tx, now, caller, content::<ApplicationContent>(payload)?, None)?.into()
        }
        MessageKind::ApplicationSubmit => {
            let id = match (payload.application_id, &payload.content) {
                (Some(id), None) => id,
                (None, Some(_)) => create_draft(tx, now, caller, content(payload)?, None)?.id,
                _ => {
                    return Err(MessageError::SubmitTakesOne);
                }
            };
            submit_in(tx, now, caller, id, year, deadline)?.into()
        }
        MessageKind::ApplicationAmend => {
            let id = required(payload.application_id, "application_id", payload.kind)?;
            amend(tx, now, caller, id, content(payload)?)?.into()
        }
        MessageKind::BookingRequest => {
            let req: BookingRequest = content(payload)?;
            let starts_at =
                rfc3339::parse(&req.starts_at).map_err(|m| MessageError::InvalidTime(m.to_string()))?;
            let new = NewBooking { instruction_id: req.instruction_id, site_code: req.site_code, starts_at };
            let b = bookings::request(tx, now, caller, &intake.booking, new)?;
            workflow::booking_changed(tx, now, &Actor::User(caller.user_id), b.instruction_id)?;
            Subject::booking(tx, b)?
        }
        MessageKind::BookingCancel => {
            let id = required(payload.booking_id, "booking_id", payload.kind)?;
            let req: CancelRequest = match payload.content {
                Some(_) => content(payload)?,
                None => CancelRequest { reason: None },
            };
            let b = bookings::cancel(tx, now, caller, &intake.booking, id, req.reason.as_deref())?;
            workflow::booking_changed(tx, now, &Actor::User(caller.user_id), b.instruction_id)?;
            Subject::booking(tx, b)?
        }
        MessageKind::CertificateApply => {
            // The JSON API's two steps, draft then submit, in one message: the same checks (a released
            // application of an enterprise the signer may act for) and the same intelligent review.
            let draft = certificates::create(tx, now, caller, content::<CertificateRequest>(payload)?)?;
            Subject::certificate(
                tx,
                certificates::submit(tx, now, caller, &intake.certificate_key, draft.id)?,
            )?
        }
    };
    // The domain step checked the caller may act for what it touched; the message must also be about the
    // enterprise it names, so its evidence is filed under the right one.
    if subject.enterprise_id != enterprise_id {
        return Err(MessageError::EnterpriseMismatch(payload.enterprise.to_string()));
    }
    Ok(subject)
}

/// Registers a third-party platform's key: a signer account of the platform enterprise that holds the key
/// in the one key registry, marked as a platform signer. Its password hash is of a secret nobody keeps.
pub fn register_platform_signer(
    tx: &Tx<'_>,
    now: i64,
    actor: &Actor,
    new: &http::NewPlatformSigner,
    password_hash: &str,
) -> Result<crate::orgs::User, MessageError> {
    let user = crate::orgs::create_user(
        tx,
        now,
        actor,
        &new.as_new_user(),
        password_hash,
        crate::orgs::store::Start::ACTIVE,
    )?;
    let enterprise_id =
        user.enterprise_id.ok_or_else(|| MessageError::Internal(anyhow::anyhow!("no enterprise")))?;
    store::insert_platform_signer(
        tx,
        user.id,
        enterprise_id,
        match actor {
            Actor::User(id) => Some(*id),
            _ => None,
        },
        now,
    )?;
    audit::append(
        tx,
        now,
        actor,
        audit::Action::PlatformSignerRegister,
        &audit::Subject::User(user.id),
        json!({"enterprise": new.enterprise_code.as_str(), "username": new.username}),
    )?;
    Ok(crate::orgs::set_signing_key(tx, now, actor, user.id, &new.public_key)?)
}
