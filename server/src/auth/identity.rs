//! The authenticated caller as data, apart from the middleware that establishes it (`caller.rs`, which
//! takes the state), so that what the state holds (the monitoring hub's stream tokens) can name it.

use std::ops::Deref;

use crate::domain::{Aal, Principal};

/// The authenticated caller, as the `authorize` middleware established it: the [`Principal`] the rules
/// see, and the session it came through. It dereferences to the principal, so a rule that takes a
/// `&Principal` is called with `&caller` and never sees the session.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub aal: Aal,
    pub session_id: String,
    pub device_id: Option<String>,
}

impl Deref for Caller {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.principal
    }
}
