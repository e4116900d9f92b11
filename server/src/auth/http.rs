//! Login, refresh, logout, strong login, JWKS and "who am I".

use axum::{Json, extract::State, http::StatusCode};
use base64::{Engine, engine::general_purpose::STANDARD};
use ed25519_dalek::Signature;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{
    Caller,
    error::AuthError,
    login, password, store,
    throttle::{self, ClientAddr},
    tokens,
};
use crate::{
    audit::{self, Actor},
    domain::{Aal, AccountStatus, time::rfc3339},
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
    /// The password was set by someone else: until it is changed (`POST /api/v1/auth/password`), these
    /// tokens reach nothing else (403 `password_change_required`).
    pub password_change_required: bool,
    /// The enterprise's registration is not approved yet: these tokens reach the registration only
    /// (`GET`/`PUT /api/v1/registration`).
    pub registration_pending: bool,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
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

async fn audit_failure(
    state: &AppState,
    action: audit::Action,
    subject: audit::Subject<'_>,
    why: &'static str,
    client: ClientAddr,
) -> Result<(), ApiError> {
    let now = state.now_ms();
    // Spelled before the write: the writer thread outlives the borrowed name.
    let subject = subject.to_string();
    let details = json!({"reason": why, "address": client.to_string()});
    state.db.write(move |tx| Ok(audit::append(tx, now, &Actor::Anonymous, action, &subject, details)?)).await
}

/// Opens a session and issues the first token pair, in the caller's transaction.
fn open_session(
    state: &AppState,
    tx: &crate::db::Tx<'_>,
    user: &UserRow,
    device_id: Option<&str>,
    aal: Aal,
    now: i64,
) -> Result<TokenResponse, ApiError> {
    let expires_at = now + state.settings.auth.refresh_ttl_secs * 1000;
    let sid = store::create_session(tx, user.id, device_id, aal as u8, now, expires_at)?;
    token_pair(state, tx, user, &sid, device_id, aal, now)
}

/// A login that succeeded: its session opened and the login audited (`details` say how), in the caller's
/// transaction.
fn logged_in(
    state: &AppState,
    tx: &crate::db::Tx<'_>,
    user: &UserRow,
    device_id: Option<&str>,
    aal: Aal,
    now: i64,
    details: Value,
) -> Result<TokenResponse, ApiError> {
    let out = open_session(state, tx, user, device_id, aal, now)?;
    let subject = audit::Subject::User(user.id);
    audit::append(tx, now, &Actor::User(user.id), audit::Action::AuthLogin, &subject, details)?;
    Ok(out)
}

fn token_pair(
    state: &AppState,
    tx: &crate::db::Tx<'_>,
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
    Ok(TokenResponse {
        access_token,
        refresh_token,
        token_type: "Bearer",
        expires_in: ttl,
        aal,
        password_change_required: user.must_change_password,
        registration_pending: user.status == AccountStatus::Pending,
    })
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
        .write(move |tx| -> Result<_, ApiError> {
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
            audit_failure(
                &state,
                audit::Action::AuthLoginFailed,
                audit::Subject::User(user.id),
                "wrong password",
                client,
            )
            .await?;
            return Err(AuthError::BadCredentials.into());
        }
        None => {
            let subject = audit::Subject::Username(&req.username);
            audit_failure(&state, audit::Action::AuthLoginFailed, subject, "unknown user", client).await?;
            return Err(AuthError::BadCredentials.into());
        }
    };
    let now = state.now_ms();
    if let Err(e) = login::check_allowed(&user, now) {
        audit_failure(
            &state,
            audit::Action::AuthLoginRefused,
            audit::Subject::User(user.id),
            "account not active",
            client,
        )
        .await?;
        return Err(e.into());
    }
    let st = state.clone();
    let response = state
        .db
        .write(move |tx| -> Result<_, ApiError> {
            if let Some(device_id) = &req.device_id {
                crate::devices::check_usable_by(tx, device_id, user.id)?;
            }
            throttle::succeeded(tx, &attempt)?;
            let details =
                json!({"aal": "password", "device_id": req.device_id, "address": client.to_string()});
            logged_in(&st, tx, &user, req.device_id.as_deref(), Aal::Password, now, details)
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
    // A refused rotation still commits (a reused token ends its session), so it is an outcome, not an error.
    let outcome = state
        .db
        .write(move |tx| {
            login::rotate_refresh(tx, &hash, now)?.then(|r| {
                let aal = Aal::from_level(r.session.aal.into()).unwrap_or(Aal::Password);
                token_pair(&st, tx, &r.user, &r.session_id, r.session.device_id.as_deref(), aal, now)
            })
        })
        .await?;
    Ok(Json(outcome.into_result()?))
}

#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth", request_body = PasswordChange,
    security(("bearer" = [])),
    responses((status = 200, body = TokenResponse, description = "the password is changed; every other session of the account is ended and a new one begins"),
        (status = 401, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody, description = "too many password checks at once; `Retry-After` says when to try again")))]
pub async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    client: ClientAddr,
    ApiJson(req): ApiJson<PasswordChange>,
) -> Result<Json<TokenResponse>, ApiError> {
    // Bounded before any hashing: the new password's length and strength, then a place in the queue.
    password::check_strength(&req.new_password)?;
    if req.current_password.len() > password::MAX_PASSWORD_BYTES {
        return Err(AuthError::BadCredentials.into());
    }
    if req.new_password == req.current_password {
        return Err(crate::error::invalid(
            "new_password",
            "same_password",
            "the new password must differ from the current one",
        ));
    }
    let ticket = state.passwords.admit()?;
    let id = caller.user_id;
    let user = state
        .db
        .read(move |c| orgs_store::user(c, id)?.ok_or_else(|| ApiError::not_found("the user")))
        .await?;
    if !state.passwords.check(ticket, req.current_password, Some(user.password_hash.clone())).await? {
        audit_failure(
            &state,
            audit::Action::AuthLoginFailed,
            audit::Subject::User(id),
            "wrong current password at a password change",
            client,
        )
        .await?;
        return Err(AuthError::BadCredentials.into());
    }
    let hash = state.passwords.hash(req.new_password).await?;
    let now = state.now_ms();
    let st = state.clone();
    let response = state
        .db
        .write(move |tx| -> Result<_, ApiError> {
            orgs_store::update_password(tx, id, &hash)?;
            // Whoever knew the old password (the legal person who chose it) keeps no session.
            store::revoke_user_sessions(tx, id, now, "password changed")?;
            let user = orgs_store::user(tx, id)?.ok_or_else(|| ApiError::not_found("the user"))?;
            let aal = caller.aal;
            let out = open_session(&st, tx, &user, caller.device_id.as_deref(), aal, now)?;
            audit::append(
                tx,
                now,
                &Actor::User(id),
                audit::Action::AuthPasswordChange,
                &audit::Subject::User(id),
                json!({"address": client.to_string()}),
            )?;
            Ok(out)
        })
        .await?;
    Ok(Json(response))
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204, description = "the session is ended; its tokens stop working at once")))]
pub async fn logout(State(state): State<AppState>, caller: Caller) -> Result<StatusCode, ApiError> {
    let now = state.now_ms();
    state
        .db
        .write(move |tx| -> Result<_, ApiError> {
            store::revoke_session(tx, &caller.session_id, now, "logout")?;
            audit::append(
                tx,
                now,
                &Actor::User(caller.user_id),
                audit::Action::AuthLogout,
                &audit::Subject::User(caller.user_id),
                json!({}),
            )?;
            Ok(())
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
    let challenge =
        state.db.write(move |tx| login::issue_challenge(tx, &req.username, &nonce, expires_at)).await?;
    Ok(Json(ChallengeResponse {
        challenge_id: challenge.id,
        challenge: challenge.text,
        expires_at: challenge.expires_at,
    }))
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
    let outcome = state
        .db
        .write(move |tx| {
            login::verify_challenge(tx, &req.challenge_id, &signature, now)?
                .then(|user| logged_in(&st, tx, &user, None, Aal::Strong, now, json!({"aal": "strong"})))
        })
        .await?;
    Ok(Json(outcome.into_result()?))
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
            .read(|c| Ok::<_, ApiError>(c.query_row("SELECT count(*) FROM login_limits", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(counted, 0, "a refused login is no attempt");

        drop((running, queued));
        assert_eq!(app.oneshot(login()).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
}
