//! Who is calling, and the per-route policy that decides whether they may.
//!
//! The router declares a [`Policy`] for each group of routes (roles, minimum assurance level); the
//! `authorize` middleware verifies the bearer token, checks that the session, user and device are still
//! live in the database, applies the policy and hands the handler a [`Caller`]. Data-dependent rules (this
//! enterprise, this unit's subtree) are the handler's, through the helpers below.

use axum::{
    extract::{FromRequestParts, Request, State},
    http::{
        HeaderValue, Method, StatusCode,
        header::{AUTHORIZATION, COOKIE},
        request::Parts,
    },
    middleware::Next,
    response::Response,
};

pub use super::identity::Caller;
use super::{store, tokens};
use crate::{
    domain::{Aal, AccountStatus, Principal, Role, UserStatus},
    error::ApiError,
    state::AppState,
};

/// A live session that may reach only a few routes: an account that must first change the password
/// someone else chose for it, or the legal person of an enterprise whose registration is not approved
/// yet. Read from the account on every request (not from the token), so it ends the moment the password
/// is changed or the registration approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restriction {
    PasswordChange,
    Registration,
}

impl Restriction {
    fn refusal(self) -> ApiError {
        match self {
            Restriction::PasswordChange => ApiError::new(
                StatusCode::FORBIDDEN,
                "password_change_required",
                "password change required: set a new password first (POST /api/v1/auth/password)",
            ),
            Restriction::Registration => ApiError::new(
                StatusCode::FORBIDDEN,
                "registration_pending",
                "your enterprise's registration is not approved yet: read it at GET /api/v1/registration",
            ),
        }
    }
}

/// A route group's access rule.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Roles allowed; empty means any authenticated user.
    pub roles: &'static [Role],
    pub min_aal: Aal,
    /// Also accept what a browser can send without script-set headers: the dashboard's session cookie
    /// ([`SESSION_COOKIE`], safe methods only) and a stream token (`?token=`, `GET /api/v1/events`).
    pub browser: bool,
    /// With `browser`: the cookie is accepted on POST too. Only for the dashboard's sign-out, a form
    /// post of our own page; the `SameSite=Strict` cookie never comes with another site's request.
    pub cookie_post: bool,
    /// Restricted sessions these routes still serve (the password change, the own registration).
    pub admits: &'static [Restriction],
}

/// The dashboard's cookie: the access token, `HttpOnly`, `SameSite=Strict` (so no other site can make
/// a browser send it), accepted only on routes whose policy says [`Policy::browser`] and only for GET.
pub const SESSION_COOKIE: &str = "fieldcheck_access";

/// The dashboard's cookie carrying `token` for `max_age_secs` (0 clears it): `HttpOnly`, `SameSite=Strict`,
/// and `Secure` when the server is reached over https (`server.public_url`).
pub fn session_cookie(settings: &crate::config::Settings, token: &str, max_age_secs: i64) -> String {
    let secure = if settings.server.https() { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_secs}{secure}")
}

/// The sliding session: a cookie whose access token has lived half its lifetime is replaced by a fresh
/// token of the same session on the response, so a dashboard in use is never signed out when a token
/// expires. The session itself still ends on logout, a frozen account, or at its own expiry (the refresh
/// lifetime), because every request checks it. Answers the new cookie, if one is due.
fn renewed_cookie(state: &AppState, token: &str) -> Result<Option<HeaderValue>, ApiError> {
    let now = state.now_ms() / 1000;
    let ttl = state.settings.auth.access_ttl_secs;
    let claims = tokens::verify(&state.keys, &state.settings.auth.issuer, token, now)?;
    if now - claims.iat < ttl / 2 {
        return Ok(None);
    }
    let fresh = tokens::issue(&state.keys, &tokens::Claims { iat: now, exp: now + ttl, ..claims })?;
    let cookie = session_cookie(&state.settings, &fresh, ttl);
    HeaderValue::from_str(&cookie).map(Some).map_err(|e| ApiError::Internal(anyhow::anyhow!("cookie: {e}")))
}

impl Policy {
    pub const fn any() -> Policy {
        Policy { roles: &[], min_aal: Aal::Password, browser: false, cookie_post: false, admits: &[] }
    }

    pub const fn roles(roles: &'static [Role]) -> Policy {
        Policy { roles, min_aal: Aal::Password, browser: false, cookie_post: false, admits: &[] }
    }

