//! What an access token says (its claims), and the tokens already verified: plain data, below both the
//! keys (which hold the verified tokens of their key) and the token code (which reads and fills them).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::Role;

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
    pub(super) fn key(issuer: &str, token: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(issuer.as_bytes());
        h.update([0]);
        h.update(token.as_bytes());
        h.finalize().into()
    }

    pub(super) fn get(&self, key: &[u8; 32]) -> Option<Claims> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).get(key).cloned()
    }

    pub(super) fn insert(&self, key: [u8; 32], claims: &Claims) {
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
