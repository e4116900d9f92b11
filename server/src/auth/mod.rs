//! Identity: signing keys, tokens, passwords (and the limits on guessing them), strong login, and the
//! per-route access policy.
//!
//! # Layout
//! - [`caller`]: the `authorize` middleware and the per-route `Policy`; [`identity`]: `Caller`, who it let in
//!   (the session around the `domain::Principal` the rules see).
//! - [`login`]: the login steps that decide (account allowed, refresh rotation, strong-login challenge).
//! - [`error`]: what the steps refuse, no HTTP in it (`error.rs` maps it): `AuthError` (a login refusal),
//!   `LoginError` (what [`login`] answers), `TokenError` ([`tokens`]), `ThrottleError` ([`throttle`]);
//!   [`password`] has its own `HashError` and `PasswordError`.
//! - [`http`]: the handlers: extract, call [`login`] / [`store`] inside one transaction, map.
//! - [`store`]: sessions, refresh tokens, challenges and login limits in SQLite.
//! - [`tokens`], [`keys`]: JWTs and the Ed25519 keys that sign them; [`claims`]: what a token says, and the
//!   tokens verified already (a leaf both use).
//! - [`password`]: argon2id behind a bounded queue; [`throttle`]: login limits per address and account.

pub mod caller;
pub mod claims;
pub mod error;
pub mod http;
pub mod identity;
pub mod keys;
pub mod login;
pub mod password;
pub mod store;
pub mod throttle;
pub mod tokens;

pub use caller::Policy;
pub use identity::Caller;
