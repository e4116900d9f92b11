//! JWT access tokens (EdDSA) and opaque refresh tokens.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, Header, Validation};
use sha2::{Digest, Sha256};

use super::{error::TokenError, keys::JwtKeys};
use crate::domain::Aal;

pub use super::claims::{Claims, VERIFIED_TOKENS, VerifiedTokens};

pub fn issue(keys: &JwtKeys, claims: &Claims) -> Result<String, TokenError> {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(keys.kid.clone());
    jsonwebtoken::encode(&header, claims, &keys.encoding)
        .map_err(|e| TokenError::Internal(anyhow::anyhow!("signing a token: {e}")))
}

/// Verifies signature, algorithm, issuer and expiry (against our clock, not the system's).
///
/// A token whose signature was verified once is remembered (see [`VerifiedTokens`]): its later uses skip
/// the Ed25519 check and the JSON decoding, never the expiry check.
pub fn verify(keys: &JwtKeys, issuer: &str, token: &str, now_secs: i64) -> Result<Claims, TokenError> {
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
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

/// Signature, algorithm, issuer and a known assurance level: everything about a token that does not
/// change with time.
fn verify_signed(keys: &JwtKeys, issuer: &str, token: &str) -> Result<Claims, TokenError> {
    let invalid = TokenError::Invalid;
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

/// A fresh opaque refresh token and the hash we store in its place (a database leak reveals no tokens).
pub fn new_refresh_token() -> Result<(String, Vec<u8>), TokenError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| TokenError::Internal(anyhow::anyhow!("no randomness: {e}")))?;
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
    use crate::domain::Role;

    fn code(e: TokenError) -> &'static str {
        match e {
            TokenError::Expired => "token_expired",
            TokenError::Invalid(_) => "invalid_token",
            TokenError::Internal(e) => panic!("an internal error: {e}"),
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
