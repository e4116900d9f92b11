//! Customs' receipt-signing key: receipts fetched as signed messages are JWS signed with it, and its
//! public half is published as a JWK set beside the token JWKS.
//!
//! A key of its own rather than the token key: a receipt is evidence an enterprise keeps for years, a
//! token lives minutes; the two keys rotate on different schedules, and a token verifier must never accept
//! a receipt (or the reverse).
//!
//! **Rotation** (`fieldcheck admin rotate-receipt-key`, effective at the next start): a new seed replaces
//! the current one, whose public half is kept in the retired list and published on in the JWK set under
//! its own `kid`, so every receipt signed before still verifies with the key its header names. New
//! receipts are signed with the new key, the first of the set. The retired list holds public keys only.

use std::path::Path;

use anyhow::Context;
use serde_json::{Value, json};

use crate::auth::keys::{self, ServiceKey};

pub const RECEIPT_KEY_FILE: &str = "keys/receipts-ed25519.seed";
/// The retired receipt keys' public halves, a JWK set, newest last.
pub const RETIRED_RECEIPT_KEYS_FILE: &str = "keys/receipts-retired.jwks";
const KID_PREFIX: &str = "receipts-";
/// The `typ` of a signed receipt, so it cannot be mistaken for a message or a token.
pub const RECEIPT_TYP: &str = "fieldcheck-receipt+jws";

/// Customs' receipt-signing service key (`kid` prefixed `receipts-`), with its retired predecessors'
/// public keys.
#[derive(Debug)]
pub struct ReceiptKey {
    key: ServiceKey,
    /// JWKs of the retired keys, published beside the current one.
    retired: Vec<Value>,
}

impl std::ops::Deref for ReceiptKey {
    type Target = ServiceKey;
    fn deref(&self) -> &ServiceKey {
        &self.key
    }
}

impl ReceiptKey {
    /// Loads `<data_dir>/keys/receipts-ed25519.seed`, creating it with a fresh key if absent, and the
    /// retired keys.
    pub fn load_or_generate(data_dir: &Path) -> anyhow::Result<ReceiptKey> {
        let key =
            ServiceKey::load_or_generate(&data_dir.join(RECEIPT_KEY_FILE), "receipt-signing", KID_PREFIX)?;
        // A rotation interrupted between its two writes lists the current key as retired too: once is enough.
        let retired = retired(data_dir)?.into_iter().filter(|jwk| jwk["kid"] != key.kid.as_str()).collect();
        Ok(ReceiptKey { key, retired })
    }

    pub fn from_seed(seed: &[u8; 32]) -> ReceiptKey {
        ReceiptKey { key: ServiceKey::from_seed(seed, KID_PREFIX), retired: Vec::new() }
    }

    /// `payload` as a compact JWS under the current key.
    pub fn sign(&self, payload: &[u8]) -> String {
        super::envelope::sign_compact(self.signing(), &self.kid, RECEIPT_TYP, payload)
    }

    /// The published JWK set: the current key first, then the retired ones, each under its `kid`.
    pub fn jwks(&self) -> Value {
        let mut keys = self.key.jwks()["keys"].as_array().cloned().unwrap_or_default();
        keys.extend(self.retired.iter().rev().cloned());
        json!({ "keys": keys })
    }
}

fn retired(data_dir: &Path) -> anyhow::Result<Vec<Value>> {
    let path = data_dir.join(RETIRED_RECEIPT_KEYS_FILE);
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let set: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    match set.get("keys") {
        Some(Value::Array(keys)) if keys.iter().all(|k| k["kid"].is_string() && k["x"].is_string()) => {
            Ok(keys.clone())
        }
        _ => anyhow::bail!("{} is not a JWK set of retired receipt keys", path.display()),
    }
}

/// Retires the current receipt key (its public half stays published) and makes a new one; the server
/// signs with it from its next start. Answers the (retired, new) key ids.
pub fn rotate(data_dir: &Path) -> anyhow::Result<(String, String)> {
    let current = data_dir.join(RECEIPT_KEY_FILE);
    anyhow::ensure!(
        current.exists(),
        "{} does not exist: there is no receipt key to rotate yet",
        current.display()
    );
    let old = ServiceKey::from_seed(&keys::read_seed(&current)?, KID_PREFIX);
    let mut retired = retired(data_dir)?;
    retired.retain(|jwk| jwk["kid"] != old.kid.as_str());
    retired.extend(old.jwks()["keys"].as_array().cloned().unwrap_or_default());
    // The old public key is kept before its seed is replaced: a crash in between loses no published key.
    keys::write_secret(
        &data_dir.join(RETIRED_RECEIPT_KEYS_FILE),
        serde_json::to_string_pretty(&json!({ "keys": retired }))?.as_bytes(),
    )?;
    let seed = keys::random_seed()?;
    keys::write_secret(&current, hex::encode(seed).as_bytes())?;
    Ok((old.kid.clone(), ServiceKey::from_seed(&seed, KID_PREFIX).kid))
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

    #[test]
    fn after_rotation_old_receipts_verify_with_the_key_published_under_their_kid() {
        let dir = tempfile::tempdir().unwrap();
        let first = ReceiptKey::load_or_generate(dir.path()).unwrap();
        let old_receipt = first.sign(br#"{"id":1}"#);
        let (retired, new) = rotate(dir.path()).unwrap();
        assert_eq!(retired, first.kid);
        rotate(dir.path()).unwrap();
        let now = ReceiptKey::load_or_generate(dir.path()).unwrap();
        assert_ne!(now.kid, new);

        let set = now.jwks();
        let kids: Vec<&str> =
            set["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
        assert_eq!(
            kids,
            [now.kid.as_str(), new.as_str(), first.kid.as_str()],
            "current first, then newest retired"
        );
        let env = Envelope::parse_compact(&old_receipt, 1 << 16).unwrap();
        let jwk = set["keys"].as_array().unwrap().iter().find(|k| k["kid"] == env.kid.as_str()).unwrap();
        let x: [u8; 32] = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap().try_into().unwrap();
        env.verify(&ed25519_dalek::VerifyingKey::from_bytes(&x).unwrap()).unwrap();
        assert!(env.verify(&now.public()).is_err(), "not with the new key");
        assert!(Envelope::parse_compact(&now.sign(b"{}"), 1 << 16).unwrap().verify(&now.public()).is_ok());
    }
}
