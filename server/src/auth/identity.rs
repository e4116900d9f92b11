//! The authenticated caller as data, apart from the middleware that establishes it (`caller.rs`, which
//! takes the state), so that what the state holds (the monitoring hub's stream tokens) can name it.

use crate::{
    domain::{Aal, Role},
    error::ApiError,
};

/// The authenticated caller, as the `authorize` middleware established it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: i64,
    pub username: String,
    pub role: Role,
    pub enterprise_id: Option<i64>,
    pub unit_id: Option<i64>,
    pub aal: Aal,
    pub session_id: String,
    pub device_id: Option<String>,
}

impl Caller {
    pub fn require_role(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this needs one of the roles {}; you are {}",
                roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "),
                self.role
            )))
        }
    }

    /// The caller's enterprise, for enterprise roles.
    pub fn enterprise(&self) -> Result<i64, ApiError> {
        self.enterprise_id.ok_or_else(|| ApiError::forbidden("this is for enterprise users"))
    }

    /// The caller's customs unit, for customs roles.
    pub fn unit(&self) -> Result<i64, ApiError> {
        self.unit_id.ok_or_else(|| ApiError::forbidden("this is for customs users"))
    }
}
