//! Identity: signing keys, tokens, passwords (and the limits on guessing them), strong login, and the
//! per-route access policy.

pub mod caller;
pub mod http;
pub mod keys;
pub mod password;
pub mod store;
pub mod throttle;
pub mod tokens;

pub use caller::{Caller, Policy};
