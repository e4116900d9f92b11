//! Message endpoints: intake (one message or a batch), evidence, signed receipts and their key, and the
//! administrator's platform signer registration. Thin: parse the body shape, call [`super::receive`] in one
//! write transaction, map the answers.

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Accepted, Answer, Intake, Signers, error::MessageError, store};
use crate::{
    audit::Actor,
    auth::Caller,
    delegations,
    domain::{CustomsCode, Line, Role},
    error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody},
    orgs::{self, NewUser, User},
    state::AppState,
};

/// One message, answered on its own.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MessageAnswer {
    /// `accepted` (first time), `replayed` (a resend: the original answer, nothing created) or `refused`.
    pub outcome: &'static str,
    /// The HTTP status this message alone would have got.
    pub status: u16,
    pub message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Accepted>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchAnswer {
    /// One per message, in the order sent.
    pub answers: Vec<MessageAnswer>,
    pub accepted: usize,
    pub replayed: usize,
    pub refused: usize,
}

fn error_body(e: ApiError) -> (u16, ErrorBody) {
    match e {
        ApiError::Client { status, code, message, details, .. } => {
            (status.as_u16(), ErrorBody { code: code.to_string(), message, details })
        }
        ApiError::Internal(e) => {
            tracing::error!(error = ?e, "internal error on one message of a batch");
            (
                500,
                ErrorBody {
                    code: "internal".into(),
                    message: "internal error; this message was not applied".into(),
                    details: Value::Null,
                },
            )
        }
    }
}

/// A refusal in the error shape, with the message id added to its details (when the payload told it), so
/// a batch sender can match answers without indexes.
fn refusal(e: MessageError, message_id: Option<&str>) -> ApiError {
    let Some(message_id) = message_id else { return e.into() };
    match e.into() {
        ApiError::Client { status, code, message, details, retry_after_secs } => {
            let details = match details {
                Value::Object(mut m) => {
                    m.insert("message_id".into(), json!(message_id));
                    Value::Object(m)
                }
                Value::Null => json!({"message_id": message_id}),
                other => json!({"message_id": message_id, "detail": other}),
            };
            ApiError::Client { status, code, message, details, retry_after_secs }
        }
        internal => internal,
    }
}

impl From<Answer> for MessageAnswer {
    fn from(a: Answer) -> MessageAnswer {
        match a {
            Answer::Accepted { accepted, status, replayed } => MessageAnswer {
                outcome: if replayed { "replayed" } else { "accepted" },
                status: status.as_u16(),
                message_id: Some(accepted.message_id.clone()),
                result: Some(accepted),
                error: None,
            },
            Answer::Refused { message_id, error } => {
                let (status, body) = error_body(refusal(error, message_id.as_deref()));
                MessageAnswer { outcome: "refused", status, message_id, result: None, error: Some(body) }
            }
        }
    }
}

/// The request body: one envelope, or `{"messages": [...]}`.
enum Body {
    One(Value),
    Batch(Vec<Value>),
}

fn parse_body(headers: &HeaderMap, bytes: &[u8], max_per_request: usize) -> Result<Body, ApiError> {
    let jose = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/jose"));
    if jose {
        let text = std::str::from_utf8(bytes).map_err(|_| {
            ApiError::bad_request("malformed_envelope", "an application/jose body is ASCII text")
        })?;
        return Ok(Body::One(Value::String(text.trim().to_string())));
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request(
            "invalid_json",
            format!("send a compact JWS as application/jose, or JSON (a JWS object or {{\"messages\": [...]}}): {e}"),
        )
    })?;
    match value {
        Value::Object(mut map) if map.contains_key("messages") => match map.remove("messages") {
            Some(Value::Array(list)) if list.is_empty() => {
                Err(ApiError::unprocessable("empty_batch", "`messages` is empty; send 1 or more"))
            }
            Some(Value::Array(list)) if list.len() > max_per_request => Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_many_messages",
                format!("one request carries at most {max_per_request} messages; split the batch"),
            )
            .with_details(json!({"max_per_request": max_per_request, "sent": list.len()}))),
            Some(Value::Array(list)) => Ok(Body::Batch(list)),
            _ => Err(ApiError::unprocessable("malformed_batch", "`messages` must be an array of envelopes")),
        },
        other => Ok(Body::One(other)),
    }
}