    pub const fn strong(mut self) -> Policy {
        self.min_aal = Aal::Strong;
        self
    }

    pub const fn browser(mut self) -> Policy {
        self.browser = true;
        self
    }

    pub const fn cookie_post(mut self) -> Policy {
        self.cookie_post = true;
        self
    }

    pub const fn admitting(mut self, restrictions: &'static [Restriction]) -> Policy {
        self.admits = restrictions;
        self
    }
}

pub async fn authorize(
    State((state, policy)): State<(AppState, Policy)>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let mut renewed = None;
    let caller = match req.headers().get(AUTHORIZATION) {
        None if policy.browser
            && (req.method() == Method::GET || (policy.cookie_post && req.method() == Method::POST)) =>
        {
            let mut credentials = BrowserCredentials::of(&req);
            if req.method() == Method::POST {
                // A stream token opens streams only.
                credentials.stream_token = None;
            }
            let cookie = credentials.stream_token.is_none().then(|| credentials.cookie.clone()).flatten();
            let caller = browser_caller(&state, credentials).await?;
            if let Some(token) = cookie {
                renewed = renewed_cookie(&state, &token)?;
            }
            caller
        }
        header => authenticate(&state, header, policy.admits).await?,
    };
    if !policy.roles.is_empty() {
        caller.require_role(policy.roles)?;
    }
    if caller.aal < policy.min_aal {
        return Err(ApiError::forbidden(
            "this needs a strong login: sign a challenge with your registered key (POST /api/v1/auth/challenge)",
        )
        .with_details(serde_json::json!({"required_aal": "strong"})));
    }
    req.extensions_mut().insert(caller);
    let mut response = next.run(req).await;
    // Not on a sign-out: its own answer clears the cookie.
    if let Some(cookie) = renewed
        && !response.headers().contains_key(axum::http::header::SET_COOKIE)
    {
        response.headers_mut().insert(axum::http::header::SET_COOKIE, cookie);
    }
    Ok(response)
}

/// What a browser request can carry instead of `Authorization`.
struct BrowserCredentials {
    stream_token: Option<String>,
    cookie: Option<String>,
}

impl BrowserCredentials {
    fn of(req: &Request) -> BrowserCredentials {
        let stream_token = req
            .uri()
            .query()
            .into_iter()
            .flat_map(|q| q.split('&'))
            .find_map(|p| p.strip_prefix("token="))
            .map(str::to_owned);
        let cookie = req
            .headers()
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|c| c.trim().strip_prefix(SESSION_COOKIE)?.strip_prefix('='))
            .map(str::to_owned);
        BrowserCredentials { stream_token, cookie }
    }
}

/// The caller of a browser request: a stream token in the query, else the session cookie.
async fn browser_caller(state: &AppState, credentials: BrowserCredentials) -> Result<Caller, ApiError> {
    if let Some(token) = credentials.stream_token {
        let caller = state.events.redeem(&token, state.now_ms()).ok_or_else(|| {
            ApiError::unauthorized(
                "invalid_stream_token",
                "this stream token is unknown or expired; ask for a new one",
            )
        })?;
        live_session(state, &caller.session_id).await?;
        return Ok(caller);
    }
    let cookie = credentials.cookie.ok_or_else(|| {
        ApiError::unauthorized("missing_token", "log in first (or send `Authorization: Bearer …`)")
    })?;
    authenticate_token(state, &cookie).await
}

async fn authenticate(
    state: &AppState,
    header: Option<&HeaderValue>,
    admits: &[Restriction],
) -> Result<Caller, ApiError> {
    let token = header.and_then(bearer_token).ok_or_else(|| {
        ApiError::unauthorized("missing_token", "send `Authorization: Bearer <access token>`; log in first")
    })?;
    authenticate_admitting(state, token, admits).await
}

/// Verifies an access token and the liveness of its session, user and device, as the `authorize`
/// middleware does for a bearer header. The WebSocket endpoint calls it with the token of its query
/// string, because browsers cannot set headers on a WebSocket.
pub async fn authenticate_token(state: &AppState, token: &str) -> Result<Caller, ApiError> {
    authenticate_admitting(state, token, &[]).await
}

