//! How the domain's types are stored: the rusqlite `ToSql`/`FromSql` of the closed vocabularies and of
//! bounded text. They live here, not beside the types, so that `domain/` does not name the storage engine.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use crate::domain::{
    AccountStatus, ApplicationState, BookingState, CertState, CertificateKind, CreditRating, Direction,
    InstructionState, RegistrationState, Role, Scope, SelectionOutcome, Text, UnitKind, UserStatus,
    events::{
        AccountEvent, ApplicationEvent, BookingEvent, CertificateEvent, DocumentEvent, InstructionEvent,
        RegistrationEvent, ReminderEvent, Subject,
    },
};

/// A vocabulary is stored as its snake_case text; an unknown stored word is an error, never a default.
macro_rules! stored_vocabulary {
    ($($name:ident),+ $(,)?) => {$(
        impl FromSql for $name {
            fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
                let s = v.as_str()?;
                $name::parse(s)
                    .ok_or_else(|| FromSqlError::Other(format!("unknown {} `{s}`", stringify!($name)).into()))
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(self.as_str().into())
            }
        }
    )+};
}

stored_vocabulary!(
    Role,
    UserStatus,
    AccountStatus,
    RegistrationState,
    CreditRating,
    Scope,
    UnitKind,
    Direction,
    ApplicationState,
    CertificateKind,
    CertState,
    SelectionOutcome,
    InstructionState,
    BookingState,
    Subject,
    ApplicationEvent,
    InstructionEvent,
    BookingEvent,
    CertificateEvent,
    DocumentEvent,
    ReminderEvent,
    RegistrationEvent,
    AccountEvent,
);

impl<const MAX: usize, const MULTILINE: bool> ToSql for Text<MAX, MULTILINE> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

/// Stored text was parsed on its way in; one that no longer parses is an internal error, not a client's.
impl<const MAX: usize, const MULTILINE: bool> FromSql for Text<MAX, MULTILINE> {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = String::column_result(value)?;
        Text::parse(s).map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}
