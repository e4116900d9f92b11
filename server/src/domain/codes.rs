//! Identification codes of enterprises and customs districts.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a code string was refused; the message names the rule so a person can fix the typo.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CodeError(pub String);

/// A 10-digit customs registration code (海关编码) of an enterprise.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "3201960001")]
pub struct CustomsCode(String);

impl CustomsCode {
    pub fn parse(s: &str) -> Result<Self, CodeError> {
        if s.len() == 10 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(CustomsCode(s.to_string()))
        } else {
            Err(CodeError(format!("customs code `{s}` must be exactly 10 digits")))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A 4-digit customs district code (关区代码), digits 5–8 of an inspection number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "2200")]
pub struct DistrictCode(String);

impl DistrictCode {
    pub fn parse(s: &str) -> Result<Self, CodeError> {
        if s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(DistrictCode(s.to_string()))
        } else {
            Err(CodeError(format!("district code `{s}` must be exactly 4 digits")))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An 18-character unified social credit code (统一社会信用代码), GB 32100-2015.
///
/// The last character is a check character over the first 17 (modulo 31 over the code's own 31-character
/// alphabet, which leaves out I, O, S, V and Z so they cannot be misread).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "91320100MA1MXXXX0Q")]
pub struct Uscc(String);

const USCC_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

impl Uscc {
    pub fn parse(s: &str) -> Result<Self, CodeError> {
        let bytes = s.as_bytes();
        if bytes.len() != 18 {
            return Err(CodeError(format!(
                "unified social credit code `{s}` must be 18 characters, not {}",
                s.chars().count()
            )));
        }
        let mut values = [0u32; 18];
        for (i, b) in bytes.iter().enumerate() {
            values[i] = uscc_value(*b).ok_or_else(|| {
                CodeError(format!(
                    "unified social credit code `{s}` has `{}` at position {}: only digits and the letters \
                     ABCDEFGHJKLMNPQRTUWXY are allowed",
                    *b as char,
                    i + 1
                ))
            })?;
        }
        if !bytes[2..8].iter().all(u8::is_ascii_digit) {
            return Err(CodeError(format!(
                "unified social credit code `{s}`: characters 3–8 are an administrative division code and must be digits"
            )));
        }
        let expected = Self::check_character(&values[..17]);
        if bytes[17] != expected {
            return Err(CodeError(format!(
                "unified social credit code `{s}` fails its GB 32100 check: the last character should be `{}`",
                expected as char
            )));
        }
        Ok(Uscc(s.to_string()))
    }

    fn check_character(values: &[u32]) -> u8 {
        let sum: u32 = values.iter().zip(USCC_WEIGHTS).map(|(v, w)| v * w).sum();
        USCC_ALPHABET[((31 - sum % 31) % 31) as usize]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn uscc_value(b: u8) -> Option<u32> {
    USCC_ALPHABET.iter().position(|c| *c == b).map(|p| p as u32)
}

macro_rules! string_newtype_impls {
    ($($t:ident),*) => {$(
        impl TryFrom<String> for $t {
            type Error = CodeError;
            fn try_from(s: String) -> Result<Self, CodeError> {
                $t::parse(&s)
            }
        }
        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.0
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}
string_newtype_impls!(CustomsCode, DistrictCode, Uscc);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_unified_social_credit_code_is_accepted() {
        // Check characters worked out by hand from the GB 32100 weights.
        for code in ["91110000100000589A", "91440300708461136T", "91310000MA1FL1KQ9E"] {
            assert!(Uscc::parse(code).is_ok(), "{code}");
        }
    }

    #[test]
    fn a_unified_social_credit_code_with_a_wrong_check_character_names_the_right_one() {
        let err = Uscc::parse("91110000100000589C").unwrap_err();
        assert!(err.0.contains("should be `A`"), "{}", err.0);
    }

    #[test]
    fn a_unified_social_credit_code_with_a_forbidden_letter_is_refused() {
        let err = Uscc::parse("9111000010000058OA").unwrap_err();
        assert!(err.0.contains("position 17"), "{}", err.0);
    }

    #[test]
    fn customs_and_district_codes_need_exact_digit_counts() {
        assert!(CustomsCode::parse("3201960001").is_ok());
        assert!(CustomsCode::parse("320196000").is_err());
        assert!(CustomsCode::parse("32019600A1").is_err());
        assert!(DistrictCode::parse("2200").is_ok());
        assert!(DistrictCode::parse("22001").is_err());
    }
}
