//! Argon2id password hashing. Deliberately slow, so it always runs on the blocking pool.

use argon2::{
    Algorithm, Argon2, Params, Version,
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng},
};

use crate::error::ApiError;

pub const MIN_PASSWORD_CHARS: usize = 10;

fn hasher(memory_kib: u32) -> Argon2<'static> {
    let params = Params::new(memory_kib, 2, 1, None).expect("argon2 parameters are in range");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash_blocking(password: &str, memory_kib: u32) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    hasher(memory_kib)
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("argon2: {e}")))
}

pub async fn hash(password: String, memory_kib: u32) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || hash_blocking(&password, memory_kib)).await?
}

/// `true` when `password` matches `phc`; parameters come from the stored hash, not from the settings.
pub async fn verify(password: String, phc: String) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&phc)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored hash unreadable: {e}")))?;
        Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await?
}

/// A password policy everyone can meet and nobody forgets what it is.
pub fn check_strength(password: &str) -> Result<(), ApiError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(crate::error::invalid(
            "password",
            "weak_password",
            format!("the password must have at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(())
}
