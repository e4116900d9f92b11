//! Domain values that cannot hold a bad value: parse, don't validate.

mod codes;
pub mod principal;
pub mod text;
pub mod time;
#[macro_use]
mod vocab;
pub mod events;

pub use codes::{CodeError, CustomsCode, DistrictCode, Uscc};
pub use principal::{NotAllowed, Principal};
pub use text::{Line, Paragraph, Text, TextError};
pub use vocab::{
    Aal, AccountStatus, ApplicationState, BookingState, CertState, CertificateKind, CreditRating, Direction,
    InstructionState, RegistrationState, Role, Scope, SelectionOutcome, UnitKind, UserStatus,
};