/// [`authenticate_token`] for routes that also serve some restricted sessions.
async fn authenticate_admitting(
    state: &AppState,
    token: &str,
    admits: &[Restriction],
) -> Result<Caller, ApiError> {
    let now = state.now_ms();
    let claims = tokens::verify(&state.keys, &state.settings.auth.issuer, token, now / 1000)?;
    session_access(state, &claims.sid, admits).await?;
    let user_id = claims
        .sub
        .parse()
        .map_err(|_| ApiError::unauthorized("invalid_token", "the token's subject is malformed"))?;
    Ok(Caller {
        principal: Principal {
            user_id,
            username: claims.username,
            role: claims.role,
            enterprise_id: claims.org,
            unit_id: claims.unit,
        },
        aal: Aal::from_level(claims.aal.into()).unwrap_or(Aal::Password),
        session_id: claims.sid,
        device_id: claims.dev,
    })
}

/// Refuses a session that was logged out, has expired, or whose account or device is no longer active,
/// and a restricted one (see [`Restriction`]).
pub async fn live_session(state: &AppState, sid: &str) -> Result<(), ApiError> {
    session_access(state, sid, &[]).await
}

/// [`live_session`], letting through the restricted sessions in `admits`.
async fn session_access(state: &AppState, sid: &str, admits: &[Restriction]) -> Result<(), ApiError> {
    let now = state.now_ms();
    let sid = sid.to_owned();
    let status = state
        .db
        .read(move |c| store::session_status(c, &sid))
        .await?
        .ok_or_else(|| ApiError::unauthorized("invalid_token", "the session of this token is unknown"))?;
    if status.revoked_at.is_some() || status.expires_at <= now {
        return Err(ApiError::unauthorized("session_ended", "this session has ended; log in again"));
    }
    let restriction = match status.user_status {
        // A registering legal person reads and amends the registration; a pending operator waits for its
        // legal person and has no session at all (the login refuses it).
        AccountStatus::Pending if status.user_role == Role::EnterpriseLegal => {
            Some(Restriction::Registration)
        }
        AccountStatus::Pending => return Err(crate::auth::error::AuthError::AccountPending.into()),
        AccountStatus::Active => status.must_change_password.then_some(Restriction::PasswordChange),
        AccountStatus::Frozen => return refuse_unless_active("account", UserStatus::Frozen),
        AccountStatus::Lost => return refuse_unless_active("account", UserStatus::Lost),
    };
    if status.user_valid_until.is_some_and(|until| until <= now) {
        return Err(ApiError::unauthorized(
            "account_expired",
            "this account's validity has ended; ask your legal person to extend it",
        ));
    }
    if let Some(device) = status.device_status {
        refuse_unless_active("device", device)?;
    }
    match restriction {
        Some(r) if !admits.contains(&r) => Err(r.refusal()),
        _ => Ok(()),
    }
}

/// The token of `Authorization: Bearer <token>`. Auth schemes are case-insensitive and may be followed by
/// several spaces (RFC 7235 §2.1), so `bearer` and `BEARER` are the same scheme.
fn bearer_token(header: &HeaderValue) -> Option<&str> {
    let (scheme, token) = header.to_str().ok()?.split_once(' ')?;
    let token = token.trim_start_matches(' ');
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn refuse_unless_active(what: &str, status: UserStatus) -> Result<(), ApiError> {
    match status {
        UserStatus::Active => Ok(()),
        UserStatus::Frozen => Err(ApiError::unauthorized(
            if what == "device" { "device_frozen" } else { "account_frozen" },
            format!("this {what} is frozen; ask a supervisor or your legal person to unfreeze it"),
        )),
        UserStatus::Lost => Err(ApiError::unauthorized(
            if what == "device" { "device_lost" } else { "account_lost" },
            format!("this {what} was reported lost and can no longer be used"),
        )),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!("route takes a Caller but has no authorize layer"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_of(header: &'static str) -> Option<String> {
        bearer_token(&HeaderValue::from_static(header)).map(str::to_owned)
    }

    #[test]
    fn the_bearer_scheme_is_read_in_any_case_and_with_several_spaces() {
        for header in ["Bearer abc.def", "bearer abc.def", "BEARER abc.def", "bEaReR   abc.def"] {
            assert_eq!(token_of(header).as_deref(), Some("abc.def"), "{header}");
        }
    }

    #[test]
    fn other_schemes_and_empty_tokens_are_not_bearer_tokens() {
        for header in ["Basic YWxhZGRpbjpvcGVuc2VzYW1l", "Bearer", "Bearer ", "Bearerabc", "Token abc"] {
            assert_eq!(token_of(header), None, "{header}");
        }
    }
}
