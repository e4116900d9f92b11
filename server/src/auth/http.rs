//! Login, refresh, logout, strong login, JWKS and "who am I".

use axum::{Json, extract::State, http::StatusCode};
use base64::{Engine, engine::general_purpose::STANDARD};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{
    Caller, store,
    throttle::{self, ClientAddr},
    tokens,
};
use crate::{
    audit::{self, Actor},
    domain::{Aal, UserStatus, time::rfc3339},
    error::{ApiError, ApiJson, ErrorBody},
    orgs::{User, store as orgs_store, store::UserRow},
    state::AppState,
};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    /// A handheld's device id: binds the session to the device, so freezing it ends the session.
    pub device_id: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub aal: Aal,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChallengeRequest {
    pub username: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChallengeResponse {
    pub challenge_id: String,
    /// Sign exactly these UTF-8 bytes with your Ed25519 key.
    pub challenge: String,
    #[serde(with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: i64,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StrongLoginRequest {
    pub challenge_id: String,
    /// Base64 of the 64-byte Ed25519 signature over `challenge`.
    pub signature: String,
}

fn bad_credentials() -> ApiError {
    // One answer for unknown user and wrong password: the difference would tell an attacker who exists.
    ApiError::unauthorized("invalid_credentials", "the username or password is wrong")
}

fn challenge_text(challenge_id: &str, username: &str, nonce: &[u8], expires_at: i64) -> String {
    format!(
        "fieldcheck strong login v1\nchallenge:{challenge_id}\nuser:{username}\nnonce:{}\nexpires:{expires_at}",
        hex::encode(nonce)
    )
}

async fn audit_failure(
    state: &AppState,
    action: &'static str,
    subject: String,
    why: &'static str,
    client: ClientAddr,
) -> Result<(), ApiError> {
    let now = state.now_ms();
    let details = json!({"reason": why, "address": client.to_string()});
    state.db.write(move |tx| audit::append(tx, now, &Actor::Anonymous, action, &subject, details)).await
}

/// Checks that the user may log in now, before any token is made.
fn check_login_allowed(user: &UserRow, now: i64) -> Result<(), ApiError> {
    match user.status {
        UserStatus::Active => {}
        UserStatus::Frozen => return Err(ApiError::unauthorized("account_frozen", "this account is frozen")),
        UserStatus::Lost => {
            return Err(ApiError::unauthorized("account_lost", "this account was reported lost"));
        }
    }
    if user.valid_until.is_some_and(|t| t <= now) {
        return Err(ApiError::unauthorized("account_expired", "this account's validity has ended"));
    }
    Ok(())
}

/// Opens a session and issues the first token pair, in the caller's transaction.
fn open_session(
    state: &AppState,
    tx: &rusqlite::Transaction<'_>,
    user: &UserRow,
    device_id: Option<&str>,
    aal: Aal,
    now: i64,
) -> Result<TokenResponse, ApiError> {
    let expires_at = now + state.settings.auth.refresh_ttl_secs * 1000;
    let sid = store::create_session(tx, user.id, device_id, aal as u8, now, expires_at)?;
    token_pair(state, tx, user, &sid, device_id, aal, now)
}

fn token_pair(
    state: &AppState,
    tx: &rusqlite::Transaction<'_>,
    user: &UserRow,
    sid: &str,
    device_id: Option<&str>,
    aal: Aal,
    now: i64,
) -> Result<TokenResponse, ApiError> {
    let ttl = state.settings.auth.access_ttl_secs;
    let claims = tokens::Claims {
        iss: state.settings.auth.issuer.clone(),
        sub: user.id.to_string(),
        username: user.username.clone(),
        role: user.role,
        org: user.enterprise_id,
        unit: user.unit_id,
        aal: aal as u8,
        sid: sid.to_string(),
        dev: device_id.map(str::to_string),
        iat: now / 1000,
        exp: now / 1000 + ttl,
    };
    let access_token = tokens::issue(&state.keys, &claims)?;
    let (refresh_token, hash) = tokens::new_refresh_token()?;
    store::store_refresh(tx, &hash, sid, now)?;
    Ok(TokenResponse { access_token, refresh_token, token_type: "Bearer", expires_in: ttl, aal })
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "too many failed logins from this address; `Retry-After` says when to try again"),
        (status = 503, body = ErrorBody, description = "too many logins at once; `Retry-After` says when to try again")))]
