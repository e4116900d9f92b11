//! Why a reference import wrote nothing. A leaf, mapped to HTTP once in `error.rs`; it imports only the
//! booking refusals and the store's error, neither of which imports `error.rs`.

use std::fmt;

use crate::{bookings::error::BookingError, db::error::StoreError};

/// Every problem found in a reference folder, one per line.
#[derive(Debug)]
pub struct Problems(pub Vec<String>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} problem(s) in the reference data; nothing was written:", self.0.len())?;
        for p in &self.0 {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// Why an import wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Problems(#[from] Problems),
    /// Setting a site's calendar failed. (Its rules were checked when the folder was read, so this is
    /// the store's failure in practice.)
    #[error(transparent)]
    Booking(#[from] BookingError),
    #[error(transparent)]
    Db(#[from] StoreError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}