#[utoipa::path(post, path = "/api/v1/messages", tag = "messages",
    request_body(content = Object, description = "a compact JWS (`application/jose`), a JWS JSON object, or `{\"messages\": [...]}` (a batch)"),
    responses((status = 201, body = MessageAnswer, description = "one message accepted"),
        (status = 200, body = BatchAnswer, description = "a batch: every message answered on its own; or a resend of one"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody, description = "`unknown_key`, `bad_signature`"),
        (status = 403, body = ErrorBody, description = "`signer_frozen`, `not_delegated`, …"),
        (status = 409, body = ErrorBody, description = "`message_id_reused`: same id, different payload"),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let settings = &state.settings.messages;
    let body = parse_body(&headers, &bytes, settings.max_per_request)?;
    drop(bytes);
    let intake = Intake {
        now: state.now_ms(),
        year: crate::applications::http::filing_year(&state)?,
        inspection_deadline_ms: state.settings.workflow.inspection_deadline_ms(),
        booking: state.settings.booking.clone(),
        max_message_bytes: settings.max_message_bytes,
        certificate_key: state.certificate_key.clone(),
    };
    let (is_batch, list) = match body {
        Body::One(raw) => (false, vec![raw]),
        Body::Batch(list) => (true, list),
    };
    let list = Arc::new(list);
    let ahead = verify_ahead(&state, &list, intake.max_message_bytes);
    let answers = state
        .db
        .write(move |tx| -> Result<_, ApiError> {
            let mut signers = Signers::default();
            let mut answers = Vec::with_capacity(list.len());
            for (chunk, verified) in list.chunks(VERIFY_CHUNK).zip(ahead) {
                // In order, each chunk as soon as it is verified. A chunk whose reader failed comes as
                // nothing verified: the writer then runs every check itself.
                let verified = verified.recv().unwrap_or_default();
                let mut verified = verified.into_iter();
                for raw in chunk {
                    let one = verified.next().flatten();
                    answers.push(super::receive(tx, &intake, &mut signers, raw, one));
                }
            }
            Ok(answers)
        })
        .await?;
    if answers.iter().any(|a| matches!(a, Answer::Accepted { replayed: false, .. })) {
        state.receipts_changed();
    }
    if is_batch {
        let answers: Vec<MessageAnswer> = answers.into_iter().map(MessageAnswer::from).collect();
        let count = |o: &str| answers.iter().filter(|a| a.outcome == o).count();
        let (accepted, replayed, refused) = (count("accepted"), count("replayed"), count("refused"));
        return Ok(Json(BatchAnswer { answers, accepted, replayed, refused }).into_response());
    }
    // A single message answers like any endpoint: its status, and a refusal in the one error shape.
    match answers.into_iter().next() {
        Some(Answer::Refused { error, message_id }) => Err(refusal(error, message_id.as_deref())),
        Some(accepted) => {
            let answer = MessageAnswer::from(accepted);
            Ok((StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK), Json(answer)).into_response())
        }
        None => Err(ApiError::Internal(anyhow::anyhow!("one message gave no answer"))),
    }
}

/// Messages verified ahead per chunk: small enough that the writer starts soon, large enough that
/// handing a chunk over costs nothing next to verifying it.
const VERIFY_CHUNK: usize = 32;

/// Parses and verifies the messages on reader threads, one per core, chunk by chunk in order: signature
/// checks are most of a bulk's CPU outside the writer, and done here they neither hold the one writer
/// nor run on one core only. Answers one channel per chunk of [`VERIFY_CHUNK`], each bringing the chunk's
/// messages verified (or `None`), so the writer can apply the first chunks while later ones are verified.
fn verify_ahead(
    state: &AppState,
    list: &Arc<Vec<Value>>,
    max_bytes: usize,
) -> Vec<std::sync::mpsc::Receiver<Vec<Option<super::Verified>>>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunks = list.len().div_ceil(VERIFY_CHUNK);
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..chunks).map(|_| std::sync::mpsc::channel()).unzip();
    // Reader `w` verifies chunks w, w + threads, w + 2 × threads, …
    let readers = threads.min(chunks);
    let mut per_reader: Vec<Vec<_>> = (0..readers).map(|_| Vec::new()).collect();
    for (k, sender) in senders.into_iter().enumerate() {
        per_reader[k % readers].push((k, sender));
    }
    for mine in per_reader {
        let (db, list) = (state.db.clone(), list.clone());
        // Not awaited: the writer waits on the channels, and a reader that fails drops its senders.
        tokio::spawn(async move {
            db.read(move |c| -> Result<_, ApiError> {
                let mut signers = Signers::default();
                for (k, sender) in mine {
                    let chunk = list.chunks(VERIFY_CHUNK).nth(k).unwrap_or_default();
                    let verified = chunk
                        .iter()
                        .map(|raw| super::verify_ahead(c, &mut signers, raw, max_bytes))
                        .collect();
                    if sender.send(verified).is_err() {
                        break;
                    }
                }
                Ok(())
            })
            .await
        });
    }
    receivers
}

#[utoipa::path(get, path = "/api/v1/messages/{id}", tag = "messages", security(("bearer" = [])),
    params(("id" = i64, Path, description = "the `evidence_id` of an accepted message")),
    responses((status = 200, body = store::Evidence), (status = 404, body = ErrorBody)))]
