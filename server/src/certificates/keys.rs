//! The service's certificate-signing key (Ed25519), kept apart from the token key: rotating one must not
//! invalidate the other, and a verifier abroad needs only this one.

use std::path::Path;

use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::auth::keys::load_or_generate_seed;

pub const KEY_FILE: &str = "keys/certificate-ed25519.seed";

pub struct CertificateKey {
    signing: SigningKey,
    /// Key id, named in every certificate's content so a verifier picks the right published key.
    pub kid: String,
}

impl std::fmt::Debug for CertificateKey {
    // Never print key material, not even in a debug log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl CertificateKey {
    /// Loads `<data_dir>/keys/certificate-ed25519.seed`, creating it with a fresh key if absent.
    pub fn load_or_generate(data_dir: &Path) -> anyhow::Result<CertificateKey> {
        Ok(Self::from_seed(&load_or_generate_seed(&data_dir.join(KEY_FILE), "certificate-signing")?))
    }

    pub fn from_seed(seed: &[u8; 32]) -> CertificateKey {
        let signing = SigningKey::from_bytes(seed);
        let kid = hex::encode(&Sha256::digest(signing.verifying_key().as_bytes())[..8]);
        CertificateKey { signing, kid }
    }

    /// Base64 signature over `content`.
    pub fn sign(&self, content: &[u8]) -> String {
        STANDARD.encode(self.signing.sign(content).to_bytes())
    }

    pub fn public(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// The public key as a JSON Web Key Set (RFC 8037), published beside the token JWKS.
    pub fn jwks(&self) -> Value {
        json!({"keys": [{
            "kty": "OKP",
            "crv": "Ed25519",
            "alg": "EdDSA",
            "use": "sig",
            "kid": self.kid,
            "x": URL_SAFE_NO_PAD.encode(self.public().as_bytes()),
        }]})
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signature, Verifier};

    use super::*;

    #[test]
    fn a_signature_verifies_with_the_published_key_and_fails_for_changed_content() {
        let key = CertificateKey::from_seed(&[7; 32]);
        let sig = key.sign(b"content");
        let x = key.jwks()["keys"][0]["x"].as_str().unwrap().to_owned();
        let public =
            VerifyingKey::from_bytes(&URL_SAFE_NO_PAD.decode(x).unwrap().try_into().unwrap()).unwrap();
        let sig = Signature::from_slice(&STANDARD.decode(sig).unwrap()).unwrap();
        assert!(public.verify(b"content", &sig).is_ok());
        assert!(public.verify(b"contenT", &sig).is_err());
    }
}