pub async fn login(
    State(state): State<AppState>,
    client: ClientAddr,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    // A place in the hashing queue first: when it is full the login is refused before it costs anything.
    let ticket = state.passwords.admit()?;
    let now = state.now_ms();
    let st = state.clone();
    let name = req.username.clone();
    let (user, attempt) = state
        .db
        .write(move |tx| {
            let user = orgs_store::user_by_name(tx, &name)?;
            let account = throttle::account_of(user.as_ref().map(|u| u.id), &name);
            let attempt = throttle::reserve(tx, &st.settings.auth, client, &account, now)?;
            Ok((user, attempt))
        })
        .await?;
    // An unknown username is checked against the dummy hash: the same work, and the same answer, as a wrong
    // password, so neither timing nor the response tells who exists.
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let matched = state.passwords.check(ticket, req.password, stored).await?;
    let user = match user {
        Some(user) if matched => user,
        Some(user) => {
            audit_failure(&state, "auth.login_failed", format!("user:{}", user.id), "wrong password", client)
                .await?;
            return Err(bad_credentials());
        }
        None => {
            let subject = format!("username:{}", req.username);
            audit_failure(&state, "auth.login_failed", subject, "unknown user", client).await?;
            return Err(bad_credentials());
        }
    };
    let now = state.now_ms();
    if let Err(e) = check_login_allowed(&user, now) {
        audit_failure(
            &state,
            "auth.login_refused",
            format!("user:{}", user.id),
            "account not active",
            client,
        )
        .await?;
        return Err(e);
    }
    let st = state.clone();
    let response = state
        .db
        .write(move |tx| {
            if let Some(device_id) = &req.device_id {
                crate::devices::check_usable_by(tx, device_id, user.id)?;
            }
            throttle::succeeded(tx, &attempt)?;
            let out = open_session(&st, tx, &user, req.device_id.as_deref(), Aal::Password, now)?;
            audit::append(
                tx,
                now,
                &Actor::User(user.id),
                "auth.login",
                &format!("user:{}", user.id),
                json!({"aal": "password", "device_id": req.device_id, "address": client.to_string()}),
            )?;
            Ok(out)
        })
        .await?;
    Ok(Json(response))
}

#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorBody)))]
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let now = state.now_ms();
    let hash = tokens::refresh_token_hash(&req.refresh_token);
    let st = state.clone();
    // The reuse verdict must be committed even though the request fails, so it is returned as a value.
    let outcome: Result<TokenResponse, ApiError> = state
        .db
        .write(move |tx| {
            let sid = match store::spend_refresh(tx, &hash, now)? {
                store::Rotation::Rotated { session_id } => session_id,
                store::Rotation::Reused => {
                    audit::append(tx, now, &Actor::Anonymous, "auth.refresh_reused", "session", json!({}))?;
                    return Ok(Err(ApiError::unauthorized(
                        "refresh_token_reused",
                        "this refresh token was already used; the session is ended, log in again",
                    )));
                }
                store::Rotation::Unknown => {
                    return Ok(Err(ApiError::unauthorized("invalid_refresh_token", "unknown refresh token")));
                }
            };
            let session = store::session(tx, &sid)?.ok_or_else(|| ApiError::not_found("the session"))?;
            if session.revoked || session.expires_at <= now {
                return Ok(Err(ApiError::unauthorized(
                    "session_ended",
                    "this session has ended; log in again",
                )));
            }
            let user =
                orgs_store::user(tx, session.user_id)?.ok_or_else(|| ApiError::not_found("the user"))?;
            if let Err(e) = check_login_allowed(&user, now) {
                return Ok(Err(e));
            }
            if let Some(device_id) = &session.device_id
                && let Err(e) = crate::devices::check_usable_by(tx, device_id, user.id)
            {
                return Ok(Err(e));
            }
            let aal = Aal::from_level(session.aal.into()).unwrap_or(Aal::Password);
            Ok(Ok(token_pair(&st, tx, &user, &sid, session.device_id.as_deref(), aal, now)?))
        })
        .await?;
    outcome.map(Json)
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204, description = "the session is ended; its tokens stop working at once")))]
pub async fn logout(State(state): State<AppState>, caller: Caller) -> Result<StatusCode, ApiError> {
    let now = state.now_ms();
    state
        .db
        .write(move |tx| {
            store::revoke_session(tx, &caller.session_id, now, "logout")?;
            audit::append(
                tx,
                now,
                &Actor::User(caller.user_id),
                "auth.logout",
                &format!("user:{}", caller.user_id),
                json!({}),
            )
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/auth/challenge", tag = "auth", request_body = ChallengeRequest,
    responses((status = 200, body = ChallengeResponse), (status = 401, body = ErrorBody)))]
pub async fn challenge(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ChallengeRequest>,
) -> Result<Json<ChallengeResponse>, ApiError> {
    let now = state.now_ms();
    let expires_at = now + state.settings.auth.challenge_ttl_secs * 1000;
    let mut nonce = [0u8; 32];
    getrandom::fill(&mut nonce).map_err(|e| ApiError::Internal(anyhow::anyhow!("no randomness: {e}")))?;
    state
        .db
        .write(move |tx| {
            let user = orgs_store::user_by_name(tx, &req.username)?
                .filter(|u| u.signing_key.is_some())
                .ok_or_else(|| {
                    ApiError::unauthorized(
                        "no_signing_key",
                        "no registered signing key for this username; ask an administrator to register one",
                    )
                })?;
            let id = store::create_challenge(tx, user.id, &nonce, expires_at)?;
            Ok(Json(ChallengeResponse {
                challenge: challenge_text(&id, &user.username, &nonce, expires_at),
                challenge_id: id,
                expires_at,
            }))
        })
        .await
}

#[utoipa::path(post, path = "/api/v1/auth/strong-login", tag = "auth", request_body = StrongLoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorBody)))]
pub async fn strong_login(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<StrongLoginRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let now = state.now_ms();
    let signature = STANDARD
        .decode(req.signature.trim())
        .ok()
        .and_then(|b| Signature::from_slice(&b).ok())
        .ok_or_else(|| {
        crate::error::invalid("signature", "invalid_signature", "`signature` must be base64 of 64 bytes")
    })?;
    let st = state.clone();
    let outcome: Result<TokenResponse, ApiError> = state
        .db
        .write(move |tx| {
            let refuse = |tx: &rusqlite::Transaction<'_>, subject: String, why: &str, err: ApiError| {
                audit::append(
                    tx,
                    now,
                    &Actor::Anonymous,
                    "auth.strong_login_failed",
                    &subject,
                    json!({"reason": why}),
                )?;
                Ok(Err(err))
            };
            let Some(c) = store::take_challenge(tx, &req.challenge_id, now)? else {
                return refuse(
                    tx,
                    "challenge".into(),
                    "unknown challenge",
                    ApiError::unauthorized("invalid_challenge", "unknown challenge; ask for a new one"),
                );
            };
            let subject = format!("user:{}", c.user_id);
            if c.used || c.expires_at <= now {
                return refuse(
                    tx,
                    subject,
                    "challenge spent or expired",
                    ApiError::unauthorized(
                        "invalid_challenge",
                        "this challenge was used or has expired; ask for a new one",
                    ),
                );
            }
            let user = orgs_store::user(tx, c.user_id)?.ok_or_else(|| ApiError::not_found("the user"))?;
            let key = user
                .signing_key
                .as_deref()
                .and_then(|k| <[u8; 32]>::try_from(k).ok())
                .and_then(|k| VerifyingKey::from_bytes(&k).ok());
            let text = challenge_text(&req.challenge_id, &user.username, &c.nonce, c.expires_at);
            if key.is_none_or(|k| k.verify(text.as_bytes(), &signature).is_err()) {
                return refuse(
                    tx,
                    subject,
                    "bad signature",
                    ApiError::unauthorized(
                        "invalid_signature",
                        "the signature does not verify with the registered key",
                    ),
                );
            }
            if let Err(e) = check_login_allowed(&user, now) {
                return refuse(tx, subject, "account not active", e);
            }
            let out = open_session(&st, tx, &user, None, Aal::Strong, now)?;
            audit::append(tx, now, &Actor::User(user.id), "auth.login", &subject, json!({"aal": "strong"}))?;
            Ok(Ok(out))
        })
        .await?;
    outcome.map(Json)
}

