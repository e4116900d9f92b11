//! The service's certificate-signing key (Ed25519), kept apart from the token key: rotating one must not
//! invalidate the other, and a verifier abroad needs only this one.

use std::path::Path;

use base64::{Engine, engine::general_purpose::STANDARD};
use ed25519_dalek::Signer;

use crate::auth::keys::ServiceKey;

pub const KEY_FILE: &str = "keys/certificate-ed25519.seed";

/// The certificate-signing service key; `kid` (no prefix) is named in every certificate's content so a
/// verifier picks the right published key.
#[derive(Debug)]
pub struct CertificateKey(ServiceKey);

impl std::ops::Deref for CertificateKey {
    type Target = ServiceKey;
    fn deref(&self) -> &ServiceKey {
        &self.0
    }
}

impl CertificateKey {
    /// Loads `<data_dir>/keys/certificate-ed25519.seed`, creating it with a fresh key if absent.
    pub fn load_or_generate(data_dir: &Path) -> anyhow::Result<CertificateKey> {
        Ok(Self(ServiceKey::load_or_generate(&data_dir.join(KEY_FILE), "certificate-signing", "")?))
    }

    pub fn from_seed(seed: &[u8; 32]) -> CertificateKey {
        Self(ServiceKey::from_seed(seed, ""))
    }

    /// Base64 signature over `content`.
    pub fn sign(&self, content: &[u8]) -> String {
        STANDARD.encode(self.signing().sign(content).to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use ed25519_dalek::{Signature, Verifier, VerifyingKey};

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
