//! JWT access tokens (EdDSA) and opaque refresh tokens.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::keys::JwtKeys;
use crate::{
    domain::{Aal, Role},
    error::ApiError,
};

/// What an access token says about its bearer. Status (frozen, lost, logged out) is *not* in here: it is
/// checked against the database on every request, so a revocation takes effect at once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The user id.
    pub sub: String,
    pub username: String,
    pub role: Role,
    /// Enterprise of enterprise users.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<i64>,
    /// Customs unit of customs users.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<i64>,
    /// Assurance level: 1 password, 2 strong (signed challenge).
    pub aal: u8,
    /// The session (login) this token belongs to.
    pub sid: String,
    /// The handheld the session is bound to, for officers syncing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
    pub iat: i64,
    pub exp: i64,
}

pub fn issue(keys: &JwtKeys, claims: &Claims) -> Result<String, ApiError> {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(keys.kid.clone());
    jsonwebtoken::encode(&header, claims, &keys.encoding)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("signing a token: {e}")))
}

/// Verifies signature, algorithm, issuer and expiry (against our clock, not the system's).
pub fn verify(keys: &JwtKeys, issuer: &str, token: &str, now_secs: i64) -> Result<Claims, ApiError> {
    let invalid = |why: &str| {
        ApiError::unauthorized("invalid_token", format!("the access token is not valid: {why}; log in again"))
    };
    // Only EdDSA: `alg: none` and HMAC confusion attacks fail here, before any signature check.
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["exp", "iss", "sub"]);
    validation.set_issuer(&[issuer]);
    let data = jsonwebtoken::decode::<Claims>(token, &keys.decoding, &validation).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.kind() {
            K::InvalidSignature => invalid("bad signature"),
            K::InvalidAlgorithm | K::InvalidAlgorithmName => invalid("algorithm not accepted"),
            K::InvalidIssuer => invalid("wrong issuer"),
            _ => invalid("malformed"),
        }
    })?;
    if data.claims.exp <= now_secs {
        return Err(ApiError::unauthorized(
            "token_expired",
            "the access token has expired; get a new one with POST /api/v1/auth/refresh",
        ));
    }
    Aal::from_level(data.claims.aal.into()).ok_or_else(|| invalid("unknown assurance level"))?;
    Ok(data.claims)
}

/// A fresh opaque refresh token and the hash we store in its place (a database leak reveals no tokens).
pub fn new_refresh_token() -> Result<(String, Vec<u8>), ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::Internal(anyhow::anyhow!("no randomness: {e}")))?;
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = refresh_token_hash(&token);
    Ok((token, hash))
}

pub fn refresh_token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}
