//! Closed vocabularies: roles, statuses, ratings, delegation scopes, workflow states, assurance levels.

use serde::{Deserialize, Serialize};

/// Generates `as_str`/`parse` for a snake_case enum so SQL text and JSON agree on one spelling.
macro_rules! vocabulary {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
        )]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

vocabulary!(
    /// What a user may do; one role per account, as the seeds' permission model has it.
    Role {
        EnterpriseOperator = "enterprise_operator",
        EnterpriseLegal = "enterprise_legal",
        Reviewer = "reviewer",
        Officer = "officer",
        Supervisor = "supervisor",
        Admin = "admin",
    }
);

impl Role {
    /// Enterprise roles belong to an enterprise; the others to a customs unit.
    pub fn is_enterprise(self) -> bool {
        matches!(self, Role::EnterpriseOperator | Role::EnterpriseLegal)
    }
}

vocabulary!(
    /// Account and device status. `lost` is final: a lost card or handheld is replaced, never brought back.
    UserStatus { Active = "active", Frozen = "frozen", Lost = "lost" }
);

vocabulary!(
    /// An account's status (`users.status`): a [`UserStatus`] or `pending` — an operator its legal person
    /// has not confirmed yet, or the legal person of an enterprise whose registration is not approved yet.
    /// Devices are never pending, and no status change sets `pending`: only creation does.
    AccountStatus { Pending = "pending", Active = "active", Frozen = "frozen", Lost = "lost" }
);

impl From<UserStatus> for AccountStatus {
    fn from(s: UserStatus) -> AccountStatus {
        match s {
            UserStatus::Active => AccountStatus::Active,
            UserStatus::Frozen => AccountStatus::Frozen,
            UserStatus::Lost => AccountStatus::Lost,
        }
    }
}

vocabulary!(
    /// Where an enterprise's own registration stands (`enterprise_registrations.state`).
    RegistrationState { Pending = "pending", Approved = "approved", Returned = "returned" }
);

vocabulary!(
    /// Customs enterprise credit rating (企业信用等级); it scales the inspection sampling ratio.
    CreditRating {
        AdvancedCertified = "advanced_certified",
        GeneralCertified = "general_certified",
        General = "general",
        Discredited = "discredited",
    }
);

vocabulary!(
    /// What a legal person may delegate to an agent enterprise.
    Scope { Applications = "applications", Bookings = "bookings", Certificates = "certificates" }
);

vocabulary!(
    /// Level of a customs unit in the hierarchy.
    UnitKind { Headquarters = "headquarters", Customs = "customs", Site = "site" }
);

/// Authentication assurance level, carried in the token's `aal` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Aal {
    /// Username and password: enough for applications and bookings.
    Password = 1,
    /// A challenge signed with the user's registered Ed25519 key (the IC card / Ikey replacement).
    Strong = 2,
}

impl Aal {
    pub fn from_level(level: i64) -> Option<Aal> {
        match level {
            1 => Some(Aal::Password),
            2 => Some(Aal::Strong),
            _ => None,
        }
    }
}

vocabulary!(
    /// Import (digit 1 of an inspection number) or export (digit 2).
    Direction { Import = "import", Export = "export" }
);

vocabulary!(
    /// Where an application stands. After approval the risk engine's outcome decides between `released`,
    /// `document_check` and `inspection`; every path ends in `released`, `disposed` or `cancelled`.
    ApplicationState {
        Draft = "draft",
        Submitted = "submitted",
        Returned = "returned",
        Suspended = "suspended",
        DocumentCheck = "document_check",
        Inspection = "inspection",
        Released = "released",
        // Inspected, approved and non-conforming: the disposal notice is out, the goods stay.
        NotReleased = "not_released",
        // The disposal of non-conforming goods was carried out; the case is closed.
        Disposed = "disposed",
        // Customs cancelled the inspection instruction; the case is closed without release.
        Cancelled = "cancelled",
    }
);

vocabulary!(
    /// Certificates an enterprise may request with its application.
    CertificateKind {
        Phytosanitary = "phytosanitary",
        VeterinaryHealth = "veterinary_health",
        Sanitary = "sanitary",
        Origin = "origin",
        Quality = "quality",
        Fumigation = "fumigation",
    }
);

vocabulary!(
    /// Where a certificate application stands: `draft` (amendable), `queued` for a reviewer with its failed
    /// rules, `issued`, `rejected` (amendable again) and `withdrawn`.
    CertState { Draft = "draft", Queued = "queued", Issued = "issued", Rejected = "rejected", Withdrawn = "withdrawn" }
);

vocabulary!(
    /// The risk engine's decision for an approved application.
    SelectionOutcome { Release = "release", DocumentCheck = "document_check", OnSite = "on_site" }
);

vocabulary!(
    /// An on-site inspection instruction's life; `instructions::machine` has the transitions.
    InstructionState {
        Issued = "issued",
        Booked = "booked",
        Assigned = "assigned",
        InProgress = "in_progress",
        Submitted = "submitted",
        Approved = "approved",
        // Released by a supervisor before the result was approved (强制放行); sealed like `approved`.
        ForceReleased = "force_released",
        Cancelled = "cancelled",
    }
);

vocabulary!(
    /// A slot booking: `requested` and `confirmed` hold a place in the slot; the others are final.
    BookingState {
        Requested = "requested",
        Confirmed = "confirmed",
        Declined = "declined",
        Cancelled = "cancelled",
        NoShow = "no_show",
    }
);