#[utoipa::path(get, path = "/api/v1/auth/jwks", tag = "auth",
    responses((status = 200, description = "the token-verification public key as a JWK set")))]
pub async fn jwks(State(state): State<AppState>) -> Json<Value> {
    Json(state.keys.jwks())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    pub user: User,
    pub aal: Aal,
    pub device_id: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
pub async fn me(State(state): State<AppState>, caller: Caller) -> Result<Json<Me>, ApiError> {
    let id = caller.user_id;
    let user = state
        .db
        .read(move |c| orgs_store::user(c, id)?.ok_or_else(|| ApiError::not_found("the user")))
        .await?;
    Ok(Json(Me { user: user.public(), aal: caller.aal, device_id: caller.device_id }))
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use axum::{
        body::{Body, to_bytes},
        extract::connect_info::MockConnectInfo,
        http::Request,
    };
    use tower::ServiceExt;

    use super::*;
    use crate::config::Settings;

    #[tokio::test]
    async fn a_login_beyond_the_hashing_queue_is_answered_503_with_retry_after_and_counts_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = Settings::default();
        settings.storage.data_dir = dir.path().to_path_buf();
        settings.auth.password_hash_concurrency = 1;
        settings.auth.password_hash_queue = 1;
        let state = crate::prepare(settings).unwrap();
        let app = crate::router::app(state.clone())
            .layer(MockConnectInfo(SocketAddr::from(([192, 0, 2, 1], 4000))));
        let login = || {
            Request::post("/api/v1/auth/login")
                .header("content-type", "application/json")
                .body(Body::from(r#"{"username": "nobody", "password": "whatever-it-is"}"#))
                .unwrap()
        };

        let (running, queued) = (state.passwords.admit().unwrap(), state.passwords.admit().unwrap());
        let response = app.clone().oneshot(login()).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["retry-after"], "1");
        let body: Value =
            serde_json::from_slice(&to_bytes(response.into_body(), 1 << 16).await.unwrap()).unwrap();
        assert_eq!(body["code"], "overloaded");
        assert_eq!(body["details"], json!({"retry_after_secs": 1}));
        let counted: i64 = state
            .db
            .read(|c| Ok(c.query_row("SELECT count(*) FROM login_limits", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(counted, 0, "a refused login is no attempt");

        drop((running, queued));
        assert_eq!(app.oneshot(login()).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
}