pub async fn evidence(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<store::Evidence>, ApiError> {
    let now = state.now_ms();
    let found = state
        .db
        .read(move |c| {
            let e = store::evidence(c, id)?.ok_or_else(|| ApiError::not_found("the message"))?;
            let visible = match caller.role {
                Role::EnterpriseLegal | Role::EnterpriseOperator => {
                    delegations::may_see(c, &caller, e.enterprise_id, now)?
                }
                Role::Admin | Role::Reviewer | Role::Supervisor => true,
                Role::Officer => false,
            };
            if visible { Ok(e) } else { Err(ApiError::not_found("the message")) }
        })
        .await?;
    Ok(Json(found))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EvidenceQuery {
    /// Cursor: messages after this evidence id (0 or absent = from the first).
    pub after: Option<i64>,
    /// At most this many (default 100, at most 500).
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EvidencePage {
    pub messages: Vec<store::EvidenceEntry>,
    /// Pass as `after` for the next page; null when this page is the last.
    pub next_cursor: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/applications/{id}/messages", tag = "messages", security(("bearer" = [])),
    params(("id" = i64, Path, description = "the application"), EvidenceQuery),
    responses((status = 200, body = EvidencePage, description = "the signed messages about the application, its bookings and its certificates, oldest first"),
        (status = 404, body = ErrorBody, description = "no such application, or not yours to see")))]
pub async fn application_evidence(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<EvidenceQuery>,
) -> Result<Json<EvidencePage>, ApiError> {
    let now = state.now_ms();
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(crate::error::invalid("limit", "invalid_limit", "`limit` is 1 to 500"));
    }
    let after = q.after.unwrap_or(0);
    let messages = state
        .db
        .read(move |c| -> Result<_, ApiError> {
            crate::applications::filing::load_visible(c, &caller, id, now)?;
            // One more than asked tells whether another page follows.
            Ok(store::for_application(c, id, after, limit + 1)?)
        })
        .await?;
    let mut messages = messages;
    let next_cursor = (messages.len() as i64 > limit).then(|| {
        messages.truncate(limit as usize);
        messages.last().map_or(after, |m| m.evidence_id)
    });
    Ok(Json(EvidencePage { messages, next_cursor }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SignedReceiptQuery {
    /// Cursor: receipts after this id (0 or absent = from the start).
    pub after: Option<i64>,
    /// At most this many (default 100, at most 500).
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignedReceipt {
    pub id: i64,
    /// The receipt as a compact JWS signed with customs' receipt key (`GET /api/v1/receipts/jwks`).
    pub jws: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignedReceiptPage {
    pub receipts: Vec<SignedReceipt>,
    pub next_cursor: i64,
}

#[utoipa::path(get, path = "/api/v1/receipts/signed", tag = "receipts", security(("bearer" = [])),
    params(SignedReceiptQuery), responses((status = 200, body = SignedReceiptPage)))]
pub async fn signed_receipts(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<SignedReceiptQuery>,
) -> Result<Json<SignedReceiptPage>, ApiError> {
    let after = q.after.unwrap_or(0).max(0);
    let limit = crate::error::in_range("limit", q.limit, 100, 1, 500)?;
    let now = state.now_ms();
    let receipts = state.db.read(move |c| crate::receipts::list(c, &caller, after, limit, now)).await?;
    let next_cursor = receipts.last().map_or(after, |r| r.id);
    let key = state.receipt_key.clone();
    let issuer = state.settings.auth.issuer.clone();
    let signed = tokio::task::spawn_blocking(move || {
        receipts
            .into_iter()
            .map(|r| {
                let payload = json!({"iss": issuer, "signed_at": crate::domain::time::rfc3339::to_string(now),
                                     "receipt": &r});
                SignedReceipt { id: r.id, jws: key.sign(payload.to_string().as_bytes()) }
            })
            .collect::<Vec<_>>()
    })
    .await?;
    Ok(Json(SignedReceiptPage { receipts: signed, next_cursor }))
}

#[utoipa::path(get, path = "/api/v1/receipts/jwks", tag = "receipts",
    responses((status = 200, description = "customs' receipt-signing public key as a JWK set")))]
pub async fn receipt_jwks(State(state): State<AppState>) -> Json<Value> {
    Json(state.receipt_key.jwks())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPlatformSigner {
    /// The platform enterprise (a registered enterprise; principals delegate to it).
    pub enterprise_code: CustomsCode,
    /// The signer account's username: the `kid` its messages carry.
    pub username: String,
    pub display_name: Line<200>,
    /// Base64 of the platform's 32-byte Ed25519 public key.
    pub public_key: String,
}

#[utoipa::path(post, path = "/api/v1/admin/platform-signers", tag = "admin", request_body = NewPlatformSigner,
    security(("bearer" = [])),
    responses((status = 201, body = User), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn register_platform_signer(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<NewPlatformSigner>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    orgs::check_username(&req.username)?;
    orgs::parse_public_key(&req.public_key)?;
    // The account never logs in with a password: it gets one nobody knows.
    let secret = hex::encode(crate::auth::keys::random_seed().map_err(ApiError::Internal)?);
    let hash = state.passwords.hash(secret).await?;
    let now = state.now_ms();
    let user = state
        .db
        .write(move |tx| super::register_platform_signer(tx, now, &Actor::User(caller.user_id), &req, &hash))
        .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

impl NewPlatformSigner {
    pub fn as_new_user(&self) -> NewUser {
        NewUser {
            username: self.username.clone(),
            display_name: self.display_name.clone(),
            password: String::new(),
            role: Role::EnterpriseOperator,
            unit_code: None,
            enterprise_code: Some(self.enterprise_code.clone()),
            valid_until: None,
        }
    }
}
