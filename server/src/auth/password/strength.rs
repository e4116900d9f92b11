//! Why a new password was refused. A leaf (imports nothing that imports `error.rs`), mapped to HTTP once in
//! `error.rs` with the codes and sentences clients already see.

/// A new password the policy refuses; the numbers are the policy's limits.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the password may have at most {0} bytes")]
    TooLong(usize),
    #[error("the password must have at least {0} characters")]
    TooShort(usize),
}
