//! Who acts, as the rules see them: a user with a role, in a customs unit or an enterprise.
//!
//! The auth middleware's `Caller` (session, assurance level, device) is built around one of these; the
//! HTTP edge hands the rules the principal, never the session, so a rule cannot depend on how the caller
//! logged in, and a signed message or a system step can act as a principal without a session at all.

use super::Role;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: i64,
    /// Written into records and reviews as the officer who acted.
    pub username: String,
    pub role: Role,
    /// The customs unit, for customs roles.
    pub unit_id: Option<i64>,
    /// The enterprise, for enterprise roles.
    pub enterprise_id: Option<i64>,
}

/// Why a principal may not do something at all, whatever the object (a 403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAllowed {
    #[error("this needs one of the roles {}; you are {role}", needed.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "))]
    Role { needed: Vec<Role>, role: Role },
    #[error("this is for enterprise users")]
    NotEnterprise,
    #[error("this is for customs users")]
    NotCustoms,
}

impl Principal {
    pub fn require_role(&self, roles: &[Role]) -> Result<(), NotAllowed> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(NotAllowed::Role { needed: roles.to_vec(), role: self.role })
        }
    }

    /// The principal's enterprise, for enterprise roles.
    pub fn enterprise(&self) -> Result<i64, NotAllowed> {
        self.enterprise_id.ok_or(NotAllowed::NotEnterprise)
    }

    /// The principal's customs unit, for customs roles.
    pub fn unit(&self) -> Result<i64, NotAllowed> {
        self.unit_id.ok_or(NotAllowed::NotCustoms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn officer() -> Principal {
        Principal {
            user_id: 7,
            username: "o".into(),
            role: Role::Officer,
            unit_id: Some(3),
            enterprise_id: None,
        }
    }

    #[test]
    fn a_refused_role_names_the_roles_needed_and_the_one_held() {
        let e = officer().require_role(&[Role::Supervisor, Role::Admin]).unwrap_err();
        assert_eq!(e.to_string(), "this needs one of the roles supervisor, admin; you are officer");
    }

    #[test]
    fn a_customs_principal_has_a_unit_and_no_enterprise() {
        assert_eq!(officer().unit(), Ok(3));
        assert_eq!(officer().enterprise(), Err(NotAllowed::NotEnterprise));
    }
}
