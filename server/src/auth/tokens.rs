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
///
/// A token whose signature was verified once is remembered (see [`VerifiedTokens`]): its later uses skip
/// the Ed25519 check and the JSON decoding, never the expiry check.
pub fn verify(keys: &JwtKeys, issuer: &str, token: &str, now_secs: i64) -> Result<Claims, ApiError> {
    let key = VerifiedTokens::key(issuer, token);
    let claims = match keys.verified.get(&key) {
        Some(claims) => claims,
        None => {
            let claims = verify_signed(keys, issuer, token)?;
            keys.verified.insert(key, &claims);
            claims
        }
    };
    if claims.exp <= now_secs {
        return Err(ApiError::unauthorized(
            "token_expired",
            "the access token has expired; get a new one with POST /api/v1/auth/refresh",
        ));
    }
    Ok(claims)
}

/// Signature, algorithm, issuer and a known assurance level: everything about a token that does not
/// change with time.
fn verify_signed(keys: &JwtKeys, issuer: &str, token: &str) -> Result<Claims, ApiError> {
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
    Aal::from_level(data.claims.aal.into()).ok_or_else(|| invalid("unknown assurance level"))?;
    Ok(data.claims)
}

/// Tokens whose signature, algorithm and issuer were verified, by the SHA-256 of issuer and token.
/// Measured on the 500-way booking burst: the Ed25519 check of the same token on every request was
/// 7 % of the server's CPU. Sound because a token's bytes fix everything checked (the key is the
/// process's one signing key); expiry is checked on every use, and the session's status is read from the
/// database on every request as before. Bounded: past [`VERIFIED_TOKENS`] entries it starts afresh.
#[derive(Default)]
pub struct VerifiedTokens {
    seen: std::sync::Mutex<std::collections::HashMap<[u8; 32], Claims>>,
}

/// Most tokens remembered at once; a full table is cleared (the next uses verify again).
pub const VERIFIED_TOKENS: usize = 4096;

impl VerifiedTokens {
    fn key(issuer: &str, token: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(issuer.as_bytes());
        h.update([0]);
        h.update(token.as_bytes());
        h.finalize().into()
    }

    fn get(&self, key: &[u8; 32]) -> Option<Claims> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).get(key).cloned()
    }

    fn insert(&self, key: [u8; 32], claims: &Claims) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= VERIFIED_TOKENS {
            seen.clear();
        }
        seen.insert(key, claims.clone());
    }

    /// Tokens remembered now.
    pub fn len(&self) -> usize {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn code(e: ApiError) -> &'static str {
        match e {
            ApiError::Client { code, .. } => code,
            ApiError::Internal(e) => panic!("an internal error: {e}"),
        }
    }

    fn claims(exp: i64) -> Claims {
        Claims {
            iss: "fieldcheck".into(),
            sub: "7".into(),
            username: "ent1-operator".into(),
            role: Role::EnterpriseOperator,
            org: Some(1),
            unit: None,
            aal: 1,
            sid: "s1".into(),
            dev: None,
            iat: 0,
            exp,
        }
    }

    #[test]
    fn a_remembered_token_still_expires_and_a_changed_or_foreign_token_is_checked_in_full() {
        let keys = JwtKeys::from_seed(&[7; 32]).unwrap();
        let token = issue(&keys, &claims(1_000)).unwrap();
        assert_eq!(verify(&keys, "fieldcheck", &token, 10).unwrap().sub, "7");
        assert_eq!(keys.verified.len(), 1, "the verified token is remembered");
        assert_eq!(verify(&keys, "fieldcheck", &token, 20).unwrap().sub, "7", "answered from memory");
        let expired = verify(&keys, "fieldcheck", &token, 1_000).unwrap_err();
        assert_eq!(code(expired), "token_expired", "expiry is checked on every use");
        let wrong_issuer = verify(&keys, "elsewhere", &token, 10).unwrap_err();
        assert_eq!(code(wrong_issuer), "invalid_token", "the issuer is part of what was remembered");

        // The same claims signed by another key, and the token with its signature altered.
        let other = JwtKeys::from_seed(&[8; 32]).unwrap();
        let foreign = issue(&other, &claims(1_000)).unwrap();
        assert_eq!(code(verify(&keys, "fieldcheck", &foreign, 10).unwrap_err()), "invalid_token");
        let (head, sig) = token.rsplit_once('.').unwrap();
        let flipped = if sig.starts_with('A') { "B" } else { "A" };
        let forged = format!("{head}.{flipped}{}", &sig[1..]);
        assert_eq!(code(verify(&keys, "fieldcheck", &forged, 10).unwrap_err()), "invalid_token");
        assert_eq!(keys.verified.len(), 1, "refused tokens are not remembered");
    }
}
