//! Customs' receipt-signing key: receipts fetched as signed messages are JWS signed with it, and its
//! public half is published as a JWK set beside the token JWKS.
//!
//! A key of its own rather than the token key: a receipt is evidence an enterprise keeps for years, a
//! token lives minutes; the two keys rotate on different schedules, and a token verifier must never accept
//! a receipt (or the reverse).

use std::path::Path;

use crate::auth::keys::ServiceKey;

pub const RECEIPT_KEY_FILE: &str = "keys/receipts-ed25519.seed";
/// The `typ` of a signed receipt, so it cannot be mistaken for a message or a token.
pub const RECEIPT_TYP: &str = "fieldcheck-receipt+jws";

/// Customs' receipt-signing service key (`kid` prefixed `receipts-`).
#[derive(Debug)]
pub struct ReceiptKey(ServiceKey);

impl std::ops::Deref for ReceiptKey {
    type Target = ServiceKey;
    fn deref(&self) -> &ServiceKey {
        &self.0
    }
}

impl ReceiptKey {
    /// Loads `<data_dir>/keys/receipts-ed25519.seed`, creating it with a fresh key if absent.
    pub fn load_or_generate(data_dir: &Path) -> anyhow::Result<ReceiptKey> {
        Ok(Self(ServiceKey::load_or_generate(
            &data_dir.join(RECEIPT_KEY_FILE),
            "receipt-signing",
            "receipts-",
        )?))
    }

    pub fn from_seed(seed: &[u8; 32]) -> ReceiptKey {
        Self(ServiceKey::from_seed(seed, "receipts-"))
    }

    /// `payload` as a compact JWS under this key.
    pub fn sign(&self, payload: &[u8]) -> String {
        super::envelope::sign_compact(self.signing(), &self.kid, RECEIPT_TYP, payload)
    }
}

#[cfg(test)]
mod tests {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

    use super::*;
    use crate::messages::envelope::Envelope;

    #[test]
    fn a_signed_receipt_verifies_with_the_published_key_and_not_after_one_changed_byte() {
        let key = ReceiptKey::from_seed(&[5u8; 32]);
        let jws = key.sign(br#"{"id":1,"state":"submitted"}"#);
        let x = key.jwks()["keys"][0]["x"].as_str().unwrap().to_string();
        let public: [u8; 32] = URL_SAFE_NO_PAD.decode(x).unwrap().try_into().unwrap();
        let public = ed25519_dalek::VerifyingKey::from_bytes(&public).unwrap();
        let env = Envelope::parse_compact(&jws, 1 << 16).unwrap();
        assert_eq!(env.kid, key.kid);
        env.verify(&public).unwrap();

        let mut bytes = env.payload.clone();
        bytes[2] ^= 1;
        let parts: Vec<&str> = jws.split('.').collect();
        let changed = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(&bytes), parts[2]);
        assert!(Envelope::parse_compact(&changed, 1 << 16).unwrap().verify(&public).is_err());
    }
}
