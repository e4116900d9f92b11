//! The server's Ed25519 token-signing key, generated into the data dir on first start.

use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::{SigningKey, VerifyingKey, pkcs8::EncodePrivateKey};
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub struct JwtKeys {
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    /// Key id: lets clients pick the right JWKS entry after a key rotation.
    pub kid: String,
    public: VerifyingKey,
    /// Tokens signed with this key that were verified already.
    pub verified: super::claims::VerifiedTokens,
}

impl std::fmt::Debug for JwtKeys {
    // Never print key material, not even in a debug log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys").field("kid", &self.kid).finish_non_exhaustive()
    }
}

pub const KEY_FILE: &str = "keys/jwt-ed25519.seed";

impl JwtKeys {
    /// Loads `file` (default: `<data_dir>/keys/jwt-ed25519.seed`), creating it with a fresh key if absent.
    pub fn load_or_generate(data_dir: &Path, file: Option<&Path>) -> anyhow::Result<JwtKeys> {
        let path: PathBuf = file.map(Path::to_path_buf).unwrap_or_else(|| data_dir.join(KEY_FILE));
        Self::from_seed(&load_or_generate_seed(&path, "token-signing")?)
    }

    pub fn from_seed(seed: &[u8; 32]) -> anyhow::Result<JwtKeys> {
        let signing = SigningKey::from_bytes(seed);
        let public = signing.verifying_key();
        let der = signing.to_pkcs8_der().context("encoding the signing key")?;
        let kid = hex::encode(&Sha256::digest(public.as_bytes())[..8]);
        Ok(JwtKeys {
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            decoding: DecodingKey::from_ed_der(public.as_bytes()),
            kid,
            public,
            verified: Default::default(),
        })
    }

    /// The public key as a JSON Web Key Set (RFC 8037 OKP key).
    pub fn jwks(&self) -> Value {
        jwk_set(&self.kid, &self.public)
    }
}

/// The public half of an Ed25519 key as a JWK set (RFC 8037 OKP key), the form every key the service
/// publishes takes: the token key, the certificate key, the receipt key.
pub fn jwk_set(kid: &str, public: &VerifyingKey) -> Value {
    json!({"keys": [{
        "kty": "OKP",
        "crv": "Ed25519",
        "alg": "EdDSA",
        "use": "sig",
        "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(public.as_bytes()),
    }]})
}

/// An Ed25519 key the service signs evidence with (certificates, receipts): a seed file of its own under the
/// data dir, so each rotates on its own schedule apart from the token key; a key id derived from the public
/// key; the public half published as a JWK set.
pub struct ServiceKey {
    signing: SigningKey,
    /// `kid_prefix` and the first 8 bytes of the public key's SHA-256, hex.
    pub kid: String,
}

impl std::fmt::Debug for ServiceKey {
    // Never print key material, not even in a debug log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl ServiceKey {
    /// Loads the seed at `path`, creating it with a fresh key (logged as a new `purpose` key) if absent.
    pub fn load_or_generate(path: &Path, purpose: &str, kid_prefix: &str) -> anyhow::Result<ServiceKey> {
        Ok(Self::from_seed(&load_or_generate_seed(path, purpose)?, kid_prefix))
    }

    pub fn from_seed(seed: &[u8; 32], kid_prefix: &str) -> ServiceKey {
        let signing = SigningKey::from_bytes(seed);
        let kid =
            format!("{kid_prefix}{}", hex::encode(&Sha256::digest(signing.verifying_key().as_bytes())[..8]));
        ServiceKey { signing, kid }
    }

    pub fn signing(&self) -> &SigningKey {
        &self.signing
    }

    pub fn public(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    pub fn jwks(&self) -> Value {
        jwk_set(&self.kid, &self.public())
    }
}

/// Reads the seed at `path`, or creates the file with a fresh seed (logged as a new `purpose` key).
pub fn load_or_generate_seed(path: &Path, purpose: &str) -> anyhow::Result<[u8; 32]> {
    if path.exists() {
        return read_seed(path);
    }
    let seed = random_seed()?;
    write_secret(path, hex::encode(seed).as_bytes())?;
    tracing::info!(path = %path.display(), "generated a new {purpose} key");
    Ok(seed)
}

pub fn random_seed() -> anyhow::Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(seed)
}

/// Reads a hex-encoded 32-byte Ed25519 seed, as `fieldcheck keys generate` writes it.
pub fn read_seed(path: &Path) -> anyhow::Result<[u8; 32]> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let bytes = hex::decode(text.trim()).with_context(|| format!("{} is not hex", path.display()))?;
    bytes.try_into().map_err(|_| anyhow::anyhow!("{} must hold a 32-byte seed", path.display()))
}

/// Writes a secret readable by the owner only, atomically (temporary file, fsync, rename).
pub fn write_secret(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let dir = path.parent().context("key path has no parent directory")?;
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("tmp");
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}
