//! Domain values that cannot hold a bad value: parse, don't validate.

mod codes;
mod roles;
pub mod time;

pub use codes::{CustomsCode, DistrictCode, Uscc};
pub use roles::{Aal, CreditRating, Role, Scope, UnitKind, UserStatus};
